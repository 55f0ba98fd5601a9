// The AVX2 path's vector epilogue: bias and zero-point terms, then the int32,
// float or requantized int8/uint8 output
// for 8 channels of one row, in registers (KERNELS.md, "The epilogue").
// Included by kernel files only; everything here is static inline.
#ifndef QG_EPILOGUE_AVX2_H
#define QG_EPILOGUE_AVX2_H

#include "kernel.h"

#include <immintrin.h>
#include <string.h>

#pragma clang fp contract(off)

#ifndef QG_AVX2_INLINE
#define QG_AVX2_INLINE static inline __attribute__((always_inline, target("avx2")))
#endif

// MARK: - Epilogue (8 channels of one row, in registers)

/// Arithmetic right shift of int64 lanes by per-lane counts 0..63 (AVX2 has
/// only the logical one): bias to unsigned, shift, remove the shifted bias.
QG_AVX2_INLINE __m256i qg_avx2_sra64(__m256i x, __m256i count) {
    const __m256i sign = _mm256_set1_epi64x(INT64_MIN);
    return _mm256_sub_epi64(_mm256_srlv_epi64(_mm256_xor_si256(x, sign), count), _mm256_srlv_epi64(sign, count));
}

QG_AVX2_INLINE __m256i qg_avx2_lo32(__m256i v) { return _mm256_and_si256(v, _mm256_set1_epi64x(0xFFFFFFFF)); }
QG_AVX2_INLINE __m256i qg_avx2_hi32(__m256i v) { return _mm256_srli_epi64(v, 32); }

/// floor((acc·M0 + 2^(t−1)) / 2^t) on four lanes (acc, M0 in the low 32 bits; t in 1..62).
QG_AVX2_INLINE __m256i qg_avx2_round_shift(__m256i acc, __m256i m0, __m256i t) {
    const __m256i one = _mm256_set1_epi64x(1);
    __m256i p = _mm256_mul_epi32(acc, m0);
    p = _mm256_add_epi64(p, _mm256_sllv_epi64(one, _mm256_sub_epi64(t, one)));
    return qg_avx2_sra64(p, t);
}

/// Rounding divide by 2^r (r in 0..31), ties away from zero (gemmlowp RoundingDivideByPOT).
QG_AVX2_INLINE __m256i qg_avx2_round_div_pot(__m256i h, __m256i r) {
    const __m256i one = _mm256_set1_epi64x(1);
    const __m256i mask = _mm256_sub_epi64(_mm256_sllv_epi64(one, r), one);
    const __m256i remainder = _mm256_and_si256(h, mask);
    const __m256i threshold = _mm256_sub_epi64(_mm256_srli_epi64(mask, 1), _mm256_cmpgt_epi64(_mm256_setzero_si256(), h));
    return _mm256_sub_epi64(qg_avx2_sra64(h, r), _mm256_cmpgt_epi64(remainder, threshold));
}

QG_AVX2_INLINE __m256i qg_avx2_clamp64(__m256i v, __m256i lo, __m256i hi) {
    v = _mm256_blendv_epi8(v, lo, _mm256_cmpgt_epi64(lo, v));
    return _mm256_blendv_epi8(v, hi, _mm256_cmpgt_epi64(v, hi));
}

/// Fixed-point requantization of 8 accumulators (int64 products; KERNELS.md, "The epilogue"),
/// clamped to [lo, hi] (the output range minus Z_Y).
QG_AVX2_INLINE __m256i qg_avx2_requantize_fixed(const qg_gemm_args *a, int64_t n, __m256i acc, int32_t lo, int32_t hi) {
    const __m256i m0 = _mm256_loadu_si256((const __m256i *)(a->multiplier + n));
    const __m256i shift = _mm256_loadu_si256((const __m256i *)(a->shift + n));
    const __m256i lo64 = _mm256_set1_epi64x(lo), hi64 = _mm256_set1_epi64x(hi);
    const __m256i k31 = _mm256_set1_epi32(31), zero = _mm256_setzero_si256();
    __m256i even, odd;
    if (a->rounding == QG_ROUND_SINGLE) {
        const __m256i t = _mm256_sub_epi32(k31, shift); // 1 ... 62
        even = qg_avx2_round_shift(acc, m0, qg_avx2_lo32(t));
        odd = qg_avx2_round_shift(qg_avx2_hi32(acc), qg_avx2_hi32(m0), qg_avx2_hi32(t));
    } else {
        const __m256i left = _mm256_max_epi32(shift, zero);
        const __m256i right = _mm256_max_epi32(_mm256_sub_epi32(zero, shift), zero);
        const __m256i t = _mm256_sub_epi32(k31, left); // SRDHM(acc·2^left, M0) = round_shift(acc·M0, 31 − left)
        even = qg_avx2_round_div_pot(qg_avx2_round_shift(acc, m0, qg_avx2_lo32(t)), qg_avx2_lo32(right));
        odd = qg_avx2_round_div_pot(qg_avx2_round_shift(qg_avx2_hi32(acc), qg_avx2_hi32(m0), qg_avx2_hi32(t)),
                                    qg_avx2_hi32(right));
    }
    even = qg_avx2_clamp64(even, lo64, hi64);
    odd = qg_avx2_clamp64(odd, lo64, hi64);
    return _mm256_blend_epi32(even, _mm256_slli_epi64(odd, 32), 0xAA);
}

