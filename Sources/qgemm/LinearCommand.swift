import ArgumentParser
import Foundation
import QGEMM

struct LinearCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "linear",
        abstract: "A Linear layer Y = X·Wᵀ + b in int8 on NumPy files, Float in and out.",
        discussion: """
        X is float32 or float64 [M,K], W [N,K], B [N]; Y is written as float32 [M,N]. Weights are \
        quantized symmetrically per output channel. Dynamic mode quantizes X per row or per tensor at \
        run time. Static mode takes the input and output parameters (--x-scale/--x-zero-point/\
        --y-scale/--y-zero-point, uint8 input and int8 output) or calibrates them on CALIB_X.npy \
        with an observer (the output range comes from the float layer on that data).
        """)

    enum Mode: String, ExpressibleByArgument { case dynamic, `static` }
    enum Granularity: String, ExpressibleByArgument { case row, tensor }
    enum ObserverKind: String, ExpressibleByArgument { case minmax, moving, percentile }

    @Option(name: .customLong("x"), help: "Input X.npy (float32 or float64, [M,K]).")
    var x: String
    @Option(name: .customLong("w"), help: "Weights W.npy (float32 or float64, [N,K]).")
    var w: String
    @Option(name: .long, help: "Bias B.npy (float32 or float64, [N]).")
    var bias: String?
    @Option(name: .long, help: "dynamic or static.")
    var mode: Mode = .dynamic
    @Option(name: .long, help: "Dynamic mode: row or tensor input parameters.")
    var granularity: Granularity = .row
    @Option(name: .customLong("x-scale")) var xScale: Float?
    @Option(name: .customLong("x-zero-point"), parsing: .unconditional) var xZeroPoint: Int32?
    @Option(name: .customLong("y-scale")) var yScale: Float?
    @Option(name: .customLong("y-zero-point"), parsing: .unconditional) var yZeroPoint: Int32?
    @Option(name: .long, help: "Static mode: calibrate on this float X.npy.")
    var calibrate: String?
    @Option(name: .long, help: "minmax, moving or percentile (static calibration).")
    var observer: ObserverKind = .minmax
    @Option(name: .long, help: "Percentile for --observer percentile.")
    var percentile: Double = 99.99
    @Option(name: .long, help: "Rows per calibration batch.")
    var batch: Int = 64
    @Option(name: .long, help: "single, double or float (static mode).")
    var rounding: RoundingArgument = .single
    @Option(name: .long, help: "Kernel path (default: the best this CPU supports).")
    var kernel: KernelPath?
    @Option(name: .long, parsing: .unconditional, help: "Threads, 1...1024 (default: all cores).",
            transform: ThreadCount.parse)
    var threads: Int?
    @Option(name: .long, help: "Output Y.npy (float32).")
    var out: String
    @Option(name: .long, help: "Write timings and parameters as JSON to FILE ('-' for stdout).")
    var json: String?
    @Option(name: .long, help: "Timed runs for --json (int8 layer and cblas_sgemm, medians).")
    var `repeat`: Int = 5

    // A QGEMMError propagates as it is: ArgumentParser prints it and exits 1
    // (a failure), where a ValidationError would mean a usage error (64).
    func run() throws {
        let path = kernel
        let xa = try NPYArray(contentsOf: URL(fileURLWithPath: x)), wa = try NPYArray(contentsOf: URL(fileURLWithPath: w))
        let xs = try xa.requireRank(2, name: "X"), ws = try wa.requireRank(2, name: "W")
        let (m, k, n) = (xs[0], xs[1], ws[0])
        guard ws[1] == k else { throw QGEMMError(.invalidShape, "X is [\(m),\(k)] but W is \(ws); W must be [N,\(k)]") }
        let xv = try xa.floatValues(), wv = try wa.floatValues()
        var bv: [Float]? = nil
        if let bias {
            let b = try NPYArray(contentsOf: URL(fileURLWithPath: bias))
            _ = try b.requireRank(1, name: "B")
            bv = try b.floatValues()
        }
        let layerMode: QuantizedLinear.Mode
        var report: [String: Any] = ["m": m, "k": k, "n": n, "mode": mode.rawValue]
        switch mode {
        case .dynamic:
            guard xScale == nil, xZeroPoint == nil, yScale == nil, yZeroPoint == nil, calibrate == nil else {
                throw ValidationError("dynamic mode takes no --x-/--y- parameters or --calibrate")
            }
            layerMode = .dynamic(granularity == .row ? .perRow : .perTensor)
            report["granularity"] = granularity.rawValue
        case .static:
            let (input, output) = try staticParameters(w: wv, b: bv, n: n, k: k)
            layerMode = .static(input: input, output: output, activation: .none)
            report["x_scale"] = input.scale; report["x_zero_point"] = input.zeroPoint
            report["y_scale"] = output.scale; report["y_zero_point"] = output.zeroPoint
            if calibrate != nil { report["observer"] = observer.rawValue }
        }
        let layer = try QuantizedLinear(weights: wv, outputFeatures: n, inputFeatures: k, bias: bv, mode: layerMode,
                                        rounding: rounding.mode)
        let y = try layer(xv, rows: m, kernel: path, threads: threads)
        try NPYArray(float32: y, shape: [m, n]).write(to: URL(fileURLWithPath: out))
        if let json {
            // Time the whole int8 layer (quantize, GEMM, dequantize) and sgemm + bias on the same data.
            let t8 = try medianSeconds { _ = try layer(xv, rows: m, kernel: path, threads: threads) }
            BLAS.threads = threads ?? CPUFeatures.current.cores
            let tf = try medianSeconds {
                var yf = try BLAS.sgemm(xv, wv, m: m, k: k, n: n, transposeB: true)
                if let bv { for i in yf.indices { yf[i] += bv[i % n] } }
            }
            report["int8_seconds"] = t8
            report["sgemm_seconds"] = tf
            report["kernel"] = (path ?? (try? KernelPath.processDefault.get()) ?? .reference).rawValue
            try OutputFile.write(try JSONSerialization.data(withJSONObject: report, options: [.sortedKeys]), to: json)
        }
    }

    func staticParameters(w: [Float], b: [Float]?, n: Int, k: Int) throws -> (QuantizationParameters, QuantizationParameters) {
        if let calibrate {
            guard xScale == nil, xZeroPoint == nil, yScale == nil, yZeroPoint == nil else {
                throw ValidationError("give either --calibrate or the explicit --x-/--y- parameters, not both")
            }
            let ca = try NPYArray(contentsOf: URL(fileURLWithPath: calibrate))
            let cs = try ca.requireRank(2, name: "the calibration data")
            guard cs[1] == k else { throw QGEMMError(.invalidShape, "calibration data is \(cs), K must be \(k)") }
            let c = try ca.floatValues()
            var xObs = try makeObserver(), yObs = try makeObserver()
            let rows = cs[0], step = max(1, batch)
            for start in stride(from: 0, to: rows, by: step) {
                let end = min(rows, start + step)
                let xb = Array(c[(start * k)..<(end * k)])
                try xObs.observe(xb)
                var yb = try BLAS.sgemm(xb, w, m: end - start, k: k, n: n, transposeB: true)
                if let b { for i in yb.indices { yb[i] += b[i % n] } }
                try yObs.observe(yb)
            }
            return (try xObs.parameters(type: .uint8), try yObs.parameters(type: .int8))
        }
        guard let xScale, let xZeroPoint, let yScale, let yZeroPoint else {
            throw ValidationError("static mode needs --calibrate CALIB_X.npy or all of --x-scale, --x-zero-point, --y-scale, --y-zero-point")
        }
        return (try QuantizationParameters(type: .uint8, scale: xScale, zeroPoint: xZeroPoint),
                try QuantizationParameters(type: .int8, scale: yScale, zeroPoint: yZeroPoint))
    }

    func makeObserver() throws -> any CalibrationObserver {
        switch observer {
        case .minmax: return MinMaxObserver()
        case .moving: return try MovingAverageMinMaxObserver()
        case .percentile: return try PercentileObserver(percentile: percentile)
        }
    }

    func medianSeconds(_ body: () throws -> Void) throws -> Double {
        try body()
        var t: [Double] = []
        for _ in 0..<max(1, `repeat`) {
            let t0 = PeakProbe.now()
            try body()
            t.append(PeakProbe.now() - t0)
        }
        return t.sorted()[t.count / 2]
    }
}
