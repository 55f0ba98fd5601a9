// The neondot path's 4-bit-weight tiles (w4_neondot.c), for its descriptor.
#ifndef QG_W4_NEONDOT_H
#define QG_W4_NEONDOT_H

#include "kernel.h"

void qg_w4_4x16c8__neondot(const qg_w4_args *a, int rows, int64_t m0, int64_t n0, int cols);
void qg_w4_1x64c8__neondot(const qg_w4_args *a, int rows, int64_t m0, int64_t n0, int cols);

#endif
