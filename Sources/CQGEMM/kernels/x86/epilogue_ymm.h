// The 256-bit x86 epilogue, shared by the avx2 and avxvnni paths (as
// kernels/neon/ serves the arm64 paths): the per-call params that start the
// accumulators at the bias and the call's zero-point term, and the finish of
// 8 channels of one row in registers — the row's zero-point term, then the
// output of one kind (KERNELS.md, "The epilogue"). Plain AVX2, so it inlines
// into any tile whose target includes AVX2. Included by kernel files only;
// everything here is static inline.
#ifndef QG_EPILOGUE_YMM_H
#define QG_EPILOGUE_YMM_H

#include "kernel.h"
#include "narrow_requantize.h"
#include "partial_store.h"

#include <immintrin.h>
#include <string.h>

#define QG_YMM_INLINE static inline __attribute__((always_inline, target("avx2")))

// MARK: - Per-call params

/// What a 256-bit tile reads per call, made once by qg_ymm_init_params:
/// - each channel's starting value, bias − (Z_X + fold)·row_sum, where `fold`
///   is the path's private bias fold (128 when int8 activations enter an
///   unsigned dot product as x + 128);
/// - for the narrow route (int8/uint8 output, single rounding, every channel
///   within narrow_requantize.h's bounds): each channel's M0, the odd
///   channels' M0 moved to the even lanes, the shift after the high half and
///   the rounding constant with the output zero point folded in. uint8 output
///   is computed as int8 output with Z_Y − 128 and bounds − 128 and moved back
///   by adding 128 (`flip`), as the 512-bit route does.
/// The arrays are padded to whole panels, so a tile reads whole vectors.
typedef struct qg_ymm_params {
    int32_t narrow, clamp_lo, clamp_hi, flip;
    int32_t pad[12];
    int32_t data[]; // base, m0, m0_odd, count, round: qg_packed_n(n) each
} qg_ymm_params;

enum { QG_YMM_BASE, QG_YMM_M0, QG_YMM_M0_ODD, QG_YMM_COUNT, QG_YMM_ROUND, QG_YMM_ARRAYS };

/// One of the params' per-channel arrays.
static inline const int32_t *qg_ymm_array(const qg_ymm_params *p, const qg_gemm_args *a, int which) {
    return p->data + which * qg_packed_n(a->n);
}

static inline size_t qg_ymm_params_bytes(const qg_gemm_args *a) {
    return sizeof(qg_ymm_params) + (size_t)(QG_YMM_ARRAYS * qg_packed_n(a->n)) * sizeof(int32_t);
}

/// Fills the params; `fold` as above. Wrapping int32 arithmetic for the start
/// values, as in the tiles (the PackedWeights bound keeps the true sums in range).
static inline void qg_ymm_init_params(const qg_gemm_args *a, void *out, int32_t fold) {
    qg_ymm_params *p = out;
    const int64_t np = qg_packed_n(a->n);
    int32_t *base = p->data, *m0 = base + np, *m0_odd = m0 + np, *count = m0_odd + np, *round = count + np;
    const uint32_t z = (uint32_t)a->x_zero_point + (uint32_t)fold;
    for (int64_t n = 0; n < np; n++)
        base[n] = (int32_t)((uint32_t)(n < a->n && a->bias ? a->bias[n] : 0) - z * (uint32_t)a->row_sum[n]);
    const int32_t flip = a->out_type == QG_OUT_UINT8 ? 128 : 0, zy = a->y_zero_point - flip;
    int narrow = (a->out_type == QG_OUT_INT8 || a->out_type == QG_OUT_UINT8) && a->rounding == QG_ROUND_SINGLE;
    for (int64_t n = 0; narrow && n < a->n; n++) narrow = qg_narrow_channel(a->shift[n], zy);
    p->narrow = narrow;
    p->clamp_lo = a->clamp_lo - flip;
    p->clamp_hi = a->clamp_hi - flip;
    p->flip = flip;
    if (!narrow) return;
    for (int64_t n = 0; n < np; n++) {
        // Padding channels (n ≥ N) are computed and never stored: any safe constants.
        const int32_t shift = n < a->n ? a->shift[n] : -2;
        m0[n] = n < a->n ? a->multiplier[n] : 0;
        count[n] = qg_narrow_count(shift);
        round[n] = qg_narrow_round(shift, n < a->n ? zy : 0);
    }
    for (int64_t n = 0; n < np; n += 2) {
        m0_odd[n] = m0[n + 1];
        m0_odd[n + 1] = 0;
    }
}

// MARK: - Fixed-point requantization (int64 lanes)

/// Arithmetic right shift of int64 lanes by per-lane counts 0..63 (AVX2 has
/// only the logical one): bias to unsigned, shift, remove the shifted bias.
QG_YMM_INLINE __m256i qg_ymm_sra64(__m256i x, __m256i count) {
    const __m256i sign = _mm256_set1_epi64x(INT64_MIN);
    return _mm256_sub_epi64(_mm256_srlv_epi64(_mm256_xor_si256(x, sign), count), _mm256_srlv_epi64(sign, count));
}

