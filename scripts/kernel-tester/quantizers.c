// The activation quantizer's levels (core/quantize.h: scalar, AVX2, AVX-512)
// against this file's own scalar reference, each level the CPU has, so the
// narrower ones stay tested where the library never picks them:
//   - qg_quantize_rows: rows of every length up to 2·64+2 (the AVX-512 copy
//     takes 64 values a step, AVX2 32, then a masked or padded last step)
//     and longer ones,
//     strides, uint8 and int8, zero points across the type, scales from
//     2^-30 to 2^30 (powers of two among them, so x / S lands on ties), values
//     on ties and integers and within a few ulps of them, arbitrary finite
//     bit patterns, subnormals, ±0 and ±Inf;
//   - qg_quantize_rows again on rows of nothing but ties and integers of
//     x / scale and their neighbours, for scales of any significand (the
//     AVX-512 copy divides through a reciprocal where it can prove that
//     gives the division's bytes);
//   - both of the above again with the thread rounding downward, upward and
//     toward zero (fesetround): the quotient x / S is then rounded so too,
//     in the reference as in the levels, but the rounding to an integer is
//     half away from zero in every mode (the SIMD levels rounded ties by an
//     addition, which a directed mode rounded otherwise);
//   - qg_row_min_max: the same kinds of rows, with NaN and ±Inf planted at
//     random positions (the first one's index is returned) and zeros of both
//     signs (a zero minimum or maximum is +0); up to 40 rows, so that the
//     AVX-512 copy's sixteen-row groups (rows of up to 64 values) and the
//     rows after them are both met;
//   - qg_divide_columns (a smoothed layer's X·diag(1/s), in vector registers
//     where the CPU has them) against a scalar division, value by value, on
//     every bit pattern of x over divisors from subnormal to huge, and
//     qg_quantize_static_rows_threads (which runs it and the quantizer a
//     chunk at a time, its rows shared out over threads) against one scalar
//     loop of both, across its chunks and parts, with a NaN planted now and
//     then, in every rounding mode.
#include <fenv.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qgemm.h"
#include "quantize.h"
#include "threadpool.h"

/// The references' rounding, half away from zero, written independently of
/// the library's helper it checks (core/round_half_away.h: truncate, then a step),
/// and right in every rounding mode and under any -march: in double,
/// |v| + ½ is exact for |v| ≥ 2^-29 and below that lands between ½ and 1,
/// so floor never sees a sum moved across an integer; from 2^23 on, every
/// float is an integer already.
static float qg_tester_round_half_away(float v) {
    if (!(fabsf(v) < 8388608.0f)) return v; // integers, ±Inf and NaN
    return copysignf((float)floor((double)fabsf(v) + 0.5), v);
}

uint32_t kernel_tester_next(void);
#define next kernel_tester_next

static float bits_float(uint32_t b) { float f; memcpy(&f, &b, 4); return f; }
static uint32_t float_bits(float f) { uint32_t b; memcpy(&b, &f, 4); return b; }

/// clamp(round-half-away(x / scale) + zero) in the type's range.
static uint8_t reference_quantize(float x, float scale, int32_t zero, int x_unsigned) {
    const int32_t qmin = x_unsigned ? 0 : -128, qmax = x_unsigned ? 255 : 127;
    const float v = x / scale;
    if (v >= (float)qmax - (float)zero) return (uint8_t)qmax;
    if (v <= (float)qmin - (float)zero) return (uint8_t)qmin;
    const int32_t r = (int32_t)qg_tester_round_half_away(v) + zero;
    return (uint8_t)(r < qmin ? qmin : r > qmax ? qmax : r);
}

/// One value of a row: the kinds listed above, for a row scaled by `scale`.
static float row_value(float scale) {
    switch (next() % 6) {
    case 0: { // a tie or an integer of x / scale, or a few ulps either side
        const float n = (float)((int32_t)(next() % 600) - 300) + (next() % 2 ? 0.5f : 0.0f);
        float x = n * scale;
        for (int step = (int)(next() % 9) - 4; step != 0; step += step > 0 ? -1 : 1)
            x = nextafterf(x, step > 0 ? INFINITY : -INFINITY);
        return x;
    }
    case 1: { // any finite bit pattern
        uint32_t b;
        do b = next(); while ((b & 0x7F800000u) == 0x7F800000u);
        return bits_float(b);
    }
    case 2: return bits_float((next() & 0x807FFFFFu)); // subnormals and ±0
    case 3: return next() % 2 ? INFINITY : -INFINITY;
    default: return ((float)(int32_t)next() / 2147483648.0f) * 300.0f * scale;
    }
}

