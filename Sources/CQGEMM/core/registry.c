// The kernel registry: the one table of kernel paths, in the manner of
// XNNPACK's gemm-config.c. A new path is one new C file defining a qg_kernel
// and one line in kernel_list.h (KERNELS.md says what the descriptor holds).
//
// Path numbers: 0 is the scalar reference (no descriptor: it does not use the
// driver); 1 ... qg_kernel_count are the table's entries, worst to best. The
// default path is the last entry that is supported and not test-only.
#include "driver.h"
#include "probes.h"
#include "threadpool.h"

#include <string.h>

#define QG_KERNEL(descriptor) extern const qg_kernel descriptor;
#include "kernel_list.h"
#undef QG_KERNEL

const qg_kernel *const qg_kernels[] = {
#define QG_KERNEL(descriptor) &descriptor,
#include "kernel_list.h"
#undef QG_KERNEL
};
const int qg_kernel_count = (int)(sizeof qg_kernels / sizeof qg_kernels[0]);

const qg_kernel *qg_kernel_for_path(int path) {
    return path >= 1 && path <= qg_kernel_count ? qg_kernels[path - 1] : NULL;
}

int qg_path_count(void) { return qg_kernel_count + 1; }

const char *qg_path_name(int path) {
    if (path == QG_PATH_REFERENCE) return "reference";
    const qg_kernel *kernel = qg_kernel_for_path(path);
    return kernel ? kernel->name : "unknown";
}

int qg_path_find(const char *name) {
    for (int p = 0; p < qg_path_count(); p++)
        if (strcmp(name, qg_path_name(p)) == 0) return p;
    return -1;
}

int qg_path_is_supported(int path) {
    if (path == QG_PATH_REFERENCE) return 1;
    const qg_kernel *kernel = qg_kernel_for_path(path);
    return kernel != NULL && kernel->is_supported();
}

int qg_path_describe(int path, qg_path_info *info) {
    memset(info, 0, sizeof *info);
    if (path == QG_PATH_REFERENCE) {
        *info = (qg_path_info){.name = "reference", .requires = "any CPU", .ukernel = "qg_gemm_reference",
                               .mr = 1, .nr = 1, .kr = QG_K_GROUP, .panel_n = QG_PANEL_N,
                               .peak_instruction = QG_SCALAR_PEAK_INSTRUCTION};
        return 0;
    }
    const qg_kernel *k = qg_kernel_for_path(path);
    if (!k) return -1;
    *info = (qg_path_info){
        .name = k->name, .requires = k->requires, .ukernel = k->main.name, .mr = k->main.mr, .nr = k->main.nr,
        .few_rows_ukernel = qg_tile_exists(&k->few_rows) ? k->few_rows.name : NULL,
        .few_rows_mr = qg_tile_exists(&k->few_rows) ? k->few_rows.mr : 0, .few_rows_nr = qg_tile_exists(&k->few_rows) ? k->few_rows.nr : 0,
        .kr = k->kr, .test_only = k->test_only, .panel_n = k->panel_n, .peak_instruction = k->peak_instruction};
    return 0;
}

int qg_path_layout(int path, int *panel_n, int *kr) {
    *panel_n = QG_PANEL_N;
    *kr = QG_K_GROUP;
    if (path == QG_PATH_REFERENCE) return 0;
    const qg_kernel *kernel = qg_kernel_for_path(path);
    if (!kernel) return -1;
    *panel_n = kernel->panel_n;
    *kr = kernel->kr;
    return 0;
}

int64_t qg_path_block_rows(int path, int64_t k, int64_t m, int64_t n) {
    const qg_kernel *kernel = qg_kernel_for_path(path);
    // K padded to the path's own K group, as the driver pads it.
    return kernel ? qg_driver_block_rows(kernel, qg_layout_k(k, kernel->kr), m, n) : m;
}

