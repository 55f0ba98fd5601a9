// Software stand-ins for the AVX-512 intrinsics the VNNI and AMX paths use
// (their GEMM and 4-bit tiles, ../x86/epilogue_zmm.h and w4_zmm.h), lane by lane in plain C, so that the kernel's logic
// (packing, indexing, the +128 fold, tiles, tails, the 16-lane epilogue) can
// run on a CPU without AVX-512 (scripts/check-vnni-emulated). This file only
// defines them; emulated_avx512_aliases.h renames the real names to them.
// On a CPU with AVX-512, check_stand_ins.c compares every stand-in with the
// real instruction on random inputs.
#ifndef QG_EMULATED_AVX512_H
#define QG_EMULATED_AVX512_H

#include <immintrin.h>
#include <stdint.h>
#include <string.h>

typedef struct { int32_t v[16]; } qg_emu512;

static inline void qg_emu_q(qg_emu512 a, int64_t q[8]) { memcpy(q, a.v, 64); }
static inline qg_emu512 qg_emu_from_q(const int64_t q[8]) { qg_emu512 r; memcpy(r.v, q, 64); return r; }

static inline qg_emu512 qg_emu_setzero(void) { qg_emu512 r; memset(&r, 0, sizeof r); return r; }
static inline qg_emu512 qg_emu_loadu(const void *p) { qg_emu512 r; memcpy(&r, p, 64); return r; }
static inline void qg_emu_storeu(void *p, qg_emu512 a) { memcpy(p, &a, 64); }
static inline qg_emu512 qg_emu_set1(int32_t x) { qg_emu512 r; for (int i = 0; i < 16; i++) r.v[i] = x; return r; }
static inline qg_emu512 qg_emu_set1_epi64(int64_t x) { int64_t q[8]; for (int i = 0; i < 8; i++) q[i] = x; return qg_emu_from_q(q); }
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
/// GF2P8AFFINEQB: each byte x of a, in qword j, becomes A·x + b over GF(2),
/// A the 8×8 bit matrix in qword j of m: output bit i is the parity of
/// (byte 7 − i of that qword) AND x, XOR bit i of b.
static inline qg_emu512 qg_emu_gf2p8affine_epi64_epi8(qg_emu512 a, qg_emu512 m, int b) {
    uint8_t x[64], matrix[64], out[64];
    memcpy(x, a.v, 64);
    memcpy(matrix, m.v, 64);
    for (int byte = 0; byte < 64; byte++) {
        const uint8_t *row = matrix + byte / 8 * 8;
        uint8_t y = 0;
        for (int i = 0; i < 8; i++) y |= (uint8_t)((__builtin_popcount(row[7 - i] & x[byte]) & 1) << i);
        out[byte] = (uint8_t)(y ^ (uint8_t)b);
    }
    qg_emu512 r;
    memcpy(r.v, out, 64);
    return r;
}

// 32-bit lanes (wrapping, as the instructions do).
#define QG_EMU_OP32(name, expr)                                                                \
    static inline qg_emu512 name(qg_emu512 a, qg_emu512 b) {                                   \
        qg_emu512 r;                                                                           \
        for (int i = 0; i < 16; i++) { const uint32_t x = (uint32_t)a.v[i], y = (uint32_t)b.v[i]; r.v[i] = (int32_t)(expr); } \
        return r;                                                                              \
    }
QG_EMU_OP32(qg_emu_add_epi32, x + y)
QG_EMU_OP32(qg_emu_sub_epi32, x - y)
QG_EMU_OP32(qg_emu_mullo_epi32, x * y)
QG_EMU_OP32(qg_emu_max_epi32, (int32_t)x > (int32_t)y ? x : y)
QG_EMU_OP32(qg_emu_min_epi32, (int32_t)x < (int32_t)y ? x : y)
/// VPSLLVD / VPSRAVD: per-lane counts; above 31 a left shift gives 0 and an arithmetic one the sign.
QG_EMU_OP32(qg_emu_sllv_epi32, y > 31 ? 0 : x << y)
QG_EMU_OP32(qg_emu_srav_epi32, (uint32_t)((int32_t)x >> (y > 31 ? 31 : y)))

