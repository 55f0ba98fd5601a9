internal import CQGEMM

/// What the running CPU supports and how much of the machine this process
/// may use, detected once.
public struct CPUFeatures: Sendable, Hashable {
    /// The CPU brand string, trailing blanks trimmed (CPUID on x86-64, the
    /// `machdep.cpu.brand_string` sysctl on Darwin); empty where the system
    /// does not report one (arm64 Linux).
    public let brand: String
    /// x86-64 AVX2, usable (the OS saves the ymm state). False on arm64.
    public let avx2: Bool
    /// x86-64 FMA, usable (the OS saves the ymm state). False on arm64.
    public let fma: Bool
    /// x86-64 AVX-512 Foundation, usable (the OS saves the zmm and opmask
    /// state). False on arm64.
    public let avx512f: Bool
    /// x86-64 AVX-512 byte and word instructions (requires ``avx512f``). False on arm64.
    public let avx512bw: Bool
    /// x86-64 AVX-512 vector-length extensions (requires ``avx512f``). False on arm64.
    public let avx512vl: Bool
    /// x86-64 AVX-512 VNNI, the 512-bit int8 dot products (requires ``avx512f``).
    /// False on arm64.
    public let avx512vnni: Bool
    /// x86-64 AVX-VNNI, the VEX-encoded 256-bit int8 dot products (requires
    /// ``avx2``). False on arm64.
    public let avxVNNI: Bool
    /// x86-64 GFNI, the Galois-field byte instructions (`GF2P8AFFINEQB`): where
    /// the CPU has it and it pays (``int4HighNibblesByGFNI``), the avx512vnni
    /// path's 4-bit main tile brings the high nibbles down with one of them.
    /// False on arm64.
    public let gfni: Bool
    /// arm64 Advanced SIMD: true on every arm64 CPU, false on x86-64.
    public let neon: Bool
    /// arm64 dot-product instructions (`SDOT`/`UDOT`, FEAT_DotProd). False on x86-64.
    public let dotprod: Bool
    /// arm64 int8 matrix multiply (`SMMLA`/`USMMLA`, FEAT_I8MM). False on x86-64.
    public let i8mm: Bool
    /// Logical CPUs this process may use: on Linux those of the affinity
    /// mask (`taskset`, a container's cpuset) of the thread that first asked,
    /// at most the cgroup's CPU quota rounded up (a container's `--cpus`);
    /// elsewhere the online CPUs. What a call run on all cores (`threads:
    /// nil`) runs on. Never more than ``onlineCores``.
    public let cores: Int
    /// Online logical CPUs, whether this process may use them or not.
    public let onlineCores: Int
    /// Bytes of the level-1 data cache, the level-2 and the level-3 cache of the
    /// first CPU, as the OS reports them (Linux sysfs, Darwin sysctl); 0 where
    /// it does not.
    public let l1DataCacheBytes: Int, l2CacheBytes: Int, l3CacheBytes: Int
    /// Whether a 64-byte store across two cache lines costs this CPU about as
    /// much as one within a line (AMD family 1Ah; measured on Zen 5). The
    /// avx512vnni path then stores int32 and float rows that start off a line
    /// as they are at K ≤ 128 instead of splitting them at the lines. Only
    /// the speed depends on it, never a result.
    public let lineCrossingStoresAreCheap: Bool
    /// Whether the avx512vnni and amxint8 paths read the weights of calls of
    /// few rows as one stream from memory (AMD family 1Ah; measured on Zen
    /// 5): the 4-bit decode tile (the tile of one-row groups: M = 1) reads its
    /// four panels one at a time, each panel's nibbles from start to end with
    /// a software prefetch, instead of side by side (0.93–0.97 of a plain
    /// read instead of 0.78–0.87), 4-bit calls of two rows whose weights exceed
    /// the L2 do the same, and 4-bit calls of 4 to 8 rows and avx512vnni int8
    /// calls of 10 to 12 prefetch the next tile's panels in
    /// address order. Only the speed depends on it, never a result.
    public let decodeReadsOneStream: Bool
    /// Whether the avx2 path's int8 main tile widens the weights' bytes to
    /// int16 with byte shuffles (VPSHUFB, VPERMQ, VPMOVSXBW) rather than
    /// shifts: Intel's Haswell and Broadwell cores with AVX2 (family 6, models
    /// 3Ch, 3Fh, 45h, 46h, 3Dh, 47h, 4Fh and 56h), whose vector shifts share
    /// port 0 with VPMADDWD. Only the speed depends on it, never a result.
    public let avx2WidensBytesByShuffles: Bool
    /// Whether the avx2 path widens each step's int8 weights to int16 once
    /// per block of at least 32 rows, for all of the block's row groups,
    /// instead of in every main tile: AMD's Zen 1 and Zen+ (family 17h,
    /// models below 30h), where the tile's widening instructions cost beside
    /// VPMADDWD. Only the speed depends on it, never a result.
    public let avx2WidensWeightsAhead: Bool
    /// Whether the avx512vnni path's 4-bit main tile brings each chunk's high
    /// nibbles down with one GF2P8AFFINEQB (its twin,
    /// `qg_w4_8x32c8__avx512vnnigfni`) rather than a shift and a mask: Intel
    /// CPUs with ``gfni``, whose server cores run all three on VPDPBUSD's
    /// ports (where the CPU also has the path). On AMD's Zen 4 the twin ran
    /// slower, so AMD CPUs keep the shift. Only the speed depends on it, never
    /// a result.
    public let int4HighNibblesByGFNI: Bool

