// Quantization whose parameters come from the values of the same call: a
// dynamic layer's rows (uint8, per row) and ActivationProduct's two
// operands (A as those rows, B as symmetric per-channel int8 weights). Each
// row is ranged, given its parameters and quantized while it is still in
// the L1, one C call for all rows: attention's operands are rows of 32 to
// 128 values, where a call per row from Swift cost more than the work.
// The parameters follow QuantizationParameters' rules operation by
// operation (QGEMMTests compares them on edge and random ranges), and the
// values are qg_quantize_rows's.
#include "qgemm.h"
#include "quantize.h"

#include <float.h>
#include <math.h>

#pragma clang fp contract(off)

// Swift.min(x, y) is `y < x ? y : x`, Swift.max(x, y) is `y >= x ? y : x`:
// the same operands in the same order keep the sign of a zero the same.
static inline float qg_swift_min(float x, float y) { return y < x ? y : x; }
static inline float qg_swift_max(float x, float y) { return y >= x ? y : x; }
static inline double qg_swift_min_d(double x, double y) { return y < x ? y : x; }
static inline double qg_swift_max_d(double x, double y) { return y >= x ? y : x; }

int qg_uint8_parameters(float observed_min, float observed_max, float *scale, int32_t *zero) {
    const double lo = (double)qg_swift_min(observed_min, 0.0f), hi = (double)qg_swift_max(observed_max, 0.0f);
    const double qmin = 0.0, qmax = 255.0;
    if (lo == hi) {
        *scale = 1.0f;
        *zero = 0;
        return 0;
    }
    const float s = (float)((hi - lo) / (qmax - qmin));
    if (!(s > 0.0f) || !isfinite(s)) return -1;
    const double z = round(qmin - lo / (double)s); // round-half-away, as .toNearestOrAwayFromZero
    *scale = s;
    *zero = (int32_t)qg_swift_min_d(qg_swift_max_d(z, qmin), qmax);
    return 0;
}

int qg_symmetric_int8_scale(float abs_max, float *scale) {
    if (abs_max == 0.0f) {
        *scale = 1.0f;
        return 0;
    }
    const float s = abs_max / 127.0f;
    if (!(s > 0.0f)) return -1;
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

/// Where row `bad_row` (in a step that ends before row `next`) has no
/// scale: a NaN or ±Inf in a later row still comes first, as when all rows
/// were ranged before any parameter (so an input with both faults is
/// refused for its first non-finite value, whichever step it lies in).
static int64_t qg_no_scale(qg_quantizer level, const float *x, int64_t rows, int64_t k, int64_t ldx, int64_t next,
                           int64_t bad_row, float *mins, float *maxs) {
    if (next < rows) {
        const int64_t bad = qg_row_min_max_with(level, x + next * ldx, rows - next, k, ldx, mins + next, maxs + next);
        if (bad >= 0) return next * k + bad;
    }
    return -2 - bad_row;
}

int64_t qg_quantize_rows_dynamic(const float *x, int64_t rows, int64_t k, int64_t ldx, float *mins, float *maxs,
                                 float *scale, int32_t *zero, uint8_t *out, int64_t ldo) {
    const qg_quantizer level = qg_widest_quantizer();
    const int64_t step = qg_rows_per_step(k);
    for (int64_t m0 = 0; m0 < rows; m0 += step) {
        const int64_t n = rows - m0 < step ? rows - m0 : step;
        const float *block = x + m0 * ldx;
        const int64_t bad = qg_row_min_max_with(level, block, n, k, ldx, mins + m0, maxs + m0);
        if (bad >= 0) return m0 * k + bad;
        for (int64_t m = m0; m < m0 + n; m++)
            if (qg_uint8_parameters(mins[m], maxs[m], scale + m, zero + m) != 0)
                return qg_no_scale(level, x, rows, k, ldx, m0 + n, m, mins, maxs);
        qg_quantize_rows_with(level, block, n, k, ldx, scale + m0, zero + m0, 1, out + m0 * ldo, ldo);
    }
    return -1;
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

int64_t qg_quantize_channels_symmetric(const float *b, int64_t n, int64_t k, int64_t ldb, int input_major, float *rows_scratch,
                                       float *mins, float *maxs, float *scale, int8_t *q) {
    const qg_quantizer level = qg_widest_quantizer();
    const float *channels = b;
    int64_t ldc = ldb;
    if (input_major) {
        qg_transpose(b, k, n, ldb, rows_scratch, k);
        channels = rows_scratch;
        ldc = k;
    }
    const int64_t step = qg_rows_per_step(k);
    int32_t no_zero[QG_MAX_ROWS_PER_STEP] = {0};
    for (int64_t c0 = 0; c0 < n; c0 += step) {
        const int64_t count = n - c0 < step ? n - c0 : step;
        const float *block = channels + c0 * ldc;
        const int64_t bad = qg_row_min_max_with(level, block, count, k, ldc, mins + c0, maxs + c0);
        if (bad >= 0) return c0 * k + bad;
        // PackedWeights(quantizing:)'s per-channel rule: absMax = max(−min, max).
        for (int64_t c = c0; c < c0 + count; c++)
            if (qg_symmetric_int8_scale(qg_swift_max(-mins[c], maxs[c]), scale + c) != 0)
                return qg_no_scale(level, channels, n, k, ldc, c0 + count, c, mins, maxs);
        qg_quantize_rows_with(level, block, count, k, ldc, scale + c0, no_zero, 0, (uint8_t *)(q + c0 * k), k);
        // −127...127 as the weights' rule: only a scale that lost bits
        // (absMax/127 below Float's normal range) can give −128.
        for (int64_t c = c0; c < c0 + count; c++)
            if (scale[c] < FLT_MIN)
                for (int64_t i = 0; i < k; i++)
                    if (q[c * k + i] == -128) q[c * k + i] = -127;
    }
    return -1;
}
