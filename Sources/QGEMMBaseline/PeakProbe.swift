import CQGEMM
import QGEMM

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Measures the machine's single-core peaks with register-only loops: the int8
/// multiply-accumulate rate of a kernel path's instruction (the one its
/// `tile.peakInstruction` names) and the fp32 FMA rate of the widest FMA the
/// CPU has.
///
/// Each probe runs for about `seconds`, three times, and reports the best.
public enum PeakProbe {
    /// int8 multiply-accumulates per second on one core (1 MAC = 2 ops).
    public static func int8MACsPerSecond(path: KernelPath = .best, seconds: Double = 0.1) -> Double {
        rate(seconds: seconds) { iterations in path.cValue.map { qg_peak_probe_int8($0, iterations) } ?? 0 }
    }

    /// fp32 fused multiply-adds per second on one core (1 FMA = 2 flops), with
    /// the widest FMA the CPU has (see ``fp32VectorBits``); 0 without FMA.
    public static func fp32FMAsPerSecond(seconds: Double = 0.1) -> Double {
        rate(seconds: seconds) { qg_peak_probe_fp32($0) }
    }

    /// The FMA width the fp32 probe uses: 512 on CPUs with AVX-512 F, 256 with
    /// FMA3 only, 128 on arm64 (NEON FMLA), 0 without FMA.
    public static var fp32VectorBits: Int { Int(qg_peak_fp32_vector_bits()) }

    /// Reads every byte of `buffer` once with the widest plain loads the CPU
    /// has, on up to `threads` threads, and returns the seconds it took: the
    /// streaming-read speed that a call reading its weights once (decode, M = 1)
    /// is compared with. Time it on a buffer larger than the last-level cache
    /// to measure memory rather than cache.
    public static func streamingRead(_ buffer: UnsafeRawBufferPointer, threads: Int = 1) -> Double {
        let t0 = now()
        // The C function returns what it read, so its loads stay; the result
        // itself is not needed.
        _ = qg_peak_read(buffer.baseAddress, Int64(buffer.count), Int32(clamping: threads))
        return now() - t0
    }

    /// ``streamingRead(_:threads:)`` of two buffers as one, the second after
    /// the first, split over the threads together: for a call that reads two
    /// arrays (an `Int4Weights` call reads its packed nibbles and its scales).
    /// Returns the seconds it took.
    public static func streamingRead(_ first: UnsafeRawBufferPointer, _ second: UnsafeRawBufferPointer,
                                     threads: Int = 1) -> Double {
        let t0 = now()
        _ = qg_peak_read_pair(first.baseAddress, Int64(first.count), second.baseAddress, Int64(second.count),
                              Int32(clamping: threads))
        return now() - t0
    }

    /// Monotonic time in seconds.
    public static func now() -> Double {
        var t = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t)
        return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9
    }

    private static func rate(seconds: Double, _ probe: (Int64) -> Int64) -> Double {
        var iterations: Int64 = 1 << 16
        // Grow until one run takes a tenth of the budget, then measure.
        while true {
            let t0 = now()
            let work = probe(iterations)
            let dt = now() - t0
            if work == 0 { return 0 }
            if dt >= seconds / 10 || iterations > 1 << 40 { break }
            iterations *= 4
        }
        var best = 0.0
        for _ in 0..<3 {
            let t0 = now()
            let work = probe(iterations)
            let dt = now() - t0
            best = max(best, Double(work) / dt)
        }
        return best
    }
}
