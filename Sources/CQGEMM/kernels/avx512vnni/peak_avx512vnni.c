// The avx512vnni path's peak probe: a register-only loop of the path's multiply-accumulate
// instruction, with enough independent chains to hide latency; the caller
// times it (qg_peak_probe_int8). It ends with an empty asm that takes its
// sum, so the loop cannot be optimised away.
#if defined(__x86_64__)
#include <immintrin.h>
#include <stdint.h>

#define QG_CHAINS 12

__attribute__((target("avx512f,avx512bw,avx512vnni"))) int64_t qg_peak_vnni(int64_t iterations) {
    __m512i acc[QG_CHAINS];
    __m512i w = _mm512_set1_epi8(3), x = _mm512_set1_epi8(5);
    for (int i = 0; i < QG_CHAINS; i++) acc[i] = _mm512_setzero_si512();
    for (int64_t it = 0; it < iterations; it++) {
        for (int i = 0; i < QG_CHAINS; i++) acc[i] = _mm512_dpbusd_epi32(acc[i], x, w);
        __asm__ volatile("" : "+v"(w), "+v"(x));
    }
    __m512i s = acc[0];
    for (int i = 1; i < QG_CHAINS; i++) s = _mm512_add_epi32(s, acc[i]);
    const int32_t sink = _mm512_reduce_add_epi32(s);
    __asm__ volatile("" : : "r"(sink));
    return iterations * QG_CHAINS * 64;
}
#endif
