// The avx2 path's peak probe: a register-only loop of the path's multiply-accumulate
// instruction, with enough independent chains to hide latency; the caller
// times it (qg_peak_probe_int8). It ends with an empty asm that takes its
// sum, so the loop cannot be optimised away.
#if defined(__x86_64__)
#include <immintrin.h>
#include <stdint.h>

/// The AVX2 kernel's own mix: VPMADDWD then VPADDD, 8 distinct products a
/// round (4 broadcast rows × 2 weight vectors, as the 4×16 tile has for each
/// half of a K-group), so the compiler cannot merge them.
__attribute__((target("avx2"))) int64_t qg_peak_avx2(int64_t iterations) {
    __m256i acc[8];
    __m256i w0 = _mm256_set1_epi16(3), w1 = _mm256_set1_epi16(4);
    __m256i x0 = _mm256_set1_epi16(5), x1 = _mm256_set1_epi16(6), x2 = _mm256_set1_epi16(7), x3 = _mm256_set1_epi16(8);
    for (int i = 0; i < 8; i++) acc[i] = _mm256_setzero_si256();
    for (int64_t it = 0; it < iterations; it++) {
        acc[0] = _mm256_add_epi32(acc[0], _mm256_madd_epi16(w0, x0));
        acc[1] = _mm256_add_epi32(acc[1], _mm256_madd_epi16(w1, x0));
        acc[2] = _mm256_add_epi32(acc[2], _mm256_madd_epi16(w0, x1));
        acc[3] = _mm256_add_epi32(acc[3], _mm256_madd_epi16(w1, x1));
        acc[4] = _mm256_add_epi32(acc[4], _mm256_madd_epi16(w0, x2));
        acc[5] = _mm256_add_epi32(acc[5], _mm256_madd_epi16(w1, x2));
        acc[6] = _mm256_add_epi32(acc[6], _mm256_madd_epi16(w0, x3));
        acc[7] = _mm256_add_epi32(acc[7], _mm256_madd_epi16(w1, x3));
        // Opaque to the compiler: no product is hoisted out of the loop.
        __asm__ volatile("" : "+x"(w0), "+x"(w1), "+x"(x0), "+x"(x1), "+x"(x2), "+x"(x3));
    }
    __m256i s = acc[0];
    for (int i = 1; i < 8; i++) s = _mm256_add_epi32(s, acc[i]);
    const int32_t sink = _mm256_extract_epi32(s, 0);
    __asm__ volatile("" : : "r"(sink));
    return iterations * 8 * 16;
}
#endif
