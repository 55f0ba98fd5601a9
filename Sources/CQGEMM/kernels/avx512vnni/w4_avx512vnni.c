// The AVX-512 VNNI path's 4-bit-weight (W4A8) tiles: ../x86/w4_zmm.h.
//
// Tiles: 8 rows × 32 channels (two panels: 16 int32 sum registers, the float
// sums in L1, touched once per group), and for decode 1 row × 64 channels
// (four panels), whose low and high nibbles go into separate sums so that 8
// VPDPBUSD chains, not 4, hide its latency. Software prefetch 512 or 2,048
// bytes ahead did not speed decode up (1×4096×4096, 1×11008×4096), and on
// Zen 5 slowed it down; the 8×32 tile prefetches (QG_W4Z_PREFETCH_BYTES).
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
    qg_w4z_tile(a, m0, n0, cols, 1, 4);
}
#endif
