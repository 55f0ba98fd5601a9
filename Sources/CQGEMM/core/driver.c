// The blocked GEMM driver: the one place for the loop nest around every
// microkernel (BLIS's gemm_ker_var2 in spirit).
//
//   for each task (m-block × n-block), in parallel:       MC rows × NC channels
//       pack the m-block of X into per-thread scratch     (the kernel's layout)
//       for each step of S channels                       S = max(main.nr, few_rows.nr)
//           prepare the step's weights once               (kernels with prepare_weights:
//                                                          avx2 on Zen 1 widens them)
//           for each row group of main.mr rows            (the last may be shorter)
//               tile = few_rows if the group is short enough, else main
//               for each tile.nr channels of the step     (the last may be narrower)
//                   tile.run[kind]                        (full K, epilogue fused)
//
// (the two middle loops swap places when the block's weights fit in half the
// L2: qg_driver_run says why).
//
// The plan is made once per call, before any task: the tiles' microkernels
// for this call's output kind (output type and rounding), the kernel's
// prepared params, the block sizes and the split.
//
// KC = K: a tile's int32 accumulators stay in registers for the whole of K and
// the epilogue runs straight after, so no partial sums go to memory (KERNELS.md
// has the figures). MC is the most rows the kernel's block budget allows
// (for weights past half the L3, as many as the tile and the L3 allow); the
// rows are shared out in blocks as even as whole row groups allow. With
// several threads the call splits M alone (into a multiple of the thread
// count) or, when M's row groups do not share out evenly (M = 1, LLM decode;
// 17 groups on two threads), N in whole steps too: whichever leaves the
// busiest thread least work (qg_choose_split).
#include "driver.h"
#include "threadpool.h"

#include <stdatomic.h>

/// One call, planned once before any tile runs: the microkernels of this
/// call's output kind, the kernel's prepared params, and how the work is cut.
/// The tasks only read it.
typedef struct qg_plan {
    const qg_gemm_args *args;
    const qg_kernel *kernel;
    /// The main tile's and the few-rows tile's microkernel for this call's
    /// output kind (few_run NULL: every row group takes the main tile).
    qg_ukernel_fn main_run, few_run;
    /// Row groups of at most few_mr rows take few_run.
    int few_mr;
    /// The kernel's per-call params (init_params), or NULL.
    const void *params;
    int64_t nc, m_blocks, n_blocks, step;
    /// Row groups outside the steps of channels (qg_block).
    int rows_outer;
    /// Whether the kernel prepares this call's weights, in blocks of at least
    /// its prepare_min_rows rows.
    int prepares;
    _Atomic int failed;
} qg_plan;


/// Channels the driver hands out together: a multiple of both tiles' nr.
static int64_t qg_step(const qg_kernel *kernel) {
    return qg_tile_exists(&kernel->few_rows) ? qg_max(kernel->main.nr, kernel->few_rows.nr) : kernel->main.nr;
}

