// The kernel tester's 4-bit-weight (W4A8) half: a path's W4 tiles against
// qg_w4_gemm_reference, bit for bit, with full-range data (q_W in [−8, 7],
// −8 included; q_X in [−128, 127]; binary16 scales of both signs, subnormals
// included; bias or none) on
//   - shapes derived from the tiles: M = 1 … min(MR+1, 17), 23–25 and 31–33
//     (up to MR+1), MR−1, MR, MR+1, 2·MR+1; N = NR−1, NR, NR+1, 2·NR+3 of both tiles; K = G−1, G, G+1,
//     2·G+3 and 300 for each group size G of 8, 24, 32, 40, 48, 64, 96, 128
//     and 320 (1 to 40 chunks of 8 K: every remainder a tile that works in
//     blocks of 4 chunks can leave); row and output strides and threads rotate;
//   - random cases;
//   - zero points (qg_w4_args.x_shift) or none, at random per case, with the
//     weight sums of qg_w4_weight_sums checked against the tester's own;
//   - one case in seven all extremes (below), and, at the largest group
//     (QG_W4_MAX_GROUP), all-extreme cases of M = 1, 2, 3 and MR: there the
//     tiles that keep the high nibbles' sums apart (16·u) meet their bound.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "driver.h"
#include "kernel.h"

uint32_t kernel_tester_next(void);

static float random_scale(void) {
    const float f = (float)(kernel_tester_next() % 20001) / 10000.0f - 1.0f; // [−1, 1]
    return f * (float)(1 + kernel_tester_next() % 4) / 64.0f;
}

