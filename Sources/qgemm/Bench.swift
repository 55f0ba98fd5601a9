import ArgumentParser
import Foundation
import QGEMM
import QGEMMBaseline

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Time the int8 GEMM against OpenBLAS cblas_sgemm on the same shapes.",
        discussion: """
        Shapes are M×K×N (Y[M×N] = X[M×K]·W[N×K]ᵀ). Each shape is timed after a warm-up, repeated \
        until both --repeat runs and --min-time seconds are reached; GOP/s count 2·M·N·K operations. \
        sgemm runs with the same thread count, pinned with openblas_set_num_threads, in turns with the int8 \
        GEMM: three rounds of a block of each, every block warmed up. The int8 peak is \
        probed at start and again before every row; the peak column divides by the best probe so far.
        """)

    @Option(name: .long, parsing: .upToNextOption, help: "Suites: square, llm, bert, cnn (default: square when no --shape).")
    var suite: [BenchSuite] = []

    @Option(name: .long, help: "A shape MxKxN; repeat the option for more.")
    var shape: [BenchShape] = []

    @Option(name: .long, parsing: .unconditional, help: "Thread counts (each 1...1024), comma-separated, e.g. 1,2.",
            transform: ThreadCount.parseList)
    var threads: [Int] = [1]

    @Option(name: .long, help: "Kernel path (default: the best this CPU supports).")
    var kernel: KernelPath?

    @Option(name: .customLong("output-type"), help: "int8 (default), uint8, int32 or float; int4 weights write float.")
    var outputType: BenchOutputType?

    @Option(name: .long, help: "Rounding of int8 and uint8 output: single (default), double or float.")
    var rounding: RoundingArgument?

    @Option(name: .long, parsing: .unconditional, help: "Minimum timed runs per shape, 1...\(BenchRunner.mostRuns).")
    var `repeat`: Int = 5

    @Option(name: .customLong("min-time"), parsing: .unconditional, help: "Minimum seconds of timed runs per shape and side, 0...3600.")
    var minTime: Double = 0.3

    @Option(name: .long, help: "Write JSON to FILE ('-' for stdout).")
    var json: String?

    @Option(name: .long, help: "Write CSV to FILE ('-' for stdout).")
    var csv: String?

    @Flag(name: .long, help: "Skip the sgemm side (int8 only).")
    var noSgemm = false

    @Option(name: .long, help: "Weights: int8; int4 (group-wise 4-bit, Float in and out, rows quantized inside the timed call); or activations (ActivationProduct: both operands Float, quantized and the second packed inside the timed call, Float out).")
    var weights: BenchWeights = .int8

    @Option(name: .customLong("group-size"), parsing: .unconditional, help: "K values per int4 scale: a multiple of 8 from 8 to 4096 (with --weights int4).")
    var groupSize: Int?

    @Option(name: .long, help: "With --weights int4: the rows quantized to int8 (default, symmetric) or to uint8 with a zero point per row.")
    var activations: ActivationsArgument?

    @Flag(name: .long, help: ArgumentHelp(
        "Evict the caches before every timed run (not timed), as in decode, where each layer's weights are read once per token.",
        discussion: "The eviction reads a buffer of twice the caches the threads may use (an L2 each, and an L3 for each of as many L3s as threads; at least 64 MiB), in chunks of a quarter of the L3, each chunk twice in a row (one pass left a Zen 5's L3 keeping most of the weights); it counts towards --min-time. Without it, runs follow each other and find what fits of their weights in the caches."))
    var cold = false

    /// The output type timed: --output-type, int8 by default (float for int4 weights and activations).
    var output: BenchOutputType { outputType ?? (weights == .int8 ? .int8 : .float) }

    func validate() throws {
        if activations != nil, weights != .int4 { throw ValidationError("--activations needs --weights int4") }
        if let g = groupSize {
            guard weights == .int4 else { throw ValidationError("--group-size needs --weights int4") }
            guard Int4Weights.isValidGroupSize(g) else {
                throw ValidationError("--group-size must be a multiple of 8 from 8 to 4096, got \(g)")
            }
        }
        if weights != .int8, let t = outputType, t != .float {
            throw ValidationError("--weights \(weights.rawValue) writes float output; --output-type \(t.rawValue) applies to int8 weights")
        }
        if rounding != nil {
            guard weights == .int8, output == .int8 || output == .uint8 else {
                throw ValidationError("--rounding applies only to int8 and uint8 output of int8 weights")
            }
        }
        // The timed loops stop at BenchRunner.mostRuns runs, so a larger
        // --repeat would never end, and an hour per shape and side is beyond any use.
        guard (1...BenchRunner.mostRuns).contains(`repeat`) else {
            throw ValidationError("--repeat must be in 1...\(BenchRunner.mostRuns), got \(`repeat`)")
        }
        guard minTime >= 0, minTime <= 3600 else { throw ValidationError("--min-time must be in 0...3600 seconds, got \(minTime)") }
        try OutputPath.check(["--json": json, "--csv": csv])
        // A shape, --shape's or a suite's (run() adds those), is refused before
        // anything is allocated when its buffers would not fit in memory (or
        // their size overflows).
        let memory = CPUFeatures.usableMemoryBytes()
        let fromSuites = (suite.isEmpty && shape.isEmpty ? [BenchSuite.square] : suite).flatMap { s in
            s.shapes.map { (shape: $0, name: "shape \($0) of --suite \(s.rawValue)") }
        }
        let group = groupSize ?? 32
        for (s, name) in shape.map({ (shape: $0, name: "--shape \($0)") }) + fromSuites {
            // ActivationProduct refuses such a K whatever the values, but only
            // on the shape's turn (the rows are kept then too, below).
            if weights == .activations, s.k > ActivationProduct.maxInputChannels {
                throw ValidationError("\(name): K = \(s.k) exceeds \(ActivationProduct.maxInputChannels), the most a product of two "
                                      + "activations takes (255·127·K must fit the int32 accumulator)")
            }
            guard let bytes = s.bytesNeeded(for: weights, groupSize: group), UInt64(bytes) <= memory / 2 else {
                throw ValidationError("\(name) needs \(s.bytesNeeded(for: weights, groupSize: group).map { "\($0 >> 20) MiB" } ?? "more bytes than Int holds") of buffers; "
                                      + "this process may use \(memory >> 20) MiB (the machine's memory, or its cgroup's limit) and a bench shape half of it")
            }
        }
    }

    func run() throws {
        let path: KernelPath
        if weights == .int4 {
            let chosen = try kernel ?? KernelPath.processDefault.get()
            if chosen.hasInt4Kernel { path = chosen }
            else if kernel == nil { path = KernelPath.bestInt4 }
            else {
                throw ValidationError("kernel path '\(chosen)' has no 4-bit-weight kernel; paths with one: "
                                      + KernelPath.availableInt4.map(\.rawValue).joined(separator: ", "))
            }
        } else {
            path = try kernel ?? KernelPath.processDefault.get()
        }
        var shapes = shape
        let suites = suite.isEmpty && shape.isEmpty ? [BenchSuite.square] : suite
        for s in suites { shapes += s.shapes }
        var runner = BenchRunner(path: path, outputType: output, repeatCount: `repeat`, minTime: minTime,
                                 sgemm: !noSgemm)
        runner.weights = weights
        runner.rounding = (rounding ?? .single).mode
        runner.groupSize = groupSize ?? 32
        runner.activations = (activations ?? .int8).kind
        if cold { runner.evictor = CacheEvictor(threads: threads.max() ?? 1) }
        var machine = runner.machine()
        machine.evict_bytes = runner.evictor?.buffer.count
        machine.evict_chunk_bytes = runner.evictor?.chunkBytes
        let threadList = threads
        let jsonToStdout = [json, csv].contains { $0.map(OutputFile.isStandardOutput) ?? false }
        if !jsonToStdout {
            print(machine.summary)
            if let e = runner.evictor {
                print("caches       cold: \(e.buffer.count >> 20) MiB read before every timed run (not timed), in chunks of \(String(format: "%.1f", Double(e.chunkBytes) / 1_048_576)) MiB read twice each")
            }
        }
        var results: [BenchResult] = []
        let total = shapes.count * threadList.count
        let started = Date()
        let table = BenchTable()
        if !jsonToStdout { table.printHeader() }
        for (i, (s, t)) in shapes.flatMap({ s in threadList.map { (s, $0) } }).enumerated() {
            Progress.report(index: i, total: total, started: started, label: "\(s) threads \(t)")
            // The int8 peak is probed again before every row, and each row is
            // measured against the best probe so far: a neighbour only ever
            // slows a probe, so a single one taken at a slow moment would
            // overstate every fraction of the run.
            machine.recordInt8Probe(runner.int8PeakGOPS())
            do {
                let r = try runner.run(s, threads: t, peakGOPS: machine.int8_peak_gops)
                results.append(r)
                if !jsonToStdout { table.printRow(r) }
            } catch {
                // A row the library refuses (int8 weights past the accumulator's
                // bound depend on the values drawn) ends the run, but the rows
                // before it are still written where asked; a failure to write
                // them is told, and the row's error is the run's.
                if !jsonToStdout { printPeakLine(machine) }
                do { try write(results, machine, stopped: "at \(s) threads \(t): \(error)") } catch let writeError {
                    FileHandle.standardError.write(Data("bench: the rows before the failed one were not written: \(writeError)\n".utf8))
                }
                throw error
            }
        }
        if !jsonToStdout { printPeakLine(machine) }
        try write(results, machine)
    }

    private func printPeakLine(_ machine: BenchMachine) {
        print(String(format: "peak: each row against the best int8 probe before it; %d probes, best %.1f GOP/s, first %.1f",
                     machine.int8_peak_probes, machine.int8_peak_gops, machine.int8_peak_first_gops))
    }

    /// The rows to --json and --csv, where asked; `stopped` says where and
    /// why a run that failed stopped (the JSON's `stopped`).
    private func write(_ results: [BenchResult], _ machine: BenchMachine, stopped: String? = nil) throws {
        if let json {
            let doc = BenchDocument(machine: machine, results: results, stopped: stopped)
            let enc = JSONEncoder()
            enc.outputFormatting = [.prettyPrinted, .sortedKeys]
            try OutputFile.write(try enc.encode(doc), to: json)
        }
        if let csv {
            try OutputFile.write(Data(BenchResult.csv(results).utf8), to: csv)
        }
    }
}
