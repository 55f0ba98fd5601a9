// Compares every stand-in of emulated_avx512.h with the real AVX-512
// instruction on random inputs (special values included), bit for bit, so the
// emulation that checks the VNNI kernel on CPUs without AVX-512 is itself
// checked. On a CPU without AVX-512 F/BW/VNNI it says so and succeeds: there
// is nothing to compare against there.
#include <stdio.h>

#include "emulated_avx512.h"
#include "emulated_avxvnni.h"
#include "emulated_amx.h"

#if defined(__linux__)
#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

#define QG_REAL __attribute__((target("avx2,avx512f,avx512bw,avx512vnni")))

static uint64_t state = 0x2545F4914F6CDD1Dull;
static uint64_t next64(void) { state ^= state << 13; state ^= state >> 7; state ^= state << 17; return state; }

/// Random lanes, with extremes and small shift counts mixed in.
static qg_emu512 random_vector(void) {
    int64_t q[8];
    for (int i = 0; i < 8; i++) {
        switch (next64() % 6) {
        case 0: q[i] = INT64_MIN + (int64_t)(next64() % 3); break;
        case 1: q[i] = INT64_MAX - (int64_t)(next64() % 3); break;
        case 2: q[i] = (int64_t)(next64() % 80); break; // shift counts, in and past range
        case 3: q[i] = (int64_t)(0xFFFFFFFF00000000ull | (uint32_t)next64()); break; // negative, any low half
        default: q[i] = (int64_t)next64(); break;
        }
    }
    return qg_emu_from_q(q);
}

static __m512i QG_REAL to_real(qg_emu512 a) { return _mm512_loadu_si512((const void *)a.v); }
static qg_emu512 QG_REAL from_real(__m512i a) { qg_emu512 r; _mm512_storeu_si512((void *)r.v, a); return r; }
static int same(qg_emu512 a, qg_emu512 b) { return memcmp(&a, &b, sizeof a) == 0; }

static int failures;
static void report(const char *name, int ok) {
    if (!ok && failures++ < 20) fprintf(stderr, "check-stand-ins: %s differs from the instruction\n", name);
}

