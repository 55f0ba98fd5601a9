// Internal: the kernel table and the blocked driver (not part of the public C API).
#ifndef QG_DRIVER_H
#define QG_DRIVER_H

#include "qgemm.h"

/// A SIMD (or portable) path: its tile, its CPU test and its pieces.
typedef struct qg_kernel {
    const char *name;
    qg_path path;
    int (*is_supported)(void);
} qg_kernel;

/// The kernel of a path, or NULL when the path is not compiled in.
const qg_kernel *qg_kernel_for_path(qg_path path);

/// Runs the blocked loop nest with `kernel` on up to `threads` threads.
void qg_driver_run(const qg_gemm_args *args, const qg_kernel *kernel, int threads);

#endif
