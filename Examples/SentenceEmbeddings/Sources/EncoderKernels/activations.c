// GELU and softmax over whole buffers and rows.
#include "encoder_kernels.h"
#include "approximations.h"

void enc_gelu_erf(float *x, ptrdiff_t count) {
    for (ptrdiff_t i = 0; i < count; i++) {
        float v = x[i];
        x[i] = 0.5f * v * (1.0f + enc_erff(v * 0.70710678118654752f));
    }
}

void enc_erf(const float *x, float *y, ptrdiff_t count) {
    for (ptrdiff_t i = 0; i < count; i++) y[i] = enc_erff(x[i]);
}

void enc_exp(const float *x, float *y, ptrdiff_t count) {
    for (ptrdiff_t i = 0; i < count; i++) y[i] = enc_expf(x[i]);
}

void enc_softmax_rows(float *s, ptrdiff_t rows, ptrdiff_t n, ptrdiff_t ld, float scale) {
    for (ptrdiff_t r = 0; r < rows; r++) {
        float *row = s + r * ld;
        float max = row[0];
        for (ptrdiff_t j = 1; j < n; j++) max = row[j] > max ? row[j] : max;
        // Eight partial sums: a reduction the compiler may vectorize without
        // reordering additions behind the program's back.
        float sums[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        ptrdiff_t j = 0;
        for (; j + 8 <= n; j += 8) {
            for (int l = 0; l < 8; l++) {
                float e = enc_expf((row[j + l] - max) * scale);
                row[j + l] = e;
                sums[l] += e;
            }
        }
        float sum = 0;
        for (; j < n; j++) {
            float e = enc_expf((row[j] - max) * scale);
            row[j] = e;
            sum += e;
        }
        for (int l = 0; l < 8; l++) sum += sums[l];
        float inverse = 1.0f / sum;
        for (j = 0; j < n; j++) row[j] *= inverse;
    }
}
