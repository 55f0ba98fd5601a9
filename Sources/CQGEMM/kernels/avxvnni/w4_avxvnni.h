// The avxvnni path's 4-bit-weight tiles (w4_avxvnni.c), for its descriptor.
#ifndef QG_W4_AVXVNNI_H
#define QG_W4_AVXVNNI_H

#include "kernel.h"

void qg_w4_6x16c8__avxvnni(const qg_w4_args *a, int rows, int64_t m0, int64_t n0, int cols);
void qg_w4_1x32c8__avxvnni(const qg_w4_args *a, int rows, int64_t m0, int64_t n0, int cols);

#endif
