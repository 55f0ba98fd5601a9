// The 512-bit x86 epilogue, shared by the avx512vnni and amxint8 paths (as
// epilogue_ymm.h serves the 256-bit ones): the per-call params — each
// panel's start value (bias and the call's zero-point term, the path's
// private fold taken back) and the constants of the rows route —
// and the finish of R rows of one 16-channel panel, one zmm per row: the row's
// zero-point term, then the int32 output, the float output or the int8/uint8
// requantization, with the reference's int64 arithmetic (KERNELS.md, "The
// epilogue"), or for int8/uint8 output where the call's constants allow it by
// the rows route (qg_avx512_q8_rows: 32-bit lanes, four rows packed to bytes
// together); and for int32 and float rows that start off a 64-byte line, the
// finish of two panels of R rows at once, each row stored by lines
// (qg_avx512_wide_rows_by_lines). The per-channel values are prepared once
// per panel, not once per row; shifts are native (VPSRAVQ) and the
// narrowing one VPMOVDB.
// Included by kernel files only, after they define QG_ZMM_INLINE (static
// inline QG_SPECIALIZE with their target); everything here is static inline.
// The intrinsics used are exactly those scripts/vnni-emulation/emulated_avx512.h
// provides stand-ins for.
#ifndef QG_EPILOGUE_ZMM_H
#define QG_EPILOGUE_ZMM_H

#include <immintrin.h>
#include <string.h>

#include "kernel.h"
#include "narrow_requantize.h"
#include "partial_store.h"

#pragma clang fp contract(off) // the reference's float operations, unfused

QG_ZMM_INLINE __m512i qg_avx512_lo32(__m512i v) { return _mm512_and_si512(v, _mm512_set1_epi64(0xFFFFFFFF)); }
QG_ZMM_INLINE __m512i qg_avx512_hi32(__m512i v) { return _mm512_srli_epi64(v, 32); }

/// The per-channel constants of the fixed-point requantization of one panel,
/// split into the even and odd 32-bit lanes (VPMULDQ multiplies the low half
/// of each 64-bit lane). Made once per tile and panel, used for every row.
typedef struct qg_avx512_fixed {
    __m512i m0[2];     // M0, in the low half of each 64-bit lane
    __m512i t[2];      // the first rounding shift: 31 − shift (single), 31 − max(shift, 0) (double)
    __m512i round[2];  // 2^(t − 1)
    __m512i right[2];  // double only: max(−shift, 0), the rounding divide's shift
    __m512i half[2];   // double only: 2^(right − 1), or 0 when right is 0
    __m512i neg[2];    // double only: all ones where right > 0 (ties away from zero need a −1 there)
    __m512i lo, hi;    // the clamp bounds minus Z_Y, as int64
} qg_avx512_fixed;

QG_ZMM_INLINE qg_avx512_fixed qg_avx512_fixed_constants(const qg_gemm_args *a, int64_t n, int32_t lo, int32_t hi,
                                                         const int dbl) {
    qg_avx512_fixed c;
    const __m512i m0 = _mm512_loadu_si512((const void *)(a->multiplier + n));
    const __m512i shift = _mm512_loadu_si512((const void *)(a->shift + n));
    const __m512i k31 = _mm512_set1_epi64(31), zero = _mm512_setzero_si512(), one = _mm512_set1_epi64(1);
    const __m512i halves[2][2] = {{qg_avx512_lo32(m0), qg_avx512_lo32(shift)}, {qg_avx512_hi32(m0), qg_avx512_hi32(shift)}};
    for (int h = 0; h < 2; h++) {
        c.m0[h] = halves[h][0];
        // The shift as a signed int64 (the 32-bit value sign-extended).
        const __m512i s = _mm512_srai_epi64(_mm512_slli_epi64(halves[h][1], 32), 32);
        c.right[h] = c.half[h] = c.neg[h] = zero;
        if (!dbl) {
            c.t[h] = _mm512_sub_epi64(k31, s); // 1 ... 62
        } else {
            const __m512i left = _mm512_max_epi64(s, zero);
            c.t[h] = _mm512_sub_epi64(k31, left); // SRDHM(acc·2^left, M0) = round_shift(acc·M0, 31 − left)
            c.right[h] = _mm512_sub_epi64(left, s); // max(−shift, 0): 0 ... 31
            c.half[h] = _mm512_srli_epi64(_mm512_sllv_epi64(one, c.right[h]), 1);
            c.neg[h] = _mm512_srai_epi64(_mm512_sub_epi64(zero, c.right[h]), 63);
        }
        c.round[h] = _mm512_sllv_epi64(one, _mm512_sub_epi64(c.t[h], one));
    }
    c.lo = _mm512_set1_epi64(lo);
    c.hi = _mm512_set1_epi64(hi);
    return c;
}

