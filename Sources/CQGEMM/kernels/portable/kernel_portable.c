// The portable path: C, for CPUs with no supported SIMD. Same driver, same
// packed weights; a 4×16 tile with int32 accumulators and the scalar
// epilogue. Its K loop is written in the compiler's generic vectors
// (pair_sums.h), which every target lowers to its own baseline SIMD or to
// scalar code: plain loops had stayed scalar. Its packing is shared with the
// test-only odd-tile kernels (kernel_test_odd_tiles.c).
//
// Activation layout: rows of int16, K padded to kp with zeros:
//   x_block[r * kp + k] = X[m0 + r][k]
#include "epilogue_scalar.h"
#include "kernel.h"
#include "pair_sums.h"
#include "portable.h"

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

/// One tile: `rows` ≤ 4 rows × `cols` ≤ 16 channels of one panel, full K, a
/// row at a time, so that its sums stay in registers (8 vectors): 16 bytes
/// of a K-group's weights (4 channels × k0…k3) are two sets of 8 int16 lanes
/// against the group's activations repeated, (x0 x1 x2 x3 x0 x1 x2 x3), and
/// leave two pair sums per channel, added after the K loop (wrapping uint32,
/// exact under the PackedWeights bound).
static inline QG_SPECIALIZE void qg_portable_tile(const qg_gemm_args *a, const void *x_group, int rows,
                                                                   int64_t m0, int64_t n0, int cols, const void *params,
                                                                   const qg_output_kind kind) {
    (void)params;
    const int8_t *panel = qg_weights_at(a, n0, 0);
    const int64_t kp = a->kp, groups = kp / QG_K_GROUP;
    for (int r = 0; r < rows; r++) {
        const int16_t *x = (const int16_t *)x_group + r * kp;
        qg_pv4u32 acc[QG_PANEL_N / 2] = {0};
        for (int64_t g = 0; g < groups; g++) {
            qg_pv4s16 x4;
            memcpy(&x4, x + g * QG_K_GROUP, sizeof x4);
            const qg_pv8s16 xs = __builtin_shufflevector(x4, x4, 0, 1, 2, 3, 0, 1, 2, 3);
            const int8_t *w = panel + g * (QG_PANEL_N * QG_K_GROUP);
            for (int q = 0; q < QG_PANEL_N / 4; q++) {
                qg_pv16s8 b;
                memcpy(&b, w + 16 * q, sizeof b);
                acc[2 * q] += qg_portable_pair_sums(QG_PV_HALF(b, 0), xs);
                acc[2 * q + 1] += qg_portable_pair_sums(QG_PV_HALF(b, 8), xs);
            }
        }
        for (int c = 0; c < cols; c++) qg_epilogue_scalar(a, m0 + r, n0 + c, qg_portable_channel_sum(acc, c), kind);
    }
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
    .peak_probe = qg_peak_portable,
    .peak_instruction = QG_PORTABLE_PEAK_INSTRUCTION,
    .w4_main = {.mr = 2, .nr = QG_W4_PANEL_N, .run = qg_w4_2x16c8__portable, .name = "qg_w4_2x16c8__portable"},
};
