// Float → uint8/int8 quantization of activation rows, the hot part of dynamic
// quantization: q = clamp(round-half-away(r / scale) + Z, qmin, qmax), exactly
// as QuantizationParameters.quantize (README, "Arithmetic"). The caller has checked that
// no value is NaN (ranges come from qg_row_min_max, which reports them).
#include "qgemm.h"
#include "quantize.h"

#include <math.h>

#pragma clang fp contract(off)

#if defined(__x86_64__)
#include <immintrin.h>

/// round-half-away(x / s), clamped to [lo, hi], as int32 lanes. trunc() and
/// the exact remainder x − trunc(x) decide the tie direction without a
/// rounding mode that AVX lacks.
__attribute__((target("avx2"))) static inline __m256i qg_quantize8(__m256 r, __m256 s, __m256 lo, __m256 hi) {
    const __m256 v = _mm256_div_ps(r, s);
    const __m256 t = _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    const __m256 frac = _mm256_sub_ps(v, t); // exact
    const __m256 half = _mm256_set1_ps(0.5f), sign = _mm256_set1_ps(-0.0f);
    const __m256 away = _mm256_cmp_ps(_mm256_andnot_ps(sign, frac), half, _CMP_GE_OQ);
    const __m256 step = _mm256_or_ps(_mm256_and_ps(v, sign), _mm256_set1_ps(1.0f)); // ±1 with v's sign
    __m256 q = _mm256_add_ps(t, _mm256_and_ps(away, step));
    q = _mm256_min_ps(_mm256_max_ps(q, lo), hi);
    return _mm256_cvttps_epi32(q);
}

__attribute__((target("avx2"))) static void qg_quantize_row_avx2(const float *x, int64_t k, float scale, int32_t zero,
                                                                 int32_t qmin, int32_t qmax, uint8_t *out) {
    const __m256 s = _mm256_set1_ps(scale);
    const __m256 lo = _mm256_set1_ps((float)(qmin - zero)), hi = _mm256_set1_ps((float)(qmax - zero));
    const __m256i z = _mm256_set1_epi32(zero);
    int64_t i = 0;
    for (; i + 8 <= k; i += 8) {
        const __m256i q = _mm256_add_epi32(qg_quantize8(_mm256_loadu_ps(x + i), s, lo, hi), z);
        const __m128i w16 = _mm_packs_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
        // Values are inside the type's range: only the low byte matters.
        const __m128i b = _mm_shuffle_epi8(w16, _mm_setr_epi8(0, 2, 4, 6, 8, 10, 12, 14, -1, -1, -1, -1, -1, -1, -1, -1));
        _mm_storel_epi64((__m128i *)(out + i), b);
    }
    for (; i < k; i++) {
        float q = roundf(x[i] / scale);
        q = fminf(fmaxf(q, (float)(qmin - zero)), (float)(qmax - zero));
        out[i] = (uint8_t)((int32_t)q + zero);
    }
}

/// Sixteen values at a time, the last ones masked. The quotient is clamped
/// to ±1024 first (it moves no result: beyond that the type's end wins
/// either way, and ±Inf becomes finite); then round-half-away(v) =
/// trunc(v + copysign(½ − 2^-25, v)) for |v| < 2^22. ½ − 2^-25 is the
/// largest float below ½, so the sum reaches the next integer exactly when
/// v's fraction is ≥ ½: at a tie the exact sum lies halfway between the
/// float below that integer and the integer, and rounds to the even one,
/// the integer (0.5 + 0.49999997 is 1). Four operations instead of the
/// eight above. (A reciprocal with two exact fused corrections was tried
/// for the division: no faster on an Emerald Rapids core, so the division
/// stays.)
__attribute__((target("avx512f,avx512bw,avx512vl"))) static void qg_quantize_row_avx512(const float *x, int64_t k, float scale,
                                                                                       int32_t zero, int32_t qmin,
                                                                                       int32_t qmax, uint8_t *out) {
    const __m512 s = _mm512_set1_ps(scale), bound = _mm512_set1_ps(1024.0f), nbound = _mm512_set1_ps(-1024.0f);
    const __m512i sign = _mm512_set1_epi32((int32_t)0x80000000), nudge = _mm512_set1_epi32(0x3EFFFFFF); // ½ − 2^-25
    const __m512i lo = _mm512_set1_epi32(qmin - zero), hi = _mm512_set1_epi32(qmax - zero), z = _mm512_set1_epi32(zero);
    for (int64_t i = 0; i < k; i += 16) {
        const __mmask16 live = k - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (k - i)) - 1);
        const __m512 v = _mm512_div_ps(_mm512_maskz_loadu_ps(live, x + i), s);
        const __m512 q = _mm512_min_ps(_mm512_max_ps(v, nbound), bound);
        // copysign(½ − 2^-25, q): the sign bit from q, the rest from the constant.
        const __m512 h = _mm512_castsi512_ps(_mm512_ternarylogic_epi32(sign, _mm512_castps_si512(q), nudge, 0xCA));
        __m512i n = _mm512_cvttps_epi32(_mm512_add_ps(q, h));
        n = _mm512_add_epi32(_mm512_min_epi32(_mm512_max_epi32(n, lo), hi), z);
        _mm_mask_storeu_epi8(out + i, live, _mm512_cvtepi32_epi8(n));
    }
}
#endif