/// One half (even or odd lanes) of the fixed-point requantization: the
/// products acc·M0, rounded and shifted, clamped to [lo, hi], as int64.
QG_ZMM_INLINE __m512i qg_avx512_requantize_half(const qg_avx512_fixed *c, int h, __m512i acc, int dbl) {
    __m512i q = _mm512_mul_epi32(acc, c->m0[h]);
    q = _mm512_srav_epi64(_mm512_add_epi64(q, c->round[h]), c->t[h]); // floor((p + 2^(t−1)) / 2^t)
    if (dbl) {
        // Rounding divide by 2^right, ties away from zero: −1 first for a
        // negative value (where right > 0), then round half up.
        const __m512i fix = _mm512_and_si512(_mm512_srai_epi64(q, 63), c->neg[h]);
        q = _mm512_srav_epi64(_mm512_add_epi64(_mm512_add_epi64(q, fix), c->half[h]), c->right[h]);
    }
    return _mm512_min_epi64(_mm512_max_epi64(q, c->lo), c->hi);
}

/// VPERMT2D indices: the high 32-bit half of every 64-bit lane, even lanes
/// from the first operand and odd lanes from the second.
static const int32_t qg_avx512_high_halves[16] = {1, 17, 3, 19, 5, 21, 7, 23, 9, 25, 11, 27, 13, 29, 15, 31};

/// Single rounding's requantization of 16 lanes on the rows route (narrow_requantize.h has the
/// rule): one permute gathers the 16 high halves of acc·M0, then a rounding
/// add (`round`, the output zero point folded in) and a per-lane arithmetic
/// shift by `count`.
QG_ZMM_INLINE __m512i qg_avx512_requantize_high(__m512i v, __m512i m0, __m512i m0_odd, __m512i high_halves, __m512i round,
                                                 __m512i count) {
    const __m512i even = _mm512_mul_epi32(v, m0);
    const __m512i odd = _mm512_mul_epi32(_mm512_srli_epi64(v, 32), m0_odd);
    const __m512i high = _mm512_permutex2var_epi32(even, high_halves, odd);
    return _mm512_srav_epi32(_mm512_add_epi32(high, round), count);
}

/// Stores the first `cols` (1..16) bytes of v.
QG_ZMM_INLINE void qg_avx512_store_bytes(void *dst, __m128i v, int cols) {
    if (cols == 16) {
        _mm_storeu_si128((__m128i *)dst, v);
    } else {
        uint8_t tmp[16];
        _mm_storeu_si128((__m128i *)tmp, v);
        qg_copy_first_bytes(dst, tmp, cols);
    }
}

/// Row m's int32 outputs of one panel: its sums less the row's zero-point
/// term (dynamic rows), if any.
QG_ZMM_INLINE __m512i qg_avx512_int32_row(const int32_t *row_zp, int64_t m, __m512i row_sum, __m512i v) {
    if (row_zp) v = _mm512_sub_epi32(v, _mm512_mullo_epi32(_mm512_set1_epi32(row_zp[m]), row_sum));
    return v;
}

/// The per-channel values of one panel's float output, loaded once per tile.
typedef struct qg_avx512_float_panel {
    __m512 weight_scale, out_bias, call_scale;
} qg_avx512_float_panel;

QG_ZMM_INLINE qg_avx512_float_panel qg_avx512_float_panel_at(const qg_gemm_args *a, int64_t n) {
    qg_avx512_float_panel p;
    p.weight_scale = _mm512_loadu_ps(a->weight_scale + n);
    p.out_bias = a->out_bias ? _mm512_loadu_ps(a->out_bias + n) : _mm512_setzero_ps();
    p.call_scale = _mm512_mul_ps(_mm512_set1_ps(a->x_scale), p.weight_scale);
    return p;
}

