// The NEON 4-bit-weight (W4A8) tile, shared by the neondot and neoni8mm paths
// (every CPU with I8MM has DotProd: Armv8.6 requires both). The includer
// defines QG_W4N_INLINE, its QG_SPECIALIZE attributes with a target that
// has "dotprod".
//
// A 64-byte chunk of the W4 layout is four 16-byte registers of 4 channels ×
// 8 K: K 0…3 in the low nibbles (one AND), K 4…7 in the high ones (a shift
// right by 4). SDOT by element multiplies them, as signed bytes (0…15), by one
// 4-byte group of an 8-byte load of the row's activations: lane 0 for K 0…3,
// lane 1 for K 4…7. Each group's sums start at the row's offset term (−8·Σ q_X),
// which takes the +8 of the stored nibbles back; once per group one conversion
// and one fused multiply-add with the group's scales (binary16, widened
// exactly by FCVTL), as the contract orders them. The float sums live in memory, touched once per group, so the
// registers hold the int32 sums of more rows.
#ifndef QG_W4_NEON_H
#define QG_W4_NEON_H

#include <arm_neon.h>

#include "partial_store.h"

/// R rows × NP panels of 16 channels (compile-time constants).
QG_W4N_INLINE void qg_w4n_tile(const qg_w4_args *a, int64_t m0, int64_t n0, int cols, const int R, const int NP) {
    const int64_t groups = qg_w4_groups(a->k, a->group), chunks = a->group / QG_W4_K_CHUNK;
    const uint8_t *w[4];
    const uint16_t *ws[4];
    for (int p = 0; p < NP; p++) {
        w[p] = qg_w4_panel_weights(a, qg_w4_tile_panel(n0, p, cols));
        ws[p] = qg_w4_panel_scales(a, qg_w4_tile_panel(n0, p, cols));
    }
    const uint8x16_t nibble = vdupq_n_u8(0x0F);
    float s[4][4][16];
    for (int r = 0; r < R; r++)
        for (int p = 0; p < NP; p++)
            for (int q = 0; q < 4; q++) vst1q_f32(s[r][p] + 4 * q, vdupq_n_f32(0.0f));
    for (int64_t g = 0; g < groups; g++) {
        int32x4_t sum[4][4][4];
        for (int r = 0; r < R; r++) {
            const int32x4_t start = vdupq_n_s32(a->x_offset[(m0 + r) * groups + g]);
            for (int p = 0; p < NP; p++)
                for (int q = 0; q < 4; q++) sum[r][p][q] = start;
        }
        const int64_t kg = g * a->group;
        for (int64_t c = 0; c < chunks; c++) {
            int8x8_t xv[4];
            for (int r = 0; r < R; r++) xv[r] = vld1_s8(a->x + (m0 + r) * a->ldx + kg + c * 8);
            for (int p = 0; p < NP; p++) {
                const uint8_t *at = w[p] + (g * chunks + c) * 64;
                for (int q = 0; q < 4; q++) {
                    const uint8x16_t v = vld1q_u8(at + 16 * q);
                    const int8x16_t lo = vreinterpretq_s8_u8(vandq_u8(v, nibble));
                    const int8x16_t hi = vreinterpretq_s8_u8(vshrq_n_u8(v, 4));
                    for (int r = 0; r < R; r++)
                        sum[r][p][q] = vdotq_lane_s32(vdotq_lane_s32(sum[r][p][q], lo, xv[r], 0), hi, xv[r], 1);
                }
            }
        }
        for (int p = 0; p < NP; p++)
            for (int q = 0; q < 4; q++) {
                const float32x4_t scale = vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(ws[p] + g * QG_W4_PANEL_N + 4 * q)));
                for (int r = 0; r < R; r++)
                    vst1q_f32(s[r][p] + 4 * q, vfmaq_f32(vld1q_f32(s[r][p] + 4 * q), scale, vcvtq_f32_s32(sum[r][p][q])));
            }
    }
    for (int r = 0; r < R; r++) {
        const float32x4_t xs = vdupq_n_f32(a->x_scale[m0 + r]);
        float *y = a->y + (m0 + r) * a->ldy + n0;
        for (int p = 0; p < NP; p++)
            for (int q = 0; q < 4; q++) {
                const int left = cols - p * QG_W4_PANEL_N - 4 * q;
                if (left <= 0) break;
                const float32x4_t b = a->bias ? vld1q_f32(a->bias + n0 + p * QG_W4_PANEL_N + 4 * q) : vdupq_n_f32(0.0f);
                const float32x4_t out = vfmaq_f32(b, xs, vld1q_f32(s[r][p] + 4 * q));
                float *dst = y + p * QG_W4_PANEL_N + 4 * q;
                if (left >= 4) {
                    vst1q_f32(dst, out);
                } else {
                    float lanes[4];
                    vst1q_f32(lanes, out);
                    qg_copy_first_bytes(dst, lanes, left * (int)sizeof(float));
                }
            }
    }
}

#endif
