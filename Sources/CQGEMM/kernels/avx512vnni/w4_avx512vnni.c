// The AVX-512 VNNI path's 4-bit-weight (W4A8) tiles: ../x86/w4_zmm.h.
//
// Tiles: 8 rows × 32 channels (two panels: 16 int32 sum registers, the float
// sums in L1, touched once per group), and for decode 1 row × 64 channels:
// four panels side by side with 8 chains (low and high nibbles apart), or,
// on Zen 5, one panel after the other with four chains each and a prefetch
// 8 KiB ahead (qg_w4z_decode). The 8×32 tile prefetches 4 KiB ahead
// (QG_W4Z_PREFETCH_BYTES), or, on Zen 5, reads one panel after the other like
// the decode tile in calls of two rows whose weights exceed the L2, and
// prefetches the next tile's panels in address order in calls of 4 to 8 rows
// (QG_W4Z_SWEEP_MIN_ROWS).
#include "kernel.h"

#if defined(__x86_64__)
#ifndef QG_VNNI_TARGET
#define QG_VNNI_TARGET "avx2,avx512f,avx512bw,avx512vnni"
#endif
#define QG_W4Z_INLINE static inline QG_SPECIALIZE __attribute__((target(QG_VNNI_TARGET)))
#define QG_W4Z __attribute__((target(QG_VNNI_TARGET)))

#include "../x86/w4_zmm.h"
#include "w4_avx512vnni.h"

QG_W4Z void qg_w4_8x32c8__avx512vnni(const qg_w4_args *a, int rows, int64_t m0, int64_t n0, int cols) {
    qg_w4z_rows(a, rows, m0, n0, cols);
}

QG_W4Z void qg_w4_1x64c8__avx512vnni(const qg_w4_args *a, int rows, int64_t m0, int64_t n0, int cols) {
    (void)rows;
    qg_w4z_decode(a, m0, n0, cols, 4);
}
#endif
