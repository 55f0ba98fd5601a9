import Foundation
import Testing
@testable import QGEMM
import QGEMMBaseline

/// The `qgemm` tool, run as a process (it is built next to the test bundle).
@Suite("qgemm command line")
struct CommandLineTests {
    static var binary: URL {
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("qgemm")
    }

    struct Run { let status: Int32; let stdout: Data; let stderr: String }

    func qgemm(_ args: [String], environment: [String: String] = [:]) throws -> Run {
        let p = Process()
        p.executableURL = Self.binary
        p.arguments = args
        var env = ProcessInfo.processInfo.environment
        env.removeValue(forKey: "QGEMM_KERNEL")
        for (k, v) in environment { env[k] = v }
        p.environment = env
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        // Read before waiting so a full pipe cannot block the child.
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return Run(status: p.terminationStatus, stdout: o, stderr: String(decoding: e, as: UTF8.self))
    }

    func tempDir() throws -> URL {
        let d = FileManager.default.temporaryDirectory.appendingPathComponent("qgemm-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
        return d
    }

    /// `linear --x x.npy --w w.npy` on a 1×4 X and a 2×4 W written into `dir`.
    func linearCommand(in dir: URL) throws -> [String] {
        let x = dir.appendingPathComponent("x.npy"), w = dir.appendingPathComponent("w.npy")
        try NPYArray(float32: [1, 2, 3, 4], shape: [1, 4]).write(to: x)
        try NPYArray(float32: [1, 0, 0, 1, 0, 1, 1, 0], shape: [2, 4]).write(to: w)
        return ["linear", "--x", x.path, "--w", w.path]
    }

    @Test func binaryExists() {
        #expect(FileManager.default.isExecutableFile(atPath: Self.binary.path), "\(Self.binary.path)")
    }

    /// The checker catches a wrong result on every path this CPU has: with the
    /// fault injected into one path (by the tool, not the library) the run
    /// fails with `pass: false`; without it, the same run passes. The faulted
    /// runs skip the accuracy table (`--bit-exact-only`), which the fault does
    /// not reach and which cost each of them most of its time. Under the
    /// sanitizers (a debug build of the tool, several times slower) the
    /// fault goes into the default path and one other only: the plain suite
    /// checks that every path catches it.
    @Test func validateFailsOnEveryPathWhenAFaultIsInjected() throws {
        let every = KernelPath.available.filter { $0 != .reference }
        #expect(!every.isEmpty)
        #if QGEMM_SANITIZER_RUN
        let paths = [KernelPath.best] + every.filter { $0 != KernelPath.best }.prefix(1)
        #else
        let paths = every
        #endif
        let ok = try qgemm(["validate", "--quick", "--json", "-"])
        #expect(ok.status == 0, "\(ok.stderr)")
        let okDoc = try JSONSerialization.jsonObject(with: ok.stdout) as? [String: Any]
        #expect(okDoc?["pass"] as? Bool == true)
        #expect((okDoc?["accuracy"] as? [Any])?.isEmpty == false)
        for path in paths {
            let bad = try qgemm(["validate", "--quick", "--bit-exact-only", "--inject-fault", path.rawValue, "--json", "-"])
            #expect(bad.status == 1, "\(path): \(bad.stderr)")
            let doc = try JSONSerialization.jsonObject(with: bad.stdout) as? [String: Any]
            #expect(doc?["pass"] as? Bool == false, "\(path)")
            #expect(doc?["accuracy"] == nil, "\(path)")
            #expect(doc?["injected_fault"] as? String == path.rawValue)
            let exact = doc?["bit_exact"] as? [String: Any]
            let first = exact?["first_mismatches"] as? [String] ?? []
            #expect(!first.isEmpty && first.allSatisfy { $0.hasPrefix("\(path.rawValue) differs") }, "\(path): \(first.prefix(2))")
        }
        // A fault in a path the run does not check is a usage error.
        if paths.count > 1 {
            let r = try qgemm(["validate", "--quick", "--kernel", paths[0].rawValue, "--inject-fault", paths[1].rawValue])
            #expect(r.status == 64 && r.stderr.contains("--inject-fault"), "\(r.stderr)")
        }
    }

    /// One seed, one set of cases and one report, whatever --jobs: a mismatch a
    /// user reports can be replayed from the seed the report prints.
    @Test func validateIsReproducibleFromItsSeed() throws {
        guard let path = KernelPath.available.last(where: { $0 != .reference }) else { return }
        var reports: [[String: Any]] = []
        for jobs in ["1", "2", "2"] {
            let r = try qgemm(["validate", "--quick", "--bit-exact-only", "--seed", "7", "--jobs", jobs, "--kernel", path.rawValue,
                               "--inject-fault", path.rawValue, "--json", "-"])
            #expect(r.status == 1, "\(r.stderr)")
            let doc = try JSONSerialization.jsonObject(with: r.stdout) as? [String: Any] ?? [:]
            #expect(doc["seed"] as? Int == 7)
            reports.append(doc["bit_exact"] as? [String: Any] ?? [:])
        }
        for key in ["cases", "elements_compared", "mismatches"] {
            #expect(reports.allSatisfy { $0[key] as? Int == reports[0][key] as? Int && $0[key] != nil }, "\(key)")
        }
        let first = reports.map { $0["first_mismatches"] as? [String] ?? [] }
        #expect(!first[0].isEmpty && first.allSatisfy { $0 == first[0] })
        // Another seed gives other data.
        let other = try qgemm(["validate", "--quick", "--bit-exact-only", "--seed", "8", "--kernel", path.rawValue,
                               "--inject-fault", path.rawValue, "--json", "-"])
        let otherFirst = ((try JSONSerialization.jsonObject(with: other.stdout) as? [String: Any])?["bit_exact"]
                          as? [String: Any])?["first_mismatches"] as? [String] ?? []
        #expect(otherFirst != first[0])
    }

    /// A file error names the option, the path and what the option needs.
    @Test func fileErrorsNameTheOptionThePathAndTheNeed() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        func file(_ name: String) -> String { dir.appendingPathComponent(name).path }
        try NPYArray(uint8: [1, 2, 3, 4], shape: [2, 2]).write(to: URL(fileURLWithPath: file("x.npy")))
        try NPYArray(uint8: [1, 2, 3, 4], shape: [2, 2]).write(to: URL(fileURLWithPath: file("w_u8.npy")))
        try NPYArray(int8: [1, -1, 2, 0], shape: [2, 2]).write(to: URL(fileURLWithPath: file("w.npy")))
        try NPYArray(float32: [1, 2], shape: [2]).write(to: URL(fileURLWithPath: file("b_f32.npy")))
        // An int64 bias, as np.array([...]) writes it ('<i8'), with a value beyond int32: refused.
        var int64 = Data([0x93] + Array("NUMPY".utf8) + [1, 0])
        var header = "{'descr': '<i8', 'fortran_order': False, 'shape': (2,), }"
        while (10 + header.utf8.count + 1) % 64 != 0 { header += " " }
        header += "\n"
        int64.append(contentsOf: [UInt8(header.utf8.count & 0xFF), UInt8(header.utf8.count >> 8)])
        int64.append(contentsOf: Array(header.utf8))
        int64.append(contentsOf: [0, 0, 0, 0, 0, 1, 0, 0] + [UInt8](repeating: 0, count: 8)) // 2^40, 0
        try int64.write(to: URL(fileURLWithPath: file("b_i64.npy")))
        let base = ["gemm", "--x", file("x.npy"), "--x-scale", "0.1", "--x-zero-point", "3", "--w-scale", "0.1",
                    "--output-type", "int32", "--out", file("y.npy")]
        let cases: [([String], [String])] = [
            (["--w", file("w_u8.npy")], ["--w \(file("w_u8.npy"))", "uint8", "--w needs int8"]),
            (["--w", file("w.npy"), "--bias", file("b_f32.npy")], ["--bias \(file("b_f32.npy"))", "float32", "--bias needs int32"]),
            (["--w", file("w.npy"), "--bias", file("b_i64.npy")],
             ["--bias \(file("b_i64.npy"))", "1099511627776 does not fit in Int32", "--bias needs int32 (or int64 that fits)"]),
            (["--w", file("missing.npy")], ["--w \(file("missing.npy"))", "--w needs int8"]),
        ]
        for (extra, wanted) in cases {
            let r = try qgemm(base + extra)
            #expect(r.status == 1, "\(extra): \(r.stderr)")
            for w in wanted { #expect(r.stderr.contains(w), "\(extra): wanted '\(w)' in \(r.stderr)") }
        }
        let linear = try qgemm(["linear", "--x", file("x.npy"), "--w", file("w.npy"), "--out", file("y.npy")])
        #expect(linear.status == 1 && linear.stderr.contains("--w \(file("w.npy"))") && linear.stderr.contains("--w needs float16, float32 or float64"),
                "\(linear.stderr)")
    }

