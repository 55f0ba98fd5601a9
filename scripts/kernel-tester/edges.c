// The kernel tester's sweep of the requantization's edges: for int8 and
// uint8 output, every shift from −31 to 3 (one for every channel of the call,
// so that a whole call takes or leaves a vector route on that shift and zero
// point alone) × the output zero points at the type's ends and at every power
// of two and its neighbours × every rounding mode, against accumulators at the
// bound the contract allows (|acc| up to 2^31 − 257) and multipliers at both
// ends of [2^30, 2^31).
//
// The random cases of main.c meet these corners only by chance: a route that
// folds Z_Y into a 32-bit rounding constant overflows only for one zero point
// per shift (Z_Y = 2^(31 + shift)) and only with accumulators within about
// 2^23 of the bound, and main.c aims its edge cases through the same rule the
// epilogues implement (narrow_requantize.h), so a fault in that rule moves the
// aim with it. Here nothing is aimed: every shift meets every such zero point.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "driver.h"

uint32_t kernel_tester_next(void);
void kernel_tester_fill_padding(int64_t n, int64_t np, int32_t *row_sum, int32_t *bias, int32_t *mult, int32_t *shift,
                                float *float_multiplier, float *weight_scale);
int8_t *kernel_tester_kernel_weights(const qg_kernel *kernel, int8_t *packed, int64_t n, int64_t k, int64_t *kp);

enum { EDGE_M = 9, EDGE_N = 19, EDGE_K = 1 };

