import QGEMM
import Foundation

/// One bit-exactness check: a GEMM configuration run on several kernel paths
/// and compared, bit for bit, with the scalar reference.
///
/// Data are drawn from `seed` over the full ranges (weights −128...127,
/// activations the whole int8 / uint8 range, int32 biases up to ±2^20 or
/// what the overflow bound leaves, if less), so the clamp saturates. (The
/// requantization's rounding ties need accumulators of 2^25 or more at these
/// scales, which random data do not give: the kernel tester aims at them,
/// `scripts/check-kernels`.) Int8 and uint8 outputs take their weights packed
/// with the input parameters, so the input zero point is folded into the
/// bias in Swift; int32 and Float outputs take them packed without, and get
/// the input parameters per call, so the kernels subtract `Z_X·row_sum`
/// themselves. Output buffers
/// have gaps when `outputStrideExtra > 0`; the gaps are filled with a sentinel
/// and compared too, so a path writing outside its rows is caught.
///
/// ```swift
/// let c = KernelCheck(m: 7, k: 65, n: 17, output: .int8, rounding: .doubleRounding)
/// if let mismatch = try c.run(paths: KernelPath.available) { print(mismatch) }
/// ```
public struct KernelCheck: Sendable, Hashable, CustomStringConvertible {
    /// What the check writes.
    public enum Output: String, Sendable, CaseIterable, Hashable {
        /// Requantized int8, with ``KernelCheck/rounding`` and the clamp.
        case int8
        /// Requantized uint8, with ``KernelCheck/rounding`` and the clamp.
        case uint8
        /// The exact int32 accumulator.
        case int32
        /// Float: the accumulator times `S_X·S_W[n]`, through the static entry point.
        case float
        /// Float output through the per-row dynamic-quantization entry point.
        case dynamic
    }

    /// M: rows of X and of the output.
    public var m: Int
    /// N: output channels (rows of W).
    public var n: Int
    /// K: the reduction length (columns of X and of W).
    public var k: Int
    /// The element type of X, `.int8` or `.uint8`.
    public var activation: QuantizedType = .uint8
    /// Z_X; for `.dynamic` the zero point of row 0 (the others are random).
    public var xZeroPoint: Int32 = 0
    /// True for one weight scale per output channel, false for one per tensor.
    public var perChannel: Bool = true
    /// The requantization mode of the int8 and uint8 outputs.
    public var rounding: RoundingMode = .singleRounding
    /// A narrow (ReLU6-like) clamp instead of the full output range.
    public var narrowClamp: Bool = false
    /// Threads each path runs with.
    public var threads: Int = 1
    /// What the check writes.
    public var output: Output = .int8
    /// Extra elements between rows of X (row stride K + this); the gaps hold
    /// random bytes that the paths must ignore.
    public var rowStrideExtra: Int = 0
    /// Extra elements between rows of the output (row stride N + this); the
    /// gaps hold a sentinel that must survive every path.
    public var outputStrideExtra: Int = 0
    /// Seed of the random weights, biases, scales and inputs (SplitMix64).
    public var seed: UInt64 = 1

    /// A check of the given configuration; each parameter sets the property of the same name.
    public init(m: Int, k: Int, n: Int, activation: QuantizedType = .uint8, xZeroPoint: Int32 = 0,
                perChannel: Bool = true, rounding: RoundingMode = .singleRounding, narrowClamp: Bool = false,
                threads: Int = 1, output: Output = .int8, rowStrideExtra: Int = 0, outputStrideExtra: Int = 0,
                seed: UInt64 = 1) {
        self.m = m; self.n = n; self.k = k; self.activation = activation; self.xZeroPoint = xZeroPoint
        self.perChannel = perChannel; self.rounding = rounding; self.narrowClamp = narrowClamp
        self.threads = threads; self.output = output; self.rowStrideExtra = rowStrideExtra
        self.outputStrideExtra = outputStrideExtra; self.seed = seed
    }

    /// The configuration on one line, e.g. `M=7 K=65 N=17 uint8 Z_X=0 per-channel …`.
    public var description: String {
        "M=\(m) K=\(k) N=\(n) \(activation.rawValue) Z_X=\(xZeroPoint) \(perChannel ? "per-channel" : "per-tensor") \(rounding.rawValue) clamp=\(narrowClamp ? "narrow" : "full") threads=\(threads) out=\(output.rawValue) ldx+\(rowStrideExtra) ldy+\(outputStrideExtra) seed=\(seed)"
    }