/// Adds v to the ascending list a[0 ..< *n] unless it is there or v < 1;
/// returns 0, or -1 when the list is full.
static int qg_add_sorted(int64_t *a, int *n, int64_t v) {
    if (v < 1) return 0;
    int i = 0;
    while (i < *n && a[i] < v) i++;
    if (i < *n && a[i] == v) return 0;
    if (*n >= QG_TEST_SHAPES_MAX) return -1;
    for (int j = *n; j > i; j--) a[j] = a[j - 1];
    a[i] = v;
    (*n)++;
    return 0;
}

int qg_path_test_shapes(int path, int64_t large_k, int64_t ms[QG_TEST_SHAPES_MAX], int *m_count,
                        int64_t ns[QG_TEST_SHAPES_MAX], int *n_count, int64_t ks[QG_TEST_SHAPES_MAX], int *k_count) {
    if (path < 0 || path >= qg_path_count()) return -1;
    const qg_kernel *kernel = qg_kernel_for_path(path);
    const int64_t mr = kernel ? kernel->main.mr : 1, kr = kernel ? kernel->kr : 1;
    *m_count = *n_count = *k_count = 0;
    int full = 0;
    for (int64_t k = 1; k <= 2 * kr + 1; k++) full |= qg_add_sorted(ks, k_count, k);
    full |= qg_add_sorted(ks, k_count, large_k);
    if (kernel && kernel->k_block > kr) {
        const int64_t kb = kernel->k_block, v[5] = {kb - 1, kb, kb + 1, 2 * kb, 2 * kb + 3};
        for (int i = 0; i < 5; i++) full |= qg_add_sorted(ks, k_count, v[i]);
    }
    const int64_t nrs[2] = {kernel ? kernel->main.nr : 1, kernel && qg_tile_exists(&kernel->few_rows) ? kernel->few_rows.nr : 0};
    for (int t = 0; t < 2; t++) {
        if (nrs[t] < 1) continue;
        const int64_t v[4] = {nrs[t] - 1, nrs[t], nrs[t] + 1, 2 * nrs[t] + 3};
        for (int i = 0; i < 4; i++) full |= qg_add_sorted(ns, n_count, v[i]);
    }
    for (int64_t m = 1; m <= mr + 1; m++) full |= qg_add_sorted(ms, m_count, m);
    full |= qg_add_sorted(ms, m_count, 2 * mr + 1);
    for (int i = 0; kernel && i < *k_count; i++) {
        // The N above are a few tiles: weights that stay in the caches, so
        // every N of the list has this MC (qg_driver_block_rows).
        const int64_t mc = qg_path_block_rows(path, ks[i], (int64_t)1 << 30, *n_count > 0 ? ns[*n_count - 1] : 1);
        full |= qg_add_sorted(ms, m_count, mc - 1);
        full |= qg_add_sorted(ms, m_count, mc);
        full |= qg_add_sorted(ms, m_count, mc + 1);
    }
    return full ? -1 : 0;
}

int qg_path_best(void) {
    for (int p = qg_kernel_count; p >= 1; p--)
        if (!qg_kernels[p - 1]->test_only && qg_kernels[p - 1]->is_supported()) return p;
    return QG_PATH_REFERENCE;
}

int qg_gemm(const qg_gemm_args *args, int path, int threads) {
    if (!qg_path_is_supported(path)) return -1;
    // QGEMM refuses these before any call; a caller's negative size would
    // otherwise size the scratch and the tails it writes.
    if (args->m < 0 || args->n < 0 || args->k < 0) return -3;
    // Rows closer than a row's length would make the tiles read and write
    // past the rows the caller sized its buffers for.
    if (args->m > 0 && args->n > 0 && (args->ldx < args->k || args->ldy < args->n)) return -3;
    if (args->m == 0 || args->n == 0) {
        qg_set_threads_of_last_call(1);
        return 0;
    }
    if (path == QG_PATH_REFERENCE) {
        qg_set_threads_of_last_call(1);
        qg_gemm_reference(args);
        return 0;
    }
    return qg_driver_run(args, qg_kernel_for_path(path), qg_threads_for_work(args->m, args->n, args->k, threads));
}
