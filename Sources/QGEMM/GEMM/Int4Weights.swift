internal import CQGEMM

/// Group-wise 4-bit weights, packed once, for `Y = X·Wᵀ + b` with
/// activations quantized per row at call time (W4A8): int8, or uint8 with a
/// zero point per row (``Activations``).
///
/// Each output channel's K inputs are cut into groups of ``groupSize``; each
/// group has its own Float scale `S_W[n, g]` and int4 values `q_W ∈ [−8, 7]`
/// (symmetric, no zero point). By default a call quantizes each row of X to int8
/// symmetrically (`S_X = absMax/127`, rounded up where that is subnormal as
/// ``QuantizationParameters``' scales are; round half away from zero), sums each
/// group exactly in int32 and combines the groups in Float, in a fixed order:
///
///     acc_g = Σ_{k∈g} q_W[n,k]·q_X[m,k]
///     s = 0;  for g in 0, 1, …:  s = fma(S_W[n,g], Float(acc_g), s)
///     y[m,n] = fma(S_X[m], s, b[n])
///
/// With ``Activations/uint8`` each row is quantized to uint8 with its own
/// zero point instead (`S_X`, `Z_X` as ``QuantizedLinear``'s dynamic per-row
/// int8 layers choose them), and the zero point is taken back once per
/// output through each channel's weight sum `c[n]` (see ``Activations``):
///
///     acc_g = Σ_{k∈g} q_W[n,k]·(q_X[m,k] − 128)
///     s = 0;  for g in 0, 1, …:  s = fma(S_W[n,g], Float(acc_g), s)
///     c[n] = 0;  for g in 0, 1, …:  c[n] = fma(S_W[n,g], Float(Σ_{k∈g} q_W[n,k]), c[n])
///     y[m,n] = fma(S_X[m], fma(Float(128 − Z_X[m]), c[n], s), b[n])
///
/// Every kernel path gives these bits (the README's "4-bit weights" and
/// `KERNELS.md` state the contract). Packed weights take half the bytes of
/// int8 ones, which is what decode-bound layers (M = 1…8) are limited by.
/// Like ``PackedWeights``, packed nibbles and scales of 2 MiB or more are aligned to
/// 2 MiB and ask Linux for transparent huge pages before they are written.
public final class Int4Weights: Sendable {
    /// N: outputs per row.
    public let outputChannels: Int
    /// K: inputs per row.
    public let inputChannels: Int
    /// K values per scale (a multiple of 8 from 8 to 4096).
    public let groupSize: Int
    /// The scales, `[n * groupCount + g]`: binary16 values (every scale is
    /// stored in half precision), given here as Float.
    public let scales: [Float]
    /// The Float bias, if any.
    public let bias: [Float]?
    /// Per-input-channel factors `s_j` (AWQ-style scaling): the stored values
    /// are those of `W·diag(s)`, and each call divides its input's channels by
    /// `s_j` before quantizing the rows. nil: none.
    public let smoothing: Smoothing?
    /// How a call quantizes its input rows: symmetric int8 (the default) or
    /// uint8 with a zero point per row.
    public let activations: Activations

    /// How a call quantizes each row of its input before the 4-bit product.
    public enum Activations: String, Sendable, CaseIterable {
        /// Symmetric int8: `S_X = absMax/127`, `Z_X = 0`, values in −127...127.
        case int8
        /// uint8 with a zero point per row, the rule of ``QuantizedLinear``'s
        /// dynamic per-row layers: the row's range widened to hold 0, `S_X =
        /// (max − min)/255`, `Z_X = −min/S_X` rounded half away from zero,
        /// values in 0...255. A row that is far from symmetric (the input of
        /// a layer after a ReLU or GELU) keeps twice the levels it gets from
        /// ``int8``. The tiles run the ``int8`` product on `q_X − 128`, and
        /// the zero point comes back as `(128 − Z_X)·c[n]`, one fused
        /// multiply-add per output, where `c[n]` (each channel's
        /// Σ_g S_W·Σ_{k∈g} q_W) is taken once when the weights are built; the
        /// result differs from the exact sum of its groups only by Float
        /// rounding.
        case uint8
    }

    /// Groups per output channel: ⌈K / groupSize⌉ (the last may be shorter).
    public var groupCount: Int { (inputChannels + groupSize - 1) / groupSize }
    /// The group the C core packs and runs with: the group size, or K
    /// rounded up to a multiple of 8 when the group is longer than K. Either
    /// way each channel is one group with the same sums and scale, but the
    /// longer group would pad every channel, and every prepared input row,
    /// to the whole group: 2 KiB per channel for one weight at group 4096,
    /// which a small file could make into gigabytes.
    var packingGroup: Int64 { Self.packingGroup(groupSize, k: inputChannels) }
    static func packingGroup(_ group: Int, k: Int) -> Int64 { Int64(Swift.min(group, (k + 7) / 8 * 8)) }
    /// Bytes of the packed nibbles (half a byte per weight, N and K padded).
    public var packedByteCount: Int { packed.count }
    /// Bytes of the packed binary16 scales (one per padded channel and group).
    /// A call reads ``packedByteCount`` plus these from memory once (once per
    /// block of rows when M is large).
    public var packedScaleByteCount: Int { packedScales.count * MemoryLayout<UInt16>.size }

    let packed: HugePageArray<UInt8>
    let packedScales: HugePageArray<UInt16>
    /// The bias padded to whole 16-channel panels (the kernels read vectors).
    let paddedBias: [Float]?
    /// With ``Activations/uint8``: each channel's weight sum `c[n]`
    /// (`qg_w4_weight_sums`), padded as the bias is; nil with ``Activations/int8``.
    let weightSums: [Float]?

