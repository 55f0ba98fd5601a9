// Internal: the blocked driver that runs a path's descriptor (driver.c).
#ifndef QG_DRIVER_H
#define QG_DRIVER_H

#include "kernel.h"

/// The small integer steps both loop nests (driver.c, w4_driver.c) take.
static inline int64_t qg_min(int64_t a, int64_t b) { return a < b ? a : b; }
static inline int64_t qg_max(int64_t a, int64_t b) { return a > b ? a : b; }
static inline int64_t qg_ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

/// Rows of X per task (MC) the driver uses with `kernel` for K padded to `kp`.
int64_t qg_driver_block_rows(const qg_kernel *kernel, int64_t kp, int64_t m);

/// Runs the blocked loop nest with `kernel` on up to `threads` threads
/// (0 = all cores). Returns 0, or -2 when scratch memory could not be had.
int qg_driver_run(const qg_gemm_args *args, const qg_kernel *kernel, int threads);

/// The 4-bit-weight loop nest (w4_driver.c) with `kernel`'s W4 tiles, M and
/// N ≥ 1, on up to `threads` threads (0 = all cores). Like qg_driver_run it
/// does not ask whether the CPU has the kernel: the kernel tester runs
/// emulated kernels through both. Returns 0 (it needs no scratch memory).
int qg_w4_driver_run(const qg_w4_args *a, const qg_kernel *kernel, int threads);

#endif