static void QG_REAL compare(qg_emu512 a, qg_emu512 b, qg_emu512 c, unsigned imm, uint16_t k) {
    const __m512i ra = to_real(a), rb = to_real(b), rc = to_real(c);
#define QG_BINARY(stand_in, real) report(#real, same(stand_in(a, b), from_real(real(ra, rb))))
    QG_BINARY(qg_emu_add_epi32, _mm512_add_epi32);
    QG_BINARY(qg_emu_sub_epi32, _mm512_sub_epi32);
    QG_BINARY(qg_emu_mullo_epi32, _mm512_mullo_epi32);
    QG_BINARY(qg_emu_max_epi32, _mm512_max_epi32);
    QG_BINARY(qg_emu_min_epi32, _mm512_min_epi32);
    QG_BINARY(qg_emu_sllv_epi32, _mm512_sllv_epi32);
    QG_BINARY(qg_emu_srav_epi32, _mm512_srav_epi32);
    QG_BINARY(qg_emu_add_epi64, _mm512_add_epi64);
    QG_BINARY(qg_emu_sub_epi64, _mm512_sub_epi64);
    QG_BINARY(qg_emu_and, _mm512_and_si512);
    QG_BINARY(qg_emu_xor, _mm512_xor_si512);
    QG_BINARY(qg_emu_sllv_epi64, _mm512_sllv_epi64);
    QG_BINARY(qg_emu_max_epi64, _mm512_max_epi64);
    QG_BINARY(qg_emu_min_epi64, _mm512_min_epi64);
    QG_BINARY(qg_emu_mul_epi32, _mm512_mul_epi32);
    QG_BINARY(qg_emu_srav_epi64, _mm512_srav_epi64);
    QG_BINARY(qg_emu_sub_epi8, _mm512_sub_epi8);
#undef QG_BINARY
    report("_mm512_permutex2var_epi32",
           same(qg_emu_permutex2var_epi32(a, b, c), from_real(_mm512_permutex2var_epi32(ra, rb, rc))));
    report("_mm512_srai_epi64", same(qg_emu_srai_epi64(a, imm), from_real(_mm512_srai_epi64(ra, imm))));
    report("_mm512_srai_epi32", same(qg_emu_srai_epi32(a, imm), from_real(_mm512_srai_epi32(ra, imm))));
    report("_mm512_cvtepi32_epi8",
           memcmp((__m128i[]){qg_emu_cvtepi32_epi8(a)}, (__m128i[]){_mm512_cvtepi32_epi8(ra)}, 16) == 0);
    report("_mm512_dpbusd_epi32", same(qg_emu_dpbusd(a, b, c), from_real(_mm512_dpbusd_epi32(ra, rb, rc))));
    report("_mm512_srli_epi64", same(qg_emu_srli_epi64(a, imm), from_real(_mm512_srli_epi64(ra, imm))));
    report("_mm512_srli_epi16", same(qg_emu_srli_epi16(a, imm % 20), from_real(_mm512_srli_epi16(ra, imm % 20))));
    report("_mm512_slli_epi64", same(qg_emu_slli_epi64(a, imm), from_real(_mm512_slli_epi64(ra, imm))));
    report("_mm512_mask_blend_epi32", same(qg_emu_mask_blend_epi32(k, a, b), from_real(_mm512_mask_blend_epi32(k, ra, rb))));
    report("_mm512_srli_epi32", same(qg_emu_srli_epi32(a, imm), from_real(_mm512_srli_epi32(ra, imm))));
    report("_mm512_cmpgt_epi32_mask", qg_emu_cmpgt_epi32_mask(a, b) == (uint16_t)_mm512_cmpgt_epi32_mask(ra, rb));
    report("_mm512_cmpgt_epi32_mask", qg_emu_cmpgt_epi32_mask(a, a) == (uint16_t)_mm512_cmpgt_epi32_mask(ra, ra));
    report("_mm512_mask_add_epi32", same(qg_emu_mask_add_epi32(c, k, a, b), from_real(_mm512_mask_add_epi32(rc, k, ra, rb))));
    report("_mm512_set1_epi32", same(qg_emu_set1(a.v[3]), from_real(_mm512_set1_epi32(a.v[3]))));
    int64_t q[8];
    qg_emu_q(a, q);
    report("_mm512_set1_epi64", same(qg_emu_set1_epi64(q[5]), from_real(_mm512_set1_epi64(q[5]))));
    report("_mm512_setzero_si512", same(qg_emu_setzero(), from_real(_mm512_setzero_si512())));
    report("_mm512_loadu_si512", same(qg_emu_loadu(b.v), from_real(_mm512_loadu_si512((const void *)b.v))));
    qg_emu512 stored_emu, stored_real;
    qg_emu_storeu(stored_emu.v, c);
    _mm512_storeu_si512((void *)stored_real.v, rc);
    report("_mm512_storeu_si512", same(stored_emu, stored_real));
}

/// Random lanes around the saturation bounds of the packs: full-range int32,
/// dwords around the int16 range, words around the int8 and uint8 ranges, and
/// the bounds themselves (each ±1).
static qg_emu512 random_narrow(void) {
    static const int32_t bounds[] = {INT16_MIN - 1, INT16_MIN, INT16_MAX, INT16_MAX + 1, 0, -1, 1};
    static const int16_t word_bounds[] = {-129, -128, -127, -1, 0, 1, 126, 127, 128, 254, 255, 256};
    qg_emu512 r;
    for (int i = 0; i < 16; i++) {
        switch (next64() % 5) {
        case 0: r.v[i] = (int32_t)next64(); break;
        case 1: r.v[i] = (int32_t)(next64() % 140001) - 70000; break;
        case 2: { const int16_t w[2] = {(int16_t)((int)(next64() % 801) - 400), (int16_t)((int)(next64() % 801) - 400)}; memcpy(&r.v[i], w, 4); break; }
        case 3: { const int16_t w[2] = {word_bounds[next64() % 12], word_bounds[next64() % 12]}; memcpy(&r.v[i], w, 4); break; }
        default: r.v[i] = bounds[next64() % 7]; break;
        }
    }
    return r;
}

static int same128(__m128i a, __m128i b) { return memcmp(&a, &b, 16) == 0; }