/// Row m's float outputs of one panel: (float)acc · (s_x · weight_scale[n])
/// (+ out_bias[n]), the reference's operations in its order (contraction is
/// off in this file).
/// `row_scale` and `out_bias` are the call's (the callers read them once, as
/// a store to y could alias the arguments).
QG_ZMM_INLINE __m512 qg_avx512_float_row(const qg_avx512_float_panel *p, const float *row_scale, const float *out_bias,
                                         const int32_t *row_zp, int64_t m, __m512i row_sum, __m512i acc) {
    const __m512i v = qg_avx512_int32_row(row_zp, m, row_sum, acc);
    const __m512 scale = row_scale ? _mm512_mul_ps(_mm512_set1_ps(row_scale[m]), p->weight_scale) : p->call_scale;
    __m512 f = _mm512_mul_ps(_mm512_cvtepi32_ps(v), scale);
    if (out_bias) f = _mm512_add_ps(f, p->out_bias);
    return f;
}

/// Finishes the 16 channel sums of R rows (from m0) of one panel (channels n
/// …, a multiple of 16), acc[r] holding row r's, bias and call zero-point term
/// already in (the tiles start their accumulators there); stores the first
/// `cols` (1..16) of each row. The per-channel values (multipliers, shifts,
/// scales, clamp) are loaded and prepared once for all R rows. Any output
/// kind (a compile-time constant in every tile); the tiles use
/// qg_avx512_q8_rows instead where the call allows it.
QG_ZMM_INLINE void qg_avx512_epilogue_rows(const qg_gemm_args *a, int64_t m0, const int R, int64_t n, int cols,
                                            const __m512i *acc, const qg_output_kind kind) {
    // Locals, not a->…: stores to y could alias *a, so the compiler would
    // reload every field once per row.
    uint8_t *const y = (uint8_t *)a->y;
    const int64_t ldy = a->ldy;
    const int32_t *const row_zp = a->row_zero_point;
    const __m512i row_sum = _mm512_loadu_si512((const void *)(a->row_sum + n));
    if (kind == QG_KIND_FLOAT) {
        const qg_avx512_float_panel fp = qg_avx512_float_panel_at(a, n);
        const float *const row_scale = a->row_scale, *const out_bias = a->out_bias;
#pragma clang loop unroll(full)
        for (int r = 0; r < R; r++) {
            const __m512 f = qg_avx512_float_row(&fp, row_scale, out_bias, row_zp, m0 + r, row_sum, acc[r]);
            float *dst = (float *)y + (m0 + r) * ldy + n;
            if (cols == 16) {
                _mm512_storeu_ps(dst, f);
            } else {
                float tmp[16];
                _mm512_storeu_ps(tmp, f);
                qg_copy_first_bytes(dst, tmp, cols * (int)sizeof(float));
            }
        }
        return;
    }
    if (kind == QG_KIND_INT32) {
#pragma clang loop unroll(full)
        for (int r = 0; r < R; r++) {
            const __m512i v = qg_avx512_int32_row(row_zp, m0 + r, row_sum, acc[r]);
            int32_t *dst = (int32_t *)y + (m0 + r) * ldy + n;
            if (cols == 16) {
                _mm512_storeu_si512((void *)dst, v);
            } else {
                int32_t tmp[16];
                _mm512_storeu_si512((void *)tmp, v);
                qg_copy_first_bytes(dst, tmp, cols * (int)sizeof(int32_t));
            }
        }
        return;
    }
    const int32_t lo = a->clamp_lo - a->y_zero_point, hi = a->clamp_hi - a->y_zero_point;
    const __m512i zy = _mm512_set1_epi32(a->y_zero_point);
    if (kind == QG_KIND_Q8_FLOAT) {
        // (float)acc · f, clamped in float, rounded to nearest even (VCVTPS2DQ
        // under the default MXCSR, as nearbyintf in the reference).
        const __m512 multiplier = _mm512_loadu_ps(a->float_multiplier + n);
        const __m512 lo_f = _mm512_set1_ps((float)lo), hi_f = _mm512_set1_ps((float)hi);
#pragma clang loop unroll(full)
        for (int r = 0; r < R; r++) {
            __m512i v = acc[r];
            if (row_zp) v = _mm512_sub_epi32(v, _mm512_mullo_epi32(_mm512_set1_epi32(row_zp[m0 + r]), row_sum));
            const __m512 f = _mm512_min_ps(_mm512_max_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(v), multiplier), lo_f), hi_f);
            const __m512i q = _mm512_add_epi32(_mm512_cvtps_epi32(f), zy);
            qg_avx512_store_bytes(y + (m0 + r) * ldy + n, _mm512_cvtepi32_epi8(q), cols);
        }
        return;
    }
    const int dbl = kind == QG_KIND_Q8_DOUBLE;
    const qg_avx512_fixed c = qg_avx512_fixed_constants(a, n, lo, hi, dbl);
