// The avx2 path's 4-bit-weight tiles (w4_avx2.c), for its descriptor.
#ifndef QG_W4_AVX2_H
#define QG_W4_AVX2_H

#include "kernel.h"

void qg_w4_2x16c8__avx2(const qg_w4_args *a, int rows, int64_t m0, int64_t n0, int cols);
void qg_w4_1x64c8__avx2(const qg_w4_args *a, int rows, int64_t m0, int64_t n0, int cols);

#endif
