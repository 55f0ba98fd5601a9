// Float → uint8/int8 quantization of activation rows, the hot part of dynamic
// quantization: q = clamp(round-half-away(r / scale) + Z, qmin, qmax), exactly
// as QuantizationParameters.quantize (README, "Arithmetic"). The caller has checked that
// no value is NaN (ranges come from qg_row_min_max, which reports them).
#include "qgemm.h"
#include "quantize.h"
#include "round_half_away.h"
#include "threadpool.h"

#include <float.h>
#include <math.h>

#pragma clang fp contract(off)

#if defined(__x86_64__)
#include <immintrin.h>

/// round-half-away(x / s) as int32 lanes, plus z, eight lanes at a time,
/// the quotient clamped to ±1024 first (as in the AVX-512 copy below).
/// Rounding to nearest (`nearest`, the default environment), by
/// trunc(v + copysign(½ − 2^-25, v)) for |v| < 2^22: ½ − 2^-25 is the
/// largest float below ½, so the sum reaches the next integer exactly when
/// v's fraction is ≥ ½ (at a tie the exact sum lies halfway between the
/// float below that integer and the integer, and rounds to the even one,
/// the integer: 0.5 + 0.49999997 is 1). In a directed mode that addition
/// rounds otherwise (0.5 + 0.49999997 downward is 0.99999994), so there v
/// is truncated (the rounding is in the instruction, not taken from MXCSR)
/// and moved one step away from zero where the part cut off is ½ or more:
/// every step exact, three more operations.
__attribute__((target("avx2"))) static inline __attribute__((always_inline)) __m256i qg_quantize8(__m256 x, __m256 s, __m256i z,
                                                                                                  const int nearest) {
    const __m256 v = _mm256_min_ps(_mm256_max_ps(_mm256_div_ps(x, s), _mm256_set1_ps(-1024.0f)), _mm256_set1_ps(1024.0f));
    const __m256 sign = _mm256_set1_ps(-0.0f);
    if (nearest) {
        const __m256 h = _mm256_or_ps(_mm256_and_ps(v, sign), _mm256_castsi256_ps(_mm256_set1_epi32(0x3EFFFFFF)));
        return _mm256_add_epi32(_mm256_cvttps_epi32(_mm256_add_ps(v, h)), z);
    }
    const __m256 t = _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    const __m256 cut = _mm256_andnot_ps(sign, _mm256_sub_ps(v, t));
    const __m256 step = _mm256_and_ps(_mm256_cmp_ps(cut, _mm256_set1_ps(0.5f), _CMP_GE_OQ),
                                      _mm256_or_ps(_mm256_and_ps(v, sign), _mm256_set1_ps(1.0f)));
    return _mm256_add_epi32(_mm256_cvttps_epi32(_mm256_add_ps(t, step)), z);
}

