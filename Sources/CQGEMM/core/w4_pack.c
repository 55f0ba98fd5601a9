// The 4-bit weight layout (qgemm.h, "4-bit weights"): packing, reading
// back, and the channels' weight sums that zero points need (the activations
// that meet it: w4_prepare.c).
#include "qgemm.h"

#include <math.h>
#include <string.h>

#pragma clang fp contract(off)

/// Where channel n's K value k lives: the byte, and whether it is the high nibble.
static int64_t qg_w4_byte_index(int64_t n, int64_t k, int64_t kp, int *high) {
    const int64_t chunk = k / QG_W4_K_CHUNK, in_chunk = k % QG_W4_K_CHUNK;
    *high = in_chunk >= 4;
    return (n / QG_W4_PANEL_N) * (QG_W4_PANEL_N * kp / 2) + chunk * (QG_W4_PANEL_N * QG_W4_K_CHUNK / 2)
         + (n % QG_W4_PANEL_N) * 4 + in_chunk % 4;
}

/// Where channel c's scale of group g lives in the packed scales.
static int64_t qg_w4_scale_index(int64_t c, int64_t g, int64_t groups) {
    return (c / QG_W4_PANEL_N) * (QG_W4_PANEL_N * groups) + g * QG_W4_PANEL_N + c % QG_W4_PANEL_N;
}

void qg_w4_pack(const int8_t *q, int64_t ldq, int64_t n, int64_t k, int64_t group, const uint16_t *scales,
                uint8_t *packed, uint16_t *packed_scales) {
    const int64_t np = qg_packed_n(n), kp = qg_w4_packed_k(k, group), groups = qg_w4_groups(k, group);
    // Padding stores u = 8, which is q_W = 0.
    memset(packed, 0x88, (size_t)(np * kp / 2));
    for (int64_t c = 0; c < n; c++) {
        for (int64_t i = 0; i < k; i++) {
            int high;
            const int64_t at = qg_w4_byte_index(c, i, kp, &high);
            const uint8_t u = (uint8_t)(q[c * ldq + i] + 8);
            packed[at] = high ? (uint8_t)((packed[at] & 0x0F) | (u << 4)) : (uint8_t)((packed[at] & 0xF0) | u);
        }
    }
    for (int64_t c = 0; c < np; c++)
        for (int64_t g = 0; g < groups; g++)
            packed_scales[qg_w4_scale_index(c, g, groups)] = c < n ? scales[c * groups + g] : 0;
}

int8_t qg_w4_packed_value(const uint8_t *packed, int64_t n, int64_t k, int64_t kp) {
    int high;
    const uint8_t byte = packed[qg_w4_byte_index(n, k, kp, &high)];
    return (int8_t)((high ? byte >> 4 : byte & 0x0F) - 8);
}

void qg_w4_weight_sums(const uint8_t *packed, const uint16_t *packed_scales, int64_t n, int64_t k, int64_t group,
                       float *w_sum) {
    const int64_t kp = qg_w4_packed_k(k, group), groups = qg_w4_groups(k, group), np = qg_packed_n(n);
    for (int64_t c = 0; c < np; c++) {
        float s = 0.0f;
        for (int64_t g = 0; c < n && g < groups; g++) {
            int32_t sum = 0;
            for (int64_t i = g * group; i < (g + 1) * group && i < k; i++) sum += qg_w4_packed_value(packed, c, i, kp);
            s = fmaf(qg_f32_from_f16(packed_scales[qg_w4_scale_index(c, g, groups)]), (float)sum, s);
        }
        w_sum[c] = s;
    }
}
