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
    @Option(name: .customLong("w"), help: "Weights W.npy (int8, [N,K]).")
    var w: String
    @Option(name: .long, help: "Bias B.npy (int32, [N]).")
    var bias: String?
    @Option(name: .customLong("x-scale"), help: "S_X.")
    var xScale: Float
    @Option(name: .customLong("x-zero-point"), parsing: .unconditional, help: "Z_X (may be negative).")
    var xZeroPoint: Int32
    @Option(name: .customLong("w-scale"), help: "Per-tensor S_W.")
    var wScale: Float?
    @Option(name: .customLong("w-scales"), help: "Per-channel S_W, float32 [N] .npy.")
    var wScales: String?
    @Option(name: .customLong("y-scale"), help: "S_Y (int8 / uint8 output).")
    var yScale: Float?
    @Option(name: .customLong("y-zero-point"), parsing: .unconditional, help: "Z_Y (int8 / uint8 output; may be negative).")
    var yZeroPoint: Int32?
    @Option(name: .long, help: "single, double or float.")
    var rounding: RoundingArgument = .single
    @Option(name: .long, parsing: .unconditional, help: "Output clamp LO,HI in the output's integer domain, e.g. -128,127.")
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

    // A QGEMMError propagates as it is: ArgumentParser prints it and exits 1
    // (a failure), where a ValidationError would mean a usage error (64).
    func run() throws {
        let path = kernel
        let xa = try NPYArray(contentsOf: URL(fileURLWithPath: x))
        let wa = try NPYArray(contentsOf: URL(fileURLWithPath: w))
        let xShape = try xa.requireRank(2, name: "X")
        let wShape = try wa.requireRank(2, name: "W")
        let (m, k, n) = (xShape[0], xShape[1], wShape[0])
        guard wShape[1] == k else { throw QGEMMError(.invalidShape, "X is [\(m),\(k)] but W is \(wShape); W must be [N,\(k)]") }
        let xType: QuantizedType
        switch xa.dtype {
        case .int8: xType = .int8
        case .uint8: xType = .uint8
        default: throw QGEMMError(.file, "X must be int8 or uint8, got \(xa.dtype.rawValue)")
        }
        let scales: PackedWeights.WeightScales
        switch (wScale, wScales) {
        case (let s?, nil): scales = .perTensor(s)
        case (nil, let file?):
            let a = try NPYArray(contentsOf: URL(fileURLWithPath: file))
            _ = try a.requireRank(1, name: "the per-channel scales")
            guard a.dtype == .float32 else { throw QGEMMError(.file, "per-channel scales must be float32, got \(a.dtype.rawValue)") }
            scales = .perChannel(try a.floatValues())
        default: throw ValidationError("give exactly one of --w-scale and --w-scales")
        }
        var biasValues: PackedWeights.Bias? = nil
        if let bias {
            let b = try NPYArray(contentsOf: URL(fileURLWithPath: bias))
            _ = try b.requireRank(1, name: "B")
            biasValues = .int32(try b.int32Values())
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
            guard yScale == nil, yZeroPoint == nil, clamp == nil else {
                throw ValidationError("--y-scale, --y-zero-point and --clamp apply only to int8 and uint8 output")
            }
        }
        let packed = try PackedWeights(weights: try wa.int8Values(), outputChannels: n, inputChannels: k, scales: scales,
                                       bias: biasValues, input: input, output: yParams, rounding: rounding.mode,
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
        result = xType == .int8 ? try go(xa.int8Values()) : try go(xa.uint8Values())
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

/// `LO,HI`, either may be negative.
struct ClampArgument: ExpressibleByArgument {
    let range: ClosedRange<Int32>
    init?(argument: String) {
        let parts = argument.split(separator: ",").map { Int32($0.trimmingCharacters(in: .whitespaces)) }
        guard parts.count == 2, let lo = parts[0], let hi = parts[1], lo <= hi else { return nil }
        range = lo...hi
    }
}