/// The packs, byte min/max, VPERMD and the 128-bit extractions of the epilogue's byte stores.
static void QG_REAL compare_narrow(qg_emu512 a, qg_emu512 b, qg_emu512 c) {
    const __m512i ra = to_real(a), rb = to_real(b), rc = to_real(c);
#define QG_BINARY(stand_in, real) report(#real, same(stand_in(a, b), from_real(real(ra, rb))))
    QG_BINARY(qg_emu_packs_epi32, _mm512_packs_epi32);
    QG_BINARY(qg_emu_packs_epi16, _mm512_packs_epi16);
    QG_BINARY(qg_emu_packus_epi16, _mm512_packus_epi16);
    QG_BINARY(qg_emu_adds_epi16, _mm512_adds_epi16);
    QG_BINARY(qg_emu_max_epi8, _mm512_max_epi8);
    QG_BINARY(qg_emu_min_epi8, _mm512_min_epi8);
    QG_BINARY(qg_emu_max_epu8, _mm512_max_epu8);
    QG_BINARY(qg_emu_min_epu8, _mm512_min_epu8);
#undef QG_BINARY
    report("_mm512_permutexvar_epi32", same(qg_emu_permutexvar_epi32(c, a), from_real(_mm512_permutexvar_epi32(rc, ra))));
    const char x = (char)c.v[5];
    report("_mm512_set1_epi8", same(qg_emu_set1_epi8(x), from_real(_mm512_set1_epi8(x))));
    const short w = (short)c.v[7];
    report("_mm512_set1_epi16", same(qg_emu_set1_epi16(w), from_real(_mm512_set1_epi16(w))));
    report("_mm512_castsi512_si128", same128(qg_emu_castsi512_si128(a), _mm512_castsi512_si128(ra)));
    report("_mm512_extracti32x4_epi32", same128(qg_emu_extracti32x4_epi32(b, 0), _mm512_extracti32x4_epi32(rb, 0)));
    report("_mm512_extracti32x4_epi32", same128(qg_emu_extracti32x4_epi32(b, 1), _mm512_extracti32x4_epi32(rb, 1)));
    report("_mm512_extracti32x4_epi32", same128(qg_emu_extracti32x4_epi32(b, 2), _mm512_extracti32x4_epi32(rb, 2)));
    report("_mm512_extracti32x4_epi32", same128(qg_emu_extracti32x4_epi32(b, 3), _mm512_extracti32x4_epi32(rb, 3)));
}

/// Random finite floats: ordinary magnitudes, around ±2^31 (where the
/// conversion to int32 overflows), ties of rounding, zeros and denormals.
/// No NaN: which NaN an operation returns may depend on operand order, which
/// the compiler is free to swap in the scalar stand-ins (no kernel input is NaN).
static qg_emu512f random_floats(void) {
    qg_emu512f f;
    for (int i = 0; i < 16; i++) {
        switch (next64() % 6) {
        case 0: f.v[i] = (float)((int64_t)(next64() % 4001) - 2000) * 0.5f; break; // ties at .5
        case 1: f.v[i] = ((next64() & 1) ? -1.0f : 1.0f) * (2147483648.0f + (float)(next64() % 512) * 128.0f - 32768.0f); break;
        case 2: f.v[i] = (next64() & 1) ? -0.0f : 1e-40f; break;
        default: f.v[i] = (float)((int32_t)next64()) / (float)(1 + next64() % 100000); break;
        }
    }
    return f;
}

static __m512 QG_REAL to_real_ps(qg_emu512f a) { return _mm512_loadu_ps(a.v); }
static qg_emu512f QG_REAL from_real_ps(__m512 a) { qg_emu512f r; _mm512_storeu_ps(r.v, a); return r; }
static int same_ps(qg_emu512f a, qg_emu512f b) { return memcmp(&a, &b, sizeof a) == 0; }