/// Four times eight int32 values as 32 bytes, in order: saturating packs
/// clamp to the type's range, as in the AVX-512 copy below.
__attribute__((target("avx2"))) static inline __m256i qg_narrow32(__m256i n0, __m256i n1, __m256i n2, __m256i n3,
                                                                 int x_unsigned) {
    const __m256i w01 = _mm256_packs_epi32(n0, n1), w23 = _mm256_packs_epi32(n2, n3);
    const __m256i b = x_unsigned ? _mm256_packus_epi16(w01, w23) : _mm256_packs_epi16(w01, w23);
    return _mm256_permutevar8x32_epi32(b, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

/// 32 values from x as 32 bytes, in order.
__attribute__((target("avx2"))) static inline __attribute__((always_inline)) __m256i qg_quantize32(const float *x, __m256 s, __m256i z,
                                                                                                   int x_unsigned, const int nearest) {
    return qg_narrow32(qg_quantize8(_mm256_loadu_ps(x), s, z, nearest), qg_quantize8(_mm256_loadu_ps(x + 8), s, z, nearest),
                       qg_quantize8(_mm256_loadu_ps(x + 16), s, z, nearest), qg_quantize8(_mm256_loadu_ps(x + 24), s, z, nearest),
                       x_unsigned);
}

__attribute__((target("avx2"))) static inline __attribute__((always_inline)) void
qg_quantize_row_avx2_in(const float *x, int64_t k, float scale, int32_t zero, int x_unsigned, uint8_t *out, const int nearest) {
    const __m256 s = _mm256_set1_ps(scale);
    const __m256i z = _mm256_set1_epi32(zero);
    int64_t i = 0;
    for (; i + 32 <= k; i += 32) _mm256_storeu_si256((__m256i *)(out + i), qg_quantize32(x + i, s, z, x_unsigned, nearest));
    if (i < k) {
        // The last values through a zero-padded copy of 32.
        float tail[32] = {0};
        uint8_t bytes[32];
        for (int64_t j = i; j < k; j++) tail[j - i] = x[j];
        _mm256_storeu_si256((__m256i *)bytes, qg_quantize32(tail, s, z, x_unsigned, nearest));
        for (int64_t j = i; j < k; j++) out[j] = bytes[j - i];
    }
}

/// One row, by the rounding mode the calling thread has (MXCSR, read once).
__attribute__((target("avx2"))) static void qg_quantize_row_avx2(const float *x, int64_t k, float scale, int32_t zero,
                                                                 int x_unsigned, uint8_t *out) {
    if ((_mm_getcsr() & _MM_ROUND_MASK) == _MM_ROUND_NEAREST) qg_quantize_row_avx2_in(x, k, scale, zero, x_unsigned, out, 1);
    else qg_quantize_row_avx2_in(x, k, scale, zero, x_unsigned, out, 0);
}

/// round-half-away(x / s) as int32 lanes, plus z: the quotient is clamped to
/// ±1024 first (it moves no result: beyond that the type's end wins either
/// way, and ±Inf becomes finite); then v is truncated (VRNDSCALEPS: the
/// rounding is in the instruction, not taken from MXCSR), and where the
/// part cut off, v − trunc(v), is ½ or more in size, trunc(v) moves one
/// step away from zero. Each step is exact, so a caller's rounding mode
/// changes none (adding ½ − 2^-25 and truncating, as this did, rounded a
/// tie toward zero when the thread rounds down, unlike the scalar copy and
/// QuantizationParameters.quantize). The division bounds this loop on an
/// Emerald Rapids core (one 16-lane division per ~10 cycles), so a row's
/// steps, its masked last one too, take qg_quantize16_rcp where its bound
/// holds.
__attribute__((target("avx512f,avx512bw,avx512vl"))) static inline __m512i qg_quantize16(__m512 x, __m512 s, __m512i z) {
    const __m512 v = _mm512_min_ps(_mm512_max_ps(_mm512_div_ps(x, s), _mm512_set1_ps(-1024.0f)), _mm512_set1_ps(1024.0f));
    const __m512 t = _mm512_roundscale_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    const __mmask16 away = _mm512_cmp_ps_mask(_mm512_abs_ps(_mm512_sub_ps(v, t)), _mm512_set1_ps(0.5f), _CMP_GE_OQ);
    // copysign(1, v): the sign bit from v, the rest from the constant.
    const __m512 step = _mm512_castsi512_ps(_mm512_ternarylogic_epi32(_mm512_set1_epi32((int32_t)0x80000000),
                                                                      _mm512_castps_si512(v), _mm512_set1_epi32(0x3F800000), 0xCA));
    return _mm512_add_epi32(_mm512_cvttps_epi32(_mm512_mask_add_ps(t, away, t, step)), z);
}

/// The division's rounding through a reciprocal. With r = 1/s rounded once
/// (s in [2^-100, 2^100], so r is a normal float within ½ ulp of 1/s), y =
/// x·r rounded differs from z = x/s rounded by at most 1½ ulps: for |x/s| ≤
/// 1025, less than 2^-12 (in a directed rounding mode each rounding is
/// within 1 ulp, the two within 3, still less than 2^-11: the test below
/// holds in every mode). (Beyond, both clamp to the same ±1024.) The clamp
/// keeps that distance, so round-half-away(clamp(z)) is n for every z within
/// 2^-12 of clamp(y) = v unless a half-integer lies within 2^-12 of v. So v
/// is rounded to the nearest integer n (VRNDSCALEPS, ties to even; the
/// rounding is in the instruction, not taken from MXCSR), and where |v − n|,
/// which is exact, is below ½ − 2^-11, no half-integer lies within 2^-11 of
/// v, and n is the division's result. Otherwise (about one lane in 1,000 for
/// smooth data) the vector takes the division. Nine vector operations per
/// sixteen values. No value changes:
/// scripts/kernel-tester/quantizers.c checks ties and their neighbours for
/// scales of every significand.
#define QG_NEAR_HALF (0.5f - 0x1p-11f)

/// The scales whose reciprocal is a normal float and whose quotients keep the
/// bound above; others take the division throughout.
static inline int qg_reciprocal_holds(float scale) { return scale >= 0x1p-100f && scale <= 0x1p100f; }

/// qg_quantize16 through the reciprocal r = 1/s where that provably gives the
/// same lanes, and through the division where it may not. (The AVX2 copy
/// divides: a reciprocal test of two truncations, v + ½ ± 2^-11, ran slower
/// there than the division on an Emerald Rapids core.)
__attribute__((target("avx512f,avx512bw,avx512vl"))) static inline __m512i qg_quantize16_rcp(__m512 x, __m512 s, __m512 r,
                                                                                            __m512i z) {
    const __m512 v = _mm512_min_ps(_mm512_max_ps(_mm512_mul_ps(x, r), _mm512_set1_ps(-1024.0f)), _mm512_set1_ps(1024.0f));
    const __m512 n = _mm512_roundscale_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m512 off = _mm512_abs_ps(_mm512_sub_ps(v, n));
    if (_mm512_cmp_ps_mask(off, _mm512_set1_ps(QG_NEAR_HALF), _CMP_GE_OQ)) return qg_quantize16(x, s, z);
    return _mm512_add_epi32(_mm512_cvttps_epi32(n), z);
}

/// Four times sixteen int32 values as 64 bytes, in order.
__attribute__((target("avx512f,avx512bw,avx512vl"))) static inline __m512i qg_narrow64(const __m512i n[4], int x_unsigned,
                                                                                    __m512i order) {
    const __m512i w01 = _mm512_packs_epi32(n[0], n[1]), w23 = _mm512_packs_epi32(n[2], n[3]);
    const __m512i b = x_unsigned ? _mm512_packus_epi16(w01, w23) : _mm512_packs_epi16(w01, w23);
    return _mm512_permutexvar_epi32(order, b);
}

/// Sixteen values four times over, narrowed with saturating packs: they
/// clamp to the type's range (n + Z is within ±1300, inside int16), which
/// is clamp(n, qmin − Z, qmax − Z) + Z, the same value. The packs work per
/// 128-bit lane, so a dword permutation puts the 64 bytes back in order.
/// The last values are masked: loads read zeros, the store writes only the
/// row's bytes.
__attribute__((target("avx512f,avx512bw,avx512vl"))) static void qg_quantize_row_avx512(const float *x, int64_t k, float scale,
                                                                                       int32_t zero, int x_unsigned,
                                                                                       uint8_t *out) {
    const __m512 s = _mm512_set1_ps(scale), r = _mm512_set1_ps(1.0f / scale);
    const __m512i z = _mm512_set1_epi32(zero);
    const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    const int reciprocal = qg_reciprocal_holds(scale);
    int64_t i = 0;
    for (; i + 64 <= k; i += 64) {
        __m512i n[4];
        for (int p = 0; p < 4; p++) {
            const __m512 v = _mm512_loadu_ps(x + i + 16 * p);
            n[p] = reciprocal ? qg_quantize16_rcp(v, s, r, z) : qg_quantize16(v, s, z);
        }
        _mm512_storeu_si512(out + i, qg_narrow64(n, x_unsigned, order));
    }
    if (i < k) {
        const int64_t left = k - i;
        __m512i n[4];
        for (int p = 0; p < 4; p++) {
            const int64_t lanes = left - 16 * p;
            if (lanes <= 0) {
                n[p] = _mm512_setzero_si512();
                continue;
            }
            const __mmask16 live = lanes >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << lanes) - 1);
            const __m512 v = _mm512_maskz_loadu_ps(live, x + i + 16 * p);
            n[p] = reciprocal ? qg_quantize16_rcp(v, s, r, z) : qg_quantize16(v, s, z);
        }
        _mm512_mask_storeu_epi8(out + i, ((__mmask64)1 << left) - 1, qg_narrow64(n, x_unsigned, order));
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

qg_quantizer qg_widest_quantizer(void) {
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
            qg_quantize_row_avx512(x + m * ldx, k, scale[m], zero[m], x_unsigned, out + m * ldo);
            continue;
        }
        if (level == QG_QUANTIZER_AVX2) {
            qg_quantize_row_avx2(x + m * ldx, k, scale[m], zero[m], x_unsigned, out + m * ldo);
            continue;
        }
#endif
        for (int64_t i = 0; i < k; i++) {
            float q = qg_round_half_away_f(x[m * ldx + i] / scale[m]);
            q = fminf(fmaxf(q, (float)(qmin - zero[m])), (float)(qmax - zero[m]));
            out[m * ldo + i] = (uint8_t)((int32_t)q + zero[m]);
        }
    }
}