int64_t qg_driver_block_rows(const qg_kernel *kernel, int64_t kp, int64_t m, int64_t n) {
    const int64_t mr = kernel->main.mr;
    // One row's share of a whole row group: amxint8, neondot and neoni8mm
    // round x_block_bytes up to whole groups (32, 6 and 8 rows), so one row
    // asked for alone would count as a group and MC would come out MR times
    // too small (amxint8 at K = 4096: 32 rows instead of 128, so M = 128 in
    // four blocks, each streaming every weight).
    const int64_t row_bytes = (int64_t)kernel->x_block_bytes(mr, kp) / mr;
    // Weights past half the L3 do not stay there from one m-block to the
    // next: every m-block streams all of them from memory again. Then as few
    // m-blocks as the tile allows, whatever the X block's budget; each step
    // of channels reads the block from the L3 instead, 1/64 of a byte per
    // multiply-add against 1/MC for the weights. Zen 5 (32 MiB of L3), one
    // thread, 128×11008×4096 (45 MB of weights): 891 GOP/s in three blocks
    // of 44 or 40 rows, 971 in one (a 1.5 MiB budget); 64×11008×4096 862 →
    // 946; fastest of three interleaved rounds. The X blocks of every core
    // share the L3 with what streams past: together at most a quarter of it,
    // in whole row groups, and never fewer rows than the budget gives.
    const int64_t l3 = qg_cpu_cache_bytes(3);
    int64_t big = 0;
    if (l3 > 0 && n > 0 && kp > 0 && n > l3 / 2 / kp) {
        const int64_t fit = l3 / 4 / qg_cpu_count() / (row_bytes > 0 ? row_bytes : 1) / mr * mr;
        big = qg_min(kernel->max_row_groups * mr, fit);
    }
    // The multiple of MR nearest to the rows the kernel's budget holds (not
    // the one below: with 12-row groups a 512 KiB budget at K = 4096 holds
    // 128 rows, and rounding down to 120 split M = 128 in two blocks, which
    // streams every weight twice).
    const int64_t budget_rows = kernel->x_block_target / (row_bytes > 0 ? row_bytes : 1);
    int64_t mc = (budget_rows + mr / 2) / mr * mr;
    if (mc < mr) mc = mr;
    if (mc > kernel->max_row_groups * mr) mc = kernel->max_row_groups * mr;
    if (big > mc) mc = big;
    return mc >= m ? m : mc;
}

/// The tiles of the row group at row r of an m-block (from m0, `rows` rows
/// in all, packed row groups `group_bytes` apart), channels [n, n_end).
static void qg_row_group(const qg_plan *p, const uint8_t *x_block, size_t group_bytes, int64_t m0, int64_t rows,
                         int64_t r, int64_t n, int64_t n_end) {
    const qg_gemm_args *a = p->args;
    const int64_t mr = p->kernel->main.mr;
    const int R = (int)qg_min(mr, rows - r);
    const int few = p->few_run && R <= p->few_mr;
    const qg_ukernel_fn run = few ? p->few_run : p->main_run;
    const int64_t nr = few ? p->kernel->few_rows.nr : p->kernel->main.nr;
    const void *group = x_block + (size_t)(r / mr) * group_bytes;
    for (int64_t c = n; c < n_end; c += nr) run(a, group, R, m0 + r, c, (int)qg_min(nr, n_end - c), p->params);
}

/// The micro-loops over one packed m-block and channels [n0, n1): the row
/// groups inside each step of channels, so that the step's weight panels
/// stay near while the block's rows pass; or, when the plan says the block's
/// weights fit in the L2 anyway (rows_outer), every step inside each row
/// group, so that a row group writes its rows from end to end.
static void qg_block(const qg_plan *p, uint8_t *x_block, int64_t m0, int64_t rows, int64_t n0, int64_t n1,
                     void *w_scratch) {
    const int64_t mr = p->kernel->main.mr;
    const size_t group_bytes = p->kernel->x_block_bytes(mr, p->args->kp);
    if (p->rows_outer) {
        if (w_scratch) p->kernel->prepare_weights(p->args, p->params, n0, n1, x_block, rows, w_scratch);
        for (int64_t r = 0; r < rows; r += mr) qg_row_group(p, x_block, group_bytes, m0, rows, r, n0, n1);
        return;
    }
    for (int64_t n = n0; n < n1; n += p->step) {
        const int64_t n_end = qg_min(n + p->step, n1);
        if (w_scratch) p->kernel->prepare_weights(p->args, p->params, n, n_end, x_block, rows, w_scratch);
        for (int64_t r = 0; r < rows; r += mr) qg_row_group(p, x_block, group_bytes, m0, rows, r, n, n_end);
    }
}

