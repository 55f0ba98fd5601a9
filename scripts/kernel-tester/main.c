// The C-level kernel tester: every registered kernel path against
// qg_gemm_reference, bit for bit, on
//   - shapes derived from each kernel's tile (as XNNPACK generates its
//     microkernel tests): M = 1 … MR+1, 2·MR+1, MC−1, MC, MC+1; N = NR−1, NR,
//     NR+1, 2·NR+3 (and the same around the few-rows tile's NR); K = 1 … 2·KR+1
//     and 300; output type, rounding mode, activation type and threads rotate;
//   - random cases of every output type, rounding mode, activation type, zero
//     point, clamp, stride and thread count;
//   - the requantization's edges: every shift against output zero points at
//     powers of two and accumulators at the bound (edges.c);
//   - channel sums at their largest over long K, products of one sign
//     (long_sums.c);
//   - its 4-bit-weight tiles, where it has them (w4.c): the main tile and,
//     where the CPU has what it needs, its fast twin (w4_main_fast);
// then the activation quantizer's levels the CPU has (quantizers.c).
// Kernels the CPU lacks are skipped by name. --force NAME tests only the
// paths named, whether the CPU has them or not (a fast 4-bit tile too when
// the CPU lacks the path: w4.c), and not the quantizer levels
// (scripts/check-vnni-emulated builds the VNNI and AMX kernels on software
// intrinsics and forces each). Exit status 1 on any difference.
//
// --expect-paths A,B,... first checks CPU detection: the shipping paths this CPU
// runs must be exactly that list and the default path its last entry
// (scripts/check-arm64 runs it on emulated CPUs with and without each extension).
//
// --quantizers-only runs the quantizer levels alone (check-kernels' planted faults).
//
// --shard I/N runs the I-th of N shares of the work (0 ≤ I < N): the paths in
// registry order, then the quantizer levels, dealt out in turn; N processes,
// one per share, test everything once side by side (scripts/check-arm64).
//
// --fork checks that a child forked after multi-threaded GEMMs runs its GEMMs
// on several threads with the parent's bits (fork.c).
//
// Usage: kernel-tester [--cases N] [--force NAME]... [--expect-paths A,B,...] [--shard I/N] [--quantizers-only] [--fork]
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "driver.h"
// The narrow route's rule, to aim cases at its edges (the 256-bit epilogue
// tests it with vector code of its own, the 512-bit one calls it; the
// outputs must agree either way).
#include "../../Sources/CQGEMM/kernels/x86/narrow_requantize.h"

static uint64_t state = 0x9E3779B97F4A7C15ull;
static uint32_t next(void) { state ^= state << 13; state ^= state >> 7; state ^= state << 17; return (uint32_t)state; }
/// Each unit of work (a path by its registry index, the quantizer levels
/// after the last) starts from a seed of its own, so its cases are the same
/// whichever units ran before it in the process: a mismatch seen in one share
/// of a --shard run comes back in a --force run of that path.
static void reseed(int unit) { state = 0x9E3779B97F4A7C15ull ^ ((uint64_t)(unit + 1) * 0xD1B54A32D192ED03ull); }
uint32_t kernel_tester_next(void) { return next(); }
int kernel_tester_check_w4(const qg_kernel *kernel, int cases, int forced);
int kernel_tester_check_quantizers(int cases);
int kernel_tester_check_fork(void);
long kernel_tester_check_requantize_edges(const qg_kernel *kernel);
long kernel_tester_check_long_sums(const qg_kernel *kernel);

typedef struct shape { int64_t m, n, k; } shape;

/// The padding entries (n ≤ i < np) of the per-channel arrays are the
/// caller's to leave unset (qgemm.h): fills them with values no real channel
/// may have, so that a path that lets them reach a stored result shows up.
/// (`weight_scale` may be NULL.)
void kernel_tester_fill_padding(int64_t n, int64_t np, int32_t *row_sum, int32_t *bias, int32_t *mult, int32_t *shift,
                                float *float_multiplier, float *weight_scale) {
    for (int64_t i = n; i < np; i++) {
        row_sum[i] = INT32_MAX - (int32_t)i;
        bias[i] = INT32_MIN + (int32_t)i;
        mult[i] = INT32_MIN;
        shift[i] = 30;
        float_multiplier[i] = 1e30f;
        if (weight_scale) weight_scale[i] = -1e30f;
    }
}

/// The weights `kernel` reads: `packed` itself (the shared layout, *kp
/// unchanged), or for a kernel with a layout of its own a repacked copy (to
/// free; *kp becomes that layout's K).
int8_t *kernel_tester_kernel_weights(const qg_kernel *kernel, int8_t *packed, int64_t n, int64_t k, int64_t *kp) {
    if (kernel->panel_n == QG_PANEL_N && kernel->kr == QG_K_GROUP) return packed;
    int8_t *own = malloc((size_t)qg_layout_size(n, k, kernel->panel_n, kernel->kr));
    qg_repack_weights(packed, n, k, kernel->panel_n, kernel->kr, own);
    *kp = qg_layout_k(k, kernel->kr);
    return own;
}

