import ArgumentParser
import Foundation
import QGEMM
import QGEMMBaseline

struct Info: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "CPU features, kernel paths and the OpenBLAS build in use.")

    @Option(name: .long, help: "Write the report as JSON to FILE ('-' for stdout).")
    var json: String?

    func validate() throws {
        try OutputPath.check(["--json": json])
    }

    func run() throws {
        let cpu = CPUFeatures.current
        let defaultKernel = (try? KernelPath.processDefault.get()) ?? .reference
        let int8Peak = PeakProbe.int8MACsPerSecond(path: defaultKernel, seconds: 0.05) * 2 / 1e9
        let fp32Peak = PeakProbe.fp32FMAsPerSecond(seconds: 0.05) * 2 / 1e9
        let fp32Bits = PeakProbe.fp32VectorBits
        let blas = OpenBLASCore.current
        let paths = KernelPath.allCases.map { ($0, $0.isSupported) }
        // The block sizes the drivers use at a few K: int8 from the path's X
        // block budget, 4-bit (group 32) from the L2 above.
        let blockKs = [64, 768, 4096]
        let int4Path = defaultKernel.hasInt4Kernel ? defaultKernel : KernelPath.bestInt4
        let int8Blocks = defaultKernel == .reference ? [] : blockKs.map { (k: $0, rows: defaultKernel.blockRows(k: $0, m: Int(Int32.max), n: 1)) }
        let int4Blocks = blockKs.compactMap { k in int4Path.int4BlockRows(k: k, groupSize: 32).map { (k: k, rows: $0) } }
        let defaultPath: String
        switch KernelPath.processDefault {
        case .success(let p): defaultPath = p.rawValue
        case .failure(let e): defaultPath = "error: \(e.message)"
        }
        let physicalMemory = ProcessInfo.processInfo.physicalMemory, usableMemory = CPUFeatures.usableMemoryBytes()
        if let json {
            let object: [String: Any] = [
                "cpu": cpu.brand, "cores": cpu.cores, "online_cores": cpu.onlineCores,
                "memory_bytes": ["usable": usableMemory, "physical": physicalMemory],
                "features": Dictionary(uniqueKeysWithValues: cpu.list.map { ($0.name, $0.present) }),
                "kernel_paths": paths.filter(\.1).map { $0.0.rawValue },
                "default_kernel": defaultPath,
                "openblas": try blas.jsonObject().merging(["config": BLAS.configuration, "threads": BLAS.threads]) { a, _ in a },
                "caches": ["l1d_bytes": cpu.l1DataCacheBytes, "l2_bytes": cpu.l2CacheBytes, "l3_bytes": cpu.l3CacheBytes],
                "line_crossing_stores_cheap": cpu.lineCrossingStoresAreCheap,
                "decode_one_stream": cpu.decodeReadsOneStream,
                "avx2_widens_by_shuffles": cpu.avx2WidensBytesByShuffles,
                "avx2_widens_weights_ahead": cpu.avx2WidensWeightsAhead,
                "int4_high_nibbles_by_gfni": cpu.int4HighNibblesByGFNI,
                "block_rows": ["int8": ["path": defaultKernel.rawValue,
                                        "by_k": Dictionary(uniqueKeysWithValues: int8Blocks.map { ("\($0.k)", $0.rows) })],
                               "int4_group32": ["path": int4Path.rawValue,
                                                "by_k": Dictionary(uniqueKeysWithValues: int4Blocks.map { ("\($0.k)", $0.rows) })]],
                "int8_peak_gops": int8Peak, "int8_peak_instruction": defaultKernel.tile.peakInstruction,
                "fp32_peak_gflops": fp32Peak, "fp32_peak_vector_bits": fp32Bits,
            ]
            let data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
            try OutputFile.write(data, to: json)
            return
        }
        let cores = cpu.cores < cpu.onlineCores
            ? "\(cpu.cores) of \(cpu.onlineCores) logical cores usable (affinity mask or cgroup CPU quota)"
            : "\(cpu.cores) logical cores"
        print("CPU          \(cpu.brand.isEmpty ? "unknown" : cpu.brand), \(cores)")
        print("memory       " + (usableMemory < physicalMemory
            ? "\(Self.gibibytes(usableMemory)) usable (cgroup limit), \(Self.gibibytes(physicalMemory)) installed"
            : "\(Self.gibibytes(physicalMemory)) usable"))
        print("features     " + cpu.list.map { "\($0.name) \($0.present ? "yes" : "no")" }.joined(separator: ", "))
        print("caches       " + [("L1d", cpu.l1DataCacheBytes), ("L2", cpu.l2CacheBytes), ("L3", cpu.l3CacheBytes)]
            .map { "\($0.0) \(Self.size($0.1))" }.joined(separator: ", ") + " (first CPU, as the OS reports them)")
        let blocks = { (list: [(k: Int, rows: Int)]) in list.map { "\($0.rows) at K = \($0.k)" }.joined(separator: ", ") }
        var blockParts: [String] = []
        if !int8Blocks.isEmpty { blockParts.append("int8 on \(defaultKernel.rawValue) \(blocks(int8Blocks)) (its X block budget)") }
        if !int4Blocks.isEmpty { blockParts.append("4-bit on \(int4Path.rawValue), group 32, \(blocks(int4Blocks)) (a quarter of the L2)") }
        print("blocks       rows of X per task (MC): " + (blockParts.isEmpty ? "none (the reference runs whole)" : blockParts.joined(separator: "; ")))
        if KernelPath.avx512vnni.isSupported {
            print("stores       int32 and float rows off a 64-byte line (avx512vnni): " + (cpu.lineCrossingStoresAreCheap
                ? "as they are at K ≤ 128, split at the lines above (a store across a line costs this CPU about one)"
                : "split at the lines (a store across a line costs this CPU about two)"))
            print("decode       4-bit weights at M = 1 (avx512vnni, amxint8): " + (cpu.decodeReadsOneStream
                ? "one panel after another, its nibbles one stream from memory with a software prefetch (M = 2 too, with weights past the L2); M = 4…8 (int8 on avx512vnni: 10…12) prefetch the next panels in address order"
                : "four panels side by side, four streams of nibbles from memory"))
            print("unpacking    4-bit high nibbles (avx512vnni main tile, 3 rows or more): " + (cpu.int4HighNibblesByGFNI
                ? "by one GF2P8AFFINEQB (qg_w4_8x32c8__avx512vnnigfni)"
                : cpu.gfni ? "by a shift and an AND (the GFNI twin runs on Intel CPUs only: on Zen 4 it was slower)" : "by a shift and an AND"))
        }
        if KernelPath.avx2.isSupported {
            print("widening     int8 weights to int16 (avx2 main tile): " + (cpu.avx2WidensBytesByShuffles
                ? "by byte shuffles (VPSHUFB, VPERMQ, VPMOVSXBW: this CPU's shifts share port 0 with VPMADDWD)"
                : "by shifts (VPSLLW, VPSRAW)")
                + (cpu.avx2WidensWeightsAhead
                    ? "; once per step of channels for all of a block's row groups, in blocks of 32 rows or more (this CPU's widening costs beside VPMADDWD)"
                    : ""))
        }
        print("kernel paths " + paths.map { "\($0.0.rawValue) \($0.1 ? "yes" : "no")" }.joined(separator: ", "))
        print("default      \(defaultPath)" + (ProcessInfo.processInfo.environment["QGEMM_KERNEL"] != nil ? " (QGEMM_KERNEL)" : ""))
        print("OpenBLAS     core \(blas.summary); \(BLAS.threads) threads")
        print("peaks        int8 \(String(format: "%.1f", int8Peak)) GOP/s (\(defaultKernel.tile.peakInstruction), the \(defaultKernel.rawValue) path's, 1 core), "
              + "fp32 \(String(format: "%.1f", fp32Peak)) GFLOP/s (\(fp32Bits)-bit FMA, 1 core)")
        print("             \(BLAS.configuration)")
    }

    /// "23.5 GiB".
    static func gibibytes(_ bytes: UInt64) -> String { String(format: "%.1f GiB", Double(bytes) / 1_073_741_824) }

    /// "48 KiB", "2 MiB", or "unknown" for 0.
    static func size(_ bytes: Int) -> String {
        if bytes <= 0 { return "unknown" }
        if bytes % (1 << 20) == 0 { return "\(bytes >> 20) MiB" }
        return bytes % 1024 == 0 ? "\(bytes >> 10) KiB" : "\(bytes) B"
    }
}

enum OutputFile {
    /// Whether `path` is this process's standard output: `-`, or a path that
    /// names it (written as `-` is, not opened and truncated: `> log` would
    /// lose what was printed before).
    static func isStandardOutput(_ path: String) -> Bool {
        ["-", "/dev/stdout", "/dev/fd/1", "/proc/self/fd/1"].contains(path)
    }

    /// Writes `data` to `path`, or to stdout when `path` is "-" or names it.
    static func write(_ data: Data, to path: String) throws {
        var bytes = data
        if bytes.last != UInt8(ascii: "\n") { bytes.append(UInt8(ascii: "\n")) }
        if isStandardOutput(path) {
            FileHandle.standardOutput.write(bytes)
        } else {
            // A failure here comes after the work: a QGEMMError (exit 1, the
            // system's reason), not a usage error.
            try RegularFile.save([[UInt8](bytes)], to: URL(fileURLWithPath: path))
        }
    }
}