    /// The packed nibbles and binary16 scales, as the kernels read them: what
    /// `qgemm bench` reads plainly to judge how fast a call streams them.
    package func withPackedBytes<R>(_ body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try packed.withUnsafeBytes { w in try packedScales.withUnsafeBytes { s in try body(w, s) } }
    }

    /// Packs int4 values already quantized (from a GPTQ, AWQ or Q4_0
    /// checkpoint, say), row-major `[N×K]`, with their group scales.
    ///
    /// - Parameters:
    ///   - values: `q_W`, each in −8...7.
    ///   - scales: `S_W[n * groupCount + g]`, finite and ≥ 0, rounded to
    ///     binary16 (to nearest even) when packed; ``scales`` gives the
    ///     rounded values. A scale that rounds to 0 makes its group 0.
    ///   - outputChannels: N ≥ 1.
    ///   - inputChannels: K ≥ 1.
    ///   - groupSize: K values per scale, a multiple of 8 from 8 to 4096.
    ///   - bias: optional Float bias `[N]`, finite.
    ///   - smoothing: optional factors `s_j`, one per input channel, when the
    ///     values are those of `W·diag(s)` (see ``smoothing``).
    ///   - activations: how calls quantize their input rows (default ``Activations/int8``).
    /// - Throws: ``QGEMMError`` naming the first bad shape, value or scale.
    public init(values: [Int8], scales: [Float], outputChannels: Int, inputChannels: Int, groupSize: Int,
                bias: [Float]? = nil, smoothing: Smoothing? = nil, activations: Activations = .int8) throws(QGEMMError) {
        try Self.checkShape(count: values.count, n: outputChannels, k: inputChannels, group: groupSize)
        let groups = (inputChannels + groupSize - 1) / groupSize
        guard scales.count == outputChannels * groups else {
            throw QGEMMError(.invalidShape,
                             "\(scales.count) scales given for \(outputChannels) channels × \(groups) groups of \(groupSize)")
        }
        if let i = values.firstIndex(where: { $0 < -8 || $0 > 7 }) {
            throw QGEMMError(.invalidValue, "int4 value [\(i / inputChannels), \(i % inputChannels)] is \(values[i]); values must lie in -8...7")
        }
        if let i = scales.firstIndex(where: { !$0.isFinite || $0 < 0 }) {
            throw QGEMMError(.invalidScale, "scale [\(i / groups), \(i % groups)] (channel, group) is \(scales[i]); scales must be finite and ≥ 0")
        }
        let halves = scales.map { qg_f16_from_f32($0) }
        if let i = halves.firstIndex(where: { $0 & 0x7FFF >= 0x7C00 }) {
            throw QGEMMError(.invalidScale, "scale [\(i / groups), \(i % groups)] (channel, group) is \(scales[i]); it rounds past binary16's largest, 65504")
        }
        try Self.checkBias(bias, n: outputChannels)
        if let smoothing, smoothing.factors.count != inputChannels {
            throw QGEMMError(.invalidShape, "\(smoothing.factors.count) smoothing factors for K = \(inputChannels)")
        }
        let n = Int64(outputChannels), k = Int64(inputChannels), g = Self.packingGroup(groupSize, k: inputChannels)
        // Packing pads N to whole panels of 16 (16 times the nibbles at
        // N = 1): refused past the memory this process may use, as
        // PackedWeights refuses its padded copy, where allocating traps.
        try checkResultFits(Int(qg_w4_packed_bytes(n, k, g)) + 2 * Int(qg_w4_scale_count(n, k, g)), of: UInt8.self,
                            "the packed 4-bit weights of N = \(outputChannels), K = \(inputChannels)")
        self.smoothing = smoothing
        self.activations = activations
        self.outputChannels = outputChannels
        self.inputChannels = inputChannels
        self.groupSize = groupSize
        self.scales = halves.map { qg_f32_from_f16($0) }
        self.bias = bias
        let packed = HugePageArray<UInt8>(zeros: Int(qg_w4_packed_bytes(n, k, g)))
        let packedScales = HugePageArray<UInt16>(zeros: Int(qg_w4_scale_count(n, k, g)))
        values.withUnsafeBufferPointer { q in
            halves.withUnsafeBufferPointer { s in
                packed.withUnsafeMutableBufferPointer { p in
                    packedScales.withUnsafeMutableBufferPointer { ps in
                        qg_w4_pack(q.baseAddress, k, n, k, g, s.baseAddress, p.baseAddress, ps.baseAddress)
                    }
                }
            }
        }
        self.packed = packed
        self.packedScales = packedScales
        paddedBias = bias.map { $0 + [Float](repeating: 0, count: Int(qg_packed_n(n)) - outputChannels) }
        weightSums = Self.weightSums(for: activations, packed, packedScales, n: n, k: k, group: g)
    }

    /// The weights of `other`, their packed bytes shared (read-only once
    /// built), with calls quantizing rows as `activations` says.
    private init(_ other: Int4Weights, activations: Activations) {
        outputChannels = other.outputChannels
        inputChannels = other.inputChannels
        groupSize = other.groupSize
        scales = other.scales
        bias = other.bias
        smoothing = other.smoothing
        self.activations = activations
        packed = other.packed
        packedScales = other.packedScales
        paddedBias = other.paddedBias
        weightSums = Self.weightSums(for: activations, packed, packedScales, n: Int64(outputChannels),
                                     k: Int64(inputChannels), group: other.packingGroup)
    }