    /// Negative numbers are read as values and refused with their range; a
    /// reversed clamp says so.
    @Test func negativeAndOutOfRangeValuesSayWhy() throws {
        let gemm = ["gemm", "--x", "x.npy", "--w", "w.npy", "--x-zero-point", "0", "--out", "y.npy"]
        let cases: [([String], String)] = [
            (gemm + ["--x-scale", "-0.02"], "--x-scale must be finite and > 0, got -0.02"),
            (gemm + ["--x-scale", "1", "--w-scale", "-1"], "--w-scale must be finite and > 0"),
            (gemm + ["--x-scale", "1", "--y-scale", "-5"], "--y-scale must be finite and > 0"),
            (gemm + ["--x-scale", "1", "--clamp", "100,5"], "reversed"),
            (gemm + ["--x-scale", "1", "--clamp", "5"], "LO,HI"),
            (["bench", "--repeat", "-2"], "--repeat must be in 1...100000, got -2"),
            (["bench", "--min-time", "-1"], "--min-time must be in 0...3600 seconds, got -1"),
            (["validate", "--soak", "-3"], "positive number of seconds, got -3"),
            (["validate", "--seed", "-1"], "a seed is a whole number"),
            (["linear", "--x", "a", "--w", "b", "--out", "c", "--mode", "static", "--x-scale", "-1"], "--x-scale must be finite and > 0"),
            (["linear", "--x", "a", "--w", "b", "--out", "c", "--mode", "static", "--calibrate", "c.npy", "--batch", "-4"], "--batch must be ≥ 1, got -4"),
        ]
        for (args, wanted) in cases {
            let r = try qgemm(args)
            #expect(r.status == 64, "\(args): \(r.stderr)")
            #expect(r.stderr.contains(wanted), "\(args): wanted '\(wanted)' in \(r.stderr)")
            #expect(!r.stderr.contains("Missing value"), "\(args): \(r.stderr)")
        }
    }

