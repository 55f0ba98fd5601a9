import ArgumentParser
import Dispatch
import Foundation
import QGEMM
import QGEMMBaseline

struct Validate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check every kernel path bit for bit against the scalar reference.",
        discussion: """
        Without options, runs a seeded pairwise sample of configurations (every value of every \
        dimension and every pair of values appears). --sweep runs the full Cartesian product of \
        the shapes around each checked path's tile (M, N and K from its MR, NR, KR and block \
        rows), activation type, zero point, granularity, rounding mode, \
        clamp, thread count, output type and strides; build in release mode for it. The exit \
        status is non-zero if any path differs from the reference.
        """)

    @Flag(name: .long, help: "Run the full Cartesian product (millions of cases; release build).")
    var sweep = false

    @Flag(name: .long, help: "Fewer accuracy and 4-bit cases (finishes in seconds).")
    var quick = false

    @Flag(name: .customLong("bit-exact-only"), help: ArgumentHelp(
        "Skip the accuracy table against cblas_sgemm: check the paths' bits only.",
        discussion: "The pairwise sample and the 4-bit tiles, as without it; seconds even in a debug build."))
    var bitExactOnly = false

    @Option(name: .long, parsing: .unconditional, help: "Randomized soak: draw random cases for this many seconds (> 0).")
    var soak: Double?

    @Option(name: .customLong("kernel"), help: "Kernel path to check (default: every path this CPU supports but the reference, which they are checked against).")
    var kernelOption: KernelPathToCheck?
    var kernel: KernelPath? { kernelOption?.path }

    @Option(name: .long, parsing: .unconditional, help: "Concurrent checks, 1...1024 (default: number of cores).",
            transform: ThreadCount.parse)
    var jobs: Int?

    @Option(name: .customLong("inject-fault"), help: ArgumentHelp(
        "Test the checker: flip the lowest bit of PATH's first output in every case before comparing.",
        discussion: "The run must then fail; the fault is made in the checker, never in the library.",
        valueName: "path"))
    var injectFaultOption: KernelPathToCheck?
    var injectFault: KernelPath? { injectFaultOption?.path }

    @Option(name: .long, parsing: .unconditional,
            help: "Seed, 0...2^64−1: the same seed gives the same cases, data and report order, whatever --jobs.",
            transform: { text in
                guard let seed = UInt64(text) else {
                    throw ValidationError("a seed is a whole number in 0...\(UInt64.max), got '\(text)'")
                }
                return seed
            })
    var seed: UInt64 = 2026

    @Option(name: .long, help: "Write a JSON summary to FILE ('-' for stdout).")
    var json: String?

    /// Options that mean nothing here are refused, not ignored.
    func validate() throws {
        if kernel == .reference || injectFault == .reference {
            throw ValidationError("the reference is what validate checks the paths against; name another path with --kernel or --inject-fault")
        }
        if soak != nil {
            for (given, option) in [(sweep, "--sweep"), (quick, "--quick"), (bitExactOnly, "--bit-exact-only"), (json != nil, "--json")]
            where given {
                throw ValidationError("\(option) does not go with --soak (a soak draws random cases and reports the first mismatch)")
            }
        }
        if sweep && bitExactOnly {
            throw ValidationError("--bit-exact-only does not go with --sweep, which has no accuracy table to skip")
        }
        if let soak, !(soak > 0 && soak.isFinite) { throw ValidationError("--soak takes a positive number of seconds, got \(soak)") }
        if let injectFault, !checkedPaths.contains(injectFault) {
            throw ValidationError("--inject-fault \(injectFault) names a path this run does not check (\(checkedPaths.map(\.rawValue).joined(separator: ", ")))")
        }
        try OutputPath.check(["--json": json])
    }

    /// The paths this run checks: --kernel's, or every one this CPU has but the reference.
    private var checkedPaths: [KernelPath] { kernel.map { [$0] } ?? KernelPath.available.filter { $0 != .reference } }

    func run() throws {
        let paths = checkedPaths
        let jobs = self.jobs ?? CPUFeatures.current.cores
        if let soak { return try runSoak(seconds: soak, paths: paths, jobs: jobs) }
        let unsupported = KernelPath.allCases.filter { !$0.isSupported }.map(\.rawValue)
        let quiet = json.map(OutputFile.isStandardOutput) ?? false
        var failed = false
        var document: [String: Any] = ["paths": paths.map(\.rawValue), "unsupported_paths": unsupported,
                                       "injected_fault": injectFault?.rawValue ?? NSNull(), "seed": seed]
        if let injectFault {
            FileHandle.standardError.write(Data("validate: --inject-fault \(injectFault): every case flips a bit of that path's output, so this run must fail\n".utf8))
        }

        if !sweep && !bitExactOnly {
            let accuracy = try runAccuracy(paths: paths, quiet: quiet)
            // The table checks what the reference and the paths share (packing,
            // multipliers): against the ideal rounding of the same integers, one
            // rounding of a multiplier good to 2^-31 (single rounding) or to a
            // few Float ulps (float) is off by half an LSB and a hair at most,
            // double rounding by one. Past that, something both sides read is wrong.
            let outside = accuracy.filter { $0.maxErrorLSB > ($0.rounding == RoundingMode.doubleRounding.rawValue ? 1.001 : 0.501) }
            for r in outside {
                let what = "\(r.m)x\(r.k)x\(r.n) \(r.distribution) \(r.granularity) \(r.rounding)"
                FileHandle.standardError.write(Data("validate: accuracy \(what): maxLSB \(r.maxErrorLSB) is past its bound (0.5 LSB, 1 for double rounding)\n".utf8))
            }
            document["accuracy_within_bounds"] = outside.isEmpty
            failed = failed || accuracy.contains { !$0.bitExact } || !outside.isEmpty
            document["accuracy"] = try JSONSerialization.jsonObject(with: JSONEncoder().encode(accuracy))
        }

        let cases = sweep ? ValidationCases.fullProduct(paths: paths, seed: seed) : ValidationCases.pairwise(paths: paths, seed: seed)
        FileHandle.standardError.write(Data("""
            validate: \(cases.count) \(sweep ? "sweep" : "pairwise") cases × paths \(paths.map(\.rawValue)) against reference, \(jobs) jobs\
            \(unsupported.isEmpty ? "" : "; not on this CPU: \(unsupported.joined(separator: ", "))")\n
            """.utf8))
        let outcome = ValidationRunner.run(cases, paths: paths, jobs: jobs, injectingFaultInto: injectFault)
        failed = failed || !outcome.mismatches.isEmpty || !outcome.errors.isEmpty
        document["bit_exact"] = [
            "mode": sweep ? "sweep" : "pairwise", "cases": cases.count, "elements_compared": outcome.elements,
            "mismatches": outcome.mismatches.count, "errors": outcome.errors.count, "seconds": outcome.seconds,
            "first_mismatches": outcome.mismatches.prefix(10).map(\.description),
        ] as [String: Any]
        let int4 = try ValidateInt4.run(paths: paths, quick: quick, seed: seed, injectingFaultInto: injectFault)
        failed = failed || !int4.mismatches.isEmpty
        document["int4_bit_exact"] = [
            "paths": paths.filter(\.hasInt4Kernel).map(\.rawValue), "cases": int4.cases, "elements_compared": int4.elements,
            "mismatches": int4.mismatches.count, "first_mismatches": Array(int4.mismatches.prefix(10)),
        ] as [String: Any]
        document["pass"] = !failed
        if !quiet {
            print("bit-exactness (\(sweep ? "full product" : "pairwise sample"), seed \(seed)): \(cases.count) cases, \(outcome.elements) output elements per path, paths \(paths.map(\.rawValue).joined(separator: ", ")), \(String(format: "%.1f", outcome.seconds)) s")
            for m in outcome.mismatches.prefix(10) { print("MISMATCH \(m)") }
            for e in outcome.errors.prefix(10) { print("ERROR \(e)") }
            print("4-bit weights: \(int4.cases) cases, \(int4.elements) output elements, paths \(paths.filter(\.hasInt4Kernel).map(\.rawValue).joined(separator: ", "))")
            for m in int4.mismatches.prefix(10) { print("MISMATCH \(m)") }
            print(failed ? "FAIL: not bit-exact" : "PASS: every path bit-exact against the reference")
        }
        // The summary first: a JSON file that cannot be written must not hide the result.
        if let json {
            try OutputFile.write(try JSONSerialization.data(withJSONObject: document, options: [.prettyPrinted, .sortedKeys]), to: json)
        }
        if failed { throw ExitCode(1) }
    }

    /// Random cases until the time is up: shapes up to ~300, every activation
    /// type, zero point, mode, output (dynamic included), clamp, stride and
    /// 1–4 threads, on every path. Each case carries its seed, so a mismatch
    /// prints a reproducer.
    func runSoak(seconds: Double, paths: [KernelPath], jobs: Int) throws {
        var rng = CheckRandom(seed: seed)
        let start = Date()
        var total = ValidationRunner.Outcome(), cases = 0, lastReport = Date()
        func dim() -> Int {
            // Mostly small (tails), sometimes up to ~300.
            switch rng.next() % 4 {
            case 0: return Int(rng.next() % 8) + 1
            case 1, 2: return Int(rng.next() % 70) + 1
            default: return Int(rng.next() % 300) + 1
            }
        }
        // At least one batch, however short the time.
        repeat {
            let batch: [KernelCheck] = (0..<64).map { _ in
                let activation: QuantizedType = rng.next() % 2 == 0 ? .int8 : .uint8
                let zx: Int32 = switch rng.next() % 4 {
                case 0: activation.min
                case 1: activation.max
                default: Int32(Int64(rng.next() % 256)) + activation.min
                }
                let strided = rng.next() % 3 == 0
                let dims = (m: dim(), n: dim(), k: dim()) // drawn in this order, as a seed has always drawn them
                return KernelCheck(m: dims.m, k: dims.k, n: dims.n, activation: activation, xZeroPoint: zx,
                                   perChannel: rng.next() % 2 == 0,
                                   rounding: RoundingMode.allCases[Int(rng.next() % 3)], narrowClamp: rng.next() % 3 == 0,
                                   threads: Int(rng.next() % 4) + 1,
                                   output: KernelCheck.Output.allCases[Int(rng.next() % 5)],
                                   rowStrideExtra: strided ? Int(rng.next() % 9) + 1 : 0,
                                   outputStrideExtra: strided ? Int(rng.next() % 9) + 1 : 0, seed: rng.next())
            }
            let outcome = ValidationRunner.run(batch, paths: paths, jobs: jobs, quiet: true, injectingFaultInto: injectFault)
            cases += batch.count
            total.elements += outcome.elements
            total.mismatches += outcome.mismatches
            total.errors += outcome.errors
            for m in outcome.mismatches {
                print("MISMATCH \(m)\n  reproduce: KernelCheck(\(m.check.swiftLiteral)).run(paths: [.\(m.path)])")
            }
            if Date().timeIntervalSince(lastReport) > 10 {
                lastReport = Date()
                FileHandle.standardError.write(Data(String(format: "soak: %.0f/%.0f s, %d cases, %d mismatches\n",
                                                           Date().timeIntervalSince(start), seconds, cases,
                                                           total.mismatches.count).utf8))
            }
        } while Date().timeIntervalSince(start) < seconds
        let failed = !total.mismatches.isEmpty || !total.errors.isEmpty
        print("soak: \(cases) cases, \(total.elements) output elements per path checked in \(String(format: "%.0f", Date().timeIntervalSince(start))) s on \(paths.map(\.rawValue).joined(separator: ", ")) (seed \(seed)): \(failed ? "FAIL, \(total.mismatches.count) mismatches, \(total.errors.count) errors" : "no mismatch")")
        for e in total.errors.prefix(10) { print("ERROR \(e)") }
        if failed { throw ExitCode(1) }
    }

    func runAccuracy(paths: [KernelPath], quiet: Bool) throws -> [AccuracyCheck.Result] {
        let shapes = quick ? [(8, 256, 64), (33, 768, 96)]
                           : [(8, 256, 64), (33, 768, 96), (128, 1024, 256), (1, 4096, 512), (384, 768, 768)]
        var results: [AccuracyCheck.Result] = []
        let total = shapes.count * AccuracyCheck.Distribution.allCases.count * 2 * RoundingMode.allCases.count
        if !quiet {
            print("accuracy against cblas_sgemm (dB), against the ideal rounding of the same integers, and the seed's comparison")
            print("M×K×N          distribution  weights     rounding        exact  vsFloat vsIdeal maxLSB | sym(q_bias) asym(4-term) | t_sym_ref t_sym_kern t_asym (ms)")
        }
        var index = 0
        for (m, k, n) in shapes {
            for dist in AccuracyCheck.Distribution.allCases {
                for gran in [PackedWeights.Granularity.perTensor, .perChannel] {
                    for mode in RoundingMode.allCases {
                        index += 1
                        let r = try AccuracyCheck(m: m, k: k, n: n, distribution: dist, granularity: gran, rounding: mode,
                                                  seed: seed &+ UInt64(index)).run(paths: paths)
                        results.append(r)
                        if !quiet {
                            func f(_ v: Double) -> String { String(format: "%6.1f", v) }
                            func ms(_ v: Double) -> String { String(format: "%8.2f", v * 1000) }
                            print("\("\(m)x\(k)x\(n)".padding(toLength: 15, withPad: " ", startingAt: 0))"
                                  + "\(dist.rawValue.padding(toLength: 14, withPad: " ", startingAt: 0))"
                                  + "\(gran.rawValue.padding(toLength: 12, withPad: " ", startingAt: 0))"
                                  + "\(mode.rawValue.padding(toLength: 16, withPad: " ", startingAt: 0))"
                                  + "\(r.bitExact ? "PASS " : "FAIL ") \(f(r.sqnrVsFloat))  \(f(r.sqnrVsIdeal)) \(String(format: "%6.3f", r.maxErrorLSB)) |"
                                  + "      \(f(r.symmetricSQNR))       \(f(r.asymmetricSQNR)) | \(ms(r.symmetricReferenceSeconds)) \(ms(r.symmetricKernelSeconds)) \(ms(r.asymmetricSeconds))")
                            if let mm = r.firstMismatch { print("  first difference: \(mm)") }
                        }
                        if index % 12 == 0 {
                            FileHandle.standardError.write(Data("validate: accuracy case \(index)/\(total)\n".utf8))
                        }
                    }
                }
            }
        }
        return results
    }
}