static void QG_REAL compare_floats(qg_emu512f a, qg_emu512f b, qg_emu512 i) {
    const __m512 ra = to_real_ps(a), rb = to_real_ps(b);
#define QG_BINARY_PS(stand_in, real) report(#real, same_ps(stand_in(a, b), from_real_ps(real(ra, rb))))
    QG_BINARY_PS(qg_emu_mul_ps, _mm512_mul_ps);
    QG_BINARY_PS(qg_emu_add_ps, _mm512_add_ps);
    QG_BINARY_PS(qg_emu_max_ps, _mm512_max_ps);
    QG_BINARY_PS(qg_emu_min_ps, _mm512_min_ps);
#undef QG_BINARY_PS
    report("_mm512_cvtepi32_ps", same_ps(qg_emu_cvtepi32_ps(i), from_real_ps(_mm512_cvtepi32_ps(to_real(i)))));
    report("_mm512_cvtps_epi32", same(qg_emu_cvtps_epi32(a), from_real(_mm512_cvtps_epi32(ra))));
    report("_mm512_set1_ps", same_ps(qg_emu_set1_ps(a.v[7]), from_real_ps(_mm512_set1_ps(a.v[7]))));
    report("_mm512_setzero_ps", same_ps(qg_emu_setzero_ps(), from_real_ps(_mm512_setzero_ps())));
    report("_mm512_loadu_ps", same_ps(qg_emu_loadu_ps(b.v), from_real_ps(_mm512_loadu_ps(b.v))));
    qg_emu512f stored_emu, stored_real;
    qg_emu_storeu_ps(stored_emu.v, a);
    _mm512_storeu_ps(stored_real.v, ra);
    report("_mm512_storeu_ps", same_ps(stored_emu, stored_real));
    const qg_emu512f c = random_floats();
    report("_mm512_fmadd_ps", same_ps(qg_emu_fmadd_ps(a, b, c), from_real_ps(_mm512_fmadd_ps(ra, rb, to_real_ps(c)))));
    const uint16_t k = (uint16_t)i.v[2];
    qg_emu512f masked_emu = b, masked_real = b;
    qg_emu_mask_storeu_ps(masked_emu.v, k, a);
    _mm512_mask_storeu_ps(masked_real.v, k, ra);
    report("_mm512_mask_storeu_ps", same_ps(masked_emu, masked_real));
    qg_emu512 masked_i_emu = i, masked_i_real = i;
    qg_emu_mask_storeu_epi32(masked_i_emu.v, k, qg_emu_castps_si512(a));
    _mm512_mask_storeu_epi32((void *)masked_i_real.v, k, _mm512_castps_si512(ra));
    report("_mm512_mask_storeu_epi32", same(masked_i_emu, masked_i_real));
    report("_mm512_castps_si512", same(qg_emu_castps_si512(a), from_real(_mm512_castps_si512(ra))));
    qg_emu512 aligned_emu __attribute__((aligned(64)));
    qg_emu512 aligned_real __attribute__((aligned(64)));
    qg_emu_store_aligned(aligned_emu.v, i);
    _mm512_store_si512((void *)aligned_real.v, to_real(i));
    report("_mm512_store_si512", same(aligned_emu, aligned_real));
    // Any 16 binary16 values: normals, subnormals, zeros, Inf and NaN.
    __m256i halves;
    memcpy(&halves, i.v, 32);
    report("_mm512_cvtph_ps", same_ps(qg_emu_cvtph_ps(halves), from_real_ps(_mm512_cvtph_ps(halves))));
}

/// The AVX-VNNI stand-in against the VEX VPDPBUSD on ymm.
static void __attribute__((target("avx2,avxvnni"))) compare_avxvnni(qg_emu512 a, qg_emu512 b, qg_emu512 c) {
    __m256i ra, rb, rc;
    memcpy(&ra, a.v, 32);
    memcpy(&rb, b.v, 32);
    memcpy(&rc, c.v, 32);
    const __m256i real = _mm256_dpbusd_avx_epi32(rc, ra, rb), emu = qg_emu_dpbusd_avx(rc, ra, rb);
    report("_mm256_dpbusd_avx_epi32", memcmp(&real, &emu, 32) == 0);
}

/// The AVX-VNNI stand-in, where the CPU has the instruction.
static int check_avxvnni(int cases) {
    if (!__builtin_cpu_supports("avxvnni")) {
        printf("check-stand-ins: this CPU has no AVX-VNNI; its stand-in cannot be compared with the instruction here\n");
        return 0;
    }
    for (int i = 0; i < cases; i++) compare_avxvnni(random_vector(), random_vector(), random_vector());
    if (failures) {
        fprintf(stderr, "check-stand-ins: %d differences\n", failures);
        return 1;
    }
    printf("check-stand-ins: the AVX-VNNI stand-in × %d random inputs, identical to the instruction\n", cases);
    return 0;
}

/// The tile stand-ins against TDPBUSD and TDPBSSD: random tiles (the
/// configuration of the amxint8 kernel, all 16 × 64 bytes), both products,
/// after loads with random strides.
static void __attribute__((target("amx-tile,amx-int8"))) compare_amx(void) {
    static const struct __attribute__((aligned(64))) {
        uint8_t palette, start_row, reserved[14];
        uint16_t colsb[16];
        uint8_t rows[16];
    } config = {.palette = 1, .colsb = {64, 64, 64, 64, 64, 64, 64, 64}, .rows = {16, 16, 16, 16, 16, 16, 16, 16}};
    uint8_t a[16 * 128], b[16 * 128], c[16 * 64], real[16 * 64], emu[16 * 64];
    for (size_t i = 0; i < sizeof a; i++) a[i] = (uint8_t)next64();
    for (size_t i = 0; i < sizeof b; i++) b[i] = (uint8_t)next64();
    for (size_t i = 0; i < sizeof c; i++) c[i] = (uint8_t)next64();
    const int64_t stride = 64 + 4 * (int64_t)(next64() % 17);
    for (int product = 0; product < 2; product++) {
        _tile_loadconfig(&config);
        _tile_loadd(0, c, 64);
        _tile_loadd(4, a, stride);
        _tile_loadd(6, b, stride);
        if (product == 0) _tile_dpbusd(0, 4, 6);
        else _tile_dpbssd(0, 4, 6);
        _tile_stored(0, real, 64);
        _tile_release();
        qg_emu_tile_loadconfig(&config);
        qg_emu_tile_loadd(0, c, 64);
        qg_emu_tile_loadd(4, a, stride);
        qg_emu_tile_loadd(6, b, stride);
        qg_emu_tile_dp(0, 4, 6, product == 0);
        qg_emu_tile_stored(0, emu, 64);
        report(product == 0 ? "_tile_dpbusd" : "_tile_dpbssd", memcmp(real, emu, sizeof real) == 0);
    }
}