    /// The Swift initializer call that recreates this check.
    public var swiftLiteral: String {
        "m: \(m), k: \(k), n: \(n), activation: .\(activation.rawValue), xZeroPoint: \(xZeroPoint), perChannel: \(perChannel), rounding: .\(rounding.rawValue), narrowClamp: \(narrowClamp), threads: \(threads), output: .\(output.rawValue), rowStrideExtra: \(rowStrideExtra), outputStrideExtra: \(outputStrideExtra), seed: \(seed)"
    }

    /// A path whose output differs from the reference.
    public struct Mismatch: Error, Sendable, CustomStringConvertible {
        /// The path that differs.
        public let path: KernelPath
        /// The configuration that was run.
        public let check: KernelCheck
        /// Row of the first differing element.
        public let row: Int
        /// Column of the first differing element within the output row stride
        /// (N or more when the path wrote into the gap after a row).
        public let column: Int
        /// The reference's element, as text.
        public let expected: String
        /// The path's element, as text.
        public let actual: String
        /// The path, the position, both values and the configuration, on one line.
        public var description: String {
            "\(path) differs from reference at [\(row), \(column)]: expected \(expected), got \(actual) (\(check))"
        }
    }

    /// Output elements a run compares per path.
    public var elementCount: Int { m * (n + outputStrideExtra) }

    /// Runs the check on `paths` (the reference is always run) and returns the
    /// first mismatch, or nil when every path matches bit for bit.
    public func run(paths: [KernelPath]) throws -> Mismatch? {
        try run(paths: paths, injectingFaultInto: nil)
    }