/// One case: random full-range data for the shape, options from `variant`;
/// returns the output elements compared, or -1 on a mismatch (reported).
static long run_case(const qg_kernel *kernel, shape s, uint32_t variant, int random_options) {
    const int64_t m = s.m, n = s.n, k = s.k;
    const int64_t kp = qg_packed_k(k), np = qg_packed_n(n);
    // In a quarter of the cases X's rows are a few bytes off a multiple of
    // 4 KiB apart (avx512vnni packs uint8 there, in calls of more than six
    // rows, instead of reading it in place: vnni_activations.h); otherwise a
    // little past K.
    // (A hash of the variant: its low fields pick the other options.)
    const int crowded = random_options ? next() % 4 == 0 : (variant * 2654435761u) >> 30 == 3;
    const int64_t near_page = ((k + 10) / 4096 + 1) * 4096 + (int64_t)(next() % 21) - 10;
    // (For the tile-derived shapes the stride's extra byte comes from another
    // bit of the variant than the activation type's, v % 2: otherwise uint8
    // rows were always K + 1 apart and int8 rows always K.)
    const int64_t ldx = crowded ? near_page : k + (random_options ? next() % 4 : (variant >> 3) % 2);
    // In a quarter of the random cases the rows are whole 64-byte lines apart
    // (for int32 and float output), where avx512vnni's 12×32 tile stores rows
    // that start off a line by lines (epilogue_zmm.h).
    const int64_t ldy = !random_options        ? n + variant % 3
                        : next() % 4 == 0      ? (n + 15) / 16 * 16
                                               : n + next() % 4;
    int8_t *w = malloc((size_t)(n * k)), *packed = malloc((size_t)qg_packed_size(n, k));
    uint8_t *x = malloc((size_t)(m * ldx));
    int64_t *rs = malloc(sizeof(int64_t) * (size_t)n), *ab = malloc(sizeof(int64_t) * (size_t)n);
    int32_t *row_sum = calloc((size_t)np, 4), *bias = calloc((size_t)np, 4), *mult = calloc((size_t)np, 4),
            *shift = calloc((size_t)np, 4), *row_zp = calloc((size_t)m, 4);
    float *fm = calloc((size_t)np, 4), *ws = calloc((size_t)np, 4), *row_scale = calloc((size_t)m, 4);
    // Shifts: in a third of the cases only those real scales give (multipliers
    // below 1/2, which vector epilogues may take a shorter route for), in a
    // third any mix, in a third one shift for every channel (0 … −31, with the
    // full range of output zero points below, and in half of those biases at
    // the accumulator bound: where a route's conditions on shift, zero point
    // and magnitude start and stop holding).
    const uint32_t shift_kind = next() % 3;
    // (The shallowest shifts, 0 … −3, come up more often: the routes' edges.)
    const int realistic_shifts = shift_kind == 0, deep_shift = -(int32_t)(next() % 2 ? next() % 4 : next() % 32);
    const uint32_t deep_data = shift_kind == 2 ? next() % 3 : 0;
    // Biases at the bound (large accumulators), or small data (accumulators
    // small enough that shallow shifts give values inside the output's range).
    const int extreme_bias = deep_data == 1, small_data = deep_data == 2;
    for (int64_t i = 0; i < n * k; i++) w[i] = small_data ? (int8_t)(next() % 15) - 7 : (int8_t)next();
    // The bytes between rows are never read: a fixed value there (not a
    // random one, which would cost a draw per byte of a 4 KiB stride).
    for (int64_t i = 0; i < m * ldx; i++)
        x[i] = i % ldx >= k ? 0xA5 : small_data ? (uint8_t)(next() % 8) : (uint8_t)next();
    qg_pack_weights(w, k, 1, n, k, packed, rs, ab);
    for (int64_t i = 0; i < n; i++) {
        row_sum[i] = (int32_t)rs[i];
        bias[i] = small_data ? (int32_t)(next() % 101) - 50 : (int32_t)(next() % 200001) - 100000;
        if (extreme_bias) {
            // As large as the bound allows with any zero point (|Z| ≤ 256):
            // 255·Σ|W| + 256·|Σ W| + |bias| ≤ 2^31 − 1.
            const int64_t room = INT32_MAX - 255 * ab[i] - 256 * (rs[i] < 0 ? -rs[i] : rs[i]);
            bias[i] = room > 0 ? (int32_t)(next() % 2 ? room : -room) : 0;
        }
        mult[i] = (int32_t)((1u << 30) + (next() & 0x3FFFFFFF));
        // The shifts real scales give (−8 … −19), or sometimes any in [−31, 30].
        shift[i] = shift_kind == 2 ? deep_shift
                   : realistic_shifts || next() % 4 ? -(int32_t)(8 + next() % 12) : (int32_t)(next() % 62) - 31;
        // Float multipliers above 1 as well, with the large accumulators: the
        // products then pass 2^31, where a float-to-int conversion overflows.
        fm[i] = extreme_bias && next() % 2 ? (float)(1 + next() % 4) : 1.0f / (float)(1 + next() % 5000);
        // Negative scales too (the C interface allows them): a zero sum times
        // one is −0, which an epilogue must not turn into +0.
        const float sign = next() % 8 ? 1.0f : -1.0f;
        ws[i] = sign * 0.001f * (float)(1 + next() % 100);
    }
    kernel_tester_fill_padding(n, np, row_sum, bias, mult, shift, fm, ws);
    const uint32_t v = random_options ? next() : variant;
    qg_gemm_args a;
    memset(&a, 0, sizeof a);
    a.m = m; a.n = n; a.k = k; a.x = x; a.ldx = ldx; a.x_unsigned = (int)(v % 2); a.w = packed; a.kp = kp;
    a.row_sum = row_sum; a.bias = bias;
    a.x_zero_point = (int32_t)(next() % 256) - (a.x_unsigned ? 0 : 128);
    a.ldy = ldy; a.out_type = (qg_output_type)((v / 2) % 4); a.rounding = (qg_rounding)((v / 8) % 3);
    a.multiplier = mult; a.shift = shift; a.float_multiplier = fm;
    // Small output zero points, or (with deep shifts) any in the type's range.
    a.y_zero_point = shift_kind == 2 ? (int32_t)(next() % 256) : (int32_t)(next() % 50);
    const int narrow = (int)((v / 24) % 2);
    a.clamp_lo = a.out_type == QG_OUT_UINT8 ? (narrow ? 20 : 0) : (narrow ? -20 : -128);
    a.clamp_hi = a.out_type == QG_OUT_UINT8 ? (narrow ? 200 : 255) : (narrow ? 90 : 127);
    if (a.out_type == QG_OUT_INT8) a.y_zero_point -= shift_kind == 2 ? 128 : 25;
    if (shift_kind == 2 && next() % 2) {
        // The shift where folding this zero point into a 32-bit rounding
        // constant stops fitting (count c = −1 − shift): the last c with
        // 2^(c−1) + |Z_Y|·2^c ≤ 2^30, or the first without.
        // (uint8 output takes the route as int8 with Z_Y − 128.)
        const int32_t zy = a.y_zero_point - (a.out_type == QG_OUT_UINT8 ? 128 : 0);
        int c = 1;
        while (c < 30 && qg_narrow_channel(-1 - (c + 1), zy)) c++;
        int32_t edge = -1 - (c + (int32_t)(next() % 2));
        if (edge < -31) edge = -31;
        for (int64_t i = 0; i < n; i++) shift[i] = edge;
    }
    // In an eighth of the random cases, about a quarter of the channels take
    // the multipliers FixedPointMultiplier gives at its ends, beside ordinary
    // ones in one vector: flushed, (0, 0), for reals below 2^−32, and
    // saturated, (2^31 − 1, 30), from 2^30 up.
    if (random_options && next() % 8 == 0)
        for (int64_t i = 0; i < n; i++) {
            const uint32_t end = next() % 8;
            if (end == 0) mult[i] = 0, shift[i] = 0;
            else if (end == 1) mult[i] = INT32_MAX, shift[i] = 30;
        }
    a.x_scale = 0.02f; a.weight_scale = ws;
    if ((v / 48) % 2) {
        // The dynamic form: per-row zero points (and, for float output, scales),
        // no int32 bias. Offered for every output type by the C interface.
        for (int64_t i = 0; i < m; i++) {
            row_zp[i] = (int32_t)(next() % 256) - (a.x_unsigned ? 0 : 128);
            row_scale[i] = 0.001f * (float)(1 + next() % 100);
        }
        a.bias = NULL; a.x_zero_point = 0; a.row_zero_point = row_zp;
        if (a.out_type == QG_OUT_FLOAT) a.row_scale = row_scale;
    } else if (a.out_type == QG_OUT_FLOAT && next() % 2) {
        // Per-row scales with the call's zero point: the C interface allows it.
        for (int64_t i = 0; i < m; i++) row_scale[i] = 0.001f * (float)(1 + next() % 100);
        a.row_scale = row_scale;
    }
    float *out_bias = NULL;
    if (a.out_type == QG_OUT_FLOAT && next() % 2) { // a float bias after scaling, padded like every per-channel array
        out_bias = calloc((size_t)np, 4);
        for (int64_t i = 0; i < n; i++) out_bias[i] = 0.01f * (float)((int32_t)(next() % 2001) - 1000);
        for (int64_t i = n; i < np; i++) out_bias[i] = 1e30f; // padding, as above
        a.out_bias = out_bias;
    }
    // One to three threads, or in an eighth of the random cases a count from
    // the driver's other branches: its simulated split up to 8 threads, the
    // bound past 8, and 65, which the pool caps at 64 (so the split's branch
    // past 64 threads is check_split's alone). (The driver takes the others
    // as asked; only qg_gemm's callers give a small call fewer.)
    static const int many_threads[] = {4, 5, 8, 9, 16, 63, 64, 65};
    const int threads = random_options && next() % 8 == 0 ? many_threads[next() % 8] : 1 + (int)((v / 96) % 3);
    // The output starts anywhere in a 64-byte line, a whole element in, with
    // guard bytes on both sides that must stay as set.
    const size_t esize = a.out_type == QG_OUT_INT32 || a.out_type == QG_OUT_FLOAT ? 4 : 1;
    const size_t y_off = esize * (size_t)(next() % (64 / esize));
    const size_t ybytes = ((size_t)(m * ldy) * 4 + 64 + 63) / 64 * 64 + 64;
    char *want = aligned_alloc(64, ybytes), *got = aligned_alloc(64, ybytes);
    memset(want, 0x5A, ybytes); memset(got, 0x5A, ybytes);
    a.y = want + 64 + y_off;
    qg_gemm_reference(&a);
    a.y = got + 64 + y_off;
    int8_t *const kernel_w = kernel_tester_kernel_weights(kernel, packed, n, k, &a.kp);
    a.w = kernel_w;
    long compared = m * ldy;
    // Either order of the driver's middle loops, at random per case: the
    // call's own choice would put the row groups outside on all of these.
    const qg_loop_order order = next() % 2 ? QG_LOOP_STEPS_OUTSIDE : QG_LOOP_CHOSEN;
    // Either store route for rows that start off a line, at random per
    // case: the CPU's own choice would leave the other one untested here.
    const int crossing_cheap = (int)(next() % 2);
    // Likewise where the tile prefetches (qg_cpu_one_stream_decode), how
    // the avx2 tiles widen the weights (qg_cpu_widen_bytes_by_shuffles), and
    // whether the avx2 path widens each step's weights once per block
    // (qg_cpu_avx2_widens_weights_ahead).
    const int one_stream = (int)(next() % 2), shuffles = (int)(next() % 2), ahead = (int)(next() % 2);
    qg_cpu_force_line_crossing_stores(crossing_cheap);
    qg_cpu_force_one_stream_decode(one_stream);
    qg_cpu_force_widen_bytes_by_shuffles(shuffles);
    qg_cpu_force_avx2_widens_weights_ahead(ahead);
    const int status = qg_driver_run_in_order(&a, kernel, threads, order);
    qg_cpu_force_line_crossing_stores(-1);
    qg_cpu_force_one_stream_decode(-1);
    qg_cpu_force_widen_bytes_by_shuffles(-1);
    qg_cpu_force_avx2_widens_weights_ahead(-1);
    if (status != 0 || memcmp(want, got, ybytes) != 0) {
        fprintf(stderr, "MISMATCH %s: M=%lld N=%lld K=%lld ldx=%lld ldy=%lld unsigned=%d out=%d rounding=%d dynamic=%d row_scale=%d out_bias=%d threads=%d shift0=%d y_zero_point=%d loop_order=%d y_off=%zu crossing_cheap=%d one_stream=%d shuffles=%d ahead=%d\n",
                kernel->name, (long long)m, (long long)n, (long long)k, (long long)ldx, (long long)ldy, a.x_unsigned,
                a.out_type, a.rounding, a.row_zero_point != NULL, a.row_scale != NULL, a.out_bias != NULL, threads,
                shift[0], a.y_zero_point, (int)order, y_off, crossing_cheap, one_stream, shuffles, ahead);
        compared = -1;
    }
    if (kernel_w != packed) free(kernel_w);
    free(w); free(packed); free(x); free(rs); free(ab); free(row_sum); free(bias); free(mult); free(shift);
    free(row_zp); free(fm); free(ws); free(row_scale); free(out_bias); free(want); free(got);
    return compared;
}

