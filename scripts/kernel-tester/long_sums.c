// The kernel tester's check of sums at their largest over long K. Random
// full-range data keeps every channel sum far below its bound (products of
// both signs cancel), so a tile that sums part of K in a narrower form before
// it adds the part to the channel's sum (avx2's one-row tiles, whose products
// are 256 times the true ones, QG_AVX2_TIMES_256) would wrap only on data
// that does not cancel. Here every product of a channel has one sign and the
// largest magnitude (weights −128 or 127 against uint8 activations of 255,
// or against int8 ones of −128), over K from just below to far past such a
// part, in calls of 1 and 5 rows (the one-row tile, and a main tile with a
// row left over), with int32 output, on one thread.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "driver.h"

int8_t *kernel_tester_kernel_weights(const qg_kernel *kernel, int8_t *packed, int64_t n, int64_t k, int64_t *kp);

/// Runs the check on one kernel; returns the outputs compared, or -1 on the
/// first mismatch (reported).
long kernel_tester_check_long_sums(const qg_kernel *kernel) {
    // K across the first blocks' edges (256 K values, read from both halves
    // of K) up to five blocks; one row (the one-row tile), and five (a main
    // tile with a row left over); one panel, and two and a bit (the two-panel
    // branch, then one panel).
    const int64_t ks[] = {4, 252, 256, 257, 260, 512, 516, 1028};
    const int64_t ms[] = {1, 5}, ns[] = {16, 33};
    // Weights and activations of each data kind: every channel's products at
    // the largest magnitude, of one sign per channel (the channels alternate
    // between the two weights).
    const struct { int8_t w_even, w_odd; uint8_t x; int x_unsigned; } kinds[] = {
        {-128, 127, 255, 1}, // uint8 255: sums −32,640·K and 32,385·K
        {127, -128, 255, 1},
        {-128, 127, 0x80, 0}, // int8 −128: sums 16,384·K and −16,256·K
    };
    long compared = 0;
    for (size_t d = 0; d < sizeof kinds / sizeof kinds[0]; d++)
        for (size_t ik = 0; ik < sizeof ks / sizeof ks[0]; ik++)
            for (size_t im = 0; im < sizeof ms / sizeof ms[0]; im++)
                for (size_t in = 0; in < sizeof ns / sizeof ns[0]; in++) {
                    const int64_t m = ms[im], n = ns[in], k = ks[ik], np = qg_packed_n(n), kp = qg_packed_k(k);
                    int8_t *w = malloc((size_t)(n * k)), *packed = malloc((size_t)qg_packed_size(n, k));
                    uint8_t *x = malloc((size_t)(m * k));
                    int64_t *rs = malloc(sizeof(int64_t) * (size_t)n), *ab = malloc(sizeof(int64_t) * (size_t)n);
                    int32_t *row_sum = calloc((size_t)np, 4), *bias = calloc((size_t)np, 4);
                    int32_t *want = malloc((size_t)(m * n) * 4), *got = malloc((size_t)(m * n) * 4);
                    for (int64_t c = 0; c < n; c++)
                        for (int64_t i = 0; i < k; i++) w[c * k + i] = c % 2 ? kinds[d].w_odd : kinds[d].w_even;
                    memset(x, kinds[d].x, (size_t)(m * k));
                    qg_pack_weights(w, k, 1, n, k, packed, rs, ab);
                    for (int64_t c = 0; c < n; c++) row_sum[c] = (int32_t)rs[c];
                    qg_gemm_args a;
                    memset(&a, 0, sizeof a);
                    a.m = m; a.n = n; a.k = k; a.x = x; a.ldx = k; a.x_unsigned = kinds[d].x_unsigned;
                    a.row_sum = row_sum; a.bias = bias; a.ldy = n; a.out_type = QG_OUT_INT32;
                    a.w = packed; a.kp = kp; a.y = want;
                    qg_gemm_reference(&a);
                    int64_t kernel_kp = kp;
                    int8_t *const kernel_w = kernel_tester_kernel_weights(kernel, packed, n, k, &kernel_kp);
                    a.w = kernel_w; a.kp = kernel_kp; a.y = got;
                    memset(got, 0x5A, (size_t)(m * n) * 4);
                    const int ok = qg_driver_run(&a, kernel, 1) == 0 && memcmp(want, got, (size_t)(m * n) * 4) == 0;
                    if (!ok) {
                        fprintf(stderr, "MISMATCH %s long sums: M=%lld N=%lld K=%lld weights %d/%d, x %d (%s)\n", kernel->name,
                                (long long)m, (long long)n, (long long)k, kinds[d].w_even, kinds[d].w_odd,
                                kinds[d].x_unsigned ? kinds[d].x : (int)(int8_t)kinds[d].x,
                                kinds[d].x_unsigned ? "uint8" : "int8");
                        for (int64_t e = 0; e < m * n; e++)
                            if (want[e] != got[e]) {
                                fprintf(stderr, "  [%lld][%lld]: %d, reference %d\n", (long long)(e / n), (long long)(e % n),
                                        got[e], want[e]);
                                break;
                            }
                    }
                    if (kernel_w != packed) free(kernel_w);
                    free(w); free(packed); free(x); free(rs); free(ab); free(row_sum); free(bias); free(want); free(got);
                    if (!ok) return -1;
                    compared += (long)(m * n);
                }
    return compared;
}
