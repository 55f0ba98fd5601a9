import QGEMM

/// Shapes derived from kernel paths' tiles, as XNNPACK generates each
/// microkernel's tests from its tile: every edge a tile or the driver's
/// blocking can get wrong.
///
/// - M: 1 … MR+1, 2·MR+1, and MC−1, MC, MC+1 (MC: the rows the driver packs
///   per task) at each K below;
/// - N: NR−1, NR, NR+1, 2·NR+3, for the main tile and the few-rows tile;
/// - K: 1 … 2·KR+1, and a large K.
///
/// The rule is one C function, `qg_path_test_shapes`: `qgemm validate`, the
/// test suite and the C-level kernel tester all take their shapes from it, so
/// a path added to the registry is checked at its own edges.
public struct TileShapes: Sendable, Hashable {
    /// The values of M (rows of X) to check, ascending, each once.
    public let ms: [Int]
    /// The values of N (output channels) to check, ascending, each once.
    public let ns: [Int]
    /// The values of K (the reduction length) to check, ascending, each once.
    public let ks: [Int]

    /// The shapes around one path's tiles.
    public init(path: KernelPath, largeK: Int = 1000) {
        self.init(paths: [path], largeK: largeK)
    }

    /// The union over several paths (sorted, each value once).
    public init(paths: [KernelPath], largeK: Int = 1000) {
        var ms = Set<Int>(), ns = Set<Int>(), ks = Set<Int>()
        for path in paths {
            let shapes = path.testShapes(largeK: largeK)
            ms.formUnion(shapes.ms)
            ns.formUnion(shapes.ns)
            ks.formUnion(shapes.ks)
        }
        self.ms = ms.sorted()
        self.ns = ns.sorted()
        self.ks = ks.sorted()
    }

    /// Every (M, N, K) of the product.
    public var product: [(m: Int, n: Int, k: Int)] {
        ms.flatMap { m in ns.flatMap { n in ks.map { k in (m, n, k) } } }
    }
}
