import ArgumentParser
import Foundation
import QGEMM
import QGEMMBaseline

/// A GEMM shape M×K×N.
struct BenchShape: ExpressibleByArgument, CustomStringConvertible, Hashable {
    let m: Int, k: Int, n: Int

    init(m: Int, k: Int, n: Int) { self.m = m; self.k = k; self.n = n }

    init?(argument: String) {
        let parts = argument.lowercased().split(separator: "x", omittingEmptySubsequences: false).map { Int($0) }
        guard parts.count == 3, let m = parts[0], let k = parts[1], let n = parts[2], m >= 1, k >= 1, n >= 1 else {
            return nil
        }
        self.init(m: m, k: k, n: n)
    }

    var description: String { "\(m)x\(k)x\(n)" }

    /// About the bytes a run of this shape allocates, nil when that overflows
    /// Int: X and W at 5 bytes an element (int8, and sgemm's Float copy), 10
    /// for int4 weights and activations (Float, int8 or its quantized copy,
    /// sgemm's Float); Y at 8 (the output, sgemm's Float); and the packed
    /// weights, whose channels are padded to whole panels of 16 (16 times the
    /// weights at N = 1) and K to the layout's group.
    func bytesNeeded(for weights: BenchWeights, groupSize: Int) -> Int? {
        let (xBytes, wBytes) = weights == .int8 ? (5, 5) : (10, 10)
        // Whole panels of 16 channels and groups of K, counted without overflow.
        func ceilDiv(_ a: Int, _ b: Int) -> Int { a / b + (a % b == 0 ? 0 : 1) }
        let panels = ceilDiv(n, 16)
        var packed: [(Int, Int, Int)] = [(panels, ceilDiv(k, 4), 64)]
        if weights == .int4 {
            // A group longer than K packs as K rounded up to 8 (Int4Weights' packing
            // group); per panel and group, 16 channels' nibbles, then 96 bytes of
            // scales (16 in binary16, and the Float copy the layer keeps).
            let g = k >= groupSize ? groupSize : ceilDiv(k, 8) * 8
            let groups = ceilDiv(k, g)
            packed = [(panels, groups, 8 * g), (panels, groups, 96)]
        }
        var total = 0
        for (a, b, perElement) in [(m, k, xBytes), (n, k, wBytes), (m, n, 8)] + packed {
            let (ab, o1) = a.multipliedReportingOverflow(by: b)
            let (bytes, o2) = ab.multipliedReportingOverflow(by: perElement)
            let (sum, o3) = total.addingReportingOverflow(bytes)
            guard !o1, !o2, !o3 else { return nil }
            total = sum
        }
        return total
    }
    var operations: Double { 2 * Double(m) * Double(k) * Double(n) }
}

enum BenchSuite: String, ExpressibleByArgument, CaseIterable {
    case square, llm, bert, cnn

    var shapes: [BenchShape] {
        switch self {
        case .square:
            return [128, 256, 512, 1024, 2048].map { BenchShape(m: $0, k: $0, n: $0) }
        case .llm:
            return [1, 8, 32, 128].flatMap { m in
                [(4096, 4096), (4096, 11008), (11008, 4096)].map { BenchShape(m: m, k: $0.0, n: $0.1) }
            }
        case .bert:
            return [BenchShape(m: 384, k: 768, n: 768), BenchShape(m: 384, k: 768, n: 3072),
                    BenchShape(m: 384, k: 3072, n: 768)]
        case .cnn:
            // ResNet-50 at 224×224, batch 1, convolutions as im2col GEMMs:
            // M = output pixels, K = kernel area × input channels, N = output channels.
            return [(12544, 147, 64), (3136, 64, 64), (3136, 576, 64), (3136, 64, 256), (3136, 256, 64),
                    (784, 1152, 128), (784, 128, 512), (784, 512, 128), (196, 2304, 256), (196, 256, 1024),
                    (196, 1024, 256), (49, 4608, 512), (49, 512, 2048), (49, 2048, 512)]
                .map { BenchShape(m: $0.0, k: $0.1, n: $0.2) }
        }
    }
}

enum BenchOutputType: String, ExpressibleByArgument, CaseIterable, Codable {
    case int8, uint8, int32, float
}