#pragma clang loop unroll(full)
    for (int r = 0; r < R; r++) {
        __m512i v = acc[r];
        if (row_zp) v = _mm512_sub_epi32(v, _mm512_mullo_epi32(_mm512_set1_epi32(row_zp[m0 + r]), row_sum));
        const __m512i even = qg_avx512_requantize_half(&c, 0, v, dbl);
        const __m512i odd = qg_avx512_requantize_half(&c, 1, _mm512_srli_epi64(v, 32), dbl);
        __m512i q = _mm512_mask_blend_epi32(0xAAAA, even, _mm512_slli_epi64(odd, 32));
        // Now inside the output type's range: VPMOVDB's truncation to the low
        // byte is exact for int8 and uint8 alike.
        q = _mm512_add_epi32(q, zy);
        qg_avx512_store_bytes(y + (m0 + r) * ldy + n, _mm512_cvtepi32_epi8(q), cols);
    }
}

// MARK: - Per-call params and the rows route

/// What the VNNI tiles need per panel of 16 channels, made once per call
/// (qg_avx512_init_params) instead of once per tile: the accumulators'
/// starting value and the constants of the rows route's fixed-point modes.
typedef struct qg_avx512_panel {
    int32_t base[16];   // bias − (Z + fold)·row_sum: the accumulators start here
    int32_t m0[16];     // rows: M0 (VPMULDQ reads the low half of each 64-bit lane)
    int32_t m0_odd[16]; // rows: the odd channels' M0, in the low halves
    int32_t count[16];  // rows: single, c = −1 − shift, the shift after the high half; double, −shift
    int32_t round[16];  // rows, single: 2^(c − 1) + Z_Y·2^c, rounding with the output zero point folded in
} qg_avx512_panel;

/// The largest K at which rows off a line go out as they are where the CPU
/// takes a store across a line about as one. Zen 5, C harness, float output
/// 16 bytes into a line, one thread, fastest of three interleaved rounds,
/// GOP/s, split → as they are: 3136×64×256 785 → 820, 384×128×256 965 → 962
/// (the same; int32 there 960 → 980 with `qgemm bench`), 1024×256×512
/// 1,026 → 997, 4096×384×384 1,043 → 1,021, 4096×1536×384 1,066 → 1,064.
enum { QG_AVX512_CROSSING_MAX_K = 128 };

typedef struct qg_avx512_params {
    /// int8/uint8 output whose fixed-point rounding and constants allow the
    /// rows route (qg_avx512_q8_rows): single rounding when every channel
    /// passes qg_narrow_channel, double rounding when every channel passes
    /// qg_double_rows_channel (narrow_requantize.h); the clamp bounds inside
    /// the type's range in both cases. (Float rounding stays on the general
    /// route: the rows route gained it at most 3 % at K = 64 on Zen 4 and
    /// made this file's tiles take 60 % longer to compile.)
    int rows;
    /// rows: the clamp bounds are inside the type's range, not equal to it,
    /// so a byte min/max follows the saturating packs.
    int clamp;
    /// rows: the clamp bounds as signed bytes, and the byte XORed in last.
    /// The route is the same for int8 and uint8: uint8 output is computed as
    /// int8 with Z_Y − 128 (the signed packs then clamp to [0, 255] − 128),
    /// clamped at bounds − 128, and flipped back by an XOR with 0x80.
    int32_t clamp_lo, clamp_hi, flip;
    /// rows, double rounding: Z_Y in that int8 form, added with saturation
    /// between the packs (single rounding folds it into `round`).
    int32_t zero_point;
    /// int32 and float rows that start off a 64-byte line go out split at
    /// the lines (qg_avx512_wide_rows_by_lines), unless this CPU takes a
    /// store across a line about as one (qg_cpu_line_crossing_stores_cheap)
    /// and K is at most QG_AVX512_CROSSING_MAX_K, where the stores weigh most
    /// against the multiply-adds.
    int32_t by_lines;
    int32_t pad[9];
    qg_avx512_panel panel[];
} qg_avx512_params;
_Static_assert(sizeof(qg_avx512_params) == 64, "the panels start a line into the params");