    /// Each channel's weight sum `c[n]` (qg_w4_weight_sums) where
    /// `activations` needs them (``Activations/uint8``), else nil.
    private static func weightSums(for activations: Activations, _ packed: HugePageArray<UInt8>,
                                   _ packedScales: HugePageArray<UInt16>, n: Int64, k: Int64, group: Int64) -> [Float]? {
        guard activations == .uint8 else { return nil }
        return packed.withUnsafeBufferPointer { p in
            packedScales.withUnsafeBufferPointer { ps in
                [Float](unsafeUninitializedCapacity: Int(qg_packed_n(n))) { sums, count in
                    qg_w4_weight_sums(p.baseAddress, ps.baseAddress, n, k, group, sums.baseAddress)
                    count = Int(qg_packed_n(n))
                }
            }
        }
    }

    /// The same weights, scales, bias and smoothing with calls quantizing
    /// their input rows as `activations` says. The packed bytes are shared,
    /// not copied; smoothing factors and values from
    /// ``searchingScales(weights:outputChannels:inputChannels:groupSize:bias:calibrationInput:rows:steps:groupScales:errorCompensation:activations:threads:)``
    /// stay those chosen for the rows it ran with (pass `activations:` to
    /// the search to choose them for these rows).
    public func with(activations: Activations) -> Int4Weights {
        activations == self.activations ? self : Int4Weights(self, activations: activations)
    }

    /// Quantizes Float weights, row-major `[N×K]`, group by group with the
    /// absolute maximum: `S_W = absMax/7` and `q_W = round-half-away(w/S_W)`,
    /// so values lie in −7...7 (the format's −8 is never produced: a
    /// symmetric range keeps `−w` quantized as `−q`). A group of zeros gets
    /// scale 0.
    ///
    /// With `smoothing`, the weights quantized are `W·diag(s)`; `groupScales`
    /// ``GroupScales/minimizingError`` searches each group's scale instead.
    /// Scales are binary16: a group whose scale rounds to 0 there (at most
    /// 2^-25, half its smallest value: weights under about 2·10^-7) is stored
    /// as zeros, and one whose scale rounds past its largest (65504; with
    /// ``GroupScales/absMax``, absMax/7 from 65520 on) is refused;
    /// ``GroupScales/minimizingError`` takes the best of its candidates that
    /// fits and refuses a group only when none does (absMax/14 past 65504).
    ///
    /// `activations` says how calls quantize their input rows (default ``Activations/int8``).
    ///
    /// - Throws: ``QGEMMError/Code/invalidValue`` for a NaN or infinite weight,
    ///   a finite weight that its smoothing factor makes infinite, or a group
    ///   whose scale does not fit binary16,
    ///   and what ``init(values:scales:outputChannels:inputChannels:groupSize:bias:smoothing:activations:)`` throws.
    public convenience init(quantizing weights: [Float], outputChannels: Int, inputChannels: Int, groupSize: Int = 32,
                            bias: [Float]? = nil, smoothing: Smoothing? = nil,
                            groupScales: GroupScales = .absMax, activations: Activations = .int8) throws(QGEMMError) {
        try Self.checkShape(count: weights.count, n: outputChannels, k: inputChannels, group: groupSize)
        try PackedWeights.checkFiniteWeights(weights, inputChannels: inputChannels)
        if let smoothing, smoothing.factors.count != inputChannels {
            throw QGEMMError(.invalidShape, "\(smoothing.factors.count) smoothing factors for K = \(inputChannels)")
        }
        let scaled = try smoothing?.scaleFiniteWeights(weights, outputChannels: outputChannels) ?? weights
        let (values, scales) = Self.quantizeGroups(scaled, n: outputChannels, k: inputChannels, group: groupSize, rule: groupScales)
        let groups = (inputChannels + groupSize - 1) / groupSize
        if let i = scales.firstIndex(where: { !$0.isFinite }) {
            throw QGEMMError(.invalidValue, "weights of channel \(i / groups), group \(i % groups) are too large for a binary16 scale "
                             + (groupScales == .absMax ? "(absMax/7 rounds past 65504)" : "(no candidate, down to absMax/14, fits under 65504)"))
        }
        try self.init(values: values, scales: scales, outputChannels: outputChannels, inputChannels: inputChannels,
                      groupSize: groupSize, bias: bias, smoothing: smoothing, activations: activations)
    }

    /// How many α values ``searchingScales(weights:outputChannels:inputChannels:groupSize:bias:calibrationInput:rows:steps:groupScales:errorCompensation:activations:threads:)``
    /// could try at once: one per worker, at most `tried`, and no more than
    /// hold their candidate weights in a quarter of `memory` bytes; at least
    /// one. The search tries them side by side only where this is the least
    /// of `workers` and `tried`, else one at a time.
    /// A candidate holds at most 6 bytes per weight (the smoothed Float
    /// copy, the int8 values, the packed nibbles) and 12 per group (its
    /// scales in four forms), counted over N padded to whole panels of 16
    /// channels (the caller's `weights` and `groups`), as the packing pads it. It changes only the speed: every α's error is
    /// the same however many run beside it.
    static func searchSideBySide(tried: Int, workers: Int, weights: Int, groups: Int, memory: UInt64) -> Int {
        let perWeight = UInt64(max(weights, 0)).multipliedReportingOverflow(by: 6)
        let perGroup = UInt64(max(groups, 0)).multipliedReportingOverflow(by: 12)
        let perCandidate = perWeight.partialValue.addingReportingOverflow(perGroup.partialValue)
        guard !perWeight.overflow, !perGroup.overflow, !perCandidate.overflow else { return 1 }
        let fit = memory / 4 / max(perCandidate.partialValue, 1)
        return max(1, min(tried, workers, Int(min(fit, UInt64(Int.max)))))
    }

