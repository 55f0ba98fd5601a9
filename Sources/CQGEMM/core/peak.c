// Peak probes: register-only loops that run a multiply-accumulate
// instruction back to back, with enough independent chains to hide latency.
// The caller times them; they return the number of multiply-accumulates done.
// Each path's int8 probe lives in its folder (kernels/<path>/peak_<path>.c)
// and its descriptor names it; qg_peak_probe_int8 runs one only when its
// kernel is supported on this CPU. Here: the scalar probe (the reference and
// the test-only paths), the fp32 FMA probes, and a plain streaming read. Each
// ends with an empty asm that takes its sum, or returns it, so the loop
// cannot be optimised away.
#include <string.h>

#include "driver.h"
#include "kernel.h"
#include "probes.h"
#include "threadpool.h"

#if defined(__x86_64__)
#include <immintrin.h>

#define QG_CHAINS 12

/// 256-bit FMA, on CPUs with FMA3 and AVX (qg_cpu_features.fma needs both).
/// Built for AVX and FMA only, not AVX2: AMD's Piledriver and Steamroller
/// have FMA3 without AVX2, and `qgemm info` probes every CPU it runs on, so
/// the compiler must not be free to pick an AVX2 instruction here.
__attribute__((target("avx,fma"))) static int64_t qg_peak_fma(int64_t iterations, float *sink) {
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

// MARK: - Streaming read

// A plain read of a buffer, the speed a weight-streaming kernel is judged
// against: four independent loads of the widest vector per step, combined
// into four accumulators (one cycle each, so the loads, not the arithmetic, bound
// the loop). No prefetch hints and no stores: what the hardware prefetcher
// gives a sequential reader.

#if defined(__x86_64__)
__attribute__((target("avx512f"))) static uint64_t qg_read_zmm(const uint8_t *p, int64_t bytes) {
    __m512i a = _mm512_setzero_si512(), b = a, c = a, d = a;
    int64_t i = 0;
    for (; i + 256 <= bytes; i += 256) {
        a = _mm512_xor_si512(a, _mm512_loadu_si512((const void *)(p + i)));
        b = _mm512_xor_si512(b, _mm512_loadu_si512((const void *)(p + i + 64)));
        c = _mm512_xor_si512(c, _mm512_loadu_si512((const void *)(p + i + 128)));
        d = _mm512_xor_si512(d, _mm512_loadu_si512((const void *)(p + i + 192)));
    }
    a = _mm512_xor_si512(_mm512_xor_si512(a, b), _mm512_xor_si512(c, d));
    // Folded by XOR, as the narrower reads are: any one changed bit of the
    // buffer changes the result (an OR would hide most of them).
    const __m256i h = _mm256_xor_si256(_mm512_castsi512_si256(a), _mm512_extracti64x4_epi64(a, 1));
    uint64_t s = (uint64_t)_mm256_extract_epi64(h, 0) ^ (uint64_t)_mm256_extract_epi64(h, 1)
                 ^ (uint64_t)_mm256_extract_epi64(h, 2) ^ (uint64_t)_mm256_extract_epi64(h, 3);
    for (; i < bytes; i++) s += p[i];
    return s;
}

__attribute__((target("avx2"))) static uint64_t qg_read_ymm(const uint8_t *p, int64_t bytes) {
    __m256i a = _mm256_setzero_si256(), b = a, c = a, d = a;
    int64_t i = 0;
    for (; i + 128 <= bytes; i += 128) {
        a = _mm256_xor_si256(a, _mm256_loadu_si256((const __m256i *)(p + i)));
        b = _mm256_xor_si256(b, _mm256_loadu_si256((const __m256i *)(p + i + 32)));
        c = _mm256_xor_si256(c, _mm256_loadu_si256((const __m256i *)(p + i + 64)));
        d = _mm256_xor_si256(d, _mm256_loadu_si256((const __m256i *)(p + i + 96)));
    }
    a = _mm256_xor_si256(_mm256_xor_si256(a, b), _mm256_xor_si256(c, d));
    uint64_t s = (uint64_t)_mm256_extract_epi64(a, 0) ^ (uint64_t)_mm256_extract_epi64(a, 1)
                 ^ (uint64_t)_mm256_extract_epi64(a, 2) ^ (uint64_t)_mm256_extract_epi64(a, 3);
    for (; i < bytes; i++) s += p[i];
    return s;
}
#endif

#if defined(__aarch64__)
static uint64_t qg_read_neon(const uint8_t *p, int64_t bytes) {
    uint8x16_t a = vdupq_n_u8(0), b = a, c = a, d = a;
    int64_t i = 0;
    for (; i + 64 <= bytes; i += 64) {
        a = veorq_u8(a, vld1q_u8(p + i));
        b = veorq_u8(b, vld1q_u8(p + i + 16));
        c = veorq_u8(c, vld1q_u8(p + i + 32));
        d = veorq_u8(d, vld1q_u8(p + i + 48));
    }
    a = veorq_u8(veorq_u8(a, b), veorq_u8(c, d));
    uint64_t s = vgetq_lane_u64(vreinterpretq_u64_u8(a), 0) ^ vgetq_lane_u64(vreinterpretq_u64_u8(a), 1);
    for (; i < bytes; i++) s += p[i];
    return s;
}
#endif

#if !defined(__aarch64__)
static uint64_t qg_read_scalar(const uint8_t *p, int64_t bytes) {
    uint64_t a = 0, b = 0;
    int64_t i = 0;
    for (; i + 16 <= bytes; i += 16) {
        uint64_t x, y;
        memcpy(&x, p + i, 8);
        memcpy(&y, p + i + 8, 8);
        a ^= x;
        b ^= y;
    }
    for (; i < bytes; i++) a += p[i];
    return a ^ b;
}
#endif

static uint64_t qg_read_span(const uint8_t *p, int64_t bytes) {
#if defined(__x86_64__)
    const qg_cpu_features *f = qg_cpu_get_features();
    if (f->avx512f) return qg_read_zmm(p, bytes);
    if (f->avx2) return qg_read_ymm(p, bytes);
    return qg_read_scalar(p, bytes);
#elif defined(__aarch64__)
    return qg_read_neon(p, bytes);
#else
    return qg_read_scalar(p, bytes);
#endif
}

enum { QG_READ_MAX_PARTS = 64 };

typedef struct {
    // Two spans read as one: part t is bytes [t·part, (t+1)·part) of the
    // first followed by the second.
    const uint8_t *first, *second;
    int64_t first_bytes, bytes, part;
    uint64_t sums[QG_READ_MAX_PARTS];
} qg_read_task;

static void qg_read_part(void *ctx, int64_t t) {
    qg_read_task *task = ctx;
    const int64_t start = t * task->part;
    const int64_t end = qg_min(task->bytes, start + task->part);
    uint64_t s = 0;
    const int64_t first_end = qg_min(end, task->first_bytes);
    if (start < first_end) s ^= qg_read_span(task->first + start, first_end - start);
    const int64_t second_start = qg_max(start, task->first_bytes);
    if (second_start < end) s ^= qg_read_span(task->second + (second_start - task->first_bytes), end - second_start);
    task->sums[t] = s;
}

uint64_t qg_peak_read(const void *buffer, int64_t bytes, int threads) {
    return qg_peak_read_pair(buffer, bytes, NULL, 0, threads);
}

uint64_t qg_peak_read_pair(const void *first, int64_t first_bytes, const void *second, int64_t second_bytes,
                           int threads) {
    if (!first || first_bytes < 0) first_bytes = 0;
    if (!second || second_bytes < 0) second_bytes = 0;
    const int64_t bytes = first_bytes + second_bytes;
    if (bytes <= 0) return 0;
    const int64_t parts = threads < 1 ? 1 : threads > QG_READ_MAX_PARTS ? QG_READ_MAX_PARTS : threads;
    // Parts are whole multiples of 4 KiB from the first span's start.
    const int64_t part = qg_ceil_div(qg_ceil_div(bytes, parts), 4096) * 4096;
    qg_read_task task = {.first = first, .second = second, .first_bytes = first_bytes, .bytes = bytes, .part = part};
    // qg_threads_of_last_call speaks of the last GEMM, not of this read.
    const int last = qg_threads_of_last_call();
    qg_parallel_for(qg_ceil_div(bytes, part), (int)parts, qg_read_part, &task);
    qg_set_threads_of_last_call(last);
    uint64_t s = 0;
    for (int64_t t = 0; t < parts; t++) s ^= task.sums[t];
    return s;
}
