// The avxvnni path's 4-bit-weight (W4A8) tiles: ../x86/w4_ymm.h with the
// VEX-encoded VPDPBUSD, which sums four nibble × activation products into
// each int32 lane exactly (QG_W4Y_DOT1: one VPDPBUSD per nibble half).
//
// Tiles: 4 rows × 16 channels, and for decode 1 row × 32 channels. The
// unpacking (a shift and two ANDs per 32 bytes) competes with VPDPBUSD for
// the same two ports, so more rows share each unpacked chunk. Tiles of at
// most four sums (one or two rows here) keep the high nibbles' sums apart
// (QG_W4Y_SPLIT), so that no sum waits on two VPDPBUSD in a row per chunk,
// and take those nibbles unshifted (two ANDs, no shift: ../x86/w4_ymm.h).
// llvm-mca (Alder Lake) on the group loop, int32 MACs per cycle: the former
// 2×16 tile with one sum per channel 39.6 at group 32 and 35.4 at group
// 128, the 4×16 tile 42.5 and 48.9 (a model only: no AVX-VNNI CPU here).
#include "kernel.h"

#if defined(__x86_64__)
// scripts/check-vnni-emulated sets "avx2,fma" and a software VPDPBUSD.
#ifndef QG_W4_AVXVNNI_TARGET
#define QG_W4_AVXVNNI_TARGET "avx2,fma,avxvnni,f16c"
#endif
#define QG_W4Y_INLINE static inline QG_SPECIALIZE __attribute__((target(QG_W4_AVXVNNI_TARGET)))
#define QG_W4Y_DOT1(sum, v, x) _mm256_dpbusd_avx_epi32(sum, v, x)
#include "../x86/w4_ymm.h"
#include "w4_avxvnni.h"

__attribute__((target(QG_W4_AVXVNNI_TARGET))) void qg_w4_4x16c8__avxvnni(const qg_w4_args *a, int rows, int64_t m0, int64_t n0, int cols) {
    switch (rows) {
    case 1: qg_w4y_tile(a, m0, n0, cols, 1, 2, 1); break;
    case 2: qg_w4y_tile(a, m0, n0, cols, 2, 2, 0); break;
    case 3: qg_w4y_tile(a, m0, n0, cols, 3, 2, 0); break;
    default: qg_w4y_tile(a, m0, n0, cols, 4, 2, 0); break;
    }
}

__attribute__((target(QG_W4_AVXVNNI_TARGET))) void qg_w4_1x32c8__avxvnni(const qg_w4_args *a, int rows, int64_t m0, int64_t n0, int cols) {
    (void)rows;
    qg_w4y_tile(a, m0, n0, cols, 1, 4, 1);
}
#endif
