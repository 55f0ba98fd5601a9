internal import CQGEMM

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A kernel path: one implementation of the GEMM. All paths give bit-identical
/// results; ``reference`` defines them.
///
/// The paths come from the C kernel registry (`Sources/CQGEMM/core/kernel_list.h`):
/// a path added there appears in ``allCases``, ``available``, the tools and
/// the tests without any Swift change. The process default is the best path
/// this CPU supports, or the one named by the environment variable
/// `QGEMM_KERNEL` (read once). Every entry point also takes a per-call
/// `kernel:` option.
public struct KernelPath: RawRepresentable, Sendable, CaseIterable, Hashable, CustomStringConvertible {
    /// The path's name, e.g. `"avx2"`.
    public let rawValue: String
    /// The registry's number of the path, or -1 when this build lacks it:
    /// found once, when the value is made, since every GEMM call needs it
    /// (a lookup by name took tens of nanoseconds, a tenth of a small call).
    private let registryNumber: Int32

    /// The path named `rawValue`, when this build has it (a name with a NUL
    /// in it is none: the C registry would compare only the part before it).
    public init?(rawValue: String) {
        guard !rawValue.utf8.contains(0) else { return nil }
        let number = qg_path_find(rawValue)
        guard number >= 0 else { return nil }
        self.rawValue = rawValue
        registryNumber = number
    }

    private init(known name: String) {
        rawValue = name
        registryNumber = Self.registryIndex[name] ?? -1
    }

    /// Paths are equal when their names are.
    public static func == (a: KernelPath, b: KernelPath) -> Bool { a.rawValue == b.rawValue }

    /// Hashes the path's name.
    public func hash(into hasher: inout Hasher) { hasher.combine(rawValue) }

    /// The scalar reference: slow, obvious, int64 throughout.
    public static let reference = KernelPath(known: "reference")
    /// Plain C with the blocked driver, for CPUs with no supported SIMD.
    public static let portable = KernelPath(known: "portable")
    /// AVX2, exact: int8 widened to int16, VPMADDWD (x86-64 builds).
    public static let avx2 = KernelPath(known: "avx2")
    /// AVX-VNNI: the VEX-encoded VPDPBUSD on ymm registers (x86-64 builds), on every
    /// CPU with AVX-VNNI (Alder Lake and later client cores, Sapphire and Emerald
    /// Rapids, Zen 5); the default where AVX-512 VNNI is absent.
    public static let avxvnni = KernelPath(known: "avxvnni")
    /// AVX-512 VNNI: VPDPBUSD on zmm registers (x86-64 builds).
    public static let avx512vnni = KernelPath(known: "avx512vnni")
    /// AMX: TDPBUSD/TDPBSSD on tile registers (x86-64 builds; Intel Sapphire Rapids and later
    /// Xeons, on Linux, which must grant the tile state).
    public static let amxint8 = KernelPath(known: "amxint8")
    /// NEON dot product: SDOT on 128-bit registers (arm64 builds, Armv8.2 DotProd).
    public static let neondot = KernelPath(known: "neondot")
    /// NEON int8 matrix multiply: SMMLA/USMMLA on 2×8 blocks (arm64 builds, Armv8.6 I8MM).
    public static let neoni8mm = KernelPath(known: "neoni8mm")

    /// The registry's number of this path, or nil when this build lacks it.
    package var cValue: Int32? { registryNumber >= 0 ? registryNumber : nil }

    /// The registry's numbers by name, read once: looking a name up here
    /// allocates nothing, where passing a Swift string to C may (a short
    /// string is copied to the heap to be NUL-terminated).
    private static let registryIndex: [String: Int32] = {
        var index: [String: Int32] = [:]
        for p in 0..<qg_path_count() { index[String(cString: qg_path_name(p))] = p }
        return index
    }()

    /// Every path this build has that may be offered to users, worst to best
    /// (the test-only variants, registered to test the driver, are excluded).
    public static var allCases: [KernelPath] { allIncludingTestOnly.filter { !$0.tile.isTestOnly } }

    /// Every registered path, test-only variants included (odd tiles that
    /// exist to test the driver on every CPU; never a default).
    package static var allIncludingTestOnly: [KernelPath] {
        (0..<qg_path_count()).map { KernelPath(known: String(cString: qg_path_name($0))) }
    }

    /// Whether this build and this CPU can run the path.
    public var isSupported: Bool { cValue.map { qg_path_is_supported($0) != 0 } ?? false }

    /// The paths this machine can run, worst to best.
    public static var available: [KernelPath] { allCases.filter(\.isSupported) }

    /// The best path this machine can run.
    public static var best: KernelPath { KernelPath(known: String(cString: qg_path_name(qg_path_best()))) }

    /// Name of the microkernel the path runs, e.g. `qg_gemm_4x16c4__avx2`.
    public var kernelName: String { tile.microkernel }