/// --expect-paths: the shipping paths this CPU runs (by CPU detection, in
/// registry order) must be exactly `expected`, and the default path its last.
static int check_detection(const char *expected) {
    char found[512] = "portable";
    for (int p = 0; p < qg_kernel_count; p++) {
        const qg_kernel *kernel = qg_kernels[p];
        if (kernel->test_only || strcmp(kernel->name, "portable") == 0 || !kernel->is_supported()) continue;
        strncat(found, ",", sizeof found - strlen(found) - 1);
        strncat(found, kernel->name, sizeof found - strlen(found) - 1);
    }
    // Each path's peak probe runs its instruction only where the CPU has it
    // (an illegal instruction would end the process here).
    int probes_ok = 1;
    for (int p = 1; p < qg_path_count(); p++)
        probes_ok &= (qg_peak_probe_int8(p, 1000) > 0) == (qg_path_is_supported(p) != 0);
    const qg_cpu_features *f = qg_cpu_get_features();
    const char *best = qg_path_name(qg_path_best());
    const char *want_best = strrchr(expected, ',') ? strrchr(expected, ',') + 1 : expected;
    const int ok = strcmp(found, expected) == 0 && strcmp(best, want_best) == 0 && probes_ok;
    printf("kernel-tester: detection: dotprod %d, i8mm %d, avx2 %d, avx512vnni %d; paths %s, default %s (expected %s); "
           "peak probes run on supported paths only%s: %s\n",
           f->dotprod, f->i8mm, f->avx2, f->avx512vnni, found, best, expected, probes_ok ? "" : " (NOT)", ok ? "ok" : "WRONG");
    return ok ? 0 : 1;
}

