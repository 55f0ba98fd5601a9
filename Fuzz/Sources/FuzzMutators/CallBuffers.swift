/// The x and y buffers of a layer call, in one allocation: x's values first
/// (a few more or fewer than the call needs), then y (likewise), or, with
/// `overlap`, y starting inside x. Everything not x's values holds a NaN
/// sentinel, so a target can tell what a call wrote.
public struct CallBuffers {
    public static let sentinel = Float(bitPattern: 0x7FC0_1234)
    public private(set) var memory: [Float]
    public let before: [Float]
    public let xCount, yStart, yCount: Int
    public let overlap: Bool

    /// `x` holds the call's rows·K values; the slacks (negative: short) are
    /// added to rows·K and rows·N.
    public init(x: [Float], outputCount: Int, xSlack: Int, ySlack: Int, overlap: Bool) {
        xCount = Swift.max(0, x.count + xSlack)
        yCount = Swift.max(0, outputCount + ySlack)
        yStart = overlap ? xCount / 2 : xCount
        self.overlap = overlap
        var memory = [Float](repeating: Self.sentinel, count: Swift.max(xCount, yStart + yCount))
        for i in 0..<Swift.min(xCount, x.count) { memory[i] = x[i] }
        self.memory = memory
        before = memory
    }

    /// Whether y overlaps the first `xNeeded` values of x while y holds any.
    public func overlapping(xNeeded: Int) -> Bool { overlap && yStart < xNeeded && yCount > 0 }

    /// Runs `body` on x and y.
    public mutating func call<E: Error>(
        _ body: (UnsafeBufferPointer<Float>, UnsafeMutableBufferPointer<Float>) throws(E) -> Void
    ) throws(E) {
        let (xCount, yStart, yCount) = (xCount, yStart, yCount)
        try memory.withUnsafeMutableBufferPointer { (all) throws(E) in
            try body(UnsafeBufferPointer(rebasing: all[0..<xCount]), UnsafeMutableBufferPointer(rebasing: all[yStart..<(yStart + yCount)]))
        }
    }

    /// Whether nothing was written.
    public var untouched: Bool { memory.elementsEqual(before, by: { $0.bitPattern == $1.bitPattern }) }

    /// Checks a call that returned: y's first `want.count` values bit for
    /// bit `want`, and every other value of the allocation (x, its slack and
    /// y's) as it was.
    public func check(want: [Float], _ what: String) {
        let written = yStart..<(yStart + Swift.min(want.count, yCount))
        for i in memory.indices {
            if written.contains(i) {
                precondition(memory[i].bitPattern == want[i - yStart].bitPattern,
                             "\(what) y[\(i - yStart)] = \(memory[i]), the contract gives \(want[i - yStart])")
            } else {
                // Every index lies in x or in y (the allocation is no longer).
                precondition(memory[i].bitPattern == before[i].bitPattern,
                             (yStart..<(yStart + yCount)).contains(i) ? "y[\(i - yStart)], past the output, was written" : "x[\(i)] was written")
            }
        }
    }
}
