// The per-row preparation of the activations that meet 4-bit weights
// (qgemm.h, qg_w4_prepare_rows and qg_w4_prepare_rows_uint8_threads): each
// row (for a smoothed layer first divided by its factors) ranged, quantized
// (symmetrically to int8, or to uint8 with a zero point and stored less 128)
// and zero-padded, and each of its groups' offset term −8·Σ q taken, while
// the row is still in the L1. Rows are independent, so a call shares
// them out over its threads in parts of whole rows, and the bits do not
// depend on the thread count.
#include "qgemm.h"
#include "quantize.h"
#include "threadpool.h"

#include <math.h>
#include <string.h>

/// offset[g] = −8·Σ q over group g of `row` (groups × group bytes, the
/// row's zero padding included), one group at a time.
static void qg_w4_group_offsets_scalar(const int8_t *row, int64_t groups, int64_t group, int32_t *offset) {
    for (int64_t g = 0; g < groups; g++) {
        int32_t sum = 0;
        for (int64_t i = g * group; i < (g + 1) * group; i++) sum += row[i];
        offset[g] = -8 * sum;
    }
}

#if defined(__x86_64__)
#include <immintrin.h>

/// The same with VPSADBW, 32 bytes an instruction: q + 128 is q XOR 0x80 read
/// unsigned, and its sum of absolute differences with zero is its sum, so
/// Σ q = Σ (q XOR 0x80) − 128·bytes. The SSE2 code the compiler makes of the
/// scalar loop (no sign-extending loads in baseline x86-64) took a third of
/// a 128×4096 preparation.
__attribute__((target("avx2"))) static void qg_w4_group_offsets_avx2(const int8_t *row, int64_t groups, int64_t group,
                                                                     int32_t *offset) {
    const __m256i flip = _mm256_set1_epi8((char)0x80), zero = _mm256_setzero_si256();
    // Only the low 8 bytes of an 8-byte load are flipped: the high 8 are zeros.
    const __m128i flip8 = _mm_set_epi64x(0, (long long)0x8080808080808080ull), zero128 = _mm_setzero_si128();
    for (int64_t g = 0; g < groups; g++) {
        const int8_t *p = row + g * group;
        __m256i wide = zero;
        int64_t i = 0;
        for (; i + 32 <= group; i += 32)
            wide = _mm256_add_epi64(wide, _mm256_sad_epu8(_mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(p + i)), flip), zero));
        __m128i sums = _mm_add_epi64(_mm256_castsi256_si128(wide), _mm256_extracti128_si256(wide, 1));
        for (; i + 8 <= group; i += 8)
            sums = _mm_add_epi64(sums, _mm_sad_epu8(_mm_xor_si128(_mm_loadl_epi64((const __m128i *)(p + i)), flip8), zero128));
        int64_t sum = _mm_cvtsi128_si64(sums) + _mm_extract_epi64(sums, 1) - 128 * i;
        for (; i < group; i++) sum += p[i];
        offset[g] = (int32_t)(-8 * sum);
    }
}
#endif

/// One call's rows, shared out in parts of `part_rows`.
typedef struct qg_w4_prepare_job {
    const float *x;
    const float *divisor; // NULL, or K smoothing factors the rows are divided by first
    float *smoothed;      // with divisor: the divided rows, row m at m·K
    int64_t rows, k, ldx, group, ldq;
    int8_t *q;
    float *scale;
    float *shift; // NULL: symmetric int8; else uint8 with a zero point
    int32_t *offset;
    int64_t part_rows;
    int64_t *status; // one per part
} qg_w4_prepare_job;