    /// Quantizes Float weights with AWQ-style per-input-channel scaling
    /// (Lin et al., 2024) searched on calibration inputs: for each α in
    /// 0, 1/`steps`, …, 1, the factors `s_j = mean|X_j|^α` (divided by
    /// `sqrt(max·min)` of their nonzero values, so they centre on 1; a channel
    /// that is always 0 gets 1; the powers are the library's own, the same
    /// bits on every machine, as ``Smoothing``'s are) scale the weight columns before the group
    /// quantization (by `groupScales`), and the layer is run, int4 kernels and all, on up
    /// to 256 calibration rows. The α whose output is nearest the Float
    /// layer's (least squared error) wins; α = 0 is no scaling, so the
    /// search never does worse than the unscaled weights (with the same
    /// `groupScales`) on these rows. An α whose scaled weights or inputs do
    /// not fit (a group scale past binary16, an input quotient past Float, a
    /// divided uint8 input row whose grid would end past Float) cannot win
    /// and is passed over; only α = 0's own failure is thrown,
    /// as ``init(quantizing:outputChannels:inputChannels:groupSize:bias:smoothing:groupScales:activations:)``
    /// would throw it.
    ///
    /// - Parameters:
    ///   - weights: Float W, row-major `[N×K]`.
    ///   - outputChannels: N ≥ 1.
    ///   - inputChannels: K ≥ 1.
    ///   - groupSize: K values per scale, a multiple of 8 from 8 to 4096.
    ///   - bias: optional Float bias `[N]`, finite.
    ///   - calibrationInput: Float X `[rows×K]`, inputs the layer will see.
    ///   - rows: the calibration rows, ≥ 1.
    ///   - steps: grid steps for α, from 1 to 1000 (default 20).
    ///   - groupScales: how each group's scale is chosen for every α (AWQ
    ///     clips as well: default ``GroupScales/minimizingError``).
    ///   - errorCompensation: after α is chosen, ``ErrorCompensation/gptq(damping:)``
    ///     quantizes the smoothed weights again with GPTQ-style rounding on
    ///     all the calibration rows (group scales by `groupScales`), and keeps
    ///     that result if its output error on the sampled rows is smaller.
    ///     Default ``ErrorCompensation/none``. It takes K ≤
    ///     ``errorCompensationMaxInputChannels``.
    ///   - activations: how the weights' calls quantize their input rows
    ///     (default ``Activations/int8``); every candidate is run that way.
    ///   - threads: threads for the search, 1...1024 (default: all cores):
    ///     the α values are tried side by side, one a thread, and the Float
    ///     reference output and the error compensation are shared out by rows
    ///     and channels. The result is the same for every thread count. Each α
    ///     tried at once holds its own quantized copy of the weights (up to
    ///     6 bytes per weight and 12 per group, N counted in whole panels of
    ///     16 channels); where a quarter of the memory the process may use
    ///     (the machine's, or a container's lower limit) holds fewer copies
    ///     than the threads or the α values, whichever are fewer, the α values
    ///     are tried one at a time instead, each layer call on every thread.
    ///     Fewer threads bound the memory further.
    /// - Returns: the weights and the α chosen.
    /// - Throws: ``QGEMMError`` for bad shapes or values; with error
    ///   compensation, `.invalidArgument` for a damping outside (0, 10],
    ///   `.invalidShape` for a K above ``errorCompensationMaxInputChannels``
    ///   (and, with or without it, for scratch larger than the memory this
    ///   process may use: the search's reference output takes 8 bytes per
    ///   sample row and output channel, the Hessian 8·K² bytes), and `.invalidValue` for a calibration input that overflows Float once
    ///   divided by its smoothing factor or a Hessian that is not positive
    ///   definite with this damping.
    public static func searchingScales(weights: [Float], outputChannels: Int, inputChannels: Int, groupSize: Int = 32,
                                       bias: [Float]? = nil, calibrationInput: [Float], rows: Int,
                                       steps: Int = 20, groupScales: GroupScales = .minimizingError,
                                       errorCompensation: ErrorCompensation = .none, activations: Activations = .int8,
                                       threads: Int? = nil) throws(QGEMMError)
        -> (weights: Int4Weights, alpha: Float) {
        let n = outputChannels, k = inputChannels, x = calibrationInput
        // In the library's one order (QGEMMError): the shapes, then the
        // arguments, the thread count last of them, then the values. The
        // bias is checked before the search, not after it, though it only
        // joins the chosen weights.
        try checkShape(count: weights.count, n: n, k: k, group: groupSize)
        if let bias { try PackedWeights.checkBiasCount(bias.count, n: n) }
        let (needed, overflow) = rows.multipliedReportingOverflow(by: k)
        guard rows >= 1, !overflow, x.count == needed else {
            throw QGEMMError(.invalidShape, "calibration input holds \(x.count) values, rows×K = \(rows)×\(k)\(overflow ? " overflows Int" : "")")
        }
        if case .gptq = errorCompensation {
            guard k <= errorCompensationMaxInputChannels else {
                throw QGEMMError(.invalidShape, "error compensation takes K ≤ \(errorCompensationMaxInputChannels) (a K×K Hessian), got K = \(k)")
            }
            try checkCompensationScratch(n: n, k: k)
        }
        // Up to 256 rows, spread over the calibration set. The Float layer's
        // output on them, in Double, each sum over K in order (the C core's
        // float layer, its sums not rounded): up to 2 KiB per output channel,
        // far more than the weights at small K, so held to the memory this
        // process may use, as a result array is, and so is the copy of the
        // weights in panels it reads; checked with the shapes.
        let used = min(rows, 256)
        try checkResultFits(used * n, of: Double.self, "the search's reference output (\(used) rows × N = \(n), in Double)")
        let panelCount = Int(qg_float_layer_scratch_count(Int64(k), Int64(n)))
        try checkResultFits(panelCount, of: Float.self, "the search's reference weights in panels (N×K = \(n)×\(k))")
        guard steps >= 1, steps <= 1000 else { throw QGEMMError(.invalidArgument, "steps must be in 1...1000, got \(steps)") }
        try errorCompensation.check()
        let workers = try threadCount(threads)
        if let bias { try PackedWeights.checkFiniteBias(bias) }
        if let i = x.firstIndex(where: { !$0.isFinite }) {
            throw QGEMMError(.invalidValue, "calibration input [\(i / k), \(i % k)] is \(x[i]); calibration inputs must be finite")
        }
        try PackedWeights.checkFiniteWeights(weights, inputChannels: k)
        var sample = [Float](repeating: 0, count: used * k)
        for r in 0..<used {
            let from = r * rows / used
            for j in 0..<k { sample[r * k + j] = x[from * k + j] }
        }
        var meanAbs = [Double](repeating: 0, count: k)
        for r in 0..<rows { for j in 0..<k { meanAbs[j] += Double(abs(x[r * k + j])) } }
        for j in 0..<k { meanAbs[j] /= Double(rows) }
        var want = [Double](repeating: 0, count: used * n)
        var panels = [Float](repeating: 0, count: panelCount)
        want.withUnsafeMutableBufferPointer { out in
            panels.withUnsafeMutableBufferPointer { p in
                qg_float_layer_sums(sample, Int64(used), Int64(k), weights, Int64(n), out.baseAddress, p.baseAddress, Int32(workers))
            }
        }
        // A candidate's squared error against it: what every choice below compares.
        func sampleError(_ candidate: Int4Weights, threads: Int) throws(QGEMMError) -> Double {
            let y = try candidate(sample, rows: used, threads: threads)
            var error = 0.0
            for i in 0..<y.count { error += (Double(y[i]) - want[i]) * (Double(y[i]) - want[i]) }
            return error
        }
        let nonzero = meanAbs.filter { $0 > 0 }
        // The weights the search tries for grid step `step`.
        func candidate(_ step: Int) throws(QGEMMError) -> Int4Weights {
            let alpha = Double(step) / Double(steps)
            var factors = [Float](repeating: 1, count: k)
            if alpha > 0, let lo = nonzero.min(), let hi = nonzero.max() {
                let centre = (ElementaryFunctions.pow(lo, alpha) * ElementaryFunctions.pow(hi, alpha)).squareRoot()
                for j in 0..<k where meanAbs[j] > 0 {
                    let f = Float(ElementaryFunctions.pow(meanAbs[j], alpha) / centre)
                    if f.isFinite, f > 0 { factors[j] = f }
                }
            }
            let smoothing: Smoothing?
            do { smoothing = alpha > 0 ? try Smoothing(factors: factors) : nil } catch {
                throw QGEMMError(.invalidValue, "smoothing factors for α = \(alpha): \(error)")
            }
            return try Int4Weights(quantizing: weights, outputChannels: n, inputChannels: k, groupSize: groupSize,
                                   smoothing: smoothing, groupScales: groupScales, activations: activations)
        }
        // Every step's error, the same bits on any thread count; only the
        // winner's weights are kept, made again below.
        let tried = steps + 1
        // Counted with N padded to whole panels of 16 channels, as the packing
        // pads it (an upper bound for the copies that are not padded).
        let paddedN = (n + 15) / 16 * 16
        let sideBySide = Self.searchSideBySide(tried: tried, workers: workers, weights: paddedN * k,
                                               groups: paddedN * ((k + groupSize - 1) / groupSize), memory: availableMemoryBytes())
        // The steps share the worker pool, whose GEMMs then run on their own
        // thread: side by side only where memory holds a candidate for every
        // thread (or every step, if fewer); else one step at a time, each
        // layer call on every thread (the pool runs one job at a time).
        let together = sideBySide == Swift.min(workers, tried) ? sideBySide : 1
        let callThreads = together > 1 ? 1 : workers
        var errors = [Result<Double, QGEMMError>](repeating: .failure(QGEMMError(.invalidArgument, "no α was tried")),
                                                  count: tried)
        errors.withUnsafeMutableBufferPointer { out in
            forEachChunk(of: tried, threads: together) { stepRange in
                for step in stepRange {
                    do throws(QGEMMError) { out[step] = .success(try sampleError(try candidate(step), threads: callThreads)) }
                    catch { out[step] = .failure(error) }
                }
            }
        }
        // The least error, the first step on a tie. A scaled step that failed
        // for a value that does not fit (.invalidValue: its weights' group
        // scales past binary16, or its inputs divided past Float;
        // .invalidScale: a divided input row whose range has no uint8 grid
        // within Float) cannot win and is passed over: α = 0, the unscaled
        // weights, is the floor the search promises. α = 0's failure, or any
        // other, is thrown, the first in step order, as a loop over the steps
        // would.
        var bestStep = -1, bestError = Double.infinity
        for step in 0..<tried {
            let error: Double
            switch errors[step] {
            case .success(let e): error = e
            case .failure(let e) where step > 0 && (e.code == .invalidValue || e.code == .invalidScale): continue
            case .failure(let e): throw e
            }
            if bestStep >= 0 && bestError <= error { continue }
            (bestStep, bestError) = (step, error)
        }
        var chosen = (weights: try candidate(bestStep), alpha: Float(Double(bestStep) / Double(steps)), error: bestError)
        if case .gptq(let damping) = errorCompensation {
            // On the chosen α's smoothed weights and inputs, every calibration row.
            let smoothing = chosen.weights.smoothing
            let scaled = smoothing.map { $0.scaleWeights(weights, outputChannels: n) } ?? weights
            var inputs = x
            if let smoothing {
                x.withUnsafeBufferPointer { from in
                    inputs.withUnsafeMutableBufferPointer { smoothing.apply(from, rows: rows, into: $0) }
                }
                // x is finite (checked above), but a small factor can make a quotient infinite.
                if let i = inputs.firstIndex(where: { !$0.isFinite }) {
                    throw QGEMMError(.invalidValue, "calibration input [\(i / k), \(i % k)] = \(x[i]) divided by its smoothing factor \(smoothing.factors[i % k]) is \(inputs[i]); calibration inputs must stay finite")
                }
            }
            if let (values, scales) = try compensatingErrors(scaled, n: n, k: k, group: groupSize, calibration: inputs,
                                                             rows: rows, damping: Double(damping), rule: groupScales,
                                                             threads: workers) {
                let candidate = try Int4Weights(values: values, scales: scales, outputChannels: n, inputChannels: k,
                                                groupSize: groupSize, smoothing: smoothing, activations: activations)
                let error = try sampleError(candidate, threads: workers)
                if error < chosen.error { chosen = (candidate, chosen.alpha, error) }
            }
        }
        let withBias = try Int4Weights(values: chosen.weights.values(), scales: chosen.weights.scales, outputChannels: n,
                                       inputChannels: k, groupSize: groupSize, bias: bias, smoothing: chosen.weights.smoothing,
                                       activations: activations)
        return (withBias, chosen.alpha)
    }

