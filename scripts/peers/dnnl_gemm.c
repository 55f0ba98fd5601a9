// Times oneDNN's dnnl_gemm_u8s8s32 (uint8 activations X[M×K] times int8
// weights W[N×K]ᵀ into int32 C[M×N], row-major, no requantization) for
// scripts/bench-peers. Reads lines "M K N THREADS MIN_SECONDS" on stdin and
// prints "M K N THREADS GOPS_MEDIAN GOPS_BEST RUNS" for each. The thread count
// goes to oneDNN's OpenMP runtime (omp_set_num_threads).
#include <oneapi/dnnl/dnnl.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int by_value(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(void) {
    long long m, k, n;
    int threads;
    double min_seconds;
    while (scanf("%lld %lld %lld %d %lf", &m, &k, &n, &threads, &min_seconds) == 5) {
        omp_set_num_threads(threads);
        uint8_t *x = malloc((size_t)(m * k));
        int8_t *w = malloc((size_t)(n * k));
        int32_t *c = malloc(sizeof(int32_t) * (size_t)(m * n));
        uint64_t s = 0x9E3779B97F4A7C15ull;
        for (long long i = 0; i < m * k; i++) { s = s * 6364136223846793005ull + 1; x[i] = (uint8_t)(s >> 56); }
        for (long long i = 0; i < n * k; i++) { s = s * 6364136223846793005ull + 1; w[i] = (int8_t)(s >> 56); }
        const int32_t co = 0;
        // C = X · Wᵀ: A = X (M×K, no transpose), B = W stored N×K, transposed.
#define QG_DNNL_CALL dnnl_gemm_u8s8s32('N', 'T', 'F', m, n, k, 1.0f, x, k, 0, w, k, 0, 0.0f, c, n, &co)
        if (QG_DNNL_CALL != dnnl_success) { fprintf(stderr, "dnnl_gemm_u8s8s32 failed\n"); return 1; }
        double times[100000];
        int runs = 0;
        const double start = now();
        while (runs < 5 || (now() - start < min_seconds && runs < 100000)) {
            const double t0 = now();
            QG_DNNL_CALL;
            times[runs++] = now() - t0;
        }
        qsort(times, (size_t)runs, sizeof times[0], by_value);
        const double ops = 2.0 * (double)m * (double)n * (double)k;
        printf("%lld %lld %lld %d %.6f %.6f %d\n", m, k, n, threads, ops / times[runs / 2] / 1e9, ops / times[0] / 1e9, runs);
        fflush(stdout);
        free(x); free(w); free(c);
    }
    return 0;
}