/// The configurations `qgemm validate` checks: the shapes around the tiles of
/// the paths checked (``TileShapes``), with every option.
enum ValidationCases {
    static func fullProduct(paths: [KernelPath], seed: UInt64) -> [KernelCheck] {
        let shapes = TileShapes(paths: paths)
        var out: [KernelCheck] = []
        out.reserveCapacity(shapes.product.count * 2160)
        var index: UInt64 = 0
        for (m, n, k) in shapes.product {
            for activation in QuantizedType.allCases {
                for zx in [activation.min, activation.max, activation == .int8 ? -37 : 91] {
                    for perChannel in [false, true] { for rounding in RoundingMode.allCases {
                        for narrow in [false, true] { for threads in 1...3 {
                            for output in KernelCheck.Output.allCases { for strided in [false, true] {
                                index &+= 1
                                out.append(KernelCheck(m: m, k: k, n: n, activation: activation, xZeroPoint: zx,
                                                       perChannel: perChannel, rounding: rounding, narrowClamp: narrow,
                                                       threads: threads, output: output,
                                                       rowStrideExtra: strided ? 3 : 0, outputStrideExtra: strided ? 5 : 0,
                                                       seed: seed &+ index))
                            } }
                        } }
                    } }
                }
            }
        }
        return out
    }

