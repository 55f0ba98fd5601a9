import CQGEMM
import Testing
@testable import QGEMM
import QGEMMBaseline

/// Every kernel path this CPU has, bit for bit against the scalar reference.
///
/// The full Cartesian product of the dimensions below is far too large for a
/// debug build, so the suite runs a seeded pairwise sample: every value of
/// every dimension and every pair of values of two dimensions appears in at
/// least one case (the generator checks this). The full product runs in a
/// release build with `qgemm validate --sweep`.
@Suite("Kernel paths against the reference")
struct KernelPathTests {
    /// Every path this CPU runs, the test-only odd-tile variants included.
    static var simdPaths: [KernelPath] { KernelPath.allIncludingTestOnly.filter { $0.isSupported && $0 != .reference } }

    /// The Swift view of the registry is the C one: names, order, tiles.
    @Test func swiftAndCViewsOfTheRegistryAgree() throws {
        let all = KernelPath.allIncludingTestOnly
        #expect(all.count == Int(qg_path_count()))
        #expect(all.first == .reference)
        for (i, path) in all.enumerated() {
            #expect(path.rawValue == String(cString: qg_path_name(Int32(i))))
            #expect(KernelPath(rawValue: path.rawValue) == path)
            var info = qg_path_info()
            #expect(qg_path_describe(Int32(i), &info) == 0)
            #expect(path.tile.mr == Int(info.mr) && path.tile.nr == Int(info.nr) && path.tile.kr == Int(info.kr))
            #expect(path.tile.panelN == Int(info.panel_n))
            #expect(path.kernelName == String(cString: info.ukernel))
            #expect(path.tile.isTestOnly == (info.test_only != 0))
            #expect(path.tile.peakInstruction == (info.peak_instruction.map { String(cString: $0) } ?? ""))
            #expect(path.isSupported == (qg_path_is_supported(Int32(i)) != 0))
        }
        #expect(KernelPath.best.rawValue == String(cString: qg_path_name(qg_path_best())))
        #expect(KernelPath.available.last == KernelPath.best)
        #expect(KernelPath.allCases.allSatisfy { !$0.tile.isTestOnly })
        // The test-only variants are registered and run, but never offered.
        let testOnly = all.filter(\.tile.isTestOnly)
        #expect(testOnly.count >= 2)
        #expect(testOnly.allSatisfy { !KernelPath.available.contains($0) && $0.isSupported })
        #expect(KernelPath(rawValue: "no-such-path") == nil)
        // Every path names what its peak probe runs, and the SIMD paths name
        // their own instruction, not the scalar loop.
        #expect(all.allSatisfy { !$0.tile.peakInstruction.isEmpty })
        #if arch(x86_64)
        #expect(KernelPath.avx2.tile.peakInstruction.hasPrefix("VPMADDWD"))
        #expect(KernelPath.avx512vnni.tile.peakInstruction.hasPrefix("VPDPBUSD"))
        #expect(KernelPath.avxvnni.tile.peakInstruction.hasPrefix("VPDPBUSD"))
        #elseif arch(arm64)
        #expect(KernelPath.neondot.tile.peakInstruction == "SDOT")
        #endif
        // One of them reads a weight layout of its own (made on first use and kept).
        #expect(testOnly.contains { $0.tile.panelN != 16 || $0.tile.kr != 4 })
    }

    /// The named paths belong to one architecture each: on this build the
    /// other architecture's names are absent (not registered, not supported,
    /// refused with a typed error), never a name with a broken path behind it.
    @Test func namedPathsFollowTheBuildsArchitecture() throws {
        #if arch(x86_64)
        let here: [KernelPath] = [.reference, .portable, .avx2, .avxvnni, .avx512vnni, .amxint8], elsewhere: [KernelPath] = [.neondot, .neoni8mm]
        #elseif arch(arm64)
        let here: [KernelPath] = [.reference, .portable, .neondot, .neoni8mm], elsewhere: [KernelPath] = [.avx2, .avxvnni, .avx512vnni, .amxint8]
        #else
        let here: [KernelPath] = [.reference, .portable], elsewhere: [KernelPath] = [.avx2, .avxvnni, .avx512vnni, .amxint8, .neondot, .neoni8mm]
        #endif
        for path in here {
            #expect(KernelPath(rawValue: path.rawValue) == path)
            #expect(KernelPath.allCases.contains(path))
        }
        let packed = try PackedWeights(weights: [Int8](repeating: 1, count: 16), outputChannels: 4, inputChannels: 4,
                                       scales: .perTensor(0.01), bias: nil,
                                       input: QuantizationParameters(type: .uint8, scale: 0.02, zeroPoint: 3))
        for path in elsewhere {
            #expect(KernelPath(rawValue: path.rawValue) == nil)
            #expect(!KernelPath.allIncludingTestOnly.contains(path) && !path.isSupported)
            #expect(path.tile.requires == "not in this build")
            #expect(throws: QGEMMError.self) { let _: [Int32] = try packed.gemm([UInt8](repeating: 5, count: 4), rows: 1, kernel: path) }
        }
    }

