// The float layer's output, Y = X·Wᵀ + b, for calibrating a static layer's
// output parameters: the same bits on every CPU, vector width and thread
// count, which a BLAS does not give (its kernels' summation order follows
// the CPU it detects, or OPENBLAS_CORETYPE), so that calibration gives the
// same layer wherever it runs.
//
// Each output is Σ_k x·w in Double, k ascending, plus b last, rounded to
// Float once (qg_float_layer_sums gives the sums themselves). A product of
// two Floats is exact in Double (24 + 24 bits of significand), so a fused
// multiply-add and a multiply then an add give the same sum, and every copy
// below, whatever its vector width, computes the same chain per output.
#include "qgemm.h"
#include "threadpool.h"

// Contraction allowed: a fused multiply-add of an exact product rounds as
// the add alone, so the copies with FMA give the bits of those without.
#pragma clang fp contract(on)

/// The widest tile: 4 rows × 16 columns of Double sums (eight zmm registers
/// with AVX-512; the narrower copies take 2 rows, which their registers hold).
#define QG_FL_MAX_ROWS 4
#define QG_FL_COLS 16

typedef struct qg_float_layer_job {
    const float *x, *wt, *bias;
    float *y;
    double *sums; // instead of y: each output's Double sum, without bias or rounding
    int64_t rows, k, n, part_rows;
    int copy; // the copy of the code every part runs (qg_float_layer_copy_runs)
} qg_float_layer_job;

/// Outputs [m, m + mr) × [c0, c0 + nc) of the job: each one's sum over k
/// in order. Whole tiles (constant bounds) keep their sums in registers.
static inline __attribute__((always_inline)) void qg_float_layer_tile(const qg_float_layer_job *j, int64_t m, int mr,
                                                                      int64_t c0, int nc) {
    double acc[QG_FL_MAX_ROWS][QG_FL_COLS];
    for (int r = 0; r < mr; r++)
        for (int c = 0; c < nc; c++) acc[r][c] = 0.0;
    const float *panel = j->wt + c0 * j->k; // this panel's K rows of 16, one after another
    for (int64_t i = 0; i < j->k; i++) {
        const float *w = panel + i * QG_FL_COLS;
        for (int r = 0; r < mr; r++) {
            const double xv = (double)j->x[(m + r) * j->k + i];
            for (int c = 0; c < nc; c++) acc[r][c] += xv * (double)w[c];
        }
    }
    if (j->sums) {
        for (int r = 0; r < mr; r++)
            for (int c = 0; c < nc; c++) j->sums[(m + r) * j->n + c0 + c] = acc[r][c];
        return;
    }
    for (int r = 0; r < mr; r++)
        for (int c = 0; c < nc; c++)
            j->y[(m + r) * j->n + c0 + c] = (float)(j->bias ? acc[r][c] + (double)j->bias[c0 + c] : acc[r][c]);
}

/// Rows [r0, r0 + count): a panel of 16 columns of Wᵀ (K·64 bytes in a
/// row, in the L2 up to K of several thousand) at a time, through every row
/// of the part.
static inline __attribute__((always_inline)) void qg_float_layer_body(const qg_float_layer_job *j, int64_t r0, int64_t count,
                                                                      const int rows) {
    const int64_t end = r0 + count;
    for (int64_t c0 = 0; c0 < j->n; c0 += QG_FL_COLS) {
        const int nc = j->n - c0 < QG_FL_COLS ? (int)(j->n - c0) : QG_FL_COLS;
        for (int64_t m = r0; m < end; m += rows) {
            const int mr = end - m < rows ? (int)(end - m) : rows;
            if (mr == rows && nc == QG_FL_COLS) qg_float_layer_tile(j, m, rows, c0, QG_FL_COLS);
            else qg_float_layer_tile(j, m, mr, c0, nc);
        }
    }
}

#if defined(__x86_64__)
__attribute__((target("avx512f"))) static void qg_float_layer_avx512(const qg_float_layer_job *j, int64_t r0, int64_t n) {
    qg_float_layer_body(j, r0, n, 4);
}
__attribute__((target("avx2,fma"))) static void qg_float_layer_avx2(const qg_float_layer_job *j, int64_t r0, int64_t n) {
    qg_float_layer_body(j, r0, n, 2);
}
#endif
static void qg_float_layer_baseline(const qg_float_layer_job *j, int64_t r0, int64_t n) { qg_float_layer_body(j, r0, n, 2); }

