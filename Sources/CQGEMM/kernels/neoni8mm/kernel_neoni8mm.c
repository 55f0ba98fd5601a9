// The arm64 matrix-multiply path: SMMLA / USMMLA (Armv8.6 I8MM).
//
// One SMMLA multiplies a 2×8 block of int8 rows by the transpose of a 2×8
// block of int8 columns and adds the 2×2 int32 result to an accumulator:
// 32 multiply-adds per instruction, twice SDOT's 16. USMMLA does the same with
// unsigned first operand, so uint8 activations enter as they are (no fold).
// Products and sums are exact (the PackedWeights bound).
//
// The instruction wants K in groups of 8, so this path declares a weight layout
// of its own (KERNELS.md, "A layout of its own"): panels of 8 channels, K in
// groups of 8, channel-major inside a group, so one 16-byte load is channels
// c, c+1 × 8 K values, exactly an SMMLA operand. PackedWeights repacks into it
// on first use; a->w and a->kp (K padded to 8) then describe that copy.
//
// Activation layout (row group of MR = 8 rows, short groups padded with zero
// rows, K padded to kp): row pairs, 8 K values per row:
//   x_group[g·64 + r·8 + t] = X[m0 + r][8g + t]
// so one 16-byte load is rows 2p, 2p+1 × one K-group.
//
// The 8×8 tile keeps 4 row pairs × 4 channel pairs = 16 accumulators
// [r0c0 r0c1 r1c0 r1c1]; before the epilogue, a 64-bit zip turns two of them
// into four channels of one row. Short row groups (M ≤ 2, LLM decode) use a
// 2×32 tile: one row pair against four panels, again 16 accumulators.
#include "kernel.h"

#if defined(__aarch64__)
#include "../neon/epilogue_neon.h"
#include "w4_neoni8mm.h"

#define QG_MMLA __attribute__((target("i8mm")))
#define QG_MMLA_INLINE static inline QG_SPECIALIZE __attribute__((target("i8mm")))

enum { QG_MMLA_MR = 8, QG_MMLA_NR = 8, QG_MMLA_KR = 8 };

static size_t qg_mmla_x_bytes(int64_t rows, int64_t kp) {
    return (size_t)((rows + QG_MMLA_MR - 1) / QG_MMLA_MR * QG_MMLA_MR * kp);
}

static void qg_mmla_pack_x(const qg_gemm_args *a, int64_t m0, int64_t rows, void *dst) {
    uint8_t *out = dst;
    const int64_t groups = a->kp / QG_MMLA_KR, full = a->k / QG_MMLA_KR;
    const int64_t padded = (rows + QG_MMLA_MR - 1) / QG_MMLA_MR * QG_MMLA_MR;
    const int64_t stride = QG_MMLA_MR * QG_MMLA_KR;
    for (int64_t r = 0; r < padded; r++) {
        uint8_t *o = out + (r / QG_MMLA_MR) * QG_MMLA_MR * a->kp + (r % QG_MMLA_MR) * QG_MMLA_KR;
        if (r >= rows) { // a padding row of the last group: zeros, never stored
            for (int64_t g = 0; g < groups; g++) memset(o + g * stride, 0, QG_MMLA_KR);
            continue;
        }
        const uint8_t *x = (const uint8_t *)a->x + (m0 + r) * a->ldx;
        for (int64_t g = 0; g < full; g++) memcpy(o + g * stride, x + g * QG_MMLA_KR, QG_MMLA_KR);
        if (full < groups) { // the K tail, zero-padded: padding meets zero weights
            uint8_t *t = o + full * stride;
            memset(t, 0, QG_MMLA_KR);
            memcpy(t, x + full * QG_MMLA_KR, (size_t)(a->k - full * QG_MMLA_KR));
        }
    }
}