static int check_quantize(qg_quantizer level, int cases) {
    for (int c = 0; c < cases; c++) {
        const int64_t k = c % 3 == 0 ? 1 + next() % 300 : 1 + c % 130, rows = 1 + next() % 3, ldx = k + next() % 4,
                      ldo = k + next() % 4;
        const int x_unsigned = (int)(next() % 2);
        float *x = malloc(sizeof(float) * (size_t)(rows * ldx)), *scale = malloc(sizeof(float) * (size_t)rows);
        int32_t *zero = malloc(sizeof(int32_t) * (size_t)rows);
        uint8_t *out = malloc((size_t)(rows * ldo)), *want = malloc((size_t)(rows * ldo));
        for (int64_t m = 0; m < rows; m++) {
            const int power = next() % 2; // a power of two, or any significand
            scale[m] = ldexpf(power ? 1.0f : 1.0f + (float)(next() % (1u << 23)) / 8388608.0f, (int)(next() % 61) - 30);
            zero[m] = x_unsigned ? (int32_t)(next() % 256) : (int32_t)(next() % 256) - 128;
            for (int64_t i = 0; i < ldx; i++) x[m * ldx + i] = row_value(scale[m]);
        }
        memset(out, 0xA5, (size_t)(rows * ldo));
        memset(want, 0xA5, (size_t)(rows * ldo));
        for (int64_t m = 0; m < rows; m++)
            for (int64_t i = 0; i < k; i++) want[m * ldo + i] = reference_quantize(x[m * ldx + i], scale[m], zero[m], x_unsigned);
        qg_quantize_rows_with(level, x, rows, k, ldx, scale, zero, x_unsigned, out, ldo);
        for (int64_t j = 0; j < rows * ldo; j++)
            if (out[j] != want[j]) {
                const int64_t m = j / ldo, i = j % ldo;
                fprintf(stderr, "MISMATCH quantize %s: K=%lld row %lld index %lld x=%a scale=%a zero=%d unsigned=%d: %d, want %d%s\n",
                        qg_quantizer_name(level), (long long)k, (long long)m, (long long)i, (double)x[m * ldx + i],
                        (double)scale[m], zero[m], x_unsigned, out[j], want[j], i >= k ? " (past the row)" : "");
                return -1;
            }
        free(x), free(scale), free(zero), free(out), free(want);
    }
    return 0;
}

static int check_min_max(qg_quantizer level, int cases) {
    for (int c = 0; c < cases; c++) {
        // A quarter of the cases take up to 40 rows: the AVX-512 copy ranges
        // rows of up to 64 values sixteen at a time.
        const int64_t k = c % 3 == 0 ? next() % 300 : c % 131, rows = next() % 4 == 0 ? 1 + next() % 40 : 1 + next() % 3;
        const int64_t ldx = k + next() % 4;
        float *x = malloc(sizeof(float) * (size_t)(rows * ldx + 1));
        float mins[40], maxs[40];
        for (int64_t j = 0; j < rows * ldx; j++) {
            x[j] = next() % 8 == 0 ? (next() % 2 ? 0.0f : -0.0f) : row_value(1.0f);
            if (!isfinite(x[j])) x[j] = 1.0f; // non-finite values only where planted below
        }
        int64_t want_bad = -1;
        if (k > 0 && next() % 3 == 0) { // plant NaN or ±Inf
            const int64_t m = next() % rows, i = next() % k;
            const float bad[3] = {NAN, INFINITY, -INFINITY};
            x[m * ldx + i] = bad[next() % 3];
            want_bad = m * k + i;
        }
        const int64_t got_bad = qg_row_min_max_with(level, x, rows, k, ldx, mins, maxs);
        if (got_bad != want_bad) {
            fprintf(stderr, "MISMATCH min/max %s: K=%lld: first non-finite at %lld, want %lld\n", qg_quantizer_name(level),
                    (long long)k, (long long)got_bad, (long long)want_bad);
            return -1;
        }
        const int64_t checked_rows = want_bad < 0 ? rows : want_bad / (k > 0 ? k : 1);
        for (int64_t m = 0; m < checked_rows; m++) {
            float lo = INFINITY, hi = -INFINITY;
            for (int64_t i = 0; i < k; i++) lo = fminf(lo, x[m * ldx + i]), hi = fmaxf(hi, x[m * ldx + i]);
            if (k == 0) lo = hi = 0.0f;
            if (lo == 0.0f) lo = 0.0f;
            if (hi == 0.0f) hi = 0.0f;
            if (float_bits(mins[m]) != float_bits(lo) || float_bits(maxs[m]) != float_bits(hi)) {
                fprintf(stderr, "MISMATCH min/max %s: K=%lld row %lld: [%a, %a], want [%a, %a]\n", qg_quantizer_name(level),
                        (long long)k, (long long)m, (double)mins[m], (double)maxs[m], (double)lo, (double)hi);
                return -1;
            }
        }
        free(x);
    }
    return 0;
}