void qg_quantize_rows(const float *x, int64_t rows, int64_t k, int64_t ldx, const float *scale, const int32_t *zero,
                      int x_unsigned, uint8_t *out, int64_t ldo) {
    qg_quantize_rows_with(qg_widest_quantizer(), x, rows, k, ldx, scale, zero, x_unsigned, out, ldo);
}

int64_t qg_first_nan(const float *x, int64_t n) {
    enum { block = 64 };
    int64_t i = 0;
    for (; i + block <= n; i += block) {
        // No early exit inside a block: the whole block is one vector loop.
        int any = 0;
        for (int j = 0; j < block; j++) any |= x[i + j] != x[i + j];
        if (any) break;
    }
    for (; i < n; i++)
        if (x[i] != x[i]) return i;
    return -1;
}

/// One row of a static input: −1, or the index in the row of its first NaN
/// (nothing of the row written then).
static int64_t qg_quantize_static_row(qg_quantizer level, const float *row, int64_t k, const float *divisor, float scale,
                                      int32_t zero, int x_unsigned, uint8_t *out) {
    const int64_t nan = qg_first_nan(row, k);
    if (nan >= 0) return nan;
    if (!divisor) {
        qg_quantize_rows_with(level, row, 1, k, k, &scale, &zero, x_unsigned, out, k);
        return -1;
    }
    // The smoothed values a chunk at a time, on the stack, then the vector
    // quantizer on them: the bits of dividing and rounding value by value
    // (qg_divide_columns is IEEE division; qg_quantize_rows is the scalar
    // rule), where one scalar loop of both took a sixth of a smoothed
    // static-input layer's time.
    enum { chunk = 256 };
    float divided[chunk];
    for (int64_t i = 0; i < k; i += chunk) {
        const int64_t n = k - i < chunk ? k - i : chunk;
        qg_divide_columns(row + i, 1, n, n, divisor + i, divided, n);
        qg_quantize_rows_with(level, divided, 1, n, n, &scale, &zero, x_unsigned, out + i, n);
    }
    return -1;
}

