// The blocked GEMM driver: the one place for the loop nest around every
// microkernel (BLIS's gemm_ker_var2 in spirit).
//
//   for each task (m-block × n-block), in parallel:       MC rows × NC channels
//       pack the m-block of X into per-thread scratch     (the kernel's layout)
//       for each step of S channels                       S = max(main.nr, few_rows.nr)
//           for each row group of main.mr rows            (the last may be shorter)
//               tile = few_rows if the group is short enough, else main
//               for each tile.nr channels of the step     (the last may be narrower)
//                   tile.run                              (full K, epilogue fused)
//
// KC = K: a tile's int32 accumulators stay in registers for the whole of K and
// the epilogue runs straight after, so no partial sums go to memory (KERNELS.md
// has the figures). MC comes from the kernel's own block budget; NC splits N,
// in whole steps, when there are more threads than m-blocks, so M = 1 (LLM
// decode) still uses every core.
#include "driver.h"

#include <stdatomic.h>

typedef struct qg_plan {
    const qg_gemm_args *args;
    const qg_kernel *kernel;
    /// The kernel's per-call params (init_params), or NULL.
    const void *params;
    int64_t mc, nc, m_blocks, n_blocks, step;
    _Atomic int failed;
} qg_plan;

static int64_t qg_min(int64_t a, int64_t b) { return a < b ? a : b; }
static int64_t qg_max(int64_t a, int64_t b) { return a > b ? a : b; }
static int64_t qg_ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

/// Channels the driver hands out together: a multiple of both tiles' nr.
static int64_t qg_step(const qg_kernel *kernel) {
    return kernel->few_rows.run ? qg_max(kernel->main.nr, kernel->few_rows.nr) : kernel->main.nr;
}

int64_t qg_driver_block_rows(const qg_kernel *kernel, int64_t kp, int64_t m) {
    const int64_t mr = kernel->main.mr;
    const int64_t row_bytes = (int64_t)kernel->x_block_bytes(1, kp);
    // A multiple of MR whose packed block fits the kernel's budget.
    int64_t mc = kernel->x_block_target / (row_bytes > 0 ? row_bytes : 1) / mr * mr;
    if (mc < mr) mc = mr;
    if (mc > kernel->max_row_groups * mr) mc = kernel->max_row_groups * mr;
    return mc >= m ? m : mc;
}

/// The micro-loops over one packed m-block and channels [n0, n1).
static void qg_block(const qg_gemm_args *a, const qg_kernel *kernel, const void *params, const uint8_t *x_block,
                     int64_t m0, int64_t rows, int64_t n0, int64_t n1, int64_t step) {
    const int64_t mr = kernel->main.mr;
    const size_t group_bytes = kernel->x_block_bytes(mr, a->kp);
    for (int64_t n = n0; n < n1; n += step) {
        const int64_t n_end = qg_min(n + step, n1);
        for (int64_t r = 0; r < rows; r += mr) {
            const int R = (int)qg_min(mr, rows - r);
            const qg_tile *tile = kernel->few_rows.run && R <= kernel->few_rows.mr ? &kernel->few_rows : &kernel->main;
            const void *group = x_block + (size_t)(r / mr) * group_bytes;
            for (int64_t c = n; c < n_end; c += tile->nr)
                tile->run(a, group, R, m0 + r, c, (int)qg_min(tile->nr, n_end - c), params);
        }
    }
}

static void qg_task(void *ctx, int64_t t) {
    qg_plan *p = ctx;
    const qg_gemm_args *a = p->args;
    const int64_t mb = t / p->n_blocks, nb = t % p->n_blocks;
    const int64_t m0 = mb * p->mc, rows = qg_min(p->mc, a->m - m0);
    const int64_t n0 = nb * p->nc, n1 = qg_min(n0 + p->nc, a->n);
    void *x_block = qg_thread_scratch(QG_SCRATCH_X, p->kernel->x_block_bytes(rows, a->kp));
    if (!x_block) {
        atomic_store(&p->failed, 1);
        return;
    }
    p->kernel->pack_x(a, m0, rows, x_block);
    qg_block(a, p->kernel, p->params, x_block, m0, rows, n0, n1, p->step);
}

int qg_driver_run(const qg_gemm_args *a, const qg_kernel *kernel, int threads) {
    if (threads <= 0) threads = qg_cpu_count();
    const int64_t mc = qg_driver_block_rows(kernel, a->kp, a->m);
    const int64_t m_blocks = qg_ceil_div(a->m, mc);

    // NC: split N (in whole steps) so that there are at least `threads`
    // tasks, preferring a multiple of the thread count.
    const int64_t step = qg_step(kernel);
    const int64_t steps = qg_ceil_div(a->n, step);
    int64_t n_split = 1;
    if (threads > 1) {
        if (m_blocks < 4 * threads || m_blocks % threads != 0) n_split = threads;
        while (m_blocks * n_split < 2 * threads && n_split < steps) n_split *= 2;
        if (n_split > steps) n_split = steps;
    }
    const int64_t nc = qg_ceil_div(steps, n_split) * step;
    const int64_t n_blocks = qg_ceil_div(a->n, nc);

    // The kernel's per-call params, made once here on the calling thread; the
    // tasks only read them, and the call returns after the last task.
    void *params = NULL;
    if (kernel->init_params) {
        params = qg_thread_scratch(QG_SCRATCH_PARAMS, kernel->params_bytes(a));
        if (!params) return -2;
        kernel->init_params(a, params);
    }

    qg_plan plan = {.args = a, .kernel = kernel, .params = params, .mc = mc, .nc = nc, .m_blocks = m_blocks, .n_blocks = n_blocks,
                    .step = step};
    atomic_init(&plan.failed, 0);
    qg_parallel_for(m_blocks * n_blocks, threads, qg_task, &plan);
    return atomic_load(&plan.failed) ? -2 : 0;
}
