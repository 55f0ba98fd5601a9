// The AVX-512 VNNI path's 4-bit-weight tiles (w4_avx512vnni.c), for its descriptor.
#ifndef QG_W4_AVX512VNNI_H
#define QG_W4_AVX512VNNI_H

#include "kernel.h"

void qg_w4_8x32c8__avx512vnni(const qg_w4_args *a, int rows, int64_t m0, int64_t n0, int cols);
void qg_w4_1x64c8__avx512vnni(const qg_w4_args *a, int rows, int64_t m0, int64_t n0, int cols);

// w4_avx512vnni_gfni.c: the 8×32 tile for CPUs that also have GFNI.
void qg_w4_8x32c8__avx512vnnigfni(const qg_w4_args *a, int rows, int64_t m0, int64_t n0, int cols);

#endif