int qg_quantizer_supported(qg_quantizer level) {
#if defined(__x86_64__)
    const qg_cpu_features *f = qg_cpu_get_features();
    switch (level) {
    case QG_QUANTIZER_SCALAR: return 1;
    case QG_QUANTIZER_AVX2: return f->avx2;
    case QG_QUANTIZER_AVX512: return f->avx512f && f->avx512bw && f->avx512vl;
    default: return 0;
    }
#else
    return level == QG_QUANTIZER_SCALAR;
#endif
}

const char *qg_quantizer_name(qg_quantizer level) {
    switch (level) {
    case QG_QUANTIZER_SCALAR: return "scalar";
    case QG_QUANTIZER_AVX2: return "avx2";
    case QG_QUANTIZER_AVX512: return "avx512";
    default: return "?";
    }
}

/// The widest level this CPU has (qg_cpu_get_features reads the CPU once).
static qg_quantizer qg_widest_quantizer(void) {
    int level = QG_QUANTIZER_COUNT - 1;
    while (!qg_quantizer_supported((qg_quantizer)level)) level--;
    return (qg_quantizer)level;
}

void qg_quantize_rows_with(qg_quantizer level, const float *x, int64_t rows, int64_t k, int64_t ldx, const float *scale,
                           const int32_t *zero, int x_unsigned, uint8_t *out, int64_t ldo) {
    const int32_t qmin = x_unsigned ? 0 : -128, qmax = x_unsigned ? 255 : 127;
    for (int64_t m = 0; m < rows; m++) {
#if defined(__x86_64__)
        if (level == QG_QUANTIZER_AVX512) {
            qg_quantize_row_avx512(x + m * ldx, k, scale[m], zero[m], qmin, qmax, out + m * ldo);
            continue;
        }
        if (level == QG_QUANTIZER_AVX2) {
            qg_quantize_row_avx2(x + m * ldx, k, scale[m], zero[m], qmin, qmax, out + m * ldo);
            continue;
        }
#endif
        for (int64_t i = 0; i < k; i++) {
            float q = roundf(x[m * ldx + i] / scale[m]);
            q = fminf(fmaxf(q, (float)(qmin - zero[m])), (float)(qmax - zero[m]));
            out[m * ldo + i] = (uint8_t)((int32_t)q + zero[m]);
        }
    }
}

void qg_quantize_rows(const float *x, int64_t rows, int64_t k, int64_t ldx, const float *scale, const int32_t *zero,
                      int x_unsigned, uint8_t *out, int64_t ldo) {
    qg_quantize_rows_with(qg_widest_quantizer(), x, rows, k, ldx, scale, zero, x_unsigned, out, ldo);
}