    /// `qgemm linear --weights int4`: the tool's Y is the library's, bit for
    /// bit; --save and --load give it again; AWQ-style search on --calibrate
    /// data reports its α; options of the other mode are refused.
    @Test func linearWithInt4Weights() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        func file(_ name: String) -> String { dir.appendingPathComponent(name).path }
        var rng = SplitMix64(seed: 5)
        let m = 3, k = 70, n = 20
        let x = (0..<(m * k)).map { _ in rng.gaussian() }, w = (0..<(n * k)).map { _ in rng.gaussian() / 8 }
        let b = (0..<n).map { _ in rng.gaussian() }, c = (0..<(16 * k)).map { _ in rng.gaussian() }
        try NPYArray(float32: x, shape: [m, k]).write(to: URL(fileURLWithPath: file("x.npy")))
        try NPYArray(float32: w, shape: [n, k]).write(to: URL(fileURLWithPath: file("w.npy")))
        try NPYArray(float32: b, shape: [n]).write(to: URL(fileURLWithPath: file("b.npy")))
        try NPYArray(float32: c, shape: [16, k]).write(to: URL(fileURLWithPath: file("c.npy")))
        let base = ["linear", "--x", file("x.npy"), "--w", file("w.npy"), "--bias", file("b.npy"), "--weights", "int4"]
        let r = try qgemm(base + ["--group-size", "16", "--out", file("y.npy"), "--save", file("l.safetensors"), "--json", "-"])
        #expect(r.status == 0, "\(r.stderr)")
        let doc = try JSONSerialization.jsonObject(with: r.stdout) as? [String: Any]
        #expect(doc?["weights"] as? String == "int4" && doc?["group_size"] as? Int == 16, "\(String(decoding: r.stdout, as: UTF8.self))")
        let want = try Int4Weights(quantizing: w, outputChannels: n, inputChannels: k, groupSize: 16, bias: b)(x, rows: m)
        let got = try NPYArray(contentsOf: URL(fileURLWithPath: file("y.npy"))).floatValues()
        #expect(got.map(\.bitPattern) == want.map(\.bitPattern))
        // --activations uint8: the library's bits with uint8 rows, reported, saved and loaded.
        let u8 = try qgemm(base + ["--group-size", "16", "--activations", "uint8", "--out", file("y8.npy"),
                                   "--save", file("l8.safetensors"), "--json", "-"])
        #expect(u8.status == 0, "\(u8.stderr)")
        #expect((try JSONSerialization.jsonObject(with: u8.stdout) as? [String: Any])?["activations"] as? String == "uint8")
        let wantU8 = try Int4Weights(quantizing: w, outputChannels: n, inputChannels: k, groupSize: 16, bias: b,
                                     activations: .uint8)(x, rows: m)
        #expect(wantU8.map(\.bitPattern) != want.map(\.bitPattern))
        #expect(try NPYArray(contentsOf: URL(fileURLWithPath: file("y8.npy"))).floatValues().map(\.bitPattern) == wantU8.map(\.bitPattern))
        let loadedU8 = try qgemm(["linear", "--x", file("x.npy"), "--load", file("l8.safetensors"), "--out", file("y9.npy")])
        #expect(loadedU8.status == 0, "\(loadedU8.stderr)")
        #expect(try NPYArray(contentsOf: URL(fileURLWithPath: file("y9.npy"))).floatValues().map(\.bitPattern) == wantU8.map(\.bitPattern))
        let misplaced = try qgemm(["linear", "--x", file("x.npy"), "--w", file("w.npy"), "--activations", "uint8", "--out", file("y0.npy")])
        #expect(misplaced.status != 0 && misplaced.stderr.contains("--activations applies only with --weights int4"), "\(misplaced.stderr)")
        let loaded = try qgemm(["linear", "--x", file("x.npy"), "--load", file("l.safetensors"), "--out", file("y2.npy")])
        #expect(loaded.status == 0, "\(loaded.stderr)")
        #expect(try NPYArray(contentsOf: URL(fileURLWithPath: file("y2.npy"))).floatValues().map(\.bitPattern) == want.map(\.bitPattern))
        // A QuantizedLinear file in int4Weights mode loads and runs the same way, and its report names the mode.
        try QuantizedLinear(weights: w, outputChannels: n, inputChannels: k, bias: b, mode: .int4Weights(groupSize: 16))
            .save(to: URL(fileURLWithPath: file("mode.safetensors")))
        let mode = try qgemm(["linear", "--x", file("x.npy"), "--load", file("mode.safetensors"), "--out", file("y4.npy"),
                              "--json", "-", "--repeat", "1"])
        #expect(mode.status == 0, "\(mode.stderr)")
        #expect(try NPYArray(contentsOf: URL(fileURLWithPath: file("y4.npy"))).floatValues().map(\.bitPattern) == want.map(\.bitPattern))
        let modeDoc = try JSONSerialization.jsonObject(with: mode.stdout) as? [String: Any]
        #expect(modeDoc?["mode"] as? String == "int4-weights" && modeDoc?["group_size"] as? Int == 16,
                "\(String(decoding: mode.stdout, as: UTF8.self))")
        let awq = try qgemm(base + ["--awq", "--calibrate", file("c.npy"), "--group-scales", "minimizing-error", "--out", file("y3.npy"),
                                    "--json", "-"])
        #expect(awq.status == 0, "\(awq.stderr)")
        let alpha = (try JSONSerialization.jsonObject(with: awq.stdout) as? [String: Any])?["awq_alpha"] as? Double
        #expect(alpha.map { $0 >= 0 && $0 <= 1 } == true, "\(String(decoding: awq.stdout, as: UTF8.self))")
        // --gptq: the library's search with error compensation, bit for bit,
        // and its damping reported. Correlated calibration rows, more than K,
        // so the compensated layer is the one kept (it differs from --awq's).
        let basis = (0..<(4 * k)).map { _ in rng.gaussian() }
        let c2 = (0..<(300 * k)).map { i in
            (0..<4).reduce(Float(0.05) * rng.gaussian()) { s, t in s + basis[t * k + i % k] * Float((i / k * 7 + t * 3) % 11 - 5) }
        }
        try NPYArray(float32: c2, shape: [300, k]).write(to: URL(fileURLWithPath: file("c2.npy")))
        let gptq = try qgemm(base + ["--awq", "--gptq", "0.1", "--calibrate", file("c2.npy"), "--out", file("y5.npy"), "--json", "-"])
        #expect(gptq.status == 0, "\(gptq.stderr)")
        #expect((try JSONSerialization.jsonObject(with: gptq.stdout) as? [String: Any])?["gptq_damping"] as? Double == 0.1)
        func search(_ compensation: Int4Weights.ErrorCompensation) throws -> [UInt32] {
            try Int4Weights.searchingScales(weights: w, outputChannels: n, inputChannels: k, bias: b, calibrationInput: c2, rows: 300,
                                            groupScales: .absMax, errorCompensation: compensation).weights(x, rows: m).map(\.bitPattern)
        }
        let fromTool = try NPYArray(contentsOf: URL(fileURLWithPath: file("y5.npy"))).floatValues().map(\.bitPattern)
        #expect(try fromTool == search(.gptq(damping: 0.1)))
        #expect(try fromTool != search(.none), "the compensated layer should win on these rows")
        let refused: [([String], String)] = [
            (base + ["--mode", "static", "--out", "y.npy"], "--mode applies only to int8 weights"),
            (base + ["--granularity", "tensor", "--out", "y.npy"], "--granularity applies only to int8 weights"),
            (base + ["--group-size", "12", "--out", "y.npy"], "--group-size must be a multiple of 8"),
            (base + ["--awq", "--out", "y.npy"], "--awq needs --calibrate"),
            (base + ["--gptq", "0.1", "--out", "y.npy"], "--gptq follows the --awq search"),
            (base + ["--awq", "--gptq", "0", "--calibrate", "c.npy", "--out", "y.npy"], "--gptq must be in (0, 10]"),
            (["linear", "--x", "a", "--w", "b", "--gptq", "0.1", "--out", "y.npy"], "--gptq applies only with --weights int4"),
            (base + ["--calibrate", "c.npy", "--out", "y.npy"], "--calibrate with --weights int4 goes with --awq"),
            (["linear", "--x", "a", "--w", "b", "--group-size", "32", "--out", "y.npy"], "--group-size applies only with --weights int4"),
            (["linear", "--x", "a", "--load", "l.safetensors", "--weights", "int4", "--out", "y.npy"], "--weights does not go with --load"),
        ]
        for (args, wanted) in refused {
            let run = try qgemm(args)
            #expect(run.status == 64, "\(args): \(run.stderr)")
            #expect(run.stderr.contains(wanted), "\(args): wanted '\(wanted)' in \(run.stderr)")
        }
    }

    /// `qgemm linear --mode static --calibrate` saves the layer
    /// `QuantizedLinear.calibrated` makes with the float layer's output it
    /// computes itself (floatOutput: the same bits on every machine); it took
    /// that output from OpenBLAS, whose sums follow its kernel for the CPU.
    @Test func staticCalibrationIsTheLibrarysOnItsOwnFloatOutput() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        func file(_ name: String) -> String { dir.appendingPathComponent(name).path }
        var rng = SplitMix64(seed: 71)
        let m = 4, k = 300, n = 40, rows = 200
        let x = (0..<(m * k)).map { _ in rng.gaussian() }, w = (0..<(n * k)).map { _ in rng.gaussian() / 16 }
        let b = (0..<n).map { _ in rng.gaussian() }, c = (0..<(rows * k)).map { _ in rng.gaussian() }
        try NPYArray(float32: x, shape: [m, k]).write(to: URL(fileURLWithPath: file("x.npy")))
        try NPYArray(float32: w, shape: [n, k]).write(to: URL(fileURLWithPath: file("w.npy")))
        try NPYArray(float32: b, shape: [n]).write(to: URL(fileURLWithPath: file("b.npy")))
        try NPYArray(float32: c, shape: [rows, k]).write(to: URL(fileURLWithPath: file("c.npy")))
        for (observer, make) in [("mse", { MSEObserver() as any CalibrationObserver }), ("minmax", { MinMaxObserver() })] {
            let r = try qgemm(["linear", "--x", file("x.npy"), "--w", file("w.npy"), "--bias", file("b.npy"), "--mode", "static",
                               "--calibrate", file("c.npy"), "--observer", observer, "--out", file("y.npy"), "--save", file("l.safetensors")])
            #expect(r.status == 0, "\(r.stderr)")
            let saved = try QuantizedLinear(contentsOf: URL(fileURLWithPath: file("l.safetensors")))
            let want = try QuantizedLinear.calibrated(weights: w, outputChannels: n, inputChannels: k, bias: b, mode: .static, input: c,
                                                      rows: rows, observer: make)
            switch (saved.mode, want.mode) {
            case (.static(let i, let o, _), .static(let i2, let o2, _)):
                #expect(i == i2 && o == o2, "\(observer): \(o) against \(o2)")
            default: Issue.record("\(observer): not a static layer")
            }
        }
    }

    /// A weight or bias that is not finite, in static calibration (which
    /// computes the float layer's output first), is named by its option and
    /// file, not as a value of an output the user never passed; and --kernel
    /// takes no test-only path.
    @Test func calibrationAndPathRefusalsNameWhatWasGiven() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        func file(_ name: String) -> String { dir.appendingPathComponent(name).path }
        try NPYArray(float32: [1, 2, 3, 4], shape: [1, 4]).write(to: URL(fileURLWithPath: file("x.npy")))
        try NPYArray(float32: [1, 0, .nan, 1, 0, 1, 1, 0], shape: [2, 4]).write(to: URL(fileURLWithPath: file("w.npy")))
        try NPYArray(float32: [1, 0, 0, 1, 0, 1, 1, 0], shape: [2, 4]).write(to: URL(fileURLWithPath: file("good.npy")))
        try NPYArray(float32: [1, .infinity], shape: [2]).write(to: URL(fileURLWithPath: file("b.npy")))
        try NPYArray(float32: (0..<32).map { Float($0) }, shape: [8, 4]).write(to: URL(fileURLWithPath: file("c.npy")))
        let calibrate = ["--mode", "static", "--calibrate", file("c.npy"), "--out", file("y.npy")]
        let w = try qgemm(["linear", "--x", file("x.npy"), "--w", file("w.npy")] + calibrate)
        #expect(w.status == 1 && w.stderr.contains("--w \(file("w.npy")): weight [0, 2] is nan"), "\(w.stderr)")
        let b = try qgemm(["linear", "--x", file("x.npy"), "--w", file("good.npy"), "--bias", file("b.npy")] + calibrate)
        #expect(b.status == 1 && b.stderr.contains("--bias \(file("b.npy")): bias [1] is inf"), "\(b.stderr)")
        #expect(!FileManager.default.fileExists(atPath: file("y.npy")))
        for command in [["bench", "--shape", "2x3x4"], ["validate", "--quick"]] {
            let r = try qgemm(command + ["--kernel", "test3x5"])
            #expect(r.status == 64, "\(command[0]): \(r.stderr)")
        }
    }

    /// An option that does not apply to the chosen mode is refused, never ignored.
    @Test func optionsThatDoNotApplyAreRefused() throws {
        let linear = ["linear", "--x", "a.npy", "--w", "b.npy", "--out", "c.npy"]
        let cases: [([String], String)] = [
            (linear + ["--mode", "static", "--calibrate", "cal.npy", "--granularity", "tensor"], "--granularity applies only to --mode dynamic"),
            (linear + ["--observer", "percentile"], "--observer applies only to --mode static"),
            (linear + ["--rounding", "double"], "--rounding applies only to --mode static"),
            (linear + ["--percentile", "99"], "--percentile applies only to --mode static"),
            (linear + ["--mode", "static", "--calibrate", "cal.npy", "--percentile", "99"], "--percentile applies only with --observer percentile"),
            (linear + ["--mode", "static", "--x-scale", "1", "--x-zero-point", "0", "--y-scale", "1", "--y-zero-point", "0",
                       "--observer", "moving"], "--observer applies only with --calibrate"),
            (linear + ["--repeat", "3"], "--repeat counts the timed runs of --json"),
            // The min/max observer's range is the same whatever the batches.
            (linear + ["--mode", "static", "--calibrate", "cal.npy", "--batch", "8"], "--batch has no effect with the min/max observer"),
            (["gemm", "--x", "x.npy", "--w", "w.npy", "--x-scale", "1", "--x-zero-point", "0", "--w-scale", "1",
              "--output-type", "int32", "--rounding", "double", "--out", "y.npy"], "--rounding apply only to int8 and uint8 output"),
        ]
        for (args, wanted) in cases {
            let r = try qgemm(args)
            #expect(r.status == 64, "\(args): \(r.stderr)")
            #expect(r.stderr.contains(wanted), "\(args): wanted '\(wanted)' in \(r.stderr)")
        }
    }

    /// Sizes and options that would trap, run without end, allocate more
    /// than the machine has, or be ignored are refused before any work.
    @Test func badSizesAndOptionsAreRefusedBeforeAnyWork() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        func file(_ name: String) -> String { dir.appendingPathComponent(name).path }
        // K = 0 with a huge N (a few bytes of file; the calibration's rows × N overflowed Int).
        try NPYArray(float32: [], shape: [1, 0]).write(to: URL(fileURLWithPath: file("x0.npy")))
        try NPYArray(float32: [], shape: [2_000_000_000_000_000_000, 0]).write(to: URL(fileURLWithPath: file("w0.npy")))
        let zeroK = try qgemm(["linear", "--x", file("x0.npy"), "--w", file("w0.npy"), "--mode", "static",
                               "--calibrate", file("w0.npy"), "--out", file("y.npy")])
        #expect(zeroK.status == 1 && zeroK.stderr.contains("N ≥ 1 and K ≥ 1"), "\(zeroK.stderr)")
        // 10^6 × 10^6 outputs from two files of a megabyte.
        try NPYArray(int8: [Int8](repeating: 1, count: 1_000_000), shape: [1_000_000, 1]).write(to: URL(fileURLWithPath: file("tall.npy")))
        let huge = try qgemm(["gemm", "--x", file("tall.npy"), "--w", file("tall.npy"), "--x-scale", "1", "--x-zero-point", "0",
                              "--w-scale", "1", "--output-type", "int32", "--out", file("y.npy")])
        #expect(huge.status == 1 && huge.stderr.contains("MiB this process may use"), "\(huge.stderr)")
        let usage: [([String], String)] = [
            (["bench", "--repeat", "100001"], "--repeat must be in 1...100000"),
            (["bench", "--min-time", "4000"], "--min-time must be in 0...3600"),
            (["bench", "--weights", "int4", "--output-type", "int8"], "--weights int4 writes float output"),
            (["bench", "--shape", "x1xx1x1x"], "--shape"),
            // A K every product of two activations refuses, refused before any row runs.
            (["bench", "--weights", "activations", "--shape", "1x64x4", "--shape", "1x70000x1"], "--shape 1x70000x1: K = 70000 exceeds 66311"),
            // Packing pads N to 16 channels: 8 bytes of packed nibbles and 2 of scales per input at N = 1
            // (30 bytes per input in all; 21 without the padding, which would fit in half the memory).
            (["bench", "--weights", "int4", "--shape", "1x\(CPUFeatures.usableMemoryBytes() / 50)x1"], "MiB of buffers"),
            (["bench", "--json", file("missing/b.json")], "does not exist"),
            (["bench", "--json", "-", "--csv", "-"], "both write to standard output"),
            (["validate", "--kernel", "reference"], "the reference is what validate checks"),
            (["validate", "--soak", "1", "--json", "-"], "--json does not go with --soak"),
            (["validate", "--soak", "1", "--bit-exact-only"], "--bit-exact-only does not go with --soak"),
            (["validate", "--sweep", "--bit-exact-only"], "--bit-exact-only does not go with --sweep"),
            (["validate", "--json", file("missing/v.json")], "does not exist"),
            (["validate", "--soak", "nan"], "--soak takes a positive number of seconds"),
            (["validate", "--soak", "0"], "--soak takes a positive number of seconds"),
            (["gemm", "--x", "x.npy", "--w", "w.npy", "--x-scale", "1", "--x-zero-point", "0", "--out", file("missing/y.npy")], "does not exist"),
            (["linear", "--x", "a.npy", "--w", "b.npy", "--out", "c.npy", "--json", "j.json", "--repeat", "200000"], "--repeat must be in 1...100000"),
        ]
        for (args, wanted) in usage {
            let r = try qgemm(args)
            #expect(r.status == 64, "\(args): \(r.stderr)")
            #expect(r.stderr.contains(wanted), "\(args): wanted '\(wanted)' in \(r.stderr)")
        }
    }

    /// Every output option's path is checked, with the command's others,
    /// before any work: a folder (or a path ending in "/", which was written
    /// as a file without the slash), an empty path, `-` where no standard
    /// output is offered, and two options naming one file are usage errors;
    /// a pipe with no reader is refused when written, not waited for.
    @Test func outputPathsAreCheckedTogetherBeforeAnyWork() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        func file(_ name: String) -> String { dir.appendingPathComponent(name).path }
        let linear = try linearCommand(in: dir)
        #expect(FileManager.default.createFile(atPath: file("out.npy"), contents: Data("old".utf8)))
        try FileManager.default.linkItem(atPath: file("out.npy"), toPath: file("hard.json"))
        let usage: [([String], String)] = [
            (["info", "--json", dir.path + "/new/"], "a folder; name a file"),
            (["info", "--json", dir.path], "a folder; name a file"),
            (["info", "--json", dir.path + "/."], "a folder; name a file"),
            (["info", "--json", ""], "--json: the path is empty"),
            (["bench", "--json", dir.path + "/new/"], "a folder; name a file"),
            (["bench", "--json", file("r"), "--csv", file("r")], "--json and --csv name the same file"),
            (["validate", "--json", dir.path], "a folder; name a file"),
            (linear + ["--out", "-"], "--out writes a file, not standard output"),
            (linear + ["--out", "/dev/stdout"], "--out writes a file, not standard output"),
            // Parameters that were refused only after the files were read (these files do not exist).
            (["linear", "--x", file("none.npy"), "--w", file("none.npy"), "--mode", "static", "--x-scale", "1", "--out", file("y.npy")],
             "static mode needs --calibrate"),
            (["linear", "--x", file("none.npy"), "--w", file("none.npy"), "--mode", "static-input", "--calibrate", file("none.npy"),
              "--x-scale", "1", "--out", file("y.npy")], "give either --calibrate or the explicit --x-/--y- parameters"),
            (["gemm", "--x", file("none.npy"), "--w", file("none.npy"), "--x-scale", "1", "--x-zero-point", "0", "--out", file("y.npy")],
             "give exactly one of --w-scale and --w-scales"),
            (linear + ["--out", dir.path + "/y/"], "a folder; name a file"),
            (linear + ["--out", file("y.npy"), "--save", file("y.npy")], "--out and --save name the same file"),
            (linear + ["--out", file("y.npy"), "--json", dir.path + "/./y.npy"], "--out and --json name the same file"),
            // Two names of one file (a hard link): writing the second would truncate the first.
            (linear + ["--out", file("out.npy"), "--json", file("hard.json")], "--out and --json name the same file"),
            (["gemm", "--x", file("x.npy"), "--w", file("w.npy"), "--x-scale", "1", "--x-zero-point", "0", "--w-scale", "1",
              "--output-type", "int32", "--out", ""], "--out: the path is empty"),
        ]
        for (args, wanted) in usage {
            let r = try qgemm(args)
            #expect(r.status == 64, "\(args): \(r.stderr)")
            #expect(r.stderr.contains(wanted), "\(args): wanted '\(wanted)' in \(r.stderr)")
        }
        // Nothing was written in their place ("new/" used to become a file "new"),
        // and the hard-linked output kept its bytes.
        #expect(FileManager.default.contents(atPath: file("out.npy")) == Data("old".utf8))
        try FileManager.default.removeItem(atPath: file("out.npy"))
        try FileManager.default.removeItem(atPath: file("hard.json"))
        let left = try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted()
        #expect(left == ["w.npy", "x.npy"], "\(left)")
        let fifo = file("fifo")
        guard mkfifo(fifo, 0o644) == 0 else { Issue.record("mkfifo failed"); return }
        for args in [linear + ["--out", fifo], ["info", "--json", fifo]] {
            let r = try qgemm(args)
            #expect(r.status == 1 && r.stderr.contains("cannot write \(fifo): a pipe with no reader"), "\(args): \(r.stderr)")
        }
        // Standard output, and a writable device, still take the reports.
        let out = try qgemm(["info", "--json", "-"])
        let report = try? JSONSerialization.jsonObject(with: out.stdout) as? [String: Any]
        #expect(out.status == 0 && report != nil, "\(out.stderr)")
        #expect(try qgemm(["info", "--json", "/dev/null"]).status == 0)
        // /dev/stdout is written as "-" is (not opened and truncated), and counts as it.
        let viaDevice = try qgemm(["info", "--json", "/dev/stdout"])
        let deviceReport = try? JSONSerialization.jsonObject(with: viaDevice.stdout) as? [String: Any]
        #expect(viaDevice.status == 0 && deviceReport != nil, "\(viaDevice.stderr)")
        let both = try qgemm(["bench", "--json", "/dev/stdout", "--csv", "-"])
        #expect(both.status == 64 && both.stderr.contains("would both write to standard output"), "\(both.stderr)")
        // A soak shorter than a batch still checks one.
        let soak = try qgemm(["validate", "--soak", "1e-300", "--kernel", "portable", "--jobs", "1"])
        #expect(soak.status == 0 && String(decoding: soak.stdout, as: UTF8.self).hasPrefix("soak: 64 cases"), "\(soak.stderr)")
        // Finite calibration data whose float output overflows says so.
        try NPYArray(float32: [Float](repeating: 3e38, count: 8), shape: [2, 4]).write(to: URL(fileURLWithPath: file("huge.npy")))
        let overflow = try qgemm(linear + ["--mode", "static", "--calibrate", file("huge.npy"), "--out", file("y.npy")])
        #expect(overflow.status == 1 && overflow.stderr.contains("X·Wᵀ + b overflows Float"), "\(overflow.stderr)")
        // A non-finite calibration value is reported as itself, not as an overflow.
        try NPYArray(float32: [1, .nan, 3, 4], shape: [1, 4]).write(to: URL(fileURLWithPath: file("nan.npy")))
        let nan = try qgemm(linear + ["--mode", "static", "--calibrate", file("nan.npy"), "--out", file("y.npy")])
        #expect(nan.status == 1 && !nan.stderr.contains("overflows Float") && nan.stderr.contains("nan"), "\(nan.stderr)")
    }

    /// An output that names one of the command's input files is refused
    /// before any work (it would destroy the input); --save is written only
    /// once the layer has run on X, so a refused X leaves no layer file; a
    /// report sent to /dev/stdout keeps the human-readable lines off standard
    /// output, as "-" does; Float output whose S_X·S_W overflows is refused.
    @Test func outputsNeverDestroyInputsOrOutliveARefusal() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        func file(_ name: String) -> String { dir.appendingPathComponent(name).path }
        let linear = try linearCommand(in: dir)
        try NPYArray(int8: [1, 2, 3, 4], shape: [1, 4]).write(to: URL(fileURLWithPath: file("xq.npy")))
        try NPYArray(int8: [1, 0, 0, 1, 0, 1, 1, 0], shape: [2, 4]).write(to: URL(fileURLWithPath: file("wq.npy")))
        let before = try Data(contentsOf: URL(fileURLWithPath: file("w.npy")))
        let gemm = ["gemm", "--x", file("xq.npy"), "--w", file("wq.npy"), "--x-zero-point", "0"]
        for (args, wanted) in [
            (linear + ["--save", file("w.npy"), "--out", file("y.npy")], "--save \(file("w.npy")) is the file --w reads"),
            (linear + ["--out", dir.path + "/./x.npy"], "is the file --x reads"),
            (gemm + ["--x-scale", "1", "--w-scale", "1", "--output-type", "int32", "--out", file("wq.npy")], "is the file --w reads"),
        ] {
            let r = try qgemm(args)
            #expect(r.status == 64 && r.stderr.contains(wanted), "\(args): \(r.stderr)")
        }
        #expect(try Data(contentsOf: URL(fileURLWithPath: file("w.npy"))) == before)
        // X refused (a NaN): neither the layer nor Y is written.
        try NPYArray(float32: [1, .nan, 3, 4], shape: [1, 4]).write(to: URL(fileURLWithPath: file("nan.npy")))
        for extra in [[String](), ["--weights", "int4", "--group-size", "8"]] {
            let r = try qgemm(["linear", "--x", file("nan.npy"), "--w", file("w.npy"), "--save", file("layer.safetensors"),
                               "--out", file("y.npy")] + extra)
            #expect(r.status == 1 && r.stderr.contains("nan"), "\(extra): \(r.stderr)")
            #expect(!FileManager.default.fileExists(atPath: file("layer.safetensors")) && !FileManager.default.fileExists(atPath: file("y.npy")),
                    "\(extra): a refused X left files")
        }
        // Float output: S_X·S_W = 1e30·1e30 overflows, every output would be ±inf or NaN.
        let overflow = try qgemm(gemm + ["--x-scale", "1e30", "--w-scale", "1e30", "--output-type", "float", "--out", file("yf.npy")])
        #expect(overflow.status == 1 && overflow.stderr.contains("overflows Float"), "\(overflow.stderr)")
        #expect(!FileManager.default.fileExists(atPath: file("yf.npy")))
        // /dev/stdout is standard output for the quiet rule too: the report alone.
        for args in [["bench", "--shape", "1x4x4", "--min-time", "0", "--repeat", "1", "--no-sgemm", "--json", "/dev/stdout"],
                     ["validate", "--quick", "--bit-exact-only", "--kernel", "portable", "--json", "/dev/fd/1"]] {
            let r = try qgemm(args)
            #expect(r.status == 0 && (try? JSONSerialization.jsonObject(with: r.stdout)) != nil,
                    "\(args): standard output is not JSON alone: \(String(decoding: r.stdout.prefix(200), as: UTF8.self))")
        }
    }

    /// The CSV keeps full precision: a tiny shape's seconds are not 0.0000.
    @Test func benchCSVKeepsFullPrecision() throws {
        let r = try qgemm(["bench", "--shape", "1x4x4", "--min-time", "0", "--repeat", "2", "--csv", "-"])
        #expect(r.status == 0, "\(r.stderr)")
        let lines = String(decoding: r.stdout, as: UTF8.self).split(separator: "\n")
        let header = lines.first?.split(separator: ",").map(String.init) ?? []
        guard let column = header.firstIndex(of: "int8_seconds"), lines.count == 2 else {
            Issue.record("unexpected CSV: \(lines)")
            return
        }
        let seconds = Double(lines[1].split(separator: ",", omittingEmptySubsequences: false).map(String.init)[column]) ?? 0
        #expect(seconds > 0 && seconds < 0.01, "\(lines[1])")
    }

    /// With sgemm, `bench` times the two sides in three rounds of a block
    /// each, `--repeat` shared out over them exactly (4 as 2 + 1 + 1), so
    /// that with no `--min-time` each side makes exactly `--repeat` runs (a
    /// third rounded up made 6 of 4, and 100,002 of the most, 100,000), as
    /// alone (`--no-sgemm`, one block). Not timed, only counted.
    @Test func benchTimesSgemmInTurns() throws {
        for weights in ["int8", "int4", "activations"] {
            for (sgemm, repeats) in [(true, 4), (true, 1), (true, 8), (false, 4)] {
                let r = try qgemm(["bench", "--weights", weights, "--shape", "3x64x20", "--min-time", "0", "--repeat",
                                   "\(repeats)", "--json", "-"] + (sgemm ? [] : ["--no-sgemm"]))
                #expect(r.status == 0, "\(r.stderr)")
                let doc = try JSONSerialization.jsonObject(with: r.stdout) as? [String: Any]
                let row = (doc?["results"] as? [[String: Any]])?.first ?? [:]
                #expect(row["runs"] as? Int == repeats, "\(weights), sgemm \(sgemm): \(row)")
                #expect((row["sgemm_gflops_best"] as? Double).map { $0 > 0 } ?? !sgemm, "\(weights): \(row)")
            }
        }
    }

    /// An int4 bench row names the bytes a call reads (packed nibbles and
    /// binary16 scales) and carries the plain-read speed measured between its
    /// calls, with their ratio. The speeds are not judged here, only present.
    @Test func int4BenchRowCarriesTheStreamingReadProbe() throws {
        let r = try qgemm(["bench", "--weights", "int4", "--group-size", "32", "--shape", "1x64x20", "--no-sgemm",
                           "--min-time", "0", "--repeat", "2", "--json", "-"])
        #expect(r.status == 0, "\(r.stderr)")
        let doc = try JSONSerialization.jsonObject(with: r.stdout) as? [String: Any]
        guard let row = (doc?["results"] as? [[String: Any]])?.first else {
            Issue.record("no result row in \(String(decoding: r.stdout, as: UTF8.self))")
            return
        }
        // N = 20 pads to 32 channels; K = 64 is 2 groups: 32·64/2 nibble bytes, 32·2 scales of 2 bytes.
        #expect(row["weight_bytes"] as? Int == 32 * 64 / 2 + 32 * 2 * 2, "\(row)")
        #expect(row["weights"] as? String == "int4-g32", "\(row)")
        let w = row["weight_gbps_best"] as? Double ?? 0, read = row["stream_read_gbps_best"] as? Double ?? 0
        let fraction = row["stream_fraction"] as? Double ?? 0
        #expect(w > 0 && read > 0 && abs(fraction - w / read) <= 1e-9 * fraction, "\(row)")
        // uint8 rows name themselves in the row's weights; without --weights int4 the option is refused.
        let u8 = try qgemm(["bench", "--weights", "int4", "--activations", "uint8", "--shape", "1x64x20", "--no-sgemm",
                            "--min-time", "0", "--repeat", "2", "--json", "-"])
        #expect(u8.status == 0, "\(u8.stderr)")
        let u8Row = ((try JSONSerialization.jsonObject(with: u8.stdout) as? [String: Any])?["results"] as? [[String: Any]])?.first
        #expect(u8Row?["weights"] as? String == "int4-g32-uint8", "\(String(describing: u8Row))")
        let misplaced = try qgemm(["bench", "--activations", "uint8", "--shape", "1x64x20"])
        #expect(misplaced.status != 0 && misplaced.stderr.contains("--activations needs --weights int4"), "\(misplaced.stderr)")
    }

    /// `bench --cold` marks its rows "cold" in the JSON and the CSV, int8 and
    /// int4 alike, and the table and the JSON's machine block (`evict_bytes`,
    /// `evict_chunk_bytes`) say how much it reads before every run, and in
    /// what chunks; without it the rows are
    /// "warm" and neither says anything of caches.
    @Test func benchColdMarksItsRows() throws {
        for cold in [false, true] {
            for weights in ["int8", "int4"] {
                let base = ["bench", "--weights", weights, "--shape", "1x64x20", "--no-sgemm", "--min-time", "0", "--repeat", "2"]
                    + (cold ? ["--cold"] : [])
                let json = try qgemm(base + ["--json", "-"])
                #expect(json.status == 0, "\(json.stderr)")
                let doc = try JSONSerialization.jsonObject(with: json.stdout) as? [String: Any]
                let row = (doc?["results"] as? [[String: Any]])?.first
                #expect(row?["caches"] as? String == (cold ? "cold" : "warm"), "\(weights): \(String(describing: row))")
                let evictBytes = (doc?["machine"] as? [String: Any])?["evict_bytes"] as? Int
                #expect((evictBytes != nil) == cold && (evictBytes ?? 64 << 20) >= 64 << 20, "\(String(describing: doc?["machine"]))")
                // Read in chunks (each twice): whole lines, at least 1 MiB, no more than the buffer.
                let chunk = (doc?["machine"] as? [String: Any])?["evict_chunk_bytes"] as? Int
                #expect((chunk != nil) == cold && (chunk ?? 1 << 20) >= 1 << 20 && (chunk ?? 0) % 64 == 0
                        && (chunk ?? 0) <= (evictBytes ?? 0), "\(String(describing: doc?["machine"]))")
                let csv = String(decoding: try qgemm(base + ["--csv", "-"]).stdout, as: UTF8.self).split(separator: "\n")
                #expect(csv.count == 2 && csv[0].hasSuffix(",caches,peak_gops")
                        && csv[1].split(separator: ",", omittingEmptySubsequences: false).dropLast().last == (cold ? "cold" : "warm"), "\(csv)")
                let table = String(decoding: try qgemm(base).stdout, as: UTF8.self)
                // "caches       cold: N MiB read before every timed run": at least 64 MiB.
                let words = table.split(separator: "\n").first { $0.contains("read before every timed run") }?.split(separator: " ") ?? []
                let evicted = words.firstIndex(of: "MiB").flatMap { Int(words[$0 - 1]) }
                #expect((evicted != nil) == cold && (evicted ?? 64) >= 64, "\(table)")
            }
        }
    }

    /// `bench` probes the int8 peak at start and again before every row, and
    /// measures each row against the best probe so far: the JSON names the
    /// probes taken and the best and first, each row the peak it was divided
    /// by (never falling from row to row, never above the best), and
    /// `peak_fraction` is the median GOP/s over it; the CSV's last column and
    /// the table's closing line say the same.
    @Test func benchProbesThePeakBeforeEveryRow() throws {
        let base = ["bench", "--shape", "5x64x20", "--shape", "1x64x20", "--threads", "1,2", "--no-sgemm", "--min-time", "0",
                    "--repeat", "2"]
        let json = try qgemm(base + ["--json", "-"])
        #expect(json.status == 0, "\(json.stderr)")
        let doc = try JSONSerialization.jsonObject(with: json.stdout) as? [String: Any]
        let machine = doc?["machine"] as? [String: Any] ?? [:]
        let rows = doc?["results"] as? [[String: Any]] ?? []
        let best = machine["int8_peak_gops"] as? Double ?? 0, first = machine["int8_peak_first_gops"] as? Double ?? 0
        #expect(rows.count == 4 && machine["int8_peak_probes"] as? Int == 5 && first > 0 && best >= first, "\(machine)")
        var before = first
        for row in rows {
            let peak = row["peak_gops"] as? Double ?? 0, gops = row["int8_gops"] as? Double ?? 0
            let threads = min(row["threads"] as? Int ?? 0, CPUFeatures.current.cores)
            #expect(peak >= before && peak <= best, "\(row)")
            let fraction = row["peak_fraction"] as? Double ?? 0
            #expect(abs(fraction - gops / (peak * Double(threads))) <= 1e-9 * fraction, "\(row)")
            let bestFraction = row["peak_fraction_best"] as? Double ?? 0, best = row["int8_gops_best"] as? Double ?? 0
            #expect(abs(bestFraction - best / (peak * Double(threads))) <= 1e-9 * bestFraction && bestFraction >= fraction, "\(row)")
            before = peak
        }
        #expect((rows.last?["peak_gops"] as? Double) == best, "\(rows)")
        let csv = String(decoding: try qgemm(base + ["--csv", "-"]).stdout, as: UTF8.self).split(separator: "\n")
        #expect(csv.count == 5 && csv[0].hasSuffix(",peak_gops") && csv.dropFirst().allSatisfy { Double($0.split(separator: ",").last ?? "") ?? 0 > 0 },
                "\(csv)")
        let table = String(decoding: try qgemm(base).stdout, as: UTF8.self)
        #expect(table.contains("peak: each row against the best int8 probe before it; 5 probes, best "), "\(table)")
    }

    /// `bench --rounding` names its mode in the JSON and the CSV of int8 and
    /// uint8 output (single by default), leaves the field empty for the other
    /// outputs, and is refused where there is nothing to round.
    @Test func benchNamesItsRounding() throws {
        let base = ["bench", "--shape", "5x64x20", "--no-sgemm", "--min-time", "0", "--repeat", "2"]
        for (args, want) in [([String](), "single"), (["--rounding", "double"], "double"), (["--rounding", "float", "--output-type", "uint8"], "float"),
                             (["--output-type", "int32"], nil)] as [([String], String?)] {
            let json = try qgemm(base + args + ["--json", "-"])
            #expect(json.status == 0, "\(args): \(json.stderr)")
            let doc = try JSONSerialization.jsonObject(with: json.stdout) as? [String: Any]
            let row = (doc?["results"] as? [[String: Any]])?.first
            #expect(row?["rounding"] as? String == want, "\(args): \(String(describing: row))")
            let csv = String(decoding: try qgemm(base + args + ["--csv", "-"]).stdout, as: UTF8.self).split(separator: "\n")
            #expect(csv.count == 2 && csv[0].hasSuffix(",rounding,caches,peak_gops")
                    && csv[1].split(separator: ",", omittingEmptySubsequences: false).dropLast().suffix(2) == ["\(want ?? "")", "warm"],
                    "\(args): \(csv)")
        }
        for refused in [["--rounding", "double", "--output-type", "float"], ["--rounding", "float", "--weights", "int4"]] {
            let r = try qgemm(base + refused)
            #expect(r.status != 0 && r.stderr.contains("--rounding"), "\(refused): \(r.stderr)")
        }
    }

    /// A soak's reproducer, replayed, is the same case: rebuilt from the printed
    /// literal, the check gives the printed mismatch again, bit for bit.
    @Test func soakReproducerReplaysTheSameCase() throws {
        guard let path = KernelPath.available.last(where: { $0 != .reference }) else { return }
        let r = try qgemm(["validate", "--soak", "0.3", "--seed", "11", "--jobs", "1", "--inject-fault", path.rawValue])
        #expect(r.status == 1, "\(r.stderr)")
        let lines = String(decoding: r.stdout, as: UTF8.self).split(separator: "\n").map(String.init)
        guard let i = lines.firstIndex(where: { $0.hasPrefix("MISMATCH ") }), i + 1 < lines.count,
              let open = lines[i + 1].range(of: "KernelCheck("), let close = lines[i + 1].range(of: ").run(") else {
            Issue.record("no reproducer in \(lines.prefix(4))")
            return
        }
        var fields: [String: String] = [:]
        for part in lines[i + 1][open.upperBound..<close.lowerBound].components(separatedBy: ", ") {
            let kv = part.components(separatedBy: ": ")
            fields[kv[0]] = kv[1].hasPrefix(".") ? String(kv[1].dropFirst()) : kv[1]
        }
        func int(_ key: String) -> Int { Int(fields[key] ?? "") ?? -1 }
        let check = KernelCheck(m: int("m"), k: int("k"), n: int("n"),
                                activation: QuantizedType(rawValue: fields["activation"] ?? "") ?? .uint8,
                                xZeroPoint: Int32(int("xZeroPoint")), perChannel: fields["perChannel"] == "true",
                                rounding: RoundingMode(rawValue: fields["rounding"] ?? "") ?? .float,
                                narrowClamp: fields["narrowClamp"] == "true", threads: int("threads"),
                                output: KernelCheck.Output(rawValue: fields["output"] ?? "") ?? .int8,
                                rowStrideExtra: int("rowStrideExtra"), outputStrideExtra: int("outputStrideExtra"),
                                seed: UInt64(fields["seed"] ?? "") ?? 0)
        let replayed = try check.run(paths: [path], injectingFaultInto: path)
        #expect(replayed.map { "MISMATCH \($0)" } == lines[i])
        // Without the fault, the same case is exact.
        #expect(try check.run(paths: [path]) == nil)
    }

    @Test func libraryErrorsExitOneWithTheirMessage() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        try NPYArray(uint8: [1, 2, 3, 4], shape: [2, 2]).write(to: dir.appendingPathComponent("x.npy"))
        try NPYArray(int8: [1, -1, 2, 0], shape: [2, 2]).write(to: dir.appendingPathComponent("w.npy"))
        // A zero point outside uint8 is a QGEMMError from the library: a failure (1), not a usage error (64).
        let r = try qgemm(["gemm", "--x", dir.appendingPathComponent("x.npy").path, "--w", dir.appendingPathComponent("w.npy").path,
                           "--x-scale", "0.1", "--x-zero-point", "300", "--w-scale", "0.1", "--output-type", "int32",
                           "--out", dir.appendingPathComponent("y.npy").path])
        #expect(r.status == 1, "\(r.status) \(r.stderr)")
        #expect(r.stderr.contains("invalid zero point"), "\(r.stderr)")
        #expect(!r.stderr.contains("Usage:"), "\(r.stderr)")
        let missing = try qgemm(["linear", "--x", dir.appendingPathComponent("none.npy").path,
                                 "--w", dir.appendingPathComponent("w.npy").path, "--out", dir.appendingPathComponent("y.npy").path])
        #expect(missing.status == 1, "\(missing.status) \(missing.stderr)")
        #expect(!missing.stderr.contains("Usage:"), "\(missing.stderr)")
    }

    /// Every committed safetensors fuzz regression, given to `linear --load`:
    /// exit 1 with an error (the loader's, naming the file, or the call's:
    /// one layer's weight scale overflows Float with its input's scale),
    /// or, for those named `valid-…` (a valid layer: the harness, not the
    /// loader, was at fault), exit 0; never a crash (a trap exits by a
    /// signal, which Process reports as another status).
    @Test func damagedLayerFilesExitOneNotACrash() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let regressions = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Fuzz/Regressions/safetensors")
        let files = try FileManager.default.contentsOfDirectory(at: regressions, includingPropertiesForKeys: nil)
        #expect(!files.isEmpty)
        var rng = CheckRandom(seed: 5)
        try NPYArray(float32: (0..<10).map { _ in rng.gaussian() }, shape: [2, 5]).write(to: dir.appendingPathComponent("x.npy"))
        for file in files {
            let r = try qgemm(["linear", "--x", dir.appendingPathComponent("x.npy").path, "--load", file.path,
                               "--out", dir.appendingPathComponent("y.npy").path])
            if file.lastPathComponent.hasPrefix("valid-") {
                #expect(r.status == 0, "\(file.lastPathComponent): \(r.status) \(r.stderr)")
            } else {
                #expect(r.status == 1 && r.stderr.contains("Error:"), "\(file.lastPathComponent): \(r.status) \(r.stderr)")
            }
        }
    }

    /// A bench shape too large for memory (or for Int) is refused before
    /// anything is allocated.
    @Test func benchRefusesShapesBeyondMemory() throws {
        for shape in ["4000000000x4000000000x1", "100000x100000x100000", "1x1x9223372036854775807", "1x9223372036854775807x1"] {
            let r = try qgemm(["bench", "--shape", shape, "--repeat", "1"])
            #expect(r.status == 64 && r.stderr.contains("--shape \(shape) needs"), "\(shape): \(r.status) \(r.stderr)")
        }
        let int4 = try qgemm(["bench", "--weights", "int4", "--shape", "1x9223372036854775807x1"])
        #expect(int4.status == 64 && int4.stderr.contains("more bytes than Int holds"), "\(int4.status) \(int4.stderr)")
    }

    /// An output is replaced in one rename: the tool stopped while it writes
    /// (here by a file-size limit of 1 KiB on a 16 KiB Y: killed by SIGXFSZ,
    /// or the write refused) leaves the old file whole (a write in place
    /// would leave it cut short).
    @Test func aKilledWriteLeavesTheOldOutputWhole() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        func file(_ name: String) -> String { dir.appendingPathComponent(name).path }
        let x = [Int8](repeating: 3, count: 64 * 4), w = [Int8](repeating: -2, count: 64 * 4)
        try NPYArray(int8: x, shape: [64, 4]).write(to: URL(fileURLWithPath: file("x.npy")))
        try NPYArray(int8: w, shape: [64, 4]).write(to: URL(fileURLWithPath: file("w.npy")))
        try NPYArray(int32: [1, 2, 3], shape: [1, 3]).write(to: URL(fileURLWithPath: file("y.npy")))
        let old = try Data(contentsOf: URL(fileURLWithPath: file("y.npy")))
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/bash")
        p.arguments = ["-c", "ulimit -f 1; exec \"$0\" \"$@\"", Self.binary.path, "gemm", "--x", file("x.npy"), "--w", file("w.npy"),
                       "--x-scale", "1", "--x-zero-point", "0", "--w-scale", "1", "--output-type", "int32", "--out", file("y.npy")]
        p.standardError = FileHandle.nullDevice
        try p.run()
        p.waitUntilExit()
        // Killed by SIGXFSZ, or, where the test runner ignores that signal (children inherit it),
        // refused by the write (EFBIG): the old file whole either way.
        #expect(p.terminationStatus != 0, "\(p.terminationReason) \(p.terminationStatus)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: file("y.npy"))) == old)
        // Without the limit the same call replaces it.
        let r = try qgemm(Array(p.arguments!.dropFirst(3)))
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try NPYArray(contentsOf: URL(fileURLWithPath: file("y.npy"))).shape == [64, 64])
    }

    /// A row the library refuses on its turn (int8 weights whose 255·Σ|q_W|
    /// passes the accumulator's bound, which depends on the values drawn) ends
    /// the run with its error, and the rows before it are written where asked.
    @Test func benchKeepsTheRowsBeforeOneTheLibraryRefuses() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let json = dir.appendingPathComponent("rows.json"), csv = dir.appendingPathComponent("rows.csv")
        let r = try qgemm(["bench", "--shape", "1x64x4", "--shape", "1x200000x1", "--no-sgemm", "--min-time", "0", "--repeat", "1",
                           "--json", json.path, "--csv", csv.path])
        #expect(r.status == 1 && r.stderr.contains("accumulator"), "\(r.status) \(r.stderr)")
        let doc = try JSONSerialization.jsonObject(with: try Data(contentsOf: json)) as? [String: Any]
        let rows = doc?["results"] as? [[String: Any]] ?? []
        #expect(rows.count == 1 && rows.first?["k"] as? Int == 64, "\(rows)")
        #expect((doc?["stopped"] as? String)?.hasPrefix("at 1x200000x1 threads 1: accumulator overflow") == true, "\(doc?["stopped"] ?? "none")")
        #expect(try String(contentsOf: csv, encoding: .utf8).split(separator: "\n").count == 2)
        // A run that finishes says nothing of stopping.
        let whole = try qgemm(["bench", "--shape", "1x64x4", "--no-sgemm", "--min-time", "0", "--repeat", "1", "--json", json.path])
        let finished = try JSONSerialization.jsonObject(with: try Data(contentsOf: json)) as? [String: Any]
        #expect(whole.status == 0 && finished?["results"] != nil && finished?["stopped"] == nil, "\(whole.stderr)")
    }

    @Test func versionAndArgumentsCheckedAtParseTime() throws {
        let v = try qgemm(["--version"])
        #expect(v.status == 0)
        #expect(String(decoding: v.stdout, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines).split(separator: ".").count == 3)
        // --kernel: an unknown name is refused before anything runs, with the valid names.
        for command in [["bench", "--shape", "2x3x4"], ["validate", "--quick"], ["gemm", "--x", "a", "--w", "b", "--x-scale", "1",
                                                                                  "--x-zero-point", "0", "--out", "c"]] {
            let r = try qgemm(command + ["--kernel", "bogus"])
            #expect(r.status == 64, "\(command[0]): \(r.stderr)")
            // ArgumentParser quotes a short list inline and bullets a longer one; validate's
            // leaves out the reference, which it checks the paths against.
            for path in KernelPath.available where !(command[0] == "validate" && path == .reference) {
                #expect(r.stderr.contains("'\(path.rawValue)'") || r.stderr.contains("- \(path.rawValue)\n"), "\(command[0]): \(r.stderr)")
            }
            if command[0] == "validate" { #expect(!r.stderr.contains("'reference'") && !r.stderr.contains("- reference\n"), "\(r.stderr)") }
        }
        // --threads: one form everywhere; a negative value is read as a value and refused with the range.
        for command in [["bench", "--shape", "2x3x4"], ["gemm", "--x", "a", "--w", "b", "--x-scale", "1", "--x-zero-point", "0",
                                                         "--out", "c"], ["linear", "--x", "a", "--w", "b", "--out", "c"]] {
            let r = try qgemm(command + ["--threads", "-1"])
            #expect(r.status == 64, "\(command[0]): \(r.stderr)")
            #expect(r.stderr.contains("1...1024"), "\(command[0]): \(r.stderr)")
        }
        let jobs = try qgemm(["validate", "--quick", "--jobs", "0"])
        #expect(jobs.status == 64 && jobs.stderr.contains("1...1024"), "\(jobs.stderr)")
    }

    /// `info` reports the block sizes the drivers use: the library's MC for
    /// the default path (int8) and the 4-bit path, at each K it lists.
    @Test func infoReportsTheBlockSizesTheDriversUse() throws {
        let r = try qgemm(["info", "--json", "-"])
        #expect(r.status == 0, "\(r.stderr)")
        let blocks = (try JSONSerialization.jsonObject(with: r.stdout) as? [String: Any])?["block_rows"] as? [String: Any]
        let int8 = blocks?["int8"] as? [String: Any], int4 = blocks?["int4_group32"] as? [String: Any]
        let path = try #require(KernelPath(rawValue: int8?["path"] as? String ?? ""))
        let int4Path = try #require(KernelPath(rawValue: int4?["path"] as? String ?? ""))
        let int8Rows = int8?["by_k"] as? [String: Int] ?? [:], int4Rows = int4?["by_k"] as? [String: Int] ?? [:]
        if path != .reference {
            #expect(!int8Rows.isEmpty)
            for (k, rows) in int8Rows { #expect(rows == path.blockRows(k: Int(k) ?? 0, m: Int(Int32.max), n: 1), "int8 K \(k)") }
        }
        for (k, rows) in int4Rows { #expect(rows == int4Path.int4BlockRows(k: Int(k) ?? 0, groupSize: 32), "int4 K \(k)") }
        #expect(int4Path == .reference ? int4Rows.isEmpty : !int4Rows.isEmpty)
    }

    /// `info` says how the avx512vnni tile stores rows that start off a
    /// line (as they are) and how the tiles read the weights of calls of few
    /// rows (one stream), both only on AMD family 1Ah (Zen 5), and how the
    /// avx2 main tile widens the weights (by shuffles only on Intel's Haswell
    /// and Broadwell), and how the avx512vnni 4-bit main tile unpacks (GFNI
    /// only on Intel CPUs that have it), by the CPU's own vendor, family and
    /// model as Linux reports them; the 4-bit tile a call runs is the one
    /// that says.
    @Test func infoSaysTheRoutesChosenForTheCPUFamily() throws {
        let r = try qgemm(["info", "--json", "-"])
        #expect(r.status == 0, "\(r.stderr)")
        let object = try JSONSerialization.jsonObject(with: r.stdout) as? [String: Any]
        let cheap = object?["line_crossing_stores_cheap"] as? Bool, oneStream = object?["decode_one_stream"] as? Bool
        let shuffles = object?["avx2_widens_by_shuffles"] as? Bool
        let ahead = object?["avx2_widens_weights_ahead"] as? Bool
        let gfni = object?["int4_high_nibbles_by_gfni"] as? Bool
        #expect(ahead == CPUFeatures.current.avx2WidensWeightsAhead)
        #expect(gfni == CPUFeatures.current.int4HighNibblesByGFNI)
        if KernelPath.avx512vnni.hasInt4Kernel {
            #expect(KernelPath.avx512vnni.int4KernelName == (gfni == true && KernelPath.avx512vnni.isSupported
                ? "qg_w4_8x32c8__avx512vnnigfni" : "qg_w4_8x32c8__avx512vnni"))
        } else {
            #expect(KernelPath.avx512vnni.int4KernelName == nil)
        }
        #expect(cheap == CPUFeatures.current.lineCrossingStoresAreCheap)
        #expect(oneStream == CPUFeatures.current.decodeReadsOneStream)
        #expect(shuffles == CPUFeatures.current.avx2WidensBytesByShuffles)
        #if os(Linux) && arch(x86_64)
        let cpuinfo = try String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8).split(separator: "\n")
        let field = { (name: String) in
            cpuinfo.first { $0.hasPrefix(name) }.flatMap { $0.split(separator: ":").last }
                .map { $0.trimmingCharacters(in: .whitespaces) }
        }
        let zen5 = field("vendor_id") == "AuthenticAMD" && field("cpu family") == "26"
        #expect(cheap == zen5, "vendor \(field("vendor_id") ?? "?"), family \(field("cpu family") ?? "?")")
        #expect(oneStream == zen5, "vendor \(field("vendor_id") ?? "?"), family \(field("cpu family") ?? "?")")
        // Haswell and Broadwell: Intel family 6, models 3Ch, 3Fh, 45h, 46h, 3Dh, 47h, 4Fh, 56h.
        let port0Shifts = field("vendor_id") == "GenuineIntel" && field("cpu family") == "6"
            && [60, 63, 69, 70, 61, 71, 79, 86].contains(Int(field("model\t") ?? "") ?? -1)
        #expect(shuffles == port0Shifts, "vendor \(field("vendor_id") ?? "?"), model \(field("model\t") ?? "?")")
        // Zen 1 and Zen+: AMD family 23 (17h), models below 48 (30h), with AVX2.
        let zen1 = field("vendor_id") == "AuthenticAMD" && field("cpu family") == "23"
            && (Int(field("model\t") ?? "") ?? 99) < 48 && KernelPath.avx2.isSupported
        #expect(ahead == zen1, "vendor \(field("vendor_id") ?? "?"), family \(field("cpu family") ?? "?"), model \(field("model\t") ?? "?")")
        let intelGFNI = field("vendor_id") == "GenuineIntel" && (field("flags") ?? "").split(separator: " ").contains("gfni")
        #expect(gfni == intelGFNI, "vendor \(field("vendor_id") ?? "?")")
        #else
        #expect(cheap == false)
        #expect(oneStream == false)
        #expect(shuffles == false)
        #expect(ahead == false)
        #expect(CPUFeatures.current.gfni || gfni == false)
        #endif
        let text = String(decoding: try qgemm(["info"]).stdout, as: UTF8.self)
        if KernelPath.avx2.isSupported {
            #expect(text.contains(shuffles == true ? "(avx2 main tile): by byte shuffles" : "(avx2 main tile): by shifts"), "\(text)")
            #expect(text.contains("once per step of channels") == (ahead == true), "\(text)")
        } else {
            #expect(!text.contains("int8 weights to int16"), "\(text)")
        }
        if KernelPath.avx512vnni.isSupported {
            #expect(text.contains(cheap == true ? "as they are at K ≤ 128" : "split at the lines (a store"), "\(text)")
            #expect(text.contains(oneStream == true ? "one panel after another" : "four panels side by side"), "\(text)")
            #expect(text.contains(gfni == true ? "3 rows or more): by one GF2P8AFFINEQB" : "3 rows or more): by a shift and an AND"), "\(text)")
        } else {
            #expect(!text.contains("rows off a 64-byte line"), "\(text)")
            #expect(!text.contains("4-bit weights at M = 1"), "\(text)")
            #expect(!text.contains("4-bit high nibbles"), "\(text)")
        }
    }

    @Test func infoNamesTheOpenBLASCoreAndItsStanding() throws {
        let r = try qgemm(["info", "--json", "-"])
        #expect(r.status == 0, "\(r.stderr)")
        let doc = try JSONSerialization.jsonObject(with: r.stdout) as? [String: Any]
        let blas = doc?["openblas"] as? [String: Any]
        #expect(blas?["core"] is String)
        #expect(blas?["below_cpu"] is Bool)
        // The variable is reported as it is; the test never sets or unsets it.
        if let forced = ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"] {
            #expect(blas?["forced_by"] as? String == "OPENBLAS_CORETYPE=\(forced)")
        } else {
            #expect(blas?["forced_by"] is NSNull)
        }
        for key in ["core_isa", "cpu_isa"] {
            if let isa = blas?[key] as? String { #expect(["SSE", "AVX", "AVX2", "AVX-512"].contains(isa), "\(key) \(isa)") }
        }
        // bench says the same, in the same words.
        let bench = try qgemm(["bench", "--shape", "2x3x4", "--min-time", "0", "--repeat", "1", "--json", "-"])
        let benchBLAS = ((try JSONSerialization.jsonObject(with: bench.stdout) as? [String: Any])?["machine"]
                         as? [String: Any])?["openblas"] as? [String: Any]
        #expect(benchBLAS?["core"] as? String == blas?["core"] as? String)
        #expect(benchBLAS?["core_isa"] as? String == blas?["core_isa"] as? String)
        #expect(benchBLAS?["below_cpu"] as? Bool == blas?["below_cpu"] as? Bool)
        let bits = doc?["fp32_peak_vector_bits"] as? Int
        #expect(bits == (CPUFeatures.current.avx512f ? 512 : CPUFeatures.current.fma ? 256 : 0))
    }

    @Test func benchJSONHasTheDocumentedFields() throws {
        let r = try qgemm(["bench", "--shape", "3x20x17", "--threads", "1,2", "--min-time", "0.001", "--repeat", "2", "--json", "-"])
        #expect(r.status == 0, "\(r.stderr)")
        let doc = try JSONSerialization.jsonObject(with: r.stdout) as? [String: Any]
        let machine = doc?["machine"] as? [String: Any]
        for key in ["cpu", "kernel_paths", "kernel", "openblas_core", "int8_peak_gops", "fp32_peak_gflops"] {
            #expect(machine?[key] != nil, "machine.\(key)")
        }
        let results = doc?["results"] as? [[String: Any]] ?? []
        #expect(results.count == 2)
        for r in results {
            for key in ["m", "k", "n", "threads", "kernel", "output_type", "int8_gops", "int8_gops_best",
                        "sgemm_gflops", "speedup", "peak_fraction", "speedup_best", "peak_fraction_best"] {
                #expect(r[key] != nil, "result.\(key)")
            }
            let ratio = (r["int8_gops_best"] as? Double ?? 0) / (r["sgemm_gflops_best"] as? Double ?? 1)
            #expect(abs((r["speedup_best"] as? Double ?? 0) - ratio) <= 1e-9 * ratio, "\(r)")
            #expect((r["int8_gops"] as? Double ?? 0) > 0)
            #expect(r["m"] as? Int == 3 && r["k"] as? Int == 20 && r["n"] as? Int == 17)
        }
    }

    @Test func gemmOnNPYFilesMatchesTheLibraryAndTakesNegativeNumbers() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        var rng = CheckRandom(seed: 4)
        let m = 5, k = 23, n = 11
        let x = (0..<m * k).map { _ in Int8(truncatingIfNeeded: rng.next()) }
        let w = (0..<n * k).map { _ in Int8(truncatingIfNeeded: rng.next()) }
        let b = (0..<n).map { _ in Int32(truncatingIfNeeded: rng.next() % 20_000) - 10_000 }
        try NPYArray(int8: x, shape: [m, k]).write(to: dir.appendingPathComponent("x.npy"))
        try NPYArray(int8: w, shape: [n, k]).write(to: dir.appendingPathComponent("w.npy"))
        try NPYArray(int32: b, shape: [n]).write(to: dir.appendingPathComponent("b.npy"))
        let r = try qgemm(["gemm", "--x", dir.appendingPathComponent("x.npy").path, "--w", dir.appendingPathComponent("w.npy").path,
                           "--bias", dir.appendingPathComponent("b.npy").path, "--x-scale", "0.05", "--x-zero-point", "-128",
                           "--w-scale", "0.01", "--y-scale", "0.9", "--y-zero-point", "-3", "--rounding", "double",
                           "--clamp", "-128,100", "--out", dir.appendingPathComponent("y.npy").path])
        #expect(r.status == 0, "\(r.stderr)")
        let y = try NPYArray(contentsOf: dir.appendingPathComponent("y.npy"))
        #expect(y.shape == [m, n])
        let packed = try PackedWeights(weights: w, outputChannels: n, inputChannels: k, scales: .perTensor(0.01), bias: .int32(b),
                                       input: try QuantizationParameters(type: .int8, scale: 0.05, zeroPoint: -128),
                                       output: try QuantizationParameters(type: .int8, scale: 0.9, zeroPoint: -3),
                                       rounding: .doubleRounding, clamp: -128...100)
        let expected: [Int8] = try packed.gemm(x, rows: m, kernel: .reference)
        #expect(try y.int8Values() == expected)

        // int32 output refuses output parameters, with a message.
        let refused = try qgemm(["gemm", "--x", dir.appendingPathComponent("x.npy").path, "--w", dir.appendingPathComponent("w.npy").path,
                                 "--x-scale", "0.05", "--x-zero-point", "-1", "--w-scale", "0.01", "--y-scale", "1",
                                 "--output-type", "int32", "--out", dir.appendingPathComponent("y2.npy").path])
        #expect(refused.status != 0)
        #expect(refused.stderr.contains("y-scale"))
        // A malformed file is reported, not crashed on.
        try Data("garbage".utf8).write(to: dir.appendingPathComponent("bad.npy"))
        let bad = try qgemm(["gemm", "--x", dir.appendingPathComponent("bad.npy").path, "--w", dir.appendingPathComponent("w.npy").path,
                             "--x-scale", "0.05", "--x-zero-point", "0", "--w-scale", "0.01", "--output-type", "int32",
                             "--out", dir.appendingPathComponent("y3.npy").path])
        #expect(bad.status != 0)
        #expect(bad.stderr.contains("magic"))
    }

    @Test func environmentVariableChangesTheProcessDefault() throws {
        let portable = try qgemm(["info"], environment: ["QGEMM_KERNEL": "portable"])
        #expect(String(decoding: portable.stdout, as: UTF8.self).contains("default      portable (QGEMM_KERNEL)"))
        let bogus = try qgemm(["info"], environment: ["QGEMM_KERNEL": "bogus"])
        #expect(String(decoding: bogus.stdout, as: UTF8.self).contains("'bogus' is not a kernel path"))
        // A GEMM under a bad QGEMM_KERNEL fails with the error, not silently on another path.
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        try NPYArray(uint8: [1, 2, 3, 4], shape: [2, 2]).write(to: dir.appendingPathComponent("x.npy"))
        try NPYArray(int8: [1, -1, 2, 0], shape: [2, 2]).write(to: dir.appendingPathComponent("w.npy"))
        let r = try qgemm(["gemm", "--x", dir.appendingPathComponent("x.npy").path, "--w", dir.appendingPathComponent("w.npy").path,
                           "--x-scale", "0.1", "--x-zero-point", "3", "--w-scale", "0.1", "--output-type", "int32",
                           "--out", dir.appendingPathComponent("y.npy").path], environment: ["QGEMM_KERNEL": "bogus"])
        #expect(r.status != 0)
        #expect(r.stderr.contains("QGEMM_KERNEL"))
    }
}