/// The weights a bench row times: int8 (PackedWeights, quantized X in),
/// group-wise int4 (Int4Weights: Float X in, quantized per row inside the
/// timed call, Float Y out), or activations (ActivationProduct: Float X and
/// Float W, both quantized and W packed inside the timed call, Float Y out).
enum BenchWeights: String, ExpressibleByArgument, CaseIterable, Codable {
    case int8, int4, activations
}

struct BenchMachine: Codable {
    let cpu: String
    let cores: Int
    let kernel_paths: [String]
    let kernel: String
    let microkernel: String
    let openblas_core: String
    /// The core's kernels against the CPU's widest vectors, and who chose it.
    let openblas: OpenBLASCore
    let openblas_config: String
    /// Single-core int8 peak of the path's instruction, in GOP/s (2 ops per MAC):
    /// the best of the run's probes (one at start and one before every row).
    private(set) var int8_peak_gops: Double
    /// What the int8 probe runs (the path's instruction, e.g. "VPMADDWD + VPADDD (ymm)").
    let int8_peak_instruction: String
    /// The int8 probes taken, and the first of them (GOP/s).
    private(set) var int8_peak_probes = 1
    let int8_peak_first_gops: Double
    /// Single-core fp32 FMA peak, in GFLOP/s, with the widest FMA the CPU has.
    let fp32_peak_gflops: Double
    let fp32_peak_vector_bits: Int
    /// With --cold, the bytes read before every timed run (absent without):
    /// scripts/bench-peers has every peer read as many.
    var evict_bytes: Int? = nil
    /// With --cold, the chunks they are read in, each twice in a row (absent
    /// without): the peers read theirs so too.
    var evict_chunk_bytes: Int? = nil

    /// Counts a new int8 probe (GOP/s) and keeps the best.
    mutating func recordInt8Probe(_ gops: Double) {
        int8_peak_probes += 1
        int8_peak_gops = max(int8_peak_gops, gops)
    }

    var summary: String {
        """
        CPU \(cpu), \(cores) cores; kernel \(kernel) (\(microkernel))
        OpenBLAS core \(openblas.summary)
        measured single-core peaks: int8 \(String(format: "%.1f", int8_peak_gops)) GOP/s (\(int8_peak_instruction)), fp32 \(String(format: "%.1f", fp32_peak_gflops)) GFLOP/s (\(fp32_peak_vector_bits)-bit FMA)
        """
    }
}

struct BenchResult: Codable {
    let m: Int, k: Int, n: Int
    let threads: Int
    /// Threads the timed calls actually ran on (fewer than `threads` when the
    /// work was too small to split).
    let threads_used: Int
    let kernel: String
    let output_type: String
    /// int8 and uint8 output: the rounding mode, "single", "double" or
    /// "float" (the --rounding names); nil for the other outputs.
    var rounding: String? = nil
    /// "int8", "int4" with its group size ("int4-g32"; "int4-g32-uint8" with
    /// uint8 activations), or "activations".
    let weights: String
    let int8_gops: Double
    let int8_gops_best: Double
    let sgemm_gflops: Double?
    let sgemm_gflops_best: Double?
    let speedup: Double?
    let peak_fraction: Double
    /// The same two from the fastest runs (int8 best over sgemm best; int8
    /// best over the peak): the figures to compare on a shared machine.
    let speedup_best: Double?
    let peak_fraction_best: Double
    let int8_seconds: Double
    let sgemm_seconds: Double?
    let runs: Int
    /// int4 rows: bytes of packed weights and scales a call reads.
    var weight_bytes: Int? = nil
    /// int4 rows: those bytes over the fastest call's seconds, in GB/s.
    var weight_gbps_best: Double? = nil
    /// int4 rows: the fastest plain read of the call's own packed bytes, on
    /// the same threads, timed between the calls (PeakProbe.streamingRead),
    /// in GB/s.
    var stream_read_gbps_best: Double? = nil
    /// weight_gbps_best / stream_read_gbps_best: 1 means the call streams its
    /// weights as fast as a plain read does.
    var stream_fraction: Double? = nil
    /// "warm": runs follow each other, so a run finds what fits of its
    /// operands in the caches; "cold" (--cold): the caches are evicted before
    /// every timed run.
    var caches = "warm"
    /// The int8 peak `peak_fraction` divides by (GOP/s, one core): the best
    /// probe of the run up to this row.
    var peak_gops = 0.0

