// The float layer's output, Y = X·Wᵀ + b, for calibrating a static layer's
// output parameters: the same bits on every CPU, vector width and thread
// count, which a BLAS does not give (its kernels' summation order follows
// the CPU it detects, or OPENBLAS_CORETYPE), so that calibration gives the
// same layer wherever it runs.
//
// Each output is Σ_k x·w in Double, k ascending, plus b last, rounded to
// Float once. A product of two Floats is exact in Double (24 + 24 bits of
// significand), so a fused multiply-add and a multiply then an add give the
// same sum, and every copy below, whatever its vector width, computes the
// same chain per output.
#include "qgemm.h"
#include "threadpool.h"

#pragma clang fp contract(off)

#define QG_FL_ROWS 2
#define QG_FL_COLS 16

typedef struct qg_float_layer_job {
    const float *x, *wt, *bias;
    float *y;
    int64_t rows, k, n, part_rows;
} qg_float_layer_job;

/// Outputs [m, m + mr) × [c0, c0 + nc) of the job: each one's sum over k
/// in order. The whole tiles (QG_FL_ROWS × QG_FL_COLS, constant bounds) keep
/// their sums in registers.
static inline __attribute__((always_inline)) void qg_float_layer_tile(const qg_float_layer_job *j, int64_t m, int mr,
                                                                      int64_t c0, int nc) {
    double acc[QG_FL_ROWS][QG_FL_COLS];
    for (int r = 0; r < mr; r++)
        for (int c = 0; c < nc; c++) acc[r][c] = 0.0;
    for (int64_t i = 0; i < j->k; i++) {
        const float *w = j->wt + i * j->n + c0;
        for (int r = 0; r < mr; r++) {
            const double xv = (double)j->x[(m + r) * j->k + i];
            for (int c = 0; c < nc; c++) acc[r][c] += xv * (double)w[c];
        }
    }
    for (int r = 0; r < mr; r++)
        for (int c = 0; c < nc; c++)
            j->y[(m + r) * j->n + c0 + c] = (float)(j->bias ? acc[r][c] + (double)j->bias[c0 + c] : acc[r][c]);
}

static inline __attribute__((always_inline)) void qg_float_layer_body(const qg_float_layer_job *j, int64_t r0, int64_t count) {
    const int64_t end = r0 + count;
    for (int64_t m = r0; m < end; m += QG_FL_ROWS) {
        const int mr = end - m < QG_FL_ROWS ? (int)(end - m) : QG_FL_ROWS;
        for (int64_t c0 = 0; c0 < j->n; c0 += QG_FL_COLS) {
            const int nc = j->n - c0 < QG_FL_COLS ? (int)(j->n - c0) : QG_FL_COLS;
            if (mr == QG_FL_ROWS && nc == QG_FL_COLS) qg_float_layer_tile(j, m, QG_FL_ROWS, c0, QG_FL_COLS);
            else qg_float_layer_tile(j, m, mr, c0, nc);
        }
    }
}

#if defined(__x86_64__)
__attribute__((target("avx512f"))) static void qg_float_layer_avx512(const qg_float_layer_job *j, int64_t r0, int64_t n) {
    qg_float_layer_body(j, r0, n);
}
__attribute__((target("avx2"))) static void qg_float_layer_avx2(const qg_float_layer_job *j, int64_t r0, int64_t n) {
    qg_float_layer_body(j, r0, n);
}
#endif
static void qg_float_layer_baseline(const qg_float_layer_job *j, int64_t r0, int64_t n) { qg_float_layer_body(j, r0, n); }

static void qg_float_layer_rows(const qg_float_layer_job *j, int64_t r0, int64_t n) {
#if defined(__x86_64__)
    if (__builtin_cpu_supports("avx512f")) {
        qg_float_layer_avx512(j, r0, n);
        return;
    }
    if (__builtin_cpu_supports("avx2")) {
        qg_float_layer_avx2(j, r0, n);
        return;
    }
#endif
    qg_float_layer_baseline(j, r0, n);
}

static void qg_float_layer_task(void *ctx, int64_t t) {
    const qg_float_layer_job *j = ctx;
    const int64_t r0 = t * j->part_rows, n = j->rows - r0 < j->part_rows ? j->rows - r0 : j->part_rows;
    qg_float_layer_rows(j, r0, n);
}

void qg_float_layer(const float *x, int64_t rows, int64_t k, const float *w, int64_t n, const float *bias, float *y,
                    float *wt, int threads) {
    if (rows <= 0 || k <= 0 || n <= 0) return;
    // Wᵀ [K×N], so that a tile's weights for one k are one contiguous run.
    for (int64_t c = 0; c < n; c++)
        for (int64_t i = 0; i < k; i++) wt[i * n + c] = w[c * k + i];
    qg_float_layer_job job = {.x = x, .wt = wt, .bias = bias, .y = y, .rows = rows, .k = k, .n = n};
    // A row's work is k·n multiply-adds, not k values: parts by that.
    const int64_t parts = qg_row_parts(rows, k * n / 16 + 1, threads, &job.part_rows);
    if (parts <= 1) {
        qg_float_layer_rows(&job, 0, rows);
        return;
    }
    qg_parallel_for_rows(parts, qg_float_layer_task, &job);
}
