// qg_w4_gemm_reference: the scalar definition of a W4A8 result (qgemm.h,
// "4-bit weights"). Slow and obvious on purpose: each weight decoded from the
// layout as documented, each group summed in int64 from q_W·q_X itself
// (not through the +8 offset the kernels use), the float steps written as
// the contract states them (with zero points, the rows hold q_X − 128 and
// the weight sums come as given). Never optimise this file.
#include "qgemm.h"

#include <math.h>

#pragma clang fp contract(off)

/// q_W[n][k], decoded here from the layout as qgemm.h states it (not through
/// the packing code's own index map, so a mistake there is not mirrored here).
static int64_t qg_w4_ref_weight(const uint8_t *w, int64_t n, int64_t k, int64_t kp) {
    const int64_t chunk = k / QG_W4_K_CHUNK, i = k % QG_W4_K_CHUNK;
    const uint8_t byte = w[(n / QG_W4_PANEL_N) * (QG_W4_PANEL_N * kp / 2) + chunk * 64 + (n % QG_W4_PANEL_N) * 4 + i % 4];
    return (int64_t)(i < 4 ? byte & 0x0F : byte >> 4) - 8;
}

void qg_w4_gemm_reference(const qg_w4_args *a) {
    const int64_t kp = qg_w4_packed_k(a->k, a->group), groups = qg_w4_groups(a->k, a->group);
    for (int64_t m = 0; m < a->m; m++) {
        for (int64_t n = 0; n < a->n; n++) {
            float s = 0.0f;
            for (int64_t g = 0; g < groups; g++) {
                int64_t acc = 0;
                for (int64_t k = g * a->group; k < (g + 1) * a->group && k < a->k; k++)
                    acc += qg_w4_ref_weight(a->w, n, k, kp) * a->x[m * a->ldx + k];
                const float sw = qg_f32_from_f16(a->w_scale[(n / QG_W4_PANEL_N) * (QG_W4_PANEL_N * groups)
                                                            + g * QG_W4_PANEL_N + n % QG_W4_PANEL_N]);
                s = fmaf(sw, (float)acc, s);
            }
            if (a->x_shift) s = fmaf(a->x_shift[m], a->w_sum[n], s);
            a->y[m * a->ldy + n] = fmaf(a->x_scale[m], s, a->bias ? a->bias[n] : 0.0f);
        }
    }
}
