// The avxvnni path's 4-bit-weight (W4A8) tiles: ../x86/w4_ymm.h with the
// VEX-encoded VPDPBUSD, which sums four nibble × activation products into
// each int32 lane exactly (QG_W4Y_DOT1: one VPDPBUSD per nibble half).
//
// Tiles: 6 rows × 16 channels, and for decode 1 row × 32 channels. Each
// unpacked chunk (a shift and two ANDs per 32 bytes) serves every row. Tiles
// of at most four sums (one or two rows here) keep the high nibbles' sums
// apart (QG_W4Y_SPLIT), so that no sum waits on two VPDPBUSD in a row per
// chunk, and take those nibbles unshifted (two ANDs, no shift:
// ../x86/w4_ymm.h). Three rows or more add each chunk in two passes
// (qg_w4y_group_sums_passes), low nibbles then high, which is what lets six
// rows' 12 sums fit the 16 registers. On Intel CPUs
// (qg_cpu_w4_ymm_three_row_passes) six rows run as two tiles of three whose
// high nibbles' sums are apart (12 sums each, no shift, one VPDPBUSD per sum
// and chunk; and so do calls of three rows). llvm-mca's Alder Lake model of
// a whole group, int32 MACs per cycle at group 32 and 128: the former 4×16
// tile 39.8 and 46.2, six rows together 40.5 and 46.8, two tiles of three
// 41.5 and 55.2 (a model only: no Intel AVX-VNNI CPU here). Zen 5 (`--kernel avxvnni`, 128×4096×4096, one
// thread, GOP/s, fastest of three interleaved rounds, group 32 and 128): 4×16
// 434 and 450 against six rows together 441 and 507 in one such run, and 453
// and 455 against two tiles of three 357 and 449 in another; so AMD CPUs keep
// the six rows together.
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

__attribute__((target(QG_W4_AVXVNNI_TARGET))) void qg_w4_6x16c8__avxvnni(const qg_w4_args *a, int rows, int64_t m0, int64_t n0, int cols) {
    switch (rows) {
    case 1: qg_w4y_tile(a, m0, n0, cols, 1, 2, 1); break;
    case 2: qg_w4y_tile(a, m0, n0, cols, 2, 2, 0); break;
    case 3:
        if (qg_cpu_w4_ymm_three_row_passes()) qg_w4y_tile_by(a, m0, n0, cols, 3, 2, 0, QG_W4Y_PASSES_SPLIT);
        else qg_w4y_tile_by(a, m0, n0, cols, 3, 2, 0, QG_W4Y_PASSES);
        break;
    case 4: qg_w4y_tile_by(a, m0, n0, cols, 4, 2, 0, QG_W4Y_PASSES); break;
    case 5: qg_w4y_tile_by(a, m0, n0, cols, 5, 2, 0, QG_W4Y_PASSES); break;
    default:
        if (qg_cpu_w4_ymm_three_row_passes()) {
            qg_w4y_tile_by(a, m0, n0, cols, 3, 2, 0, QG_W4Y_PASSES_SPLIT);
            qg_w4y_tile_by(a, m0 + 3, n0, cols, 3, 2, 0, QG_W4Y_PASSES_SPLIT);
        } else {
            qg_w4y_tile_by(a, m0, n0, cols, 6, 2, 0, QG_W4Y_PASSES);
        }
        break;
    }
}

__attribute__((target(QG_W4_AVXVNNI_TARGET))) void qg_w4_1x32c8__avxvnni(const qg_w4_args *a, int rows, int64_t m0, int64_t n0, int cols) {
    (void)rows;
    qg_w4y_tile(a, m0, n0, cols, 1, 4, 1);
}
#endif
