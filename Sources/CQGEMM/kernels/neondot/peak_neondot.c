// The neondot path's peak probe: a register-only loop of the path's multiply-accumulate
// instruction, with enough independent chains to hide latency; the caller
// times it (qg_peak_probe_int8). It ends with an empty asm that takes its
// sum, so the loop cannot be optimised away.
#if defined(__aarch64__)
#include <arm_neon.h>
#include <stdint.h>

#define QG_NEON_CHAINS 12

/// SDOT: 16 multiply-adds (4 lanes × 4 bytes) per instruction.
__attribute__((target("dotprod"))) int64_t qg_peak_sdot(int64_t iterations) {
    int32x4_t acc[QG_NEON_CHAINS];
    int8x16_t w = vdupq_n_s8(3), x = vdupq_n_s8(5);
    for (int i = 0; i < QG_NEON_CHAINS; i++) acc[i] = vdupq_n_s32(0);
    for (int64_t it = 0; it < iterations; it++) {
        for (int i = 0; i < QG_NEON_CHAINS; i++) acc[i] = vdotq_s32(acc[i], w, x);
        __asm__ volatile("" : "+w"(w), "+w"(x));
    }
    int32x4_t s = acc[0];
    for (int i = 1; i < QG_NEON_CHAINS; i++) s = vaddq_s32(s, acc[i]);
    const int32_t sink = vaddvq_s32(s);
    __asm__ volatile("" : : "r"(sink));
    return iterations * QG_NEON_CHAINS * 16;
}
#endif