    /// Every int4 value, row-major `[N×K]`.
    func values() -> [Int8] {
        let kp = qg_w4_packed_k(Int64(inputChannels), packingGroup)
        return packed.withUnsafeBufferPointer { p in
            (0..<(outputChannels * inputChannels)).map { i in
                qg_w4_packed_value(p.baseAddress, Int64(i / inputChannels), Int64(i % inputChannels), kp)
            }
        }
    }

    /// How ``init(quantizing:outputChannels:inputChannels:groupSize:bias:smoothing:groupScales:activations:)`` picks each group's scale.
    public enum GroupScales: String, Sendable, CaseIterable {
        /// `S_W = absMax/7` (rounded to binary16), `q_W = round-half-away(w/S_W)`
        /// in −7...7 (the largest weight's value may land on ±7 from either
        /// side of the rounding), and `−w` quantizes as `−q`.
        case absMax
        /// The scale among `absMax/d`, d = 7, 7.25, …, 14 (clipping the
        /// largest weights by up to half), whose values `clamp(round-half-away(w/S_W), −8, 7)`
        /// give the least squared error `Σ (w − S_W·q_W)²` over the group (the
        /// first on a tie, so absMax/7 when nothing is better). Uses −8.
        case minimizingError
    }

    /// The int4 value `q_W[n][k]`, read back from the packed nibbles.
    public func value(outputChannel n: Int, input k: Int) throws(QGEMMError) -> Int8 {
        guard (0..<outputChannels).contains(n), (0..<inputChannels).contains(k) else {
            throw QGEMMError(.invalidArgument, "[\(n)][\(k)] is outside \(outputChannels)×\(inputChannels)")
        }
        let kp = qg_w4_packed_k(Int64(inputChannels), packingGroup)
        return packed.withUnsafeBufferPointer { qg_w4_packed_value($0.baseAddress, Int64(n), Int64(k), kp) }
    }