/// qg_share_start shares out whole items evenly at any size: the parts
/// start at 0, end at `whole`, and each takes ⌊whole/parts⌋ items or one
/// more, also for 2^36 row groups in 2^31 blocks (a call of 2^38 rows on
/// avx2 at K ≤ 4), whose products pass 2^63. Parts are sampled: at
/// both ends, around each power of two, and at random.
static int check_shares(void) {
    static const int64_t sizes[][2] = {{16, 2}, {17, 2}, {5, 7}, {1, 1}, {INT64_C(1) << 36, INT64_C(1) << 31},
                                       {INT64_C(68719476736), INT64_C(2863311531)}, {INT64_MAX / 8, INT64_C(3) << 40}};
    int checked = 0;
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        const int64_t whole = sizes[i][0], parts = sizes[i][1], least = whole / parts;
        int64_t samples[200];
        int count = 0;
        samples[count++] = 0;
        samples[count++] = parts - 1;
        for (int b = 0; b < 63 && (INT64_C(1) << b) < parts; b++) {
            samples[count++] = (INT64_C(1) << b) - 1;
            samples[count++] = INT64_C(1) << b;
        }
        while (count < 200) samples[count++] = (int64_t)(((uint64_t)rand() << 33 ^ (uint64_t)rand() << 10 ^ (uint64_t)rand()) % (uint64_t)parts);
        for (int j = 0; j < count; j++) {
            const int64_t part = samples[j], start = qg_share_start(part, whole, parts), end = qg_share_start(part + 1, whole, parts);
            const int ok = start >= 0 && end <= whole && (end - start == least || end - start == least + 1) &&
                           (part != 0 || start == 0) && (part != parts - 1 || end == whole);
            if (!ok) {
                fprintf(stderr, "kernel-tester: %lld items in %lld parts: part %lld takes [%lld, %lld)\n", (long long)whole,
                        (long long)parts, (long long)part, (long long)start, (long long)end);
                return 1;
            }
            checked++;
        }
    }
    printf("kernel-tester: shares of row groups: %d parts of %d sizes up to 2^60 items, each ⌊items/parts⌋ or one more\n",
           checked, (int)(sizeof sizes / sizeof sizes[0]));
    return 0;
}

