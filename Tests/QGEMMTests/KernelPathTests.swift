import Testing
@testable import QGEMM

/// Every kernel path this CPU has, bit for bit against the scalar reference.
///
/// The full Cartesian product of the dimensions below is far too large for a
/// debug build, so the suite runs a seeded pairwise sample: every value of
/// every dimension and every pair of values of two dimensions appears in at
/// least one case (the generator checks this). The full product runs in a
/// release build with `qgemm validate --sweep`.
@Suite("Kernel paths against the reference")
struct KernelPathTests {
    static let ms = Array(1...9) + [15, 16, 17, 31, 32, 33, 63, 64, 65]
    /// Around every multiple of the tiles' NR (8 and 16): NR−1, NR, NR+1, 2·NR+3 …
    static let ns = [1, 2, 7, 8, 9, 15, 16, 17, 19, 31, 32, 33, 35, 47, 48, 49]
    static let ks = [1, 2, 3, 4, 5, 7, 8, 9, 63, 64, 65, 255, 256, 257, 1000]

    static var simdPaths: [KernelPath] { KernelPath.available.filter { $0 != .reference } }

    @Test func pathsAreReported() {
        let unsupported = KernelPath.allCases.filter { !$0.isSupported }
        // Not a silent skip: the paths this CPU lacks are named in the output.
        print("kernel paths tested: \(Self.simdPaths.map(\.rawValue)); not supported on this CPU, skipped: \(unsupported.map(\.rawValue))")
        #expect(KernelPath.available.contains(.reference))
        #expect(KernelPath.available.contains(.portable))
    }

    @Test func pairwiseSample() throws {
        let cases = KernelCheck.pairwiseSample(ms: Self.ms, ns: Self.ns, ks: Self.ks, seed: 2026)
        #expect(cases.count >= Self.ms.count * Self.ks.count) // the largest pair of dimensions
        var failures = 0
        for c in cases {
            if let mismatch = try c.run(paths: Self.simdPaths) {
                Issue.record("\(mismatch)")
                failures += 1
                if failures > 5 { break }
            }
        }
    }

    @Test func largeKNearTheOverflowBound() throws {
        // 255·Σ|q_W| close to 2^31 − 1: K = 65000 with full-range weights is
        // refused or accepted by the bound; use |w| ≤ 127 and extreme activations.
        for (activation, zx) in [(QuantizedType.uint8, Int32(0)), (.int8, -128), (.uint8, 255)] {
            let check = KernelCheck(m: 3, n: 19, k: 65_000, activation: activation, xZeroPoint: zx, perChannel: true,
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
                let check = KernelCheck(m: 37, n: 70, k: 300, activation: .int8, xZeroPoint: 5, threads: threads,
                                        output: output, seed: UInt64(threads))
                if let mismatch = try check.run(paths: Self.simdPaths) { Issue.record("\(mismatch)") }
            }
        }
    }
}