/// VPERMT2D: lane i gets lane idx[i] & 31 of the 32 lanes of a then b.
static inline qg_emu512 qg_emu_permutex2var_epi32(qg_emu512 a, qg_emu512 idx, qg_emu512 b) {
    qg_emu512 r;
    for (int i = 0; i < 16; i++) {
        const int j = idx.v[i] & 31;
        r.v[i] = j < 16 ? a.v[j] : b.v[j - 16];
    }
    return r;
}

/// VPERMD: lane i gets lane idx[i] & 15 of a (the index vector comes first).
static inline qg_emu512 qg_emu_permutexvar_epi32(qg_emu512 idx, qg_emu512 a) {
    qg_emu512 r;
    for (int i = 0; i < 16; i++) r.v[i] = a.v[idx.v[i] & 15];
    return r;
}

// Saturating packs, per 128-bit lane: the lane's elements of a, then those of b.
static inline int16_t qg_emu_sat16(int32_t x) { return (int16_t)(x < INT16_MIN ? INT16_MIN : x > INT16_MAX ? INT16_MAX : x); }
static inline uint8_t qg_emu_sat8(int32_t x, int is_unsigned) {
    const int32_t lo = is_unsigned ? 0 : INT8_MIN, hi = is_unsigned ? UINT8_MAX : INT8_MAX;
    return (uint8_t)(x < lo ? lo : x > hi ? hi : x);
}
/// VPACKSSDW: per 128-bit lane, 4 dwords of a then 4 of b, each saturated to int16.
static inline qg_emu512 qg_emu_packs_epi32(qg_emu512 a, qg_emu512 b) {
    int16_t w[32];
    for (int l = 0; l < 4; l++)
        for (int t = 0; t < 4; t++) {
            w[8 * l + t] = qg_emu_sat16(a.v[4 * l + t]);
            w[8 * l + 4 + t] = qg_emu_sat16(b.v[4 * l + t]);
        }
    qg_emu512 r; memcpy(r.v, w, 64); return r;
}
static inline qg_emu512 qg_emu_packs_words(qg_emu512 a, qg_emu512 b, int is_unsigned) {
    int16_t wa[32], wb[32]; uint8_t o[64];
    memcpy(wa, a.v, 64); memcpy(wb, b.v, 64);
    for (int l = 0; l < 4; l++)
        for (int t = 0; t < 8; t++) {
            o[16 * l + t] = qg_emu_sat8(wa[8 * l + t], is_unsigned);
            o[16 * l + 8 + t] = qg_emu_sat8(wb[8 * l + t], is_unsigned);
        }
    qg_emu512 r; memcpy(r.v, o, 64); return r;
}
/// VPACKSSWB: per 128-bit lane, 8 words of a then 8 of b, each saturated to int8.
static inline qg_emu512 qg_emu_packs_epi16(qg_emu512 a, qg_emu512 b) { return qg_emu_packs_words(a, b, 0); }
/// VPACKUSWB: per 128-bit lane, 8 signed words of a then 8 of b, each saturated to uint8.
static inline qg_emu512 qg_emu_packus_epi16(qg_emu512 a, qg_emu512 b) { return qg_emu_packs_words(a, b, 1); }

// 8-bit lanes.
#define QG_EMU_OP8(name, type, expr)                                                           \
    static inline qg_emu512 name(qg_emu512 a, qg_emu512 b) {                                   \
        type p[64], q[64], o[64];                                                              \
        memcpy(p, a.v, 64); memcpy(q, b.v, 64);                                                \
        for (int i = 0; i < 64; i++) { const type x = p[i], y = q[i]; o[i] = (expr); }        \
        qg_emu512 r; memcpy(r.v, o, 64); return r;                                             \
    }