    /// The 4-bit kernel path a call takes: `kernel` when given (it must have
    /// 4-bit tiles), else the process default when it has them, else the best
    /// path that does (``KernelPath/bestInt4``).
    static func choose(_ requested: KernelPath?) throws(QGEMMError) -> KernelPath {
        if let requested {
            try requested.checkSupported()
            guard requested.hasInt4Kernel else {
                throw QGEMMError(.unsupportedKernel,
                                 "kernel path '\(requested)' has no 4-bit-weight kernel; paths with one: \(KernelPath.availableInt4.map(\.rawValue).joined(separator: ", "))")
            }
            return requested
        }
        let fallback = try KernelPath.processDefault.get()
        return fallback.hasInt4Kernel ? fallback : KernelPath.bestInt4
    }

    /// Scratch memory for the buffer and Span calls: the quantized rows, their
    /// scales and their per-group offset terms. It grows to the largest call it
    /// has served and is then reused, so later calls of that size allocate
    /// nothing. Keep one per task or thread.
    public struct Workspace: Sendable {
        var quantized: [Int8] = []
        var scales: [Float] = []
        var shifts: [Float] = []
        var offsets: [Int32] = []
        var smoothed: [Float] = []

        /// An empty workspace; the first call sizes it.
        public init() {}

        /// Bytes the workspace holds now.
        public var byteCount: Int { quantized.count + 4 * (scales.count + shifts.count + offsets.count + smoothed.count) }

        static func grow<T: Numeric>(_ a: inout [T], to count: Int) throws(QGEMMError) { try QuantizedLinear.Workspace.grow(&a, to: count) }
    }