int64_t qg_quantize_rows_smoothed(const float *x, int64_t rows, int64_t k, int64_t ldx, const float *divisor, float scale,
                                  int32_t zero, int x_unsigned, uint8_t *out, int64_t ldo) {
    const int32_t qmin = x_unsigned ? 0 : -128, qmax = x_unsigned ? 255 : 127;
    const float lo = (float)(qmin - zero), hi = (float)(qmax - zero);
    for (int64_t m = 0; m < rows; m++)
        for (int64_t i = 0; i < k; i++) {
            const float v = x[m * ldx + i];
            if (isnan(v)) return m * k + i;
            float q = roundf((v / divisor[i]) / scale); // the smoothed value, then the usual rounding
            q = fminf(fmaxf(q, lo), hi);
            out[m * ldo + i] = (uint8_t)((int32_t)q + zero);
        }
    return -1;
}

/// One row's minimum and maximum in sixteen lanes, with a running sum of
/// v·0 that stays 0 unless a value is NaN or ±Inf. Each lane keeps the
/// scalar loop's rule (`v < lo ? v : lo`), which is what MINPS/MAXPS do, so
/// the compiler turns the lanes into vector min/max. Returns 0 when a value
/// is not finite (the caller then finds it one value at a time).
static inline __attribute__((always_inline)) int qg_min_max_lanes(const float *x, int64_t k, float *min_out,
                                                                    float *max_out) {
    float lo[16], hi[16], poison[16];
    for (int l = 0; l < 16; l++) lo[l] = INFINITY, hi[l] = -INFINITY, poison[l] = 0.0f;
    int64_t i = 0;
    for (; i + 16 <= k; i += 16)
        for (int l = 0; l < 16; l++) {
            const float v = x[i + l];
            lo[l] = v < lo[l] ? v : lo[l];
            hi[l] = v > hi[l] ? v : hi[l];
            poison[l] += v * 0.0f;
        }
    float mn = INFINITY, mx = -INFINITY, bad = 0.0f;
    for (; i < k; i++) {
        const float v = x[i];
        mn = v < mn ? v : mn;
        mx = v > mx ? v : mx;
        bad += v * 0.0f;
    }
    for (int l = 0; l < 16; l++) {
        mn = lo[l] < mn ? lo[l] : mn;
        mx = hi[l] > mx ? hi[l] : mx;
        bad += poison[l];
    }
    *min_out = mn;
    *max_out = mx;
    return bad == 0.0f;
}

#if defined(__x86_64__)
__attribute__((target("avx512f"))) static int qg_min_max_avx512(const float *x, int64_t k, float *mn, float *mx) {
    return qg_min_max_lanes(x, k, mn, mx);
}
__attribute__((target("avx2"))) static int qg_min_max_avx2(const float *x, int64_t k, float *mn, float *mx) {
    return qg_min_max_lanes(x, k, mn, mx);
}
#endif

static int qg_min_max_lanes_scalar(const float *x, int64_t k, float *mn, float *mx) {
    return qg_min_max_lanes(x, k, mn, mx);
}

/// The index of the first NaN or ±Inf in a row known to hold one.
static int64_t qg_first_non_finite(const float *x, int64_t k) {
    for (int64_t i = 0; i < k; i++)
        if (!isfinite(x[i])) return i;
    return 0;
}

int64_t qg_row_min_max_with(qg_quantizer level, const float *x, int64_t rows, int64_t k, int64_t ldx, float *mins,
                            float *maxs) {
    int (*row_min_max)(const float *, int64_t, float *, float *) = qg_min_max_lanes_scalar;
#if defined(__x86_64__)
    if (level == QG_QUANTIZER_AVX512) row_min_max = qg_min_max_avx512;
    if (level == QG_QUANTIZER_AVX2) row_min_max = qg_min_max_avx2;
#else
    (void)level;
#endif
    for (int64_t m = 0; m < rows; m++) {
        const float *row = x + m * ldx;
        float lo, hi;
        if (!row_min_max(row, k, &lo, &hi)) return m * k + qg_first_non_finite(row, k); // index of the first NaN or ±Inf
        // A minimum or maximum of zero is +0 whatever the signs of the row's
        // zeros and the order the lanes saw them in.
        mins[m] = k > 0 ? lo + 0.0f : 0;
        maxs[m] = k > 0 ? hi + 0.0f : 0;
    }
    return -1;
}

int64_t qg_row_min_max(const float *x, int64_t rows, int64_t k, int64_t ldx, float *mins, float *maxs) {
    return qg_row_min_max_with(qg_widest_quantizer(), x, rows, k, ldx, mins, maxs);
}