/// One call's rows, shared out in parts of `part_rows`.
typedef struct qg_static_rows_job {
    const float *x, *divisor;
    int64_t rows, k, ldx, ldo, part_rows;
    float scale;
    int32_t zero;
    int x_unsigned;
    uint8_t *out;
    int64_t *first_nan; // one per part
} qg_static_rows_job;

static int64_t qg_static_rows_part(const qg_static_rows_job *j, int64_t r0, int64_t n) {
    const qg_quantizer level = qg_widest_quantizer();
    for (int64_t m = r0; m < r0 + n; m++) {
        const int64_t nan = qg_quantize_static_row(level, j->x + m * j->ldx, j->k, j->divisor, j->scale, j->zero, j->x_unsigned,
                                                   j->out + m * j->ldo);
        if (nan >= 0) return m * j->k + nan;
    }
    return -1;
}

static void qg_static_rows_task(void *ctx, int64_t t) {
    const qg_static_rows_job *j = ctx;
    const int64_t r0 = t * j->part_rows, n = j->rows - r0 < j->part_rows ? j->rows - r0 : j->part_rows;
    j->first_nan[t] = qg_static_rows_part(j, r0, n);
}

int64_t qg_quantize_static_rows_threads(const float *x, int64_t rows, int64_t k, int64_t ldx, const float *divisor,
                                        float scale, int32_t zero, int x_unsigned, uint8_t *out, int64_t ldo,
                                        int threads) {
    if (rows <= 0 || k <= 0) return -1;
    qg_static_rows_job j = {.x = x, .divisor = divisor, .rows = rows, .k = k, .ldx = ldx, .ldo = ldo, .scale = scale,
                            .zero = zero, .x_unsigned = x_unsigned, .out = out};
    const int64_t parts = qg_row_parts(rows, k, threads, &j.part_rows);
    if (parts <= 1) return qg_static_rows_part(&j, 0, rows);
    int64_t first_nan[QG_MAX_ROW_PARTS];
    j.first_nan = first_nan;
    qg_parallel_for_rows(parts, qg_static_rows_task, &j);
    // Parts hold ascending rows: the first part with a NaN has the call's first.
    for (int64_t t = 0; t < parts; t++)
        if (first_nan[t] >= 0) return first_nan[t];
    return -1;
}

