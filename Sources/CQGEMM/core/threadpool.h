// Internal: the process-wide thread pool, per-thread scratch, and what the
// calling thread's last call did (threadpool.c).
#ifndef QG_THREADPOOL_H
#define QG_THREADPOOL_H

#include <stddef.h>
#include <stdint.h>

/// Runs task(ctx, t) for t in [0, count) on up to `threads` threads, the
/// caller included. Returns when every task has finished. When the pool is
/// owned (another caller is using it, or another thread is forking) or has
/// stopped at process exit, runs every task on the calling thread instead.
void qg_parallel_for(int64_t count, int threads, void (*task)(void *ctx, int64_t t), void *ctx);

/// Workers the pool makes at most; with the caller, the most threads a call runs on.
#define QG_MAX_WORKERS 63
/// `threads` as the pool can run them: work planned for more (a machine of
/// 96 CPUs cut into 96 blocks) would leave 64 threads running 1.5 blocks each.
static inline int qg_pool_threads(int threads) { return threads > QG_MAX_WORKERS + 1 ? QG_MAX_WORKERS + 1 : threads; }

/// Most parts a row-wise job (dynamic_quantize.c, w4_prepare.c) is cut into.
#define QG_MAX_ROW_PARTS 64
/// Values a part of a row-wise job takes at least: waking a worker costs
/// about as much as a pass over 2^15 floats.
#define QG_ROW_PART_VALUES (1 << 15)
/// A job of at least two parts of this many values is cut for the caller and
/// the pool's workers still spinning after a job (qg_pool_warm_workers), if
/// that gives more parts: handing a spinning worker a part costs a few
/// hundred nanoseconds, not a wake-up. Emerald Rapids, dynamic quantization
/// right after a two-thread GEMM, fastest of 1,500 over three rounds:
/// 128×384 15.7 → 8.5 µs, 64×384 8.0 → 5.0 µs. With the workers asleep, a
/// bar this low was 5–12 % slower, so it applies to spinning workers only.
#define QG_ROW_PART_VALUES_WARM (1 << 13)

/// Parts of whole rows for a row-wise job of `rows` rows × k values on up to
/// `threads` threads (0: as many as the process may use), with `warm` of the
/// pool's workers spinning: at most one part per QG_ROW_PART_VALUES values;
/// or, when the job holds two parts of QG_ROW_PART_VALUES_WARM values, a part
/// for the caller and each spinning worker the call may use (a worker a job
/// does not want sleeps without spinning),
/// whichever gives more; never more than QG_MAX_ROW_PARTS. Each part has
/// `*part_rows` rows but the last. Returns the count (1: run the rows on the
/// caller). The parts change no value: each row is computed alone.
int64_t qg_row_parts_with(int64_t rows, int64_t k, int threads, int warm, int64_t *part_rows);

/// qg_row_parts_with for the pool as it is now (qg_pool_warm_workers), or the
/// split the fuzz targets force (qg_force_row_part_values, kernel.h).
int64_t qg_row_parts(int64_t rows, int64_t k, int threads, int64_t *part_rows);

/// How many of the pool's workers are spinning now, waiting for a job after
/// the one they took part in (each for up to 0.1 ms before it sleeps).
int qg_pool_warm_workers(void);

/// qg_parallel_for for a job that is not a GEMM: qg_threads_of_last_call
/// reads afterwards what the caller's last GEMM set.
void qg_parallel_for_rows(int64_t count, void (*task)(void *ctx, int64_t t), void *ctx);

/// Records that the calling thread's last call ran on `threads` threads
/// (qg_parallel_for does it itself; the reference path calls this with 1).
void qg_set_threads_of_last_call(int threads);

/// Records the MC of the calling thread's last call through the driver.
void qg_set_block_rows_of_last_call(int64_t rows);

/// Per-thread scratch of at least `bytes` bytes, 64-byte aligned, reused
/// across calls on the same thread; NULL if it cannot be allocated. Each slot
/// is a separate buffer: the packed activations of a task, a call's params,
/// and the weights a kernel prepares once per block (qg_kernel.prepare_weights).
enum { QG_SCRATCH_X = 0, QG_SCRATCH_PARAMS = 1, QG_SCRATCH_WEIGHTS = 2, QG_SCRATCH_SLOTS = 3 };
void *qg_thread_scratch(int slot, size_t bytes);

#endif
