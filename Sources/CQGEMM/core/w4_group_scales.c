// The group quantization of 4-bit weights (qgemm.h, qg_w4_quantize_groups):
// each group's binary16 scale and its int4 values. The minimizing-error rule
// weighs 29 candidate scales per group, and the AWQ-style search quantizes
// the whole layer once for every α it tries, so this is where calibrating
// 4-bit layers spends its time. The AVX2 copy weighs 8 candidates at once,
// one a lane: each candidate's error is still summed in double one weight
// after another, in order, so every sum, choice and value is the scalar
// copy's.
#include "qgemm.h"
#include "round_half_away.h"

#include <math.h>
#include <string.h>

#pragma clang fp contract(off)

/// The candidates of the minimizing-error rule: absMax/d for d = 7, 7.25, …, 14.
#define QG_W4_CANDIDATES 29

/// Candidate `step`'s scale, rounded to binary16 (the stored scale is the one
/// the values are quantized with).
static float qg_w4_candidate(float absmax, int step) {
    return qg_f32_from_f16(qg_f16_from_f32(absmax / (7.0f + (float)step / 4.0f)));
}

/// clamp(round-half-away(v), lo, hi) for integers lo, hi, whatever the
/// rounding mode and build flags (round_half_away.h says why not roundf).
static inline float qg_w4_round_clamp(float v, float lo, float hi) { return fminf(fmaxf(qg_round_half_away_f(v), lo), hi); }

static double qg_w4_squared_error_scalar(const float *w, int64_t count, float s, float lo, float hi) {
    double e = 0.0;
    for (int64_t i = 0; i < count; i++) {
        const double d = (double)(w[i] - qg_w4_round_clamp(w[i] / s, lo, hi) * s);
        e += d * d;
    }
    return e;
}

#if defined(__x86_64__)
#include <immintrin.h>