/// VPMAXSB / VPMINSB / VPMAXUB / VPMINUB: per byte, signed or unsigned.
QG_EMU_OP8(qg_emu_max_epi8, int8_t, x > y ? x : y)
QG_EMU_OP8(qg_emu_min_epi8, int8_t, x < y ? x : y)
QG_EMU_OP8(qg_emu_max_epu8, uint8_t, x > y ? x : y)
QG_EMU_OP8(qg_emu_min_epu8, uint8_t, x < y ? x : y)
/// VPBROADCASTB: the byte in all 64 lanes.
static inline qg_emu512 qg_emu_set1_epi8(char x) { qg_emu512 r; memset(r.v, (uint8_t)x, 64); return r; }
/// The low 128 bits (no instruction: the xmm register of the zmm).
__attribute__((target("avx2"))) static inline __m128i qg_emu_castsi512_si128(qg_emu512 a) {
    return _mm_loadu_si128((const __m128i *)a.v);
}
/// VEXTRACTI32X4: 128-bit lane imm & 3 (an immediate in the instruction, an int here).
__attribute__((target("avx2"))) static inline __m128i qg_emu_extracti32x4_epi32(qg_emu512 a, int imm) {
    return _mm_loadu_si128((const __m128i *)&a.v[4 * (imm & 3)]);
}

// 64-bit lanes.
#define QG_EMU_OP64(name, expr)                                                                \
    static inline qg_emu512 name(qg_emu512 a, qg_emu512 b) {                                   \
        int64_t p[8], q[8], r[8];                                                              \
        qg_emu_q(a, p); qg_emu_q(b, q);                                                        \
        for (int i = 0; i < 8; i++) { const uint64_t x = (uint64_t)p[i], y = (uint64_t)q[i]; r[i] = (int64_t)(expr); } \
        return qg_emu_from_q(r);                                                               \
    }
QG_EMU_OP64(qg_emu_add_epi64, x + y)
QG_EMU_OP64(qg_emu_sub_epi64, x - y)
QG_EMU_OP64(qg_emu_and, x & y)
QG_EMU_OP64(qg_emu_xor, x ^ y)
QG_EMU_OP64(qg_emu_sllv_epi64, y > 63 ? 0 : x << y)
QG_EMU_OP64(qg_emu_max_epi64, (int64_t)x > (int64_t)y ? x : y)
QG_EMU_OP64(qg_emu_min_epi64, (int64_t)x < (int64_t)y ? x : y)
/// VPMULDQ: the signed low 32 bits of each 64-bit lane, multiplied to 64 bits.
QG_EMU_OP64(qg_emu_mul_epi32, (uint64_t)((int64_t)(int32_t)(uint32_t)x * (int64_t)(int32_t)(uint32_t)y))

/// VPSRAVQ: arithmetic shift right by per-lane counts; counts above 63 fill with the sign.
QG_EMU_OP64(qg_emu_srav_epi64, (uint64_t)((int64_t)x >> (y > 63 ? 63 : y)))

