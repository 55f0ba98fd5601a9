internal import CQGEMM

extension Int4Weights {
    /// The group quantization of ``init(quantizing:outputChannels:inputChannels:groupSize:bias:smoothing:groupScales:activations:)``:
    /// per channel and group, the binary16 scale (`absMax/7`, or the
    /// candidate `absMax/d`, d = 7, 7.25, …, 14, whose values give the least
    /// squared error, the first on a tie) and the values
    /// `clamp(round-half-away(w/S_W), lo, 7)`; a scale of +Inf for a group
    /// no binary16 scale fits (the caller refuses it).
    ///
    /// The candidates' errors are what the search spends its time on (29 per
    /// group, for every α it tries), so the C core weighs them: on AVX2, 8
    /// candidates at once, one a lane, each still summed in Double one
    /// weight after another, in order, so every choice and every bit is as a
    /// scalar loop gives. `vector` false takes its plain C copy (tests
    /// compare the two).
    static func quantizeGroups(_ w: [Float], n: Int, k: Int, group: Int, rule: GroupScales,
                               vector: Bool = true) -> (values: [Int8], scales: [Float]) {
        let groups = (k + group - 1) / group
        var values = [Int8](repeating: 0, count: n * k)
        var scales = [Float](repeating: 0, count: n * groups)
        w.withUnsafeBufferPointer { wp in
            values.withUnsafeMutableBufferPointer { vp in
                scales.withUnsafeMutableBufferPointer { sp in
                    qg_w4_quantize_groups(wp.baseAddress, Int64(n), Int64(k), Int64(group), rule == .absMax ? 0 : 1,
                                          vector ? 1 : 0, vp.baseAddress, sp.baseAddress)
                }
            }
        }
        return (values, scales)
    }
}
