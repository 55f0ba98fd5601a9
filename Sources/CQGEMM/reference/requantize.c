// Scalar requantization of one accumulator: the definition in the README's "Arithmetic" section (the package's contract).
// Everything is exact in int64; the result is clamped to [lo, hi] (the
// output range minus Z_Y) before it is narrowed.
#include "qgemm.h"

#include <math.h>

#pragma clang fp contract(off)

static int64_t qg_clamp64(int64_t v, int32_t lo, int32_t hi) {
    return v < lo ? lo : (v > hi ? hi : v);
}

int32_t qg_requantize_single(int32_t acc, int32_t m0, int32_t shift, int32_t lo, int32_t hi) {
    const int total = 31 - shift; // 1 ... 62
    const int64_t product = (int64_t)acc * (int64_t)m0; // |.| < 2^62
    const int64_t rounded = (product + ((int64_t)1 << (total - 1))) >> total; // floor: ties go up
    return (int32_t)qg_clamp64(rounded, lo, hi);
}

int32_t qg_requantize_double(int32_t acc, int32_t m0, int32_t shift, int32_t lo, int32_t hi) {
    const int left = shift > 0 ? shift : 0;   // 0 ... 30
    const int right = shift > 0 ? 0 : -shift; // 0 ... 31
    // SRDHM(acc·2^left, M0) = floor((acc·2^left·M0 + 2^30) / 2^31), computed
    // without forming acc·2^left·M0 (which can need 92 bits).
    const int64_t product = (int64_t)acc * (int64_t)m0;
    const int64_t high = (product + ((int64_t)1 << (30 - left))) >> (31 - left);
    if (right == 0) return (int32_t)qg_clamp64(high, lo, hi);
    // Rounding divide by 2^right, ties away from zero (gemmlowp RoundingDivideByPOT).
    const int64_t mask = ((int64_t)1 << right) - 1;
    const int64_t remainder = high & mask;
    const int64_t threshold = (mask >> 1) + (high < 0 ? 1 : 0);
    const int64_t quotient = (high >> right) + (remainder > threshold ? 1 : 0);
    return (int32_t)qg_clamp64(quotient, lo, hi);
}

int32_t qg_requantize_float(int32_t acc, float f, int32_t lo, int32_t hi) {
    float v = (float)acc * f;
    // Rounded, then clamped exactly. The kernels clamp in float before they
    // round, which is the same for bounds that Float holds (every output
    // type's: rounding is monotonic and leaves those integers where they
    // are); a bound past 2^24 may round inward in float (−16777217 to
    // −16777216), so here only the int64 conversion's range is held first.
    // A NaN (a NaN multiplier, or an infinite one times 0: the callers
    // refuse both) counts as 0.
    if (v != v) v = 0.0f;
    if (v < -0x1p62f) v = -0x1p62f;
    if (v > 0x1p62f) v = 0x1p62f;
    return (int32_t)qg_clamp64((int64_t)nearbyintf(v), lo, hi); // ties to even in the default rounding mode
}