static size_t qg_avx512_params_bytes(const qg_gemm_args *a) {
    return sizeof(qg_avx512_params) + (size_t)qg_packed_n(a->n) / 16 * sizeof(qg_avx512_panel);
}


/// Fills the params in one pass over the channels; `fold` is the path's
/// private bias fold, which the start values take back (128 when int8
/// activations enter an unsigned dot product as x + 128, else 0). It runs
/// once per call over every channel, which at M = 1 is a good share of the
/// call, so its loops have no branches and the compiler vectorizes them (a
/// loop with an early exit and a branching narrow test per channel took
/// about 13 cycles a channel on Zen 2). Lanes of padding
/// channels (n ≥ N, whose array entries need not be initialized) get safe
/// constants: no bias, M0 = 0, shift −2 (single) or 0 (double), Z_Y 0.
QG_ZMM_INLINE void qg_avx512_init_params(const qg_gemm_args *a, void *out, int32_t fold) {
    qg_avx512_params *p = out;
    const int64_t np = qg_packed_n(a->n), nn = a->n;
    const uint32_t z = (uint32_t)a->x_zero_point + (uint32_t)fold;
    // Rows: uint8 output is int8 output with Z_Y − 128, flipped back (qg_avx512_params).
    const int32_t flip = a->out_type == QG_OUT_UINT8 ? 128 : 0, zy = a->y_zero_point - flip;
    const int32_t type_lo = a->out_type == QG_OUT_INT8 ? -128 : 0, type_hi = a->out_type == QG_OUT_INT8 ? 127 : 255;
    // The saturating packs clamp to the type's range; bounds outside it (which
    // the reference wraps) or crossed go the general way. Double rounding
    // adds Z_Y with saturation to values the first pack saturated to int16:
    // exact while |Z_Y| ≤ 2^15 − 129 (qgemm.h keeps it within the type).
    const int bounds = qg_clamp_inside_type(a);
    const int single = bounds && a->rounding == QG_ROUND_SINGLE;
    const int dbl = bounds && a->rounding == QG_ROUND_DOUBLE && zy >= -32639 && zy <= 32639;
    const int32_t *const bias = a->bias, *const row_sum = a->row_sum;
    for (int64_t p0 = 0; p0 < np; p0 += 16) {
        qg_avx512_panel *q = &p->panel[p0 / 16];
        // Wrapping int32 arithmetic, as in the tiles (the bound keeps the true sum in range).
        // (Every array holds qg_packed_n(N) entries, so the loads need no test.)
        if (bias)
            for (int i = 0; i < 16; i++) {
                const int32_t b = bias[p0 + i];
                q->base[i] = (int32_t)((uint32_t)(p0 + i < nn ? b : 0) - z * (uint32_t)row_sum[p0 + i]);
            }
        else
            for (int i = 0; i < 16; i++) q->base[i] = (int32_t)(0u - z * (uint32_t)row_sum[p0 + i]);
    }
    int rows = 0;
    if (single || dbl) {
        const int32_t *const multiplier = a->multiplier, *const shifts = a->shift;
        uint32_t failed = 0;
        for (int64_t p0 = 0; p0 < np; p0 += 16) {
            qg_avx512_panel *q = &p->panel[p0 / 16];
            for (int i = 0; i < 16; i++) {
                const int real = p0 + i < nn, real_next = p0 + i + 1 < nn;
                const int32_t given = shifts[p0 + i], m0 = multiplier[p0 + i];
                const int32_t m0_next = i % 2 == 0 ? multiplier[p0 + i + 1] : 0;
                q->m0[i] = real ? m0 : 0;
                // The odd channels' M0 in the even lanes, for the odd lanes' VPMULDQ.
                q->m0_odd[i] = real_next ? m0_next : 0;
                if (single) {
                    const int32_t shift = real ? given : -2;
                    const int32_t c = -1 - shift; // the shift after the high half (narrow_requantize.h)
                    failed |= (uint32_t)(real & !qg_narrow_channel(shift, zy));
                    q->count[i] = c;
                    q->round[i] = (int32_t)((1u << ((c - 1) & 31)) + ((uint32_t)(real ? zy : 0) << (c & 31)));
                } else {
                    // Double rounding in 32-bit lanes when no channel shifts
                    // left (narrow_requantize.h); the divide's exponent is −shift.
                    const int32_t shift = real ? given : 0;
                    failed |= (uint32_t)(real & !qg_double_rows_channel(shift));
                    q->count[i] = (int32_t)(0u - (uint32_t)shift) & 31;
                    q->round[i] = 0;
                }
            }
        }
        rows = !failed;
    }
    p->rows = rows;
    p->clamp = a->clamp_lo > type_lo || a->clamp_hi < type_hi;
    p->clamp_lo = a->clamp_lo - flip;
    p->clamp_hi = a->clamp_hi - flip;
    p->flip = flip;
    p->zero_point = zy;
    p->by_lines = !(qg_cpu_line_crossing_stores_cheap() && a->kp <= QG_AVX512_CROSSING_MAX_K);
}