    /// `Y = X·Wᵀ + b` for Float X `[rows×K]`: each row quantized with its own
    /// scale (and zero point, with ``Activations/uint8``), then the W4A8
    /// contract above. Returns Float `[rows×N]`.
    /// Both steps run on `threads` (the rows' quantization from 2^15 values a
    /// thread, or from 2^14 in all on the caller and the pool's workers still
    /// spinning after the call before); the bits do not depend on the count.
    ///
    /// - Throws: ``QGEMMError`` for a wrong count, a result larger than the
    ///   memory this process may use, an input that is NaN or
    ///   infinite or that ``smoothing`` makes infinite, with ``Activations/uint8``
    ///   a row whose range has no uint8 grid in Float (`.invalidScale`, naming
    ///   the row), a path without 4-bit tiles or a bad thread count.
    public func callAsFunction(_ x: [Float], rows: Int, kernel: KernelPath? = nil, threads: Int? = nil) throws(QGEMMError) -> [Float] {
        guard rows >= 0 else { throw QGEMMError(.invalidShape, "rows must be ≥ 0, got \(rows)") }
        let (need, o1) = rows.multipliedReportingOverflow(by: inputChannels)
        let (outCount, o2) = rows.multipliedReportingOverflow(by: outputChannels)
        guard !o1, !o2, x.count == need else {
            throw QGEMMError(.invalidShape, "X holds \(x.count) values, but rows×K = \(rows)×\(inputChannels)")
        }
        try checkOutputFits(rows: rows, outputChannels: outputChannels, of: Float.self)
        var y = [Float](repeating: 0, count: outCount)
        var workspace = Workspace()
        try x.withUnsafeBufferPointer { (xb) throws(QGEMMError) in
            try y.withUnsafeMutableBufferPointer { (yb) throws(QGEMMError) in
                try self(xb, rows: rows, into: yb, workspace: &workspace, kernel: kernel, threads: threads)
            }
        }
        return y
    }

    /// The layer on buffers, with caller-owned scratch: Float X `[rows×K]` in,
    /// Float Y `[rows×N]` out, the bits of ``callAsFunction(_:rows:kernel:threads:)``.
    /// After the first call with a given shape, a call allocates nothing.
    ///
    /// - Throws: ``QGEMMError`` for a short buffer (`.bufferTooSmall`), a row
    ///   count whose products overflow (`.invalidShape`), overlapping buffers
    ///   (`.aliasing`), an input that is NaN or infinite or that ``smoothing`` makes
    ///   infinite (`.invalidValue`, naming the first), with ``Activations/uint8``
    ///   a row whose finite range (after ``smoothing``) has no uint8 grid in
    ///   Float (`.invalidScale`, naming the row; the first such row or value in
    ///   row order), a path without
    ///   4-bit tiles (`.unsupportedKernel`) or a bad thread count: the first the
    ///   arguments call for, in the order ``QGEMMError`` gives (the shapes and
    ///   buffers, then the path and threads, then the values). Nothing is
    ///   written to `y` then.
    public func callAsFunction(_ x: UnsafeBufferPointer<Float>, rows: Int, into y: UnsafeMutableBufferPointer<Float>,
                               workspace: inout Workspace, kernel: KernelPath? = nil, threads: Int? = nil) throws(QGEMMError) {
        let k = inputChannels, n = outputChannels
        guard rows >= 0 else { throw QGEMMError(.invalidShape, "rows must be ≥ 0, got \(rows)") }
        let (xCount, o1) = rows.multipliedReportingOverflow(by: k), (yCount, o2) = rows.multipliedReportingOverflow(by: n)
        let ldx = Int(qg_w4_row_bytes(Int64(k), packingGroup))
        let (qCount, o3) = rows.multipliedReportingOverflow(by: ldx)
        guard !o1, !o2, !o3 else { throw QGEMMError(.invalidShape, "\(rows) rows of K = \(k) or N = \(n) overflow Int") }
        guard x.count >= xCount else { throw QGEMMError(.bufferTooSmall, "x holds \(x.count) values, \(rows) rows × K = \(k) need \(xCount)") }
        guard y.count >= yCount else { throw QGEMMError(.bufferTooSmall, "y holds \(y.count) values, \(rows) rows × N = \(n) need \(yCount)") }
        try PackedWeights.checkApart(y, yCount, x, xCount, "the input x")
        let (path, threadCount) = try PackedWeights.checkPathAndThreads(kernel, threads, int4: true)
        guard rows > 0, let xBase = x.baseAddress, let yBase = y.baseAddress else { qg_note_call_without_rows(); return }
        // With smoothing, the rows quantized are X·diag(1/s): each divided
        // into workspace.smoothed by the task that quantizes it.
        let rowsIn = UnsafePointer(xBase)
        if smoothing != nil { try Workspace.grow(&workspace.smoothed, to: xCount) }
        try Workspace.grow(&workspace.quantized, to: qCount)
        try Workspace.grow(&workspace.scales, to: rows)
        try Workspace.grow(&workspace.offsets, to: rows * groupCount)
        let zeroPoints = activations == .uint8
        if zeroPoints { try Workspace.grow(&workspace.shifts, to: rows) }
        let bad = workspace.smoothed.withUnsafeMutableBufferPointer { smoothedRows in
          workspace.quantized.withUnsafeMutableBufferPointer { qp in
            workspace.scales.withUnsafeMutableBufferPointer { sp in
              workspace.shifts.withUnsafeMutableBufferPointer { shp in
                workspace.offsets.withUnsafeMutableBufferPointer { op in
                    (smoothing?.factors).withUnsafeBaseAddress { divisor in
                        qg_w4_prepare_smoothed_rows_threads(rowsIn, Int64(rows), Int64(k), Int64(k), divisor,
                                                            divisor == nil ? nil : smoothedRows.baseAddress, packingGroup,
                                                            qp.baseAddress, Int64(ldx), sp.baseAddress,
                                                            zeroPoints ? shp.baseAddress : nil, op.baseAddress, threadCount)
                    }
                }
              }
            }
          }
        }
        // The first value that is not finite, or that smoothing made infinite, by its place.
        if bad >= 0 { throw QGEMMError.unquantizable(xBase, at: bad, k: k, ldx: k, factors: smoothing?.factors) }
        if bad <= -2 { try refuseRange(row: Int(-2 - bad), x: smoothing == nil ? rowsIn : nil, workspace: workspace) }
        let status = workspace.quantized.withUnsafeBufferPointer { qp in
            workspace.scales.withUnsafeBufferPointer { sp in
              workspace.shifts.withUnsafeBufferPointer { shp in
                workspace.offsets.withUnsafeBufferPointer { op in
                    packed.withUnsafeBufferPointer { wp in
                        packedScales.withUnsafeBufferPointer { wsp in
                            paddedBias.withUnsafeBaseAddress { bp in
                                weightSums.withUnsafeBaseAddress { cp in
                                    var args = qg_w4_args(m: Int64(rows), n: Int64(n), k: Int64(k), group: packingGroup,
                                                          x: qp.baseAddress, ldx: Int64(ldx), x_scale: sp.baseAddress,
                                                          x_offset: op.baseAddress, w: wp.baseAddress, w_scale: wsp.baseAddress,
                                                          bias: bp, y: yBase, ldy: Int64(n),
                                                          x_shift: zeroPoints ? UnsafePointer(shp.baseAddress) : nil, w_sum: cp)
                                    return qg_w4_gemm(&args, path.cValue ?? -1, threadCount)
                                }
                            }
                        }
                    }
                }
              }
            }
        }
        switch status {
        case 0: return
        case -3: throw QGEMMError(.invalidShape, "a negative M or N, K < 1, a group size outside 8...4096 or rows closer than their length reached the C core")
        default: throw QGEMMError(.unsupportedKernel, "kernel path '\(path)' cannot run 4-bit weights on this CPU")
        }
    }