/// The tile stand-ins, where the CPU has AMX-INT8 and Linux grants the tile state.
static int check_amx(int cases) {
#if defined(__linux__)
    unsigned a, b, c, d;
    const int has = __get_cpuid_count(7, 0, &a, &b, &c, &d) && ((d >> 24) & 1) && ((d >> 25) & 1) &&
                    syscall(SYS_arch_prctl, 0x1023, 18) == 0;
#else
    const int has = 0;
#endif
    if (!has) {
        printf("check-stand-ins: this CPU has no AMX-INT8 (or the OS did not grant it); the tile stand-ins cannot be compared with the instructions here\n");
        return 0;
    }
    for (int i = 0; i < cases; i++) compare_amx();
    if (failures) {
        fprintf(stderr, "check-stand-ins: %d differences\n", failures);
        return 1;
    }
    printf("check-stand-ins: the AMX tile stand-ins × %d random tiles, identical to TDPBUSD and TDPBSSD\n", cases);
    return 0;
}

/// GF2P8AFFINEQB (GFNI), apart from compare(): a CPU may have AVX-512 without it.
static void __attribute__((target("avx2,avx512f,avx512bw,gfni"))) compare_gfni(qg_emu512 a, qg_emu512 m) {
    const __m512i ra = to_real(a), rm = to_real(m);
    report("_mm512_gf2p8affine_epi64_epi8",
           same(qg_emu_gf2p8affine_epi64_epi8(a, m, 0), from_real(_mm512_gf2p8affine_epi64_epi8(ra, rm, 0))));
    report("_mm512_gf2p8affine_epi64_epi8",
           same(qg_emu_gf2p8affine_epi64_epi8(a, m, 0x5A), from_real(_mm512_gf2p8affine_epi64_epi8(ra, rm, 0x5A))));
    // The matrix the 4-bit tile uses (w4_zmm.h): each byte's high nibble.
    const qg_emu512 high = qg_emu_set1_epi64(0x1020408000000000ll);
    report("_mm512_gf2p8affine_epi64_epi8",
           same(qg_emu_gf2p8affine_epi64_epi8(a, high, 0), from_real(_mm512_gf2p8affine_epi64_epi8(ra, to_real(high), 0))));
}

int main(void) {
    __builtin_cpu_init();
    if (check_avxvnni(100000)) return 1;
    if (check_amx(20000)) return 1;
    if (!__builtin_cpu_supports("avx512f") || !__builtin_cpu_supports("avx512bw") || !__builtin_cpu_supports("avx512vnni")) {
        printf("check-stand-ins: this CPU has no AVX-512 VNNI; the AVX-512 stand-ins cannot be compared with the instructions here\n");
        return 0;
    }
    const int cases = 100000;
    for (int i = 0; i < cases; i++) {
        const unsigned imm = (unsigned)(next64() % 70);
        compare(random_vector(), random_vector(), random_vector(), imm, (uint16_t)next64());
        compare_floats(random_floats(), random_floats(), random_vector());
        compare_narrow(random_vector(), random_vector(), random_vector());
        compare_narrow(random_narrow(), random_narrow(), random_narrow());
    }
    const int gfni = __builtin_cpu_supports("gfni");
    if (gfni)
        for (int i = 0; i < cases; i++) compare_gfni(random_vector(), random_vector());
    if (failures) {
        fprintf(stderr, "check-stand-ins: %d differences\n", failures);
        return 1;
    }
    printf("check-stand-ins: every AVX-512 stand-in × %d random inputs, each identical to its instruction%s\n", cases,
           gfni ? "" : " (GF2P8AFFINEQB not compared: this CPU has no GFNI)");
    return 0;
}