/// Runs the sweep on one kernel; returns the outputs compared, or -1 on the
/// first mismatch (reported).
long kernel_tester_check_requantize_edges(const qg_kernel *kernel) {
    const int64_t m = EDGE_M, n = EDGE_N, k = EDGE_K, np = qg_packed_n(n), kp = qg_packed_k(k);
    // One weight per channel, ±1, so that acc = bias ± x exactly: the bound
    // 255·Σ|W| + 256·|ΣW| + |bias| ≤ 2^31 − 1 allows |bias| up to 2^31 − 512.
    int8_t w[EDGE_N * EDGE_K];
    int64_t rs[EDGE_N], ab[EDGE_N];
    int8_t *packed = malloc((size_t)qg_packed_size(n, k));
    int32_t *row_sum = calloc((size_t)np, 4), *bias = calloc((size_t)np, 4), *mult = calloc((size_t)np, 4),
            *shift = calloc((size_t)np, 4);
    float *fm = calloc((size_t)np, 4);
    uint8_t x[EDGE_M * EDGE_K];
    for (int64_t i = 0; i < n; i++) w[i] = i % 4 == 1 || i % 4 == 3 ? -1 : 1;
    qg_pack_weights(w, k, 1, n, k, packed, rs, ab);
    // Channels, by i % 4: the largest positive accumulators (bias + x), the
    // largest negative ones (−bias − x), and two of ordinary size (a random
    // bias of up to ±2^24, plus or minus x) that land inside the output's
    // range at deep shifts.
    for (int64_t i = 0; i < n; i++) {
        row_sum[i] = (int32_t)rs[i];
        bias[i] = i % 4 == 0 ? INT32_MAX - 511 : i % 4 == 1 ? -(INT32_MAX - 511)
                                                            : (int32_t)(kernel_tester_next() % (1u << 25)) - (1 << 24);
        // M0 at both ends of its range and between.
        mult[i] = i % 3 == 0 ? INT32_MAX : i % 3 == 1 ? 1 << 30 : (int32_t)((1u << 30) + (kernel_tester_next() & 0x3FFFFFFF));
        // Float multipliers from 2 (products past 2^31) down to 2^−17.
        fm[i] = (float)(2.0 / (double)(1ull << (i % 33)));
    }
    kernel_tester_fill_padding(n, np, row_sum, bias, mult, shift, fm, NULL);
    // Rows: x = 0 and 255 (acc at its extremes), 128, and random.
    for (int64_t r = 0; r < m; r++) x[r] = r == 0 ? 0 : r == 1 ? 255 : r == 2 ? 128 : (uint8_t)kernel_tester_next();
    const int64_t ldy = n + 1;
    int8_t want[EDGE_M * (EDGE_N + 1)], got[EDGE_M * (EDGE_N + 1)];
    qg_gemm_args a;
    memset(&a, 0, sizeof a);
    a.m = m; a.n = n; a.k = k; a.x = x; a.ldx = k; a.x_unsigned = 1; a.x_zero_point = 0;
    a.w = packed; a.kp = kp; a.row_sum = row_sum; a.bias = bias; a.ldy = ldy;
    a.multiplier = mult; a.shift = shift; a.float_multiplier = fm;
    // The kernel reads its own layout where it has one; the reference reads
    // the shared layout.
    int64_t kernel_kp = kp;
    int8_t *const kernel_w = kernel_tester_kernel_weights(kernel, packed, n, k, &kernel_kp);
    // Output zero points, as int8 sees them: both ends of the range, every
    // power of two and its neighbours of both signs (a route's limits on Z_Y
    // fall at 2^j or 2^j ± 1 for a shift's power of two), and a few at random.
    int32_t zero_point[64];
    int zero_points = 0;
    const int32_t ends[] = {-128, -127, 0, 126, 127};
    for (int i = 0; i < 5; i++) zero_point[zero_points++] = ends[i];
    for (int j = 0; j < 8; j++)
        for (int32_t d = -1; d <= 1; d++)
            for (int32_t sign = -1; sign <= 1; sign += 2) {
                const int32_t z = sign * ((1 << j) + d);
                int seen = z < -128 || z > 127;
                for (int i = 0; i < zero_points && !seen; i++) seen = zero_point[i] == z;
                if (!seen) zero_point[zero_points++] = z;
            }
    for (int i = 0; i < 4; i++) zero_point[zero_points++] = (int32_t)(kernel_tester_next() % 256) - 128;
    long compared = 0;
    for (int out = 0; out < 2 && compared >= 0; out++) {
        a.out_type = out == 0 ? QG_OUT_INT8 : QG_OUT_UINT8;
        const int32_t lo = out == 0 ? -128 : 0, hi = out == 0 ? 127 : 255;
        for (int rounding = 0; rounding < 3 && compared >= 0; rounding++) {
            a.rounding = (qg_rounding)rounding;
            // Float rounding reads no shift: one pass over the zero points.
            const int32_t deepest = rounding == QG_ROUND_FLOAT ? 3 : -31;
            for (int32_t s = deepest; s <= 3 && compared >= 0; s++) {
                for (int64_t i = 0; i < n; i++) shift[i] = s;
                for (int z = 0; z < zero_points; z++) {
                    // uint8 output meets the int8 routes with Z_Y − 128.
                    const int32_t zy = zero_point[z] + (out == 0 ? 0 : 128);
                    a.y_zero_point = zy;
                    // The full range, or a narrower clamp on one zero point in three.
                    const int narrow = zy % 3 == 0;
                    a.clamp_lo = narrow ? lo + 7 : lo;
                    a.clamp_hi = narrow ? hi - 11 : hi;
                    memset(want, 0x5A, sizeof want); memset(got, 0x5A, sizeof got);
                    a.y = want; a.w = packed; a.kp = kp;
                    qg_gemm_reference(&a);
                    a.y = got; a.w = kernel_w; a.kp = kernel_kp;
                    if (qg_driver_run(&a, kernel, 1) != 0 || memcmp(want, got, sizeof got) != 0) {
                        fprintf(stderr, "MISMATCH %s requantization edge: out=%s rounding=%d shift=%d y_zero_point=%d "
                                        "clamp=[%d, %d]\n", kernel->name, out == 0 ? "int8" : "uint8", rounding, s, zy,
                                a.clamp_lo, a.clamp_hi);
                        for (int64_t e = 0; e < m * ldy; e++)
                            if (want[e] != got[e])
                                fprintf(stderr, "  [%lld][%lld]: %d, reference %d\n", (long long)(e / ldy),
                                        (long long)(e % ldy), got[e], want[e]);
                        compared = -1;
                        break;
                    }
                    compared += (long)(m * n);
                }
            }
        }
    }
    if (kernel_w != packed) free(kernel_w);
    free(packed); free(row_sum); free(bias); free(mult); free(shift); free(fm);
    return compared;
}
