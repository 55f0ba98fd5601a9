// Zero points for 4-bit weights (qgemm.h, qg_w4_args.x_shift): the tiles
// sum each group of q_W·(q_X − 128), the symmetric contract's work, and the
// rows' zero points come back once per output, y = fma(S_X, fma(128 − Z_X,
// w_sum[n], s), b), instead of once per group and output in every tile. The
// weight sums are read off the packed weights once (qg_w4_weight_sums,
// w4_pack.c); this last step runs on each row group's outputs of a step of
// channels right after its tiles, while they are in the L1.
#include "driver.h"

#include <math.h>

#pragma clang fp contract(off)

/// y[i][j] = fma(S_X, fma(shift, w_sum[j], y[j]), bias[j]) over one row
/// group's outputs, rows i of `rows` from `r`, `cols` channels from `c`.
/// Every copy gives the same bits: each step is one fma. The bias test sits
/// outside the loops: inside, the compiler made the loop of the AVX2 copy
/// masked loads and stores, 25 times slower on Zen 2.
#define QG_W4_ZERO_POINTS_BODY                                                                                            \
    const float *w = a->w_sum + c, *b = a->bias ? a->bias + c : NULL;                                                    \
    for (int64_t i = r; i < r + rows; i++) {                                                                             \
        const float sx = a->x_scale[i], shift = a->x_shift[i];                                                           \
        float *y = a->y + i * a->ldy + c;                                                                                 \
        if (b)                                                                                                            \
            for (int64_t j = 0; j < cols; j++) y[j] = fmaf(sx, fmaf(shift, w[j], y[j]), b[j]);                             \
        else                                                                                                              \
            for (int64_t j = 0; j < cols; j++) y[j] = fmaf(sx, fmaf(shift, w[j], y[j]), 0.0f);                             \
    }

static void qg_w4_zero_points_plain(const qg_w4_args *a, int64_t r, int64_t rows, int64_t c, int64_t cols) {
    QG_W4_ZERO_POINTS_BODY
}

#if defined(__x86_64__)
// Without FMA in the target, x86-64's fmaf is a library call per value. Its
// target has AVX2 too, so it runs only where the CPU has both (some have FMA
// without AVX2, and a VM may hide AVX2).
__attribute__((target("avx2,fma"))) static void qg_w4_zero_points_fma(const qg_w4_args *a, int64_t r, int64_t rows,
                                                                      int64_t c, int64_t cols) {
    QG_W4_ZERO_POINTS_BODY
}
#endif

void qg_w4_add_zero_points(const qg_w4_args *a, int64_t r, int64_t rows, int64_t c, int64_t cols) {
#if defined(__x86_64__)
    const qg_cpu_features *f = qg_cpu_get_features();
    if (f->avx2 && f->fma) {
        qg_w4_zero_points_fma(a, r, rows, c, cols);
        return;
    }
#endif
    qg_w4_zero_points_plain(a, r, rows, c, cols);
}
