// The amxint8 path's 4-bit-weight tiles (w4_amxint8.c), for its descriptor.
#ifndef QG_W4_AMXINT8_H
#define QG_W4_AMXINT8_H

#include "kernel.h"

/// Rows of the main tile: a group's weights are unpacked once for all its
/// whole 16-row passes (and once more for a tail pass of 9–15 rows).
enum { QG_W4A_MR = 128 };

void qg_w4_128x32c8__amxint8(const qg_w4_args *a, int rows, int64_t m0, int64_t n0, int cols);
void qg_w4_1x64c8__amxint8(const qg_w4_args *a, int rows, int64_t m0, int64_t n0, int cols);

#endif