static void qg_task(void *ctx, int64_t t) {
    qg_plan *p = ctx;
    // A task that found no scratch fails the call (−2): the tasks after it
    // write nothing more of an output the caller will not use.
    if (atomic_load_explicit(&p->failed, memory_order_relaxed)) return;
    const qg_gemm_args *a = p->args;
    const int64_t mb = t / p->n_blocks, nb = t % p->n_blocks;
    int64_t m0;
    const int64_t rows = qg_block_rows(a->m, p->kernel->main.mr, p->m_blocks, mb, &m0);
    const int64_t n0 = nb * p->nc, n1 = qg_min(n0 + p->nc, a->n);
    void *x_block = qg_thread_scratch(QG_SCRATCH_X, p->kernel->x_block_bytes(rows, a->kp));
    if (!x_block) {
        atomic_store(&p->failed, 1);
        return;
    }
    // Scratch for weights the kernel prepares once per block: a step's
    // channels, or the block's where every step runs inside each row group.
    const size_t w_bytes = p->prepares && rows >= p->kernel->prepare_min_rows
                               ? p->kernel->weights_scratch_bytes(a, p->params, p->rows_outer ? n1 - n0 : p->step)
                               : 0;
    void *w_scratch = w_bytes ? qg_thread_scratch(QG_SCRATCH_WEIGHTS, w_bytes) : NULL;
    if (w_bytes && !w_scratch) {
        atomic_store(&p->failed, 1);
        return;
    }
    p->kernel->pack_x(a, m0, rows, x_block);
    if (p->kernel->enter) p->kernel->enter();
    qg_block(p, x_block, m0, rows, n0, n1, w_scratch);
    if (p->kernel->leave) p->kernel->leave();
}

/// The work (rows × steps) of the busiest of `threads` equally fast threads
/// when the pool hands out the tasks of `m_blocks` × n-blocks of
/// `steps_per_block` steps (of `steps` in all) one at a time, in order, each
/// to the thread free first. Beyond QG_SPLIT_SIMULATED task-thread pairs
/// (where the handout evens out anyway, and simulating would cost a large
/// call's planner too much), a bound: each thread's share of the tasks, all
/// counted at the biggest.
enum { QG_SPLIT_SIMULATED = 4096, QG_SPLIT_MAX_THREADS = 64 };
static int64_t qg_busiest_work(int64_t m, int64_t mr, int64_t m_blocks, int64_t steps, int64_t steps_per_block,
                               int threads) {
    const int64_t n_blocks = qg_ceil_div(steps, steps_per_block), tasks = m_blocks * n_blocks;
    if (threads > QG_SPLIT_MAX_THREADS || tasks * threads > QG_SPLIT_SIMULATED) {
        const int64_t biggest = qg_min(qg_ceil_div(qg_ceil_div(m, mr), m_blocks) * mr, m);
        return qg_ceil_div(tasks, threads) * biggest * steps_per_block;
    }
    int64_t busy[QG_SPLIT_MAX_THREADS] = {0}, busiest = 0;
    for (int64_t t = 0; t < tasks; t++) {
        const int64_t mb = t / n_blocks, nb = t % n_blocks;
        int free_first = 0;
        for (int i = 1; i < threads; i++)
            if (busy[i] < busy[free_first]) free_first = i;
        busy[free_first] += qg_block_rows(m, mr, m_blocks, mb, NULL) * qg_min(steps_per_block, steps - nb * steps_per_block);
        busiest = qg_max(busiest, busy[free_first]);
    }
    return busiest;
}

/// The rows of the smallest of `blocks` m-blocks (qg_block_rows): the first
/// has the fewest whole groups, the last M's tail.
static int64_t qg_smallest_block_rows(int64_t m, int64_t mr, int64_t blocks) {
    return qg_min(qg_block_rows(m, mr, blocks, 0, NULL), qg_block_rows(m, mr, blocks, blocks - 1, NULL));
}