    static func csv(_ rows: [BenchResult]) -> String {
        // Full precision (Swift's shortest round-tripping form): a fixed number
        // of decimals would print small shapes' seconds as 0.0000.
        func f(_ v: Double?) -> String { v.map { "\($0)" } ?? "" }
        var out = "m,k,n,threads,threads_used,kernel,output_type,int8_gops,int8_gops_best,sgemm_gflops,sgemm_gflops_best,speedup,peak_fraction,speedup_best,peak_fraction_best,int8_seconds,sgemm_seconds,runs,weights,weight_bytes,weight_gbps_best,stream_read_gbps_best,stream_fraction,rounding,caches,peak_gops\n"
        for r in rows {
            out += "\(r.m),\(r.k),\(r.n),\(r.threads),\(r.threads_used),\(r.kernel),\(r.output_type),\(f(r.int8_gops)),\(f(r.int8_gops_best)),\(f(r.sgemm_gflops)),\(f(r.sgemm_gflops_best)),\(f(r.speedup)),\(f(r.peak_fraction)),\(f(r.speedup_best)),\(f(r.peak_fraction_best)),\(f(r.int8_seconds)),\(f(r.sgemm_seconds)),\(r.runs),\(r.weights),\(r.weight_bytes.map(String.init) ?? ""),\(f(r.weight_gbps_best)),\(f(r.stream_read_gbps_best)),\(f(r.stream_fraction)),\(r.rounding ?? ""),\(r.caches),\(f(r.peak_gops))\n"
        }
        return out
    }
}

/// What an int4 row's timing gives: the calls' seconds, and the seconds of
/// the plain reads of the same bytes taken between them.
struct Int4Timing {
    /// The calls' times and threads (and sgemm's beside them).
    let calls: SideTimes
    let weightBytes: Int
    let readTimes: [Double]
}

/// One side's timed runs and the threads it used, with sgemm's runs when
/// sgemm was timed beside it.
struct SideTimes {
    let times: [Double]
    let threadsUsed: Int
    let sgemmTimes: [Double]?
}

/// sgemm on one shape, the float counterpart of the int8 call (X as the
/// uint8 values dequantized, W as the int8 ones scaled), in buffers of its own
/// so that its runs can alternate with the int8 call's.
final class SgemmSide {
    let shape: BenchShape
    private let a: UnsafeMutableBufferPointer<Float>, b: UnsafeMutableBufferPointer<Float>
    private let c: UnsafeMutableBufferPointer<Float>

    init(_ s: BenchShape, x: [UInt8], w: [Int8]) {
        shape = s
        a = .allocate(capacity: x.count)
        _ = a.initialize(from: x.lazy.map { Float($0) * 0.02 - 2.56 })
        b = .allocate(capacity: w.count)
        _ = b.initialize(from: w.lazy.map { Float($0) * 0.01 })
        c = .allocate(capacity: s.m * s.n)
        c.initialize(repeating: 0)
    }

    deinit { a.deallocate(); b.deallocate(); c.deallocate() }

    func run() throws {
        try BLAS.sgemm(m: shape.m, k: shape.k, n: shape.n, a: UnsafeBufferPointer(a), b: UnsafeBufferPointer(b),
                       transposeB: true, c: c)
    }
}

struct BenchDocument: Codable {
    let machine: BenchMachine
    let results: [BenchResult]
    /// Where a run stopped on an error: the row and the error (absent from
    /// the JSON of a run that finished).
    var stopped: String? = nil
}

struct BenchTable {
    func printHeader() {
        print(pad("shape M×K×N", 20) + pad("thr", 4) + pad("used", 5) + pad("int8 GOP/s", 11) + pad("best", 9) + pad("sgemm GF/s", 11)
              + pad("speedup", 8) + pad("peak", 7))
    }

