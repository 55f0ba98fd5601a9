// IEEE binary16 to and from float, by hand: the one definition the 4-bit
// weights' packing, the reference and the portable tile use (the SIMD tiles
// widen with VCVTPH2PS or FCVTL, which give the same values, exactly). The
// tests compare both ways with Swift's Float16.
#include "qgemm.h"

#include <string.h>

uint16_t qg_f16_from_f32(float f) {
    uint32_t x;
    memcpy(&x, &f, sizeof x);
    const uint32_t sign = x & 0x80000000u;
    x ^= sign;
    uint16_t h;
    if (x >= 0x47800000u) {
        // 65536 or more (or Inf, NaN): Inf, or a quiet NaN.
        h = x > 0x7F800000u ? 0x7E00 : 0x7C00;
    } else if (x < 0x38800000u) {
        // Below 2^-14: a binary16 subnormal (a multiple of 2^-24) or zero,
        // rounded to nearest even in integers, as the normal range is: a
        // float addition would round in the caller's rounding mode. With
        // biased exponent e and 24-bit significand s the value is
        // s·2^(e − 150), that is s / 2^(126 − e) units of 2^-24; below 2^-25
        // (e ≤ 101, Float subnormals too) it rounds to 0, and 1023.5 units
        // and more round up to 0x400, the smallest normal, whose bits follow.
        const uint32_t e = x >> 23;
        if (e < 102) {
            h = 0;
        } else {
            const uint32_t s = (x & 0x7FFFFFu) | 0x800000u, r = 126 - e; // r: 14 … 24
            const uint32_t q = s >> r, rest = s & ((1u << r) - 1), half = 1u << (r - 1);
            h = (uint16_t)(q + (rest > half || (rest == half && (q & 1))));
        }
    } else {
        // Normal: rebias the exponent and round the 13 dropped bits to
        // nearest even (a carry into the exponent gives the next binade, or Inf).
        const uint32_t odd = (x >> 13) & 1;
        x += 0xC8000000u + 0xFFFu + odd; // (15 − 127) << 23, wrapping, plus the rounding
        h = (uint16_t)(x >> 13);
    }
    return (uint16_t)(h | (sign >> 16));
}

float qg_f32_from_f16(uint16_t h) {
    const uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exponent = (h >> 10) & 0x1Fu, mantissa = h & 0x3FFu, bits;
    if (exponent == 0x1F) {
        bits = sign | 0x7F800000u | (mantissa << 13);
    } else if (exponent != 0) {
        bits = sign | ((exponent + 112) << 23) | (mantissa << 13);
    } else if (mantissa == 0) {
        bits = sign;
    } else {
        // Subnormal: mantissa · 2^-24, normalized.
        exponent = 113;
        while (!(mantissa & 0x400u)) {
            mantissa <<= 1;
            exponent--;
        }
        bits = sign | (exponent << 23) | ((mantissa & 0x3FFu) << 13);
    }
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}
