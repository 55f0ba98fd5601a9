// Software stand-ins for the AVX-512 intrinsics kernel_avx512vnni.c uses, so
// that its packing, indexing and bias-fold logic can run on a CPU without
// AVX-512 (scripts/check-vnni-emulated). Force-included before the kernel
// file; the real intrinsics are renamed away with -D flags.
// The real header is read with the renaming macros off (include guards make
// the kernel's own include of it a no-op).
#pragma push_macro("__m512i")
#undef __m512i
#pragma push_macro("_mm512_setzero_si512")
#undef _mm512_setzero_si512
#pragma push_macro("_mm512_loadu_si512")
#undef _mm512_loadu_si512
#pragma push_macro("_mm512_set1_epi32")
#undef _mm512_set1_epi32
#pragma push_macro("_mm512_dpbusd_epi32")
#undef _mm512_dpbusd_epi32
#pragma push_macro("_mm512_castsi512_si256")
#undef _mm512_castsi512_si256
#pragma push_macro("_mm512_extracti64x4_epi64")
#undef _mm512_extracti64x4_epi64
#include <immintrin.h>
#pragma pop_macro("_mm512_extracti64x4_epi64")
#pragma pop_macro("_mm512_castsi512_si256")
#pragma pop_macro("_mm512_dpbusd_epi32")
#pragma pop_macro("_mm512_set1_epi32")
#pragma pop_macro("_mm512_loadu_si512")
#pragma pop_macro("_mm512_setzero_si512")
#pragma pop_macro("__m512i")
#include <stdint.h>
#include <string.h>

typedef struct { int32_t v[16]; } qg_emu512;

static inline qg_emu512 qg_emu_setzero(void) { qg_emu512 r; memset(&r, 0, sizeof r); return r; }
static inline qg_emu512 qg_emu_loadu(const void *p) { qg_emu512 r; memcpy(&r, p, 64); return r; }
static inline qg_emu512 qg_emu_set1(int32_t x) { qg_emu512 r; for (int i = 0; i < 16; i++) r.v[i] = x; return r; }
/// VPDPBUSD: per lane, 4 unsigned bytes of a times 4 signed bytes of b, added (wrapping) to src.
static inline qg_emu512 qg_emu_dpbusd(qg_emu512 src, qg_emu512 a, qg_emu512 b) {
    qg_emu512 r;
    for (int i = 0; i < 16; i++) {
        uint8_t ua[4]; int8_t sb[4];
        memcpy(ua, &a.v[i], 4);
        memcpy(sb, &b.v[i], 4);
        uint32_t acc = (uint32_t)src.v[i];
        for (int t = 0; t < 4; t++) acc += (uint32_t)((int32_t)ua[t] * (int32_t)sb[t]);
        r.v[i] = (int32_t)acc;
    }
    return r;
}
__attribute__((target("avx2"))) static inline __m256i qg_emu_lo256(qg_emu512 a) { return _mm256_loadu_si256((const __m256i *)&a.v[0]); }
__attribute__((target("avx2"))) static inline __m256i qg_emu_hi256(qg_emu512 a, int i) { (void)i; return _mm256_loadu_si256((const __m256i *)&a.v[8]); }