    func printRow(_ r: BenchResult) {
        let sg = r.sgemm_gflops.map { String(format: "%.1f", $0) } ?? "-"
        let sp = r.speedup.map { String(format: "%.2fx", $0) } ?? "-"
        print(pad("\(r.m)x\(r.k)x\(r.n)", 20) + pad("\(r.threads)", 4) + pad("\(r.threads_used)", 5)
              + pad(String(format: "%.1f", r.int8_gops), 11)
              + pad(String(format: "%.1f", r.int8_gops_best), 9) + pad(sg, 11) + pad(sp, 8)
              + pad(String(format: "%.0f%%", r.peak_fraction * 100), 7))
        if let bytes = r.weight_bytes, let w = r.weight_gbps_best, let read = r.stream_read_gbps_best, let f = r.stream_fraction {
            // Two significant digits where the fixed ones would read 0 (a
            // compute-bound row of a slow path reads its weights at MB/s).
            func figure(_ v: Double, _ digits: Int) -> String {
                v > 0 && v < pow(10, Double(-digits)) * 5 ? String(format: "%.2g", v) : String(format: "%.\(digits)f", v)
            }
            print("    weights \(figure(Double(bytes) / 1e6, 1)) MB read at \(figure(w, 1)) GB/s; "
                  + "a plain read of the same bytes: \(figure(read, 1)) GB/s (\(figure(f, 2)) of it)")
        }
        fflush(nil)
    }

    private func pad(_ s: String, _ width: Int) -> String {
        s.count >= width ? s + " " : s + String(repeating: " ", count: width - s.count)
    }
}

/// Progress lines on stderr: step i of n and an estimate of the time left.
enum Progress {
    static func report(index: Int, total: Int, started: Date, label: String) {
        let elapsed = Date().timeIntervalSince(started)
        var line = "[\(index + 1)/\(total)] \(label)"
        if index > 0 {
            let left = elapsed / Double(index) * Double(total - index)
            line += String(format: ", about %.0f s left", left)
        }
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }
}

/// `qgemm bench --cold`: a buffer larger than the caches, read before every
/// timed run and not timed, so that each run finds its weights in memory, not
/// in the caches. A decode step meets that: it reads each layer's weights
/// once, and the other layers' weights evict them before the next token.
///
/// The buffer is read in chunks of a quarter of the L3, each chunk twice in a
/// row. A last-level cache that keeps the lines it has seen used again (Zen 5
/// does) lets a single pass over the buffer go by: there, after one pass of
/// 66 MiB, int8 decode at 1×4096×4096 still read most of its 16 MiB of
/// weights from the L3 (129–154 GOP/s, 58–77 GB/s, against 42 GB/s streamed
/// from memory), and eight passes were needed to evict it (79–80 GOP/s).
/// The second read of a chunk hits in the L3, which makes its lines as worth
/// keeping as the weights; chunks of 8 MiB read twice evicted as well as
/// eight passes (76–79 GOP/s).
final class CacheEvictor {
    let buffer: UnsafeMutableRawBufferPointer
    /// Bytes per chunk: a quarter of the L3 (of the L2 where there is none),
    /// at least 1 MiB, a whole number of 64-byte lines.
    let chunkBytes: Int

    /// For runs on up to `threads` threads: twice the caches they may use, an
    /// L2 per thread and an L3 for each of as many L3s as there are threads
    /// (Zen's core complexes each have their own), and at least 64 MiB.
    /// (More threads than cores share the cores' caches: counted as cores.)
    init(threads: Int) {
        let cpu = CPUFeatures.current, t = min(max(threads, 1), max(cpu.cores, 1))
        let caches = cpu.l2CacheBytes * t + cpu.l3CacheBytes * min(t, Self.l3Count())
        buffer = .allocate(byteCount: max(2 * caches, 64 << 20), alignment: 64)
        chunkBytes = Self.chunkBytes(lastLevelCache: cpu.l3CacheBytes > 0 ? cpu.l3CacheBytes : cpu.l2CacheBytes)
        // Every page written once, so the reads touch memory, not the zero page.
        buffer.initializeMemory(as: UInt8.self, repeating: 0xA5)
    }

    deinit { buffer.deallocate() }

    /// The distinct L3 caches of the online CPUs (Linux sysfs: their level-3
    /// caches' shared_cpu_list); 1 where sysfs does not say. All of them, not
    /// only those this process may use: a larger buffer evicts no less.
    static func l3Count() -> Int {
        var lists = Set<String>()
        for cpu in onlineCPUs() {
            for index in 0..<8 {
                let dir = "/sys/devices/system/cpu/cpu\(cpu)/cache/index\(index)/"
                guard let level = try? String(contentsOfFile: dir + "level", encoding: .utf8) else { break }
                if level.trimmingCharacters(in: .whitespacesAndNewlines) == "3",
                   let list = try? String(contentsOfFile: dir + "shared_cpu_list", encoding: .utf8) {
                    lists.insert(list.trimmingCharacters(in: .whitespacesAndNewlines))
                }
            }
        }
        return max(lists.count, 1)
    }

