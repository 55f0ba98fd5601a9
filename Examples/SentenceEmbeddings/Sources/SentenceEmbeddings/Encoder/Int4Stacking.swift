import QGEMM

/// 4-bit layers that read the same input (query, key and value) as one call
/// and back: stacked along N, each output channel keeps its values, its
/// scales, its bias and its weight sum, and so computes exactly what it
/// computes alone, provided the layers share K, the group, the activations
/// and the smoothing factors (the input each quantizes its rows from).
extension Int4Weights {
    /// Output channels `range` as weights of their own, with the same group,
    /// smoothing and activations: the same bits for those channels.
    func channels(_ range: Range<Int>) throws -> Int4Weights {
        let k = inputChannels, groups = groupCount
        var values = [Int8](repeating: 0, count: range.count * k)
        for (row, n) in range.enumerated() {
            for i in 0..<k { values[row * k + i] = try value(outputChannel: n, input: i) }
        }
        return try Int4Weights(values: values, scales: Array(scales[(range.lowerBound * groups)..<(range.upperBound * groups)]),
                               outputChannels: range.count, inputChannels: k, groupSize: groupSize,
                               bias: bias.map { Array($0[range]) }, smoothing: smoothing, activations: activations)
    }

    /// `parts` stacked along N into one, or nil when they cannot run as one
    /// call with the same bits: a different K, group or activations,
    /// different smoothing factors (to the bit), or a bias on some only.
    static func stacked(_ parts: [Int4Weights]) throws -> Int4Weights? {
        guard let first = parts.first else { return nil }
        func factorBits(_ w: Int4Weights) -> [UInt32]? { w.smoothing?.factors.map(\.bitPattern) }
        guard parts.allSatisfy({ $0.inputChannels == first.inputChannels && $0.groupSize == first.groupSize
                                 && $0.activations == first.activations && factorBits($0) == factorBits(first)
                                 && ($0.bias == nil) == (first.bias == nil) }) else { return nil }
        let k = first.inputChannels
        var values: [Int8] = [], scales: [Float] = [], bias: [Float] = []
        for w in parts {
            for n in 0..<w.outputChannels {
                for i in 0..<k { values.append(try w.value(outputChannel: n, input: i)) }
            }
            scales += w.scales
            bias += w.bias ?? []
        }
        return try Int4Weights(values: values, scales: scales, outputChannels: parts.reduce(0) { $0 + $1.outputChannels },
                               inputChannels: k, groupSize: first.groupSize, bias: first.bias == nil ? nil : bias,
                               smoothing: first.smoothing, activations: first.activations)
    }
}
