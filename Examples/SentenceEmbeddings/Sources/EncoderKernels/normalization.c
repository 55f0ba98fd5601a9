// LayerNorm, bias and mean pooling.
#include <math.h>
#include "encoder_kernels.h"
#include "approximations.h"

/// The sum of n values with eight partial sums (vectorizable, deterministic).
static float sum8(const float *v, ptrdiff_t n) {
    float s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    ptrdiff_t j = 0;
    for (; j + 8 <= n; j += 8)
        for (int l = 0; l < 8; l++) s[l] += v[j + l];
    float total = 0;
    for (; j < n; j++) total += v[j];
    return total + ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
}

ENC_VECTOR_CLONES void enc_add_layer_norm(float *x, const float *residual, ptrdiff_t rows, ptrdiff_t n,
                        const float *gamma, const float *beta, float eps) {
    for (ptrdiff_t r = 0; r < rows; r++) {
        float *row = x + r * n;
        if (residual) {
            const float *res = residual + r * n;
            for (ptrdiff_t j = 0; j < n; j++) row[j] += res[j];
        }
        float mean = sum8(row, n) / (float)n;
        float s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        ptrdiff_t j = 0;
        for (; j + 8 <= n; j += 8)
            for (int l = 0; l < 8; l++) {
                float d = row[j + l] - mean;
                s[l] += d * d;
            }
        float var = 0;
        for (; j < n; j++) var += (row[j] - mean) * (row[j] - mean);
        var += ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
        float inv = 1.0f / sqrtf(var / (float)n + eps);
        for (j = 0; j < n; j++) row[j] = (row[j] - mean) * inv * gamma[j] + beta[j];
    }
}

ENC_VECTOR_CLONES void enc_add_bias(float *y, ptrdiff_t rows, ptrdiff_t n, const float *bias) {
    for (ptrdiff_t r = 0; r < rows; r++)
        for (ptrdiff_t j = 0; j < n; j++) y[r * n + j] += bias[j];
}

void enc_mean_pool_normalize(const float *h, ptrdiff_t rows, ptrdiff_t n, float *out) {
    for (ptrdiff_t j = 0; j < n; j++) out[j] = 0;
    for (ptrdiff_t r = 0; r < rows; r++)
        for (ptrdiff_t j = 0; j < n; j++) out[j] += h[r * n + j];
    double norm = 0;
    for (ptrdiff_t j = 0; j < n; j++) {
        out[j] /= (float)rows;
        norm += (double)out[j] * out[j];
    }
    float inv = norm > 0 ? (float)(1.0 / sqrt(norm)) : 0.0f;
    for (ptrdiff_t j = 0; j < n; j++) out[j] *= inv;
}
