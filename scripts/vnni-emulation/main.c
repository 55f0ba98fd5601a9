// Runs the avx512vnni path (its packing, tiles, tails and the +128 bias fold,
// over emulated intrinsics) against qg_gemm_reference on random cases with
// every output type and rounding mode. Exit status 1 on any difference.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../Sources/CQGEMM/driver.h"

static uint64_t state = 0x9E3779B97F4A7C15ull;
static uint32_t next(void) { state ^= state << 13; state ^= state >> 7; state ^= state << 17; return (uint32_t)state; }

int main(int argc, char **argv) {
    int cases = argc > 1 ? atoi(argv[1]) : 3000;
    long elements = 0;
    for (int c = 0; c < cases; c++) {
        const int64_t m = 1 + next() % 40, n = 1 + next() % 70, k = 1 + next() % 300;
        const int64_t kp = qg_packed_k(k), np = qg_packed_n(n), ldx = k + next() % 4, ldy = n + next() % 4;
        int8_t *w = malloc((size_t)(n * k)), *packed = malloc((size_t)qg_packed_size(n, k));
        uint8_t *x = malloc((size_t)(m * ldx));
        int64_t *rs = malloc(sizeof(int64_t) * (size_t)n), *ab = malloc(sizeof(int64_t) * (size_t)n);
        int32_t *row_sum = calloc((size_t)np, 4), *bias = calloc((size_t)np, 4), *mult = calloc((size_t)np, 4), *shift = calloc((size_t)np, 4);
        float *fm = calloc((size_t)np, 4), *ws = calloc((size_t)np, 4);
        for (int64_t i = 0; i < n * k; i++) w[i] = (int8_t)next();
        for (int64_t i = 0; i < m * ldx; i++) x[i] = (uint8_t)next();
        qg_pack_weights(w, k, 1, n, k, packed, rs, ab);
        for (int64_t i = 0; i < n; i++) {
            row_sum[i] = (int32_t)rs[i];
            bias[i] = (int32_t)(next() % 200001) - 100000;
            mult[i] = (int32_t)((1u << 30) + (next() & 0x3FFFFFFF));
            shift[i] = -(int32_t)(8 + next() % 12);
            fm[i] = 1.0f / (float)(1 + next() % 5000);
            ws[i] = 0.001f * (float)(1 + next() % 100);
        }
        qg_gemm_args a;
        memset(&a, 0, sizeof a);
        a.m = m; a.n = n; a.k = k; a.x = x; a.ldx = ldx; a.x_unsigned = (int)(next() % 2); a.w = packed; a.kp = kp;
        a.row_sum = row_sum; a.bias = bias; a.x_zero_point = (int32_t)(next() % 256) - (a.x_unsigned ? 0 : 128);
        a.ldy = ldy; a.out_type = (qg_output_type)(next() % 4); a.rounding = (qg_rounding)(next() % 3);
        a.multiplier = mult; a.shift = shift; a.float_multiplier = fm; a.y_zero_point = (int32_t)(next() % 50);
        a.clamp_lo = a.out_type == QG_OUT_UINT8 ? 0 : -128; a.clamp_hi = a.out_type == QG_OUT_UINT8 ? 255 : 127;
        if (a.out_type == QG_OUT_INT8) a.y_zero_point -= 25;
        a.x_scale = 0.02f; a.weight_scale = ws;
        const size_t ybytes = (size_t)(m * ldy) * 4;
        void *want = malloc(ybytes), *got = malloc(ybytes);
        memset(want, 0x5A, ybytes); memset(got, 0x5A, ybytes);
        a.y = want;
        qg_gemm_reference(&a);
        a.y = got;
        if (qg_driver_run(&a, &qg_kernel_avx512vnni, 1 + (int)(next() % 3)) != 0 || memcmp(want, got, ybytes) != 0) {
            fprintf(stderr, "MISMATCH case %d: M=%lld N=%lld K=%lld unsigned=%d out=%d rounding=%d\n", c, (long long)m,
                    (long long)n, (long long)k, a.x_unsigned, a.out_type, a.rounding);
            return 1;
        }
        elements += m * n;
        free(w); free(packed); free(x); free(rs); free(ab); free(row_sum); free(bias); free(mult); free(shift);
        free(fm); free(ws); free(want); free(got);
    }
    printf("check-vnni-emulated: %d cases, %ld output elements, avx512vnni logic (emulated intrinsics) bit-exact against the reference\n",
           cases, elements);
    return 0;
}
