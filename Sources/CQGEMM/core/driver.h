// Internal: the blocked driver that runs a path's descriptor (driver.c).
#ifndef QG_DRIVER_H
#define QG_DRIVER_H

#include "kernel.h"
#include "threadpool.h"

/// The small integer steps both loop nests (driver.c, w4_driver.c) take.
static inline int64_t qg_min(int64_t a, int64_t b) { return a < b ? a : b; }
static inline int64_t qg_max(int64_t a, int64_t b) { return a > b ? a : b; }
static inline int64_t qg_ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
/// The first of `whole` items (0 ≤ part ≤ parts) that part `part` of
/// `parts` takes when they are shared out as evenly as whole items allow:
/// ⌊part·whole/parts⌋, the product in 128 bits. The m-blocks share out row
/// groups so, and part·whole passes 2^63 from about 6·10^10 rows on avx2 at
/// K ≤ 4 (96-row blocks): in 64 bits, later blocks would start at negative rows.
static inline int64_t qg_share_start(int64_t part, int64_t whole, int64_t parts) {
    return (int64_t)((__int128)part * whole / parts);
}
/// The rows of m-block `mb` of `m_blocks` (and its first row in *m0 unless
/// NULL): the row groups of `mr` rows shared out as evenly as whole groups
/// allow. Both drivers split M so.
static inline int64_t qg_block_rows(int64_t m, int64_t mr, int64_t m_blocks, int64_t mb, int64_t *m0) {
    const int64_t groups = qg_ceil_div(m, mr);
    const int64_t g0 = qg_share_start(mb, groups, m_blocks), g1 = qg_share_start(mb + 1, groups, m_blocks);
    if (m0) *m0 = g0 * mr;
    return qg_min(g1 * mr, m) - g0 * mr;
}

/// Multiply-adds each thread of a call must have, so that a second thread
/// is not a loss. On Zen 2 (avx2), two threads against one, medians of
/// interleaved rounds: 8×64×64 and 4×64×128 (2^15 MACs, under a
/// microsecond) 0.88–0.94×; 16×64×64, 4×128×128 and 1×256×256 (2^16)
/// 1.01–1.11× in quieter rounds but 0.82–0.96× beside a neighbour; 2^17
/// (32×64×64, 8×128×128, 1×512×256, 2×256×256, 1×128×1024) 1.05–1.44×
/// quieter, 0.90–1.53× beside one. On a host with no neighbour at all
/// (fastest of 3 rounds): 2^15 0.89×, 2^16 1.08–1.12×, 2^17 1.39–1.51×,
/// 2^18 1.57–1.66×; so the line sits where a neighbour can no longer turn
/// the second thread into a loss. Faster paths finish such calls sooner
/// still, so on them this only keeps calls off threads that would lose as
/// well.
enum { QG_MIN_MACS_PER_THREAD = 1 << 16 };

/// The threads the public entries (qg_gemm, qg_w4_gemm) give an M×N×K call
/// asked to run on `threads` (0 = all cores): at most one per
/// QG_MIN_MACS_PER_THREAD multiply-adds, at least one. The kernel tester
/// calls the drivers directly, so its small shapes still cross threads.
static inline int qg_threads_for_work(int64_t m, int64_t n, int64_t k, int threads) {
    threads = qg_pool_threads(threads <= 0 ? qg_cpu_count() : threads);
    const double most = (double)m * (double)n * (double)k / QG_MIN_MACS_PER_THREAD;
    return most >= threads ? threads : most >= 1 ? (int)most : 1;
}

/// Rows of X per task (MC) the driver uses with `kernel` for K padded to `kp`.
int64_t qg_driver_block_rows(const qg_kernel *kernel, int64_t kp, int64_t m, int64_t n);

/// Runs the blocked loop nest with `kernel` on up to `threads` threads
/// (0 = all cores). Returns 0, or -2 when scratch memory could not be had.
int qg_driver_run(const qg_gemm_args *args, const qg_kernel *kernel, int threads);

/// The order of the two middle loops of the nest (driver.c): chosen per call
/// from the weights' size and the L2, or fixed, for the kernel tester, which
/// runs each case in one order or the other at random (the tile-derived
/// shapes' weights are too small for the call's own choice ever to put the
/// steps outside).
typedef enum qg_loop_order { QG_LOOP_CHOSEN, QG_LOOP_STEPS_OUTSIDE, QG_LOOP_ROWS_OUTSIDE } qg_loop_order;

/// How a call is cut into tasks: `m_blocks` blocks of rows (of at most MC
/// rows, split evenly in whole row groups) × `n_blocks` blocks of `nc`
/// channels (whole steps).
typedef struct qg_split {
    int64_t m_blocks, nc, n_blocks;
} qg_split;

/// The split of an M-row call with row groups of `mr`, blocks of at most `mc`
/// rows and `steps` steps of `step` channels, on `threads` threads, X packed
/// per m-block or read in place, for a kernel that prepares the weights of
/// blocks of at least `min_block_rows` rows only (0: of none, or of every
/// block) (driver.c; pure, so the kernel tester checks its choices).
qg_split qg_choose_split(int64_t m, int64_t mr, int64_t mc, int64_t steps, int64_t step, int threads,
                         int x_in_place, int64_t min_block_rows);

/// qg_driver_run in the given loop order (the same bits in any).
int qg_driver_run_in_order(const qg_gemm_args *args, const qg_kernel *kernel, int threads, qg_loop_order order);

/// Rows of X per m-block (MC) of the 4-bit loop nest with `kernel` for K
/// padded to `kp`: the rows whose prepared bytes fill a quarter of the L2 the
/// OS reports (1 MiB when it reports none), in whole main-tile row groups.
int64_t qg_w4_driver_block_rows(const qg_kernel *kernel, int64_t kp);

/// The 4-bit-weight loop nest (w4_driver.c) with `kernel`'s W4 tiles, M and
/// N ≥ 1, on up to `threads` threads (0 = all cores). Like qg_driver_run it
/// does not ask whether the CPU has the kernel: the kernel tester runs
/// emulated kernels through both. Returns 0 (it needs no scratch memory).
int qg_w4_driver_run(const qg_w4_args *a, const qg_kernel *kernel, int threads);

/// The last step of a call with zero points (w4_zero_points.c): outputs
/// [r, r + rows) × [c, c + cols) of `a`, which hold the tiles' s, become
/// fma(S_X, fma(x_shift, w_sum, s), bias).
void qg_w4_add_zero_points(const qg_w4_args *a, int64_t r, int64_t rows, int64_t c, int64_t cols);

#endif
