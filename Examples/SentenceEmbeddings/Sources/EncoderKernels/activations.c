// GELU over a whole buffer, and erf and exp exposed for tests.
#pragma clang diagnostic ignored "-Wpsabi" // enc_expf16 is always inlined: no vector crosses a call
#include "encoder_kernels.h"
#include "approximations.h"

ENC_VECTOR_CLONES void enc_gelu_erf(float *x, ptrdiff_t count) {
    // Four vectors per step: each value's erf is two long chains of dependent
    // operations (and a division), which one vector at a time leaves the core
    // waiting on; the same operations on every value, so the same bits.
#pragma clang loop interleave_count(4)
    for (ptrdiff_t i = 0; i < count; i++) {
        float v = x[i];
        x[i] = 0.5f * v * (1.0f + enc_erff(v * 0.70710678118654752f));
    }
}

void enc_erf(const float *x, float *y, ptrdiff_t count) {
    for (ptrdiff_t i = 0; i < count; i++) y[i] = enc_erff(x[i]);
}

void enc_exp(const float *x, float *y, ptrdiff_t count) {
    for (ptrdiff_t i = 0; i < count; i += 16) {
        // The last step through a zero-padded copy of its values.
        const ptrdiff_t n = count - i < 16 ? count - i : 16;
        enc_v16 v = 0.0f;
        memcpy(&v, x + i, (size_t)n * sizeof(float));
        v = enc_expf16(v);
        memcpy(y + i, &v, (size_t)n * sizeof(float));
    }
}
