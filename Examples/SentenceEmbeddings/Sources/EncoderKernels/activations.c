// GELU and softmax over whole buffers and rows.
#include "encoder_kernels.h"
#include "approximations.h"

ENC_VECTOR_CLONES void enc_gelu_erf(float *x, ptrdiff_t count) {
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

ENC_VECTOR_CLONES void enc_softmax_rows(float *s, ptrdiff_t rows, ptrdiff_t n, ptrdiff_t ld, float scale) {
    for (ptrdiff_t r = 0; r < rows; r++) enc_softmax_row(s + r * ld, n, scale);
}
