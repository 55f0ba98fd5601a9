// The portable path: plain C, for CPUs with no supported SIMD. Same driver,
// same packed weights; a 4×16 tile with int32 accumulators and the scalar
// epilogue. The compiler may vectorise it for the baseline ISA. Its packing is
// shared with the test-only odd-tile kernels (kernel_test_odd_tiles.c).
//
// Activation layout: rows of int16, K padded to kp with zeros:
//   x_block[r * kp + k] = X[m0 + r][k]
#include "epilogue_scalar.h"
#include "kernel.h"
#include "portable.h"
#include "probes.h"

#include <string.h>

enum { QG_PORTABLE_MR = 4 };

static int qg_portable_supported(void) { return 1; }

size_t qg_portable_x_bytes(int64_t rows, int64_t kp) { return (size_t)(rows * kp) * sizeof(int16_t); }

void qg_portable_pack_x(const qg_gemm_args *a, int64_t m0, int64_t rows, void *dst) {
    int16_t *out = dst;
    for (int64_t r = 0; r < rows; r++) {
        int16_t *row = out + r * a->kp;
        if (a->x_unsigned) {
            const uint8_t *x = (const uint8_t *)a->x + (m0 + r) * a->ldx;
            for (int64_t k = 0; k < a->k; k++) row[k] = x[k];
        } else {
            const int8_t *x = (const int8_t *)a->x + (m0 + r) * a->ldx;
            for (int64_t k = 0; k < a->k; k++) row[k] = x[k];
        }
        for (int64_t k = a->k; k < a->kp; k++) row[k] = 0;
    }
}

/// One tile: `rows` ≤ 4 rows × `cols` ≤ 16 channels of one panel, full K.
static inline QG_SPECIALIZE void qg_portable_tile(const qg_gemm_args *a, const void *x_group, int rows,
                                                                   int64_t m0, int64_t n0, int cols, const void *params,
                                                                   const qg_output_kind kind) {
    const int16_t *x = x_group;
    const int8_t *panel = qg_weights_at(a, n0, 0);
    int32_t acc[QG_PORTABLE_MR][QG_PANEL_N];
    memset(acc, 0, sizeof acc);
    const int64_t groups = a->kp / QG_K_GROUP;
    for (int64_t g = 0; g < groups; g++) {
        const int8_t *w = panel + g * (QG_PANEL_N * QG_K_GROUP);
        for (int r = 0; r < rows; r++) {
            const int16_t *xr = x + r * a->kp + g * QG_K_GROUP;
            for (int c = 0; c < QG_PANEL_N; c++) {
                int32_t s = 0;
                for (int t = 0; t < QG_K_GROUP; t++) s += (int32_t)w[c * QG_K_GROUP + t] * xr[t];
                acc[r][c] += s;
            }
        }
    }
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++) qg_epilogue_scalar(a, m0 + r, n0 + c, acc[r][c], kind);
}

QG_DEFINE_TILE_KINDS(, 4x16c4__portable, qg_portable_tile)

const qg_kernel qg_kernel_portable = {
    .name = "portable",
    .requires = "any CPU",
    .main = {.mr = QG_PORTABLE_MR, .nr = QG_PANEL_N, .run = QG_TILE_KINDS(4x16c4__portable), .name = "qg_gemm_4x16c4__portable"},
    .kr = QG_K_GROUP,
    .panel_n = QG_PANEL_N,
    .is_supported = qg_portable_supported,
    .x_block_bytes = qg_portable_x_bytes,
    .pack_x = qg_portable_pack_x,
    .x_block_target = 512 * 1024,
    .max_row_groups = 16,
    .peak_probe = qg_peak_scalar,
    .peak_instruction = QG_SCALAR_PEAK_INSTRUCTION,
    .w4_main = {.mr = 2, .nr = QG_W4_PANEL_N, .run = qg_w4_2x16c8__portable, .name = "qg_w4_2x16c8__portable"},
};