    /// The features of this machine.
    public static let current: CPUFeatures = {
        let f = qg_cpu_get_features()!.pointee
        let brand = withUnsafeBytes(of: f.brand) { raw in
            String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
        }
        return CPUFeatures(brand: brand, avx2: f.avx2 != 0, fma: f.fma != 0, avx512f: f.avx512f != 0,
                           avx512bw: f.avx512bw != 0, avx512vl: f.avx512vl != 0, avx512vnni: f.avx512vnni != 0,
                           avxVNNI: f.avxvnni != 0, gfni: f.gfni != 0, neon: f.neon != 0, dotprod: f.dotprod != 0, i8mm: f.i8mm != 0,
                           cores: Int(qg_cpu_count()), onlineCores: Int(qg_cpu_online_count()), l1DataCacheBytes: Int(qg_cpu_cache_bytes(1)),
                           l2CacheBytes: Int(qg_cpu_cache_bytes(2)), l3CacheBytes: Int(qg_cpu_cache_bytes(3)),
                           lineCrossingStoresAreCheap: qg_cpu_line_crossing_stores_cheap() != 0,
                           decodeReadsOneStream: qg_cpu_one_stream_decode() != 0,
                           avx2WidensBytesByShuffles: qg_cpu_widen_bytes_by_shuffles() != 0,
                           avx2WidensWeightsAhead: qg_cpu_avx2_widens_weights_ahead() != 0,
                           int4HighNibblesByGFNI: qg_cpu_w4_high_nibbles_by_gfni() != 0)
    }()

    /// Bytes of memory this process may use: the physical memory, or on
    /// Linux its cgroup's memory limit (a container's `--memory`) when that
    /// is lower; found once, at the first call, as ``cores`` is (a limit
    /// changed while the process runs is not seen). ``Int4Weights/searchingScales(weights:outputChannels:inputChannels:groupSize:bias:calibrationInput:rows:steps:groupScales:errorCompensation:activations:threads:)``
    /// tries its α values one at a time when their weights would not fit in
    /// it side by side, and `qgemm` refuses shapes whose buffers would take
    /// more than half.
    public static func usableMemoryBytes() -> UInt64 {
        availableMemoryBytes()
    }

    /// Feature names and values, in a fixed order, for reports.
    public var list: [(name: String, present: Bool)] {
        #if arch(arm64)
        return [("neon", neon), ("dotprod", dotprod), ("i8mm", i8mm)]
        #else
        return [("avx2", avx2), ("fma", fma), ("avx512f", avx512f), ("avx512bw", avx512bw),
                ("avx512vl", avx512vl), ("avx512vnni", avx512vnni), ("avxvnni", avxVNNI), ("gfni", gfni)]
        #endif
    }
}