/// Rows made only of ties and integers of x / scale and their neighbours up
/// to 8 ulps away, every integer and half-integer in −300…300 and next to
/// ±1024 (the quotient's clamp), for `cases`
/// scales of any significand (and the ends of the range where the AVX-512
/// copy divides through a reciprocal, 2^-100 and 2^100, and just beyond):
/// where a reciprocal's rounding could differ from the division's, densely.
static int check_near_ties(qg_quantizer level, int cases) {
    enum { steps = 17, values = (1202 + 12) * steps };
    float *x = malloc(sizeof(float) * values);
    uint8_t *out = malloc(values), *want = malloc(values);
    for (int c = 0; c < cases; c++) {
        const float ends[] = {0x1p-100f, 0x1p100f, 0x1.fffffep-101f, 0x1.000002p100f};
        const float significand = 1.0f + (float)(next() % (1u << 23)) / 8388608.0f;
        const float scale = c < 4 ? ends[c] * (c < 2 ? 1.0f : significand) : ldexpf(significand, (int)(next() % 61) - 30);
        const int x_unsigned = (int)(next() % 2);
        const int32_t zero = x_unsigned ? (int32_t)(next() % 256) : (int32_t)(next() % 256) - 128;
        int64_t i = 0;
        for (int t = 0; t < 1202 + 12; t++) { // n = twice / 2: integers and half-integers
            // −300…300.5, then ±1022…±1024.5, where the quotient meets the ±1024 clamp.
            const int twice = t < 1202 ? t - 600 : (t - 1202 < 6 ? 2044 + (t - 1202) : -2044 - (t - 1208));
            const float centre = ((float)twice / 2.0f) * scale;
            float below = centre, above = centre;
            x[i++] = centre;
            for (int step = 0; step < steps / 2; step++) {
                below = nextafterf(below, -INFINITY), above = nextafterf(above, INFINITY);
                x[i++] = below, x[i++] = above;
            }
        }
        for (int64_t j = 0; j < i; j++) want[j] = reference_quantize(x[j], scale, zero, x_unsigned);
        qg_quantize_rows_with(level, x, 1, i, i, &scale, &zero, x_unsigned, out, i);
        for (int64_t j = 0; j < i; j++)
            if (out[j] != want[j]) {
                fprintf(stderr, "MISMATCH quantize %s near a tie: x=%a scale=%a zero=%d unsigned=%d: %d, want %d\n",
                        qg_quantizer_name(level), (double)x[j], (double)scale, zero, x_unsigned, out[j], want[j]);
                free(x), free(out), free(want);
                return -1;
            }
    }
    free(x), free(out), free(want);
    return 0;
}

/// The cut of a row-wise job into parts (qg_row_parts_with): a part per 2^15
/// values with the workers asleep; with some spinning, once the job holds two
/// parts of 2^13 values, a part for the caller and each spinning worker the
/// call may use. The parts cover the rows, and no part is empty.
static int check_row_parts(void) {
    static const struct { int64_t rows, k; int threads, warm; int64_t parts; } cases[] = {
        {128, 384, 2, 0, 1},     // 49,152 values: under two parts' 2^15 asleep
        {128, 384, 2, 1, 2},     // the same with the worker spinning: a part for it and the caller
        {128, 384, 1, 4, 1},     // one thread never splits
        {16, 384, 2, 1, 1},      // 6,144 values: not two parts of 2^13
        {64, 384, 4, 1, 2},      // the one spinning worker and the caller
        {64, 384, 4, 8, 4},      // warm: every thread the call may use, none sent to sleep
        {32, 384, 2, 1, 1},      // 12,288 values: not two parts of 2^13
        {48, 384, 8, 7, 8},      // two parts of 2^13: then a part for each of the 8 threads
        {128, 1536, 8, 1, 6},    // asleep gives more (196,608 / 2^15 = 6) than warm (2)
        {1024, 4096, 200, 200, 64}, // never more than QG_MAX_ROW_PARTS
        {3, 100000, 8, 8, 3},    // never more parts than rows
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t part_rows = 0;
        const int64_t parts = qg_row_parts_with(cases[i].rows, cases[i].k, cases[i].threads, cases[i].warm, &part_rows);
        const int covers = part_rows * parts >= cases[i].rows && part_rows * (parts - 1) < cases[i].rows;
        if (parts != cases[i].parts || !covers) {
            fprintf(stderr, "kernel-tester: row parts of %lld×%lld on %d threads, %d warm: %lld parts of %lld rows, expected %lld\n",
                    (long long)cases[i].rows, (long long)cases[i].k, cases[i].threads, cases[i].warm, (long long)parts,
                    (long long)part_rows, (long long)cases[i].parts);
            return 1;
        }
    }
    printf("kernel-tester: row-wise jobs' parts (asleep and spinning workers): %zu cases as expected\n",
           sizeof cases / sizeof cases[0]);
    return 0;
}

