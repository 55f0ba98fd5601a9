import CQGEMM

/// What the running CPU supports, detected once.
public struct CPUFeatures: Sendable, Hashable {
    public let brand: String
    public let avx2, fma, avx512f, avx512bw, avx512vl, avx512vnni, avxVNNI: Bool
    public let neon, dotprod, i8mm: Bool
    /// Online logical CPUs.
    public let cores: Int

    /// The features of this machine.
    public static let current: CPUFeatures = {
        let f = qg_cpu_get_features()!.pointee
        let brand = withUnsafeBytes(of: f.brand) { raw in
            String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
        }
        return CPUFeatures(brand: brand, avx2: f.avx2 != 0, fma: f.fma != 0, avx512f: f.avx512f != 0,
                           avx512bw: f.avx512bw != 0, avx512vl: f.avx512vl != 0, avx512vnni: f.avx512vnni != 0,
                           avxVNNI: f.avxvnni != 0, neon: f.neon != 0, dotprod: f.dotprod != 0, i8mm: f.i8mm != 0,
                           cores: Int(qg_cpu_count()))
    }()

    /// Feature names and values, in a fixed order, for reports.
    public var list: [(name: String, present: Bool)] {
        #if arch(arm64)
        return [("neon", neon), ("dotprod", dotprod), ("i8mm", i8mm)]
        #else
        return [("avx2", avx2), ("fma", fma), ("avx512f", avx512f), ("avx512bw", avx512bw),
                ("avx512vl", avx512vl), ("avx512vnni", avx512vnni), ("avxvnni", avxVNNI)]
        #endif
    }
}