/// One case; returns the outputs compared, or -1 on a mismatch (reported).
static long w4_case(const qg_kernel *kernel, int64_t m, int64_t n, int64_t k, int64_t group, uint32_t variant) {
    const int64_t kp = qg_w4_packed_k(k, group), groups = qg_w4_groups(k, group), np = qg_packed_n(n);
    const int64_t ldx = qg_w4_row_bytes(k, group) + variant % 3 * 4, ldy = n + variant % 4;
    // Threads from other digits of the variant than the strides' (variant % 3
    // for both gave one thread only unpadded rows).
    const int threads = 1 + (int)(variant / 12 % 3);
    int8_t *q = malloc((size_t)(n * k)), *x = calloc((size_t)(m * ldx), 1);
    uint16_t *scales = malloc(sizeof(uint16_t) * (size_t)(n * groups));
    float *x_scale = malloc(sizeof(float) * (size_t)m);
    int32_t *offset = calloc((size_t)(m * groups), sizeof(int32_t));
    uint8_t *packed = malloc((size_t)qg_w4_packed_bytes(n, k, group));
    uint16_t *packed_scales = malloc(sizeof(uint16_t) * (size_t)qg_w4_scale_count(n, k, group));
    float *bias = variant % 2 ? malloc(sizeof(float) * (size_t)np) : NULL;
    float *y = malloc(sizeof(float) * (size_t)(m * ldy)), *want = malloc(sizeof(float) * (size_t)(m * ldy));
    const int zero_points = (int)(kernel_tester_next() % 2);
    float *x_shift = zero_points ? malloc(sizeof(float) * (size_t)m) : NULL;
    float *w_sum = zero_points ? malloc(sizeof(float) * (size_t)np) : NULL;
    // One case in seven is all extremes: every value 7 (nibble 15) against
    // activations of −128 and 127 in alternate rows, the largest sums a
    // tile's int16 steps can meet. (Seven, prime to the shape loops' counts,
    // so it falls on every M and N in turn.)
    const int extremes = variant % 7 == 6;
    for (int64_t i = 0; i < n * k; i++) q[i] = extremes ? 7 : (int8_t)(kernel_tester_next() % 16) - 8;
    // Binary16 scales; one in 16 a subnormal, so the widening of every path
    // meets the reference's on those too.
    for (int64_t i = 0; i < n * groups; i++)
        scales[i] = kernel_tester_next() % 16 == 0 ? (uint16_t)(kernel_tester_next() % 0x400 | (kernel_tester_next() % 2) << 15)
                                                   : qg_f16_from_f32(random_scale());
    for (int64_t r = 0; r < m; r++) {
        x_scale[r] = random_scale();
        for (int64_t i = 0; i < k; i++) x[r * ldx + i] = extremes ? (r % 2 ? 127 : -128) : (int8_t)kernel_tester_next();
        for (int64_t i = 0; i < k; i++) offset[r * groups + i / group] -= 8 * x[r * ldx + i];
        // 128 − Z_X for a zero point in 0…255; its ends in the extreme cases.
        if (zero_points) x_shift[r] = extremes ? (r % 2 ? -127.0f : 128.0f) : (float)(128 - (int)(kernel_tester_next() % 256));
    }
    for (int64_t i = 0; bias && i < np; i++) bias[i] = random_scale() * 100.0f;
    qg_w4_pack(q, k, n, k, group, scales, packed, packed_scales);
    // The packed layout reads back what was packed.
    for (int64_t i = 0; i < n * k; i += 7)
        if (qg_w4_packed_value(packed, i / k, i % k, kp) != q[i]) {
            printf("kernel-tester: w4 packing does not read back at n %lld, k %lld\n", (long long)(i / k), (long long)(i % k));
            return -1;
        }
    // The weight sums, against their definition spelled again from q and the scales.
    if (zero_points) {
        qg_w4_weight_sums(packed, packed_scales, n, k, group, w_sum);
        for (int64_t c = 0; c < np; c++) {
            float want_sum = 0.0f;
            for (int64_t g = 0; c < n && g < groups; g++) {
                int32_t sum = 0;
                for (int64_t i = g * group; i < (g + 1) * group && i < k; i++) sum += q[c * k + i];
                want_sum = fmaf(qg_f32_from_f16(scales[c * groups + g]), (float)sum, want_sum);
            }
            if (memcmp(&want_sum, &w_sum[c], sizeof(float)) != 0) {
                printf("kernel-tester: w4 weight sum of channel %lld is %.9g, its definition %.9g\n", (long long)c, w_sum[c], want_sum);
                return -1;
            }
        }
    }
    memset(y, 0x7F, sizeof(float) * (size_t)(m * ldy));
    memcpy(want, y, sizeof(float) * (size_t)(m * ldy));
    const qg_w4_args args = {.m = m, .n = n, .k = k, .group = group, .x = x, .ldx = ldx, .x_scale = x_scale,
                             .x_offset = offset, .w = packed, .w_scale = packed_scales, .bias = bias, .y = y, .ldy = ldy,
                             .x_shift = x_shift, .w_sum = w_sum};
    qg_w4_args ref = args;
    ref.y = want;
    qg_w4_gemm_reference(&ref);
    long result = m * n;
    // The driver itself, as the int8 half runs it: qg_w4_gemm would refuse a
    // kernel this CPU lacks, and check-vnni-emulated forces emulated ones.
    // Both decode routes (qg_cpu_one_stream_decode) and both forms of the
    // avxvnni 6-row tile (qg_cpu_w4_ymm_three_row_passes) on every CPU.
    // Two-row calls stream only weights past the L2, which these are not:
    // the limit goes to 0 with the one-stream route.
    const int one_stream = (int)(kernel_tester_next() % 2), three_rows = (int)(kernel_tester_next() % 2);
    qg_cpu_force_one_stream_decode(one_stream);
    qg_cpu_force_two_row_stream_min_bytes(one_stream ? 0 : -1);
    qg_cpu_force_w4_ymm_three_row_passes(three_rows);
    const int failed = qg_w4_driver_run(&args, kernel, threads) != 0;
    qg_cpu_force_one_stream_decode(-1);
    qg_cpu_force_two_row_stream_min_bytes(-1);
    qg_cpu_force_w4_ymm_three_row_passes(-1);
    if (failed) {
        printf("kernel-tester: w4 %s returned an error at M %lld N %lld K %lld\n", kernel->name, (long long)m, (long long)n, (long long)k);
        result = -1;
    }
    for (int64_t i = 0; result >= 0 && i < m * ldy; i++)
        if (memcmp(&y[i], &want[i], sizeof(float)) != 0) {
            fprintf(stderr, "MISMATCH w4 %s: M %lld N %lld K %lld group %lld threads %d bias %s zero_points %d one_stream %d "
                   "three_rows %d at y[%lld][%lld]: %.9g, reference %.9g\n", kernel->name, (long long)m, (long long)n, (long long)k,
                   (long long)group, threads, bias ? "yes" : "no", zero_points, one_stream, three_rows, (long long)(i / ldy), (long long)(i % ldy), y[i], want[i]);
            result = -1;
        }
    free(q); free(x); free(scales); free(x_scale); free(offset); free(packed); free(packed_scales); free(bias);
    free(y); free(want); free(x_shift); free(w_sum);
    return result;
}

static void add_value(int64_t *values, int *count, int64_t v) {
    if (v < 1) return;
    for (int i = 0; i < *count; i++) if (values[i] == v) return;
    values[(*count)++] = v;
}

