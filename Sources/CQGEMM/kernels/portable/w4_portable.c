// The portable path's 4-bit-weight tile: plain C over the shared W4 layout,
// 2 rows × 16 channels. Like the SIMD tiles it multiplies the stored unsigned
// nibbles (u = q_W + 8) by the signed activations and starts each group's
// sum at the row's offset term (−8·Σ q_X), so the offset the preparation
// writes is tested on every CPU; the float steps are the contract's fmaf calls.
#include "kernel.h"
#include "portable.h"

#include <math.h>

#pragma clang fp contract(off)

enum { QG_W4_PORTABLE_MR = 2 };

void qg_w4_2x16c8__portable(const qg_w4_args *a, int rows, int64_t m0, int64_t n0, int cols) {
    const int64_t kp = qg_w4_packed_k(a->k, a->group), groups = qg_w4_groups(a->k, a->group);
    const int64_t chunks_per_group = a->group / QG_W4_K_CHUNK;
    const uint8_t *panel = a->w + (n0 / QG_W4_PANEL_N) * (QG_W4_PANEL_N * kp / 2);
    const uint16_t *scales = a->w_scale + (n0 / QG_W4_PANEL_N) * (QG_W4_PANEL_N * groups);
    float s[QG_W4_PORTABLE_MR][QG_W4_PANEL_N] = {{0}};
    for (int64_t g = 0; g < groups; g++) {
        int32_t acc[QG_W4_PORTABLE_MR][QG_W4_PANEL_N];
        for (int r = 0; r < rows; r++)
            for (int j = 0; j < QG_W4_PANEL_N; j++) acc[r][j] = a->x_offset[(m0 + r) * groups + g];
        for (int64_t c = g * chunks_per_group; c < (g + 1) * chunks_per_group; c++) {
            const uint8_t *chunk = panel + c * (QG_W4_PANEL_N * QG_W4_K_CHUNK / 2);
            for (int r = 0; r < rows; r++) {
                const int8_t *x = a->x + (m0 + r) * a->ldx + c * QG_W4_K_CHUNK;
                for (int j = 0; j < QG_W4_PANEL_N; j++)
                    for (int i = 0; i < 4; i++) {
                        const uint8_t byte = chunk[j * 4 + i];
                        acc[r][j] += (byte & 0x0F) * x[i] + (byte >> 4) * x[4 + i];
                    }
            }
        }
        for (int r = 0; r < rows; r++)
            for (int j = 0; j < QG_W4_PANEL_N; j++) s[r][j] = fmaf(qg_f32_from_f16(scales[g * QG_W4_PANEL_N + j]), (float)acc[r][j], s[r][j]);
    }
    for (int r = 0; r < rows; r++) {
        float *y = a->y + (m0 + r) * a->ldy + n0;
        for (int j = 0; j < cols; j++) y[j] = fmaf(a->x_scale[m0 + r], s[r][j], a->bias ? a->bias[n0 + j] : 0.0f);
    }
}
