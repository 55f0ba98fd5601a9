// The entropy observer's threshold search: every threshold's divergence from
// sums over its 128 groups of bins.
extension EntropyObserver {
    /// KL(P ‖ Q) for every threshold of `levels`…`counts.count` bins (element
    /// `t − levels` for the threshold of `t` bins; infinity where P or Q is
    /// empty). P is the bins below the threshold with the mass above it added
    /// to the last one; Q merges those bins (without the added mass) into
    /// `levels` groups and spreads each group's mass evenly over its bins
    /// that hold values. A bin of P that Q cannot represent (the last one,
    /// empty but for the added mass) adds its probability times 30: a large,
    /// finite penalty.
    ///
    /// Within one group every represented bin has the same q, so the group's
    /// share of the sum, Σ p·log(p/q), is (Σ b·log b − m·log(T·m/(u·B)))/T for
    /// bins b summing to m of which u hold values, B the mass below the
    /// threshold and T the total. With prefix sums of b, b·log b and u, a
    /// group costs O(1) (a sliver group, below, O(log bins)), so a threshold
    /// costs O(levels), not O(bins): the search over 2^20 bins takes seconds,
    /// not half an hour. The logarithms are ElementaryFunctions.log, the same
    /// bits on every machine, so near-equal divergences rank alike everywhere.
    static func divergences(_ counts: [Double]) -> [Double] {
        let n = counts.count
        guard n >= levels else { return [] }
        // mass[j], logs[j], held[j]: Σ b, Σ b·log b and the count of b > 0 over
        // bins below j, the two sums with their rounding errors carried beside
        // them (massError, logsError: Knuth's two-sum), so that a group's
        // share, a difference of two of them, keeps its digits beside the
        // large sums below it; above[j]: Σ b over bins j and above (summed from
        // the top, so exactly 0 where nothing lies above).
        var mass = [Double](repeating: 0, count: n + 1), massError = mass, logs = mass, logsError = mass, above = mass
        var held = [Int](repeating: 0, count: n + 1)
        var terms = [Double](repeating: 0, count: n)
        /// s + b, with the rounding error of that sum added to e.
        func compensated(_ s: Double, _ e: Double, _ b: Double) -> (Double, Double) {
            let sum = s + b, bPart = sum - s
            return (sum, e + ((s - (sum - bPart)) + (b - bPart)))
        }
        for (j, b) in counts.enumerated() {
            terms[j] = b > 0 ? b * ElementaryFunctions.log(b) : 0
            (mass[j + 1], massError[j + 1]) = compensated(mass[j], massError[j], b)
            (logs[j + 1], logsError[j + 1]) = compensated(logs[j], logsError[j], terms[j])
            held[j + 1] = held[j] + (b > 0 ? 1 : 0)
        }
        for j in stride(from: n - 1, through: 0, by: -1) { above[j] = above[j + 1] + counts[j] }
        // A group whose mass is a sliver of the mass below it, under what even
        // the carried errors keep (re-binning leaves slivers of a count beside
        // whole ones: 10^-21 beside 10^10 came out a fraction off), is summed
        // from a tree of partial sums instead: O(log bins) values all inside
        // the group, so nothing cancels.
        let massTree = RangeSums(counts), logsTree = RangeSums(terms)
        return (levels...n).map { t in
            let below = mass[t], outliers = above[t], total = below + outliers
            guard total > 0, below > 0 else { return .infinity }
            let last = t - 1, lastCount = counts[last]
            let per = Double(t) / Double(levels)
            var sum = 0.0, lastQ = 0.0
            for level in 0..<levels {
                let start = Int((Double(level) * per).rounded(.down))
                let end = level == levels - 1 ? t : Int((Double(level + 1) * per).rounded(.down))
                guard end > start else { continue }
                let u = held[end] - held[start]
                guard u > 0 else { continue }
                var m = (mass[end] - mass[start]) + (massError[end] - massError[start])
                var groupLogs = (logs[end] - logs[start]) + (logsError[end] - logsError[start])
                if !(m >= mass[end] * 0x1p-40) {
                    m = massTree.sum(start, end)
                    groupLogs = logsTree.sum(start, end)
                }
                var groupMass = m
                if end == t, lastCount > 0 {
                    // The last bin also carries the outliers: its term comes below.
                    lastQ = m / Double(u) / below
                    groupMass -= lastCount
                    groupLogs -= lastCount * ElementaryFunctions.log(lastCount)
                }
                // log(T/B) + log(m/u): no product of two counts, which could
                // overflow (or underflow) where their quotients do not.
                sum += groupLogs - groupMass * (ElementaryFunctions.log(total / below) + ElementaryFunctions.log(m / Double(u)))
            }
            var kl = sum / total
            let lastP = (lastCount + outliers) / total
            if lastP > 0 { kl += lastQ > 0 ? lastP * ElementaryFunctions.log(lastP / lastQ) : lastP * 30 }
            return kl
        }
    }
}

/// Sums of ranges of values, each from at most 2·log2(count) partial sums
/// that lie inside the range (a segment tree): no difference of two larger
/// sums, so a range of small values keeps its digits beside large ones.
struct RangeSums {
    private let size: Int
    private var node: [Double]

    init(_ values: [Double]) {
        var size = 1
        while size < values.count { size *= 2 }
        self.size = size
        node = [Double](repeating: 0, count: 2 * size)
        for (i, v) in values.enumerated() { node[size + i] = v }
        for i in stride(from: size - 1, through: 1, by: -1) { node[i] = node[2 * i] + node[2 * i + 1] }
    }

    /// Σ values[lower..<upper].
    func sum(_ lower: Int, _ upper: Int) -> Double {
        var l = lower + size, r = upper + size, total = 0.0
        while l < r {
            if l & 1 == 1 { total += node[l]; l += 1 }
            if r & 1 == 1 { r -= 1; total += node[r] }
            l >>= 1
            r >>= 1
        }
        return total
    }
}
