// The loop nest around every 4-bit-weight (W4A8) microkernel, and the
// registry's answers for it. The same shape as driver.c, smaller: the
// activations arrive prepared (qg_w4_prepare_rows), so there is no packing
// step, and the output is always float, so there is one microkernel per tile.
//
//   for each task (m-block × n-block), in parallel:   MC rows × NC channels
//       for each step of S channels                   S = max(w4_main.nr, w4_few.nr)
//           for each row group of w4_main.mr rows     (the last may be shorter)
//               tile = w4_few if the group is short enough, else the
//                      main tile (w4_main_fast where the CPU has it and
//                      the path prefers it there)
//               for each tile.nr channels of the step (full K, epilogue fused)
//
// A step's weights (S·K/2 bytes) are read once from memory and then from the
// caches for every row group of the m-block; MC keeps the m-block's rows
// (MC·K bytes) within a quarter of the L2, next to them, but is never less
// than one row group (amxint8's 128 rows can exceed that quarter at large K). With several threads
// the call splits M when it has at least two row groups per thread, else N
// (in whole 16-channel panels).
//
// With zero points (qg_w4_args.x_shift) the tiles run as if the activations
// were symmetric, with scales of 1 and no bias, so each output holds its
// group sum s; the call's last step (w4_zero_points.c) follows the tiles of
// each row group and step of channels, on their outputs. Such calls run in chunks of at most QG_W4_UNIT_ROWS rows,
// the length of the scales of 1 the tiles read.
#include "driver.h"
#include "threadpool.h"

#define QG_W4_UNIT_ROWS 1024
static const float qg_w4_unit_scales[QG_W4_UNIT_ROWS] = {[0 ... QG_W4_UNIT_ROWS - 1] = 1.0f};

typedef struct qg_w4_plan {
    const qg_w4_args *args;
    /// NULL, or the call's own arguments, whose last step follows each row
    /// group's tiles of a step:
    /// row r of `args` is row r + row0 of these.
    const qg_w4_args *zero_points;
    int64_t row0;
    const qg_w4_tile *main_tile, *few;
    int64_t step, m_blocks, nc, n_blocks;
} qg_w4_plan;

static void qg_w4_task(void *ctx, int64_t t) {
    const qg_w4_plan *p = ctx;
    const qg_w4_args *a = p->args;
    const qg_w4_tile *main_tile = p->main_tile, *few = p->few;
    const int64_t mb = t / p->n_blocks, nb = t % p->n_blocks, mr = main_tile->mr;
    int64_t m0;
    const int64_t block_rows = qg_block_rows(a->m, mr, p->m_blocks, mb, &m0);
    const int64_t m1 = m0 + block_rows;
    const int64_t n0 = nb * p->nc, n1 = qg_min(n0 + p->nc, a->n);
    for (int64_t n = n0; n < n1; n += p->step) {
        const int64_t n_end = qg_min(n + p->step, n1);
        for (int64_t r = m0; r < m1; r += mr) {
            const int rows = (int)qg_min(mr, m1 - r);
            const qg_w4_tile *tile = few->run && rows <= few->mr ? few : main_tile;
            for (int64_t c = n; c < n_end; c += tile->nr) tile->run(a, rows, r, c, (int)qg_min(tile->nr, n_end - c));
            if (p->zero_points) qg_w4_add_zero_points(p->zero_points, p->row0 + r, rows, n, n_end - n);
        }
    }
}

int64_t qg_w4_driver_block_rows(const qg_kernel *kernel, int64_t kp) {
    const int64_t mr = kernel->w4_main.mr;
    const int64_t l2 = qg_cpu_cache_bytes(2) > 0 ? qg_cpu_cache_bytes(2) : 1024 * 1024;
    const int64_t mc = l2 / 4 / (kp > 0 ? kp : 1) / mr * mr;
    return mc < mr ? mr : mc;
}

