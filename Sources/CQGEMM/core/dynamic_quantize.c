// Quantization whose parameters come from the values of the same call: a
// dynamic layer's rows (uint8, per row) and ActivationProduct's two
// operands (A as those rows, B as symmetric per-channel int8 weights). Each
// row is ranged, given its parameters and quantized while it is still in
// the L1, one C call for all rows (shared out over the call's threads by
// whole rows): attention's operands are rows of 32 to 128 values, where a
// call per row from Swift cost more than the work.
// The parameters follow QuantizationParameters' rules operation by
// operation (QGEMMTests compares them on edge and random ranges), and the
// values are qg_quantize_rows's.
#include "qgemm.h"
#include "quantize.h"
#include "round_half_away.h"
#include "threadpool.h"

#include <float.h>
#include <math.h>
#include <string.h>

#pragma clang fp contract(off)

// Swift.min(x, y) is `y < x ? y : x`, Swift.max(x, y) is `y >= x ? y : x`:
// the same operands in the same order keep the sign of a zero the same.
static inline float qg_swift_min(float x, float y) { return y < x ? y : x; }
static inline float qg_swift_max(float x, float y) { return y >= x ? y : x; }
static inline double qg_swift_min_d(double x, double y) { return y < x ? y : x; }
static inline double qg_swift_max_d(double x, double y) { return y >= x ? y : x; }

// QuantizationParameters.coveringScale, operation for operation: the
// quotient as divided, or its next float up (from the bits, which
// flush-to-zero does not touch) where it is below FLT_MIN and `steps` of it
// fall short of `width` (a subnormal quotient rounded down clips the data);
// FLT_MIN where even that does not cover (only with flush-to-zero or
// denormals-are-zero on: the finest normal scale, which covers).
float qg_covering_scale(float quotient, double width, double steps) {
    if (!(quotient < FLT_MIN)) return quotient;
    float s = quotient;
    if ((double)quotient * steps < width) {
        uint32_t bits;
        memcpy(&bits, &quotient, sizeof bits);
        bits += 1;
        memcpy(&s, &bits, sizeof s);
    }
    return s > 0.0f && (double)s * steps >= width ? s : FLT_MIN;
}

int qg_uint8_parameters(float observed_min, float observed_max, float *scale, int32_t *zero) {
    const double lo = (double)qg_swift_min(observed_min, 0.0f), hi = (double)qg_swift_max(observed_max, 0.0f);
    const double qmin = 0.0, qmax = 255.0;
    if (lo == hi) {
        *scale = 1.0f;
        *zero = 0;
        return 0;
    }
    const float s = qg_covering_scale((float)((hi - lo) / (qmax - qmin)), hi - lo, qmax - qmin);
    const double z = qg_round_half_away_d(qmin - lo / (double)s); // as QuantizationParameters rounds it
    const int32_t zp = (int32_t)qg_swift_min_d(qg_swift_max_d(z, qmin), qmax);
    // The grid's ends, as dequantize forms them, must be finite.
    if (!isfinite((float)(0 - zp) * s) || !isfinite((float)(255 - zp) * s)) return -1;
    *scale = s;
    *zero = zp;
    return 0;
}

int qg_symmetric_int8_scale(float abs_max, float *scale) {
    if (abs_max == 0.0f) {
        *scale = 1.0f;
        return 0;
    }
    const float s = qg_covering_scale(abs_max / 127.0f, (double)abs_max, 127.0);
    // The int8 grid's far end (−128), as QuantizationParameters checks it.
    if (!isfinite(128.0f * s)) return -1;
    *scale = s;
    return 0;
}

/// Rows per step of the dynamic quantizers: each step ranges its rows,
/// then finds their parameters, then quantizes them, so that each phase's
/// chains (the range's folds, the parameters' divisions) overlap from row
/// to row, and the step's rows (at most 16 KiB of them) are still in the
/// L1 when the values are read a second time.
#define QG_MAX_ROWS_PER_STEP 64
static int64_t qg_rows_per_step(int64_t k) {
    const int64_t rows = (16 << 10) / (4 * (k > 0 ? k : 1));
    return rows < 1 ? 1 : rows > QG_MAX_ROWS_PER_STEP ? QG_MAX_ROWS_PER_STEP : rows;
}

