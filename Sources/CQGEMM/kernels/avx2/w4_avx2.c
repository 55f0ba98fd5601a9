// The avx2 path's 4-bit-weight (W4A8) tiles: ../x86/w4_ymm.h with VPMADDUBSW.
// The unsigned operand is a nibble (≤ 15) and the signed one an activation
// (≥ −128), so a pair of products is at most 2·15·128 = 3,840 in magnitude,
// and the low and high nibbles' pairs added in int16 at most 7,680: neither
// saturates, so this is exact. The 2-row tile adds up to four chunks' int16
// lanes (at most 30,720) before VPMADDWD by 1 sums pairs into int32: the
// multiply port, its bound, does 2.25 instructions per chunk and half
// instead of 3 when the chunks come in fours (128×4096×4096 at group 32:
// 116–118 → 128–134 GOP/s on Zen 2).
//
// Tiles: 2 rows × 16 channels, and for decode 1 row × 64 channels. The
// decode tile reads four 16-channel panels at once: four streams from memory,
// which one core of Zen 2 reads faster than one or two (cold weights, one
// thread: 1×11008×4096 at 69–75 GOP/s with 1 × 32, 82–85 with 1 × 64).
#include "kernel.h"

#if defined(__x86_64__)
#define QG_W4Y_INLINE static inline QG_SPECIALIZE __attribute__((target("avx2,fma,f16c")))
#define QG_W4Y_DOT16(lo, hi, x0, x1) _mm256_add_epi16(_mm256_maddubs_epi16(lo, x0), _mm256_maddubs_epi16(hi, x1))
#define QG_W4Y_WIDEN(sum, part) _mm256_add_epi32(sum, _mm256_madd_epi16(part, _mm256_set1_epi16(1)))
#define QG_W4Y_DOT(sum, lo, hi, x0, x1) QG_W4Y_WIDEN(sum, QG_W4Y_DOT16(lo, hi, x0, x1))
#ifndef QG_W4Y_PREFETCH_BYTES
#define QG_W4Y_PREFETCH_BYTES 2048
#endif
// The decode tile (one row, four panels) prefetches much nearer, as measured
// (why, not settled: a plain C loop reading 4 MiB as tiles of four 8 KiB
// streams, caches evicted, ran at 17.3 GB/s prefetching 2 KiB ahead and 23.6
// with no software prefetch at all). Zen 2, one thread, caches
// evicted, group 128, fastest of three interleaved rounds, GOP/s (2 KiB →
// 512 bytes): 1×512×4096 43–45 → 51–58, 1×1024×4096 61–64 → 72–74,
// 1×2048×4096 71–75 → 79–85, 1×4096×4096 84–85 → 86–94, 1×8192×4096 86–88
// → 90–96, 1×4096×11008 79–81 → 86–90, 1×11008×4096 95–100 → 94–98; two
// threads 1×4096×4096 151–154 → 164–167; group 32 1×4096×4096 75–79 →
// 82–85, 1×11008×4096 85–93 → 90–92. 256 bytes gained as much on short K
// and lost on long (1×11008×4096 at group 32: 85–88); with weights larger
// than the L3 and not evicted (1×11008×4096 at group 32), 512 bytes read
// 91–92 against 2 KiB's 93–94. The two-row tile keeps 2 KiB: at 512 bytes
// M = 2 and 4 lost 5–8 % cold and 2×11008×4096 20 % warm.
#ifndef QG_W4Y_DECODE_PREFETCH_BYTES
#define QG_W4Y_DECODE_PREFETCH_BYTES 512
#endif
#ifndef QG_W4Y_STREAMING_ROWS
#define QG_W4Y_STREAMING_ROWS 8
#endif
#include "../x86/w4_ymm.h"
#include "w4_avx2.h"

__attribute__((target("avx2,fma,f16c"))) void qg_w4_2x16c8__avx2(const qg_w4_args *a, int rows, int64_t m0, int64_t n0, int cols) {
    // Calls of a few rows read each step's weights from memory once and
    // then from the caches; their first row group waits on memory unless it
    // prefetches. Larger calls are bound by the multiplies, where the
    // prefetches cost about 2 % (M ≥ 32 on Zen 2).
    if (rows == 1) qg_w4y_tile(a, m0, n0, cols, 1, 2, 1);
    else if (a->m <= QG_W4Y_STREAMING_ROWS) qg_w4y_tile(a, m0, n0, cols, 2, 2, 1);
    else qg_w4y_tile(a, m0, n0, cols, 2, 2, 0);
}

__attribute__((target("avx2,fma,f16c"))) void qg_w4_1x64c8__avx2(const qg_w4_args *a, int rows, int64_t m0, int64_t n0, int cols) {
    (void)rows;
    // A block of channels can end in a step of 16, 32 or 48 (threads share
    // N out in whole panels): narrower tiles skip the halves never stored.
    if (cols <= 16) qg_w4y_tile(a, m0, n0, cols, 1, 2, 1);
    else if (cols <= 32) qg_w4y_tile(a, m0, n0, cols, 1, 4, 1);
    else qg_w4y_tile(a, m0, n0, cols, 1, 8, 1);
}
#endif