QG_YMM_INLINE __m256i qg_ymm_lo32(__m256i v) { return _mm256_and_si256(v, _mm256_set1_epi64x(0xFFFFFFFF)); }
QG_YMM_INLINE __m256i qg_ymm_hi32(__m256i v) { return _mm256_srli_epi64(v, 32); }

/// floor((acc·M0 + 2^(t−1)) / 2^t) on four lanes (acc, M0 in the low 32 bits; t in 1..62).
QG_YMM_INLINE __m256i qg_ymm_round_shift(__m256i acc, __m256i m0, __m256i t) {
    const __m256i one = _mm256_set1_epi64x(1);
    __m256i p = _mm256_mul_epi32(acc, m0);
    p = _mm256_add_epi64(p, _mm256_sllv_epi64(one, _mm256_sub_epi64(t, one)));
    return qg_ymm_sra64(p, t);
}

/// Rounding divide by 2^r (r in 0..31), ties away from zero (gemmlowp RoundingDivideByPOT).
QG_YMM_INLINE __m256i qg_ymm_round_div_pot(__m256i h, __m256i r) {
    const __m256i one = _mm256_set1_epi64x(1);
    const __m256i mask = _mm256_sub_epi64(_mm256_sllv_epi64(one, r), one);
    const __m256i remainder = _mm256_and_si256(h, mask);
    const __m256i threshold = _mm256_sub_epi64(_mm256_srli_epi64(mask, 1), _mm256_cmpgt_epi64(_mm256_setzero_si256(), h));
    return _mm256_sub_epi64(qg_ymm_sra64(h, r), _mm256_cmpgt_epi64(remainder, threshold));
}

QG_YMM_INLINE __m256i qg_ymm_clamp64(__m256i v, __m256i lo, __m256i hi) {
    v = _mm256_blendv_epi8(v, lo, _mm256_cmpgt_epi64(lo, v));
    return _mm256_blendv_epi8(v, hi, _mm256_cmpgt_epi64(v, hi));
}

/// Fixed-point requantization of 8 accumulators (int64 products; KERNELS.md,
/// "The epilogue"), single or double rounding, clamped to [lo, hi] (the output
/// range minus Z_Y).
QG_YMM_INLINE __m256i qg_ymm_requantize_fixed(const qg_gemm_args *a, int64_t n, __m256i acc, int32_t lo, int32_t hi,
                                              const int dbl) {
    const __m256i m0 = _mm256_loadu_si256((const __m256i *)(a->multiplier + n));
    const __m256i shift = _mm256_loadu_si256((const __m256i *)(a->shift + n));
    const __m256i lo64 = _mm256_set1_epi64x(lo), hi64 = _mm256_set1_epi64x(hi);
    const __m256i k31 = _mm256_set1_epi32(31), zero = _mm256_setzero_si256();
    __m256i even, odd;
    if (!dbl) {
        const __m256i t = _mm256_sub_epi32(k31, shift); // 1 ... 62
        even = qg_ymm_round_shift(acc, m0, qg_ymm_lo32(t));
        odd = qg_ymm_round_shift(qg_ymm_hi32(acc), qg_ymm_hi32(m0), qg_ymm_hi32(t));
    } else {
        const __m256i left = _mm256_max_epi32(shift, zero);
        const __m256i right = _mm256_max_epi32(_mm256_sub_epi32(zero, shift), zero);
        const __m256i t = _mm256_sub_epi32(k31, left); // SRDHM(acc·2^left, M0) = round_shift(acc·M0, 31 − left)
        even = qg_ymm_round_div_pot(qg_ymm_round_shift(acc, m0, qg_ymm_lo32(t)), qg_ymm_lo32(right));
        odd = qg_ymm_round_div_pot(qg_ymm_round_shift(qg_ymm_hi32(acc), qg_ymm_hi32(m0), qg_ymm_hi32(t)),
                                   qg_ymm_hi32(right));
    }
    even = qg_ymm_clamp64(even, lo64, hi64);
    odd = qg_ymm_clamp64(odd, lo64, hi64);
    return _mm256_blend_epi32(even, _mm256_slli_epi64(odd, 32), 0xAA);
}

// MARK: - Stores

/// Stores the first `cols` (1..8) of 8 int32 or float lanes.
QG_YMM_INLINE void qg_ymm_store_words(void *dst, __m256i v, int cols) {
    if (cols == 8) {
        _mm256_storeu_si256((__m256i *)dst, v);
    } else {
        int32_t tmp[8];
        _mm256_storeu_si256((__m256i *)tmp, v);
        qg_copy_first_bytes(dst, tmp, cols * (int)sizeof(int32_t));
    }
}