/// dst[c][r] = src[r][c] for a rows × cols block, in tiles of 16 × 16 so
/// that the loads and the stores each stay within a few lines at a time.
static void qg_transpose(const float *src, int64_t rows, int64_t cols, int64_t lds, float *dst, int64_t ldd) {
    for (int64_t r0 = 0; r0 < rows; r0 += 16)
        for (int64_t c0 = 0; c0 < cols; c0 += 16) {
            const int64_t r1 = r0 + 16 < rows ? r0 + 16 : rows, c1 = c0 + 16 < cols ? c0 + 16 : cols;
            for (int64_t c = c0; c < c1; c++)
                for (int64_t r = r0; r < r1; r++) dst[c * ldd + r] = src[r * lds + c];
        }
}

/// Where row `bad_row` (in a step that ends before row `next`) has no
/// scale: a NaN or ±Inf in a later row still comes first, as when all rows
/// were ranged before any parameter (so an input with both faults is
/// refused for its first non-finite value, whichever step it lies in).
static int64_t qg_no_scale(qg_quantizer level, const float *x, int64_t end, int64_t k, int64_t ldx, int64_t next,
                           int64_t bad_row, float *mins, float *maxs) {
    if (next < end) {
        const int64_t bad = qg_row_min_max_with(level, x + next * ldx, end - next, k, ldx, mins + next, maxs + next);
        if (bad >= 0) return next * k + bad;
    }
    return -2 - bad_row;
}

/// One call of either quantizer: a dynamic input's rows (uint8, each with
/// its own zero point) or weights' channels (int8, symmetric), the latter
/// given as channel rows or as [K×N], transposed part by part into scratch.
typedef struct qg_dynamic_job {
    int symmetric;
    const float *x;  // the rows (channels: as given, [N×K] or [K×N])
    int64_t rows, k, ldx;
    int input_major; // channels given [K×N]
    float *scratch;  // with input_major: the channel rows, [N×K]
    const float *divisor; // rows only: NULL, or K smoothing factors the rows are divided by first
    float *divided;       // with divisor: the divided rows, [rows×K]
    float *mins, *maxs, *scale;
    int32_t *zero;   // rows only
    uint8_t *out;    // rows: uint8, rows ldo apart; channels: int8 [N×K]
    int64_t ldo;
    int64_t part_rows;
    int64_t *status; // one per part
} qg_dynamic_job;

/// Rows [r0, r0 + n) of a job, step by step; the status (as the public
/// functions return it) in the whole job's numbering.
static int64_t qg_dynamic_rows(const qg_dynamic_job *j, int64_t r0, int64_t n) {
    const qg_quantizer level = qg_widest_quantizer();
    const int64_t k = j->k, end = r0 + n;
    const float *x = j->x;
    int64_t ldx = j->ldx;
    if (j->input_major) {
        qg_transpose(j->x + r0, k, n, j->ldx, j->scratch + r0 * k, k);
        x = j->scratch;
        ldx = k;
    }
    // Smoothed rows are divided a step at a time (in the L1 while they are
    // ranged and quantized) from `from` into `divided`, where x then points.
    const float *from = x;
    const int64_t ld_from = ldx;
    if (j->divisor) {
        x = j->divided;
        ldx = k;
    }
    const int64_t step = qg_rows_per_step(k);
    const int32_t no_zero[QG_MAX_ROWS_PER_STEP] = {0};
    for (int64_t m0 = r0; m0 < end; m0 += step) {
        const int64_t count = end - m0 < step ? end - m0 : step;
        if (j->divisor) qg_divide_columns(from + m0 * ld_from, count, k, ld_from, j->divisor, j->divided + m0 * k, k);
        const float *block = x + m0 * ldx;
        const int64_t bad = qg_row_min_max_with(level, block, count, k, ldx, j->mins + m0, j->maxs + m0);
        if (bad >= 0) return m0 * k + bad;
        for (int64_t m = m0; m < m0 + count; m++) {
            // PackedWeights(quantizing:)'s per-channel rule: absMax = max(−min, max).
            const int failed = j->symmetric ? qg_symmetric_int8_scale(qg_swift_max(-j->mins[m], j->maxs[m]), j->scale + m)
                                            : qg_uint8_parameters(j->mins[m], j->maxs[m], j->scale + m, j->zero + m);
            if (failed) {
                // A value that division makes infinite in a later row still
                // wins: the rest of the part divided too, then ranged.
                const int64_t next = m0 + count;
                if (j->divisor && next < end)
                    qg_divide_columns(from + next * ld_from, end - next, k, ld_from, j->divisor, j->divided + next * k, k);
                return qg_no_scale(level, x, end, k, ldx, next, m, j->mins, j->maxs);
            }
        }
        // Symmetric values stay in −127...127 with no clamp of their own:
        // 127 steps of the scale reach absMax, or (a normal scale rounded
        // down, in any rounding mode) fall short by less than a part in
        // 2^23, so |x|/scale rounds to 127 at most.
        qg_quantize_rows_with(level, block, count, k, ldx, j->scale + m0, j->symmetric ? no_zero : j->zero + m0, !j->symmetric,
                              j->out + m0 * j->ldo, j->ldo);
    }
    return -1;
}

