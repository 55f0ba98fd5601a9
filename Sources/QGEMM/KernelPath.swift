import CQGEMM

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A kernel path: one implementation of the GEMM. All paths give bit-identical
/// results; ``reference`` defines them.
///
/// The process default is the best path this CPU supports, or the one named by
/// the environment variable `QGEMM_KERNEL` (read once). Every entry point also
/// takes a per-call `kernel:` option.
public enum KernelPath: String, Sendable, CaseIterable, Hashable, CustomStringConvertible {
    /// The scalar reference: slow, obvious, int64 throughout.
    case reference
    /// Plain C with the blocked driver, for CPUs with no supported SIMD.
    case portable
    /// AVX2, exact: int8 widened to int16, VPMADDWD.
    case avx2
    /// AVX-512 VNNI: VPDPBUSD on zmm registers.
    case avx512vnni
    /// arm64 NEON dot product (SDOT / UDOT).
    case neondot

    var cValue: qg_path {
        switch self {
        case .reference: QG_PATH_REFERENCE
        case .portable: QG_PATH_PORTABLE
        case .avx2: QG_PATH_AVX2
        case .avx512vnni: QG_PATH_AVX512VNNI
        case .neondot: QG_PATH_NEONDOT
        }
    }

    /// Whether this build and this CPU can run the path.
    public var isSupported: Bool { qg_path_is_supported(cValue) != 0 }

    /// The paths this machine can run, worst to best.
    public static var available: [KernelPath] { allCases.filter(\.isSupported) }

    /// The best path this machine can run.
    public static var best: KernelPath { available.last ?? .reference }

    /// Name of the microkernel the path runs, e.g. `qg_gemm_6x8_avx2`.
    public var kernelName: String { String(cString: qg_path_kernel_name(cValue)) }

    public var description: String { rawValue }

    /// The default for calls that pass no `kernel:`: `QGEMM_KERNEL` if set, else ``best``.
    /// An unknown or unsupported name in `QGEMM_KERNEL` makes those calls throw.
    public static var processDefault: Result<KernelPath, QGEMMError> { processDefaultStorage }

    private static let processDefaultStorage: Result<KernelPath, QGEMMError> = {
        guard let raw = getenv("QGEMM_KERNEL"), raw.pointee != 0 else { return .success(best) }
        let name = String(cString: raw)
        do throws(QGEMMError) { return .success(try resolve(name, origin: "QGEMM_KERNEL")) } catch { return .failure(error) }
    }()

    /// Parses a path name and checks that this machine can run it.
    ///
    /// - Throws: ``QGEMMError/Code/unsupportedKernel`` naming the paths available.
    public static func resolve(_ name: String, origin: String = "kernel") throws(QGEMMError) -> KernelPath {
        guard let path = KernelPath(rawValue: name.lowercased()) else {
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

    static func choose(_ requested: KernelPath?) throws -> KernelPath {
        if let requested {
            try requested.checkSupported()
            return requested
        }
        return try processDefault.get()
    }
}
