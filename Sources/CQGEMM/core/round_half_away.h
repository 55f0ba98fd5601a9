// Internal: round-half-away-from-zero in scalar C that no compiler flag or
// rounding mode changes. roundf and round are not enough: where SSE4.1 is
// on (inlined into a function built for AVX2, or a build for a newer CPU)
// clang turns them into adding ½ − 2^-25 (or its double twin) and
// truncating, and that addition rounds by the thread's mode: 1.5 becomes 1
// when rounding down. Here v is truncated (the rounding is in the
// instruction or in truncf, not taken from the mode) and moved one step away
// from zero where the part cut off, v − trunc(v), is ½ or more; each step is
// exact, and trunc keeps v's sign, so −0.4 gives −0 as roundf does. ±Inf
// and NaN come back as they went in (±Inf raising the invalid flag, which
// matters only where floating-point traps are on).
#ifndef QG_ROUND_HALF_AWAY_H
#define QG_ROUND_HALF_AWAY_H

#include <math.h>

static inline float qg_round_half_away_f(float v) {
    const float t = truncf(v), cut = v - t;
    return cut >= 0.5f ? t + 1.0f : cut <= -0.5f ? t - 1.0f : t;
}

static inline double qg_round_half_away_d(double v) {
    const double t = trunc(v), cut = v - t;
    return cut >= 0.5 ? t + 1.0 : cut <= -0.5 ? t - 1.0 : t;
}

#endif
