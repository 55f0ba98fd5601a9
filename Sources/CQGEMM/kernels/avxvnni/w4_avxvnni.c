// The avxvnni path's 4-bit-weight (W4A8) tiles: ../x86/w4_ymm.h with the
// VEX-encoded VPDPBUSD, which sums four nibble × activation products into
// each int32 lane exactly.
//
// Tiles: 2 rows × 16 channels, and for decode 1 row × 32 channels.
#include "kernel.h"

#if defined(__x86_64__)
// scripts/check-vnni-emulated sets "avx2,fma" and a software VPDPBUSD.
#ifndef QG_W4_AVXVNNI_TARGET
#define QG_W4_AVXVNNI_TARGET "avx2,fma,avxvnni,f16c"
#endif
#define QG_W4Y_INLINE static inline __attribute__((always_inline, target(QG_W4_AVXVNNI_TARGET)))
#define QG_W4Y_DOT(sum, lo, hi, x0, x1) \
    _mm256_dpbusd_avx_epi32(_mm256_dpbusd_avx_epi32(sum, lo, x0), hi, x1)
#include "../x86/w4_ymm.h"
#include "w4_avxvnni.h"

__attribute__((target(QG_W4_AVXVNNI_TARGET))) void qg_w4_2x16c8__avxvnni(const qg_w4_args *a, int rows, int64_t m0, int64_t n0, int cols) {
    if (rows == 1) qg_w4y_tile(a, m0, n0, cols, 1, 2, 1);
    else qg_w4y_tile(a, m0, n0, cols, 2, 2, 0);
}

__attribute__((target(QG_W4_AVXVNNI_TARGET))) void qg_w4_1x32c8__avxvnni(const qg_w4_args *a, int rows, int64_t m0, int64_t n0, int cols) {
    (void)rows;
    qg_w4y_tile(a, m0, n0, cols, 1, 4, 1);
}
#endif