/// 2·RP rows (RP row pairs) × NP panels of 8 channels, full K; RP, NP and U
/// are constants after inlining (RP·NP ≤ 4: 16 accumulators).
/// U: the activations are uint8 (USMMLA) rather than int8 (SMMLA).
QG_MMLA_INLINE void qg_mmla_tile(const qg_gemm_args *a, const uint8_t *x, const int RP, const int NP, const int U,
                                 int rows, const int8_t *w, int64_t m0, int64_t n0, int cols,
                                 const qg_neon_params *params, const qg_output_kind kind) {
    int32x4_t acc[QG_MMLA_MR / 2][4][4];
    for (int p = 0; p < RP; p++)
        for (int q = 0; q < NP; q++)
            for (int c = 0; c < 4; c++) acc[p][q][c] = vdupq_n_s32(0);
    const int64_t groups = a->kp / QG_MMLA_KR, panel = QG_MMLA_NR * a->kp;
    for (int64_t g = 0; g < groups; g++) {
        int8x16_t wv[4][4];
        for (int q = 0; q < NP; q++) {
            const int8_t *wq = w + q * panel + g * 64;
            if (NP > 1) __builtin_prefetch(wq + 1024); // the few-rows tile streams its panels once
            for (int c = 0; c < 4; c++) wv[q][c] = vld1q_s8(wq + 16 * c);
        }
        const uint8_t *xg = x + g * (QG_MMLA_MR * QG_MMLA_KR);
        for (int p = 0; p < RP; p++) {
            if (U) {
                const uint8x16_t xv = vld1q_u8(xg + 16 * p);
                for (int q = 0; q < NP; q++)
                    for (int c = 0; c < 4; c++) acc[p][q][c] = vusmmlaq_s32(acc[p][q][c], xv, wv[q][c]);
            } else {
                const int8x16_t xv = vld1q_s8((const int8_t *)xg + 16 * p);
                for (int q = 0; q < NP; q++)
                    for (int c = 0; c < 4; c++) acc[p][q][c] = vmmlaq_s32(acc[p][q][c], xv, wv[q][c]);
            }
        }
    }
    for (int p = 0; p < RP; p++)
        for (int q = 0; q < NP && cols - 8 * q > 0; q++) {
            const int here = cols - 8 * q > 8 ? 8 : cols - 8 * q;
            // [r0c0 r0c1 r1c0 r1c1] blocks: the low halves of two are row 2p's four channels.
            const int64x2_t b0 = vreinterpretq_s64_s32(acc[p][q][0]), b1 = vreinterpretq_s64_s32(acc[p][q][1]);
            const int64x2_t b2 = vreinterpretq_s64_s32(acc[p][q][2]), b3 = vreinterpretq_s64_s32(acc[p][q][3]);
            const int32x4_t even[2] = {vreinterpretq_s32_s64(vzip1q_s64(b0, b1)), vreinterpretq_s32_s64(vzip1q_s64(b2, b3))};
            qg_neon_epilogue(a, params, m0 + 2 * p, n0 + 8 * q, here, even, 2, kind);
            if (2 * p + 1 < rows) {
                const int32x4_t odd[2] = {vreinterpretq_s32_s64(vzip2q_s64(b0, b1)), vreinterpretq_s32_s64(vzip2q_s64(b2, b3))};
                qg_neon_epilogue(a, params, m0 + 2 * p + 1, n0 + 8 * q, here, odd, 2, kind);
            }
        }
}

/// rows ≤ 8 × cols ≤ 8 channels (one 8-channel panel of the path's own layout).
QG_MMLA_INLINE void qg_mmla_main(const qg_gemm_args *a, const void *x_group, int rows, int64_t m0, int64_t n0, int cols,
                                 const void *params, const qg_output_kind kind) {
    const uint8_t *x = x_group;
    const int8_t *w = a->w + (n0 / QG_MMLA_NR) * (QG_MMLA_NR * a->kp);
#define QG_MMLA_CASE(RP)                                                                   \
    case RP:                                                                               \
        if (a->x_unsigned) qg_mmla_tile(a, x, RP, 1, 1, rows, w, m0, n0, cols, params, kind);            \
        else qg_mmla_tile(a, x, RP, 1, 0, rows, w, m0, n0, cols, params, kind);                          \
        return;
    switch ((rows + 1) / 2) { QG_MMLA_CASE(1) QG_MMLA_CASE(2) QG_MMLA_CASE(3) QG_MMLA_CASE(4) }
#undef QG_MMLA_CASE
}
QG_DEFINE_TILE_KINDS(QG_MMLA, 8x8c8__neoni8mm, qg_mmla_main)