/// VPERMD indices that undo the lane interleaving of two saturating packs
/// (VPACKSSDW, then VPACKSSWB/VPACKUSWB) of four rows: 128-bit lane l then
/// holds bytes 4l … 4l+3 of rows 0, 1, 2, 3 in its four 32-bit words.
static const int32_t qg_avx512_row_order[16] = {0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15};

/// Double rounding of 16 lanes in 32-bit lanes, for calls whose every shift
/// is at most 0 (narrow_requantize.h has the rule): SRDHM(acc, M0) =
/// floor((acc·M0 + 2^30) / 2^31) fits in int32, so it is bits 31…62 of the
/// 64-bit sum — the low half of the even lanes' sums shifted right by 31, the
/// high half of the odd lanes' shifted left by 1 — and the divide by 2^count
/// with ties away from zero compares the remainder with half the divisor,
/// one more for a negative value. `mask` is 2^count − 1, `half_mask` mask / 2.
QG_ZMM_INLINE __m512i qg_avx512_requantize_double(__m512i v, __m512i m0, __m512i m0_odd, __m512i count, __m512i mask,
                                                   __m512i half_mask) {
    const __m512i half = _mm512_set1_epi64((int64_t)1 << 30);
    const __m512i even = _mm512_add_epi64(_mm512_mul_epi32(v, m0), half);
    const __m512i odd = _mm512_add_epi64(_mm512_mul_epi32(_mm512_srli_epi64(v, 32), m0_odd), half);
    const __m512i h = _mm512_mask_blend_epi32(0xAAAA, _mm512_srli_epi64(even, 31), _mm512_slli_epi64(odd, 1));
    const __m512i threshold = _mm512_sub_epi32(half_mask, _mm512_srai_epi32(h, 31));
    const __mmask16 up = _mm512_cmpgt_epi32_mask(_mm512_and_si512(h, mask), threshold);
    const __m512i q = _mm512_srav_epi32(h, count);
    return _mm512_mask_add_epi32(q, up, q, _mm512_set1_epi32(1));
}