    /// Throws the error of a row whose finite values have no uint8 grid (a
    /// range wider than Float holds): QuantizationParameters' own, placed at
    /// the row. `x` is the caller's rows, or nil when they were smoothed
    /// into the workspace first.
    private func refuseRange(row r: Int, x: UnsafePointer<Float>?, workspace: Workspace) throws(QGEMMError) {
        let k = inputChannels
        let values: [Float] = x.map { Array(UnsafeBufferPointer(start: $0 + r * k, count: k)) }
            ?? Array(workspace.smoothed[(r * k)..<(r * k + k)])
        let lo = values.min() ?? 0, hi = values.max() ?? 0
        let place = "input row [\(r)]" + (x == nil ? " divided by its smoothing factors" : "")
        _ = try QuantizedLinear.rangeParameters(lo, hi, place: place)
        throw QGEMMError(.invalidScale, "\(place): range [\(lo), \(hi)] has no usable scale")
    }

    /// Whether the initializers take `groupSize`: a multiple of 8 from 8 to 4096.
    public static func isValidGroupSize(_ groupSize: Int) -> Bool {
        groupSize >= 8 && groupSize <= Int(QG_W4_MAX_GROUP) && groupSize % 8 == 0
    }

    /// Refuses a group size the initializers would refuse, with their
    /// message: for a caller that reads a configuration (a file of layer
    /// recipes, say) and wants to refuse it before any work starts.
    /// - Throws: ``QGEMMError`` `.invalidArgument` unless ``isValidGroupSize(_:)``.
    public static func checkGroupSize(_ groupSize: Int) throws(QGEMMError) {
        guard isValidGroupSize(groupSize) else {
            throw QGEMMError(.invalidArgument, "group size must be a multiple of 8 from 8 to \(QG_W4_MAX_GROUP), got \(groupSize)")
        }
    }

    private static func checkShape(count: Int, n: Int, k: Int, group: Int) throws(QGEMMError) {
        guard n >= 1, k >= 1 else {
            throw QGEMMError(.invalidShape, "weights need at least 1 output and 1 input channel, got N = \(n), K = \(k)")
        }
        try checkGroupSize(group)
        // Packed bytes and scales stay far inside Int64 when N·K does with room to spare.
        let (nk, overflow) = n.multipliedReportingOverflow(by: k)
        guard !overflow, nk < Int(Int32.max) * 64, nk == count else {
            throw QGEMMError(.invalidShape, "weights hold \(count) values, but N×K = \(n)×\(k)\(overflow ? " overflows" : " = \(nk)")")
        }
    }

    private static func checkBias(_ bias: [Float]?, n: Int) throws(QGEMMError) {
        if let bias { try PackedWeights.checkFloatBias(bias, n: n) }
    }
}

extension KernelPath {
    /// Whether this path has 4-bit-weight (W4A8) tiles (``Int4Weights``).
    public var hasInt4Kernel: Bool { cValue.map { qg_w4_path_has_kernel($0) != 0 } ?? false }
    /// The paths this CPU runs that have 4-bit-weight tiles.
    public static var availableInt4: [KernelPath] { available.filter(\.hasInt4Kernel) }
    /// The best path with 4-bit-weight tiles this CPU runs.
    public static var bestInt4: KernelPath { bestInt4Storage }

    /// Read once: a call that takes the default looks it up, and making a
    /// path from its C name allocates.
    private static let bestInt4Storage = KernelPath(rawValue: String(cString: qg_path_name(qg_w4_path_best()))) ?? .reference
    /// The name of the 4-bit main tile a call on this path runs on this CPU
    /// (`qg_w4_8x32c8__avx512vnnigfni` where the CPU has the path and
    /// ``CPUFeatures/int4HighNibblesByGFNI`` is true, else
    /// `qg_w4_8x32c8__avx512vnni`; for ``reference``, its function,
    /// `qg_w4_gemm_reference`), or nil for a path without 4-bit tiles in
    /// this build. It names the tile even where this CPU lacks the path (a call there
    /// throws ``QGEMMError/Code/unsupportedKernel``; ``availableInt4`` lists
    /// the paths it runs).
    public var int4KernelName: String? {
        guard let c = cValue, let name = qg_w4_path_ukernel(c) else { return nil }
        return String(cString: name)
    }
}