static void qg_dynamic_task(void *ctx, int64_t t) {
    const qg_dynamic_job *j = ctx;
    const int64_t r0 = t * j->part_rows, n = j->rows - r0 < j->part_rows ? j->rows - r0 : j->part_rows;
    j->status[t] = qg_dynamic_rows(j, r0, n);
}

/// A job on up to `threads` threads (0: as many as the process may use), in
/// parts of whole rows. The parts' statuses combine into the one the rows
/// give in order: the first NaN or ±Inf of any part, else the first row
/// without a scale, so the result does not depend on the threads.
static int64_t qg_dynamic_run(qg_dynamic_job *j, int threads) {
    if (j->rows <= 0) return -1;
    const int64_t parts = qg_row_parts(j->rows, j->k, threads, &j->part_rows);
    if (parts <= 1) return qg_dynamic_rows(j, 0, j->rows);
    int64_t status[QG_MAX_ROW_PARTS];
    j->status = status;
    qg_parallel_for_rows(parts, qg_dynamic_task, j);
    int64_t non_finite = -1, no_scale = -1;
    for (int64_t t = 0; t < parts; t++) {
        if (status[t] >= 0 && (non_finite < 0 || status[t] < non_finite)) non_finite = status[t];
        if (status[t] <= -2 && no_scale == -1) no_scale = status[t];
    }
    return non_finite >= 0 ? non_finite : no_scale;
}

int64_t qg_quantize_rows_dynamic(const float *x, int64_t rows, int64_t k, int64_t ldx, float *mins, float *maxs,
                                 float *scale, int32_t *zero, uint8_t *out, int64_t ldo, int threads) {
    qg_dynamic_job job = {.symmetric = 0, .x = x, .rows = rows, .k = k, .ldx = ldx, .mins = mins, .maxs = maxs,
                          .scale = scale, .zero = zero, .out = out, .ldo = ldo};
    return qg_dynamic_run(&job, threads);
}

int64_t qg_quantize_smoothed_rows_dynamic(const float *x, int64_t rows, int64_t k, int64_t ldx, const float *divisor,
                                          float *divided, float *mins, float *maxs, float *scale, int32_t *zero,
                                          uint8_t *out, int64_t ldo, int threads) {
    qg_dynamic_job job = {.symmetric = 0, .x = x, .rows = rows, .k = k, .ldx = ldx, .divisor = divisor, .divided = divided,
                          .mins = mins, .maxs = maxs, .scale = scale, .zero = zero, .out = out, .ldo = ldo};
    return qg_dynamic_run(&job, threads);
}

int64_t qg_quantize_channels_symmetric(const float *b, int64_t n, int64_t k, int64_t ldb, int input_major, float *rows_scratch,
                                       float *mins, float *maxs, float *scale, int8_t *q, int threads) {
    qg_dynamic_job job = {.symmetric = 1, .x = b, .rows = n, .k = k, .ldx = ldb, .input_major = input_major,
                          .scratch = rows_scratch, .mins = mins, .maxs = maxs, .scale = scale, .out = (uint8_t *)q, .ldo = k};
    return qg_dynamic_run(&job, threads);
}
