// The arm64 dot-product path: SDOT (Armv8.2 DotProd) on 128-bit NEON registers.
//
// SDOT by element (vdotq_laneq_s32) adds, to each int32 lane c, the four
// products of lane c's 4 signed bytes with one chosen 4-byte group of the
// other operand. The weights are read straight from the shared layout: one
// 16-byte load is 4 channels × one K-group, so a 64-byte K-group of a panel is
// four registers. The activations of a row group are laid out so that one
// 16-byte load holds the K-group of rows 0–3 and an 8-byte load that of rows
// 4–5; each lane selects one row, and no broadcast is needed.
//
// Both operands are signed. uint8 activations enter as x − 128 (a flip of the
// top bit), which subtracts 128·row_sum[n] from every dot product; the
// per-call start values put it back (qg_neon_params, fold −128), the same
// private bias fold as the VNNI path's +128 with the sign turned round.
// Every product and sum is exact: |x − 128| ≤ 128 and the PackedWeights bound
// keeps every int32 in range.
//
// Activation layout (row group of MR = 6 rows, short groups padded with zero
// rows, K padded to kp):
//   x_group[(g·6 + r)·4 + t] = (int8) X[m0 + r][4g + t] (− 128 for uint8)
#include "kernel.h"

#if defined(__aarch64__)
#include "../neon/epilogue_neon.h"
#include "w4_neondot.h"

#define QG_DOT __attribute__((target("dotprod")))
#define QG_DOT_INLINE static inline QG_SPECIALIZE __attribute__((target("dotprod")))

enum { QG_DOT_MR = 6 };

static size_t qg_dot_x_bytes(int64_t rows, int64_t kp) {
    return (size_t)((rows + QG_DOT_MR - 1) / QG_DOT_MR * QG_DOT_MR * kp);
}

/// Packs a 32-bit word (one K-group of one row) at a time; the uint8 → int8
/// flip is an XOR of the word with 0x80808080. Only the K tail goes byte by byte.
static void qg_dot_pack_x(const qg_gemm_args *a, int64_t m0, int64_t rows, void *dst) {
    int8_t *out = dst;
    const uint32_t flip = a->x_unsigned ? 0x80808080u : 0; // uint8 → int8 as x − 128
    const int64_t groups = a->kp / QG_K_GROUP, full = a->k / QG_K_GROUP;
    const int64_t padded = (rows + QG_DOT_MR - 1) / QG_DOT_MR * QG_DOT_MR;
    for (int64_t r = 0; r < padded; r++) {
        int8_t *o = out + (r / QG_DOT_MR) * QG_DOT_MR * a->kp + (r % QG_DOT_MR) * QG_K_GROUP;
        const int64_t stride = QG_DOT_MR * QG_K_GROUP;
        if (r >= rows) { // a padding row of the last group: zeros, never stored
            for (int64_t g = 0; g < groups; g++) memset(o + g * stride, 0, QG_K_GROUP);
            continue;
        }
        const uint8_t *x = (const uint8_t *)a->x + (m0 + r) * a->ldx;
        for (int64_t g = 0; g < full; g++) {
            uint32_t word;
            memcpy(&word, x + g * QG_K_GROUP, sizeof word);
            word ^= flip;
            memcpy(o + g * stride, &word, sizeof word);
        }
        for (int64_t g = full; g < groups; g++) { // the K tail, zero-padded: padding meets zero weights
            int8_t *t = o + g * stride;
            for (int i = 0; i < QG_K_GROUP; i++) {
                const int64_t k = g * QG_K_GROUP + i;
                t[i] = k < a->k ? (int8_t)(x[k] ^ (uint8_t)flip) : 0;
            }
        }
    }
}

// One row's four SDOTs (16 channels) against lane L of a 16- or 8-byte register.
#define QG_DOT_ROW_Q(r, xv, L)                                                   \
    if (R > r)                                                                   \
        for (int c = 0; c < 4; c++) acc[r][c] = vdotq_laneq_s32(acc[r][c], wv[c], xv, L);
