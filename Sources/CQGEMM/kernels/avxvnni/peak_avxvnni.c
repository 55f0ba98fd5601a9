// The avxvnni path's peak probe: a register-only loop of the path's
// multiply-accumulate instruction (the VEX VPDPBUSD on ymm), with as many
// independent chains as the 6×16 tile has accumulators; the caller times it
// (qg_peak_probe_int8). It ends with an empty asm that takes its sum, so the
// loop cannot be optimised away.
#if defined(__x86_64__)
#include <immintrin.h>
#include <stdint.h>

#define QG_CHAINS 12

__attribute__((target("avx2,avxvnni"))) int64_t qg_peak_avxvnni(int64_t iterations) {
    __m256i acc[QG_CHAINS];
    __m256i w = _mm256_set1_epi8(3), x = _mm256_set1_epi8(5);
    for (int i = 0; i < QG_CHAINS; i++) acc[i] = _mm256_setzero_si256();
    for (int64_t it = 0; it < iterations; it++) {
        for (int i = 0; i < QG_CHAINS; i++) acc[i] = _mm256_dpbusd_avx_epi32(acc[i], x, w);
        __asm__ volatile("" : "+x"(w), "+x"(x));
    }
    __m256i s = acc[0];
    for (int i = 1; i < QG_CHAINS; i++) s = _mm256_add_epi32(s, acc[i]);
    const int32_t sink = _mm256_extract_epi32(s, 0) + _mm256_extract_epi32(s, 7);
    __asm__ volatile("" : : "r"(sink));
    return iterations * QG_CHAINS * 32;
}
#endif
