internal import CQGEMM
import Foundation

/// Weights packed once for every kernel path, with everything the epilogue needs
/// per output channel.
///
/// Holds, for W [N×K] (N output channels, K inputs):
/// - the int8 weights in the shared packed layout (`Sources/CQGEMM/KERNELS.md`),
///   padded to 16 channels and a multiple of 4 in K, repacked once into the
///   layout of a path that declares its own (panel width × K group);
/// - ``rowSums``: `Σ_k q_W[n,k]`;
/// - when the input's parameters are known (static quantization), ``qBias``:
///   `q_b[n] − Z_X·rowSum[n]`, and with output parameters one
///   ``FixedPointMultiplier`` per channel.
///
/// Construction checks the accumulator overflow bound for every channel:
/// `255·Σ_k |q_W[n,k]| + |q_b[n]| ≤ 2^31 − 1`, independent of Z_X and of the
/// kernel path. Instances are immutable and safe to share between threads.
///
/// On Linux, packed weights of 2 MiB or more are aligned to 2 MiB and ask for
/// transparent huge pages (`madvise`) before they are written: a decode step
/// streams every weight from memory, and 2 MiB pages spare it a TLB miss every
/// 4 KiB. Where the system's setting is `never`, nothing changes; results
/// never depend on it.
///
/// ```swift
/// let w: [Float] = ...            // 64 × 256, row-major [N×K]
/// let packed = try PackedWeights(
///     quantizing: w, outputChannels: 64, inputChannels: 256, granularity: .perChannel,
///     input: try QuantizationParameters(observedMin: -2, observedMax: 6, type: .uint8),
///     output: try QuantizationParameters(observedMin: -10, observedMax: 10, type: .int8))
/// ```
public final class PackedWeights: @unchecked Sendable {
    /// How the caller's weight matrix is laid out in memory.
    public enum Layout: String, Sendable {
        /// Row-major [N×K]: output channel n is row n (torch.nn.Linear, TFLite).
        case outputMajor
        /// Row-major [K×N]: the transpose.
        case inputMajor
    }

    /// One weight scale, or one per output channel.
    public enum Granularity: String, Sendable {
        /// One scale S_W shared by every output channel.
        case perTensor
        /// One scale S_W[n] per output channel.
        case perChannel
    }

    /// The scales S_W of int8 weights handed in directly.
    public enum WeightScales: Sendable {
        /// One scale for every output channel; finite and > 0.
        case perTensor(Float)
        /// One scale per output channel (N values), each finite and > 0.
        case perChannel([Float])
    }

    /// An optional bias, per output channel.
    public enum Bias: Sendable {
        /// Already quantized with scale `S_X·S_W[n]` (zero point 0).
        case int32([Int32])
        /// Float; quantized to `round-half-away(b / (S_X·S_W[n]))` when the
        /// input parameters are known, and added in Float to Float outputs.
        case float([Float])
    }

    /// N.
    public let outputChannels: Int
    /// K.
    public let inputChannels: Int
    /// Whether the weight scales are per tensor or per channel.
    public let granularity: Granularity
    /// S_W per output channel (the same value N times for per-tensor weights).
    public let weightScales: [Float]
    /// The largest of ``weightScales``: Float output multiplies every
    /// channel's scale by S_X, which overflows for none when it does not for this one.
    let largestWeightScale: Float
    /// Input parameters fixed at pack time (static quantization), if any.
    public let inputParameters: QuantizationParameters?
    /// Output parameters for requantized outputs, if any.
    public let outputParameters: QuantizationParameters?
    /// Requantization mode for int8 / uint8 outputs.
    public let rounding: RoundingMode
    /// Output clamp in the quantized domain (a fused ReLU / ReLU6), or the
    /// output type's full range.
    public let clamp: ClosedRange<Int32>?
    /// One fixed-point multiplier per channel (`S_X·S_W[n]/S_Y`), when input and
    /// output parameters are known.
    public let multipliers: [FixedPointMultiplier]?
    /// The Float bias as given, if the bias was given as Float.
    public let floatBias: [Float]?
    /// Whether the bias was given as int32 with a nonzero entry (its scale
    /// S_X·S_W rules out per-row dynamic scales); decided once, here.
    let hasNonzeroInt32Bias: Bool