    /// As ``run(paths:)``; with `faulty` set, the lowest bit of that path's first
    /// output element is flipped after the call and before the comparison, so a
    /// test (or `qgemm validate --inject-fault`) can show that the check catches
    /// a wrong kernel. The fault lives here, in the checker: the library itself
    /// never alters a result.
    package func run(paths: [KernelPath], injectingFaultInto faulty: KernelPath?) throws -> Mismatch? {
        guard m >= 0, n >= 1, k >= 1, rowStrideExtra >= 0, outputStrideExtra >= 0 else {
            throw QGEMMError(.invalidShape, "a kernel check needs M ≥ 0, N ≥ 1, K ≥ 1 and stride extras ≥ 0, got \(self)")
        }
        var rng = CheckRandom(seed: seed)
        let w = (0..<n * k).map { _ in Int8(truncatingIfNeeded: rng.next()) }
        // Biases as large as the overflow bound leaves room for (scaled down so sums stay exact).
        let absSums = (0..<n).map { j in (0..<k).reduce(Int64(0)) { $0 + Int64(abs(Int(w[j * k + $1]))) } }
        let bias: [Int32] = absSums.map { s in
            let room = max(Int64(Int32.max) - 255 * s, 0)
            let limit = min(room, 1 << 20)
            return Int32(Int64(rng.next() % UInt64(2 * limit + 1)) - limit)
        }
        let sw: [Float] = (0..<n).map { _ in perChannel ? Float(0.004) * Float(1 + Double(rng.next() % 1000) / 500) : 0.006 }
        let xParams = try QuantizationParameters(type: activation, scale: 0.05, zeroPoint: xZeroPoint)
        // Output scale chosen so that typical results spread over the output
        // range and the tails saturate.
        let accScale = Double(k).squareRoot() * 74 * 150
        let outType: QuantizedType = output == .uint8 ? .uint8 : .int8
        let yScale = Float(Double(xParams.scale) * 0.006 * accScale / 90)
        let yZero = Int32(Int64(rng.next() % UInt64(outType.max - outType.min + 1))) + outType.min
        let yParams = try QuantizationParameters(type: outType, scale: yScale, zeroPoint: yZero)
        let clamp: ClosedRange<Int32> = narrowClamp ? max(outType.min, yZero)...min(outType.max, max(outType.min, yZero) + 60)
                                                    : outType.range
        let scales: PackedWeights.WeightScales = perChannel ? .perChannel(sw) : .perTensor(sw[0])
        let packed: PackedWeights
        if output == .dynamic {
            let fb = (0..<n).map { _ in Float(Int64(rng.next() % 2001) - 1000) / 100 }
            packed = try PackedWeights(weights: w, outputChannels: n, inputChannels: k, scales: scales, bias: .float(fb))
        } else if output == .int32 || output == .float {
            // No input parameters at pack time: Z_X reaches the kernels with each call.
            packed = try PackedWeights(weights: w, outputChannels: n, inputChannels: k, scales: scales, bias: .int32(bias))
        } else {
            packed = try PackedWeights(weights: w, outputChannels: n, inputChannels: k, scales: scales,
                                       bias: .int32(bias), input: xParams, output: yParams, rounding: rounding, clamp: clamp)
        }
        let ldx = k + rowStrideExtra, ldy = n + outputStrideExtra
        let xCount = m == 0 ? 0 : (m - 1) * ldx + k
        let xBits = (0..<max(xCount, 1)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        let rowScales = (0..<max(m, 1)).map { _ in Float(0.001) * Float(1 + rng.next() % 100) }
        let rowZeros = (0..<max(m, 1)).map { i in
            i == 0 ? xZeroPoint : Int32(Int64(rng.next() % UInt64(activation.max - activation.min + 1))) + activation.min
        }

        let xInt8 = activation == .int8 ? xBits.map { Int8(bitPattern: $0) } : []
        func compute(_ path: KernelPath) throws -> [UInt32] {
            switch activation {
            case .int8: return try computeTyped(xInt8, path)
            case .uint8: return try computeTyped(xBits, path)
            }
        }
        func computeTyped<X: QuantizedScalar>(_ x: [X], _ path: KernelPath) throws -> [UInt32] {
            let count = m * ldy
            switch output {
            case .int8:
                return try runInto(x, path, [Int8](repeating: 0x55, count: count)).map { UInt32(UInt8(bitPattern: $0)) }
            case .uint8:
                return try runInto(x, path, [UInt8](repeating: 0x55, count: count)).map { UInt32($0) }
            case .int32:
                return try runInto(x, path, [Int32](repeating: 0x5555_5555, count: count)).map { UInt32(bitPattern: $0) }
            case .float:
                return try runInto(x, path, [Float](repeating: .nan, count: count)).map(\.bitPattern)
            case .dynamic:
                var y = [Float](repeating: .nan, count: count)
                try x.withUnsafeBufferPointer { xb in
                    try rowScales.withUnsafeBufferPointer { sb in
                        try rowZeros.withUnsafeBufferPointer { zb in
                            try y.withUnsafeMutableBufferPointer { yb in
                                try packed.gemmDynamic(xb, rows: m, rowStride: ldx, rowScales: sb, rowZeroPoints: zb,
                                                       into: yb, outputRowStride: ldy, kernel: path, threads: threads)
                            }
                        }
                    }
                }
                return y.map(\.bitPattern)
            }
        }
        func runInto<X: QuantizedScalar, Y: GEMMOutputScalar>(_ x: [X], _ path: KernelPath, _ initial: [Y]) throws -> [Y] {
            var y = initial
            try x.withUnsafeBufferPointer { xb in
                try y.withUnsafeMutableBufferPointer { yb in
                    try packed.gemm(xb, rows: m, rowStride: ldx, input: output == .dynamic ? nil : xParams,
                                    into: yb, outputRowStride: ldy, kernel: path, threads: threads)
                }
            }
            return y
        }

        let expected = try compute(.reference)
        for path in paths where path != .reference {
            var got = try compute(path)
            if path == faulty, !got.isEmpty { got[0] ^= 1 }
            if let i = expected.indices.first(where: { expected[$0] != got[$0] }) {
                return Mismatch(path: path, check: self, row: i / ldy, column: i % ldy,
                                expected: render(expected[i]), actual: render(got[i]))
            }
        }
        return nil
    }

    private func render(_ bits: UInt32) -> String {
        switch output {
        case .int8: "\(Int8(truncatingIfNeeded: bits))"
        case .uint8: "\(UInt8(truncatingIfNeeded: bits))"
        case .int32: "\(Int32(bitPattern: bits))"
        case .float, .dynamic: "\(Float(bitPattern: bits))"
        }
    }
}

/// SplitMix64: small, fast and seedable, so every check (and benchmark) reproduces from its seed.
/// For the package's own checks, tools and tests; not part of the public API.
package struct CheckRandom: RandomNumberGenerator, Sendable {
    package var state: UInt64
    package init(seed: UInt64) { state = seed }
    package mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

extension CheckRandom {
    /// A standard normal value (Box–Muller on two 53-bit uniforms).
    package mutating func gaussian() -> Float {
        let u1 = max(Double(next() >> 11) * 0x1p-53, 0x1p-60), u2 = Double(next() >> 11) * 0x1p-53
        return Float((-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2))
    }
}