/// qg_divide_columns against `x / d` one value at a time (volatile: kept
/// scalar), bit for bit (NaN only as NaN), rows of 1…40 values with a
/// stride, in the current rounding mode.
static int check_divide_columns(int cases) {
    float x[3 * 48], d[40], out[3 * 40];
    for (int c = 0; c < cases; c++) {
        const int64_t k = 1 + (int64_t)(next() % 40), rows = 1 + (int64_t)(next() % 3), ldx = k + (int64_t)(next() % 8);
        for (int64_t i = 0; i < rows * ldx; i++) x[i] = bits_float(next());
        // Positive finite divisors of any exponent, subnormals included.
        for (int64_t i = 0; i < k; i++) d[i] = bits_float((next() % 0x7F800000u) | 1u);
        qg_divide_columns(x, rows, k, ldx, d, out, k);
        for (int64_t m = 0; m < rows; m++)
            for (int64_t i = 0; i < k; i++) {
                volatile float want = x[m * ldx + i];
                want = want / d[i];
                const float got = out[m * k + i];
                if (isnan(want) ? !isnan(got) : float_bits(got) != float_bits(want)) {
                    fprintf(stderr, "MISMATCH divide columns: %a / %a gave %a, want %a (K %lld)\n", (double)x[m * ldx + i],
                            (double)d[i], (double)got, (double)want, (long long)k);
                    return 1;
                }
            }
    }
    return 0;
}

/// qg_quantize_static_rows_threads against clamp(round-half-away((x / d) /
/// scale) + zero), or without a divisor of x / scale, value by value: rows
/// of up to 600 values (the smoothed rows go in chunks of 256), now and then
/// 80 rows of 820 to 1,000 (shared out over the threads), finite values of
/// any exponent and ±Inf, scales from 2^-30 to 2^30, zero points across
/// the type, 1 to 3 threads; now and then a NaN (sometimes two), whose
/// first index must come back with nothing of its row written.
static int check_quantize_static(int cases) {
    enum { most = 80 * 1000 };
    static float x[most], d[1000];
    static uint8_t out[most];
    for (int c = 0; c < cases; c++) {
        // Big: at least 2^16 values, so that two or more threads get parts.
        const int big = next() % 8 == 0;
        const int64_t k = big ? 820 + (int64_t)(next() % 181) : 1 + (int64_t)(next() % 600);
        const int64_t rows = big ? 80 : 1 + (int64_t)(next() % 2);
        const int x_unsigned = (int)(next() % 2), smoothed = next() % 4 != 0, threads = 1 + (int)(next() % 3);
        const int32_t zero = x_unsigned ? (int32_t)(next() % 256) : (int32_t)(next() % 256) - 128;
        const float scale = ldexpf(1.0f + (float)(next() % 4096) / 4096.0f, (int)(next() % 61) - 30);
        for (int64_t i = 0; i < rows * k; i++) {
            uint32_t b = next();
            if ((b & 0x7F800000u) == 0x7F800000u && (b & 0x007FFFFFu)) b &= 0xFF800000u; // NaN → ±Inf
            x[i] = next() % 4 ? ldexpf((float)(int32_t)b / 2147483648.0f, (int)(next() % 40) - 20) : bits_float(b);
        }
        for (int64_t i = 0; i < k; i++) d[i] = bits_float((next() % 0x7F800000u) | 1u);
        // A NaN now and then (in big cases every other time), and sometimes
        // a second one later on: the first must come back, whichever part
        // of the rows a thread finishes first.
        int64_t planted = -1;
        if (next() % (big ? 2 : 8) == 0) {
            planted = (int64_t)(next() % (uint32_t)(rows * k));
            x[planted] = bits_float(0x7FC00000u);
            if (next() % 2 == 0 && planted + 1 < rows * k)
                x[planted + 1 + (int64_t)(next() % (uint32_t)(rows * k - planted - 1))] = bits_float(0x7FC00000u);
        }
        memset(out, 0xA5, (size_t)(rows * k));
        const int64_t got = qg_quantize_static_rows_threads(x, rows, k, k, smoothed ? d : NULL, scale, zero, x_unsigned,
                                                            out, k, threads);
        if (got != planted) {
            fprintf(stderr, "MISMATCH quantize %s (static rows): returned %lld, the first NaN is at %lld (%lld×%lld, %d threads)\n",
                    qg_quantizer_name(qg_widest_quantizer()), (long long)got, (long long)planted, (long long)rows, (long long)k,
                    threads);
            return 1;
        }
        const int32_t qmin = x_unsigned ? 0 : -128, qmax = x_unsigned ? 255 : 127;
        for (int64_t i = 0; i < rows * k; i++) {
            // With a NaN, only the rows before its own are sure to be written.
            if (planted >= 0 && i >= planted / k * k) {
                if (i / k == planted / k && out[i] != 0xA5) {
                    fprintf(stderr, "MISMATCH quantize %s (static rows): [%lld] written in the NaN's row\n",
                            qg_quantizer_name(qg_widest_quantizer()), (long long)i);
                    return 1;
                }
                continue;
            }
            volatile float v = x[i];
            if (smoothed) v = v / d[i % k];
            v = v / scale;
            float q = qg_tester_round_half_away(v);
            q = fminf(fmaxf(q, (float)(qmin - zero)), (float)(qmax - zero));
            const uint8_t want = (uint8_t)((int32_t)q + zero);
            if (out[i] != want) {
                fprintf(stderr, "MISMATCH quantize %s (static rows): x=%a / %a (smoothed %d), scale=%a zero=%d unsigned=%d: %d, "
                                "want %d (%lld×%lld, [%lld], %d threads)\n",
                        qg_quantizer_name(qg_widest_quantizer()), (double)x[i], (double)d[i % k], smoothed, (double)scale, zero, x_unsigned, out[i], want,
                        (long long)rows, (long long)k, (long long)i, threads);
                return 1;
            }
        }
    }
    return 0;
}