/// qg_choose_split's choices (12-row groups, blocks of at most 192 rows, steps
/// of 64 channels): M alone where its row groups share out evenly, N too
/// where they do not (or M has one group), and never N for a gain within the
/// 1/32 that packing X again costs (1/64 where X is read in place); N for no
/// gain where M's blocks would be too small to prepare and whole ones not.
static int check_split(void) {
    static const struct { int64_t m, steps; int threads, in_place; int64_t m_blocks, n_blocks, min_rows; } cases[] = {
        {192, 12, 2, 0, 2, 1},    // 16 groups: 8 and 8
        {204, 12, 2, 0, 2, 2},    // 17 groups: 9 and 8 would leave one thread 108 rows of 204; four tasks come out even
        {197, 12, 2, 0, 2, 1},    // 96 and 101 rows: N would gain only 2.5 % and pack X twice
        {197, 12, 2, 1, 2, 2},    // the same read in place: the 2.5 % is taken
        {3136, 4, 2, 0, 18, 1},   // 18 even blocks; N would read every row of X twice for nothing
        {3136, 4, 2, 1, 18, 1},   // in place too: N's 0.25 % would not pay for twice the tasks
        {3136, 4, 1, 0, 17, 1},   // one thread: the fewest blocks
        {1, 64, 2, 0, 1, 4},      // decode: N alone can share the work
        {64, 12, 2, 0, 1, 4},     // 6 groups: 36 and 28 rows, against four quarters of the steps
        {1, 64, 100, 0, 1, 64},   // past the simulated sizes: the bound, still every step its own task
        {128, 6, 2, 0, 1, 2},     // 11 groups: 60 and 68 rows, or halves of N (three blocks of two steps would not be even)
        {128, 18, 2, 0, 1, 2},    // 18 steps: two blocks of 9 (the power of two's 5, 5, 5, 3 leave one thread 10)
        {128, 24, 2, 0, 1, 4},    // 24 steps: the power of two's four blocks of 6, as even as two of 12
        {48, 12, 2, 0, 2, 1},     // 4 groups: 24 and 24 rows, as even as halves of N
        {48, 12, 2, 0, 1, 4, 32}, // the same where blocks of fewer than 32 rows go unprepared: quarters of N, 48 rows each
        {47, 12, 2, 0, 1, 4, 32}, // M's tail: 24 and 23 rows, or 47
        {48, 12, 2, 0, 2, 1, 49}, // no block of 48 rows would be prepared either
        {96, 12, 2, 0, 2, 1, 32}, // 48 and 48 rows: both prepared
        {73, 12, 2, 0, 2, 1, 32}, // 36 and 37 rows (M's tail in the larger): both prepared
        {2, 64, 2, 0, 1, 4, 32},  // decode: N as before
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const qg_split s =
            qg_choose_split(cases[i].m, 12, 192, cases[i].steps, 64, cases[i].threads, cases[i].in_place, cases[i].min_rows);
        const int64_t steps_per_block = s.nc / 64;
        const int covers = s.nc % 64 == 0 && steps_per_block * s.n_blocks >= cases[i].steps &&
                           steps_per_block * (s.n_blocks - 1) < cases[i].steps;
        if (s.m_blocks != cases[i].m_blocks || s.n_blocks != cases[i].n_blocks || !covers) {
            fprintf(stderr, "kernel-tester: split of M = %lld, %lld steps on %d threads (X in place %d, blocks prepared "
                    "from %lld rows): %lld m-blocks × "
                    "%lld n-blocks of %lld channels, expected %lld × %lld\n", (long long)cases[i].m, (long long)cases[i].steps,
                    cases[i].threads, cases[i].in_place, (long long)cases[i].min_rows, (long long)s.m_blocks, (long long)s.n_blocks, (long long)s.nc,
                    (long long)cases[i].m_blocks, (long long)cases[i].n_blocks);
            return 1;
        }
    }
    printf("kernel-tester: splits for threads: %zu cases as expected\n", sizeof cases / sizeof cases[0]);
    return 0;
}

