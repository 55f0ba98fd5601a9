// Weight packing into the shared layout, and repacking into a path's own
// layout (panel width × K group) where its registry entry declares one
// (KERNELS.md).
#include "qgemm.h"

#include <string.h>

/// One row's K-groups copied into its place in the panel (one 4-byte copy
/// each), and its sum and sum of magnitudes in int32 lanes (a row of fewer
/// than 2^24 values of magnitude ≤ 128 stays below 2^31). The x86 build's
/// baseline is SSE2, which widens four bytes at a time; the AVX2 copy of
/// the same loop below takes 32.
static inline __attribute__((always_inline)) void qg_pack_row_body(const int8_t *row, int64_t k, int8_t *dst, int64_t *row_sum,
                                                                   int64_t *abs_sum) {
    int64_t j = 0;
    for (; j + QG_K_GROUP <= k; j += QG_K_GROUP) memcpy(dst + j * QG_PANEL_N, row + j, QG_K_GROUP);
    for (; j < k; j++) dst[(j / QG_K_GROUP) * QG_PANEL_N * QG_K_GROUP + j % QG_K_GROUP] = row[j];
    int32_t sum = 0, abs = 0;
    for (j = 0; j < k; j++) {
        const int32_t v = row[j];
        sum += v;
        abs += v < 0 ? -v : v;
    }
    *row_sum = sum;
    *abs_sum = abs;
}

static void qg_pack_row_plain(const int8_t *row, int64_t k, int8_t *dst, int64_t *row_sum, int64_t *abs_sum) {
    qg_pack_row_body(row, k, dst, row_sum, abs_sum);
}

#if defined(__x86_64__)
__attribute__((target("avx2"))) static void qg_pack_row_avx2(const int8_t *row, int64_t k, int8_t *dst, int64_t *row_sum,
                                                             int64_t *abs_sum) {
    qg_pack_row_body(row, k, dst, row_sum, abs_sum);
}
#endif

void qg_pack_weights(const int8_t *w, int64_t n_stride, int64_t k_stride, int64_t n, int64_t k,
                     int8_t *packed, int64_t *row_sum, int64_t *abs_sum) {
    const int64_t kp = qg_packed_k(k);
    memset(packed, 0, (size_t)qg_packed_size(n, k));
    if (k_stride == 1 && k < (1 << 24)) {
        // Rows of contiguous K (the usual case, and ActivationProduct's per
        // call); longer rows take the general loop.
        void (*pack_row)(const int8_t *, int64_t, int8_t *, int64_t *, int64_t *) = qg_pack_row_plain;
#if defined(__x86_64__)
        if (qg_cpu_get_features()->avx2) pack_row = qg_pack_row_avx2;
#endif
        for (int64_t i = 0; i < n; i++)
            pack_row(w + i * n_stride, k, packed + qg_packed_index(i, 0, kp), row_sum + i, abs_sum + i);
        return;
    }
    for (int64_t i = 0; i < n; i++) {
        int64_t sum = 0, abs = 0;
        for (int64_t j = 0; j < k; j++) {
            int8_t v = w[i * n_stride + j * k_stride];
            packed[qg_packed_index(i, j, kp)] = v;
            sum += v;
            abs += v < 0 ? -(int64_t)v : v;
        }
        row_sum[i] = sum;
        abs_sum[i] = abs;
    }
}

void qg_repack_weights(const int8_t *packed, int64_t n, int64_t k, int panel_n, int kr, int8_t *out) {
    const int64_t kp = qg_packed_k(k), kq = qg_layout_k(k, kr);
    memset(out, 0, (size_t)qg_layout_size(n, k, panel_n, kr));
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < k; j++) out[qg_layout_index(i, j, kq, panel_n, kr)] = packed[qg_packed_index(i, j, kp)];
}
