internal import CQGEMM

/// Group-wise 4-bit weights, packed once, for `Y = X·Wᵀ + b` with int8
/// activations quantized per row at call time (W4A8).
///
/// Each output channel's K inputs are cut into groups of ``groupSize``; each
/// group has its own Float scale `S_W[n, g]` and int4 values `q_W ∈ [−8, 7]`
/// (symmetric, no zero point). A call quantizes each row of X to int8
/// symmetrically (`S_X = absMax/127`, round half away from zero), sums each
/// group exactly in int32 and combines the groups in Float, in a fixed order:
///
///     acc_g = Σ_{k∈g} q_W[n,k]·q_X[m,k]
///     s = 0;  for g in 0, 1, …:  s = fma(S_W[n,g], Float(acc_g), s)
///     y[m,n] = fma(S_X[m], s, b[n])
///
/// Every kernel path gives these bits (the README's "4-bit weights" and
/// `KERNELS.md` state the contract). Packed weights take half the bytes of
/// int8 ones, which is what decode-bound layers (M = 1…8) are limited by.
public final class Int4Weights: Sendable {
    /// N: outputs per row.
    public let outputChannels: Int
    /// K: inputs per row.
    public let inputChannels: Int
    /// K values per scale (a multiple of 8 from 8 to 4096).
    public let groupSize: Int
    /// The scales, `[n * groupCount + g]`.
    public let scales: [Float]
    /// The Float bias, if any.
    public let bias: [Float]?

    /// Groups per output channel: ⌈K / groupSize⌉ (the last may be shorter).
    public var groupCount: Int { (inputChannels + groupSize - 1) / groupSize }
    /// Bytes of the packed nibbles (half a byte per weight, N and K padded).
    public var packedByteCount: Int { packed.count }

    let packed: [UInt8]
    let packedScales: [Float]
    /// The bias padded to whole 16-channel panels (the kernels read vectors).
    let paddedBias: [Float]?