/// n values of a row into lanes [0, n), by qg_min_max_lanes's rule below.
static inline __attribute__((always_inline)) void qg_min_max_take(const float *x, int n, float *lo, float *hi,
                                                                   float *poison) {
    for (int l = 0; l < n; l++) {
        const float v = x[l];
        lo[l] = v < lo[l] ? v : lo[l];
        hi[l] = v > hi[l] ? v : hi[l];
        poison[l] += v * 0.0f;
    }
}

/// Lanes [width, 2·width) folded into [0, width).
static inline __attribute__((always_inline)) void qg_min_max_fold(int width, float *lo, float *hi, float *poison) {
    for (int l = 0; l < width; l++) {
        lo[l] = lo[l + width] < lo[l] ? lo[l + width] : lo[l];
        hi[l] = hi[l + width] > hi[l] ? hi[l + width] : hi[l];
        poison[l] += poison[l + width];
    }
}

/// One row's minimum and maximum in `lanes` lanes (16, 32 or 64: as many
/// as four vector registers of each kind hold), with running sums of v·0
/// that stay 0 unless a value is NaN or ±Inf. Each lane keeps the scalar
/// loop's rule (`v < lo ? v : lo`), which is what MINPS/MAXPS do, so the
/// compiler turns the lanes into vector min/max; several registers per
/// kind are independent chains, which one register would bound by its
/// latency. After the loop the lanes fold pairwise to sixteen for the
/// row's last whole sixteens, then to one. (Minimum and maximum
/// do not depend on the order the lanes saw the values in, apart from the
/// sign of a zero, which the caller drops.) Returns 0 when a value is not
/// finite (the caller then finds it one value at a time).
static inline __attribute__((always_inline)) int qg_min_max_lanes(const float *x, int64_t k, float *min_out,
                                                                    float *max_out, const int lanes) {
    float lo[64], hi[64], poison[64];
    for (int l = 0; l < lanes; l++) lo[l] = INFINITY, hi[l] = -INFINITY, poison[l] = 0.0f;
    int64_t i = 0;
    for (; i + lanes <= k; i += lanes) qg_min_max_take(x + i, lanes, lo, hi, poison);
    // Fold to 16 lanes, take the row's last whole sixteens, fold to one.
    for (int width = lanes / 2; width >= 16; width /= 2) qg_min_max_fold(width, lo, hi, poison);
    for (; i + 16 <= k; i += 16) qg_min_max_take(x + i, 16, lo, hi, poison);
    for (int width = 8; width >= 1; width /= 2) qg_min_max_fold(width, lo, hi, poison);
    float mn = lo[0], mx = hi[0], bad = poison[0];
    for (; i < k; i++) {
        const float v = x[i];
        mn = v < mn ? v : mn;
        mx = v > mx ? v : mx;
        bad += v * 0.0f;
    }
    *min_out = mn;
    *max_out = mx;
    return bad == 0.0f;
}

#if defined(__x86_64__)
// Short rows (attention's heads of 32 or 64 values) take one register of
// each kind: the wide copies' set-up and folds cost more than such a row's
// loop.
__attribute__((target("avx512f"))) static int qg_min_max_avx512(const float *x, int64_t k, float *mn, float *mx) {
    return k < 128 ? qg_min_max_lanes(x, k, mn, mx, 16) : qg_min_max_lanes(x, k, mn, mx, 64);
}
__attribute__((target("avx2"))) static int qg_min_max_avx2(const float *x, int64_t k, float *mn, float *mx) {
    return k < 64 ? qg_min_max_lanes(x, k, mn, mx, 16) : qg_min_max_lanes(x, k, mn, mx, 32);
}

/// Sixteen vectors to one whose lane r is the minimum (or maximum) of
/// vector r's lanes: four rounds that each halve the vectors, pairing two
/// vectors' halves (whole 256-, then 128-bit blocks, then pairs and single
/// lanes within blocks) and keeping the smaller (larger) of each pair. The
/// rounds leave vector r's result in lane 4·(r mod 4) + r / 4, a 4 × 4
/// transpose that one permutation undoes. Minimum and maximum do not depend
/// on the order the values meet in.
static const int32_t qg_tree_order[16] = {0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15};

