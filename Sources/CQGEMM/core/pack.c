// Weight packing into the shared layout, and repacking into a path's own
// layout (panel width × K group) where its registry entry declares one
// (KERNELS.md).
#include "qgemm.h"

#include <string.h>

void qg_pack_weights(const int8_t *w, int64_t n_stride, int64_t k_stride, int64_t n, int64_t k,
                     int8_t *packed, int64_t *row_sum, int64_t *abs_sum) {
    const int64_t kp = qg_packed_k(k);
    memset(packed, 0, (size_t)qg_packed_size(n, k));
    if (k_stride == 1) {
        // Rows of contiguous K (the usual case, and ActivationProduct's per
        // call): each K-group of a row is one 4-byte copy, and the sums run
        // in int32 lanes the compiler vectorizes (a row of fewer than 2^24
        // values of magnitude ≤ 128 stays below 2^31; longer rows take the
        // general loop).
        for (int64_t i = 0; i < n && k < (1 << 24); i++) {
            const int8_t *row = w + i * n_stride;
            int8_t *dst = packed + qg_packed_index(i, 0, kp);
            int64_t j = 0;
            for (; j + QG_K_GROUP <= k; j += QG_K_GROUP) memcpy(dst + j * QG_PANEL_N, row + j, QG_K_GROUP);
            for (; j < k; j++) dst[(j / QG_K_GROUP) * QG_PANEL_N * QG_K_GROUP + j % QG_K_GROUP] = row[j];
            int32_t sum = 0, abs = 0;
            for (j = 0; j < k; j++) {
                const int32_t v = row[j];
                sum += v;
                abs += v < 0 ? -v : v;
            }
            row_sum[i] = sum;
            abs_sum[i] = abs;
        }
        if (k < (1 << 24)) return;
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
