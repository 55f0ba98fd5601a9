import QGEMM
extension KernelCheck {
    /// A seeded greedy all-pairs sample: every listed value of M, N and K and of
    /// every option appears, and so does every pair of values of two dimensions.
    /// Empty when any of the three lists is (there is no case to draw).
    public static func pairwiseSample(ms: [Int], ns: [Int], ks: [Int], seed: UInt64) -> [KernelCheck] {
        guard !ms.isEmpty, !ns.isEmpty, !ks.isEmpty else { return [] }
        let zeroKinds = 3 // 0: type minimum, 1: type maximum, 2: random
        let dims: [Int] = [ms.count, ns.count, ks.count, 2, zeroKinds, 2, RoundingMode.allCases.count, 2, 3,
                           KernelCheck.Output.allCases.count, 2]
        // The pairs in a fixed order (a Set's order changes from process to
        // process), so one seed always gives the same sample.
        var pairs: [[Int]] = []
        for a in dims.indices {
            for b in dims.indices where b > a {
                for va in 0..<dims[a] { for vb in 0..<dims[b] { pairs.append([a, va, b, vb]) } }
            }
        }
        var uncovered = Set(pairs)
        var next = 0
        var rng = CheckRandom(seed: seed)
        var chosen: [[Int]] = []
        while !uncovered.isEmpty {
            var best: [Int] = [], bestGain = -1
            // Seed each candidate with the first uncovered pair, fill the rest at random.
            while !uncovered.contains(pairs[next]) { next += 1 }
            let target = pairs[next]
            for _ in 0..<40 {
                var cand = dims.map { Int(rng.next() % UInt64($0)) }
                cand[target[0]] = target[1]
                cand[target[2]] = target[3]
                var gain = 0
                for a in dims.indices { for b in dims.indices where b > a && uncovered.contains([a, cand[a], b, cand[b]]) { gain += 1 } }
                if gain > bestGain { bestGain = gain; best = cand }
            }
            for a in dims.indices { for b in dims.indices where b > a { uncovered.remove([a, best[a], b, best[b]]) } }
            chosen.append(best)
        }
        return chosen.enumerated().map { i, v in
            let activation: QuantizedType = v[3] == 0 ? .int8 : .uint8
            let zx: Int32 = switch v[4] {
            case 0: activation.min
            case 1: activation.max
            default: Int32(Int64(rng.next() % UInt64(activation.max - activation.min + 1))) + activation.min
            }
            return KernelCheck(m: ms[v[0]], k: ks[v[2]], n: ns[v[1]], activation: activation, xZeroPoint: zx,
                               perChannel: v[5] == 1, rounding: RoundingMode.allCases[v[6]], narrowClamp: v[7] == 1,
                               threads: v[8] + 1, output: KernelCheck.Output.allCases[v[9]],
                               rowStrideExtra: v[10] == 1 ? 3 : 0, outputStrideExtra: v[10] == 1 ? 5 : 0,
                               seed: seed &+ UInt64(i))
        }
    }
}