/// MC for weights that fit the L3 fills the path's X block budget: the rows'
/// packed bytes reach at least half of x_block_target, unless MC is the most
/// the tile allows or one row group alone exceeds the budget. Counted from the
/// bytes of whole row groups (x_block_bytes(mr, kp) / mr), which some paths
/// pad: a row asked for alone would count as a whole group there.
static int check_block_budget(void) {
    static const int64_t ks[] = {64, 768, 4096, 11008};
    for (int p = 0; p < qg_kernel_count; p++) {
        const qg_kernel *kernel = qg_kernels[p];
        const int64_t mr = kernel->main.mr, most = kernel->max_row_groups * mr;
        for (size_t i = 0; i < sizeof ks / sizeof ks[0]; i++) {
            const int64_t kp = qg_packed_k(ks[i]), mc = qg_driver_block_rows(kernel, kp, 1 << 20, 0);
            const int64_t group = (int64_t)kernel->x_block_bytes(mr, kp), filled = mc / mr * group;
            const int ok = mc % mr == 0 && mc >= mr && mc <= most &&
                           (mc == most || group > kernel->x_block_target || 2 * filled >= kernel->x_block_target);
            if (!ok) {
                fprintf(stderr, "kernel-tester: %s: block rows at K = %lld: %lld (%lld bytes of packed rows; budget %lld, "
                        "tile's most %lld rows, one row group %lld bytes)\n", kernel->name, (long long)ks[i], (long long)mc,
                        (long long)filled, (long long)kernel->x_block_target, (long long)most, (long long)group);
                return 1;
            }
        }
    }
    printf("kernel-tester: block rows fill each path's X block budget at K = 64, 768, 4096 and 11008\n");
    return 0;
}

/// The per-thread scratch refuses a size that cannot be rounded up to whole
/// pages (it wrapped to 0 and was allocated as 0 bytes), and still serves one
/// that can.
static int check_scratch_limits(void) {
    if (qg_thread_scratch(QG_SCRATCH_X, SIZE_MAX) != NULL || qg_thread_scratch(QG_SCRATCH_X, SIZE_MAX - 4000) != NULL) {
        fprintf(stderr, "kernel-tester: the scratch took a size that wraps when rounded to pages\n");
        return 1;
    }
    if (qg_thread_scratch(QG_SCRATCH_X, 100) == NULL) {
        fprintf(stderr, "kernel-tester: the scratch refused 100 bytes\n");
        return 1;
    }
    printf("kernel-tester: scratch sizes that wrap when rounded to pages are refused\n");
    return 0;
}