/// Whether this CPU runs copy `copy` (0 the baseline, 1 AVX2 with FMA, 2
/// AVX-512, which has FMA too), by the core's own CPU detection (cpu.c).
static int qg_float_layer_copy_runs(int copy) {
    const qg_cpu_features *f = qg_cpu_get_features();
    switch (copy) {
    case 0: return 1;
#if defined(__x86_64__)
    case 1: return f->avx2 && f->fma;
    case 2: return f->avx512f && f->fma;
#endif
    default: (void)f; return 0;
    }
}

static void qg_float_layer_rows_with(int copy, const qg_float_layer_job *j, int64_t r0, int64_t n) {
    switch (copy) {
#if defined(__x86_64__)
    case 2: qg_float_layer_avx512(j, r0, n); return;
    case 1: qg_float_layer_avx2(j, r0, n); return;
#endif
    default: qg_float_layer_baseline(j, r0, n); return;
    }
}

/// The widest copy this CPU runs.
static int qg_float_layer_widest(void) {
    int copy = 2;
    while (copy > 0 && !qg_float_layer_copy_runs(copy)) copy--;
    return copy;
}

static void qg_float_layer_task(void *ctx, int64_t t) {
    const qg_float_layer_job *j = ctx;
    const int64_t r0 = t * j->part_rows, n = j->rows - r0 < j->part_rows ? j->rows - r0 : j->part_rows;
    qg_float_layer_rows_with(j->copy, j, r0, n);
}

int64_t qg_float_layer_scratch_count(int64_t k, int64_t n) { return (n + QG_FL_COLS - 1) / QG_FL_COLS * QG_FL_COLS * k; }

/// qg_float_layer on `threads`, or with `copy` ≥ 0 on the calling thread
/// with that copy (-1 when this CPU lacks it).
static int qg_float_layer_run(int copy, const float *x, int64_t rows, int64_t k, const float *w, int64_t n, const float *bias,
                              float *y, double *sums, float *wt, int threads) {
    if (copy >= 0 && !qg_float_layer_copy_runs(copy)) return -1;
    if (rows <= 0 || k <= 0 || n <= 0) return 0;
    // Wᵀ in panels of 16 columns, each panel's K rows of 16 one after
    // another: a tile's weights for one k are one 64-byte run, and a panel
    // is one stretch of memory (Wᵀ as [K×N] put each k's 16 columns N floats
    // apart, a page apart at N = 1024, and the walk down K missed the TLB).
    // Columns past N are 0 and never stored.
    for (int64_t c0 = 0; c0 < n; c0 += QG_FL_COLS)
        for (int64_t i = 0; i < k; i++)
            for (int c = 0; c < QG_FL_COLS; c++) wt[c0 * k + i * QG_FL_COLS + c] = c0 + c < n ? w[(c0 + c) * k + i] : 0.0f;
    qg_float_layer_job job = {.x = x, .wt = wt, .bias = bias, .y = y, .sums = sums, .rows = rows, .k = k, .n = n,
                              .copy = copy >= 0 ? copy : qg_float_layer_widest()};
    // A row's work is k·n multiply-adds, not k values: parts by that. A
    // chosen copy runs on the calling thread.
    const int64_t parts = copy >= 0 ? 1 : qg_row_parts(rows, k * n / 16 + 1, threads, &job.part_rows);
    if (parts <= 1) {
        qg_float_layer_rows_with(job.copy, &job, 0, rows);
        return 0;
    }
    qg_parallel_for_rows(parts, qg_float_layer_task, &job);
    return 0;
}

void qg_float_layer(const float *x, int64_t rows, int64_t k, const float *w, int64_t n, const float *bias, float *y,
                    float *wt, int threads) {
    (void)qg_float_layer_run(-1, x, rows, k, w, n, bias, y, NULL, wt, threads);
}

void qg_float_layer_sums(const float *x, int64_t rows, int64_t k, const float *w, int64_t n, double *sums, float *wt,
                         int threads) {
    (void)qg_float_layer_run(-1, x, rows, k, w, n, NULL, NULL, sums, wt, threads);
}

int qg_float_layer_copy(int copy, const float *x, int64_t rows, int64_t k, const float *w, int64_t n, const float *bias,
                        float *y, float *wt) {
    return qg_float_layer_run(copy, x, rows, k, w, n, bias, y, NULL, wt, 1);
}