    /// The online CPUs' numbers (sysfs `online`, such as "0-3,8-11": numbers
    /// may have gaps), or 0..<onlineCores where it cannot be read.
    static func onlineCPUs() -> [Int] {
        let fallback = Array(0..<max(CPUFeatures.current.onlineCores, 1))
        guard let text = try? String(contentsOfFile: "/sys/devices/system/cpu/online", encoding: .utf8) else { return fallback }
        var cpus: [Int] = []
        for part in text.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: ",") {
            let ends = part.split(separator: "-").map { Int($0) }
            guard let first = ends.first ?? nil, let last = ends.last ?? nil, ends.count <= 2, first >= 0,
                  first <= last, last - first < 1 << 16 else { return fallback }
            cpus.append(contentsOf: first...last)
        }
        return cpus.isEmpty ? fallback : cpus
    }

    /// A quarter of `lastLevelCache` bytes, at least 1 MiB, in whole lines.
    static func chunkBytes(lastLevelCache: Int) -> Int { max(lastLevelCache / 4, 1 << 20) / 64 * 64 }

    /// Reads the whole buffer on `threads` threads, chunk by chunk and each
    /// chunk twice, so that every core the timed run may use has its caches
    /// filled with it.
    func evict(threads: Int) {
        let all = UnsafeRawBufferPointer(buffer)
        var start = 0
        while start < all.count {
            let chunk = UnsafeRawBufferPointer(rebasing: all[start..<min(start + chunkBytes, all.count)])
            for _ in 0..<2 { _ = PeakProbe.streamingRead(chunk, threads: threads) }
            start += chunkBytes
        }
    }
}

/// A line on stderr at most every `interval` seconds while a row is timed:
/// one shape's runs can take minutes (a run of 8192³ takes seconds, and a
/// row makes at least eight on each side), and the row's own progress line
/// comes only before it.
final class BenchHeartbeat {
    static let interval = 10.0
    private var label = "", rowStart = 0.0, last = 0.0

    func start(_ label: String) {
        self.label = label
        rowStart = PeakProbe.now()
        last = rowStart
    }

    /// After each run of a block: `runs` so far in it, of `side`.
    func beat(side: String, runs: Int) {
        let now = PeakProbe.now()
        guard now - last >= Self.interval else { return }
        last = now
        let line = "    \(label): still timing \(side) (\(runs) runs of this block), \(String(format: "%.0f", now - rowStart)) s into the row\n"
        FileHandle.standardError.write(Data(line.utf8))
    }
}

/// Times the int8 GEMM and sgemm on one shape.
struct BenchRunner {
    /// The most timed runs of one shape and side (and of `linear --json`):
    /// --min-time stops adding runs there, and --repeat may not ask for more.
    static let mostRuns = 100_000

    let path: KernelPath
    let outputType: BenchOutputType
    let repeatCount: Int
    let minTime: Double
    let sgemm: Bool
    var weights: BenchWeights = .int8
    var groupSize = 32
    var activations = Int4Weights.Activations.int8
    /// --rounding: the requantization of int8 and uint8 output.
    var rounding: RoundingMode = .singleRounding
    /// Set by --cold: evicts the caches before every timed run.
    var evictor: CacheEvictor? = nil
    /// Says on stderr that a long row is still being timed.
    let heartbeat = BenchHeartbeat()

    func machine() -> BenchMachine {
        let int8 = int8PeakGOPS()
        let fp32 = PeakProbe.fp32FMAsPerSecond() * 2 / 1e9
        return BenchMachine(cpu: CPUFeatures.current.brand, cores: CPUFeatures.current.cores,
                            kernel_paths: KernelPath.available.map(\.rawValue), kernel: path.rawValue,
                            microkernel: weights == .int4 ? path.int4KernelName ?? path.kernelName : path.kernelName, openblas_core: BLAS.coreName, openblas: .current,
                            openblas_config: BLAS.configuration, int8_peak_gops: int8, int8_peak_instruction: path.tile.peakInstruction,
                            int8_peak_first_gops: int8,
                            fp32_peak_gflops: fp32, fp32_peak_vector_bits: PeakProbe.fp32VectorBits)
    }

