// exp (on vectors of sixteen) and erf (on one value, in loops the compiler
// vectorizes) for Float, without branches. Shared by the kernels in this
// folder only.
#ifndef ENCODER_APPROXIMATIONS_H
#define ENCODER_APPROXIMATIONS_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/// Whole-buffer kernels are compiled three times (AVX-512, AVX2 and the
/// baseline) and the loader picks one for the CPU. They use no fused
/// multiply-add (the target is built with -ffp-contract=off), and their
/// reductions keep the order the source spells out, so every copy gives
/// the same bits; only the vector width differs.
#if defined(__x86_64__)
#define ENC_VECTOR_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define ENC_VECTOR_CLONES
#endif

typedef float enc_v16 __attribute__((ext_vector_type(16)));
typedef int32_t enc_vi16 __attribute__((ext_vector_type(16)));

/// exp(x) on sixteen values: x = n·ln2 + r with |r| ≤ ln2/2 (ln2 split in
/// two, the first part short enough that n times it is exact), a degree-6
/// polynomial for e^r (Cephes' coefficients) in fused multiply-adds, 2^n put
/// in the exponent bits. Inputs are clamped to [-87.3, 88.3] for the
/// polynomial, and below -87.3, about where exp falls under Float's
/// smallest normal number (exp(-87.34)), the result is 0: a softmax weight
/// left at ~1e-38 there would still carry a value near Float's largest into
/// attention's weighted sum (1e-38 · 1e38). The fused multiply-adds are explicit, so every target
/// computes the same bits (on a CPU without FMA, through libm's fmaf).
static inline __attribute__((always_inline)) enc_v16 enc_expf16(enc_v16 input) {
    enc_v16 x = input < -87.3f ? (enc_v16)-87.3f : input;
    x = x > 88.3f ? (enc_v16)88.3f : x;
    // Round to the nearest integer by adding and removing 1.5·2^23 (exact for
    // |x·log2e| < 2^22): the same operations on every target.
    const enc_v16 n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    enc_v16 r = __builtin_elementwise_fma(-n, (enc_v16)0.693359375f, x);
    r = __builtin_elementwise_fma(-n, (enc_v16)-2.12194440e-4f, r);
    enc_v16 p = (enc_v16)1.9875691500e-4f;
    p = __builtin_elementwise_fma(p, r, (enc_v16)1.3981999507e-3f);
    p = __builtin_elementwise_fma(p, r, (enc_v16)8.3334519073e-3f);
    p = __builtin_elementwise_fma(p, r, (enc_v16)4.1665795894e-2f);
    p = __builtin_elementwise_fma(p, r, (enc_v16)1.6666665459e-1f);
    p = __builtin_elementwise_fma(p, r, (enc_v16)5.0000001201e-1f);
    const enc_v16 y = __builtin_elementwise_fma(p, r * r, r) + 1.0f;
    // A NaN input passes both clamps; converting NaN to an integer is
    // undefined in C, so its lanes convert 0 (y is NaN there: NaN out).
    const enc_vi16 bits = (__builtin_convertvector(n == n ? n : (enc_v16)0.0f, enc_vi16) + 127) << 23;
    return input < -87.3f ? (enc_v16)0.0f : y * (enc_v16)bits;
}

/// erf(x) as x·P(x²)/Q(x²) on [-4, 4] (beyond, erf is ±1 to Float precision):
/// a rational approximation with absolute error below 5e-7.
static inline float enc_erff(float x) {
    x = x < -4.0f ? -4.0f : x;
    x = x > 4.0f ? 4.0f : x;
    float x2 = x * x;
    float p = -2.72614225801306e-10f;
    p = p * x2 + 2.77068142495902e-08f;
    p = p * x2 + -2.10102402082508e-06f;
    p = p * x2 + -5.69250639462346e-05f;
    p = p * x2 + -7.34990630326855e-04f;
    p = p * x2 + -2.95459980854025e-03f;
    p = p * x2 + -1.60960333262415e-02f;
    p = p * x;
    float q = -1.45660718464996e-05f;
    q = q * x2 + -2.13374055278905e-04f;
    q = q * x2 + -1.68282697438203e-03f;
    q = q * x2 + -7.37332916720468e-03f;
    q = q * x2 + -1.42647390514189e-02f;
    return p / q;
}

#endif
