import ArgumentParser
import Foundation
import QGEMM

struct GEMMCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gemm",
        abstract: "One quantized GEMM on NumPy files: Y = X·Wᵀ (+ B), requantized or not.",
        discussion: """
        X is int8 or uint8 [M,K] (its dtype sets the activation type), W int8 [N,K], B int32 [N] \
        with scale S_X·S_W. The output type defaults to X's dtype; int8 and uint8 outputs need \
        --y-scale and --y-zero-point, which int32 and float outputs refuse.
        """)

    @Option(name: .customLong("x"), help: "Activations X.npy (int8 or uint8, [M,K]).")
    var x: String
    @Option(name: .customLong("w"), help: "Weights W.npy (int8, or int64 values that fit, [N,K]).")
    var w: String
    @Option(name: .long, help: "Bias B.npy (int32, or int64 values that fit, [N]).")
    var bias: String?
    @Option(name: .customLong("x-scale"), parsing: .unconditional, help: "S_X (> 0).")
    var xScale: Float
    @Option(name: .customLong("x-zero-point"), parsing: .unconditional, help: "Z_X (may be negative).")
    var xZeroPoint: Int32
    @Option(name: .customLong("w-scale"), parsing: .unconditional, help: "Per-tensor S_W (> 0).")
    var wScale: Float?
    @Option(name: .customLong("w-scales"), help: "Per-channel S_W, float32 [N] .npy.")
    var wScales: String?
    @Option(name: .customLong("y-scale"), parsing: .unconditional, help: "S_Y (> 0; int8 / uint8 output).")
    var yScale: Float?
    @Option(name: .customLong("y-zero-point"), parsing: .unconditional, help: "Z_Y (int8 / uint8 output; may be negative).")
    var yZeroPoint: Int32?
    @Option(name: .long, help: "single (default), double or float (int8 / uint8 output).")
    var rounding: RoundingArgument?
    @Option(name: .long, parsing: .unconditional, help: "Output clamp LO,HI in the output's integer domain, e.g. -128,127.",
            transform: ClampArgument.parse)
    var clamp: ClampArgument?
    @Option(name: .customLong("output-type"), help: "int8, uint8, int32 or float (default: X's dtype).")
    var outputType: BenchOutputType?
    @Option(name: .long, help: "Kernel path (default: the best this CPU supports).")
    var kernel: KernelPath?
    @Option(name: .long, parsing: .unconditional, help: "Threads, 1...1024 (default: all cores).",
            transform: ThreadCount.parse)
    var threads: Int?
    @Option(name: .long, help: "Output Y.npy.")
    var out: String

    func validate() throws {
        try OutputPath.check(["--out": out], inputs: ["--x": x, "--w": w, "--bias": bias, "--w-scales": wScales])
        try OptionCheck.scale(xScale, "--x-scale")
        try OptionCheck.scale(wScale, "--w-scale")
        try OptionCheck.scale(yScale, "--y-scale")
        if (wScale == nil) == (wScales == nil) { throw ValidationError("give exactly one of --w-scale and --w-scales") }
        if outputType == .int32 || outputType == .float {
            guard yScale == nil, yZeroPoint == nil, clamp == nil, rounding == nil else {
                throw ValidationError("--y-scale, --y-zero-point, --clamp and --rounding apply only to int8 and uint8 output")
            }
        }
    }

    // A QGEMMError propagates as it is: ArgumentParser prints it and exits 1
    // (a failure), where a ValidationError would mean a usage error (64).
    func run() throws {
        let path = kernel
        let xFile = NPYOption(option: "--x", path: x, needs: "int8 or uint8 [M,K]")
        let wFile = NPYOption(option: "--w", path: w, needs: "int8 [N,K] with the K of --x")
        let (xa, wa, m, k, n) = try xFile.readWithWeights(wFile)
        let wValues = try wFile.naming { try wa.int8Values() }
        let xType: QuantizedType = try xFile.naming {
            switch xa.dtype {
            case .int8: return .int8
            case .uint8: return .uint8
            default: throw QGEMMError(.file, "X must be int8 or uint8, got \(xa.dtype.rawValue)")
            }
        }
        let scales: PackedWeights.WeightScales
        switch (wScale, wScales) {
        case (let s?, nil): scales = .perTensor(s)
        case (nil, let file?):
            let file = NPYOption(option: "--w-scales", path: file, needs: "float32 [N]")
            let a = try file.read()
            scales = .perChannel(try file.naming {
                let shape = try a.requireRank(1, name: "the per-channel scales")
                guard shape[0] == n else { throw QGEMMError(.invalidShape, "\(shape[0]) scales for N = \(n) channels") }
                guard a.dtype == .float32 else { throw QGEMMError(.file, "expected float32 data, got \(a.dtype.rawValue)") }
                return try a.floatValues()
            })
        default: throw ValidationError("give exactly one of --w-scale and --w-scales")
        }
        var biasValues: PackedWeights.Bias? = nil
        if let bias {
            let file = NPYOption(option: "--bias", path: bias, needs: "int32 (or int64 that fits) [N] with scale S_X·S_W")
            let b = try file.read()
            biasValues = .int32(try file.naming {
                let shape = try b.requireRank(1, name: "B")
                guard shape[0] == n else { throw QGEMMError(.invalidShape, "\(shape[0]) values for N = \(n) channels") }
                return try b.int32Values()
            })
        }
        let output = outputType ?? (xType == .int8 ? .int8 : .uint8)
        let input = try QuantizationParameters(type: xType, scale: xScale, zeroPoint: xZeroPoint)
        var yParams: QuantizationParameters? = nil
        switch output {
        case .int8, .uint8:
            guard let ys = yScale, let yz = yZeroPoint else {
                throw ValidationError("\(output.rawValue) output needs --y-scale and --y-zero-point")
            }
            yParams = try QuantizationParameters(type: output == .int8 ? .int8 : .uint8, scale: ys, zeroPoint: yz)
        case .int32, .float:
            break // validate() refused the requantization options
        }
        let packed = try PackedWeights(weights: wValues, outputChannels: n, inputChannels: k, scales: scales,
                                       bias: biasValues, input: input, output: yParams, rounding: (rounding ?? .single).mode,
                                       clamp: clamp.map { $0.range })
        let result: NPYArray
        func go<X: QuantizedScalar>(_ xs: [X]) throws -> NPYArray {
            switch output {
            case .int8: return try NPYArray(int8: packed.gemm(xs, rows: m, kernel: path, threads: threads), shape: [m, n])
            case .uint8: return try NPYArray(uint8: packed.gemm(xs, rows: m, kernel: path, threads: threads), shape: [m, n])
            case .int32: return try NPYArray(int32: packed.gemm(xs, rows: m, kernel: path, threads: threads), shape: [m, n])
            case .float: return try NPYArray(float32: packed.gemm(xs, rows: m, kernel: path, threads: threads), shape: [m, n])
            }
        }
        result = try xType == .int8 ? go(xFile.naming { try xa.int8Values() }) : go(xFile.naming { try xa.uint8Values() })
        try result.write(to: URL(fileURLWithPath: out))
    }
}

enum RoundingArgument: String, ExpressibleByArgument, CaseIterable {
    case single, double, float
    var mode: RoundingMode {
        switch self {
        case .single: .singleRounding
        case .double: .doubleRounding
        case .float: .float
        }
    }
}