    let storage: Storage

    // MARK: Public per-channel arrays

    /// `Σ_k q_W[n,k]` per output channel.
    public var rowSums: [Int32] { Array(UnsafeBufferPointer(start: storage.rowSum, count: outputChannels)) }

    /// The quantized bias `q_b[n]` (all zero when there is no bias), when it is
    /// known: given as int32, or given as Float with input parameters.
    public var quantizedBias: [Int32]? {
        storage.hasQuantizedBias ? Array(UnsafeBufferPointer(start: storage.qb, count: outputChannels)) : nil
    }

    /// `q_bias[n] = q_b[n] − Z_X·rowSum[n]`, when the input parameters were given.
    public var qBias: [Int32]? {
        inputParameters == nil ? nil : Array(UnsafeBufferPointer(start: storage.qBias, count: outputChannels))
    }

    /// The int8 weight W[n][k], read back through the packed layout.
    ///
    /// - Throws: ``QGEMMError/Code/invalidArgument`` when `n` or `k` is out of range.
    public func weight(outputChannel n: Int, input k: Int) throws(QGEMMError) -> Int8 {
        guard (0..<outputChannels).contains(n), (0..<inputChannels).contains(k) else {
            throw QGEMMError(.invalidArgument,
                             "weight index [\(n), \(k)] is outside [0..<\(outputChannels), 0..<\(inputChannels)]")
        }
        return storage.packed[Int(qg_packed_index(Int64(n), Int64(k), Int64(storage.kp)))]
    }

    /// Bytes of packed int8 weights (padded to the kernel tile).
    public var packedByteCount: Int { storage.packedBytes }

    // MARK: Initializers

    /// Packs int8 weights.
    ///
    /// - Parameters:
    ///   - weights: N·K int8 values (−128 is accepted; the overflow check uses its magnitude).
    ///   - outputChannels: N ≥ 1.
    ///   - inputChannels: K ≥ 1.
    ///   - layout: ``Layout/outputMajor`` for [N×K], ``Layout/inputMajor`` for [K×N].
    ///   - scales: S_W, per tensor or N per-channel values, finite and > 0.
    ///   - bias: optional, N values.
    ///   - input: the input's parameters for static quantization.
    ///   - output: the output's parameters for requantized outputs (needs `input`).
    ///   - rounding: the requantization mode.
    ///   - clamp: output clamp within the output type's range (needs `output`).
    /// - Throws: ``QGEMMError`` for any invalid argument or when the
    ///   accumulator could overflow.
    public convenience init(
        weights: [Int8], outputChannels: Int, inputChannels: Int, layout: Layout = .outputMajor,
        scales: WeightScales, bias: Bias? = nil,
        input: QuantizationParameters? = nil, output: QuantizationParameters? = nil,
        rounding: RoundingMode = .singleRounding, clamp: ClosedRange<Int32>? = nil
    ) throws {
        try Self.checkShape(count: weights.count, n: outputChannels, k: inputChannels)
        let n = outputChannels
        let perChannel: [Float]
        let granularity: Granularity
        switch scales {
        case .perTensor(let s):
            try Self.checkWeightScale(s, channel: nil)
            perChannel = [Float](repeating: s, count: n)
            granularity = .perTensor
        case .perChannel(let s):
            guard s.count == n else {
                throw QGEMMError(.invalidShape, "\(s.count) per-channel scales given for \(n) output channels")
            }
            for (i, v) in s.enumerated() { try Self.checkWeightScale(v, channel: i) }
            perChannel = s
            granularity = .perChannel
        }
        try self.init(validatedWeights: weights, n: n, k: inputChannels, layout: layout,
                      scales: perChannel, granularity: granularity, bias: bias,
                      input: input, output: output, rounding: rounding, clamp: clamp)
    }

