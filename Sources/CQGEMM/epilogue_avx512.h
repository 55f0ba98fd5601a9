// The AVX-512 epilogue of the VNNI tiles: bias and zero-point terms, then the
// int32 output or the fixed-point int8/uint8 requantization for 16 channels of
// one row (a whole panel, one zmm), with the same arithmetic as the AVX2
// epilogue (KERNELS.md, "The epilogue") on twice the lanes. The float modes
// (float output, float rounding) stay on the AVX2 epilogue's 8-channel halves.
// Included by kernel_avx512vnni.c only, after QG_VNNI_INLINE is defined;
// everything here is static inline. The intrinsics used are exactly those
// scripts/vnni-emulation/emulated_avx512.h provides stand-ins for.
#ifndef QG_EPILOGUE_AVX512_H
#define QG_EPILOGUE_AVX512_H

#include "epilogue_avx2.h"

/// Arithmetic right shift of int64 lanes by per-lane counts 0..63, done as the
/// AVX2 epilogue does it (bias to unsigned, logical shift, remove the bias).
QG_VNNI_INLINE __m512i qg_avx512_sra64(__m512i x, __m512i count) {
    const __m512i sign = _mm512_set1_epi64(INT64_MIN);
    return _mm512_sub_epi64(_mm512_srlv_epi64(_mm512_xor_si512(x, sign), count), _mm512_srlv_epi64(sign, count));
}

QG_VNNI_INLINE __m512i qg_avx512_lo32(__m512i v) { return _mm512_and_si512(v, _mm512_set1_epi64(0xFFFFFFFF)); }
QG_VNNI_INLINE __m512i qg_avx512_hi32(__m512i v) { return _mm512_srli_epi64(v, 32); }

/// floor((acc·M0 + 2^(t−1)) / 2^t) on eight lanes (acc, M0 in the low 32 bits; t in 1..62).
QG_VNNI_INLINE __m512i qg_avx512_round_shift(__m512i acc, __m512i m0, __m512i t) {
    const __m512i one = _mm512_set1_epi64(1);
    __m512i p = _mm512_mul_epi32(acc, m0);
    p = _mm512_add_epi64(p, _mm512_sllv_epi64(one, _mm512_sub_epi64(t, one)));
    return qg_avx512_sra64(p, t);
}

/// Rounding divide by 2^r (r in 0..31), ties away from zero (gemmlowp RoundingDivideByPOT).
QG_VNNI_INLINE __m512i qg_avx512_round_div_pot(__m512i h, __m512i r) {
    const __m512i one = _mm512_set1_epi64(1);
    const __m512i mask = _mm512_sub_epi64(_mm512_sllv_epi64(one, r), one);
    const __m512i remainder = _mm512_and_si512(h, mask);
    const __m512i half = _mm512_srli_epi64(mask, 1);
    // threshold = mask/2, plus one for a negative h (ties go away from zero).
    const __m512i threshold = _mm512_mask_add_epi64(half, _mm512_cmpgt_epi64_mask(_mm512_setzero_si512(), h), half, one);
    const __m512i q = qg_avx512_sra64(h, r);
    return _mm512_mask_add_epi64(q, _mm512_cmpgt_epi64_mask(remainder, threshold), q, one);
}