    /// One PackedWeights serves paths with different weight layouts, in any
    /// order and from many threads at once, with the same bits.
    @Test func pathsWithTheirOwnLayoutShareOnePackedWeights() async throws {
        guard let own = KernelPath.allIncludingTestOnly.first(where: { $0.tile.panelN != 16 || $0.tile.kr != 4 }) else {
            Issue.record("no path with its own layout is registered")
            return
        }
        var rng = CheckRandom(seed: 91)
        let n = 37, k = 29, m = 11
        let w = (0..<n * k).map { _ in Int8(truncatingIfNeeded: rng.next()) }
        let x = (0..<m * k).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        let packed = try PackedWeights(weights: w, outputChannels: n, inputChannels: k, scales: .perTensor(0.01), bias: nil,
                                       input: QuantizationParameters(type: .uint8, scale: 0.02, zeroPoint: 131))
        let want: [Int32] = try packed.gemm(x, rows: m, kernel: .reference)
        let paths = Self.simdPaths
        try await withThrowingTaskGroup(of: (KernelPath, [Int32]).self) { group in
            for i in 0..<24 {
                let path = i % 2 == 0 ? own : paths[i % paths.count]
                group.addTask { (path, try packed.gemm(x, rows: m, kernel: path, threads: 1 + i % 2)) }
            }
            for try await (path, got) in group { #expect(got == want, "\(path)") }
        }
    }

    @Test func pathsAreReported() {
        let unsupported = KernelPath.allCases.filter { !$0.isSupported }
        // Not a silent skip: the paths this CPU lacks are named in the output.
        print("kernel paths tested: \(Self.simdPaths.map(\.rawValue)); not supported on this CPU, skipped: \(unsupported.map(\.rawValue))")
        #expect(KernelPath.available.contains(.reference))
        #expect(KernelPath.available.contains(.portable))
    }

    /// Every registered path (test-only variants included) at its own tile's
    /// edges, each case's options drawn independently.
    @Test(arguments: KernelPath.allIncludingTestOnly.filter { $0 != .reference })
    func tileDerivedShapes(path: KernelPath) throws {
        guard path.isSupported else {
            print("tileDerivedShapes: \(path) skipped: this CPU lacks it (\(path.tile.requires))")
            return
        }
        let shapes = TileShapes(path: path, largeK: 300)
        #if QGEMM_SANITIZER_RUN
        // Under the sanitizers (scripts/test --sanitize builds at -O0, several
        // times slower) an out-of-bounds access needs a tail in one or two
        // dimensions, so every pair of edge values is enough there; the full
        // product runs in the plain suite, where the bits are what is checked.
        let cases = KernelCheck.pairwiseSample(ms: shapes.ms, ns: shapes.ns, ks: shapes.ks, seed: 2027)
        var failures = 0
        for c in cases {
            if let mismatch = try c.run(paths: [path]) {
                Issue.record("\(mismatch)")
                failures += 1
                if failures > 5 { break }
            }
        }
        #else
        var failures = 0
        for (i, s) in shapes.product.enumerated() {
            // Each option drawn on its own from the case's number (residues of
            // i would tie them: strides only ever with int8 and single rounding).
            var pick = SplitMix64(seed: UInt64(i) &* 0x9E37_79B9_7F4A_7C15 &+ 17)
            func draw(_ count: Int) -> Int { Int(pick.next() % UInt64(count)) }
            let activation: QuantizedType = draw(2) == 0 ? .int8 : .uint8
            let zeroPoint: Int32 = switch draw(3) {
            case 0: activation.min
            case 1: activation.max - Int32(draw(7))
            default: Int32(draw(256)) + activation.min
            }
            let check = KernelCheck(m: s.m, k: s.k, n: s.n, activation: activation, xZeroPoint: zeroPoint,
                                    perChannel: draw(2) == 0, rounding: RoundingMode.allCases[draw(3)], narrowClamp: draw(5) == 0,
                                    threads: 1 + draw(3), output: KernelCheck.Output.allCases[draw(5)],
                                    rowStrideExtra: draw(3) == 0 ? 3 : 0, outputStrideExtra: draw(3) == 0 ? 5 : 0, seed: UInt64(i))
            if let mismatch = try check.run(paths: [path]) {
                Issue.record("\(mismatch)")
                failures += 1
                if failures > 5 { break }
            }
        }
        #endif
    }

    /// The rows per task that `qg_path_block_rows` (and so the tile-derived
    /// test shapes) predict are the rows the driver uses, on every path and
    /// at every K around its K group: paths with 8-deep K groups pad K to 8,
    /// not to the shared layout's 4 (at K = 201…204, 4x8k8's MC is 8, not 12).
    @Test(arguments: KernelPath.allIncludingTestOnly.filter { $0 != .reference })
    func predictedBlockRowsAreTheDriversOwn(path: KernelPath) throws {
        guard path.isSupported else {
            print("predictedBlockRowsAreTheDriversOwn: \(path) skipped: this CPU lacks it (\(path.tile.requires))")
            return
        }
        var rng = SplitMix64(seed: 9)
        for k in Array(1...17) + [197, 201, 202, 203, 204, 205, 300, 1000] {
            let n = 9, m = 700
            let packed = try PackedWeights(quantizing: (0..<(n * k)).map { _ in rng.gaussian() }, outputChannels: n,
                                           inputChannels: k, granularity: .perChannel)
            let x = (0..<(m * k)).map { _ in Int8(truncatingIfNeeded: rng.next()) }
            let input = try QuantizationParameters(observedMin: -1, observedMax: 1, type: .int8)
            _ = try packed.gemm(x, rows: m, input: input, as: Int32.self, kernel: path, threads: 1)
            #expect(Int(qg_block_rows_of_last_call()) == path.blockRows(k: k, m: m, n: n), "\(path) K = \(k)")
        }
    }

    @Test func pairwiseSample() throws {
        let shapes = TileShapes(paths: Self.simdPaths)
        let cases = KernelCheck.pairwiseSample(ms: shapes.ms, ns: shapes.ns, ks: shapes.ks, seed: 2026)
        #expect(cases.count >= shapes.ms.count * shapes.ns.count) // the largest pair of dimensions
        var failures = 0
        for c in cases {
            if let mismatch = try c.run(paths: Self.simdPaths) {
                Issue.record("\(mismatch)")
                failures += 1
                if failures > 5 { break }
            }
        }
    }

    /// The validation helpers refuse shapes they cannot check instead of
    /// trapping (`x.min()!` of an empty X, a negative range, `% 0`).
    @Test func validationHelpersRefuseEmptyShapes() throws {
        for (m, k, n) in [(0, 4, 4), (4, 0, 4), (4, 4, 0)] {
            #expect(throws: QGEMMError(.invalidShape, "")) {
                _ = try AccuracyCheck(m: m, k: k, n: n, distribution: .gaussian, granularity: .perTensor, rounding: .singleRounding)
                    .run(paths: [.reference])
            }
        }
        for check in [KernelCheck(m: -1, k: 4, n: 4), KernelCheck(m: 2, k: 4, n: -3), KernelCheck(m: 2, k: 4, n: 4, outputStrideExtra: -2)] {
            #expect(throws: QGEMMError(.invalidShape, "")) { _ = try check.run(paths: [.reference]) }
        }
        #expect(KernelCheck.pairwiseSample(ms: [], ns: [1], ks: [1], seed: 1).isEmpty)
    }