    /// Quantizes Float weights symmetrically (`scale = absMax/127`, zero point 0,
    /// values in −127...127), per tensor or per output channel, and packs them.
    /// The Float weights are not kept.
    ///
    /// - Throws: ``QGEMMError/Code/invalidValue`` for a NaN or infinite weight,
    ///   and everything ``init(weights:outputChannels:inputChannels:layout:scales:bias:input:output:rounding:clamp:)`` throws.
    public convenience init(
        quantizing weights: [Float], outputChannels: Int, inputChannels: Int, layout: Layout = .outputMajor,
        granularity: Granularity = .perChannel, bias: Bias? = nil,
        input: QuantizationParameters? = nil, output: QuantizationParameters? = nil,
        rounding: RoundingMode = .singleRounding, clamp: ClosedRange<Int32>? = nil
    ) throws {
        try Self.checkShape(count: weights.count, n: outputChannels, k: inputChannels)
        let n = outputChannels, k = inputChannels
        func index(_ row: Int, _ col: Int) -> Int { layout == .outputMajor ? row * k + col : col * n + row }
        var absMax = [Float](repeating: 0, count: n)
        for row in 0..<n {
            var m: Float = 0
            for col in 0..<k {
                let v = weights[index(row, col)]
                guard v.isFinite else { throw Self.nonFiniteWeight(v, row: row, column: col) }
                m = max(m, abs(v))
            }
            absMax[row] = m
        }
        let params: [QuantizationParameters]
        switch granularity {
        case .perTensor:
            let p = try QuantizationParameters.symmetricWeights(absMax: absMax.max() ?? 0)
            params = [QuantizationParameters](repeating: p, count: n)
        case .perChannel:
            params = try absMax.map { try QuantizationParameters.symmetricWeights(absMax: $0) }
        }
        var q = [Int8](repeating: 0, count: n * k)
        for row in 0..<n {
            for col in 0..<k {
                let v = params[row].quantizeNonNaN(weights[index(row, col)])
                q[row * k + col] = Int8(min(max(v, -127), 127))
            }
        }
        try self.init(validatedWeights: q, n: n, k: k, layout: .outputMajor,
                      scales: params.map(\.scale), granularity: granularity, bias: bias,
                      input: input, output: output, rounding: rounding, clamp: clamp)
    }