/// Checks the 4-bit tiles the driver runs for `kernel` on this CPU; returns
/// 0, or 1 on a mismatch.
static int check_w4_tiles(const qg_kernel *kernel, int cases) {
    const qg_w4_tile *main_tile = qg_w4_main_tile(kernel), *few = &kernel->w4_few;
    int64_t ms[48], ns[16];
    int nm = 0, nn = 0;
    // Every row count up to 17 (each tail of the 8-row tiles and of a 16-row
    // pass), the tails after one and two passes (23–25, 31–33), then the main
    // tile's own edges.
    for (int64_t v = 1; v <= main_tile->mr + 1 && v <= 17; v++) add_value(ms, &nm, v);
    const int64_t passes[6] = {23, 24, 25, 31, 32, 33};
    for (int i = 0; i < 6; i++)
        if (passes[i] <= main_tile->mr + 1) add_value(ms, &nm, passes[i]);
    const int64_t edges[4] = {main_tile->mr - 1, main_tile->mr, main_tile->mr + 1, 2 * main_tile->mr + 1};
    for (int i = 0; i < 4; i++) add_value(ms, &nm, edges[i]);
    for (int t = 0; t < 2; t++) {
        const int nr = t == 0 ? main_tile->nr : (few->run ? few->nr : 0);
        if (nr == 0) continue;
        const int64_t v[4] = {nr - 1, nr, nr + 1, 2 * nr + 3};
        for (int i = 0; i < 4; i++) add_value(ns, &nn, v[i]);
    }
    // 40 and 96 end in a part of a 64-K block; 320 is run in parts by the
    // tiles that unpack a few blocks at a time; 24, 40 and 48 leave 3, 1 and
    // 2 chunks after blocks of 4.
    const int64_t group_sizes[] = {8, 24, 32, 40, 48, 64, 96, 128, 320};
    const int group_count = (int)(sizeof group_sizes / sizeof group_sizes[0]);
    long outputs = 0;
    int shapes = 0;
    uint32_t variant = 0;
    for (int gi = 0; gi < group_count; gi++) {
        const int64_t g = group_sizes[gi], ks[5] = {g - 1, g, g + 1, 2 * g + 3, 300};
        for (int ik = 0; ik < 5; ik++)
            for (int im = 0; im < nm; im++)
                for (int in = 0; in < nn; in++) {
                    const long r = w4_case(kernel, ms[im], ns[in], ks[ik], g, variant++);
                    shapes++;
                    if (r < 0) return 1;
                    outputs += r;
                }
    }
    // The largest group, all extremes (variants 6 and 13: one and two
    // threads, without and with a bias): K of one whole group and of one
    // more value (a second, one-value group).
    int64_t big_ms[4];
    int nbig = 0;
    const int64_t big_candidates[4] = {1, 2, 3, main_tile->mr};
    for (int i = 0; i < 4; i++) add_value(big_ms, &nbig, big_candidates[i]);
    for (int im = 0; im < nbig; im++)
        for (int v = 0; v < 2; v++) {
            const long r = w4_case(kernel, big_ms[im], 33, QG_W4_MAX_GROUP + v, QG_W4_MAX_GROUP, v ? 13u : 6u);
            shapes++;
            if (r < 0) return 1;
            outputs += r;
        }
    for (int c = 0; c < cases; c++) {
        const int64_t g = group_sizes[kernel_tester_next() % group_count];
        const long r = w4_case(kernel, 1 + kernel_tester_next() % 20, 1 + kernel_tester_next() % 100,
                               1 + kernel_tester_next() % 400, g, kernel_tester_next());
        if (r < 0) return 1;
        outputs += r;
    }
    printf("kernel-tester: %s 4-bit weights (%s, %dx%d tile%s): %d tile-derived shapes + %d random cases, %ld output "
           "elements: bit-exact against the reference\n", kernel->name, main_tile->name, main_tile->mr, main_tile->nr,
           few->run ? " with a few-rows tile" : "", shapes, cases, outputs);
    return 0;
}

/// `kernel` without its fast main tile, or with it in w4_main's place.
static qg_kernel w4_variant(const qg_kernel *kernel, int fast) {
    qg_kernel variant = *kernel;
    if (fast) variant.w4_main = kernel->w4_main_fast;
    variant.w4_main_fast = (qg_w4_tile){0};
    variant.w4_main_fast_supported = NULL;
    variant.w4_main_fast_preferred = NULL;
    return variant;
}

/// Checks `kernel`'s 4-bit tiles: w4_main, which every CPU of the path
/// runs, then w4_main_fast where the CPU has what it needs. A path forced on
/// a CPU without it runs on stand-ins (check-vnni-emulated), so its fast
/// tile runs too; forced on a CPU that has the path but not what the fast
/// tile needs (a real build on Cascade Lake), the fast tile would trap, and
/// is skipped. Returns 0, or 1 on a mismatch.
int kernel_tester_check_w4(const qg_kernel *kernel, int cases, int forced) {
    const qg_w4_tile *main_tile = &kernel->w4_main, *fast = &kernel->w4_main_fast;
    // The driver sizes its blocks by w4_main and runs the twin in its place.
    if (fast->run && (fast->mr != main_tile->mr || fast->nr != main_tile->nr)) {
        printf("kernel-tester: %s's fast 4-bit tile %s is %dx%d, its main tile %dx%d: a twin must have its shape\n",
               kernel->name, fast->name, fast->mr, fast->nr, main_tile->mr, main_tile->nr);
        return 1;
    }
    const qg_kernel plain = w4_variant(kernel, 0);
    if (check_w4_tiles(&plain, cases) != 0) return 1;
    if (!fast->run) return 0;
    const int emulated = forced && !kernel->is_supported();
    if (!emulated && !kernel->w4_main_fast_supported()) {
        printf("kernel-tester: %s 4-bit tile %s skipped: this CPU lacks what it needs\n", kernel->name, fast->name);
        return 0;
    }
    const qg_kernel twin = w4_variant(kernel, 1);
    return check_w4_tiles(&twin, cases);
}
