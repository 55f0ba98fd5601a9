import Foundation
import QGEMM
import QGEMMBaseline

/// Which OpenBLAS kernels the float baseline runs, and whether they are the
/// best this CPU could run, so that a ratio to sgemm is read against the
/// right baseline.
///
/// OpenBLAS picks a "core" (a set of kernels) at start-up from CPUID, unless
/// `OPENBLAS_CORETYPE` forces one. A core below the CPU's widest vectors (for
/// example `Haswell` on an AVX-512 CPU, or `Prescott` when an older OpenBLAS
/// does not recognise a newer CPU) makes sgemm slower than it could be, and
/// every int8-over-sgemm ratio larger. The variable is only reported here,
/// never changed.
struct OpenBLASCore: Codable {
    /// The widest vector instructions a core's kernels (or a CPU) use.
    /// Encoded (JSON) and printed by name, e.g. "AVX-512".
    enum VectorISA: String, Codable, Comparable, CustomStringConvertible {
        case sse = "SSE", avx = "AVX", avx2 = "AVX2", avx512 = "AVX-512"

        private var width: Int {
            switch self {
            case .sse: 128
            case .avx: 256
            case .avx2: 257 // 256-bit integer vectors too
            case .avx512: 512
            }
        }

        static func < (a: Self, b: Self) -> Bool { a.width < b.width }

        var description: String { rawValue }

        /// The ISA of an x86 OpenBLAS core name; nil for names not listed
        /// (other architectures, newer cores).
        init?(openBLASCore name: String) {
            switch name.lowercased() {
            case "skylakex", "cooperlake", "sapphirerapids": self = .avx512
            case "haswell", "zen", "excavator": self = .avx2
            case "sandybridge", "bulldozer", "piledriver", "steamroller": self = .avx
            case "prescott", "core2", "penryn", "dunnington", "nehalem", "atom", "opteron", "opteron_sse3",
                 "barcelona", "bobcat", "athlon", "katmai", "coppermine", "northwood", "banias", "yonah", "nano":
                self = .sse
            default: return nil
            }
        }

        /// The widest vectors this CPU runs that OpenBLAS has kernels for.
        init?(cpu: CPUFeatures) {
            #if arch(x86_64)
            if cpu.avx512f && cpu.avx512bw && cpu.avx512vl { self = .avx512 }
            else if cpu.avx2 && cpu.fma { self = .avx2 }
            else { self = .sse }
            #else
            return nil
            #endif
        }
    }

    let core: String
    let core_isa: VectorISA?
    let cpu_isa: VectorISA?
    /// True when the core's vectors are narrower than the CPU's.
    let below_cpu: Bool
    /// "OPENBLAS_CORETYPE=<value>" when the variable is set, else nil.
    let forced_by: String?

    private enum CodingKeys: String, CodingKey { case core, core_isa, cpu_isa, below_cpu, forced_by }

    /// Every key written, unknown ones as null, so `info --json` and `bench --json` say the same.
    func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(core, forKey: .core)
        try c.encode(core_isa, forKey: .core_isa)
        try c.encode(cpu_isa, forKey: .cpu_isa)
        try c.encode(below_cpu, forKey: .below_cpu)
        try c.encode(forced_by, forKey: .forced_by)
    }

    /// As a JSON object, for reports built with JSONSerialization.
    func jsonObject() throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: JSONEncoder().encode(self)) as? [String: Any] ?? [:]
    }

    static var current: OpenBLASCore {
        let core = BLAS.coreName
        let coreISA = VectorISA(openBLASCore: core), cpuISA = VectorISA(cpu: .current)
        let forced = ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"].map { "OPENBLAS_CORETYPE=\($0)" }
        var below = false
        if let coreISA, let cpuISA { below = coreISA < cpuISA }
        return OpenBLASCore(core: core, core_isa: coreISA, cpu_isa: cpuISA, below_cpu: below, forced_by: forced)
    }

    /// One line for reports, e.g. "Haswell (AVX2 kernels), forced by
    /// OPENBLAS_CORETYPE=Haswell; below this CPU's AVX-512: sgemm is slower
    /// than OpenBLAS's best here".
    var summary: String {
        var s = core + (core_isa.map { " (\($0) kernels)" } ?? "")
        if let forced_by { s += ", forced by \(forced_by)" }
        if below_cpu, let cpu_isa {
            s += "; below this CPU's \(cpu_isa)"
            if forced_by == nil { s += " (OPENBLAS_CORETYPE unset: this OpenBLAS did not recognise the CPU)" }
            s += ", so sgemm is slower than OpenBLAS's best here"
        }
        return s
    }
}