    private init(
        validatedWeights weights: [Int8], n: Int, k: Int, layout: Layout,
        scales: [Float], granularity: Granularity, bias: Bias?,
        input: QuantizationParameters?, output: QuantizationParameters?,
        rounding: RoundingMode, clamp: ClosedRange<Int32>?
    ) throws {
        if output != nil && input == nil {
            throw QGEMMError(.incompatibleParameters,
                             "output parameters need the input parameters too (the multiplier is S_X·S_W/S_Y)")
        }
        if let clamp {
            guard let output else {
                throw QGEMMError(.incompatibleParameters, "a clamp needs output parameters (it applies to requantized outputs)")
            }
            guard output.type.range.contains(clamp.lowerBound), output.type.range.contains(clamp.upperBound) else {
                throw QGEMMError(.invalidArgument,
                                 "clamp \(clamp.lowerBound)...\(clamp.upperBound) is outside the \(output.type.rawValue) range \(output.type.min)...\(output.type.max)")
            }
        }
        // Quantized bias q_b, when it can be known.
        var qb: [Int64]? = nil
        var floatBias: [Float]? = nil
        switch bias {
        case nil:
            break
        case .int32(let b):
            try Self.checkBiasCount(b.count, n: n)
            qb = b.map(Int64.init)
        case .float(let b):
            try Self.checkFloatBias(b, n: n)
            floatBias = b
            if let input {
                // Derived values (q_b here, the multipliers below) round to
                // nearest whatever the caller's mode, as the layer loaders
                // derive them: a layer saved and loaded is the same layer.
                qb = try withRoundingToNearest { try b.indices.map { i in
                    let q = (Double(b[i]) / (Double(input.scale) * Double(scales[i]))).roundedHalfAway
                    guard abs(q) <= Double(Int32.max) else {
                        throw QGEMMError(.accumulatorOverflow,
                                         "bias [\(i)] = \(b[i]) quantizes to \(q), outside int32 (scale S_X·S_W = \(Double(input.scale) * Double(scales[i])))")
                    }
                    return Int64(q)
                } }
            }
        }

        // Packing pads N to whole panels (16 times the weights at N = 1) and
        // keeps eight per-channel arrays: refused past the memory this
        // process may use, as a result array is, where allocating traps.
        try checkResultFits(Int(qg_packed_size(Int64(n), Int64(k))) + 32 * Int(qg_packed_n(Int64(n))) + 16 * n, of: UInt8.self,
                            "the packed weights of N = \(n), K = \(k)")
        let storage = Storage(n: n, k: k)
        var rowSum64 = [Int64](repeating: 0, count: n)
        var absSum64 = [Int64](repeating: 0, count: n)
        weights.withUnsafeBufferPointer { w in
            rowSum64.withUnsafeMutableBufferPointer { rs in
                absSum64.withUnsafeMutableBufferPointer { ab in
                    let (ns, ks): (Int64, Int64) = layout == .outputMajor ? (Int64(k), 1) : (1, Int64(n))
                    qg_pack_weights(w.baseAddress!, ns, ks, Int64(n), Int64(k), storage.packed, rs.baseAddress!, ab.baseAddress!)
                }
            }
        }
        // The accumulator overflow bound (KERNELS.md, "The problem"), per channel.
        let limit = Int64(Int32.max)
        for i in 0..<n {
            let bound = 255 * absSum64[i] + abs(qb?[i] ?? 0)
            guard bound <= limit else {
                throw QGEMMError(.accumulatorOverflow,
                                 "output channel \(i): 255·Σ|q_W| + |q_b| = 255·\(absSum64[i]) + \(abs(qb?[i] ?? 0)) = \(bound) exceeds 2^31 − 1; the int32 accumulator could overflow (use fewer inputs per channel or smaller weights)")
            }
        }
        for i in 0..<n {
            storage.rowSum[i] = Int32(rowSum64[i])
            storage.qb[i] = Int32(qb?[i] ?? 0)
            storage.weightScale[i] = scales[i]
            storage.floatBias[i] = floatBias?[i] ?? 0
            // |q_b − Z_X·rowSum| ≤ |q_b| + 255·Σ|q_W| ≤ 2^31 − 1, checked above.
            storage.qBias[i] = Int32(Int64(storage.qb[i]) - Int64(input?.zeroPoint ?? 0) * rowSum64[i])
        }
        storage.hasQuantizedBias = qb != nil || bias == nil

        var multipliers: [FixedPointMultiplier]? = nil
        if let input, let output {
            var list: [FixedPointMultiplier] = []
            list.reserveCapacity(n)
            try withRoundingToNearest { for i in 0..<n {
                let real = Double(input.scale) * Double(scales[i]) / Double(output.scale)
                let m = try FixedPointMultiplier(real)
                list.append(m)
                storage.multiplier[i] = m.multiplier
                storage.shift[i] = m.shift
                // .float's multiplier: S_X·S_W/S_Y in two Float steps, as
                // ONNX Runtime and XNNPACK compute it (the same bits: a
                // multiplier rounded once differs in its last bit for about
                // a quarter of channels). Where those steps lose the quotient,
                // S_X·S_W underflowing to 0 (1e-23·1e-23: every output Z_Y)
                // or overflowing (2e19·2e19, though with S_Y = 2.5e36 the
                // quotient is 160), it
                // is the quotient taken in Double and rounded to Float. Only
                // .float uses it, so only .float refuses one past Float's largest.
                let steps = input.scale * scales[i] / output.scale
                let f = steps.isFinite && (steps != 0 || real == 0) ? steps : Float(real)
                if rounding == .float, !f.isFinite {
                    throw QGEMMError(.invalidScale,
                                     "channel \(i): S_X·S_W/S_Y = \(input.scale)·\(scales[i])/\(output.scale) overflows Float")
                }
                storage.floatMultiplier[i] = f.isFinite ? f : 0
            } }
            multipliers = list
        }

        self.outputChannels = n
        self.inputChannels = k
        self.granularity = granularity
        self.weightScales = scales
        self.largestWeightScale = scales.max() ?? 0
        self.inputParameters = input
        self.outputParameters = output
        self.rounding = rounding
        self.clamp = output.map { clamp ?? $0.type.range }
        self.multipliers = multipliers
        self.floatBias = floatBias
        if case .int32(let b) = bias { self.hasNonzeroInt32Bias = b.contains { $0 != 0 } } else { self.hasNonzeroInt32Bias = false }
        self.storage = storage
    }