/// The rows route (params->rows) of int8/uint8 output of `kind` (single or
/// double rounding): R rows of one panel, four at a time. Per row, the
/// requantized value in 32-bit lanes:
///   - single rounding: the high half of acc·M0, one rounding add that also
///     adds Z_Y, one shift (qg_avx512_requantize_high);
///   - double rounding: qg_avx512_requantize_double;
/// then two signed saturating packs with, for double rounding, the
/// saturating add of Z_Y between them — together an exact clamp to the int8
/// range of the value plus Z_Y, since a value the first pack saturates stays
/// past the int8 range after the add — one VPERMD that gathers each row's
/// bytes, a byte min/max if the clamp is narrower, and the XOR that turns the
/// int8 form of uint8 output back (params->flip). Single rounding takes about
/// 8 vector operations per 16 outputs, every constant a memory operand.
QG_ZMM_INLINE void qg_avx512_q8_rows(const qg_gemm_args *a, const qg_avx512_params *params, const qg_avx512_panel *c,
                                      int64_t m0, const int R, int64_t n, int cols, const __m512i *acc,
                                      const qg_output_kind kind) {
    // Locals, as in qg_avx512_epilogue_rows: stores to y could alias *a and
    // *params, so the compiler would reload these once per group of rows.
    uint8_t *const y = (uint8_t *)a->y;
    const int64_t ldy = a->ldy;
    const int32_t *const row_zp = a->row_zero_point;
    const __m512i row_sum = row_zp ? _mm512_loadu_si512((const void *)(a->row_sum + n)) : _mm512_setzero_si512();
    const int clamp = params->clamp;
    const __m512i lo = _mm512_set1_epi8((char)params->clamp_lo), hi = _mm512_set1_epi8((char)params->clamp_hi);
    const __m512i flip = _mm512_set1_epi8((char)params->flip), zy = _mm512_set1_epi16((short)params->zero_point);
    const __m512i row_order = _mm512_loadu_si512((const void *)qg_avx512_row_order);
    const __m512i m0v = _mm512_loadu_si512((const void *)c->m0), m0_odd = _mm512_loadu_si512((const void *)c->m0_odd);
    const __m512i count = _mm512_loadu_si512((const void *)c->count);
    __m512i round = _mm512_setzero_si512(), high_halves = round, mask = round, half_mask = round;
    if (kind == QG_KIND_Q8_SINGLE) {
        round = _mm512_loadu_si512((const void *)c->round);
        high_halves = _mm512_loadu_si512((const void *)qg_avx512_high_halves);
    } else {
        mask = _mm512_sub_epi32(_mm512_sllv_epi32(_mm512_set1_epi32(1), count), _mm512_set1_epi32(1));
        half_mask = _mm512_srli_epi32(mask, 1);
    }
#pragma clang loop unroll(full)
    for (int r0 = 0; r0 < R; r0 += 4) {
        // A short last group repeats its first row and stores only its own.
        __m512i q[4];
#pragma clang loop unroll(full)
        for (int i = 0; i < 4; i++) {
            const int r = r0 + i < R ? r0 + i : r0;
            __m512i v = acc[r];
            if (row_zp) v = _mm512_sub_epi32(v, _mm512_mullo_epi32(_mm512_set1_epi32(row_zp[m0 + r]), row_sum));
            q[i] = kind == QG_KIND_Q8_SINGLE ? qg_avx512_requantize_high(v, m0v, m0_odd, high_halves, round, count)
                                             : qg_avx512_requantize_double(v, m0v, m0_odd, count, mask, half_mask);
        }
        __m512i w01 = _mm512_packs_epi32(q[0], q[1]), w23 = _mm512_packs_epi32(q[2], q[3]);
        if (kind != QG_KIND_Q8_SINGLE) {
            w01 = _mm512_adds_epi16(w01, zy);
            w23 = _mm512_adds_epi16(w23, zy);
        }
        __m512i b = _mm512_permutexvar_epi32(row_order, _mm512_packs_epi16(w01, w23));
        if (clamp) b = _mm512_min_epi8(_mm512_max_epi8(b, lo), hi);
        b = _mm512_xor_si512(b, flip);
        uint8_t *dst = y + (m0 + r0) * ldy + n;
        qg_avx512_store_bytes(dst, _mm512_castsi512_si128(b), cols);
        if (r0 + 1 < R) qg_avx512_store_bytes(dst + ldy, _mm512_extracti32x4_epi32(b, 1), cols);
        if (r0 + 2 < R) qg_avx512_store_bytes(dst + 2 * ldy, _mm512_extracti32x4_epi32(b, 2), cols);
        if (r0 + 3 < R) qg_avx512_store_bytes(dst + 3 * ldy, _mm512_extracti32x4_epi32(b, 3), cols);
    }
}

/// Whether a call of this kind takes the rows route (a compile-time kind and
/// the params' verdict on the call's constants).
QG_ZMM_INLINE int qg_avx512_takes_rows(const qg_avx512_params *params, const qg_output_kind kind) {
    return (kind == QG_KIND_Q8_SINGLE || kind == QG_KIND_Q8_DOUBLE) && params->rows;
}

/// Rows of 4-byte outputs (int32 or float) that start `shift` lanes into a
/// 64-byte line, all alike (the rows are whole lines apart). A tile's two
/// panels of such a row, 32 lanes, would be two stores that each cross a
/// line, and a store across lines costs about two (3136×64×64 int32 at 16
/// bytes off a line: 496 GOP/s, aligned 584, Emerald Rapids, C harness). So
/// the row goes out as three stores within lines: the first panel's first
/// 16 − shift lanes (masked, at the end of its first line), the line between
/// (both panels, one VPERMT2D), and the second panel's last `shift` lanes
/// (masked). The indices are made once per tile.
typedef struct qg_avx512_line_stores {
    __m512i rotate;  // lane i takes lane (i − shift) mod 16
    __m512i middle;  // the same, from the second panel where i ≥ shift
    __mmask16 head, tail;
} qg_avx512_line_stores;

