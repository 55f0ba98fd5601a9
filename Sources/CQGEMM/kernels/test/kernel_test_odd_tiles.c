// Test-only kernel paths with odd tiles (as ruy's internal "standard C++"
// variants), so the driver's loops, its tail rules and the few-rows tile
// choice run against the reference on every CPU, with tiles that do not
// divide a 16-channel panel. Never offered as a default (test_only = 1).
//
// The tiles are plain C over the portable path's activation packing (rows of
// int16). test3x5 and test5x6 read the shared 16-channel × 4-K weight panels,
// addressed per channel so a tile may straddle two panels; test4x8k8 reads a
// layout of its own (8-channel panels, K in groups of 8, as an i8mm kernel
// would), which PackedWeights makes on first use and keeps.
#include "../portable/portable.h"
#include "../portable/epilogue_scalar.h"
#include "kernel.h"
#include "probes.h"

enum { QG_ODD_MAX_ROWS = 8, QG_ODD_MAX_COLS = 32 };

#define QG_TEST_INLINE static inline QG_SPECIALIZE

/// rows × cols of any size up to 8 × 32, any n0: the one tile behind every
/// odd tile of test3x5 and test5x6.
QG_TEST_INLINE void qg_odd_tile(const qg_gemm_args *a, const void *x_group, int rows, int64_t m0, int64_t n0, int cols,
                                const void *params, const qg_output_kind kind) {
    const int16_t *x = x_group;
    int32_t acc[QG_ODD_MAX_ROWS][QG_ODD_MAX_COLS] = {{0}};
    const int64_t groups = a->kp / QG_K_GROUP;
    for (int c = 0; c < cols; c++) {
        for (int64_t g = 0; g < groups; g++) {
            const int8_t *w = qg_weights_at(a, n0 + c, g);
            for (int r = 0; r < rows; r++) {
                const int16_t *xr = x + r * a->kp + g * QG_K_GROUP;
                for (int t = 0; t < QG_K_GROUP; t++) acc[r][c] += (int32_t)w[t] * xr[t];
            }
        }
    }
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++) qg_epilogue_scalar(a, m0 + r, n0 + c, acc[r][c], kind);
}
QG_DEFINE_TILE_KINDS(, 8x32c4__test, qg_odd_tile)

static int qg_odd_supported(void) { return 1; }

/// Small block budget, so that shapes of a few hundred rows cross several
/// m-blocks (MC ± 1 in the tile-derived tests).
#define QG_ODD_COMMON                               \
    .requires = "any CPU (test-only)",              \
    .kr = QG_K_GROUP, .panel_n = QG_PANEL_N,        \
    .test_only = 1, .is_supported = qg_odd_supported, \
    .x_block_bytes = qg_portable_x_bytes, .pack_x = qg_portable_pack_x, \
    .x_block_target = 4096, .max_row_groups = 4, .peak_probe = qg_peak_scalar, \
    .peak_instruction = QG_SCALAR_PEAK_INSTRUCTION

const qg_kernel qg_kernel_test3x5 = {
    .name = "test3x5",
    .main = {.mr = 3, .nr = 5, .run = QG_TILE_KINDS(8x32c4__test), .name = "qg_gemm_3x5c4__test3x5"},
    QG_ODD_COMMON,
};

const qg_kernel qg_kernel_test5x6 = {
    .name = "test5x6",
    .main = {.mr = 5, .nr = 6, .run = QG_TILE_KINDS(8x32c4__test), .name = "qg_gemm_5x6c4__test5x6"},
    .few_rows = {.mr = 2, .nr = 12, .run = QG_TILE_KINDS(8x32c4__test), .name = "qg_gemm_2x12c4__test5x6"},
    QG_ODD_COMMON,
};

/// rows ≤ 4 × cols ≤ 8 channels of one 8-channel panel in the 8 × 8 layout.
QG_TEST_INLINE void qg_k8_tile(const qg_gemm_args *a, const void *x_group, int rows, int64_t m0, int64_t n0, int cols,
                               const void *params, const qg_output_kind kind) {
    enum { PANEL = 8, KR = 8 };
    const int16_t *x = x_group;
    int32_t acc[4][PANEL] = {{0}};
    const int8_t *panel = a->w + (n0 / PANEL) * (PANEL * a->kp);
    for (int64_t g = 0; g < a->kp / KR; g++)
        for (int c = 0; c < PANEL; c++) {
            const int8_t *w = panel + g * (PANEL * KR) + c * KR;
            for (int r = 0; r < rows; r++)
                for (int t = 0; t < KR; t++) acc[r][c] += (int32_t)w[t] * x[r * a->kp + g * KR + t];
        }
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++) qg_epilogue_scalar(a, m0 + r, n0 + c, acc[r][c], kind);
}
QG_DEFINE_TILE_KINDS(, 4x8c8__test4x8k8, qg_k8_tile)

const qg_kernel qg_kernel_test4x8k8 = {
    .name = "test4x8k8",
    .main = {.mr = 4, .nr = 8, .run = QG_TILE_KINDS(4x8c8__test4x8k8), .name = "qg_gemm_4x8c8__test4x8k8"},
    .requires = "any CPU (test-only)",
    .kr = 8, .panel_n = 8,
    .test_only = 1, .is_supported = qg_odd_supported,
    .x_block_bytes = qg_portable_x_bytes, .pack_x = qg_portable_pack_x,
    .x_block_target = 4096, .max_row_groups = 4, .peak_probe = qg_peak_scalar,
    .peak_instruction = QG_SCALAR_PEAK_INSTRUCTION,
};