    /// The Float weights' and bias's value and count rules, one wording for
    /// every caller that reads them (packing, smoothing, calibration, the
    /// 4-bit weights).
    static func nonFiniteWeight(_ v: Float, row: Int, column: Int) -> QGEMMError {
        QGEMMError(.invalidValue, "weight [\(row), \(column)] is \(v); weights must be finite")
    }

    /// The first weight of row-major [N×K] `weights` that is not finite, as
    /// ``nonFiniteWeight(_:row:column:)``.
    static func checkFiniteWeights(_ weights: [Float], inputChannels k: Int) throws(QGEMMError) {
        if let i = weights.firstIndex(where: { !$0.isFinite }) { throw nonFiniteWeight(weights[i], row: i / k, column: i % k) }
    }

    static func checkBiasCount(_ count: Int, n: Int) throws(QGEMMError) {
        guard count == n else { throw QGEMMError(.invalidShape, "bias has \(count) values for \(n) output channels") }
    }

    static func checkFiniteBias(_ bias: [Float]) throws(QGEMMError) {
        if let i = bias.firstIndex(where: { !$0.isFinite }) {
            throw QGEMMError(.invalidValue, "bias [\(i)] is \(bias[i]); a bias must be finite")
        }
    }

    /// A Float bias: its count, then its values.
    static func checkFloatBias(_ bias: [Float], n: Int) throws(QGEMMError) {
        try checkBiasCount(bias.count, n: n)
        try checkFiniteBias(bias)
    }

    /// Float outputs are `Float(acc)·(S_X·S_W[n])`: a product that overflows
    /// Float would give ±inf, and NaN where acc is 0, in the channels it
    /// overflows with (rounding is monotone, so the largest S_W's product
    /// bounds every channel's). Checked per call for Float output, for each
    /// row of a dynamic call, and when a static-input layer is built or
    /// loaded (which would otherwise refuse every call). `what` names the
    /// route or row in the message; it is only formed for the refusal, so a
    /// loop over rows builds no string.
    func checkScaleProduct(_ inputScale: Float, for what: @autoclosure () -> String) throws(QGEMMError) {
        guard (inputScale * largestWeightScale).isFinite else {
            throw QGEMMError(.invalidScale, "\(what()): S_X·S_W = \(inputScale)·\(largestWeightScale) overflows Float")
        }
    }

    /// The weights' shape rule, also for callers that read the weights before
    /// packing them (smoothing).
    static func checkShape(count: Int, n: Int, k: Int) throws(QGEMMError) {
        guard n >= 1, k >= 1 else {
            throw QGEMMError(.invalidShape, "weights need at least 1 output and 1 input channel, got N = \(n), K = \(k)")
        }
        let (nk, overflow) = n.multipliedReportingOverflow(by: k)
        guard !overflow, nk == count else {
            throw QGEMMError(.invalidShape, "weights hold \(count) values, but N×K = \(n)×\(k)\(overflow ? " overflows" : " = \(nk)")")
        }
    }

    private static func checkWeightScale(_ s: Float, channel: Int?) throws {
        guard s.isFinite, s > 0 else {
            let name = channel.map { "weight scale [\($0)]" } ?? "the weight scale"
            throw QGEMMError(.invalidScale, "\(name) is \(s); weight scales must be finite and > 0")
        }
    }
}

