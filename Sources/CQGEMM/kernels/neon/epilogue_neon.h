// The NEON epilogue of the arm64 tiles (neondot, neoni8mm): bias and
// zero-point terms, then every output type and rounding mode for one row's
// channels, four per int32x4 vector, with the reference's arithmetic
// (KERNELS.md, "The epilogue"). Plain Advanced SIMD (mandatory on arm64), so
// it runs inside any kernel whatever extension that kernel targets.
//
// The fixed-point modes work in int64 lanes, exactly as requantize.c does:
// the product acc·M0 needs up to 62 bits and, with a left shift, the
// intermediate of the double rounding needs more than 32. Two NEON facts
// carry the rounding:
//   - SRSHL (vrshlq_s64 with a negative count t) is floor((v + 2^(t−1)) / 2^t),
//     computed without overflow: round half up, exactly the single rounding and
//     the SRDHM step of the double rounding;
//   - RoundingDivideByPOT rounds ties away from zero, so a negative value first
//     gets −1 (gemmlowp's fixup), and then the same SRSHL.
// Single rounding with every shift at most −1 has a 32-bit form instead:
// SQDMULH (the high half of the doubled product, rounded down) then SRSHL
// (qg_neon_params says why it is exact). Not SQRDMULH (vqrdmulhq_s32): its
// rounding of the high half is a second rounding the reference does not make.
// Included by the arm64 kernel files only.
#ifndef QG_EPILOGUE_NEON_H
#define QG_EPILOGUE_NEON_H

#if defined(__aarch64__)
#include <arm_neon.h>
#include <string.h>

#include "kernel.h"
#include "partial_store.h"

#pragma clang fp contract(off)

#define QG_NEON_INLINE static inline QG_SPECIALIZE

/// What the NEON tiles read per call, made once by qg_neon_init_params:
/// - `single_bytes`: int8/uint8 output with single rounding and clamp bounds
///   inside the type and not crossed, which qg_neon_single_bytes finishes;
/// - `high_half`: single_bytes, and every channel's shift at most −1. Then
///   SQDMULH's H = floor(acc·M0 / 2^31) (it cannot saturate: M0 ≥ 0) and one
///   SRSHL by the shift give the rounded value in 32-bit lanes:
///   floor((acc·M0 + 2^(30−shift)) / 2^(31−shift)) = floor((H + 2^(c−1)) / 2^c)
///   with c = −shift ≥ 1, because the dropped low half adds less than one to
///   an integer before a floor division by the integer 2^c (SRSHL rounds in
///   wider arithmetic, so the add cannot overflow);
/// - each channel's start value bias − (Z_X + fold)·row_sum (wrapping int32,
///   exact under the accumulator bound), `fold` the path's private bias fold
///   (−128 when uint8 activations enter the int8 dot product as x − 128).
typedef struct qg_neon_params {
    int32_t single_bytes, high_half;
    int32_t pad[14];
    int32_t base[]; // qg_packed_n(n)
} qg_neon_params;

static inline size_t qg_neon_params_bytes(const qg_gemm_args *a) {
    return sizeof(qg_neon_params) + (size_t)qg_packed_n(a->n) * sizeof(int32_t);
}

/// Fills the params; loops without branches, which the compiler vectorizes
/// (it runs once per call over every channel). Padding channels (n ≥ N,
/// whose entries need not be initialized) get no bias and count as shift −1.
static inline void qg_neon_init_params(const qg_gemm_args *a, void *out, int32_t fold) {
    qg_neon_params *p = out;
    const int64_t np = qg_packed_n(a->n), nn = a->n;
    const uint32_t z = (uint32_t)a->x_zero_point + (uint32_t)fold;
    if (a->bias)
        for (int64_t n = 0; n < np; n++) {
            const int32_t b = a->bias[n];
            p->base[n] = (int32_t)((uint32_t)(n < nn ? b : 0) - z * (uint32_t)a->row_sum[n]);
        }
    else
        for (int64_t n = 0; n < np; n++) p->base[n] = (int32_t)(0u - z * (uint32_t)a->row_sum[n]);
    p->single_bytes = qg_clamp_inside_type(a) && a->rounding == QG_ROUND_SINGLE;
    int high_half = p->single_bytes;
    if (high_half) {
        int32_t largest = -1;
        for (int64_t n = 0; n < nn; n++) largest = a->shift[n] > largest ? a->shift[n] : largest;
        high_half = largest <= -1;
    }
    p->high_half = high_half;
}

/// min(max(v, lo), hi) on int64 lanes (NEON has no 64-bit min/max).
QG_NEON_INLINE int64x2_t qg_neon_clamp64(int64x2_t v, int64x2_t lo, int64x2_t hi) {
    v = vbslq_s64(vcltq_s64(v, lo), lo, v);
    return vbslq_s64(vcgtq_s64(v, hi), hi, v);
}

