// X·diag(1/s), the input a smoothed layer (SmoothQuant, AWQ-style 4-bit
// weights) quantizes: each value divided by its column's factor. IEEE
// division is correctly rounded, so every width of it gives the bits of a
// scalar `x / s` in the caller's rounding mode; what the vector copy buys is
// speed (a scalar division per value took as long as the 4-bit GEMM's own
// row preparation).
#include "qgemm.h"

#if defined(__x86_64__)
#include <immintrin.h>

__attribute__((target("avx2"))) static void qg_divide_row_avx2(const float *x, const float *divisor, int64_t k,
                                                               float *out) {
    int64_t i = 0;
    for (; i + 16 <= k; i += 16) {
        const __m256 a = _mm256_div_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(divisor + i));
        const __m256 b = _mm256_div_ps(_mm256_loadu_ps(x + i + 8), _mm256_loadu_ps(divisor + i + 8));
        _mm256_storeu_ps(out + i, a);
        _mm256_storeu_ps(out + i + 8, b);
    }
    for (; i < k; i++) out[i] = x[i] / divisor[i];
}
#endif

/// One row; `out` may be `x` itself (each value is read before it is written).
static void qg_divide_row_scalar(const float *x, const float *divisor, int64_t k, float *out) {
    for (int64_t i = 0; i < k; i++) out[i] = x[i] / divisor[i];
}

void qg_divide_columns(const float *x, int64_t rows, int64_t k, int64_t ldx, const float *divisor, float *out,
                       int64_t ldo) {
#if defined(__x86_64__)
    if (qg_cpu_get_features()->avx2) {
        for (int64_t m = 0; m < rows; m++) qg_divide_row_avx2(x + m * ldx, divisor, k, out + m * ldo);
        return;
    }
#endif
    for (int64_t m = 0; m < rows; m++) qg_divide_row_scalar(x + m * ldx, divisor, k, out + m * ldo);
}
