// exp and erf for Float without branches, so that loops calling them
// vectorize, and the exponentials of a softmax row. Shared by the kernels
// in this folder only.
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

/// exp(x): x = n·ln2 + r with |r| ≤ ln2/2 (ln2 split in two, the first
/// part short enough that n times it is exact), a degree-6 polynomial for
/// e^r (Cephes' coefficients) in fused multiply-adds, 2^n put in the
/// exponent bits. Inputs are clamped to [-87.3, 88.3], so the result is a
/// normal Float (exp of a very negative score is ~1e-38, not 0, which a
/// softmax divides away). The fused multiply-adds are explicit, so every
/// target computes the same bits (on a CPU without FMA, through libm's fmaf).
static inline float enc_expf(float x) {
    x = x < -87.3f ? -87.3f : x;
    x = x > 88.3f ? 88.3f : x;
    // Round to the nearest integer by adding and removing 1.5·2^23 (exact for
    // |x·log2e| < 2^22): unlike roundf, this vectorizes on every target.
    float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    float r = __builtin_fmaf(-n, 0.693359375f, x);
    r = __builtin_fmaf(-n, -2.12194440e-4f, r);
    float p = 1.9875691500e-4f;
    p = __builtin_fmaf(p, r, 1.3981999507e-3f);
    p = __builtin_fmaf(p, r, 8.3334519073e-3f);
    p = __builtin_fmaf(p, r, 4.1665795894e-2f);
    p = __builtin_fmaf(p, r, 1.6666665459e-1f);
    p = __builtin_fmaf(p, r, 5.0000001201e-1f);
    float y = __builtin_fmaf(p, r * r, r) + 1.0f;
    int32_t bits = ((int32_t)n + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return y * scale;
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

/// row[0..<n] ← exp(scale · (row − max row)), in place (n ≥ 1), and the
/// inverse of their sum, which makes them a softmax. The row has room for n
/// rounded up to a multiple of 16, so a last partial step runs as a whole
/// sixteen-lane step in which the values past n take no part (their places
/// get 0). The maximum first, then exp with sixteen partial sums (a
/// reduction the compiler may vectorize without reordering additions behind
/// the program's back), both reduced pairwise (8 + 8, 4 + 4, …): four
/// dependent steps instead of sixteen, in an order every copy spells the same.
/// (The whole steps keep a loop of their own without the mask: with the
/// mask in every step, a 128-token head ran at 0.84× the speed of the
/// scalar-tail code before it, in a C harness.)
static inline __attribute__((always_inline)) float enc_softmax_row_exp(float *row, ptrdiff_t n, float scale) {
    float lanes[16];
    for (int l = 0; l < 16; l++) lanes[l] = row[0];
    ptrdiff_t j = 0;
    for (; j + 16 <= n; j += 16)
        for (int l = 0; l < 16; l++) lanes[l] = row[j + l] > lanes[l] ? row[j + l] : lanes[l];
    if (j < n)
        for (int l = 0; l < 16; l++) {
            const float v = j + l < n ? row[j + l] : row[0];
            lanes[l] = v > lanes[l] ? v : lanes[l];
        }
    for (int width = 8; width >= 1; width /= 2)
        for (int l = 0; l < width; l++) lanes[l] = lanes[l + width] > lanes[l] ? lanes[l + width] : lanes[l];
    const float max = lanes[0];
    float sums[16] = {0};
    for (j = 0; j + 16 <= n; j += 16)
        for (int l = 0; l < 16; l++) {
            const float e = enc_expf((row[j + l] - max) * scale);
            row[j + l] = e;
            sums[l] += e;
        }
    if (j < n)
        for (int l = 0; l < 16; l++) {
            const float e = j + l < n ? enc_expf((row[j + l] - max) * scale) : 0.0f;
            row[j + l] = e;
            sums[l] += e;
        }
    for (int width = 8; width >= 1; width /= 2)
        for (int l = 0; l < width; l++) sums[l] += sums[l + width];
    return 1.0f / sums[0];
}

#endif
