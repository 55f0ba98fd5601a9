// A software stand-in for the one AVX-VNNI intrinsic kernel_avxvnni.c uses,
// the VEX VPDPBUSD on ymm, lane by lane in plain C over AVX2 registers, so
// that the avxvnni kernel's logic (packing, the +128 fold, tiles, tails, the
// 256-bit epilogue) runs on a CPU without AVX-VNNI (scripts/check-vnni-emulated,
// which force-includes this file). check_stand_ins.c compares it with the real
// instruction on a CPU that has it.
#ifndef QG_EMULATED_AVXVNNI_H
#define QG_EMULATED_AVXVNNI_H

#include <immintrin.h>
#include <stdint.h>
#include <string.h>

/// VPDPBUSD: per int32 lane, 4 unsigned bytes of a times 4 signed bytes of b,
/// added (wrapping) to src.
static inline __attribute__((target("avx2"))) __m256i qg_emu_dpbusd_avx(__m256i src, __m256i a, __m256i b) {
    int32_t s[8];
    uint8_t ua[32];
    int8_t sb[32];
    memcpy(s, &src, 32);
    memcpy(ua, &a, 32);
    memcpy(sb, &b, 32);
    for (int i = 0; i < 8; i++) {
        uint32_t sum = (uint32_t)s[i];
        for (int t = 0; t < 4; t++) sum += (uint32_t)((int32_t)ua[4 * i + t] * (int32_t)sb[4 * i + t]);
        s[i] = (int32_t)sum;
    }
    __m256i r;
    memcpy(&r, s, 32);
    return r;
}

#ifdef QG_EMULATE_AVXVNNI
#undef _mm256_dpbusd_avx_epi32
#define _mm256_dpbusd_avx_epi32 qg_emu_dpbusd_avx
#endif

#endif