#define QG_DOT_ROW_D(r, xv, L)                                                   \
    if (R > r)                                                                   \
        for (int c = 0; c < 4; c++) acc[r][c] = vdotq_lane_s32(acc[r][c], wv[c], xv, L);

/// R rows × 16 channels (one panel), full K; R is a constant after inlining.
QG_DOT_INLINE void qg_dot_tile(const qg_gemm_args *a, const int8_t *x, const int R, const int8_t *w, int64_t m0,
                               int64_t n0, int cols, const qg_neon_params *params, const qg_output_kind kind) {
    int32x4_t acc[QG_DOT_MR][4];
    for (int r = 0; r < R; r++)
        for (int c = 0; c < 4; c++) acc[r][c] = vdupq_n_s32(0);
    const int64_t groups = a->kp / QG_K_GROUP;
    for (int64_t g = 0; g < groups; g++) {
        int8x16_t wv[4];
        for (int c = 0; c < 4; c++) wv[c] = vld1q_s8(w + g * 64 + 16 * c);
        const int8_t *xg = x + g * (QG_DOT_MR * QG_K_GROUP);
        const int8x16_t x03 = vld1q_s8(xg);
        QG_DOT_ROW_Q(0, x03, 0) QG_DOT_ROW_Q(1, x03, 1) QG_DOT_ROW_Q(2, x03, 2) QG_DOT_ROW_Q(3, x03, 3)
        if (R > 4) {
            const int8x8_t x45 = vld1_s8(xg + 16);
            QG_DOT_ROW_D(4, x45, 0) QG_DOT_ROW_D(5, x45, 1)
        }
    }
    for (int r = 0; r < R; r++) qg_neon_epilogue(a, params, m0 + r, n0, cols, acc[r], 4, kind);
}

/// rows ≤ 6 × cols ≤ 16 channels (one panel; n0 is a multiple of 16).
QG_DOT_INLINE void qg_dot_main(const qg_gemm_args *a, const void *x_group, int rows, int64_t m0, int64_t n0, int cols,
                               const void *params, const qg_output_kind kind) {
    const int8_t *x = x_group;
    const int8_t *w = qg_weights_at(a, n0, 0);
    switch (rows) { // constant R for the compiler: one specialised loop per row count
    case 1: qg_dot_tile(a, x, 1, w, m0, n0, cols, params, kind); return;
    case 2: qg_dot_tile(a, x, 2, w, m0, n0, cols, params, kind); return;
    case 3: qg_dot_tile(a, x, 3, w, m0, n0, cols, params, kind); return;
    case 4: qg_dot_tile(a, x, 4, w, m0, n0, cols, params, kind); return;
    case 5: qg_dot_tile(a, x, 5, w, m0, n0, cols, params, kind); return;
    default: qg_dot_tile(a, x, 6, w, m0, n0, cols, params, kind); return;
    }
}
QG_DEFINE_TILE_KINDS(QG_DOT, 6x16c4__neondot, qg_dot_main)

/// The few-rows tile (M = 1, LLM decode): one row × NP ≤ 4 panels (64
/// channels). The 6×16 tile would give one row only 4 accumulator chains, so
/// SDOT's latency would idle the pipes; here 16 independent chains, each panel
/// streamed once with a software prefetch ahead.
QG_DOT_INLINE void qg_dot_few_rows_tile(const qg_gemm_args *a, const int8_t *x, const int8_t *w, const int NP,
                                        int64_t m0, int64_t n0, int cols, const qg_neon_params *params,
                                        const qg_output_kind kind) {
    int32x4_t acc[4][4];
    for (int p = 0; p < NP; p++)
        for (int c = 0; c < 4; c++) acc[p][c] = vdupq_n_s32(0);
    const int64_t groups = a->kp / QG_K_GROUP, panel = QG_PANEL_N * a->kp;
    for (int64_t g = 0; g < groups; g++) {
        int32_t four; // row 0's K-group in the 6-row layout
        memcpy(&four, x + g * (QG_DOT_MR * QG_K_GROUP), sizeof four);
        const int8x16_t xv = vreinterpretq_s8_s32(vdupq_n_s32(four));
        for (int p = 0; p < NP; p++) {
            const int8_t *wp = w + p * panel + g * 64;
            __builtin_prefetch(wp + 1024);
            for (int c = 0; c < 4; c++) acc[p][c] = vdotq_laneq_s32(acc[p][c], vld1q_s8(wp + 16 * c), xv, 0);
        }
    }
    for (int p = 0; p < NP && cols - 16 * p > 0; p++)
        qg_neon_epilogue(a, params, m0, n0 + 16 * p, cols - 16 * p > 16 ? 16 : cols - 16 * p, acc[p], 4, kind);
}

