// The upper triangle of xᵀx in double (qgemm.h, qg_gram_upper_part): the
// Hessian that GPTQ-style error compensation builds from calibration rows.
// A product of two floats is exact in double, so each element's value
// depends only on the order of its sum over the rows, which every copy here
// keeps (row 0 first); fused and separate multiply-adds then agree, and the
// AVX2 copy may use FMA. The rows are taken 64 at a time and the triangle
// in tiles of 4×8, so each pass reads a block of rows that stays in the L2
// instead of streaming the whole triangle (9 MiB at K = 1536) from memory
// for every row.
#include "qgemm.h"

#include <string.h>

#pragma clang fp contract(off)

/// Calibration rows per pass: 64 rows of K floats stay in a 512 KiB L2 up to
/// K ≈ 2000.
#define QG_GRAM_ROWS 64

/// Rows i0 … i1 − 1 of the triangle, columns from j0 (and from i), over rows
/// r0 … r1 − 1, in plain C: a calibration row at a time, so that each
/// element still takes the rows in order and the compiler can vectorize
/// along j.
static void qg_gram_scalar(const float *x, int64_t r0, int64_t r1, int64_t k, int64_t i0, int64_t i1, int64_t j0,
                           double *h) {
    for (int64_t r = r0; r < r1; r++) {
        const float *row = x + r * k;
        for (int64_t i = i0; i < i1; i++) {
            const double xi = (double)row[i];
            double *out = h + i * k;
            for (int64_t j = j0 > i ? j0 : i; j < k; j++) out[j] += xi * (double)row[j];
        }
    }
}

#if defined(__x86_64__)
#include <immintrin.h>

/// Rows i0 … i0 + 3 of the triangle, columns i0 … in whole tiles of 8, over
/// rows r0 … r1 − 1 (at most QG_GRAM_ROWS); returns the first column not
/// done. The first tile's entries left of the diagonal are not stored.
__attribute__((target("avx2,fma"))) static int64_t qg_gram_tiles_avx2(const float *x, int64_t r0, int64_t r1, int64_t k,
                                                                      int64_t i0, double *h) {
    double xi[QG_GRAM_ROWS][4];
    for (int64_t r = r0; r < r1; r++)
        for (int t = 0; t < 4; t++) xi[r - r0][t] = (double)x[r * k + i0 + t];
    int64_t j0 = i0;
    for (; j0 + 8 <= k; j0 += 8) {
        __m256d a[4][2];
        for (int t = 0; t < 4; t++) {
            a[t][0] = _mm256_loadu_pd(h + (i0 + t) * k + j0);
            a[t][1] = _mm256_loadu_pd(h + (i0 + t) * k + j0 + 4);
        }
        for (int64_t r = r0; r < r1; r++) {
            const float *row = x + r * k + j0;
            const __m256d c0 = _mm256_cvtps_pd(_mm_loadu_ps(row)), c1 = _mm256_cvtps_pd(_mm_loadu_ps(row + 4));
            for (int t = 0; t < 4; t++) {
                const __m256d v = _mm256_broadcast_sd(&xi[r - r0][t]);
                a[t][0] = _mm256_fmadd_pd(v, c0, a[t][0]);
                a[t][1] = _mm256_fmadd_pd(v, c1, a[t][1]);
            }
        }
        for (int t = 0; t < 4; t++) {
            double *out = h + (i0 + t) * k + j0;
            if (j0 > i0) {
                _mm256_storeu_pd(out, a[t][0]);
                _mm256_storeu_pd(out + 4, a[t][1]);
            } else {
                double tile[8];
                _mm256_storeu_pd(tile, a[t][0]);
                _mm256_storeu_pd(tile + 4, a[t][1]);
                memcpy(out + t, tile + t, (size_t)(8 - t) * sizeof(double));
            }
        }
    }
    return j0;
}
#endif

void qg_gram_upper_part(const float *x, int64_t rows, int64_t k, int64_t part, int64_t parts, int vector, double *h) {
#if defined(__x86_64__)
    const qg_cpu_features *f = qg_cpu_get_features();
    const int avx2 = vector && f->avx2 && f->fma;
#else
    (void)vector;
#endif
    for (int64_t r0 = 0; r0 < rows; r0 += QG_GRAM_ROWS) {
        const int64_t r1 = rows - r0 < QG_GRAM_ROWS ? rows : r0 + QG_GRAM_ROWS;
        for (int64_t i0 = 4 * part; i0 < k; i0 += 4 * parts) {
            const int64_t i1 = k - i0 < 4 ? k : i0 + 4;
            int64_t j0 = i0;
#if defined(__x86_64__)
            if (avx2 && i1 - i0 == 4) j0 = qg_gram_tiles_avx2(x, r0, r1, k, i0, h);
#endif
            qg_gram_scalar(x, r0, r1, k, i0, i1, j0, h);
        }
    }
}