/// Every level this CPU has; 0, or 1 on a mismatch (reported).
int kernel_tester_check_quantizers(int cases) {
    if (check_row_parts() != 0) return 1;
    for (int level = 0; level < QG_QUANTIZER_COUNT; level++) {
        if (!qg_quantizer_supported((qg_quantizer)level)) {
            printf("kernel-tester: quantizer %s skipped: this CPU lacks it\n", qg_quantizer_name((qg_quantizer)level));
            continue;
        }
        if (check_quantize((qg_quantizer)level, cases) != 0 || check_min_max((qg_quantizer)level, cases) != 0 ||
            check_near_ties((qg_quantizer)level, cases) != 0)
            return 1;
        static const int directed[] = {FE_DOWNWARD, FE_UPWARD, FE_TOWARDZERO};
        const int directed_cases = cases / 4 > 0 ? cases / 4 : 1;
        for (int d = 0; d < 3; d++) {
            const int mode = fegetround();
            fesetround(directed[d]);
            const int failed = check_quantize((qg_quantizer)level, directed_cases) != 0 ||
                               check_near_ties((qg_quantizer)level, directed_cases) != 0;
            fesetround(mode);
            if (failed) {
                fprintf(stderr, "kernel-tester: quantizer %s differs from the reference when rounding %s\n",
                        qg_quantizer_name((qg_quantizer)level), d == 0 ? "downward" : d == 1 ? "upward" : "toward zero");
                return 1;
            }
        }
        printf("kernel-tester: quantizer %s: %d quantize and %d min/max calls and %d scales' rows of near-ties, equal to the "
               "scalar reference; %d quantize calls and scales' rows in each directed rounding mode too\n",
               qg_quantizer_name((qg_quantizer)level), cases, cases, cases, directed_cases);
    }
    // After the levels: a planted fault in one of them is reported as that
    // level's mismatch first (check-kernels greps for it).
    {
        static const int modes[] = {FE_TONEAREST, FE_DOWNWARD, FE_UPWARD, FE_TOWARDZERO};
        const int mode = fegetround();
        int failed = 0;
        for (int r = 0; r < 4 && !failed; r++) {
            fesetround(modes[r]);
            failed = check_divide_columns(cases) != 0 || check_quantize_static(cases / 4 > 0 ? cases / 4 : 1) != 0;
        }
        fesetround(mode);
        if (failed) return 1;
        printf("kernel-tester: smoothed rows' division: %d calls, and %d of the static quantization (smoothed or not, "
               "1 to 3 threads), in each of the four rounding modes equal to a scalar loop\n", cases, cases / 4 > 0 ? cases / 4 : 1);
    }
    return 0;
}