/// The entry points refuse sizes QGEMM never passes (−3) on every path this
/// CPU has, before they read an argument's pointers (all NULL here) or size
/// any scratch from them.
static int check_entry_refusals(void) {
    for (int path = 0; path < qg_path_count(); path++) {
        if (!qg_path_is_supported(path)) continue;
        const qg_gemm_args bad[] = {{.m = -5, .n = 32, .k = 64}, {.m = 8, .n = -1, .k = 64}, {.m = 8, .n = 32, .k = -4},
                                    {.m = 8, .n = 32, .k = 64, .ldx = 63, .ldy = 32},
                                    {.m = 8, .n = 32, .k = 64, .ldx = 64, .ldy = 31}};
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
            if (qg_gemm(&bad[i], path, 1) != -3) {
                fprintf(stderr, "kernel-tester: path %d took M %lld, N %lld, K %lld, ldx %lld, ldy %lld\n", path,
                        (long long)bad[i].m, (long long)bad[i].n, (long long)bad[i].k, (long long)bad[i].ldx,
                        (long long)bad[i].ldy);
                return 1;
            }
        }
        if (!qg_w4_path_has_kernel(path)) continue;
        const qg_w4_args bad4[] = {{.m = -1, .n = 16, .k = 32, .group = 32}, {.m = 1, .n = -16, .k = 32, .group = 32},
                                   {.m = 1, .n = 16, .k = 0, .group = 32},   {.m = 1, .n = 16, .k = 32, .group = 0},
                                   {.m = 1, .n = 16, .k = 32, .group = 12},  {.m = 0, .n = 16, .k = 32, .group = 8192},
                                   {.m = 2, .n = 16, .k = 96, .group = 96, .ldx = qg_w4_row_bytes(96, 96) - 1, .ldy = 16},
                                   {.m = 2, .n = 16, .k = 32, .group = 32, .ldx = qg_w4_row_bytes(32, 32), .ldy = 15}};
        for (size_t i = 0; i < sizeof bad4 / sizeof bad4[0]; i++) {
            if (qg_w4_gemm(&bad4[i], path, 1) != -3) {
                fprintf(stderr, "kernel-tester: path %d took 4-bit M %lld, N %lld, K %lld, group %lld, ldx %lld, ldy %lld\n",
                        path, (long long)bad4[i].m, (long long)bad4[i].n, (long long)bad4[i].k, (long long)bad4[i].group,
                        (long long)bad4[i].ldx, (long long)bad4[i].ldy);
                return 1;
            }
        }
    }
    printf("kernel-tester: negative sizes, rows closer than their length and 4-bit group sizes outside the layout's are refused by every path's entry point\n");
    return 0;
}

/// MC for weights past half the L3: more rows than the X block budget gives
/// wherever the tile and the L3 allow more (every core's X block within a
/// quarter of the L3), never more than the tile allows, whole row groups;
/// for weights that fit, the budget's rows.
static int check_block_rows(void) {
    const int64_t l3 = qg_cpu_cache_bytes(3), kp = 11008, cores = qg_cpu_count();
    if (l3 <= 0) {
        printf("kernel-tester: block rows for large weights skipped: the OS reports no L3 size\n");
        return 0;
    }
    int grown = 0;
    for (int p = 0; p < qg_kernel_count; p++) {
        const qg_kernel *kernel = qg_kernels[p];
        const int64_t mr = kernel->main.mr, most = kernel->max_row_groups * mr, past = l3 / 2 / kp + 1;
        const int64_t row_bytes = (int64_t)kernel->x_block_bytes(mr, kp) / mr, room = l3 / 4 / cores / row_bytes;
        const int64_t budget = qg_driver_block_rows(kernel, kp, 1 << 20, 0);
        const int64_t big = qg_driver_block_rows(kernel, kp, 1 << 20, past), few = qg_driver_block_rows(kernel, kp, 5, past);
        const int64_t small = qg_driver_block_rows(kernel, kp, 1 << 20, 64);
        const int may_grow = budget < most && room >= budget + mr;
        const int ok = small == budget && few == 5 && big <= most && big >= budget &&
                       (big == budget || (big % mr == 0 && big <= room)) && (!may_grow || big > budget);
        if (!ok) {
            fprintf(stderr, "kernel-tester: %s: block rows at K = %lld: %lld for %lld channels (budget %lld, tile's most %lld, "
                    "the L3's room %lld), %lld for M = 5, %lld for 64 channels\n", kernel->name, (long long)kp, (long long)big,
                    (long long)past, (long long)budget, (long long)most, (long long)room, (long long)few, (long long)small);
            return 1;
        }
        grown += big > budget;
    }
    printf("kernel-tester: block rows for weights past half the L3: %d of %d paths take more rows than their budget\n",
           grown, qg_kernel_count);
    return 0;
}

