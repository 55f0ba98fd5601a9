// Peak probes: register-only loops that run a multiply-accumulate
// instruction back to back, with enough independent chains to hide latency.
// The caller times them; they return the number of multiply-accumulates done.
// Each path's int8 probe lives in its folder (kernels/<path>/peak_<path>.c)
// and its descriptor names it; qg_peak_probe_int8 runs one only when its
// kernel is supported on this CPU. Here: the scalar probe (the portable and
// reference paths) and the fp32 FMA probes. Each ends with an empty asm that
// takes its sum, so the loop cannot be optimised away.
#include "kernel.h"
#include "probes.h"

#if defined(__x86_64__)
#include <immintrin.h>

#define QG_CHAINS 12

__attribute__((target("avx2,fma"))) static int64_t qg_peak_fma(int64_t iterations, float *sink) {
    __m256 acc[QG_CHAINS];
    __m256 w = _mm256_set1_ps(1.0f), x = _mm256_set1_ps(0.0f);
    for (int i = 0; i < QG_CHAINS; i++) acc[i] = _mm256_setzero_ps();
    for (int64_t it = 0; it < iterations; it++) {
        for (int i = 0; i < QG_CHAINS; i++) acc[i] = _mm256_fmadd_ps(w, x, acc[i]);
        __asm__ volatile("" : "+x"(w), "+x"(x));
    }
    __m256 s = acc[0];
    for (int i = 1; i < QG_CHAINS; i++) s = _mm256_add_ps(s, acc[i]);
    *sink = _mm256_cvtss_f32(s);
    return iterations * QG_CHAINS * 8;
}

/// 512-bit FMA: on CPUs with AVX-512 this is what a float BLAS's best kernel
/// issues, so it is the honest fp32 peak there.
__attribute__((target("avx512f"))) static int64_t qg_peak_fma512(int64_t iterations, float *sink) {
    __m512 acc[QG_CHAINS];
    __m512 w = _mm512_set1_ps(1.0f), x = _mm512_set1_ps(0.0f);
    for (int i = 0; i < QG_CHAINS; i++) acc[i] = _mm512_setzero_ps();
    for (int64_t it = 0; it < iterations; it++) {
        for (int i = 0; i < QG_CHAINS; i++) acc[i] = _mm512_fmadd_ps(w, x, acc[i]);
        __asm__ volatile("" : "+v"(w), "+v"(x));
    }
    __m512 s = acc[0];
    for (int i = 1; i < QG_CHAINS; i++) s = _mm512_add_ps(s, acc[i]);
    *sink = _mm512_reduce_add_ps(s);
    return iterations * QG_CHAINS * 16;
}
#endif

#if defined(__aarch64__)
#include <arm_neon.h>

#define QG_NEON_CHAINS 12

/// 128-bit FMLA, the widest float multiply-add of Advanced SIMD.
static int64_t qg_peak_fmla(int64_t iterations, float *sink) {
    float32x4_t acc[QG_NEON_CHAINS];
    float32x4_t w = vdupq_n_f32(1.0f), x = vdupq_n_f32(0.0f);
    for (int i = 0; i < QG_NEON_CHAINS; i++) acc[i] = vdupq_n_f32(0.0f);
    for (int64_t it = 0; it < iterations; it++) {
        for (int i = 0; i < QG_NEON_CHAINS; i++) acc[i] = vfmaq_f32(acc[i], w, x);
        __asm__ volatile("" : "+w"(w), "+w"(x));
    }
    float32x4_t s = acc[0];
    for (int i = 1; i < QG_NEON_CHAINS; i++) s = vaddq_f32(s, acc[i]);
    *sink = vaddvq_f32(s);
    return iterations * QG_NEON_CHAINS * 4;
}
#endif

int64_t qg_peak_scalar(int64_t iterations) {
    int32_t acc[8] = {0};
    volatile int32_t w = 3, x = 5;
    int32_t wv = w, xv = x;
    for (int64_t it = 0; it < iterations; it++) {
        for (int i = 0; i < 8; i++) acc[i] += wv * (xv + i);
        wv ^= (int32_t)(it & 1);
    }
    int32_t s = 0;
    for (int i = 0; i < 8; i++) s += acc[i];
    __asm__ volatile("" : : "r"(s));
    return iterations * 8;
}

int64_t qg_peak_probe_int8(int path, int64_t iterations) {
    const qg_kernel *kernel = qg_kernel_for_path(path);
    if (kernel && !kernel->is_supported()) return 0;
    return kernel ? kernel->peak_probe(iterations) : qg_peak_scalar(iterations);
}

int qg_peak_fp32_vector_bits(void) {
#if defined(__x86_64__)
    const qg_cpu_features *f = qg_cpu_get_features();
    if (f->avx512f) return 512;
    if (f->fma) return 256;
    return 0;
#elif defined(__aarch64__)
    return 128; // Advanced SIMD is mandatory on arm64
#else
    return 0;
#endif
}

int64_t qg_peak_probe_fp32(int64_t iterations) {
#if defined(__x86_64__)
    float sink = 0;
    int64_t fmas = 0;
    switch (qg_peak_fp32_vector_bits()) {
    case 512: fmas = qg_peak_fma512(iterations, &sink); break;
    case 256: fmas = qg_peak_fma(iterations, &sink); break;
    default: break;
    }
    __asm__ volatile("" : : "x"(sink));
    return fmas;
#elif defined(__aarch64__)
    float sink = 0;
    const int64_t fmas = qg_peak_fmla(iterations, &sink);
    __asm__ volatile("" : : "w"(sink));
    return fmas;
#else
    (void)iterations;
    return 0;
#endif
}