    /// The register tile and requirements of a path, as its registry entry states them.
    public struct Tile: Sendable, Hashable {
        /// Rows of X the main microkernel computes at once (MR).
        public let mr: Int
        /// Output channels the main microkernel computes at once (NR).
        public let nr: Int
        /// The K group: how many K values the weight layout interleaves per channel.
        public let kr: Int
        /// Channels per panel of the weight layout the path reads (16 for the shared layout).
        public let panelN: Int
        /// Name of the main microkernel, e.g. `qg_gemm_4x16c4__avx2`.
        public let microkernel: String
        /// The tile for short row groups (at most `fewRowsMR` rows), when the path has one.
        public let fewRowsMicrokernel: String?
        /// Most rows the short-row tile computes at once; 0 when the path has none.
        public let fewRowsMR: Int
        /// Output channels the short-row tile computes at once; 0 when the path has none.
        public let fewRowsNR: Int
        /// What the CPU needs, e.g. "x86-64 with AVX2".
        public let requires: String
        /// A variant that exists to test the driver; never offered as a default.
        public let isTestOnly: Bool
        /// The instruction (or mix) whose register-only loop measures the
        /// path's int8 peak (`PeakProbe.int8MACsPerSecond`), e.g.
        /// "VPMADDWD + VPADDD (ymm)" for `avx2`, "VPDPBUSD (zmm)" for
        /// `avx512vnni`, "SDOT" for `neondot`.
        public let peakInstruction: String
    }

    /// The path's tile and requirements (zeros for a name this build lacks).
    public var tile: Tile {
        var info = qg_path_info()
        guard let p = cValue, qg_path_describe(p, &info) == 0 else {
            return Tile(mr: 0, nr: 0, kr: 0, panelN: 0, microkernel: "none", fewRowsMicrokernel: nil, fewRowsMR: 0, fewRowsNR: 0,
                        requires: "not in this build", isTestOnly: false, peakInstruction: "none")
        }
        return Tile(mr: Int(info.mr), nr: Int(info.nr), kr: Int(info.kr), panelN: Int(info.panel_n),
                    microkernel: String(cString: info.ukernel),
                    fewRowsMicrokernel: info.few_rows_ukernel.map { String(cString: $0) },
                    fewRowsMR: Int(info.few_rows_mr), fewRowsNR: Int(info.few_rows_nr),
                    requires: String(cString: info.requires), isTestOnly: info.test_only != 0,
                    peakInstruction: info.peak_instruction.map { String(cString: $0) } ?? "")
    }

    /// The shapes that test this path at its tiles' and its blocking's edges
    /// (`qg_path_test_shapes`, the one rule the kernel tester shares); empty
    /// for a path not in this build.
    package func testShapes(largeK: Int) -> (ms: [Int], ns: [Int], ks: [Int]) {
        guard let p = cValue else { return ([], [], []) }
        let capacity = Int(QG_TEST_SHAPES_MAX)
        var ms = [Int64](repeating: 0, count: capacity), ns = ms, ks = ms
        var mCount: Int32 = 0, nCount: Int32 = 0, kCount: Int32 = 0
        guard qg_path_test_shapes(p, Int64(largeK), &ms, &mCount, &ns, &nCount, &ks, &kCount) == 0 else { return ([], [], []) }
        return (ms.prefix(Int(mCount)).map(Int.init), ns.prefix(Int(nCount)).map(Int.init), ks.prefix(Int(kCount)).map(Int.init))
    }

    /// Rows of X the driver packs per task (MC) on this path for K, M and N
    /// (N matters for weights past half the L3: then the most rows its tile allows).
    package func blockRows(k: Int, m: Int, n: Int) -> Int {
        cValue.map { Int(qg_path_block_rows($0, Int64(k), Int64(m), Int64(n))) } ?? m
    }

    /// Rows of X per m-block (MC) of the 4-bit driver on this path for K and
    /// a group size; nil for a path without 4-bit tiles.
    package func int4BlockRows(k: Int, groupSize: Int) -> Int? {
        guard let c = cValue else { return nil }
        let rows = qg_w4_path_block_rows(c, Int64(k), Int64(groupSize))
        return rows > 0 ? Int(rows) : nil
    }

    /// The path's name, ``rawValue``.
    public var description: String { rawValue }

    /// The default for calls that pass no `kernel:`: `QGEMM_KERNEL` if set, else ``best``.
    /// An unknown or unsupported name in `QGEMM_KERNEL` makes those calls throw.
    public static var processDefault: Result<KernelPath, QGEMMError> { processDefaultStorage }

    private static let processDefaultStorage: Result<KernelPath, QGEMMError> = {
        guard let raw = getenv("QGEMM_KERNEL"), raw.pointee != 0 else { return .success(best) }
        let name = String(cString: raw)
        do throws(QGEMMError) { return .success(try resolve(name, origin: "QGEMM_KERNEL")) } catch { return .failure(error) }
    }()

    /// Parses a path name and checks that this machine can run it. The
    /// test-only paths are not among the names it takes (so `QGEMM_KERNEL`
    /// cannot make one the process default).
    ///
    /// - Throws: ``QGEMMError/Code/unsupportedKernel`` naming the paths available.
    public static func resolve(_ name: String, origin: String = "kernel") throws(QGEMMError) -> KernelPath {
        guard let path = KernelPath(rawValue: name.lowercased()), !path.tile.isTestOnly else {
            throw QGEMMError(.unsupportedKernel,
                             "\(origin) '\(name)' is not a kernel path; known: \(allCases.map(\.rawValue).joined(separator: ", "))")
        }
        try path.checkSupported()
        return path
    }

    func checkSupported() throws(QGEMMError) {
        guard isSupported else {
            throw QGEMMError(.unsupportedKernel,
                             "kernel path '\(rawValue)' is not supported on this CPU; available: \(KernelPath.available.map(\.rawValue).joined(separator: ", "))")
        }
    }

    static func choose(_ requested: KernelPath?) throws(QGEMMError) -> KernelPath {
        if let requested {
            try requested.checkSupported()
            return requested
        }
        return try processDefault.get()
    }
}
