// The portable path's multiply-add, shared by its tile (kernel_portable.c)
// and its peak probe (peak_portable.c): sums of adjacent pairs of int16
// products in the compiler's generic vectors (Clang's `vector_size` with
// __builtin_shufflevector and __builtin_convertvector; GCC 12 and later take
// them too), which each target lowers to its own baseline SIMD (SSE2 on
// x86-64, NEON on AArch64) or to scalar code where it has none.
#ifndef QG_PAIR_SUMS_H
#define QG_PAIR_SUMS_H

#include <stdint.h>

typedef int8_t qg_pv8s8 __attribute__((vector_size(8)));
typedef int8_t qg_pv16s8 __attribute__((vector_size(16)));
typedef uint8_t qg_pv16u8 __attribute__((vector_size(16)));
typedef int16_t qg_pv4s16 __attribute__((vector_size(8)));
typedef int16_t qg_pv8s16 __attribute__((vector_size(16)));
typedef int32_t qg_pv4s32 __attribute__((vector_size(16)));
typedef int32_t qg_pv8s32 __attribute__((vector_size(32)));
typedef uint32_t qg_pv4u32 __attribute__((vector_size(16)));

/// Bytes `from` … `from` + 7 of a 16-byte vector widened to int16 lanes.
#define QG_PV_HALF(v, from)                                                                                            \
    __builtin_convertvector(__builtin_shufflevector(v, v, from, from + 1, from + 2, from + 3, from + 4, from + 5,     \
                                                    from + 6, from + 7),                                               \
                            qg_pv8s16)

/// Lane i = w[2i]·x[2i] + w[2i+1]·x[2i+1], exact for the path's operands:
/// |w| ≤ 128 and |x| ≤ 255, so a product is at most 32,640 in magnitude.
/// Two forms of the same value, each the one its target compiles best.
static inline qg_pv4u32 qg_portable_pair_sums(qg_pv8s16 w, qg_pv8s16 x) {
#if defined(__aarch64__)
    // Products in int16 (they fit), then each 32-bit lane's two halves
    // added: MUL, then SHL and two shifts that accumulate (SSRA).
    const qg_pv4u32 p = (qg_pv4u32)(w * x);
    return (qg_pv4u32)((qg_pv4s32)(p << 16) >> 16) + (qg_pv4u32)((qg_pv4s32)p >> 16);
#else
    // Widened, multiplied, even and odd lanes added: one PMADDWD on x86.
    const qg_pv8s32 p = __builtin_convertvector(w, qg_pv8s32) * __builtin_convertvector(x, qg_pv8s32);
    return (qg_pv4u32)(__builtin_shufflevector(p, p, 0, 2, 4, 6) + __builtin_shufflevector(p, p, 1, 3, 5, 7));
#endif
}

/// Channel c's whole sum from sums kept the way both portable tiles keep
/// them, 16 channels in 8 vectors: acc[v] holds channel 2v's two pair sums
/// in lanes 0 and 1 and channel 2v + 1's in lanes 2 and 3 (wrapping uint32,
/// exact under the callers' bounds).
static inline int32_t qg_portable_channel_sum(const qg_pv4u32 *acc, int c) {
    const qg_pv4u32 v = acc[c / 2];
    return (int32_t)(v[2 * (c % 2)] + v[2 * (c % 2) + 1]);
}

#endif