/// The few-rows tile (M ≤ 2, LLM decode): one row pair × up to 4 panels (32
/// channels). The 8×8 tile gives one row pair only 4 accumulator chains; here
/// 16, so SMMLA's latency does not idle the pipes, each panel streamed once.
QG_MMLA_INLINE void qg_mmla_few_rows(const qg_gemm_args *a, const void *x_group, int rows, int64_t m0, int64_t n0,
                                     int cols, const void *params, const qg_output_kind kind) {
    const uint8_t *x = x_group;
    const int8_t *w = a->w + (n0 / QG_MMLA_NR) * (QG_MMLA_NR * a->kp);
#define QG_MMLA_FEW_CASE(NP)                                                               \
    case NP:                                                                               \
        if (a->x_unsigned) qg_mmla_tile(a, x, 1, NP, 1, rows, w, m0, n0, cols, params, kind);            \
        else qg_mmla_tile(a, x, 1, NP, 0, rows, w, m0, n0, cols, params, kind);                          \
        return;
    switch ((cols + QG_MMLA_NR - 1) / QG_MMLA_NR) { // only the panels that hold channels to store
        QG_MMLA_FEW_CASE(1) QG_MMLA_FEW_CASE(2) QG_MMLA_FEW_CASE(3) QG_MMLA_FEW_CASE(4)
    }
#undef QG_MMLA_FEW_CASE
}
QG_DEFINE_TILE_KINDS(QG_MMLA, 2x32c8__neoni8mm, qg_mmla_few_rows)

/// I8MM and DotProd: the 4-bit tiles add their nibbles with SDOT. Every
/// Armv8.6 core has both, but both are optional from Armv8.2, and a VM or an
/// emulator may show I8MM alone; the path would then die of SIGILL there.
static int qg_mmla_supported(void) {
    const qg_cpu_features *f = qg_cpu_get_features();
    return f->i8mm && f->dotprod;
}

/// The per-call params (qg_neon_params): uint8 activations enter USMMLA as
/// they are, so there is no private fold.
static void qg_mmla_init_params(const qg_gemm_args *a, void *params) { qg_neon_init_params(a, params, 0); }

/// The peak probe of this path's instruction (peak_neoni8mm.c in this folder).
int64_t qg_peak_smmla(int64_t iterations);

const qg_kernel qg_kernel_neoni8mm = {
    .name = "neoni8mm",
    .requires = "arm64 with the int8 matrix-multiply extension (Armv8.6 I8MM: SMMLA/USMMLA) and DotProd (SDOT)",
    .main = {.mr = QG_MMLA_MR, .nr = QG_MMLA_NR, .run = QG_TILE_KINDS(8x8c8__neoni8mm), .name = "qg_gemm_8x8c8__neoni8mm"},
    .few_rows = {.mr = 2, .nr = 4 * QG_MMLA_NR, .run = QG_TILE_KINDS(2x32c8__neoni8mm), .name = "qg_gemm_2x32c8__neoni8mm"},
    .kr = QG_MMLA_KR,
    .panel_n = QG_MMLA_NR,
    .is_supported = qg_mmla_supported,
    .params_bytes = qg_neon_params_bytes,
    .init_params = qg_mmla_init_params,
    .x_block_bytes = qg_mmla_x_bytes,
    .pack_x = qg_mmla_pack_x,
    .x_block_target = 256 * 1024,
    .max_row_groups = 16,
    .peak_probe = qg_peak_smmla,
    .peak_instruction = "SMMLA",
    .w4_main = {.mr = 4, .nr = QG_W4_PANEL_N, .run = qg_w4_4x16c8__neoni8mm, .name = "qg_w4_4x16c8__neoni8mm"},
    .w4_few = {.mr = 1, .nr = 4 * QG_W4_PANEL_N, .run = qg_w4_1x64c8__neoni8mm, .name = "qg_w4_1x64c8__neoni8mm"},
};
#endif
