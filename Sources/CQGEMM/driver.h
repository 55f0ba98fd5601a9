// Internal: what a kernel path provides, and the blocked driver that runs it.
// Not part of the public C API.
#ifndef QG_DRIVER_H
#define QG_DRIVER_H

#include "qgemm.h"

/// A kernel path (everything but the reference). See KERNELS.md for the
/// packed layouts and the microkernel contract.
typedef struct qg_kernel {
    /// Microkernel name, e.g. "qg_gemm_6x8_avx2".
    const char *name;
    qg_path path;
    /// Rows of X a full row group (and the main microkernel) covers.
    int mr;
    int (*is_supported)(void);
    /// Scratch bytes for a packed block of `rows` rows of X.
    size_t (*x_block_bytes)(int64_t rows, int64_t kp);
    /// Packs rows [m0, m0 + rows) of X into `dst` (the path's activation layout).
    void (*pack_x)(const qg_gemm_args *args, int64_t m0, int64_t rows, void *dst);
    /// Computes and stores Y[m0 ..< m0+rows][n0 ..< n1] from the packed block;
    /// n0 is a multiple of QG_PANEL_N, n1 is one too or equals N.
    void (*compute)(const qg_gemm_args *args, const void *x_block, int64_t m0, int64_t rows,
                    int64_t n0, int64_t n1);
} qg_kernel;

extern const qg_kernel qg_kernel_portable;
extern const qg_kernel qg_kernel_avx2;
extern const qg_kernel qg_kernel_avx512vnni;

/// The kernel of a path, or NULL when the path is not compiled in.
const qg_kernel *qg_kernel_for_path(qg_path path);

/// Runs the blocked loop nest with `kernel` on up to `threads` threads
/// (0 = all cores). Returns 0, or -2 when scratch memory could not be had.
int qg_driver_run(const qg_gemm_args *args, const qg_kernel *kernel, int threads);

// MARK: - Thread pool (threadpool.c)

/// Runs task(ctx, t) for t in [0, count) on up to `threads` threads, the
/// caller included. Returns when every task has finished. When another
/// caller is using the pool, runs every task on the calling thread instead.
void qg_parallel_for(int64_t count, int threads, void (*task)(void *ctx, int64_t t), void *ctx);

/// Per-thread scratch of at least `bytes` bytes, 64-byte aligned, reused
/// across calls on the same thread; NULL if it cannot be allocated.
void *qg_thread_scratch(size_t bytes);

// MARK: - Scalar epilogue (epilogue.c), for the portable path

/// Finishes one output element from the raw dot product Σ_k W[n][k]·X[m][k]:
/// adds the bias and zero-point terms, then writes the requested output type.
void qg_epilogue_scalar(const qg_gemm_args *args, int64_t m, int64_t n, int32_t dot);

#endif
