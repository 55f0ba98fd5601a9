// The portable path's activation packing (rows of int16), which the
// test-only tiles (kernels/test/) reuse, its peak probe and its 4-bit-weight
// tile.
#ifndef QG_PORTABLE_H
#define QG_PORTABLE_H

#include "qgemm.h"

/// Bytes of packed activations for `rows` rows at K padded to `kp`.
size_t qg_portable_x_bytes(int64_t rows, int64_t kp);
/// Packs rows [m0, m0 + rows) of X as int16 rows.
void qg_portable_pack_x(const qg_gemm_args *a, int64_t m0, int64_t rows, void *dst);

/// The peak probe (peak_portable.c): the tile's own multiply-add.
int64_t qg_peak_portable(int64_t iterations);
/// What qg_peak_portable runs, for people.
#define QG_PORTABLE_PEAK_INSTRUCTION "int16 products summed in pairs, 128-bit generic vectors"

/// The 4-bit-weight tile (w4_portable.c): 2 rows × 16 channels.
void qg_w4_2x16c8__portable(const qg_w4_args *a, int rows, int64_t m0, int64_t n0, int cols);

#endif