/// VPSRAQ (immediate): arithmetic shift right; counts above 63 fill with the sign.
static inline qg_emu512 qg_emu_srai_epi64(qg_emu512 a, unsigned n) {
    int64_t q[8]; qg_emu_q(a, q);
    for (int i = 0; i < 8; i++) q[i] = q[i] >> (n > 63 ? 63 : n);
    return qg_emu_from_q(q);
}
/// VPSRAD (immediate): arithmetic shift right of each 32-bit lane; counts above 31 fill with the sign.
static inline qg_emu512 qg_emu_srai_epi32(qg_emu512 a, unsigned n) {
    qg_emu512 r;
    for (int i = 0; i < 16; i++) r.v[i] = a.v[i] >> (n > 31 ? 31 : n);
    return r;
}
/// VPMOVDB: each 32-bit lane truncated to its low byte, 16 bytes.
__attribute__((target("avx2"))) static inline __m128i qg_emu_cvtepi32_epi8(qg_emu512 a) {
    uint8_t b[16];
    for (int i = 0; i < 16; i++) b[i] = (uint8_t)a.v[i];
    return _mm_loadu_si128((const __m128i *)b);
}
static inline qg_emu512 qg_emu_srli_epi64(qg_emu512 a, unsigned n) {
    int64_t q[8]; qg_emu_q(a, q);
    for (int i = 0; i < 8; i++) q[i] = n > 63 ? 0 : (int64_t)((uint64_t)q[i] >> n);
    return qg_emu_from_q(q);
}
static inline qg_emu512 qg_emu_slli_epi64(qg_emu512 a, unsigned n) {
    int64_t q[8]; qg_emu_q(a, q);
    for (int i = 0; i < 8; i++) q[i] = n > 63 ? 0 : (int64_t)((uint64_t)q[i] << n);
    return qg_emu_from_q(q);
}
/// VPSRLD (immediate): logical shift right of each 32-bit lane; counts above 31 give 0.
static inline qg_emu512 qg_emu_srli_epi32(qg_emu512 a, unsigned n) {
    qg_emu512 r;
    for (int i = 0; i < 16; i++) r.v[i] = n > 31 ? 0 : (int32_t)((uint32_t)a.v[i] >> n);
    return r;
}
/// VPCMPGTD into a mask: bit i set where lane i of a is greater than b's (signed).
static inline uint16_t qg_emu_cmpgt_epi32_mask(qg_emu512 a, qg_emu512 b) {
    uint16_t k = 0;
    for (int i = 0; i < 16; i++) k |= (uint16_t)((a.v[i] > b.v[i]) << i);
    return k;
}
/// VPADDD with a merge mask: a + b (wrapping) where the mask bit is set, src elsewhere.
static inline qg_emu512 qg_emu_mask_add_epi32(qg_emu512 src, uint16_t k, qg_emu512 a, qg_emu512 b) {
    qg_emu512 r;
    for (int i = 0; i < 16; i++) r.v[i] = ((k >> i) & 1) ? (int32_t)((uint32_t)a.v[i] + (uint32_t)b.v[i]) : src.v[i];
    return r;
}
/// VPADDSW: 16-bit lanes added with signed saturation.
static inline qg_emu512 qg_emu_adds_epi16(qg_emu512 a, qg_emu512 b) {
    int16_t x[32], y[32];
    memcpy(x, a.v, 64);
    memcpy(y, b.v, 64);
    for (int i = 0; i < 32; i++) {
        const int32_t sum = (int32_t)x[i] + (int32_t)y[i];
        x[i] = (int16_t)(sum < INT16_MIN ? INT16_MIN : sum > INT16_MAX ? INT16_MAX : sum);
    }
    qg_emu512 r;
    memcpy(r.v, x, 64);
    return r;
}
/// VPBROADCASTW: the word in all 32 lanes.
static inline qg_emu512 qg_emu_set1_epi16(short x) {
    int16_t w[32];
    for (int i = 0; i < 32; i++) w[i] = x;
    qg_emu512 r;
    memcpy(r.v, w, 64);
    return r;
}
/// Lanes whose mask bit is set come from b, the others from a.
static inline qg_emu512 qg_emu_mask_blend_epi32(uint16_t k, qg_emu512 a, qg_emu512 b) {
    qg_emu512 r;
    for (int i = 0; i < 16; i++) r.v[i] = ((k >> i) & 1) ? b.v[i] : a.v[i];
    return r;
}

// Single-precision lanes. Plain C float arithmetic is IEEE single precision
// on x86-64 (SSE), so these are the instructions' results, lane by lane.
typedef struct { float v[16]; } qg_emu512f;

static inline qg_emu512f qg_emu_setzero_ps(void) { qg_emu512f r; memset(&r, 0, sizeof r); return r; }
static inline qg_emu512f qg_emu_set1_ps(float x) { qg_emu512f r; for (int i = 0; i < 16; i++) r.v[i] = x; return r; }
static inline qg_emu512f qg_emu_loadu_ps(const float *p) { qg_emu512f r; memcpy(&r, p, 64); return r; }
static inline void qg_emu_storeu_ps(float *p, qg_emu512f a) { memcpy(p, &a, 64); }
#define QG_EMU_OPF(name, expr)                                                                 \
    static inline qg_emu512f name(qg_emu512f a, qg_emu512f b) {                                \
        qg_emu512f r;                                                                          \
        for (int i = 0; i < 16; i++) { const float x = a.v[i], y = b.v[i]; r.v[i] = (expr); }  \
        return r;                                                                              \
    }
