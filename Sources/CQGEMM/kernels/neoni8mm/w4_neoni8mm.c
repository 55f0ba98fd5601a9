// The neoni8mm path's 4-bit-weight (W4A8) tiles: ../neon/w4_neon.h (SDOT by
// element on nibbles). Tiles: 4 rows × 16 channels, and for decode 1 row × 64.
#include "kernel.h"

#if defined(__aarch64__)
#define QG_W4N_INLINE static inline QG_SPECIALIZE __attribute__((target("dotprod")))
#include "../neon/w4_neon.h"
#include "w4_neoni8mm.h"

__attribute__((target("dotprod"))) void qg_w4_4x16c8__neoni8mm(const qg_w4_args *a, int rows, int64_t m0, int64_t n0, int cols) {
    switch (rows) {
    case 1: qg_w4n_tile(a, m0, n0, cols, 1, 1); break;
    case 2: qg_w4n_tile(a, m0, n0, cols, 2, 1); break;
    case 3: qg_w4n_tile(a, m0, n0, cols, 3, 1); break;
    default: qg_w4n_tile(a, m0, n0, cols, 4, 1); break;
    }
}

__attribute__((target("dotprod"))) void qg_w4_1x64c8__neoni8mm(const qg_w4_args *a, int rows, int64_t m0, int64_t n0, int cols) {
    (void)rows;
    qg_w4n_tile(a, m0, n0, cols, 1, 4);
}
#endif