    /// One probe of the path's int8 instruction on one core, in GOP/s.
    func int8PeakGOPS() -> Double { PeakProbe.int8MACsPerSecond(path: path) * 2 / 1e9 }

    /// Rounds of the int8 side and sgemm, one block of each after the other,
    /// when sgemm is timed: a neighbour that comes and goes on a shared
    /// machine then slows both sides alike, and the ratios of one run compare
    /// like with like.
    static let sideRounds = 3

    /// Times one side, and sgemm beside it when given. Alone: one warm-up
    /// run, then runs until both `repeatCount` runs and `minTime` seconds are
    /// reached. With sgemm: `sideRounds` rounds, each a block of this side
    /// and then a block of sgemm, each block one warm-up run (after the other
    /// side, whose data took the caches and whose threads may still spin)
    /// and then a third of the runs and of the time; each side gets at least
    /// `repeatCount` runs and `minTime` seconds in all (this side `seconds`,
    /// if given). `run(timed)` does and times one run (with --cold, after
    /// evicting the caches), recording figures of its own (a plain read's
    /// time) only when `timed`.
    func timeSides(threads: Int, seconds: Double? = nil, beside sgemm: SgemmSide?,
                   _ run: (_ timed: Bool) throws -> Double) throws -> (times: [Double], sgemmTimes: [Double]?) {
        let ownSeconds = seconds ?? minTime
        guard let sgemm else {
            _ = try run(false)
            var times: [Double] = []
            try repeatRuns(seconds: ownSeconds, side: "qgemm's side") { times.append(try run(true)) }
            return (times, nil)
        }
        BLAS.threads = threads
        let rounds = Self.sideRounds, secondsPerBlock = minTime / Double(rounds)
        var times: [Double] = [], sgemmTimes: [Double] = []
        for round in 0..<rounds {
            // --repeat shared out exactly (7: 3 + 2 + 2), so that neither side
            // passes it, nor mostRuns, on the run count.
            let runsPerBlock = repeatCount / rounds + (round < repeatCount % rounds ? 1 : 0)
            _ = try run(false)
            try repeatRuns(seconds: ownSeconds / Double(rounds), runs: runsPerBlock, most: Self.mostRuns / rounds,
                           side: "qgemm's side, round \(round + 1) of \(rounds)") {
                times.append(try run(true))
            }
            try sgemm.run()
            try repeatRuns(seconds: secondsPerBlock, runs: runsPerBlock, most: Self.mostRuns / rounds,
                           side: "sgemm, round \(round + 1) of \(rounds)") {
                sgemmTimes.append(try timedRun(threads: threads, sgemm.run))
            }
        }
        return (times, sgemmTimes)
    }

    /// The seconds of one run of `body`, after the caches are evicted (on
    /// `threads` threads) with --cold; the eviction is not timed.
    private func timedRun(threads: Int, _ body: () throws -> Void) rethrows -> Double {
        evictor?.evict(threads: threads)
        let t0 = PeakProbe.now()
        try body()
        return PeakProbe.now() - t0
    }

    /// The stop rule of every timed loop: runs `body` until both `least`
    /// runs (by default `repeatCount`) and `seconds` have passed (at most
    /// `most` runs, by default `mostRuns`).
    private func repeatRuns(seconds: Double, runs least: Int? = nil, most: Int = BenchRunner.mostRuns, side: String,
                            _ body: () throws -> Void) rethrows {
        var runs = 0
        let start = PeakProbe.now()
        while runs < (least ?? repeatCount) || (PeakProbe.now() - start < seconds && runs < most) {
            try body()
            runs += 1
            heartbeat.beat(side: side, runs: runs)
        }
    }