QG_EMU_OPF(qg_emu_mul_ps, x * y)
QG_EMU_OPF(qg_emu_add_ps, x + y)
/// MAXPS / MINPS: the second operand unless the first is strictly greater (smaller).
QG_EMU_OPF(qg_emu_max_ps, x > y ? x : y)
QG_EMU_OPF(qg_emu_min_ps, x < y ? x : y)
/// VCVTDQ2PS: int32 to float, rounded to nearest even (the default mode).
static inline qg_emu512f qg_emu_cvtepi32_ps(qg_emu512 a) {
    qg_emu512f r;
    for (int i = 0; i < 16; i++) r.v[i] = (float)a.v[i];
    return r;
}
/// VFMADD: a·b + c per lane with one rounding (fmaf is exact-then-rounded).
static inline qg_emu512f qg_emu_fmadd_ps(qg_emu512f a, qg_emu512f b, qg_emu512f c) {
    qg_emu512f r;
    for (int i = 0; i < 16; i++) r.v[i] = __builtin_fmaf(a.v[i], b.v[i], c.v[i]);
    return r;
}
/// VMOVUPS with a mask: only the lanes whose mask bit is set are written.
static inline void qg_emu_mask_storeu_ps(float *p, uint16_t k, qg_emu512f a) {
    for (int i = 0; i < 16; i++)
        if (k >> i & 1) p[i] = a.v[i];
}
/// VMOVDQU32 with a mask: only the lanes whose mask bit is set are written.
static inline void qg_emu_mask_storeu_epi32(void *p, uint16_t k, qg_emu512 a) {
    for (int i = 0; i < 16; i++)
        if (k >> i & 1) memcpy((char *)p + 4 * i, &a.v[i], 4);
}
/// VMOVDQA64 to memory: faults on an address off 64 bytes, as the instruction does.
static inline void qg_emu_store_aligned(void *p, qg_emu512 a) {
    if ((uintptr_t)p % 64 != 0) __builtin_trap();
    memcpy(p, &a, 64);
}
/// The bits of 16 floats as 16 int32 lanes (no instruction).
static inline qg_emu512 qg_emu_castps_si512(qg_emu512f a) { qg_emu512 r; memcpy(r.v, a.v, 64); return r; }
/// VPSUBB: byte lanes subtracted, wrapping.
static inline qg_emu512 qg_emu_sub_epi8(qg_emu512 a, qg_emu512 b) {
    uint8_t x[64], y[64];
    memcpy(x, a.v, 64);
    memcpy(y, b.v, 64);
    for (int i = 0; i < 64; i++) x[i] = (uint8_t)(x[i] - y[i]);
    qg_emu512 r;
    memcpy(r.v, x, 64);
    return r;
}
/// VPSRLW by an immediate: each 16-bit lane shifted right logically (counts above 15 give 0).
static inline qg_emu512 qg_emu_srli_epi16(qg_emu512 a, unsigned imm) {
    uint16_t w[32];
    memcpy(w, a.v, 64);
    for (int i = 0; i < 32; i++) w[i] = imm > 15 ? 0 : (uint16_t)(w[i] >> imm);
    qg_emu512 r;
    memcpy(r.v, w, 64);
    return r;
}
/// VCVTPH2PS: 16 binary16 values to float, exactly (subnormals, Inf and NaN included).
static inline __attribute__((target("avx2"))) qg_emu512f qg_emu_cvtph_ps(__m256i a) {
    uint16_t h[16];
    memcpy(h, &a, 32);
    qg_emu512f r;
    for (int i = 0; i < 16; i++) {
        const uint32_t sign = (uint32_t)(h[i] & 0x8000u) << 16;
        uint32_t e = (h[i] >> 10) & 0x1Fu, m = h[i] & 0x3FFu, bits;
        if (e == 0x1F) bits = sign | 0x7F800000u | (m << 13) | (m ? 0x400000u : 0); // NaNs come back quiet
        else if (e != 0) bits = sign | ((e + 112) << 23) | (m << 13);
        else if (m == 0) bits = sign;
        else {
            e = 113;
            while (!(m & 0x400u)) { m <<= 1; e--; }
            bits = sign | (e << 23) | ((m & 0x3FFu) << 13);
        }
        memcpy(&r.v[i], &bits, 4);
    }
    return r;
}
/// VCVTPS2DQ: float to int32, rounded to nearest even; NaN and values outside
/// int32 give INT32_MIN (the "integer indefinite").
static inline qg_emu512 qg_emu_cvtps_epi32(qg_emu512f a) {
    qg_emu512 r;
    for (int i = 0; i < 16; i++) {
        const float f = a.v[i];
        r.v[i] = f == f && f > -2147483904.0f && f < 2147483648.0f ? (int32_t)__builtin_rintf(f) : INT32_MIN;
    }
    return r;
}

#endif
