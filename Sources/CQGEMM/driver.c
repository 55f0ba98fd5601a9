// The blocked GEMM driver: one place for the loop nest.
//
//   for each task (m-block × n-block), in parallel:       MC rows × NC channels
//       pack the m-block of X into per-thread scratch     (the path's layout)
//       kernel->compute: for each 16-channel panel        (W panel: 16 × K bytes, prepacked)
//                            for each MR-row group        (microkernel, full K, epilogue fused)
//
// KC = K: the int32 accumulators of a tile stay in registers for the whole of
// K and the epilogue runs straight after, so no partial sums go to memory. A
// microkernel streams ~80 bytes per K-group from L1/L2 (6 rows of X as int16
// and 8 channels of W) against 12 multiply-adds, far under L2 bandwidth, so
// splitting K would buy nothing here (KERNELS.md has the figures).
//
// MC is chosen so the packed X block stays within half the L2 (1 MiB per core
// here), next to the W panel it meets. NC splits N when there are more threads
// than m-blocks, so M = 1 (LLM decode) still uses every core.
#include "driver.h"

#include <stdatomic.h>

#define QG_L2_BYTES (1 << 20)

const qg_kernel *qg_kernel_for_path(qg_path path) {
    switch (path) {
    case QG_PATH_PORTABLE: return &qg_kernel_portable;
#if defined(__x86_64__)
    case QG_PATH_AVX2: return &qg_kernel_avx2;
    case QG_PATH_AVX512VNNI: return &qg_kernel_avx512vnni;
#endif
    default: return NULL;
    }
}

typedef struct qg_plan {
    const qg_gemm_args *args;
    const qg_kernel *kernel;
    int64_t mc, nc, m_blocks, n_blocks;
    _Atomic int failed;
} qg_plan;

static int64_t qg_min(int64_t a, int64_t b) { return a < b ? a : b; }
static int64_t qg_ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

static void qg_task(void *ctx, int64_t t) {
    qg_plan *p = ctx;
    const qg_gemm_args *a = p->args;
    const int64_t mb = t / p->n_blocks, nb = t % p->n_blocks;
    const int64_t m0 = mb * p->mc, rows = qg_min(p->mc, a->m - m0);
    const int64_t n0 = nb * p->nc, n1 = qg_min(n0 + p->nc, a->n);
    void *x_block = qg_thread_scratch(p->kernel->x_block_bytes(rows, a->kp));
    if (!x_block) {
        atomic_store(&p->failed, 1);
        return;
    }
    p->kernel->pack_x(a, m0, rows, x_block);
    p->kernel->compute(a, x_block, m0, rows, n0, n1);
}

int qg_driver_run(const qg_gemm_args *a, const qg_kernel *kernel, int threads) {
    if (threads <= 0) threads = qg_cpu_count();
    const int64_t mr = kernel->mr;
    const int64_t row_bytes = (int64_t)kernel->x_block_bytes(1, a->kp);

    // MC: a multiple of MR whose packed block fits in half the L2.
    int64_t mc = (QG_L2_BYTES / 2) / (row_bytes > 0 ? row_bytes : 1) / mr * mr;
    if (mc < mr) mc = mr;
    if (mc > 16 * mr) mc = 16 * mr;
    if (mc >= a->m) mc = a->m;
    int64_t m_blocks = qg_ceil_div(a->m, mc);

    // NC: split N (in whole panels) so that there are at least `threads`
    // tasks, preferring a multiple of the thread count.
    const int64_t panels = qg_ceil_div(a->n, QG_PANEL_N);
    int64_t n_split = 1;
    if (threads > 1) {
        if (m_blocks < 4 * threads || m_blocks % threads != 0) n_split = threads;
        while (m_blocks * n_split < 2 * threads && n_split < panels) n_split *= 2;
        if (n_split > panels) n_split = panels;
    }
    const int64_t nc = qg_ceil_div(panels, n_split) * QG_PANEL_N;
    const int64_t n_blocks = qg_ceil_div(a->n, nc);

    qg_plan plan = {.args = a, .kernel = kernel, .mc = mc, .nc = nc, .m_blocks = m_blocks, .n_blocks = n_blocks};
    atomic_init(&plan.failed, 0);
    qg_parallel_for(m_blocks * n_blocks, threads, qg_task, &plan);
    if (atomic_load(&plan.failed)) return -2;
    return 0;
}