/// Rows [r0, r0 + n): −1, or for the first row m that cannot be quantized the
/// flat index (m·K + i) of its first NaN or ±Inf, or −2 − m where its range
/// has no uint8 parameters.
static int64_t qg_w4_prepare_part(const qg_w4_prepare_job *j, int64_t r0, int64_t n) {
    const qg_quantizer level = qg_widest_quantizer();
    const int64_t groups = qg_w4_groups(j->k, j->group), k = j->k;
    const int32_t zero = 0;
#if defined(__x86_64__)
    const int sad = qg_cpu_get_features()->avx2;
#endif
    for (int64_t m = r0; m < r0 + n; m++) {
        const float *x = j->x + m * j->ldx;
        if (j->divisor) {
            float *divided = j->smoothed + m * k;
            qg_divide_columns(x, 1, k, j->ldx, j->divisor, divided, k);
            x = divided;
        }
        float lo, hi;
        const int64_t bad = qg_row_min_max_with(level, x, 1, k, j->ldx, &lo, &hi);
        if (bad >= 0) return m * k + bad;
        int8_t *row = j->q + m * j->ldq;
        if (j->shift) {
            float s;
            int32_t z;
            if (qg_uint8_parameters(lo, hi, &s, &z) != 0) return -2 - m;
            j->scale[m] = s;
            j->shift[m] = (float)(128 - z);
            qg_quantize_rows_with(level, x, 1, k, j->ldx, &s, &z, 1, (uint8_t *)row, j->ldq);
            // q − 128 is q XOR 0x80 read as int8: the tiles' signed operand.
            for (int64_t i = 0; i < k; i++) row[i] = (int8_t)((uint8_t)row[i] ^ 0x80);
        } else {
            const float absmax = fmaxf(-lo, hi);
            // 1 for an all-zero row (every value quantizes to 0, without a 0/0);
            // else absmax/127, rounded up where it is subnormal and 127 of it fall
            // short of absmax (qg_covering_scale): rounded down it would clip the
            // row's largest values, and −x to −128 where x gives 127.
            const float s = absmax == 0.0f ? 1.0f : qg_covering_scale(absmax / 127.0f, (double)absmax, 127.0);
            j->scale[m] = s;
            qg_quantize_rows_with(level, x, 1, k, j->ldx, &s, &zero, 0, (uint8_t *)row, j->ldq);
        }
        memset(row + k, 0, (size_t)(j->ldq - k));
#if defined(__x86_64__)
        if (sad) {
            qg_w4_group_offsets_avx2(row, groups, j->group, j->offset + m * groups);
            continue;
        }
#endif
        qg_w4_group_offsets_scalar(row, groups, j->group, j->offset + m * groups);
    }
    return -1;
}

static void qg_w4_prepare_task(void *ctx, int64_t t) {
    const qg_w4_prepare_job *j = ctx;
    const int64_t r0 = t * j->part_rows, n = j->rows - r0 < j->part_rows ? j->rows - r0 : j->part_rows;
    j->status[t] = qg_w4_prepare_part(j, r0, n);
}

/// The row a part's status names (−1: none).
static int64_t qg_w4_status_row(int64_t status, int64_t k) {
    return status >= 0 ? status / k : status <= -2 ? -2 - status : -1;
}

static int64_t qg_w4_prepare(qg_w4_prepare_job *j, int threads) {
    if (j->rows <= 0) return -1;
    const int64_t parts = qg_row_parts(j->rows, j->k, threads, &j->part_rows);
    if (parts <= 1) return qg_w4_prepare_part(j, 0, j->rows);
    int64_t status[QG_MAX_ROW_PARTS];
    j->status = status;
    qg_parallel_for_rows(parts, qg_w4_prepare_task, j);
    // The parts' first failing rows: the earliest is the call's.
    int64_t first = -1;
    for (int64_t t = 0; t < parts; t++) {
        const int64_t row = qg_w4_status_row(status[t], j->k);
        if (row >= 0 && (first == -1 || row < qg_w4_status_row(first, j->k))) first = status[t];
    }
    return first;
}

int64_t qg_w4_prepare_rows_threads(const float *x, int64_t rows, int64_t k, int64_t ldx, int64_t group, int8_t *q,
                                   int64_t ldq, float *scale, int32_t *offset, int threads) {
    qg_w4_prepare_job j = {.x = x, .rows = rows, .k = k, .ldx = ldx, .group = group, .ldq = ldq, .q = q, .scale = scale,
                           .offset = offset};
    return qg_w4_prepare(&j, threads);
}

int64_t qg_w4_prepare_rows_uint8_threads(const float *x, int64_t rows, int64_t k, int64_t ldx, int64_t group, int8_t *q,
                                         int64_t ldq, float *scale, float *shift, int32_t *offset, int threads) {
    qg_w4_prepare_job j = {.x = x, .rows = rows, .k = k, .ldx = ldx, .group = group, .ldq = ldq, .q = q, .scale = scale,
                           .shift = shift, .offset = offset};
    return qg_w4_prepare(&j, threads);
}

int64_t qg_w4_prepare_smoothed_rows_threads(const float *x, int64_t rows, int64_t k, int64_t ldx, const float *divisor,
                                            float *smoothed, int64_t group, int8_t *q, int64_t ldq, float *scale,
                                            float *shift, int32_t *offset, int threads) {
    qg_w4_prepare_job j = {.x = x, .divisor = divisor, .smoothed = smoothed, .rows = rows, .k = k, .ldx = ldx,
                           .group = group, .ldq = ldq, .q = q, .scale = scale, .shift = shift, .offset = offset};
    return qg_w4_prepare(&j, threads);
}

int64_t qg_w4_prepare_rows(const float *x, int64_t rows, int64_t k, int64_t ldx, int64_t group, int8_t *q, int64_t ldq,
                           float *scale, int32_t *offset) {
    return qg_w4_prepare_rows_threads(x, rows, k, ldx, group, q, ldq, scale, offset, 1);
}