/// Stores the first `cols` (1..8) bytes of an 8-byte vector.
QG_AVX2_INLINE void qg_avx2_store_bytes(void *dst, __m128i v, int cols) {
    if (cols == 8) {
        _mm_storel_epi64((__m128i *)dst, v);
    } else {
        uint8_t tmp[16];
        _mm_storeu_si128((__m128i *)tmp, v);
        memcpy(dst, tmp, (size_t)cols);
    }
}

/// Finishes 8 channel sums of row m: bias and zero-point terms, then the output.
QG_AVX2_INLINE void qg_avx2_epilogue8(const qg_gemm_args *a, int64_t m, int64_t n, int cols, __m256i acc) {
    if (a->bias) acc = _mm256_add_epi32(acc, _mm256_loadu_si256((const __m256i *)(a->bias + n)));
    const int32_t zp = a->x_zero_point + (a->row_zero_point ? a->row_zero_point[m] : 0);
    if (zp) {
        const __m256i rs = _mm256_loadu_si256((const __m256i *)(a->row_sum + n));
        acc = _mm256_sub_epi32(acc, _mm256_mullo_epi32(_mm256_set1_epi32(zp), rs));
    }
    switch (a->out_type) {
    case QG_OUT_INT32: {
        int32_t *dst = (int32_t *)a->y + m * a->ldy + n;
        if (cols == 8) {
            _mm256_storeu_si256((__m256i *)dst, acc);
        } else {
            int32_t tmp[8];
            _mm256_storeu_si256((__m256i *)tmp, acc);
            memcpy(dst, tmp, (size_t)cols * sizeof(int32_t));
        }
        return;
    }
    case QG_OUT_FLOAT: {
        const float sx = a->row_scale ? a->row_scale[m] : a->x_scale;
        const __m256 scale = _mm256_mul_ps(_mm256_set1_ps(sx), _mm256_loadu_ps(a->weight_scale + n));
        __m256 v = _mm256_mul_ps(_mm256_cvtepi32_ps(acc), scale);
        if (a->out_bias) v = _mm256_add_ps(v, _mm256_loadu_ps(a->out_bias + n));
        float *dst = (float *)a->y + m * a->ldy + n;
        if (cols == 8) {
            _mm256_storeu_ps(dst, v);
        } else {
            float tmp[8];
            _mm256_storeu_ps(tmp, v);
            memcpy(dst, tmp, (size_t)cols * sizeof(float));
        }
        return;
    }
    case QG_OUT_INT8:
    case QG_OUT_UINT8: {
        const int32_t lo = a->clamp_lo - a->y_zero_point, hi = a->clamp_hi - a->y_zero_point;
        __m256i q;
        if (a->rounding == QG_ROUND_FLOAT) {
            __m256 v = _mm256_mul_ps(_mm256_cvtepi32_ps(acc), _mm256_loadu_ps(a->float_multiplier + n));
            v = _mm256_max_ps(v, _mm256_set1_ps((float)lo));
            v = _mm256_min_ps(v, _mm256_set1_ps((float)hi));
            q = _mm256_cvtps_epi32(v); // round half to even (MXCSR default)
        } else {
            q = qg_avx2_requantize_fixed(a, n, acc, lo, hi);
        }
        q = _mm256_add_epi32(q, _mm256_set1_epi32(a->y_zero_point));
        // Values are already inside the output type's range: packing never saturates.
        const __m128i w16 = _mm_packs_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
        const __m128i b8 = a->out_type == QG_OUT_INT8 ? _mm_packs_epi16(w16, w16) : _mm_packus_epi16(w16, w16);
        if (a->out_type == QG_OUT_INT8) qg_avx2_store_bytes((int8_t *)a->y + m * a->ldy + n, b8, cols);
        else qg_avx2_store_bytes((uint8_t *)a->y + m * a->ldy + n, b8, cols);
        return;
    }
    }
}

#endif