    /// Packs int4 values already quantized (from a GPTQ, AWQ or Q4_0
    /// checkpoint, say), row-major `[N×K]`, with their group scales.
    ///
    /// - Parameters:
    ///   - values: `q_W`, each in −8...7.
    ///   - scales: `S_W[n * groupCount + g]`, finite and ≥ 0.
    ///   - bias: optional Float bias `[N]`, finite.
    /// - Throws: ``QGEMMError`` naming the first bad shape, value or scale.
    public init(values: [Int8], scales: [Float], outputChannels: Int, inputChannels: Int, groupSize: Int,
                bias: [Float]? = nil) throws(QGEMMError) {
        try Self.checkShape(count: values.count, n: outputChannels, k: inputChannels, group: groupSize)
        let groups = (inputChannels + groupSize - 1) / groupSize
        guard scales.count == outputChannels * groups else {
            throw QGEMMError(.invalidShape,
                             "\(scales.count) scales given for \(outputChannels) channels × \(groups) groups of \(groupSize)")
        }
        if let i = values.firstIndex(where: { $0 < -8 || $0 > 7 }) {
            throw QGEMMError(.invalidValue, "int4 value \(values[i]) at [\(i / inputChannels)][\(i % inputChannels)] is outside -8...7")
        }
        if let i = scales.firstIndex(where: { !$0.isFinite || $0 < 0 }) {
            throw QGEMMError(.invalidScale, "scale \(scales[i]) of channel \(i / groups), group \(i % groups) must be finite and ≥ 0")
        }
        try Self.checkBias(bias, n: outputChannels)
        self.outputChannels = outputChannels
        self.inputChannels = inputChannels
        self.groupSize = groupSize
        self.scales = scales
        self.bias = bias
        let n = Int64(outputChannels), k = Int64(inputChannels), g = Int64(groupSize)
        var packed = [UInt8](repeating: 0, count: Int(qg_w4_packed_bytes(n, k, g)))
        var packedScales = [Float](repeating: 0, count: Int(qg_w4_scale_count(n, k, g)))
        values.withUnsafeBufferPointer { q in
            scales.withUnsafeBufferPointer { s in
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
    }

    /// Quantizes Float weights, row-major `[N×K]`, group by group with the
    /// absolute maximum: `S_W = absMax/7` and `q_W = round-half-away(w/S_W)`,
    /// so values lie in −7...7 (the format's −8 is never produced: a
    /// symmetric range keeps `−w` quantized as `−q`). A group of zeros gets
    /// scale 0.
    ///
    /// - Throws: ``QGEMMError/Code/invalidValue`` for a NaN or infinite weight,
    ///   and what ``init(values:scales:outputChannels:inputChannels:groupSize:bias:)`` throws.
    public convenience init(quantizing weights: [Float], outputChannels: Int, inputChannels: Int, groupSize: Int = 32,
                            bias: [Float]? = nil) throws(QGEMMError) {
        try Self.checkShape(count: weights.count, n: outputChannels, k: inputChannels, group: groupSize)
        if let i = weights.firstIndex(where: { !$0.isFinite }) {
            throw QGEMMError(.invalidValue, "weight \(weights[i]) at [\(i / inputChannels)][\(i % inputChannels)] is not finite")
        }
        let (values, scales) = Self.quantizeAbsMax(weights, n: outputChannels, k: inputChannels, group: groupSize)
        try self.init(values: values, scales: scales, outputChannels: outputChannels, inputChannels: inputChannels,
                      groupSize: groupSize, bias: bias)
    }

    /// The absmax rule of ``init(quantizing:outputChannels:inputChannels:groupSize:bias:)``.
    static func quantizeAbsMax(_ w: [Float], n: Int, k: Int, group: Int) -> (values: [Int8], scales: [Float]) {
        let groups = (k + group - 1) / group
        var values = [Int8](repeating: 0, count: n * k)
        var scales = [Float](repeating: 0, count: n * groups)
        for c in 0..<n {
            for g in 0..<groups {
                let range = (c * k + g * group)..<(c * k + min((g + 1) * group, k))
                var absMax: Float = 0
                for i in range { absMax = max(absMax, abs(w[i])) }
                let s = absMax / 7
                guard s > 0 else { continue }
                scales[c * groups + g] = s
                for i in range { values[i] = Int8(max(-7, min(7, (w[i] / s).rounded(.toNearestOrAwayFromZero)))) }
            }
        }
        return (values, scales)
    }

    /// The int4 value `q_W[n][k]`, read back from the packed nibbles.
    public func value(outputChannel n: Int, input k: Int) throws(QGEMMError) -> Int8 {
        guard (0..<outputChannels).contains(n), (0..<inputChannels).contains(k) else {
            throw QGEMMError(.invalidArgument, "[\(n)][\(k)] is outside \(outputChannels)×\(inputChannels)")
        }
        let kp = qg_w4_packed_k(Int64(inputChannels), Int64(groupSize))
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

    /// `Y = X·Wᵀ + b` for Float X `[rows×K]`: each row quantized to int8 with
    /// its own scale, then the W4A8 contract above. Returns Float `[rows×N]`.
    ///
    /// - Throws: ``QGEMMError`` for a wrong count, a NaN or infinite input, a
    ///   path without 4-bit tiles or a bad thread count.
    public func callAsFunction(_ x: [Float], rows: Int, kernel: KernelPath? = nil, threads: Int? = nil) throws(QGEMMError) -> [Float] {
        let k = inputChannels, n = outputChannels
        guard rows >= 0 else { throw QGEMMError(.invalidShape, "rows must be ≥ 0, got \(rows)") }
        let (need, o1) = rows.multipliedReportingOverflow(by: k)
        let (outCount, o2) = rows.multipliedReportingOverflow(by: n)
        guard !o1, !o2, x.count == need else {
            throw QGEMMError(.invalidShape, "X holds \(x.count) values, but rows×K = \(rows)×\(k)")
        }
        let path = try Self.choose(kernel)
        let threadCount: Int32
        do { threadCount = try PackedWeights.checkThreads(threads) } catch let e as QGEMMError { throw e } catch {
            throw QGEMMError(.invalidArgument, "\(error)")
        }
        var y = [Float](repeating: 0, count: outCount)
        if rows == 0 { return y }
        let kp = Int(qg_w4_packed_k(Int64(k), Int64(groupSize)))
        var q = [Int8](repeating: 0, count: rows * kp)
        var rowScale = [Float](repeating: 0, count: rows)
        var offset = [Int32](repeating: 0, count: rows * groupCount)
        let bad = x.withUnsafeBufferPointer { xp in
            q.withUnsafeMutableBufferPointer { qp in
                rowScale.withUnsafeMutableBufferPointer { sp in
                    offset.withUnsafeMutableBufferPointer { op in
                        qg_w4_prepare_rows(xp.baseAddress, Int64(rows), Int64(k), Int64(k), Int64(groupSize), qp.baseAddress,
                                           Int64(kp), sp.baseAddress, op.baseAddress)
                    }
                }
            }
        }
        guard bad < 0 else {
            throw QGEMMError(.invalidValue, "input \(x[Int(bad)]) at [\(Int(bad) / k)][\(Int(bad) % k)] is not finite")
        }
        let status = q.withUnsafeBufferPointer { qp in
            rowScale.withUnsafeBufferPointer { sp in
                offset.withUnsafeBufferPointer { op in
                    packed.withUnsafeBufferPointer { wp in
                        packedScales.withUnsafeBufferPointer { wsp in
                            y.withUnsafeMutableBufferPointer { yp in
                                Self.withOptionalPointer(paddedBias) { bp in
                                    var args = qg_w4_args(m: Int64(rows), n: Int64(n), k: Int64(k), group: Int64(groupSize),
                                                          x: qp.baseAddress, ldx: Int64(kp), x_scale: sp.baseAddress,
                                                          x_offset: op.baseAddress, w: wp.baseAddress, w_scale: wsp.baseAddress,
                                                          bias: bp, y: yp.baseAddress, ldy: Int64(n))
                                    return qg_w4_gemm(&args, path.cValue ?? -1, threadCount)
                                }
                            }
                        }
                    }
                }
            }
        }
        guard status == 0 else {
            throw QGEMMError(.unsupportedKernel, "kernel path '\(path)' cannot run 4-bit weights on this CPU")
        }
        return y
    }

    private static func withOptionalPointer<R>(_ a: [Float]?, _ body: (UnsafePointer<Float>?) -> R) -> R {
        guard let a else { return body(nil) }
        return a.withUnsafeBufferPointer { body($0.baseAddress) }
    }

    private static func checkShape(count: Int, n: Int, k: Int, group: Int) throws(QGEMMError) {
        guard n >= 1, k >= 1 else {
            throw QGEMMError(.invalidShape, "weights need at least 1 output and 1 input channel, got N = \(n), K = \(k)")
        }
        guard group >= 8, group <= Int(QG_W4_MAX_GROUP), group % 8 == 0 else {
            throw QGEMMError(.invalidArgument, "group size must be a multiple of 8 from 8 to \(QG_W4_MAX_GROUP), got \(group)")
        }
        // Packed bytes and scales stay far inside Int64 when N·K does with room to spare.
        let (nk, overflow) = n.multipliedReportingOverflow(by: k)
        guard !overflow, nk < Int(Int32.max) * 64, nk == count else {
            throw QGEMMError(.invalidShape, "weights hold \(count) values, but N×K = \(n)×\(k)\(overflow ? " overflows" : " = \(nk)")")
        }
    }

    private static func checkBias(_ bias: [Float]?, n: Int) throws(QGEMMError) {
        guard let bias else { return }
        guard bias.count == n else { throw QGEMMError(.invalidShape, "bias holds \(bias.count) values for \(n) output channels") }
        if let i = bias.firstIndex(where: { !$0.isFinite }) {
            throw QGEMMError(.invalidValue, "bias \(bias[i]) of channel \(i) is not finite")
        }
    }
}

extension KernelPath {
    /// Whether this path has 4-bit-weight (W4A8) tiles (``Int4Weights``).
    public var hasInt4Kernel: Bool { cValue.map { qg_w4_path_has_kernel($0) != 0 } ?? false }
    /// The paths this CPU runs that have 4-bit-weight tiles.
    public static var availableInt4: [KernelPath] { available.filter(\.hasInt4Kernel) }
    /// The best path with 4-bit-weight tiles this CPU runs.
    public static var bestInt4: KernelPath { KernelPath(rawValue: String(cString: qg_path_name(qg_w4_path_best()))) ?? .reference }
    /// The 4-bit main tile's name (`qg_w4_4x32c8__avx512vnni`), or nil without one.
    public var int4KernelName: String? {
        guard let c = cValue, let name = qg_w4_path_ukernel(c) else { return nil }
        return String(cString: name)
    }
}
