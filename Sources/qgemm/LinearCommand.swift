import ArgumentParser
import Foundation
import QGEMM
import QGEMMBaseline

struct LinearCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "linear",
        abstract: "A Linear layer Y = X·Wᵀ + b in int8 on NumPy files, Float in and out.",
        discussion: """
        X is float16, float32 or float64 [M,K], W [N,K], B [N]; Y is written as float32 [M,N]. Weights are \
        quantized symmetrically per output channel. Dynamic mode quantizes X per row or per tensor at \
        run time. Static mode takes the input and output parameters (--x-scale/--x-zero-point/\
        --y-scale/--y-zero-point, uint8 input and int8 output) or calibrates them on CALIB_X.npy \
        with an observer (the output range comes from the float layer on that data). static-input \
        mode quantizes X with static parameters (--x-scale/--x-zero-point or --calibrate) and writes \
        the int32 accumulators dequantized, with no output quantization. --smooth ALPHA \
        adds SmoothQuant factors calibrated on the same data. --save writes the quantized layer as \
        safetensors; --load runs a saved layer instead of quantizing --w. --weights int4 makes the \
        weights group-wise 4-bit (--group-size, --group-scales; --awq searches AWQ-style scales on \
        --calibrate data, and --gptq DAMPING rounds GPTQ-style after it) with activations per row, int8 or \
        (--activations uint8) uint8 with a zero point, Float out.
        """)

    /// What static mode needs, said when it is missing.
    static let staticModeNeeds = "static mode needs --calibrate CALIB_X.npy or all of --x-scale, --x-zero-point, --y-scale, --y-zero-point"

    enum Mode: String, ExpressibleByArgument { case dynamic, `static`, staticInput = "static-input" }
    enum Granularity: String, ExpressibleByArgument { case row, tensor }
    enum ObserverKind: String, ExpressibleByArgument { case minmax, moving, percentile, mse, entropy }

    @Option(name: .customLong("x"), help: "Input X.npy (float16, float32 or float64, [M,K]).")
    var x: String
    @Option(name: .customLong("w"), help: "Weights W.npy (float16, float32 or float64, [N,K]); not with --load.")
    var w: String?
    @Option(name: .long, help: "Bias B.npy (float16, float32 or float64, [N]).")
    var bias: String?
    @Option(name: .long, help: "dynamic (default), static (int8 output, requantized) or static-input (the input static, Float output).")
    var mode: Mode?
    @Option(name: .long, help: "Write the quantized layer to this .safetensors file.")
    var save: String?
    @Option(name: .long, help: "Run the layer saved in this .safetensors file (instead of --w, --bias and the mode options).")
    var load: String?
    @Option(name: .long, help: "Dynamic mode: row (default) or tensor input parameters.")
    var granularity: Granularity?
    @Option(name: .customLong("x-scale"), parsing: .unconditional, help: "Static mode: S_X (> 0).") var xScale: Float?
    @Option(name: .customLong("x-zero-point"), parsing: .unconditional, help: "Static mode: Z_X (uint8).") var xZeroPoint: Int32?
    @Option(name: .customLong("y-scale"), parsing: .unconditional, help: "Static mode: S_Y (> 0).") var yScale: Float?
    @Option(name: .customLong("y-zero-point"), parsing: .unconditional, help: "Static mode: Z_Y (int8).") var yZeroPoint: Int32?
    @Option(name: .long, help: "Static and static-input modes, and --weights int4 --awq: calibrate on this float X.npy.")
    var calibrate: String?
    @Option(name: .long, help: "With --calibrate: minmax (default), moving, percentile, mse (least squared error) or entropy (least KL divergence).")
    var observer: ObserverKind?
    @Option(name: .long, parsing: .unconditional,
            help: "With --calibrate: SmoothQuant with migration strength ALPHA in [0, 1] (0.5 is the paper's default).")
    var smooth: Float?
    @Option(name: .long, parsing: .unconditional, help: "With --observer percentile: the percentile, in (50, 100] (default 99.99).")
    var percentile: Double?
    @Option(name: .long, parsing: .unconditional, help: "With --calibrate: rows per calibration batch, ≥ 1 (default 64).")
    var batch: Int?
    @Option(name: .long, help: "Static mode: single (default), double or float.")
    var rounding: RoundingArgument?
    @Option(name: .long, help: "Kernel path (default: the best this CPU supports).")
    var kernel: KernelPath?
    @Option(name: .long, parsing: .unconditional, help: "Threads, 1...1024 (default: all cores).",
            transform: ThreadCount.parse)
    var threads: Int?
    @Option(name: .long, help: "Output Y.npy (float32).")
    var out: String
    @Option(name: .long, help: "Write timings and parameters as JSON to FILE ('-' for stdout).")
    var json: String?
    @Option(name: .long, parsing: .unconditional, help: "With --json: timed runs, 1...100000 (int8 layer and cblas_sgemm, medians; default 5).")
    var `repeat`: Int?
    @Option(name: .long, help: "int8 (default) or int4 (group-wise 4-bit weights, activations per row, Float out).")
    var weights: LayerWeights?
    @Option(name: .customLong("group-size"), parsing: .unconditional, help: "With --weights int4: K values per scale, a multiple of 8 from 8 to 4096 (default 32).")
    var groupSize: Int?
    @Option(name: .customLong("group-scales"), help: "With --weights int4: absmax (default) or minimizing-error.")
    var groupScales: GroupScalesArgument?
    @Flag(name: .long, help: "With --weights int4 and --calibrate: search AWQ-style per-input-channel scales on the calibration data.")
    var awq = false
    @Option(name: .long, help: "With --weights int4: int8 (default: symmetric, per row) or uint8 (a zero point per row) activations.")
    var activations: ActivationsArgument?
    @Option(name: .long, parsing: .unconditional,
            help: "With --awq: then GPTQ-style rounding on the --calibrate data, with this damping in (0, 10] (0.1 suits a few thousand rows).")
    var gptq: Float?

    /// Options that mean nothing in the chosen mode are refused, not ignored.
    func validate() throws {
        try OptionCheck.scale(xScale, "--x-scale")
        try OptionCheck.scale(yScale, "--y-scale")
        if let percentile, !(percentile > 50 && percentile <= 100) {
            throw ValidationError("--percentile must be in (50, 100], got \(percentile)")
        }
        if let batch, batch < 1 { throw ValidationError("--batch must be ≥ 1, got \(batch)") }
        if let smooth, !(smooth >= 0 && smooth <= 1) { throw ValidationError("--smooth must be in [0, 1], got \(smooth)") }
        if let r = `repeat`, !(1...BenchRunner.mostRuns).contains(r) {
            throw ValidationError("--repeat must be in 1...\(BenchRunner.mostRuns), got \(r)")
        }
        try OutputPath.check(["--out": out, "--json": json, "--save": save],
                             inputs: ["--x": x, "--w": w, "--bias": bias, "--calibrate": calibrate, "--load": load])
        try OptionCheck.unused(`repeat` != nil && json == nil, "--repeat", "counts the timed runs of --json; give --json too")
        try validateInt4()
        if load != nil {
            let layerOptions = [(w != nil, "--w"), (bias != nil, "--bias"), (mode != nil, "--mode"), (granularity != nil, "--granularity"),
                                (xScale != nil, "--x-scale"), (xZeroPoint != nil, "--x-zero-point"), (yScale != nil, "--y-scale"),
                                (yZeroPoint != nil, "--y-zero-point"), (calibrate != nil, "--calibrate"), (observer != nil, "--observer"),
                                (percentile != nil, "--percentile"), (batch != nil, "--batch"), (rounding != nil, "--rounding"),
                                (smooth != nil, "--smooth"), (save != nil, "--save"), (weights != nil, "--weights")]
            for (isGiven, option) in layerOptions {
                try OptionCheck.unused(isGiven, option, "does not go with --load (the file holds the whole layer)")
            }
            return
        }
        guard w != nil else { throw ValidationError("give the weights with --w W.npy, or a saved layer with --load") }
        if weights == .int4 { return }
        switch mode ?? .dynamic {
        case .dynamic:
            let given = [(xScale != nil, "--x-scale"), (xZeroPoint != nil, "--x-zero-point"), (yScale != nil, "--y-scale"),
                         (yZeroPoint != nil, "--y-zero-point"), (calibrate != nil, "--calibrate"), (observer != nil, "--observer"),
                         (percentile != nil, "--percentile"), (batch != nil, "--batch"), (rounding != nil, "--rounding"),
                         (smooth != nil, "--smooth")]
            for (isGiven, option) in given {
                try OptionCheck.unused(isGiven, option, "applies only to --mode static or static-input (dynamic mode computes the input's parameters per call and writes Float)")
            }
        case .staticInput:
            let given = [(yScale != nil, "--y-scale"), (yZeroPoint != nil, "--y-zero-point"), (rounding != nil, "--rounding")]
            for (isGiven, option) in given {
                try OptionCheck.unused(isGiven, option, "applies only to --mode static (static-input writes Float, with no output quantization)")
            }
            fallthrough
        case .static:
            try OptionCheck.unused(granularity != nil, "--granularity",
                                   "applies only to --mode dynamic (static mode has one input scale and zero point per tensor)")
            for (isGiven, option) in [(observer != nil, "--observer"), (batch != nil, "--batch"), (smooth != nil, "--smooth")] {
                try OptionCheck.unused(isGiven && calibrate == nil, option, "applies only with --calibrate")
            }
            try OptionCheck.unused(percentile != nil && observer != .percentile, "--percentile", "applies only with --observer percentile")
            try OptionCheck.unused(batch != nil && calibrate != nil && (observer ?? .minmax) == .minmax, "--batch",
                                   "has no effect with the min/max observer (its range is the same whatever the batches); it acts with --observer moving, percentile, mse or entropy")
            // The layer's parameters come from --calibrate or are all given, checked before any file is read.
            let output = mode == .static
            if calibrate != nil {
                guard xScale == nil, xZeroPoint == nil, yScale == nil, yZeroPoint == nil else {
                    throw ValidationError("give either --calibrate or the explicit --x-/--y- parameters, not both")
                }
            } else if xScale == nil || xZeroPoint == nil || (output && (yScale == nil || yZeroPoint == nil)) {
                throw ValidationError(output ? Self.staticModeNeeds : "static-input mode needs --calibrate CALIB_X.npy or both of --x-scale, --x-zero-point")
            }
        }
    }

    // A QGEMMError propagates as it is: ArgumentParser prints it and exits 1
    // (a failure), where a ValidationError would mean a usage error (64).
    func run() throws {
        if let load { return try runSaved(load) }
        if weights == .int4 { return try runInt4() }
        let mode = self.mode ?? .dynamic
        let (xv, wv, bv, m, k, n) = try readLayerFiles()
        var report: [String: Any] = ["m": m, "k": k, "n": n, "mode": mode.rawValue]
        let layer: QuantizedLinear
        switch mode {
        case .dynamic:
            let granularity = self.granularity ?? .row
            layer = try QuantizedLinear(weights: wv, outputChannels: n, inputChannels: k, bias: bv,
                                        mode: .dynamic(granularity == .row ? .perRow : .perTensor), rounding: rounding?.mode)
            report["granularity"] = granularity.rawValue
        case .static, .staticInput:
            layer = try staticLayer(w: wv, b: bv, n: n, k: k)
            if let smooth { report["smoothing_alpha"] = smooth }
            if calibrate != nil { report["observer"] = (observer ?? .minmax).rawValue }
            switch layer.mode {
            case .static(let input, let output, _):
                report["x_scale"] = input.scale; report["x_zero_point"] = input.zeroPoint
                report["y_scale"] = output.scale; report["y_zero_point"] = output.zeroPoint
            case .staticInput(let input):
                report["x_scale"] = input.scale; report["x_zero_point"] = input.zeroPoint
            case .dynamic, .int4Weights:
                break
            }
        }
        try finish(layer, xv, m: m, wv: wv, bv: bv, report: report, save: save)
    }

    /// X, W and the bias from --x, --w and --bias, with M, K and N.
    func readLayerFiles() throws -> (x: [Float], w: [Float], bias: [Float]?, m: Int, k: Int, n: Int) {
        let xFile = NPYOption(option: "--x", path: x, needs: "float16, float32 or float64 [M,K]")
        guard let w else { throw ValidationError("give the weights with --w W.npy, or a saved layer with --load") }
        let wFile = NPYOption(option: "--w", path: w, needs: "float16, float32 or float64 [N,K] with the K of --x")
        let (xa, wa, m, k, n) = try xFile.readWithWeights(wFile)
        let wv = try wFile.naming { try wa.floatValues() }
        let xv = try xFile.naming { try xa.floatValues() }
        var bv: [Float]? = nil
        if let bias {
            let file = NPYOption(option: "--bias", path: bias, needs: "float16, float32 or float64 [N]")
            let b = try file.read()
            bv = try file.naming {
                let shape = try b.requireRank(1, name: "B")
                guard shape[0] == n else { throw QGEMMError(.invalidShape, "\(shape[0]) values for N = \(n) channels") }
                return try b.floatValues()
            }
        }
        return (xv, wv, bv, m, k, n)
    }

    /// X from --x for a saved layer of `k` inputs and `outputs` outputs, with its rows.
    func readInput(forSavedK k: Int, outputs: Int) throws -> (x: [Float], m: Int) {
        let xFile = NPYOption(option: "--x", path: x, needs: "float16, float32 or float64 [M,K] with the K of the saved layer")
        let xa = try xFile.read()
        return try xFile.naming {
            let xs = try xa.requireRank(2, name: "X")
            guard xs[1] == k else { throw QGEMMError(.invalidShape, "X is \(xs) but the saved layer has K = \(k)") }
            try NPYOption.checkFits(rows: xs[0], columns: outputs, what: "the output Y")
            return (try xa.floatValues(), xs[0])
        }
    }

    /// `--load`: the layer from its file, X from --x.
    func runSaved(_ file: String) throws {
        let layer: QuantizedLinear
        if try Self.holdsInt4Weights(file) { return try runSavedInt4(file) }
        do { layer = try QuantizedLinear(contentsOf: URL(fileURLWithPath: file)) } catch let e as QGEMMError {
            throw QGEMMError(e.code, "--load \(file): \(e.message)")
        }
        let packed: PackedWeights
        switch layer.weights {
        case .int4(let w): return try runSavedInt4(w, from: file, mode: "int4-weights")
        case .int8(let p): packed = p
        }
        let (xv, m) = try readInput(forSavedK: layer.inputChannels, outputs: layer.outputChannels)
        let n = layer.outputChannels, k = layer.inputChannels
        var report: [String: Any] = ["m": m, "k": k, "n": n, "loaded": file]
        switch layer.mode {
        case .int4Weights: break // int4 weights returned above
        case .dynamic(let g): report["mode"] = "dynamic"; report["granularity"] = g == .perRow ? "row" : "tensor"
        case .staticInput(let input):
            report["mode"] = "static-input"
            report["x_scale"] = input.scale; report["x_zero_point"] = input.zeroPoint
        case .static(let input, let output, _):
            report["mode"] = "static"
            report["x_scale"] = input.scale; report["x_zero_point"] = input.zeroPoint
            report["y_scale"] = output.scale; report["y_zero_point"] = output.zeroPoint
        }
        // sgemm, for --json's timing, on the weights the file holds
        // (dequantized; with smoothing, of W·diag(s)): a Float copy of the
        // weights and of X, made only when --json asks for the timing.
        var wv: [Float] = [], sgemmX = xv
        if json != nil {
            try checkSgemmTiming(m: m, n: n, k: k, copyingWeights: true, copyingInput: layer.smoothing != nil)
            wv = [Float](repeating: 0, count: n * k)
            for row in 0..<n {
                for col in 0..<k { wv[row * k + col] = Float(try packed.weight(outputChannel: row, input: col)) * packed.weightScales[row] }
            }
            sgemmX = try layer.smoothing?.apply(xv, rows: m) ?? xv
        }
        try finish(layer, sgemmX, m: m, wv: wv, bv: packed.floatBias, report: report, layerInput: xv)
    }

    /// Runs the layer, then saves it (`save`, --save) and writes Y and, with
    /// --json, the timings and report: nothing is written when X is refused.
    /// `xv` is the sgemm side's input; `layerInput` the layer's (they differ for a smoothed saved layer).
    func finish(_ layer: QuantizedLinear, _ xv: [Float], m: Int, wv: [Float], bv: [Float]?, report: [String: Any],
                layerInput: [Float]? = nil, save: String? = nil) throws {
        var report = report
        let path = kernel
        let n = layer.outputChannels, k = layer.inputChannels
        try checkSgemmTiming(m: m, n: n, k: k, copyingWeights: false, copyingInput: false)
        let input = layerInput ?? xv
        let y = try layer(input, rows: m, kernel: path, threads: threads)
        if let save { try layer.save(to: URL(fileURLWithPath: save)) }
        try NPYArray(float32: y, shape: [m, n]).write(to: URL(fileURLWithPath: out))
        if let json {
            // Time the whole int8 layer (quantize, GEMM, dequantize) and sgemm + bias on the same data.
            let t8 = try medianSeconds { _ = try layer(input, rows: m, kernel: path, threads: threads) }
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

    /// --json times sgemm beside the layer: its sizes must fit sgemm's Int32,
    /// and the Float copies it needs must fit the memory this process may
    /// use: of the weights when they come as int8 or int4 (`copyingWeights`),
    /// of X divided by a layer's smoothing factors (`copyingInput`).
    /// Checked before the layer runs, so that nothing is written when the
    /// timing cannot be made.
    func checkSgemmTiming(m: Int, n: Int, k: Int, copyingWeights: Bool, copyingInput: Bool) throws {
        guard json != nil else { return }
        if copyingWeights {
            try NPYOption.checkFits(rows: n, columns: k, what: "--json's Float copy of the weights (for its sgemm timing)")
        }
        if copyingInput {
            try NPYOption.checkFits(rows: m, columns: k, what: "--json's copy of X divided by the smoothing factors (for its sgemm timing)")
        }
        // sgemm does nothing at M or N = 0, whatever K.
        guard m > 0, n > 0 else { return }
        guard Int32(exactly: m) != nil, Int32(exactly: n) != nil, Int32(exactly: k) != nil else {
            throw QGEMMError(.invalidShape, "--json times sgemm, whose M, N and K must fit in Int32; got M = \(m), N = \(n), K = \(k)")
        }
    }

    /// The static or static-input layer, from --calibrate (with --observer,
    /// --batch, --smooth) or from the explicit --x-/--y- parameters.
    func staticLayer(w: [Float], b: [Float]?, n: Int, k: Int) throws -> QuantizedLinear {
        let output = mode == .static
        if let calibrate {
            // The calibration computes the float layer's output first: a
            // weight or bias that is not finite is named here, by its option
            // and file, not as a value of that output.
            if let i = w.firstIndex(where: { !$0.isFinite }), let path = self.w {
                throw QGEMMError(.invalidValue, "--w \(path): weight [\(i / k), \(i % k)] is \(w[i]); weights must be finite")
            }
            if let b, let i = b.firstIndex(where: { !$0.isFinite }), let path = bias {
                throw QGEMMError(.invalidValue, "--bias \(path): bias [\(i)] is \(b[i]); a bias must be finite")
            }
            let file = NPYOption(option: "--calibrate", path: calibrate, needs: "float16, float32 or float64 [rows,K] with the K of --x")
            let ca = try file.read()
            let (c, cs) = try file.naming {
                let cs = try ca.requireRank(2, name: "the calibration data")
                guard cs[1] == k else { throw QGEMMError(.invalidShape, "calibration data is \(cs), K must be \(k)") }
                return (try ca.floatValues(), cs)
            }
            let rows = cs[0], step = batch ?? 64
            // The float layer's output, the same bits on every machine (a
            // BLAS's sums, and so the output parameters, follow the kernel
            // it picks for the CPU or OPENBLAS_CORETYPE).
            var y: [Float]? = nil
            if output {
                try NPYOption.checkFits(rows: rows, columns: n, what: "the calibration data's Float output")
                let all = try QuantizedLinear.floatOutput(weights: w, outputChannels: n, inputChannels: k, bias: b, input: c, rows: rows,
                                                          threads: threads)
                // Finite inputs can still overflow Float in the product; say so,
                // not that a calibration value is infinite.
                if let i = all.firstIndex(where: { !$0.isFinite }), c.allSatisfy(\.isFinite), w.allSatisfy(\.isFinite),
                   b?.allSatisfy(\.isFinite) ?? true {
                    throw QGEMMError(.invalidArgument, "the float layer's output on the calibration data is \(all[i]) at [\(i / n), \(i % n)]: X·Wᵀ + b overflows Float; scale the calibration data or the weights down")
                }
                y = all
            }
            return try QuantizedLinear.calibrated(weights: w, outputChannels: n, inputChannels: k, bias: b,
                                                  mode: output ? .static : .staticInput, input: c, rows: rows, floatOutput: y,
                                                  observer: makeObserver, smoothingAlpha: smooth, batchRows: step,
                                                  rounding: rounding?.mode)
        }
        guard let xScale, let xZeroPoint, !output || (yScale != nil && yZeroPoint != nil) else {
            throw ValidationError(output ? Self.staticModeNeeds : "static-input mode needs --calibrate CALIB_X.npy or both of --x-scale, --x-zero-point")
        }
        let input = try QuantizationParameters(type: .uint8, scale: xScale, zeroPoint: xZeroPoint)
        guard output else {
            return try QuantizedLinear(weights: w, outputChannels: n, inputChannels: k, bias: b, mode: .staticInput(input),
                                       rounding: rounding?.mode)
        }
        guard let yScale, let yZeroPoint else { throw ValidationError(Self.staticModeNeeds) }
        let out = try QuantizationParameters(type: .int8, scale: yScale, zeroPoint: yZeroPoint)
        return try QuantizedLinear(weights: w, outputChannels: n, inputChannels: k, bias: b,
                                   mode: .static(input: input, output: out, activation: .none), rounding: rounding?.mode)
    }

    func makeObserver() throws -> any CalibrationObserver {
        switch observer ?? .minmax {
        case .minmax: return MinMaxObserver()
        case .moving: return MovingAverageMinMaxObserver()
        case .percentile: return try PercentileObserver(percentile: percentile ?? 99.99)
        case .mse: return MSEObserver()
        case .entropy: return EntropyObserver()
        }
    }

    /// `body` once to warm up, then --repeat (default 5) timed runs; their
    /// median in seconds.
    func medianSeconds(_ body: () throws -> Void) throws -> Double {
        try body()
        var t: [Double] = []
        for _ in 0..<(`repeat` ?? 5) {
            let t0 = PeakProbe.now()
            try body()
            t.append(PeakProbe.now() - t0)
        }
        return BenchRunner.median(t)
    }
}

/// A layer's weights for `qgemm linear --weights`: int8 or group-wise int4.
enum LayerWeights: String, ExpressibleByArgument, CaseIterable {
    case int8, int4
}