#define QG_TREE_REDUCE(name, op)                                                                                   \
    __attribute__((target("avx512f,avx512bw,avx512vl"))) static inline __m512 name(__m512 v[16]) {                \
        for (int i = 0; i < 8; i++)                                                                               \
            v[i] = op(_mm512_shuffle_f32x4(v[2 * i], v[2 * i + 1], 0x44), _mm512_shuffle_f32x4(v[2 * i], v[2 * i + 1], 0xEE)); \
        for (int i = 0; i < 4; i++)                                                                               \
            v[i] = op(_mm512_shuffle_f32x4(v[2 * i], v[2 * i + 1], 0x88), _mm512_shuffle_f32x4(v[2 * i], v[2 * i + 1], 0xDD)); \
        for (int i = 0; i < 2; i++)                                                                               \
            v[i] = op(_mm512_shuffle_ps(v[2 * i], v[2 * i + 1], 0x44), _mm512_shuffle_ps(v[2 * i], v[2 * i + 1], 0xEE)); \
        const __m512 r = op(_mm512_shuffle_ps(v[0], v[1], 0x88), _mm512_shuffle_ps(v[0], v[1], 0xDD));           \
        return _mm512_permutexvar_ps(_mm512_loadu_si512(qg_tree_order), r);                                       \
    }
QG_TREE_REDUCE(qg_tree_min, _mm512_min_ps)
QG_TREE_REDUCE(qg_tree_max, _mm512_max_ps)

/// The ranges of sixteen rows of 1…64 values (row r at x + r·ldx) at once:
/// each row's vectors folded to one of each kind, then the sixteen of each
/// kind reduced together, instead of folding every row's vector alone
/// (attention's rows of 32 values spent most of their range in the folds).
/// Lanes past K read as +∞ for the minimum and −∞ for the maximum. Returns 0
/// when a value is not finite (the caller then goes row by row).
__attribute__((target("avx512f,avx512bw,avx512vl"))) static int qg_min_max_16_rows_avx512(const float *x, int64_t k,
                                                                                        int64_t ldx, float *mins,
                                                                                        float *maxs) {
    const __m512 inf = _mm512_set1_ps(INFINITY), neg_inf = _mm512_set1_ps(-INFINITY);
    const __m512i magnitude = _mm512_set1_epi32(0x7FFFFFFF);
    const __m512 largest = _mm512_set1_ps(FLT_MAX);
    __m512 lo[16], hi[16];
    __mmask16 bad = 0;
    for (int r = 0; r < 16; r++) {
        const float *row = x + r * ldx;
        lo[r] = inf;
        hi[r] = neg_inf;
        for (int64_t i = 0; i < k; i += 16) {
            const __mmask16 live = k - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (k - i)) - 1);
            const __m512 v = _mm512_maskz_loadu_ps(live, row + i);
            // Not finite: |v| above FLT_MAX, or unordered (NaN).
            const __m512 abs = _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(v), magnitude));
            bad |= _mm512_mask_cmp_ps_mask(live, abs, largest, _CMP_NLE_UQ);
            lo[r] = _mm512_mask_min_ps(lo[r], live, lo[r], v);
            hi[r] = _mm512_mask_max_ps(hi[r], live, hi[r], v);
        }
    }
    if (bad) return 0;
    // + 0: a minimum or maximum of zero is +0, as the row-by-row copies give.
    _mm512_storeu_ps(mins, _mm512_add_ps(qg_tree_min(lo), _mm512_setzero_ps()));
    _mm512_storeu_ps(maxs, _mm512_add_ps(qg_tree_max(hi), _mm512_setzero_ps()));
    return 1;
}
#endif

static int qg_min_max_lanes_scalar(const float *x, int64_t k, float *mn, float *mx) {
    return qg_min_max_lanes(x, k, mn, mx, 16);
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
    int64_t m = 0;
#if defined(__x86_64__)
    // Short rows sixteen at a time; a group with a value that is not finite
    // goes row by row below, which finds it.
    if (level == QG_QUANTIZER_AVX512 && k >= 1 && k <= 64)
        for (; m + 16 <= rows; m += 16)
            if (!qg_min_max_16_rows_avx512(x + m * ldx, k, ldx, mins + m, maxs + m)) break;
#endif
    for (; m < rows; m++) {
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