/// Raw, 64-byte-aligned memory behind a PackedWeights: the packed int8 panel
/// data and the per-channel arrays the C kernels read.
final class Storage {
    let n: Int, k: Int, kp: Int, packedBytes: Int
    let packed: UnsafeMutablePointer<Int8>
    let rowSum, qb, qBias, multiplier, shift: UnsafeMutablePointer<Int32>
    let weightScale, floatMultiplier, floatBias: UnsafeMutablePointer<Float>
    var hasQuantizedBias = false

    init(n: Int, k: Int) {
        self.n = n
        self.k = k
        self.kp = Int(qg_packed_k(Int64(k)))
        self.packedBytes = Int(qg_packed_size(Int64(n), Int64(k)))
        func alloc<T>(_ count: Int, _: T.Type) -> UnsafeMutablePointer<T> {
            let raw = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1) * MemoryLayout<T>.stride, alignment: 64)
            let p = raw.bindMemory(to: T.self, capacity: max(count, 1))
            return p
        }
        packed = allocateHugePageAligned(packedBytes).bindMemory(to: Int8.self, capacity: max(packedBytes, 1))
        // Per-channel arrays are padded to whole panels: the SIMD epilogues
        // read whole vectors of channels (qg_gemm in qgemm.h).
        let np = Int(qg_packed_n(Int64(n)))
        rowSum = alloc(np, Int32.self); rowSum.initialize(repeating: 0, count: np)
        qb = alloc(np, Int32.self); qb.initialize(repeating: 0, count: np)
        qBias = alloc(np, Int32.self); qBias.initialize(repeating: 0, count: np)
        multiplier = alloc(np, Int32.self); multiplier.initialize(repeating: 0, count: np)
        shift = alloc(np, Int32.self); shift.initialize(repeating: 0, count: np)
        weightScale = alloc(np, Float.self); weightScale.initialize(repeating: 0, count: np)
        floatMultiplier = alloc(np, Float.self); floatMultiplier.initialize(repeating: 0, count: np)
        floatBias = alloc(np, Float.self); floatBias.initialize(repeating: 0, count: np)
    }

    /// Weights repacked for kernels that read a layout of their own, keyed by
    /// (panel_n, kr); made on first use under `layoutLock`, kept until deinit.
    private var otherLayouts: [Layout: (weights: UnsafeMutablePointer<Int8>, kp: Int)] = [:]
    private let layoutLock = NSLock()

    struct Layout: Hashable { let panelN: Int32, kr: Int32 }

    /// The weights in `layout` and K padded to its group: the shared packing,
    /// or a copy repacked on first use.
    func weights(in layout: Layout) -> (weights: UnsafePointer<Int8>, kp: Int) {
        if layout.panelN == Int32(QG_PANEL_N) && layout.kr == Int32(QG_K_GROUP) { return (UnsafePointer(packed), kp) }
        layoutLock.lock()
        defer { layoutLock.unlock() }
        if let found = otherLayouts[layout] { return (UnsafePointer(found.weights), found.kp) }
        let bytes = Int(qg_layout_size(Int64(n), Int64(k), layout.panelN, layout.kr))
        let out = allocateHugePageAligned(bytes).bindMemory(to: Int8.self, capacity: max(bytes, 1))
        qg_repack_weights(packed, Int64(n), Int64(k), layout.panelN, layout.kr, out)
        let entry = (weights: out, kp: Int(qg_layout_k(Int64(k), layout.kr)))
        otherLayouts[layout] = entry
        return (UnsafePointer(entry.weights), entry.kp)
    }

    deinit {
        for entry in otherLayouts.values { entry.weights.deallocate() }
        for p in [UnsafeMutableRawPointer(packed), UnsafeMutableRawPointer(rowSum), UnsafeMutableRawPointer(qb),
                  UnsafeMutableRawPointer(qBias), UnsafeMutableRawPointer(multiplier), UnsafeMutableRawPointer(shift),
                  UnsafeMutableRawPointer(weightScale),
                  UnsafeMutableRawPointer(floatMultiplier), UnsafeMutableRawPointer(floatBias)] {
            p.deallocate()
        }
    }
}
