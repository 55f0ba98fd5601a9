// LayerNorm, bias and mean pooling.
#include <float.h>
#include <math.h>
#include "encoder_kernels.h"
#include "approximations.h"

/// `ROWS` rows of LayerNorm side by side. A row's mean and variance are
/// sums in eight partial sums (vectorizable, deterministic), each one chain
/// of additions; alone, a row waits on their latency, while several rows'
/// chains overlap. Every row's operations and their order are those of the
/// row alone.
static inline __attribute__((always_inline)) void layer_norm_rows(float *x, const float *residual, ptrdiff_t n,
                                                                  const float *gamma, const float *beta, float eps,
                                                                  const int ROWS) {
    if (residual)
        for (int r = 0; r < ROWS; r++)
            for (ptrdiff_t j = 0; j < n; j++) x[r * n + j] += residual[r * n + j];
    float s[4][8], tail[4], mean[4], inv[4];
    const ptrdiff_t whole = n / 8 * 8;
    for (int r = 0; r < ROWS; r++)
        for (int l = 0; l < 8; l++) s[r][l] = 0;
    for (ptrdiff_t j = 0; j < whole; j += 8)
        for (int r = 0; r < ROWS; r++)
            for (int l = 0; l < 8; l++) s[r][l] += x[r * n + j + l];
    for (int r = 0; r < ROWS; r++) {
        tail[r] = 0;
        for (ptrdiff_t j = whole; j < n; j++) tail[r] += x[r * n + j];
        mean[r] = (tail[r] + ((s[r][0] + s[r][1]) + (s[r][2] + s[r][3])) + ((s[r][4] + s[r][5]) + (s[r][6] + s[r][7]))) /
                  (float)n;
        for (int l = 0; l < 8; l++) s[r][l] = 0;
    }
    for (ptrdiff_t j = 0; j < whole; j += 8)
        for (int r = 0; r < ROWS; r++)
            for (int l = 0; l < 8; l++) {
                const float d = x[r * n + j + l] - mean[r];
                s[r][l] += d * d;
            }
    for (int r = 0; r < ROWS; r++) {
        tail[r] = 0;
        for (ptrdiff_t j = whole; j < n; j++) tail[r] += (x[r * n + j] - mean[r]) * (x[r * n + j] - mean[r]);
        const float var = tail[r] + (((s[r][0] + s[r][1]) + (s[r][2] + s[r][3])) + ((s[r][4] + s[r][5]) + (s[r][6] + s[r][7])));
        // Values past about 1.8e19 overflow d·d: an infinite variance would
        // give 1/√inf = 0 and a row of β, finite and wrong. NaN instead, which
        // the next layer's quantization or the embedding's check reports.
        inv[r] = var <= FLT_MAX ? 1.0f / sqrtf(var / (float)n + eps) : NAN;
    }
    for (int r = 0; r < ROWS; r++)
        for (ptrdiff_t j = 0; j < n; j++) x[r * n + j] = (x[r * n + j] - mean[r]) * inv[r] * gamma[j] + beta[j];
}

ENC_VECTOR_CLONES void enc_add_layer_norm(float *x, const float *residual, ptrdiff_t rows, ptrdiff_t n,
                        const float *gamma, const float *beta, float eps) {
    ptrdiff_t r = 0;
    for (; r + 4 <= rows; r += 4) layer_norm_rows(x + r * n, residual ? residual + r * n : NULL, n, gamma, beta, eps, 4);
    for (; r < rows; r++) layer_norm_rows(x + r * n, residual ? residual + r * n : NULL, n, gamma, beta, eps, 1);
}

ENC_VECTOR_CLONES void enc_add_bias(float *y, ptrdiff_t rows, ptrdiff_t n, const float *bias) {
    for (ptrdiff_t r = 0; r < rows; r++)
        for (ptrdiff_t j = 0; j < n; j++) y[r * n + j] += bias[j];
}

void enc_mean_pool_normalize(const float *h, ptrdiff_t rows, ptrdiff_t n, float *out) {
    // Each channel's sum in Double (a Float sum of large values overflowed
    // where their mean did not), 16 channels at a time so that the rows are
    // read in order; the mean rounded to Float, the norm of the means in
    // Double, and each mean divided by the norm in Double: one rounding,
    // where a Float reciprocal of the norm would overflow (a norm below
    // about 3e-39) or be subnormal (above about 8.5e37).
    double norm = 0;
    for (ptrdiff_t j0 = 0; j0 < n; j0 += 16) {
        const ptrdiff_t width = n - j0 < 16 ? n - j0 : 16;
        double sum[16] = {0};
        for (ptrdiff_t r = 0; r < rows; r++)
            for (ptrdiff_t j = 0; j < width; j++) sum[j] += h[r * n + j0 + j];
        for (ptrdiff_t j = 0; j < width; j++) {
            out[j0 + j] = (float)(sum[j] / (double)rows);
            norm += (double)out[j0 + j] * out[j0 + j];
        }
    }
    if (!(norm > 0)) {
        // No direction (all zero), or NaN: zeros, and NaN kept where it was,
        // for the caller to refuse.
        for (ptrdiff_t j = 0; j < n; j++) out[j] *= 0.0f;
        return;
    }
    const double root = sqrt(norm);
    for (ptrdiff_t j = 0; j < n; j++) out[j] = (float)((double)out[j] / root);
}