    func run(_ s: BenchShape, threads: Int, peakGOPS: Double) throws -> BenchResult {
        heartbeat.start("\(s) threads \(threads)")
        // A seeded generator: SystemRandomNumberGenerator makes a system call per
        // value, which costs seconds on the larger shapes.
        var rng = CheckRandom(seed: UInt64(s.m &* 31 &+ s.k &* 17 &+ s.n))
        let x = (0..<s.m * s.k).map { _ in UInt8.random(in: 0...255, using: &rng) }
        let w = (0..<s.n * s.k).map { _ in Int8.random(in: -127...127, using: &rng) }
        let xp = try QuantizationParameters(type: .uint8, scale: 0.02, zeroPoint: 128)
        let outType: QuantizedType = outputType == .uint8 ? .uint8 : .int8
        let yp = try QuantizationParameters(type: outType, scale: Float(Double(s.k).squareRoot() * 0.02 * 0.01 * 40),
                                            zeroPoint: outType == .uint8 ? 128 : 0)
        // sgemm on the same values, timed in blocks between the int8 side's.
        let side = sgemm ? SgemmSide(s, x: x, w: w) : nil
        let int4 = try weights == .int4 ? timeInt4(s, threads, &rng, beside: side) : nil
        let activations = try weights == .activations ? timeActivations(s, threads, &rng, beside: side) : nil
        // int8 weights only for int8 runs: their packing refuses a K that
        // could overflow an int8 accumulator, which int4 runs do not have.
        let timed: SideTimes = try int4?.calls ?? activations ?? x.withUnsafeBufferPointer { xb in
            let packed = try PackedWeights(weights: w, outputChannels: s.n, inputChannels: s.k,
                                           scales: .perChannel([Float](repeating: 0.01, count: s.n)),
                                           input: xp, output: yp, rounding: rounding)
            switch outputType {
            case .int8: return try timeInto(Int8.self, packed, xb, s, threads, beside: side)
            case .uint8: return try timeInto(UInt8.self, packed, xb, s, threads, beside: side)
            case .int32: return try timeInto(Int32.self, packed, xb, s, threads, beside: side)
            case .float: return try timeInto(Float.self, packed, xb, s, threads, beside: side)
            }
        }
        let (int8Times, threadsUsed, sgemmTimes) = (timed.times, timed.threadsUsed, timed.sgemmTimes)
        // timeSides runs each side at least --repeat ≥ 1 times.
        guard let int8Best = int8Times.min() else { throw ValidationError("no timed runs (--repeat must be ≥ 1)") }
        let int8Median = Self.median(int8Times)
        let sgMedian = sgemmTimes.map(Self.median), sgBest = sgemmTimes?.min()
        let gops = s.operations / int8Median / 1e9
        let sgGflops = sgMedian.map { s.operations / $0 / 1e9 }
        let int4Best = int4.map { Double($0.weightBytes) / int8Best / 1e9 }
        let readGBps = int4.flatMap { t in t.readTimes.min().map { Double(t.weightBytes) / $0 / 1e9 } }
        return BenchResult(m: s.m, k: s.k, n: s.n, threads: threads, threads_used: threadsUsed, kernel: path.rawValue,
                           output_type: weights != .int8 ? "float" : outputType.rawValue,
                           rounding: weights == .int8 && (outputType == .int8 || outputType == .uint8)
                               ? RoundingArgument.allCases.first { $0.mode == rounding }?.rawValue : nil,
                           weights: weights == .int4 ? "int4-g\(groupSize)\(self.activations == .uint8 ? "-uint8" : "")" : weights.rawValue,
                           int8_gops: gops,
                           int8_gops_best: s.operations / int8Best / 1e9, sgemm_gflops: sgGflops,
                           sgemm_gflops_best: sgBest.map { s.operations / $0 / 1e9 },
                           speedup: sgGflops.map { gops / $0 },
                           peak_fraction: gops / (peakGOPS * Double(min(threads, CPUFeatures.current.cores))),
                           speedup_best: sgBest.map { $0 / int8Best },
                           peak_fraction_best: s.operations / int8Best / 1e9 / (peakGOPS * Double(min(threads, CPUFeatures.current.cores))),
                           int8_seconds: int8Median, sgemm_seconds: sgMedian, runs: int8Times.count,
                           weight_bytes: int4?.weightBytes, weight_gbps_best: int4Best,
                           stream_read_gbps_best: readGBps, stream_fraction: int4Best.flatMap { w in readGBps.map { w / $0 } },
                           caches: evictor == nil ? "warm" : "cold", peak_gops: peakGOPS)
    }