/// Fixed-point requantization of two lanes (products acc·M0 given), clamped to
/// [lo, hi]. `shift` holds the two channels' shifts (−31 … 30) as int64.
QG_NEON_INLINE int64x2_t qg_neon_requantize2(int64x2_t product, int64x2_t shift, const int dbl, int64x2_t lo,
                                             int64x2_t hi) {
    const int64x2_t k31 = vdupq_n_s64(31), zero = vdupq_n_s64(0);
    int64x2_t q;
    if (!dbl) {
        q = vrshlq_s64(product, vsubq_s64(shift, k31)); // round half up by 2^(31 − shift), 1 … 62
    } else {
        // SRDHM(acc·2^left, M0) = floor((acc·M0 + 2^(30 − left)) / 2^(31 − left)).
        const int64x2_t left = vbslq_s64(vcgtq_s64(shift, zero), shift, zero);
        const int64x2_t neg_right = vsubq_s64(shift, left); // −right: 0 or the negative shift
        const int64x2_t high = vrshlq_s64(product, vsubq_s64(left, k31));
        // Ties away from zero: −1 for a negative value when right > 0 (the
        // sign bit of high & −right), then round half up.
        const int64x2_t fixup = vshrq_n_s64(vandq_s64(high, neg_right), 63);
        q = vrshlq_s64(vaddq_s64(high, fixup), neg_right);
    }
    return qg_neon_clamp64(q, lo, hi);
}

/// The fixed-point modes for four channels starting at n: int32 results in [lo, hi].
QG_NEON_INLINE int32x4_t qg_neon_requantize_fixed(const qg_gemm_args *a, int64_t n, int32x4_t acc, int64x2_t lo,
                                                  int64x2_t hi, const int dbl) {
    const int32x4_t m0 = vld1q_s32(a->multiplier + n), shift = vld1q_s32(a->shift + n);
    const int64x2_t p0 = vmull_s32(vget_low_s32(acc), vget_low_s32(m0));
    const int64x2_t p1 = vmull_high_s32(acc, m0);
    const int64x2_t q0 = qg_neon_requantize2(p0, vmovl_s32(vget_low_s32(shift)), dbl, lo, hi);
    const int64x2_t q1 = qg_neon_requantize2(p1, vmovl_high_s32(shift), dbl, lo, hi);
    return vcombine_s32(vmovn_s64(q0), vmovn_s64(q1));
}

/// The float rounding mode: (float)acc·f, clamped, rounded to nearest even.
QG_NEON_INLINE int32x4_t qg_neon_requantize_float(const qg_gemm_args *a, int64_t n, int32x4_t acc, float lo, float hi) {
    float32x4_t v = vmulq_f32(vcvtq_f32_s32(acc), vld1q_f32(a->float_multiplier + n));
    v = vminq_f32(vmaxq_f32(v, vdupq_n_f32(lo)), vdupq_n_f32(hi));
    return vcvtnq_s32_f32(v);
}

/// Single rounding to int8 or uint8 for `cols` (1 … 4·count) channels of row m
/// from n0 (`v` with the bias and zero-point terms in), when the call's clamp
/// bounds lie inside the type and are not crossed. The rounding in 32-bit lanes
/// (params->high_half: SQDMULH, SRSHL) or in 64-bit ones (SMULL, SRSHL, then
/// SQXTN to 32 bits), then a saturating add of Z_Y and saturating narrows
/// (SQXTN to 16 and SQXTN or SQXTUN to 8 bits), which clamp to the type's
/// range exactly: saturation is monotone, and a value already past int32 stays
/// past the type after a saturating add of Z_Y (a zero point in the type's
/// range, as qgemm.h requires). A byte min/max follows only for a narrower
/// clamp. That replaces the 64-bit compare-and-select clamp (eight
/// instructions per four channels) and the per-vector trip through a buffer;
/// the row's bytes go out in one store.
QG_NEON_INLINE void qg_neon_single_bytes(const qg_gemm_args *a, const qg_neon_params *p, int64_t m, int64_t n0,
                                         int cols, const int32x4_t *v, const int count) {
    const int32x4_t k31 = vdupq_n_s32(31), zy = vdupq_n_s32(a->y_zero_point);
    int32x4_t q[4];
    for (int i = 0; i < count; i++) {
        const int64_t n = n0 + 4 * i;
        const int32x4_t m0 = vld1q_s32(a->multiplier + n), shift = vld1q_s32(a->shift + n);
        int32x4_t r;
        if (p->high_half) {
            r = vrshlq_s32(vqdmulhq_s32(v[i], m0), shift); // qg_neon_params
        } else {
            const int32x4_t t = vsubq_s32(shift, k31); // −(31 − shift)
            const int64x2_t r0 = vrshlq_s64(vmull_s32(vget_low_s32(v[i]), vget_low_s32(m0)), vmovl_s32(vget_low_s32(t)));
            const int64x2_t r1 = vrshlq_s64(vmull_high_s32(v[i], m0), vmovl_high_s32(t));
            r = vqmovn_high_s64(vqmovn_s64(r0), r1);
        }
        q[i] = vqaddq_s32(r, zy);
    }
    for (int i = count; i < 4; i++) q[i] = q[0]; // never stored
    const int16x8_t h01 = vqmovn_high_s32(vqmovn_s32(q[0]), q[1]), h23 = vqmovn_high_s32(vqmovn_s32(q[2]), q[3]);
    uint8x16_t bytes;
    if (a->out_type == QG_OUT_UINT8) {
        bytes = vqmovun_high_s16(vqmovun_s16(h01), h23);
        if (a->clamp_lo > 0 || a->clamp_hi < 255)
            bytes = vminq_u8(vmaxq_u8(bytes, vdupq_n_u8((uint8_t)a->clamp_lo)), vdupq_n_u8((uint8_t)a->clamp_hi));
    } else {
        int8x16_t b = vqmovn_high_s16(vqmovn_s16(h01), h23);
        if (a->clamp_lo > -128 || a->clamp_hi < 127)
            b = vminq_s8(vmaxq_s8(b, vdupq_n_s8((int8_t)a->clamp_lo)), vdupq_n_s8((int8_t)a->clamp_hi));
        bytes = vreinterpretq_u8_s8(b);
    }
    uint8_t *y = (uint8_t *)a->y + (m * a->ldy + n0);
    if (cols == 16) {
        vst1q_u8(y, bytes);
    } else {
        uint8_t row[16];
        vst1q_u8(row, bytes);
        qg_copy_first_bytes(y, row, cols);
    }
}

