// Times oneDNN's dnnl_gemm_u8s8s32 (uint8 activations X[M×K] times int8
// weights W[N×K]ᵀ into int32 C[M×N], row-major, no requantization) for
// scripts/bench-peers. Reads lines "M K N THREADS MIN_SECONDS [cold BYTES CHUNK]" on
// stdin and prints "M K N THREADS GOPS_MEDIAN GOPS_BEST RUNS" for each; "cold
// BYTES CHUNK" evicts the caches before every timed run with a read of BYTES
// bytes in chunks of CHUNK, each read twice (cache_evictor.h). The thread count goes to oneDNN's OpenMP runtime
// (omp_set_num_threads).
//
// First it checks the call's arithmetic on this CPU: full-range operands
// (uint8 0…255, int8 −128…127, 64×256×128, activation offset −128) must give
// the exact int32 sums. Without VNNI, oneDNN adds pairs of products in int16
// with saturation (VPMADDUBSW), and then they do not. It prints "check gemm ok"
// or "check gemm wrong WRONG CHECKED LARGEST_ERROR" and goes on timing. Each
// timed case is checked too, where oneDNN picks its kernel (by shape and
// thread count): the last timed run's output on up to 8 rows spread over M
// (dnnl_operands.h) against the exact sums, printed as "check gemm M K N
// THREADS ok" or "... wrong WRONG CHECKED LARGEST_ERROR" before its timing line.
#include <oneapi/dnnl/dnnl.h>
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cache_evictor.h"
#include "dnnl_operands.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/// C's rows (every row, or up to 8 spread over M for a timed case, threads >
/// 0) against the exact sums of X − 128 and W; prints the check line.
static void check_sums(const int32_t *c, const uint8_t *x, const int8_t *w, long long m, long long k, long long n,
                       int threads) {
    long long rows[8], wrong = 0, checked = 0;
    double largest = 0;
    const int nrows = threads > 0 ? sampled_rows(m, rows, 8) : (int)m;
    for (int r = 0; r < nrows; r++)
        for (long long j = 0; j < n; j++, checked++) {
            const long long i = threads > 0 ? rows[r] : r;
            const double error = fabs((double)c[i * n + j] - (double)exact_dot(x, w, i, j, k, 128));
            if (error > 0) wrong++;
            if (error > largest) largest = error;
        }
    print_check("gemm", m, k, n, threads, wrong, checked, largest);
}

static void arithmetic_check(void) {
    const long long m = 64, k = 256, n = 128;
    omp_set_num_threads(1);
    uint8_t *x = malloc((size_t)(m * k));
    int8_t *w = malloc((size_t)(n * k));
    int32_t *c = malloc(sizeof(int32_t) * (size_t)(m * n));
    fill_operands(x, w, m, k, n, 255);
    const int32_t co = 0;
    const uint8_t ao = 128;  // oneDNN subtracts its A offset: X − 128
    if (dnnl_gemm_u8s8s32('N', 'T', 'F', m, n, k, 1.0f, x, k, ao, w, k, 0, 0.0f, c, n, &co) != dnnl_success) {
        fprintf(stderr, "dnnl_gemm_u8s8s32 failed\n");
        exit(1);
    }
    check_sums(c, x, w, m, k, n, 0);
    free(x); free(w); free(c);
}

int main(void) {
    arithmetic_check();
    long long m, k, n;
    int threads;
    long long cold, cold_chunk;
    double min_seconds;
    while (read_case(&m, &k, &n, &threads, &min_seconds, &cold, &cold_chunk)) {
        omp_set_num_threads(threads);
        uint8_t *x = malloc((size_t)(m * k));
        int8_t *w = malloc((size_t)(n * k));
        int32_t *c = malloc(sizeof(int32_t) * (size_t)(m * n));
        fill_operands(x, w, m, k, n, 255);
        const int32_t co = 0;
        // C = X · Wᵀ: A = X (M×K, no transpose), B = W stored N×K, transposed;
        // X's offset 128, as the arithmetic check and the other peers have it
        // (offset 0 let oneDNN skip its correction of the sums).
#define QG_DNNL_CALL dnnl_gemm_u8s8s32('N', 'T', 'F', m, n, k, 1.0f, x, k, 128, w, k, 0, 0.0f, c, n, &co)
        if (QG_DNNL_CALL != dnnl_success) { fprintf(stderr, "dnnl_gemm_u8s8s32 failed\n"); return 1; }
        cache_evictor evictor = {NULL, 0};
        if (cold) evictor = evictor_make(cold, cold_chunk);
        static double times[100000];
        int runs = 0;
        const double start = now();
        while (runs < 5 || (now() - start < min_seconds && runs < 100000)) {
            if (cold) evictor_run(&evictor, threads);
            const double t0 = now();
            QG_DNNL_CALL;
            times[runs++] = now() - t0;
        }
        // The last timed run's output, at this shape and thread count.
        check_sums(c, x, w, m, k, n, threads);
        const double median = sorted_median(times, runs);
        const double ops = 2.0 * (double)m * (double)n * (double)k;
        printf("%lld %lld %lld %d %.6f %.6f %d\n", m, k, n, threads, ops / median / 1e9, ops / times[0] / 1e9, runs);
        fflush(stdout);
        free(x); free(w); free(c);
        evictor_free(&evictor);
    }
    return 0;
}
