// The portable path's 4-bit-weight tile: C over the shared W4 layout, 2 rows
// × 16 channels, each group's scales widened once for both rows, its
// multiply-adds in the generic vectors of the int8 tile (pair_sums.h). Like
// the SIMD tiles it multiplies the stored unsigned nibbles (u = q_W + 8) by
// the signed activations and starts each group's sum at the row's offset term
// (−8·Σ q_X), so the offset the preparation writes is tested on every CPU;
// the float steps are the contract's fmaf calls (a library call where the
// baseline ISA has no fused multiply-add, as on x86-64: most of the time at
// group 32).
#include "kernel.h"
#include "pair_sums.h"
#include "portable.h"

#include <math.h>
#include <string.h>

#pragma clang fp contract(off)

enum { QG_W4_PORTABLE_MR = 2 };

void qg_w4_2x16c8__portable(const qg_w4_args *a, int rows, int64_t m0, int64_t n0, int cols) {
    const int64_t kp = qg_w4_packed_k(a->k, a->group), groups = qg_w4_groups(a->k, a->group);
    const int64_t chunks_per_group = a->group / QG_W4_K_CHUNK;
    const uint8_t *panel = a->w + (n0 / QG_W4_PANEL_N) * (QG_W4_PANEL_N * kp / 2);
    const uint16_t *scales = a->w_scale + (n0 / QG_W4_PANEL_N) * (QG_W4_PANEL_N * groups);
    const qg_pv16s8 low = {0x0F, 0x0F, 0x0F, 0x0F, 0x0F, 0x0F, 0x0F, 0x0F, 0x0F, 0x0F, 0x0F, 0x0F, 0x0F, 0x0F, 0x0F, 0x0F};
    float s[QG_W4_PORTABLE_MR][QG_W4_PANEL_N] = {{0}};
    for (int64_t g = 0; g < groups; g++) {
        // The group's scales, widened once for the tile's rows.
        float scale[QG_W4_PANEL_N];
        for (int j = 0; j < QG_W4_PANEL_N; j++) scale[j] = qg_f32_from_f16(scales[g * QG_W4_PANEL_N + j]);
        for (int r = 0; r < rows; r++) {
            const int8_t *x = a->x + (m0 + r) * a->ldx;
            // Two pair sums per channel (qg_portable_channel_sum); the row's
            // offset in the first of each channel's two lanes.
            const uint32_t offset = (uint32_t)a->x_offset[(m0 + r) * groups + g];
            qg_pv4u32 acc[QG_W4_PANEL_N / 2];
            for (int v = 0; v < QG_W4_PANEL_N / 2; v++) acc[v] = (qg_pv4u32){offset, 0, offset, 0};
            for (int64_t c = g * chunks_per_group; c < (g + 1) * chunks_per_group; c++) {
                const uint8_t *chunk = panel + c * (QG_W4_PANEL_N * QG_W4_K_CHUNK / 2);
                qg_pv8s8 bytes;
                memcpy(&bytes, x + c * QG_W4_K_CHUNK, sizeof bytes);
                const qg_pv8s16 x8 = __builtin_convertvector(bytes, qg_pv8s16);
                // The low nibbles meet x0…x3, the high ones x4…x7 (KERNELS.md, the W4 layout).
                const qg_pv8s16 x_low = __builtin_shufflevector(x8, x8, 0, 1, 2, 3, 0, 1, 2, 3);
                const qg_pv8s16 x_high = __builtin_shufflevector(x8, x8, 4, 5, 6, 7, 4, 5, 6, 7);
                for (int q = 0; q < QG_W4_PANEL_N / 4; q++) {
                    qg_pv16s8 b;
                    memcpy(&b, chunk + 16 * q, sizeof b);
                    const qg_pv16s8 lo = b & low, hi = (qg_pv16s8)((qg_pv16u8)b >> 4);
                    acc[2 * q] += qg_portable_pair_sums(QG_PV_HALF(lo, 0), x_low) + qg_portable_pair_sums(QG_PV_HALF(hi, 0), x_high);
                    acc[2 * q + 1] += qg_portable_pair_sums(QG_PV_HALF(lo, 8), x_low) + qg_portable_pair_sums(QG_PV_HALF(hi, 8), x_high);
                }
            }
            for (int j = 0; j < QG_W4_PANEL_N; j++)
                s[r][j] = fmaf(scale[j], (float)qg_portable_channel_sum(acc, j), s[r][j]);
        }
    }
    for (int r = 0; r < rows; r++) {
        float *y = a->y + (m0 + r) * a->ldy + n0;
        for (int j = 0; j < cols; j++) y[j] = fmaf(a->x_scale[m0 + r], s[r][j], a->bias ? a->bias[n0 + j] : 0.0f);
    }
}