    static func pairwise(paths: [KernelPath], seed: UInt64) -> [KernelCheck] {
        let shapes = TileShapes(paths: paths)
        return KernelCheck.pairwiseSample(ms: shapes.ms, ns: shapes.ns, ks: shapes.ks, seed: seed)
    }
}

/// Runs checks on `jobs` threads, with progress on stderr.
enum ValidationRunner {
    struct Outcome {
        var mismatches: [KernelCheck.Mismatch] = []
        var errors: [String] = []
        var elements = 0
        var seconds = 0.0
    }

    static func run(_ cases: [KernelCheck], paths: [KernelPath], jobs: Int, quiet: Bool = false,
                    injectingFaultInto faulty: KernelPath? = nil) -> Outcome {
        let lock = NSLock()
        nonisolated(unsafe) var outcome = Outcome()
        nonisolated(unsafe) var done = 0
        // Time left is estimated from work, not from cases: the sweep lists its
        // costly cases (the largest M with K = 1000) last, so counting cases said
        // "about 30 s left" for its last five minutes. A case costs its M·N·K
        // multiply-adds of the reference plus a fixed cost (data, packing,
        // calls), about as much as 40,000 of them (fitted on the sweep).
        @Sendable func work(_ check: KernelCheck) -> Double { Double(check.m * check.n * max(check.k, 1)) + 40_000 }
        let totalWork = cases.reduce(0) { $0 + work($1) }
        nonisolated(unsafe) var doneWork = 0.0
        let start = Date()
        // Chunks of up to 64 cases, at least four per job: a soak batch of 64
        // cases in one chunk ran on one job whatever --jobs said.
        let chunk = max(1, min(64, cases.count / (4 * max(jobs, 1))))
        let chunks = (cases.count + chunk - 1) / chunk
        nonisolated(unsafe) var lastReport = Date()
        // Each chunk's findings are kept in its own slot and joined in case
        // order at the end, so the report does not depend on --jobs or timing.
        nonisolated(unsafe) var found = [(mismatches: [KernelCheck.Mismatch], errors: [String])](repeating: ([], []), count: chunks)
        DispatchQueue.concurrentPerform(iterations: jobs) { worker in
            var c = worker
            while c < chunks {
                var local = Outcome()
                var localWork = 0.0
                for check in cases[(c * chunk)..<min((c + 1) * chunk, cases.count)] {
                    localWork += work(check)
                    do {
                        if let mismatch = try check.run(paths: paths, injectingFaultInto: faulty) { local.mismatches.append(mismatch) }
                        local.elements += check.elementCount
                    } catch {
                        local.errors.append("\(check): \(error)")
                    }
                }
                lock.lock()
                found[c] = (local.mismatches, local.errors)
                outcome.mismatches += local.mismatches
                outcome.elements += local.elements
                done += min(chunk, cases.count - c * chunk)
                doneWork += localWork
                let now = Date()
                if !quiet && now.timeIntervalSince(lastReport) > 2 {
                    lastReport = now
                    let elapsed = now.timeIntervalSince(start)
                    let left = doneWork > 0 ? elapsed / doneWork * (totalWork - doneWork) : 0
                    FileHandle.standardError.write(Data(String(format: "validate: %d/%d cases, %d mismatches, about %.0f s left\n",
                                                               done, cases.count, outcome.mismatches.count, left).utf8))
                }
                lock.unlock()
                c += jobs
            }
        }
        outcome.mismatches = found.flatMap(\.mismatches)
        outcome.errors = found.flatMap(\.errors)
        outcome.seconds = Date().timeIntervalSince(start)
        return outcome
    }
}