/// Chooses between two ways of giving `threads` threads work, by the work of
/// the busiest thread (qg_busiest_work): (a) split M alone into a multiple of
/// `threads` even blocks, which reads and packs each row of X once; (b) keep
/// the fewest m-blocks and split N in whole steps, for when M has too few row
/// groups to share out evenly (M = 1, 64 rows on two threads, or 17 groups on
/// two: 9 and 8 groups, where four tasks of half the steps come out even).
/// (b) reads and packs each row of X once per n-block, so it must leave the
/// busiest thread less work by more than 1/32 of (a)'s; where the tiles read
/// X in place, nothing is packed twice, and 1/64 is enough to pay for its
/// extra tasks. Zen 5, two threads, uint8 X in place, fastest of five
/// interleaved rounds, GOP/s, 1/32 → 1/64: 197×768×768 (96 and 101 rows, or
/// four tasks of half the steps: 2.5 % less work) 2,015 → 2,076,
/// 197×768×3072 1,989 → 2,054, 196×2304×256 2,098 → 2,124, 197×3072×768
/// 2,110 → 2,134; with no margin at all, 3136×64×256 took N too for a gain of
/// 0.25 % and ran 1,429 → 1,277 (34 tasks of about 4 µs each). One
/// exception: where (a) would cut blocks of fewer than `min_block_rows` rows,
/// which the kernel does not prepare, and the fewest blocks are not that
/// small, (b) is taken for no more work than (a), on any thread count.
qg_split qg_choose_split(int64_t m, int64_t mr, int64_t mc, int64_t steps, int64_t step, int threads,
                         int x_in_place, int64_t min_block_rows) {
    const int64_t groups = qg_ceil_div(m, mr), fewest = qg_ceil_div(m, mc);
    qg_split split = {.m_blocks = fewest, .nc = steps * step, .n_blocks = 1};
    if (threads <= 1) return split;
    const int64_t ma = qg_min(qg_ceil_div(fewest, threads) * threads, groups);
    const int64_t busiest_a = qg_busiest_work(m, mr, ma, steps, steps, threads);
    // N in about 2·threads / fewest blocks, a power of two times the threads;
    // where the simulation is cheap (few m-blocks, at most 8 threads), every
    // count of n-blocks up to 4·threads, since a power of two can cut the steps
    // unevenly (6 steps in blocks of 2 on two threads: three tasks, one
    // thread doing two; blocks of 3 come out even).
    int64_t n_split = threads;
    while (fewest * n_split < 2 * (int64_t)threads && n_split < steps) n_split *= 2;
    if (n_split > steps) n_split = steps;
    int64_t steps_per_block = qg_ceil_div(steps, n_split);
    int64_t busiest_b = qg_busiest_work(m, mr, fewest, steps, steps_per_block, threads);
    // The search simulates up to 4T − 1 splits; on at most 8 threads and
    // with its one simulation at most an eighth of the cap, all of them
    // together stay within about 4,096·T steps of the handout.
    const int64_t most_blocks = qg_min(steps, 4 * (int64_t)threads);
    if (threads <= 8 && fewest * most_blocks * threads <= QG_SPLIT_SIMULATED / 8) {
        // Strictly less work only: ties keep the power of two (decode's four
        // quarters on two threads), then the fewest n-blocks.
        for (int64_t blocks = 2; blocks <= most_blocks; blocks++) {
            const int64_t spb = qg_ceil_div(steps, blocks);
            if (spb == qg_ceil_div(steps, blocks - 1)) continue; // the same blocks as one fewer
            const int64_t work = qg_busiest_work(m, mr, fewest, steps, spb, threads);
            if (work < busiest_b) busiest_b = work, steps_per_block = spb;
        }
    }
    const int64_t nb = qg_ceil_div(steps, steps_per_block);
    // Where M's split would cut blocks too small for the kernel to prepare
    // their weights and whole blocks are not, N is split instead for no more
    // work: the avx2 path on Zen 1 widens the weights once per block of 32
    // rows or more (measured on two threads, C harness through qg_gemm, fastest of two:
    // 32×4096×4096 82.1 → 86.2 GOP/s, 48×4096×4096 82.0 → 88.6,
    // 32×1024×1024 84.3 → 85.5).
    const int keep_blocks_prepared = min_block_rows > 0 && m >= 1 && qg_smallest_block_rows(m, mr, ma) < min_block_rows &&
                                     qg_smallest_block_rows(m, mr, fewest) >= min_block_rows;
    if (busiest_b < busiest_a - busiest_a / (x_in_place ? 64 : 32) || (keep_blocks_prepared && busiest_b <= busiest_a))
        split = (qg_split){.m_blocks = fewest, .nc = steps_per_block * step, .n_blocks = nb};
    else split.m_blocks = ma;
    return split;
}