int main(int argc, char **argv) {
    int cases = 3000;
    const char *forced[16];
    int n_forced = 0;
    const char *expected = NULL;
    int quantizers_only = 0;
    int shard = 0, shards = 1;
    // Line by line, so that the lines of testers run side by side do not mix.
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--cases") == 0 && i + 1 < argc) cases = atoi(argv[++i]);
        else if (strcmp(argv[i], "--shard") == 0 && i + 1 < argc && sscanf(argv[i + 1], "%d/%d", &shard, &shards) == 2 &&
                 shards >= 1 && shard >= 0 && shard < shards) i++;
        else if (strcmp(argv[i], "--force") == 0 && i + 1 < argc && n_forced < 16) forced[n_forced++] = argv[++i];
        else if (strcmp(argv[i], "--expect-paths") == 0 && i + 1 < argc) expected = argv[++i];
        else if (strcmp(argv[i], "--quantizers-only") == 0) quantizers_only = 1;
        else if (strcmp(argv[i], "--fork") == 0) return kernel_tester_check_fork();
        else {
            fprintf(stderr, "usage: kernel-tester [--cases N] [--force NAME]... [--expect-paths A,B,...] [--shard I/N] "
                            "[--quantizers-only] [--fork]\n");
            return 2;
        }
    }
    if (quantizers_only) {
        reseed(qg_kernel_count);
        return kernel_tester_check_quantizers(cases);
    }
    // A forced name that is no path would otherwise pass having tested nothing.
    for (int f = 0; f < n_forced; f++) {
        int known = 0;
        for (int p = 0; p < qg_kernel_count; p++) known |= strcmp(forced[f], qg_kernels[p]->name) == 0;
        if (!known) { fprintf(stderr, "kernel-tester: --force %s: no such path\n", forced[f]); return 2; }
    }
    if (expected && check_detection(expected) != 0) return 1;
    int failed = 0, tested = 0;
    for (int p = 0; p < qg_kernel_count; p++) {
        const qg_kernel *kernel = qg_kernels[p];
        if (p % shards != shard) continue;
        reseed(p);
        int force = 0;
        for (int f = 0; f < n_forced; f++) force |= strcmp(forced[f], kernel->name) == 0;
        if (n_forced > 0 && !force) continue;
        if (!force && !kernel->is_supported()) {
            printf("kernel-tester: %s skipped: this CPU lacks it (%s)\n", kernel->name, kernel->requires);
            continue;
        }
        tested++;
        // The tile-derived shapes: the library's one rule (qg_path_test_shapes).
        int64_t ms[QG_TEST_SHAPES_MAX], ns[QG_TEST_SHAPES_MAX], ks[QG_TEST_SHAPES_MAX];
        int nm = 0, nn = 0, nk = 0;
        if (qg_path_test_shapes(p + 1, 300, ms, &nm, ns, &nn, ks, &nk) != 0) {
            fprintf(stderr, "kernel-tester: no test shapes for %s\n", kernel->name);
            return 1;
        }
        long outputs = 0;
        int shapes = 0;
        uint32_t variant = 0;
        for (int ik = 0; ik < nk; ik++)
            for (int im = 0; im < nm; im++)
                for (int in = 0; in < nn; in++) {
                    const long r = run_case(kernel, (shape){ms[im], ns[in], ks[ik]}, variant++, 0);
                    shapes++;
                    if (r < 0) failed = 1; else outputs += r;
                }
        for (int c = 0; c < cases; c++) {
            const shape s = {1 + next() % 40, 1 + next() % 70, 1 + next() % 300};
            const long r = run_case(kernel, s, 0, 1);
            if (r < 0) failed = 1; else outputs += r;
        }
        printf("kernel-tester: %s (%s, %dx%d tile%s): %d tile-derived shapes + %d random cases, %ld output elements: %s\n",
               kernel->name, kernel->main.name, kernel->main.mr, kernel->main.nr,
               qg_tile_exists(&kernel->few_rows) ? " with a few-rows tile" : "", shapes, cases, outputs,
               failed ? "MISMATCH" : "bit-exact against the reference");
        if (failed) return 1;
        const long edges = kernel_tester_check_requantize_edges(kernel);
        if (edges < 0) return 1;
        printf("kernel-tester: %s requantization edges (every shift −31…3 × output zero points at powers of two × "
               "rounding, int8 and uint8, accumulators at the bound): %ld output elements: bit-exact against the reference\n", kernel->name, edges);
        const long long_sums = kernel_tester_check_long_sums(kernel);
        if (long_sums < 0) return 1;
        printf("kernel-tester: %s long sums (products of one sign at the largest magnitude, K 4 … 1,028, 1 and 5 rows): "
               "%ld output elements: bit-exact against the reference\n", kernel->name, long_sums);
        if (kernel->w4_main.run && kernel_tester_check_w4(kernel, cases / 4, force) != 0) return 1;
    }
    const int quantizers = n_forced == 0 && qg_kernel_count % shards == shard;
    if (tested == 0 && shards == 1) { fprintf(stderr, "kernel-tester: no kernel tested\n"); return 1; }
    if (!quantizers) return 0;
    if (check_shares() != 0 || check_split() != 0 || check_block_budget() != 0 || check_block_rows() != 0 || check_scratch_limits() != 0 ||
        check_entry_refusals() != 0)
        return 1;
    reseed(qg_kernel_count);
    return kernel_tester_check_quantizers(cases);
}
