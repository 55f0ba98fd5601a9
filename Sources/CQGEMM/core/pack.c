// Weight packing into the shared layout, and repacking into a path's own
// layout (panel width × K group) where its registry entry declares one
// (KERNELS.md).
#include "qgemm.h"

#include <string.h>

void qg_pack_weights(const int8_t *w, int64_t n_stride, int64_t k_stride, int64_t n, int64_t k,
                     int8_t *packed, int64_t *row_sum, int64_t *abs_sum) {
    const int64_t kp = qg_packed_k(k);
    memset(packed, 0, (size_t)qg_packed_size(n, k));
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