    private func timeInto<Y: GEMMOutputScalar & Numeric>(_: Y.Type, _ packed: PackedWeights, _ xb: UnsafeBufferPointer<UInt8>,
                                                         _ s: BenchShape, _ threads: Int, beside sgemm: SgemmSide?) throws -> SideTimes {
        var y = [Y](repeating: 0, count: s.m * s.n)
        return try y.withUnsafeMutableBufferPointer { yb in
            var used = 0
            let (times, sgemmTimes) = try timeSides(threads: threads, beside: sgemm) { _ in
                try timedRun(threads: threads) {
                    try packed.gemm(xb, rows: s.m, into: yb, kernel: path, threads: threads)
                    used = max(used, PackedWeights.threadsUsedByLastCall)
                }
            }
            return SideTimes(times: times, threadsUsed: used, sgemmTimes: sgemmTimes)
        }
    }

    /// Int4Weights from Gaussian Float weights: each timed call takes Float
    /// X, quantizes its rows and writes Float Y (what a decode step does).
    /// Each call alternates with a plain read of the same packed weights and
    /// scales (PeakProbe.streamingRead, same thread count): the two speeds
    /// come from the same moments of a noisy machine and find the same bytes
    /// in the same caches (none with --cold, which evicts before each).
    private func timeInt4(_ s: BenchShape, _ threads: Int, _ rng: inout CheckRandom, beside sgemm: SgemmSide?) throws -> Int4Timing {
        let wf = (0..<s.n * s.k).map { _ in rng.gaussian() }
        let xf = (0..<s.m * s.k).map { _ in rng.gaussian() }
        let layer = try Int4Weights(quantizing: wf, outputChannels: s.n, inputChannels: s.k, groupSize: groupSize,
                                    activations: activations)
        let weightBytes = layer.packedByteCount + layer.packedScaleByteCount
        func plainRead() -> Double {
            evictor?.evict(threads: threads)
            return layer.withPackedBytes { w, scales in PeakProbe.streamingRead(w, scales, threads: threads) }
        }
        var y = [Float](repeating: 0, count: s.m * s.n)
        var workspace = Int4Weights.Workspace()
        var used = 0
        var readTimes: [Double] = []
        let (callTimes, sgemmTimes) = try xf.withUnsafeBufferPointer { xb in
            try y.withUnsafeMutableBufferPointer { yb in
                // Each run is a call and then a plain read of its bytes; calls
                // and reads share the time, hence twice --min-time for the pairs.
                return try timeSides(threads: threads, seconds: 2 * minTime, beside: sgemm) { timed in
                    let dt = try timedRun(threads: threads) {
                        try layer(xb, rows: s.m, into: yb, workspace: &workspace, kernel: path, threads: threads)
                    }
                    used = max(used, PackedWeights.threadsUsedByLastCall)
                    let read = plainRead()
                    if timed { readTimes.append(read) }
                    return dt
                }
            }
        }
        return Int4Timing(calls: SideTimes(times: callTimes, threadsUsed: used, sgemmTimes: sgemmTimes), weightBytes: weightBytes,
                          readTimes: readTimes)
    }

    /// ActivationProduct on Gaussian Float operands, B [N×K] (as Kᵀ in
    /// attention's Q·Kᵀ): each timed call quantizes both, packs B and writes
    /// Float Y.
    private func timeActivations(_ s: BenchShape, _ threads: Int, _ rng: inout CheckRandom, beside sgemm: SgemmSide?) throws -> SideTimes {
        let a = (0..<s.m * s.k).map { _ in rng.gaussian() }
        let b = (0..<s.n * s.k).map { _ in rng.gaussian() }
        var y = [Float](repeating: 0, count: s.m * s.n)
        var product = ActivationProduct()
        var used = 0
        let (times, sgemmTimes) = try a.withUnsafeBufferPointer { ab in
            try b.withUnsafeBufferPointer { bb in
                try y.withUnsafeMutableBufferPointer { yb in
                    try timeSides(threads: threads, beside: sgemm) { _ in
                        try timedRun(threads: threads) {
                            try product.multiply(ab, rows: s.m, inputChannels: s.k, by: bb, outputChannels: s.n,
                                                 layout: .outputMajor, into: yb, kernel: path, threads: threads)
                            used = max(used, PackedWeights.threadsUsedByLastCall)
                        }
                    }
                }
            }
        }
        return SideTimes(times: times, threadsUsed: used, sgemmTimes: sgemmTimes)
    }

    /// The median of run times: the middle run, or the mean of the two middle
    /// ones for an even count (every timed figure of the tool takes it so).
    static func median(_ v: [Double]) -> Double {
        let s = v.sorted()
        return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
    }
}