/// Stores the low bytes of 8 int32 lanes whose values lie in the output
/// type's range (int8 and uint8 alike: the masked values 0..255 pass both
/// unsigned packs unchanged); the first `cols` (1..8) of them.
QG_YMM_INLINE void qg_ymm_store_low_bytes(void *dst, __m256i q, int cols) {
    q = _mm256_and_si256(q, _mm256_set1_epi32(0xFF));
    const __m128i w16 = _mm_packus_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
    const __m128i b8 = _mm_packus_epi16(w16, w16);
    if (cols == 8) {
        _mm_storel_epi64((__m128i *)dst, b8);
    } else {
        uint8_t tmp[16];
        _mm_storeu_si128((__m128i *)tmp, b8);
        qg_copy_first_bytes(dst, tmp, cols);
    }
}

// MARK: - The epilogue

/// The narrow route for 8 channels (params->narrow; narrow_requantize.h): the
/// high halves of acc·M0 (two VPMULDQ, a shift and a blend), one add that
/// also adds the output zero point, one shift, the clamp, and the low bytes.
QG_YMM_INLINE void qg_ymm_narrow8(const qg_gemm_args *a, const qg_ymm_params *p, int64_t m, int64_t n, int cols,
                                  __m256i acc) {
    const __m256i m0 = _mm256_loadu_si256((const __m256i *)(qg_ymm_array(p, a, QG_YMM_M0) + n));
    const __m256i m0_odd = _mm256_loadu_si256((const __m256i *)(qg_ymm_array(p, a, QG_YMM_M0_ODD) + n));
    const __m256i count = _mm256_loadu_si256((const __m256i *)(qg_ymm_array(p, a, QG_YMM_COUNT) + n));
    const __m256i round = _mm256_loadu_si256((const __m256i *)(qg_ymm_array(p, a, QG_YMM_ROUND) + n));
    const __m256i even = _mm256_mul_epi32(acc, m0), odd = _mm256_mul_epi32(_mm256_srli_epi64(acc, 32), m0_odd);
    const __m256i high = _mm256_blend_epi32(_mm256_srli_epi64(even, 32), odd, 0xAA);
    __m256i q = _mm256_srav_epi32(_mm256_add_epi32(high, round), count);
    q = _mm256_min_epi32(_mm256_max_epi32(q, _mm256_set1_epi32(p->clamp_lo)), _mm256_set1_epi32(p->clamp_hi));
    qg_ymm_store_low_bytes((uint8_t *)a->y + m * a->ldy + n, _mm256_add_epi32(q, _mm256_set1_epi32(p->flip)), cols);
}

/// Finishes 8 channel sums of row m (channels n …, bias and the call's
/// zero-point term already in: the params' start values) into the output of
/// `kind`, and stores the first `cols` (1..8). Single rounding takes the
/// narrow route when the call's params allow it.
QG_YMM_INLINE void qg_ymm_epilogue8(const qg_gemm_args *a, const qg_ymm_params *p, int64_t m, int64_t n, int cols,
                                    __m256i acc, const qg_output_kind kind) {
#pragma clang fp contract(off) // the reference's float operations, unfused
    if (a->row_zero_point) {
        const __m256i rs = _mm256_loadu_si256((const __m256i *)(a->row_sum + n));
        acc = _mm256_sub_epi32(acc, _mm256_mullo_epi32(_mm256_set1_epi32(a->row_zero_point[m]), rs));
    }
    if (kind == QG_KIND_Q8_SINGLE && p->narrow) {
        qg_ymm_narrow8(a, p, m, n, cols, acc);
    } else if (kind == QG_KIND_INT32) {
        qg_ymm_store_words((int32_t *)a->y + m * a->ldy + n, acc, cols);
    } else if (kind == QG_KIND_FLOAT) {
        const float sx = a->row_scale ? a->row_scale[m] : a->x_scale;
        const __m256 scale = _mm256_mul_ps(_mm256_set1_ps(sx), _mm256_loadu_ps(a->weight_scale + n));
        __m256 v = _mm256_mul_ps(_mm256_cvtepi32_ps(acc), scale);
        if (a->out_bias) v = _mm256_add_ps(v, _mm256_loadu_ps(a->out_bias + n));
        qg_ymm_store_words((float *)a->y + m * a->ldy + n, _mm256_castps_si256(v), cols);
    } else {
        const int32_t lo = a->clamp_lo - a->y_zero_point, hi = a->clamp_hi - a->y_zero_point;
        __m256i q;
        if (kind == QG_KIND_Q8_FLOAT) {
            __m256 v = _mm256_mul_ps(_mm256_cvtepi32_ps(acc), _mm256_loadu_ps(a->float_multiplier + n));
            v = _mm256_max_ps(v, _mm256_set1_ps((float)lo));
            v = _mm256_min_ps(v, _mm256_set1_ps((float)hi));
            q = _mm256_cvtps_epi32(v); // round half to even (MXCSR default)
        } else {
            q = qg_ymm_requantize_fixed(a, n, acc, lo, hi, kind == QG_KIND_Q8_DOUBLE);
        }
        qg_ymm_store_low_bytes((uint8_t *)a->y + m * a->ldy + n, _mm256_add_epi32(q, _mm256_set1_epi32(a->y_zero_point)),
                               cols);
    }
}

#endif
