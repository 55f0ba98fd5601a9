// Kernel paths: which exist, which this CPU can run, and the entry point that
// routes a GEMM to one of them.
#include "qgemm.h"

#include "driver.h"

static const char *const qg_path_names[QG_PATH_COUNT] = {
    "reference", "portable", "avx2", "avx512vnni", "neondot",
};

const char *qg_path_name(qg_path path) {
    return (unsigned)path < QG_PATH_COUNT ? qg_path_names[path] : "unknown";
}

const char *qg_path_kernel_name(qg_path path) {
    const qg_kernel *kernel = qg_kernel_for_path(path);
    if (path == QG_PATH_REFERENCE) return "qg_gemm_reference";
    return kernel ? kernel->name : "none";
}

int qg_path_is_supported(qg_path path) {
    if (path == QG_PATH_REFERENCE) return 1;
    const qg_kernel *kernel = qg_kernel_for_path(path);
    return kernel != NULL && kernel->is_supported();
}

qg_path qg_path_best(void) {
    for (int p = QG_PATH_COUNT - 1; p > 0; p--)
        if (qg_path_is_supported((qg_path)p)) return (qg_path)p;
    return QG_PATH_REFERENCE;
}

int qg_gemm(const qg_gemm_args *args, qg_path path, int threads) {
    if (!qg_path_is_supported(path)) return -1;
    if (args->m == 0 || args->n == 0) return 0;
    if (path == QG_PATH_REFERENCE) {
        qg_gemm_reference(args);
        return 0;
    }
    return qg_driver_run(args, qg_kernel_for_path(path), threads);
}