/// rows = 1 × cols ≤ 64 channels (four panels; n0 is a multiple of 64).
QG_DOT_INLINE void qg_dot_few_rows(const qg_gemm_args *a, const void *x_group, int rows, int64_t m0, int64_t n0,
                                   int cols, const void *params, const qg_output_kind kind) {
    (void)rows;
    const int8_t *w = qg_weights_at(a, n0, 0);
    switch ((cols + QG_PANEL_N - 1) / QG_PANEL_N) { // only the panels that hold channels to store
    case 1: qg_dot_few_rows_tile(a, x_group, w, 1, m0, n0, cols, params, kind); return;
    case 2: qg_dot_few_rows_tile(a, x_group, w, 2, m0, n0, cols, params, kind); return;
    case 3: qg_dot_few_rows_tile(a, x_group, w, 3, m0, n0, cols, params, kind); return;
    default: qg_dot_few_rows_tile(a, x_group, w, 4, m0, n0, cols, params, kind); return;
    }
}
QG_DEFINE_TILE_KINDS(QG_DOT, 1x64c4__neondot, qg_dot_few_rows)

static int qg_dot_supported(void) { return qg_cpu_get_features()->dotprod; }

/// The per-call params (qg_neon_params): uint8 activations enter SDOT as
/// x − 128, which the start values take back.
static void qg_dot_init_params(const qg_gemm_args *a, void *params) {
    qg_neon_init_params(a, params, a->x_unsigned ? -128 : 0);
}

/// The peak probe of this path's instruction (peak_neondot.c in this folder).
int64_t qg_peak_sdot(int64_t iterations);

const qg_kernel qg_kernel_neondot = {
    .name = "neondot",
    .requires = "arm64 with the dot-product extension (Armv8.2 DotProd: SDOT)",
    .main = {.mr = QG_DOT_MR, .nr = QG_PANEL_N, .run = QG_TILE_KINDS(6x16c4__neondot), .name = "qg_gemm_6x16c4__neondot"},
    .few_rows = {.mr = 1, .nr = 4 * QG_PANEL_N, .run = QG_TILE_KINDS(1x64c4__neondot), .name = "qg_gemm_1x64c4__neondot"},
    .kr = QG_K_GROUP,
    .panel_n = QG_PANEL_N,
    .is_supported = qg_dot_supported,
    .params_bytes = qg_neon_params_bytes,
    .init_params = qg_dot_init_params,
    .x_block_bytes = qg_dot_x_bytes,
    .pack_x = qg_dot_pack_x,
    .x_block_target = 256 * 1024,
    .max_row_groups = 16,
    .peak_probe = qg_peak_sdot,
    .peak_instruction = "SDOT",
    .w4_main = {.mr = 4, .nr = QG_W4_PANEL_N, .run = qg_w4_4x16c8__neondot, .name = "qg_w4_4x16c8__neondot"},
    .w4_few = {.mr = 1, .nr = 4 * QG_W4_PANEL_N, .run = qg_w4_1x64c8__neondot, .name = "qg_w4_1x64c8__neondot"},
};
#endif