/// clamp(round-half-away(v), lo, hi) on 8 lanes, for any v but NaN: v is
/// clamped to ±16 first (rounding is monotone and |lo|, |hi| ≤ 16), then
/// truncated (the rounding is in the instruction, not taken from MXCSR), and
/// moved one step away from zero where the part cut off, exact, is ½ or more.
__attribute__((target("avx2"))) static inline __m256 qg_w4_round_clamp8(__m256 v, __m256 lo, __m256 hi) {
    const __m256 c = _mm256_min_ps(_mm256_max_ps(v, _mm256_set1_ps(-16.0f)), _mm256_set1_ps(16.0f));
    const __m256 t = _mm256_round_ps(c, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    const __m256 cut = _mm256_sub_ps(c, t), one = _mm256_set1_ps(1.0f);
    const __m256 up = _mm256_and_ps(_mm256_cmp_ps(cut, _mm256_set1_ps(0.5f), _CMP_GE_OQ), one);
    const __m256 down = _mm256_and_ps(_mm256_cmp_ps(cut, _mm256_set1_ps(-0.5f), _CMP_LE_OQ), one);
    return _mm256_min_ps(_mm256_max_ps(_mm256_sub_ps(_mm256_add_ps(t, up), down), lo), hi);
}

/// The squared errors of the 8 `scales` (finite, above 0) over the
/// `count` weights at `w`, as qg_w4_squared_error_scalar sums each.
__attribute__((target("avx2"))) static void qg_w4_squared_errors8_avx2(const float *w, int64_t count, const float *scales,
                                                                       float lo, float hi, double errors[8]) {
    const __m256 s = _mm256_loadu_ps(scales), vlo = _mm256_set1_ps(lo), vhi = _mm256_set1_ps(hi);
    __m256d e0 = _mm256_setzero_pd(), e1 = _mm256_setzero_pd();
    for (int64_t i = 0; i < count; i++) {
        const __m256 wv = _mm256_broadcast_ss(w + i);
        const __m256 d = _mm256_sub_ps(wv, _mm256_mul_ps(qg_w4_round_clamp8(_mm256_div_ps(wv, s), vlo, vhi), s));
        const __m256d d0 = _mm256_cvtps_pd(_mm256_castps256_ps128(d)), d1 = _mm256_cvtps_pd(_mm256_extractf128_ps(d, 1));
        e0 = _mm256_add_pd(e0, _mm256_mul_pd(d0, d0));
        e1 = _mm256_add_pd(e1, _mm256_mul_pd(d1, d1));
    }
    _mm256_storeu_pd(errors, e0);
    _mm256_storeu_pd(errors + 4, e1);
}

/// Candidates first … first + 7 of `absmax` (lanes past the last are not
/// usable), and which of them are scales (above 0, finite). Where every
/// quotient is a binary16 normal, its rounding to binary16 and back is done
/// on the lanes with qg_f16_from_f32's integer steps; otherwise each lane
/// calls it.
__attribute__((target("avx2"))) static __m256 qg_w4_candidates8_avx2(float absmax, int first, int usable[8]) {
    float divisor[8];
    for (int l = 0; l < 8; l++) divisor[l] = 7.0f + (float)(first + l) / 4.0f;
    const __m256 q = _mm256_div_ps(_mm256_set1_ps(absmax), _mm256_loadu_ps(divisor));
    const __m256i x = _mm256_castps_si256(q);
    // Normal binary16 range, as qg_f16_from_f32 tests it (the quotients are positive).
    const __m256i below = _mm256_cmpgt_epi32(_mm256_set1_epi32(0x38800000), x);
    const __m256i above = _mm256_cmpgt_epi32(x, _mm256_set1_epi32(0x477FFFFF));
    float s[8];
    if (_mm256_testz_si256(_mm256_or_si256(below, above), _mm256_or_si256(below, above))) {
        // Round the 13 dropped bits to nearest even; a carry past 65504 is Inf.
        const __m256i odd = _mm256_and_si256(_mm256_srli_epi32(x, 13), _mm256_set1_epi32(1));
        const __m256i r = _mm256_and_si256(_mm256_add_epi32(_mm256_add_epi32(x, _mm256_set1_epi32(0xFFF)), odd),
                                           _mm256_set1_epi32(~0x1FFF));
        const __m256i inf = _mm256_cmpgt_epi32(r, _mm256_set1_epi32(0x477FFFFF));
        _mm256_storeu_ps(s, _mm256_castsi256_ps(_mm256_blendv_epi8(r, _mm256_set1_epi32(0x7F800000), inf)));
    } else {
        for (int l = 0; l < 8; l++) s[l] = qg_w4_candidate(absmax, first + l);
    }
    for (int l = 0; l < 8; l++) {
        usable[l] = first + l < QG_W4_CANDIDATES && s[l] > 0.0f && isfinite(s[l]);
        if (!usable[l]) s[l] = 1.0f;
    }
    return _mm256_loadu_ps(s);
}

/// The values of a group with scale s, 8 at a time.
__attribute__((target("avx2"))) static void qg_w4_values_avx2(const float *x, int64_t count, float s, float lo, float hi,
                                                              int8_t *values) {
    const __m256 sv = _mm256_set1_ps(s), vlo = _mm256_set1_ps(lo), vhi = _mm256_set1_ps(hi);
    int64_t i = 0;
    for (; i + 8 <= count; i += 8) {
        const __m256i q = _mm256_cvttps_epi32(qg_w4_round_clamp8(_mm256_div_ps(_mm256_loadu_ps(x + i), sv), vlo, vhi));
        const __m128i w16 = _mm_packs_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
        _mm_storel_epi64((__m128i *)(values + i), _mm_packs_epi16(w16, w16));
    }
    for (; i < count; i++) values[i] = (int8_t)qg_w4_round_clamp(x[i] / s, lo, hi);
}

/// One group on AVX2: its scale (0 or +Inf as qg_w4_quantize_groups says)
/// and values.
__attribute__((target("avx2"))) static float qg_w4_group_avx2(const float *x, int64_t count, int minimizing, float absmax,
                                                              int8_t *values) {
    const float lo = minimizing ? -8.0f : -7.0f, hi = 7.0f;
    float best = 0.0f;
    if (!minimizing) {
        const float s = qg_w4_candidate(absmax, 0);
        if (s > 0.0f && isfinite(s)) best = s;
    } else {
        double best_error = INFINITY;
        for (int first = 0; first < QG_W4_CANDIDATES; first += 8) {
            int usable[8];
            float lanes[8];
            _mm256_storeu_ps(lanes, qg_w4_candidates8_avx2(absmax, first, usable));
            double errors[8];
            qg_w4_squared_errors8_avx2(x, count, lanes, lo, hi, errors);
            for (int l = 0; l < 8; l++)
                if (usable[l] && errors[l] < best_error) best = lanes[l], best_error = errors[l];
        }
    }
    if (best > 0.0f) qg_w4_values_avx2(x, count, best, lo, hi, values);
    return best;
}
#endif

/// One group in plain C.
static float qg_w4_group_scalar(const float *x, int64_t count, int minimizing, float absmax, int8_t *values) {
    const float lo = minimizing ? -8.0f : -7.0f, hi = 7.0f;
    float best = 0.0f;
    double best_error = INFINITY;
    for (int step = 0; step < (minimizing ? QG_W4_CANDIDATES : 1); step++) {
        const float s = qg_w4_candidate(absmax, step);
        if (!(s > 0.0f && isfinite(s))) continue;
        // absMax/7 alone needs no error: a finite one always wins.
        const double e = minimizing ? qg_w4_squared_error_scalar(x, count, s, lo, hi) : 0.0;
        if (e < best_error) best = s, best_error = e;
    }
    if (best > 0.0f)
        for (int64_t i = 0; i < count; i++) values[i] = (int8_t)qg_w4_round_clamp(x[i] / best, lo, hi);
    return best;
}

void qg_w4_quantize_groups(const float *w, int64_t n, int64_t k, int64_t group, int minimizing, int vector,
                           int8_t *values, float *scales) {
    const int64_t groups = qg_w4_groups(k, group);
#if defined(__x86_64__)
    const int avx2 = vector && qg_cpu_get_features()->avx2;
#else
    (void)vector;
#endif
    memset(values, 0, (size_t)(n * k));
    for (int64_t c = 0; c < n; c++) {
        for (int64_t g = 0; g < groups; g++) {
            const float *x = w + c * k + g * group;
            const int64_t count = k - g * group < group ? k - g * group : group;
            float absmax = 0.0f;
            for (int64_t i = 0; i < count; i++) absmax = fmaxf(absmax, fabsf(x[i]));
            float *scale = scales + c * groups + g;
            *scale = 0.0f;
            if (!(absmax / 7.0f > 0.0f)) continue;
            int8_t *v = values + c * k + g * group;
#if defined(__x86_64__)
            const float best = avx2 ? qg_w4_group_avx2(x, count, minimizing, absmax, v)
                                    : qg_w4_group_scalar(x, count, minimizing, absmax, v);
#else
            const float best = qg_w4_group_scalar(x, count, minimizing, absmax, v);
#endif
            // No usable scale: below binary16's smallest (the group stays 0)
            // or above its largest (+Inf, which the caller refuses).
            if (best > 0.0f) *scale = best;
            else if (absmax / 7.0f > 65504.0f) *scale = INFINITY;
        }
    }
}

void qg_w4_squared_errors(const float *w, int64_t count, const float *scales, float lo, float hi, int vector,
                          double *errors) {
#if defined(__x86_64__)
    if (vector && qg_cpu_get_features()->avx2) {
        qg_w4_squared_errors8_avx2(w, count, scales, lo, hi, errors);
        return;
    }
#else
    (void)vector;
#endif
    for (int l = 0; l < 8; l++) errors[l] = qg_w4_squared_error_scalar(w, count, scales[l], lo, hi);
}