/// Fills `s` and returns 1 when rows `row_bytes` apart from `row0` (4-byte
/// outputs) all start off a line by the same whole lanes; else 0 (the rows
/// take whole-panel stores: aligned ones do not cross a line, and rows at
/// different offsets would need their indices made per row).
QG_ZMM_INLINE int qg_avx512_line_stores_for(const void *row0, int64_t row_bytes, qg_avx512_line_stores *s) {
    static const int32_t iota[16] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
    const uintptr_t at = (uintptr_t)row0;
    if ((at & 3) != 0 || (at & 63) == 0 || (row_bytes & 63) != 0) return 0;
    const int shift = (int)((at & 63) >> 2);
    s->rotate = _mm512_and_si512(_mm512_sub_epi32(_mm512_loadu_si512((const void *)iota), _mm512_set1_epi32(shift)),
                                 _mm512_set1_epi32(15));
    s->tail = (__mmask16)((1u << shift) - 1);
    s->head = (__mmask16)~s->tail;
    s->middle = _mm512_mask_add_epi32(s->rotate, s->head, s->rotate, _mm512_set1_epi32(16));
    return 1;
}

/// Stores one row's 32 lanes (v0, then v1) at `row`, `s` made for it.
QG_ZMM_INLINE void qg_avx512_store_by_lines(void *row, __m512i v0, __m512i v1, const qg_avx512_line_stores *s) {
    int32_t *const line = (int32_t *)((uintptr_t)row & ~(uintptr_t)63);
    _mm512_mask_storeu_epi32(line, s->head, _mm512_permutexvar_epi32(s->rotate, v0));
    _mm512_store_si512((void *)(line + 16), _mm512_permutex2var_epi32(v0, s->middle, v1));
    _mm512_mask_storeu_epi32(line + 32, s->tail, _mm512_permutexvar_epi32(s->rotate, v1));
}

/// Finishes R rows of two whole panels (channels n … n + 31) of int32 or
/// float output, as qg_avx512_epilogue_rows does panel by panel, and stores
/// each row by lines (`s`, made for row m0). acc[r][p]: row r, panel p.
QG_ZMM_INLINE void qg_avx512_wide_rows_by_lines(const qg_gemm_args *a, int64_t m0, const int R, int64_t n,
                                                __m512i (*acc)[2], const qg_output_kind kind,
                                                const qg_avx512_line_stores *s) {
    uint8_t *const y = (uint8_t *)a->y;
    const int64_t ldy = a->ldy;
    const int32_t *const row_zp = a->row_zero_point;
    const __m512i row_sum0 = _mm512_loadu_si512((const void *)(a->row_sum + n));
    const __m512i row_sum1 = _mm512_loadu_si512((const void *)(a->row_sum + n + 16));
    if (kind == QG_KIND_FLOAT) {
        const qg_avx512_float_panel p0 = qg_avx512_float_panel_at(a, n), p1 = qg_avx512_float_panel_at(a, n + 16);
        const float *const row_scale = a->row_scale, *const out_bias = a->out_bias;
#pragma clang loop unroll(full)
        for (int r = 0; r < R; r++) {
            const __m512 f0 = qg_avx512_float_row(&p0, row_scale, out_bias, row_zp, m0 + r, row_sum0, acc[r][0]);
            const __m512 f1 = qg_avx512_float_row(&p1, row_scale, out_bias, row_zp, m0 + r, row_sum1, acc[r][1]);
            qg_avx512_store_by_lines((float *)y + (m0 + r) * ldy + n, _mm512_castps_si512(f0), _mm512_castps_si512(f1), s);
        }
    } else {
#pragma clang loop unroll(full)
        for (int r = 0; r < R; r++)
            qg_avx512_store_by_lines((int32_t *)y + (m0 + r) * ldy + n,
                                     qg_avx512_int32_row(row_zp, m0 + r, row_sum0, acc[r][0]),
                                     qg_avx512_int32_row(row_zp, m0 + r, row_sum1, acc[r][1]), s);
    }
}

#endif