/// One pass of the loop nest over `a`'s rows (see qg_w4_plan for the rest).
static void qg_w4_driver_pass(const qg_w4_args *a, const qg_w4_args *zero_points, int64_t row0, const qg_kernel *kernel,
                              int threads) {
    // The tiles are chosen once per call, not per task.
    const qg_w4_tile *main_tile = qg_w4_main_tile(kernel), *few = &kernel->w4_few;
    const int64_t mr = main_tile->mr, kp = qg_w4_packed_k(a->k, a->group);
    const int64_t step = few->run && few->nr > main_tile->nr ? few->nr : main_tile->nr;
    const int64_t mc = qg_w4_driver_block_rows(kernel, kp);
    const int64_t row_groups = qg_ceil_div(a->m, mr), panels = qg_ceil_div(a->n, QG_W4_PANEL_N);
    int64_t m_blocks = qg_ceil_div(a->m, mc), n_blocks = 1;
    if (threads > 1) {
        if (row_groups >= 2 * (int64_t)threads) m_blocks = qg_min(qg_ceil_div(m_blocks, threads) * threads, row_groups);
        else n_blocks = qg_min(threads, panels);
    }
    // N is shared out in whole panels, not whole steps: a step of 64
    // channels would leave 12 threads 11 blocks of 384 at N = 4096, where
    // panels give 12 of 352 (a block's last tile is then narrower).
    const int64_t nc = qg_ceil_div(panels, n_blocks) * QG_W4_PANEL_N;
    n_blocks = qg_ceil_div(a->n, nc);
    qg_w4_plan plan = {.args = a, .zero_points = zero_points, .row0 = row0, .main_tile = main_tile, .few = few,
                       .step = step, .m_blocks = m_blocks, .nc = nc, .n_blocks = n_blocks};
    qg_parallel_for(m_blocks * n_blocks, threads, qg_w4_task, &plan);
}

int qg_w4_driver_run(const qg_w4_args *a, const qg_kernel *kernel, int threads) {
    threads = qg_pool_threads(threads <= 0 ? qg_cpu_count() : threads);
    if (!a->x_shift) {
        qg_w4_driver_pass(a, NULL, 0, kernel, threads);
        return 0;
    }
    const int64_t groups = qg_w4_groups(a->k, a->group);
    int used = 1; // the most threads any chunk ran on: what the call reports
    for (int64_t r0 = 0; r0 < a->m; r0 += QG_W4_UNIT_ROWS) {
        qg_w4_args chunk = *a;
        chunk.m = qg_min(QG_W4_UNIT_ROWS, a->m - r0);
        chunk.x = a->x + r0 * a->ldx;
        chunk.x_offset = a->x_offset + r0 * groups;
        chunk.x_scale = qg_w4_unit_scales;
        chunk.bias = NULL;
        chunk.y = a->y + r0 * a->ldy;
        chunk.x_shift = NULL;
        chunk.w_sum = NULL;
        qg_w4_driver_pass(&chunk, a, r0, kernel, threads);
        used = qg_threads_of_last_call() > used ? qg_threads_of_last_call() : used;
    }
    qg_set_threads_of_last_call(used);
    return 0;
}

int qg_w4_path_has_kernel(int path) {
    if (path == QG_PATH_REFERENCE) return 1;
    const qg_kernel *kernel = qg_kernel_for_path(path);
    return kernel != NULL && kernel->w4_main.run != NULL;
}

int qg_w4_path_best(void) {
    for (int p = qg_kernel_count; p >= 1; p--) {
        const qg_kernel *k = qg_kernels[p - 1];
        if (!k->test_only && k->w4_main.run && k->is_supported()) return p;
    }
    return QG_PATH_REFERENCE;
}

int64_t qg_w4_path_block_rows(int path, int64_t k, int64_t group) {
    const qg_kernel *kernel = qg_kernel_for_path(path);
    if (!kernel || !kernel->w4_main.run || k < 1 || group < 1) return 0;
    return qg_w4_driver_block_rows(kernel, qg_w4_packed_k(k, group));
}

const char *qg_w4_path_ukernel(int path) {
    if (path == QG_PATH_REFERENCE) return "qg_w4_gemm_reference";
    const qg_kernel *kernel = qg_kernel_for_path(path);
    return kernel && kernel->w4_main.run ? qg_w4_main_tile(kernel)->name : NULL;
}

int qg_w4_gemm(const qg_w4_args *a, int path, int threads) {
    if (!qg_path_is_supported(path) || !qg_w4_path_has_kernel(path)) return -1;
    // As qg_gemm; a group size outside the layout's would divide by zero or
    // read a layout no path packs.
    if (a->m < 0 || a->n < 0 || a->k < 1 || a->group < 8 || a->group > QG_W4_MAX_GROUP || a->group % 8) return -3;
    // The tiles read whole padded rows (the AMX tile up to the next 64
    // bytes of a group past 64): rows closer than that would be read past.
    if (a->m > 0 && a->n > 0 && (a->ldx < qg_w4_row_bytes(a->k, a->group) || a->ldy < a->n)) return -3;
    if (a->m == 0 || a->n == 0) {
        qg_set_threads_of_last_call(1);
        return 0;
    }
    if (path == QG_PATH_REFERENCE) {
        qg_set_threads_of_last_call(1);
        qg_w4_gemm_reference(a);
        return 0;
    }
    return qg_w4_driver_run(a, qg_kernel_for_path(path), qg_threads_for_work(a->m, a->n, a->k, threads));
}