    @Test func largeKNearTheOverflowBound() throws {
        // 255·Σ|q_W| close to 2^31 − 1: K = 65000 with full-range weights is
        // refused or accepted by the bound; use |w| ≤ 127 and extreme activations.
        for (activation, zx) in [(QuantizedType.uint8, Int32(0)), (.int8, -128), (.uint8, 255)] {
            let check = KernelCheck(m: 3, k: 65_000, n: 19, activation: activation, xZeroPoint: zx, perChannel: true,
                                    rounding: .doubleRounding, threads: 2, output: .int32, seed: 77)
            do {
                if let mismatch = try check.run(paths: Self.simdPaths) { Issue.record("\(mismatch)") }
            } catch let e as QGEMMError where e.code == .accumulatorOverflow {
                // Full-range random weights average |w| ≈ 64, far under the bound at this K.
                Issue.record("unexpected overflow refusal: \(e)")
            }
        }
    }

    @Test func everyThreadCountGivesTheSameBits() throws {
        for threads in 1...4 {
            for output in KernelCheck.Output.allCases {
                let check = KernelCheck(m: 37, k: 300, n: 70, activation: .int8, xZeroPoint: 5, threads: threads,
                                        output: output, seed: UInt64(threads))
                if let mismatch = try check.run(paths: Self.simdPaths) { Issue.record("\(mismatch)") }
            }
        }
    }
}

