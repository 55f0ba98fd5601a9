// What the two oneDNN harnesses (dnnl_gemm.c, dnnl_matmul.c) share: the
// pseudo-random operands they time and check, and the exact sum a checked
// output is compared with. Each harness is one C file built on its own by
// scripts/bench-peers; this header holds static functions only.
#ifndef DNNL_OPERANDS_H
#define DNNL_OPERANDS_H

#include <stdint.h>
#include <stdlib.h>

/// One step of the operands' generator.
static inline uint64_t operands_next(uint64_t *s) { return *s = *s * 6364136223846793005ull + 1; }

/// X (m×k, activations 0 … x_max: 255, or 127 for sums no int16 pair can
/// saturate) and W (n×k, −128 … 127) from a fixed seed; returns the
/// generator's state for any further values a harness draws.
static inline uint64_t fill_operands(uint8_t *x, int8_t *w, long long m, long long k, long long n, int x_max) {
    uint64_t s = 0x9E3779B97F4A7C15ull;
    for (long long i = 0; i < m * k; i++) x[i] = (uint8_t)(operands_next(&s) >> 56) & x_max;
    for (long long i = 0; i < n * k; i++) w[i] = (int8_t)(operands_next(&s) >> 56);
    return s;
}

/// Σ_p (x[i][p] − zero)·w[j][p] over k, exactly.
static inline int64_t exact_dot(const uint8_t *x, const int8_t *w, long long i, long long j, long long k,
                                int32_t zero) {
    int64_t sum = 0;
    for (long long p = 0; p < k; p++) sum += ((int32_t)x[i * k + p] - zero) * (int32_t)w[j * k + p];
    return sum;
}

/// The rows of an M-row output a timed case is checked at: every row up to
/// `most`, else `most` rows spread evenly from the first to the last (the
/// row blocks and tails a library splits M into). Returns how many it wrote.
static inline int sampled_rows(long long m, long long *rows, int most) {
    if (m <= most) {
        for (long long i = 0; i < m; i++) rows[i] = i;
        return (int)m;
    }
    for (int r = 0; r < most; r++) rows[r] = (long long)r * (m - 1) / (most - 1);
    return most;
}

/// A check line: "check ROUTE ok" or "check ROUTE wrong WRONG CHECKED
/// LARGEST_ERROR", and for a timed case (threads > 0) "check ROUTE M K N
/// THREADS ok|wrong …".
static inline void print_check(const char *route, long long m, long long k, long long n, int threads,
                               long long wrong, long long checked, double largest) {
    printf("check %s ", route);
    if (threads > 0) printf("%lld %lld %lld %d ", m, k, n, threads);
    if (wrong) printf("wrong %lld %lld %.0f\n", wrong, checked, largest);
    else printf("ok\n");
    fflush(stdout);
}

static int by_value(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/// Sorts the `runs` (≥ 1) timed seconds and returns their median: the middle
/// run, or the mean of the two middle ones for an even count, as qgemm bench
/// takes it.
static inline double sorted_median(double *times, int runs) {
    qsort(times, (size_t)runs, sizeof times[0], by_value);
    return runs % 2 ? times[runs / 2] : (times[runs / 2 - 1] + times[runs / 2]) / 2;
}

#endif