/// Fixed-point requantization of 16 accumulators, clamped to [lo, hi] (the
/// output range minus Z_Y).
QG_VNNI_INLINE __m512i qg_avx512_requantize_fixed(const qg_gemm_args *a, int64_t n, __m512i acc, int32_t lo, int32_t hi) {
    const __m512i m0 = _mm512_loadu_si512((const void *)(a->multiplier + n));
    const __m512i shift = _mm512_loadu_si512((const void *)(a->shift + n));
    const __m512i lo64 = _mm512_set1_epi64(lo), hi64 = _mm512_set1_epi64(hi);
    const __m512i k31 = _mm512_set1_epi32(31), zero = _mm512_setzero_si512();
    __m512i even, odd;
    if (a->rounding == QG_ROUND_SINGLE) {
        const __m512i t = _mm512_sub_epi32(k31, shift); // 1 ... 62
        even = qg_avx512_round_shift(acc, m0, qg_avx512_lo32(t));
        odd = qg_avx512_round_shift(qg_avx512_hi32(acc), qg_avx512_hi32(m0), qg_avx512_hi32(t));
    } else {
        const __m512i left = _mm512_max_epi32(shift, zero);
        const __m512i right = _mm512_max_epi32(_mm512_sub_epi32(zero, shift), zero);
        const __m512i t = _mm512_sub_epi32(k31, left); // SRDHM(acc·2^left, M0) = round_shift(acc·M0, 31 − left)
        even = qg_avx512_round_div_pot(qg_avx512_round_shift(acc, m0, qg_avx512_lo32(t)), qg_avx512_lo32(right));
        odd = qg_avx512_round_div_pot(qg_avx512_round_shift(qg_avx512_hi32(acc), qg_avx512_hi32(m0), qg_avx512_hi32(t)),
                                      qg_avx512_hi32(right));
    }
    even = _mm512_min_epi64(_mm512_max_epi64(even, lo64), hi64);
    odd = _mm512_min_epi64(_mm512_max_epi64(odd, lo64), hi64);
    return _mm512_mask_blend_epi32(0xAAAA, even, _mm512_slli_epi64(odd, 32));
}

/// Finishes the 16 channel sums of row m from channel n (a multiple of 16);
/// stores the first `cols` (1..16). `zp_offset` as in qg_avx2_epilogue8.
QG_VNNI_INLINE void qg_avx512_epilogue16(const qg_gemm_args *a, int64_t m, int64_t n, int cols, __m512i acc,
                                         int32_t zp_offset) {
    if (a->out_type == QG_OUT_FLOAT || a->rounding == QG_ROUND_FLOAT) {
        qg_avx2_epilogue8(a, m, n, cols > 8 ? 8 : cols, _mm512_castsi512_si256(acc), zp_offset);
        if (cols > 8) qg_avx2_epilogue8(a, m, n + 8, cols - 8, _mm512_extracti64x4_epi64(acc, 1), zp_offset);
        return;
    }
    if (a->bias) acc = _mm512_add_epi32(acc, _mm512_loadu_si512((const void *)(a->bias + n)));
    const int32_t zp = a->x_zero_point + (a->row_zero_point ? a->row_zero_point[m] : 0) + zp_offset;
    if (zp) acc = _mm512_sub_epi32(acc, _mm512_mullo_epi32(_mm512_set1_epi32(zp), _mm512_loadu_si512((const void *)(a->row_sum + n))));
    if (a->out_type == QG_OUT_INT32) {
        int32_t *dst = (int32_t *)a->y + m * a->ldy + n;
        if (cols == 16) {
            _mm512_storeu_si512((void *)dst, acc);
        } else {
            int32_t tmp[16];
            _mm512_storeu_si512((void *)tmp, acc);
            memcpy(dst, tmp, (size_t)cols * sizeof(int32_t));
        }
        return;
    }
    const int32_t lo = a->clamp_lo - a->y_zero_point, hi = a->clamp_hi - a->y_zero_point;
    __m512i q = qg_avx512_requantize_fixed(a, n, acc, lo, hi);
    q = _mm512_add_epi32(q, _mm512_set1_epi32(a->y_zero_point));
    // Values are already inside the output type's range: packing never saturates.
    for (int h = 0; h < 2 && cols - 8 * h > 0; h++) {
        const __m256i v = h == 0 ? _mm512_castsi512_si256(q) : _mm512_extracti64x4_epi64(q, 1);
        const __m128i w16 = _mm_packs_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
        const __m128i b8 = a->out_type == QG_OUT_INT8 ? _mm_packs_epi16(w16, w16) : _mm_packus_epi16(w16, w16);
        const int c = cols - 8 * h > 8 ? 8 : cols - 8 * h;
        if (a->out_type == QG_OUT_INT8) qg_avx2_store_bytes((int8_t *)a->y + m * a->ldy + n + 8 * h, b8, c);
        else qg_avx2_store_bytes((uint8_t *)a->y + m * a->ldy + n + 8 * h, b8, c);
    }
}

#endif