/// Finishes `cols` (1 … 4·count) channels of row m from n0 on: acc[i] holds the
/// raw dot products of channels n0 + 4i … n0 + 4i + 3; `p` the call's params,
/// whose start values hold the bias, the call's zero-point term and the path's
/// private fold. `kind` is a compile-time constant in every tile (the tile's
/// output kind).
QG_NEON_INLINE void qg_neon_epilogue(const qg_gemm_args *a, const qg_neon_params *p, int64_t m, int64_t n0, int cols,
                                     const int32x4_t *acc, const int count, const qg_output_kind kind) {
    const int32_t *const row_zp = a->row_zero_point;
    const int32x4_t zpv = vdupq_n_s32(row_zp ? row_zp[m] : 0);
    // Whole vectors are computed (the per-channel arrays are padded to 16);
    // only `cols` results are stored, through a small buffer for a partial one.
    union {
        int32_t i[4];
        float f[4];
        uint8_t b[16];
    } tail;
    if (kind == QG_KIND_Q8_SINGLE && p->single_bytes) {
        int32x4_t v[4];
        for (int i = 0; i < count; i++) {
            v[i] = vaddq_s32(acc[i], vld1q_s32(p->base + n0 + 4 * i));
            if (row_zp) v[i] = vmlsq_s32(v[i], vld1q_s32(a->row_sum + n0 + 4 * i), zpv); // wrapping: exact under the bound
        }
        qg_neon_single_bytes(a, p, m, n0, cols, v, count);
        return;
    }
    for (int i = 0; i < count && 4 * i < cols; i++) {
        const int64_t n = n0 + 4 * i;
        const int here = cols - 4 * i < 4 ? cols - 4 * i : 4;
        int32x4_t v = vaddq_s32(acc[i], vld1q_s32(p->base + n));
        if (row_zp) v = vmlsq_s32(v, vld1q_s32(a->row_sum + n), zpv); // wrapping: exact under the accumulator bound
        if (kind == QG_KIND_INT32) {
            int32_t *y = (int32_t *)a->y + m * a->ldy + n;
            if (here == 4) vst1q_s32(y, v);
            else { vst1q_s32(tail.i, v); qg_copy_first_bytes(y, tail.i, here * 4); }
        } else if (kind == QG_KIND_FLOAT) {
            const float sx = a->row_scale ? a->row_scale[m] : a->x_scale;
            const float32x4_t scale = vmulq_n_f32(vld1q_f32(a->weight_scale + n), sx);
            float32x4_t f = vmulq_f32(vcvtq_f32_s32(v), scale);
            if (a->out_bias) f = vaddq_f32(f, vld1q_f32(a->out_bias + n)); // padded to 16 like the others
            float *y = (float *)a->y + m * a->ldy + n;
            if (here == 4) vst1q_f32(y, f);
            else { vst1q_f32(tail.f, f); qg_copy_first_bytes(y, tail.f, here * 4); }
        } else {
            const int32_t lo = a->clamp_lo - a->y_zero_point, hi = a->clamp_hi - a->y_zero_point;
            int32x4_t q = kind == QG_KIND_Q8_FLOAT
                              ? qg_neon_requantize_float(a, n, v, (float)lo, (float)hi)
                              : qg_neon_requantize_fixed(a, n, v, vdupq_n_s64(lo), vdupq_n_s64(hi), kind == QG_KIND_Q8_DOUBLE);
            q = vaddq_s32(q, vdupq_n_s32(a->y_zero_point)); // now within the output type's range
            const int8x8_t bytes = vmovn_s16(vcombine_s16(vmovn_s32(q), vdup_n_s16(0)));
            uint8_t *y = (uint8_t *)a->y + (m * a->ldy + n);
            vst1_s8((int8_t *)tail.b, bytes);
            qg_copy_first_bytes(y, tail.b, here);
        }
    }
}

#endif
#endif