int qg_driver_run(const qg_gemm_args *a, const qg_kernel *kernel, int threads) {
    return qg_driver_run_in_order(a, kernel, threads, QG_LOOP_CHOSEN);
}

int qg_driver_run_in_order(const qg_gemm_args *a, const qg_kernel *kernel, int threads, qg_loop_order order) {
    threads = qg_pool_threads(threads <= 0 ? qg_cpu_count() : threads);
    const int64_t mc = qg_driver_block_rows(kernel, a->kp, a->m, a->n);
    qg_set_block_rows_of_last_call(mc);
    const int64_t step = qg_step(kernel);
    const int x_in_place = kernel->reads_x_in_place && kernel->reads_x_in_place(a);

    // The kernel's per-call params, made once here on the calling thread; the
    // tasks only read them, and the call returns after the last task.
    void *params = NULL;
    if (kernel->init_params) {
        params = qg_thread_scratch(QG_SCRATCH_PARAMS, kernel->params_bytes(a));
        if (!params) {
            qg_set_threads_of_last_call(0); // nothing ran: not the previous call's count
            return -2;
        }
        kernel->init_params(a, params);
    }
    // Whether the kernel prepares this call's weights (in blocks of enough rows only).
    const int prepares = kernel->weights_scratch_bytes && a->m >= kernel->prepare_min_rows &&
                         kernel->weights_scratch_bytes(a, params, step) > 0;
    const qg_split split = qg_choose_split(a->m, kernel->main.mr, mc, qg_ceil_div(a->n, step), step, threads,
                                           x_in_place, prepares ? kernel->prepare_min_rows : 0);
    const int64_t m_blocks = split.m_blocks, nc = split.nc, n_blocks = split.n_blocks;

    // Steps inside row groups when a block's packed weights take at most half
    // the L2 (1 MiB here on Emerald Rapids, 512 KiB on Zen 4): the weights
    // stay in the L2 either way, and each row group then writes its rows'
    // outputs in order, from end to end, instead of one step's width of every
    // row of the block in turn, a kilobyte or more apart, on as many pages,
    // which the store and prefetch hardware keeps up with far worse once the
    // output outgrows the L2 (KERNELS.md, "Blocking and threads", has the
    // figures). Past half the L2, each row group would fetch every weight
    // again from further out. The same bits in either order: every tile sums
    // all of K itself.
    // A kernel that widens a block's weights ahead (prepare_weights) reads
    // the widened copy, twice their bytes, so it is those that must fit.
    const int64_t l2 = qg_cpu_cache_bytes(2) > 0 ? qg_cpu_cache_bytes(2) : 1024 * 1024;
    const int rows_outer = order == QG_LOOP_CHOSEN ? qg_min(nc, a->n) * a->kp * (prepares ? 2 : 1) <= l2 / 2
                                                   : order == QG_LOOP_ROWS_OUTSIDE;
    const qg_output_kind kind = qg_output_kind_of(a);
    qg_plan plan = {.args = a, .kernel = kernel, .main_run = kernel->main.run[kind],
                    .few_run = qg_tile_exists(&kernel->few_rows) ? kernel->few_rows.run[kind] : NULL,
                    .few_mr = kernel->few_rows.mr, .params = params, .nc = nc, .m_blocks = m_blocks,
                    .n_blocks = n_blocks, .step = step, .rows_outer = rows_outer, .prepares = prepares};
    atomic_init(&plan.failed, 0);
    qg_parallel_for(m_blocks * n_blocks, threads, qg_task, &plan);
    return atomic_load(&plan.failed) ? -2 : 0;
}
