// The 256-bit x86 epilogue, shared by the avx2 and avxvnni paths (as
// kernels/neon/ serves the arm64 paths): the per-call params that start the
// accumulators at the bias and the call's zero-point term, and the finish of
// 8 channels of one row in registers — the row's zero-point term, then the
// output of one kind (KERNELS.md, "The epilogue"). Plain AVX2, so it inlines
// into any tile whose target includes AVX2. Included by kernel files only;
// everything here is static inline.
#ifndef QG_EPILOGUE_YMM_H
#define QG_EPILOGUE_YMM_H

#include "kernel.h"
#include "narrow_requantize.h"
#include "partial_store.h"

#include <immintrin.h>
#include <string.h>

#define QG_YMM_INLINE static inline QG_SPECIALIZE __attribute__((target("avx2")))

/// The most rows a 256-bit tile has (the avxvnni main tile's 6; avx2's has 4).
#define QG_YMM_MAX_ROWS 6

// MARK: - Per-call params

/// What a 256-bit tile reads per call, made once by qg_ymm_init_params:
/// - each channel's starting value, bias − (Z_X + fold)·row_sum, where `fold`
///   is the path's private bias fold (128 when int8 activations enter an
///   unsigned dot product as x + 128);
/// - for the rows route of int8/uint8 output (qg_ymm_q8_rows; `rows` says
///   whether the call takes it), what its rounding mode needs:
///   - single rounding, when every channel is within narrow_requantize.h's
///     bounds: each channel's M0, the odd lanes' M0 moved to the even lanes,
///     the shift after the high half (`count`, c = −1 − shift) and the
///     rounding constant with the output zero point folded in;
///   - double rounding, when every shift is at most 0: M0 as above and the
///     divide's exponent (`count`, −shift);
///   - float rounding: the float multipliers (`fmult`);
///   and the row sums (for per-row zero points, only then). uint8 output is computed as
///   int8 output with Z_Y − 128 and bounds − 128 and moved back by an XOR
///   with 0x80 (`flip`), as the 512-bit route does; `clamp` says whether the
///   bounds are narrower than the int8 range.
/// Every array is in channel order, as the tiles' accumulators are (lane i
/// of a vector is channel n + i), and padded to whole panels, so a tile reads
/// whole vectors.
typedef struct qg_ymm_params {
    int32_t rows, clamp, clamp_lo, clamp_hi, flip, zero_point;
    int32_t by_shuffles; // the avx2 tiles' way of widening weights (qg_cpu_widen_bytes_by_shuffles)
    int32_t widen_ahead; // whether the avx2 path widens each step's weights once per block
    int32_t pad[8];
    int32_t data[]; // base, m0, m0_odd, count, round, row_sum, fmult: qg_packed_n(n) each
} qg_ymm_params;

enum {
    QG_YMM_BASE,
    QG_YMM_M0,
    QG_YMM_M0_ODD,
    QG_YMM_COUNT,
    QG_YMM_ROUND,
    QG_YMM_ROW_SUM,
    QG_YMM_FMULT,
    QG_YMM_ARRAYS
};

/// One of the params' per-channel arrays.
static inline const int32_t *qg_ymm_array(const qg_ymm_params *p, const qg_gemm_args *a, int which) {
    return p->data + which * qg_packed_n(a->n);
}

static inline size_t qg_ymm_params_bytes(const qg_gemm_args *a) {
    return sizeof(qg_ymm_params) + (size_t)(QG_YMM_ARRAYS * qg_packed_n(a->n)) * sizeof(int32_t);
}

/// Fills the params; `fold` as above. Wrapping int32 arithmetic for the start
/// values, as in the tiles (the PackedWeights bound keeps the true sums in range).
/// It runs once per call over every channel, which at M = 1 is a good share of
/// the call, so it works 8 lanes at a time (1×384×1536 spent 26 % of its time
/// here with scalar loops). Lanes of padding channels (n ≥ N, whose array
/// entries need not be initialized) get safe constants: no bias, M0 = 0,
/// shift −2, Z_Y 0, multiplier 0, and they never keep a call off the route.
QG_YMM_INLINE void qg_ymm_init_params(const qg_gemm_args *a, void *out, int32_t fold) {
    qg_ymm_params *p = out;
    const int64_t np = qg_packed_n(a->n);
    int32_t *base = p->data, *m0 = base + np, *m0_odd = m0 + np, *count = m0_odd + np, *round = count + np,
            *row_sum = round + np, *fmult = row_sum + np;
    const int32_t flip = a->out_type == QG_OUT_UINT8 ? 128 : 0, zy = a->y_zero_point - flip;
    // |Z_Y| ≤ 2^29 keeps 1 + 2·|Z_Y| below in int32 (real zero points are bytes).
    const int64_t z_abs = zy < 0 ? -(int64_t)zy : zy;
    // The saturating packs clamp to the type's range, so bounds outside it or
    // crossed (which qgemm.h rules out) go the general way.
    const int bounds = qg_clamp_inside_type(a);
    const int single = bounds && a->rounding == QG_ROUND_SINGLE && z_abs <= (1 << 29);
    const int dbl = bounds && a->rounding == QG_ROUND_DOUBLE, flt = bounds && a->rounding == QG_ROUND_FLOAT;
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i z = _mm256_set1_epi32((int32_t)((uint32_t)a->x_zero_point + (uint32_t)fold));
    const __m256i one = _mm256_set1_epi32(1), zy_v = _mm256_set1_epi32(zy);
    const __m256i zy_limit = _mm256_set1_epi32((int32_t)(1 + 2 * z_abs)); // narrow: 1 + 2|Z_Y| ≤ 2^(32 + shift)
    __m256i all_fit = _mm256_set1_epi32(-1);
    for (int64_t g = 0; g < np; g += 8) {
        // Lane i holds channel g + i; `real` marks the channels < N.
        const __m256i real = _mm256_cmpgt_epi32(_mm256_set1_epi32((int32_t)(a->n - g < 8 ? a->n - g : 8)), lane);
        const __m256i padding = _mm256_xor_si256(real, _mm256_set1_epi32(-1));
// Channels g … g + 7 of a per-channel array.
#define QG_YMM_CHANNELS(array) _mm256_loadu_si256((const __m256i *)((array) + g))
        const __m256i sums = QG_YMM_CHANNELS(a->row_sum);
        const __m256i bias = a->bias ? _mm256_and_si256(QG_YMM_CHANNELS(a->bias), real) : _mm256_setzero_si256();
        _mm256_storeu_si256((__m256i *)(base + g), _mm256_sub_epi32(bias, _mm256_mullo_epi32(z, sums)));
        if (a->row_zero_point) _mm256_storeu_si256((__m256i *)(row_sum + g), sums);
        if (flt) {
            const __m256i f = _mm256_and_si256(QG_YMM_CHANNELS((const int32_t *)a->float_multiplier), real);
            _mm256_storeu_si256((__m256i *)(fmult + g), f);
        }
        if (!single && !dbl) continue;
        const __m256i shift = _mm256_blendv_epi8(_mm256_set1_epi32(-2), QG_YMM_CHANNELS(a->shift), real);
        const __m256i mult = _mm256_and_si256(QG_YMM_CHANNELS(a->multiplier), real);
#undef QG_YMM_CHANNELS
        _mm256_storeu_si256((__m256i *)(m0 + g), mult);
        // VPMULDQ reads the even lanes, so the odd lanes' M0 moves there with
        // a 64-bit shift.
        _mm256_storeu_si256((__m256i *)(m0_odd + g), _mm256_srli_epi64(mult, 32));
        if (dbl) {
            // Double rounding in 32-bit lanes when every channel's shift is in
            // [−31, 0] (qg_double_rows_channel); the divide's exponent is −shift.
            const __m256i fits = _mm256_and_si256(_mm256_cmpgt_epi32(one, shift),
                                                  _mm256_cmpgt_epi32(shift, _mm256_set1_epi32(-32)));
            all_fit = _mm256_and_si256(all_fit, _mm256_or_si256(fits, padding));
            _mm256_storeu_si256((__m256i *)(count + g), _mm256_sub_epi32(_mm256_setzero_si256(), shift));
            continue;
        }
        const __m256i c = _mm256_sub_epi32(_mm256_set1_epi32(-1), shift); // c = −1 − shift
        // Narrow when shift ∈ [−31, −2] and 2^(c−1)·(1 + 2|Z_Y|) ≤ 2^30, that is
        // 1 + 2|Z_Y| ≤ 2^(32 + shift) (narrow_requantize.h, qg_narrow_channel).
        const __m256i in_range = _mm256_and_si256(_mm256_cmpgt_epi32(shift, _mm256_set1_epi32(-32)),
                                                  _mm256_cmpgt_epi32(_mm256_set1_epi32(-1), shift));
        const __m256i room = _mm256_sllv_epi32(one, _mm256_add_epi32(shift, _mm256_set1_epi32(32)));
        const __m256i narrow = _mm256_andnot_si256(_mm256_cmpgt_epi32(zy_limit, room), in_range);
        all_fit = _mm256_and_si256(all_fit, _mm256_or_si256(narrow, padding));
        const __m256i zy_lane = _mm256_and_si256(zy_v, real);
        _mm256_storeu_si256((__m256i *)(count + g), c);
        _mm256_storeu_si256((__m256i *)(round + g),
                            _mm256_add_epi32(_mm256_sllv_epi32(one, _mm256_sub_epi32(c, one)), _mm256_sllv_epi32(zy_lane, c)));
    }
    p->rows = flt || ((single || dbl) && _mm256_movemask_epi8(all_fit) == -1);
    p->clamp = a->clamp_lo > -128 + flip || a->clamp_hi < 127 + flip;
    p->clamp_lo = a->clamp_lo - flip;
    p->clamp_hi = a->clamp_hi - flip;
    p->flip = flip;
    // Z_Y as double and float rounding add it, after the first saturating
    // pack (single rounding folds it into its rounding constant instead).
    p->zero_point = zy;
    p->by_shuffles = 0;
    p->widen_ahead = 0;
}

// MARK: - Fixed-point requantization (int64 lanes)

/// Arithmetic right shift of int64 lanes by per-lane counts 0..63 (AVX2 has
/// only the logical one): bias to unsigned, shift, remove the shifted bias.
QG_YMM_INLINE __m256i qg_ymm_sra64(__m256i x, __m256i count) {
    const __m256i sign = _mm256_set1_epi64x(INT64_MIN);
    return _mm256_sub_epi64(_mm256_srlv_epi64(_mm256_xor_si256(x, sign), count), _mm256_srlv_epi64(sign, count));
}

QG_YMM_INLINE __m256i qg_ymm_lo32(__m256i v) { return _mm256_and_si256(v, _mm256_set1_epi64x(0xFFFFFFFF)); }
QG_YMM_INLINE __m256i qg_ymm_hi32(__m256i v) { return _mm256_srli_epi64(v, 32); }

/// floor((acc·M0 + 2^(t−1)) / 2^t) on four lanes (acc, M0 in the low 32 bits; t in 1..62).
QG_YMM_INLINE __m256i qg_ymm_round_shift(__m256i acc, __m256i m0, __m256i t) {
    const __m256i one = _mm256_set1_epi64x(1);
    __m256i p = _mm256_mul_epi32(acc, m0);
    p = _mm256_add_epi64(p, _mm256_sllv_epi64(one, _mm256_sub_epi64(t, one)));
    return qg_ymm_sra64(p, t);
}

/// Rounding divide by 2^r (r in 0..31), ties away from zero (gemmlowp RoundingDivideByPOT).
QG_YMM_INLINE __m256i qg_ymm_round_div_pot(__m256i h, __m256i r) {
    const __m256i one = _mm256_set1_epi64x(1);
    const __m256i mask = _mm256_sub_epi64(_mm256_sllv_epi64(one, r), one);
    const __m256i remainder = _mm256_and_si256(h, mask);
    const __m256i threshold = _mm256_sub_epi64(_mm256_srli_epi64(mask, 1), _mm256_cmpgt_epi64(_mm256_setzero_si256(), h));
    return _mm256_sub_epi64(qg_ymm_sra64(h, r), _mm256_cmpgt_epi64(remainder, threshold));
}

QG_YMM_INLINE __m256i qg_ymm_clamp64(__m256i v, __m256i lo, __m256i hi) {
    v = _mm256_blendv_epi8(v, lo, _mm256_cmpgt_epi64(lo, v));
    return _mm256_blendv_epi8(v, hi, _mm256_cmpgt_epi64(v, hi));
}

/// Fixed-point requantization of 8 accumulators (int64 products; KERNELS.md,
/// "The epilogue"), single or double rounding, clamped to [lo, hi] (the output
/// range minus Z_Y).
QG_YMM_INLINE __m256i qg_ymm_requantize_fixed(const qg_gemm_args *a, int64_t n, __m256i acc, int32_t lo, int32_t hi,
                                              const int dbl) {
    const __m256i m0 = _mm256_loadu_si256((const __m256i *)(a->multiplier + n));
    const __m256i shift = _mm256_loadu_si256((const __m256i *)(a->shift + n));
    const __m256i lo64 = _mm256_set1_epi64x(lo), hi64 = _mm256_set1_epi64x(hi);
    const __m256i k31 = _mm256_set1_epi32(31), zero = _mm256_setzero_si256();
    __m256i even, odd;
    if (!dbl) {
        const __m256i t = _mm256_sub_epi32(k31, shift); // 1 ... 62
        even = qg_ymm_round_shift(acc, m0, qg_ymm_lo32(t));
        odd = qg_ymm_round_shift(qg_ymm_hi32(acc), qg_ymm_hi32(m0), qg_ymm_hi32(t));
    } else {
        const __m256i left = _mm256_max_epi32(shift, zero);
        const __m256i right = _mm256_max_epi32(_mm256_sub_epi32(zero, shift), zero);
        const __m256i t = _mm256_sub_epi32(k31, left); // SRDHM(acc·2^left, M0) = round_shift(acc·M0, 31 − left)
        even = qg_ymm_round_div_pot(qg_ymm_round_shift(acc, m0, qg_ymm_lo32(t)), qg_ymm_lo32(right));
        odd = qg_ymm_round_div_pot(qg_ymm_round_shift(qg_ymm_hi32(acc), qg_ymm_hi32(m0), qg_ymm_hi32(t)),
                                   qg_ymm_hi32(right));
    }
    even = qg_ymm_clamp64(even, lo64, hi64);
    odd = qg_ymm_clamp64(odd, lo64, hi64);
    return _mm256_blend_epi32(even, _mm256_slli_epi64(odd, 32), 0xAA);
}

// MARK: - Stores

/// Stores the first `bytes` (1..32) bytes of v.
QG_YMM_INLINE void qg_ymm_store_bytes(void *dst, __m256i v, int bytes) {
    if (bytes == 32) {
        _mm256_storeu_si256((__m256i *)dst, v);
    } else {
        uint8_t tmp[32];
        _mm256_storeu_si256((__m256i *)tmp, v);
        qg_copy_first_bytes(dst, tmp, bytes);
    }
}

/// Stores the first `cols` (1..8) of 8 int32 or float lanes.
QG_YMM_INLINE void qg_ymm_store_words(void *dst, __m256i v, int cols) { qg_ymm_store_bytes(dst, v, cols * 4); }

/// Stores the low bytes of 8 int32 lanes whose values lie in the output
/// type's range (int8 and uint8 alike: the masked values 0..255 pass both
/// unsigned packs unchanged); the first `cols` (1..8) of them.
QG_YMM_INLINE void qg_ymm_store_low_bytes(void *dst, __m256i q, int cols) {
    q = _mm256_and_si256(q, _mm256_set1_epi32(0xFF));
    const __m128i w16 = _mm_packus_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
    const __m128i b8 = _mm_packus_epi16(w16, w16);
    if (cols == 8) {
        _mm_storel_epi64((__m128i *)dst, b8);
    } else {
        uint8_t tmp[16];
        _mm_storeu_si128((__m128i *)tmp, b8);
        qg_copy_first_bytes(dst, tmp, cols);
    }
}

// MARK: - The epilogue

/// VPERMD indices that undo the lane interleaving of two saturating packs
/// (VPACKSSDW, then VPACKSSWB) of four vectors: each 64-bit word then holds
/// one vector's 8 bytes, in order.
static const int32_t qg_ymm_pack_order[8] = {0, 4, 1, 5, 2, 6, 3, 7};

/// The rows route's per-channel constants of channels n … n + 7 (those its
/// rounding mode uses).
typedef struct qg_ymm_q8_channels {
    __m256i m0, m0_odd, count, round, row_sum;
    __m256 fmult;
} qg_ymm_q8_channels;

QG_YMM_INLINE qg_ymm_q8_channels qg_ymm_q8_load(const qg_gemm_args *a, const qg_ymm_params *p, int64_t n,
                                                const qg_output_kind kind) {
#define QG_YMM_AT(which) _mm256_loadu_si256((const __m256i *)(qg_ymm_array(p, a, which) + n))
    qg_ymm_q8_channels c;
    const __m256i zero = _mm256_setzero_si256();
    c.m0 = kind == QG_KIND_Q8_FLOAT ? zero : QG_YMM_AT(QG_YMM_M0);
    c.m0_odd = kind == QG_KIND_Q8_FLOAT ? zero : QG_YMM_AT(QG_YMM_M0_ODD);
    c.count = kind == QG_KIND_Q8_FLOAT ? zero : QG_YMM_AT(QG_YMM_COUNT);
    c.round = kind == QG_KIND_Q8_SINGLE ? QG_YMM_AT(QG_YMM_ROUND) : zero;
    c.row_sum = a->row_zero_point ? QG_YMM_AT(QG_YMM_ROW_SUM) : zero;
    c.fmult = kind == QG_KIND_Q8_FLOAT ? _mm256_castsi256_ps(QG_YMM_AT(QG_YMM_FMULT)) : _mm256_setzero_ps();
#undef QG_YMM_AT
    return c;
}

/// Requantizes 8 sums of row m by the call's rounding mode, in 32-bit lanes,
/// after the row's zero-point term. Any value past the int8 range after the
/// saturating packs and the add of Z_Y that follow is past it in truth too;
/// the clamp comes after them.
/// - single (narrow_requantize.h): the high halves of acc·M0 (two VPMULDQ, a
///   shift and a blend), one add that also adds Z_Y, one shift;
/// - double, every shift ≤ 0 (so no left shift): SRDHM(acc, M0) =
///   floor((acc·M0 + 2^30) / 2^31), which fits in int32 (|acc·M0| < 2^62), as
///   the low halves of the 64-bit sums shifted right by 31; then the divide
///   by 2^−shift with ties away from zero (gemmlowp's RoundingDivideByPOT) in
///   32-bit lanes: the remainder against half the divisor, one more for a
///   negative value;
/// - float: (float)acc·f rounded to nearest even by VCVTPS2DQ, after a min
///   with the largest float below 2^31 (past it VCVTPS2DQ gives INT32_MIN,
///   which the packs would take for a large negative value; below −2^31 that
///   is the right answer). Rounding and clamping to integer bounds commute,
///   so clamping after rounding gives the reference's clamp-then-round.
QG_YMM_INLINE __m256i qg_ymm_q8_requantize(const qg_gemm_args *a, int64_t m, __m256i acc, const qg_ymm_q8_channels *c,
                                           const qg_output_kind kind) {
#pragma clang fp contract(off) // the reference's float operations, unfused
    if (a->row_zero_point) acc = _mm256_sub_epi32(acc, _mm256_mullo_epi32(_mm256_set1_epi32(a->row_zero_point[m]), c->row_sum));
    if (kind == QG_KIND_Q8_FLOAT) {
        const __m256 v = _mm256_min_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(acc), c->fmult), _mm256_set1_ps(2147483520.0f));
        return _mm256_cvtps_epi32(v);
    }
    const __m256i even = _mm256_mul_epi32(acc, c->m0), odd = _mm256_mul_epi32(_mm256_srli_epi64(acc, 32), c->m0_odd);
    if (kind == QG_KIND_Q8_SINGLE) {
        const __m256i high = _mm256_blend_epi32(_mm256_srli_epi64(even, 32), odd, 0xAA);
        return _mm256_srav_epi32(_mm256_add_epi32(high, c->round), c->count);
    }
    const __m256i half = _mm256_set1_epi64x((int64_t)1 << 30);
    const __m256i h_even = _mm256_srli_epi64(_mm256_add_epi64(even, half), 31);
    const __m256i h_odd = _mm256_slli_epi64(_mm256_srli_epi64(_mm256_add_epi64(odd, half), 31), 32);
    const __m256i h = _mm256_blend_epi32(h_even, h_odd, 0xAA), zero = _mm256_setzero_si256();
    const __m256i mask = _mm256_sub_epi32(_mm256_sllv_epi32(_mm256_set1_epi32(1), c->count), _mm256_set1_epi32(1));
    const __m256i threshold = _mm256_sub_epi32(_mm256_srli_epi32(mask, 1), _mm256_cmpgt_epi32(zero, h));
    return _mm256_sub_epi32(_mm256_srav_epi32(h, c->count), _mm256_cmpgt_epi32(_mm256_and_si256(h, mask), threshold));
}

/// Four requantized vectors to bytes: a signed saturating pack to int16, the
/// saturating add of Z_Y (rounding modes that have not added it), a signed
/// saturating pack to int8 — together an exact clamp to the int8 range of the
/// value plus Z_Y, since a value the first pack saturates stays past the int8
/// range after the add — one permute that leaves vector i's 8 bytes in
/// channel order in 64-bit word i, a byte min/max if the call's clamp is
/// narrower, and the XOR that turns the int8 form of uint8 output back.
QG_YMM_INLINE __m256i qg_ymm_q8_pack4(const qg_ymm_params *p, const __m256i q[4], const qg_output_kind kind) {
    __m256i w01 = _mm256_packs_epi32(q[0], q[1]), w23 = _mm256_packs_epi32(q[2], q[3]);
    if (kind != QG_KIND_Q8_SINGLE) {
        const __m256i zy = _mm256_set1_epi16((short)p->zero_point);
        w01 = _mm256_adds_epi16(w01, zy);
        w23 = _mm256_adds_epi16(w23, zy);
    }
    __m256i b = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(w01, w23),
                                            _mm256_loadu_si256((const __m256i *)qg_ymm_pack_order));
    if (p->clamp) b = _mm256_min_epi8(_mm256_max_epi8(b, _mm256_set1_epi8((char)p->clamp_lo)), _mm256_set1_epi8((char)p->clamp_hi));
    return _mm256_xor_si256(b, _mm256_set1_epi8((char)p->flip));
}

/// The rows route of int8/uint8 output (params->rows) for channels n … n + 7
/// of R rows from m0, acc[r] holding row r's sums (bias and the call's
/// zero-point term in) in channel order, four rows at a time. Stores
/// the first `cols` (1..8) of each row.
QG_YMM_INLINE void qg_ymm_q8_rows(const qg_gemm_args *a, const qg_ymm_params *p, int64_t m0, const int R, int64_t n,
                                  int cols, const __m256i *acc, const qg_output_kind kind) {
    // Locals: stores to y could alias *a and *p, so the compiler would reload
    // these once per group of rows.
    uint8_t *const y = (uint8_t *)a->y;
    const int64_t ldy = a->ldy;
    const qg_ymm_q8_channels c = qg_ymm_q8_load(a, p, n, kind);
#pragma clang loop unroll(full)
    for (int r0 = 0; r0 < R; r0 += 4) {
        // A short last group packs its first row again in the missing rows'
        // places and stores only its own.
        __m256i q[4];
#pragma clang loop unroll(full)
        for (int i = 0; i < 4; i++)
            q[i] = r0 + i < R ? qg_ymm_q8_requantize(a, m0 + r0 + i, acc[r0 + i], &c, kind) : q[0];
        const __m256i b = qg_ymm_q8_pack4(p, q, kind);
        uint8_t *dst = y + (m0 + r0) * ldy + n;
        const __m128i b01 = _mm256_castsi256_si128(b), b23 = _mm256_extracti128_si256(b, 1);
        if (cols == 8) {
            _mm_storel_epi64((__m128i *)dst, b01);
            if (r0 + 1 < R) _mm_storeh_pd((double *)(dst + ldy), _mm_castsi128_pd(b01));
            if (r0 + 2 < R) _mm_storel_epi64((__m128i *)(dst + 2 * ldy), b23);
            if (r0 + 3 < R) _mm_storeh_pd((double *)(dst + 3 * ldy), _mm_castsi128_pd(b23));
        } else {
            uint8_t rows[32];
            _mm256_storeu_si256((__m256i *)rows, b);
#pragma clang loop unroll(full)
            for (int i = 0; i < 4; i++)
                if (r0 + i < R) qg_copy_first_bytes(dst + i * ldy, rows + 8 * i, cols);
        }
    }
}

/// The rows route for G (1..4) groups of 8 channels of one row m, from n:
/// acc[g] holds channels n + 8g …, in channel order. The groups pack
/// together, so the row's first `cols` (1..8·G) bytes go out in one store.
QG_YMM_INLINE void qg_ymm_q8_row(const qg_gemm_args *a, const qg_ymm_params *p, int64_t m, int64_t n, const int G,
                                 int cols, const __m256i *acc, const qg_output_kind kind) {
    uint8_t *const dst = (uint8_t *)a->y + m * a->ldy + n;
    __m256i q[4];
#pragma clang loop unroll(full)
    for (int g = 0; g < 4; g++) {
        if (g >= G) {
            q[g] = q[0];
            continue;
        }
        const qg_ymm_q8_channels c = qg_ymm_q8_load(a, p, n + 8 * g, kind);
        q[g] = qg_ymm_q8_requantize(a, m, acc[g], &c, kind);
    }
    qg_ymm_store_bytes(dst, qg_ymm_q8_pack4(p, q, kind), cols);
}

/// Whether a call of this kind takes the rows route (a compile-time kind and
/// the params' verdict on the call's constants).
QG_YMM_INLINE int qg_ymm_q8_takes_rows(const qg_ymm_params *p, const qg_output_kind kind) {
    return (kind == QG_KIND_Q8_SINGLE || kind == QG_KIND_Q8_DOUBLE || kind == QG_KIND_Q8_FLOAT) && p->rows;
}

/// Finishes 8 channel sums of row m in channel order (channels n …, bias and
/// the call's zero-point term already in: the params' start values) into
/// int8 or uint8 output of `kind` by the general route (int64 products), and
/// stores the first `cols` (1..8). Where the call's params allow it, the
/// tiles take the rows route instead (qg_ymm_q8_rows, or for each row of
/// the avx2 few-rows tile over two panels qg_ymm_q8_row); int32 and float
/// output go through qg_ymm_epilogue_rows.
QG_YMM_INLINE void qg_ymm_epilogue8(const qg_gemm_args *a, int64_t m, int64_t n, int cols, __m256i acc,
                                    const qg_output_kind kind) {
#pragma clang fp contract(off) // the reference's float operations, unfused
    if (a->row_zero_point) {
        const __m256i rs = _mm256_loadu_si256((const __m256i *)(a->row_sum + n));
        acc = _mm256_sub_epi32(acc, _mm256_mullo_epi32(_mm256_set1_epi32(a->row_zero_point[m]), rs));
    }
    const int32_t lo = a->clamp_lo - a->y_zero_point, hi = a->clamp_hi - a->y_zero_point;
    __m256i q;
    if (kind == QG_KIND_Q8_FLOAT) {
        __m256 v = _mm256_mul_ps(_mm256_cvtepi32_ps(acc), _mm256_loadu_ps(a->float_multiplier + n));
        v = _mm256_max_ps(v, _mm256_set1_ps((float)lo));
        v = _mm256_min_ps(v, _mm256_set1_ps((float)hi));
        q = _mm256_cvtps_epi32(v); // round half to even (MXCSR default)
    } else {
        q = qg_ymm_requantize_fixed(a, n, acc, lo, hi, kind == QG_KIND_Q8_DOUBLE);
    }
    qg_ymm_store_low_bytes((uint8_t *)a->y + m * a->ldy + n, _mm256_add_epi32(q, _mm256_set1_epi32(a->y_zero_point)),
                           cols);
}


/// Int32 or float output of R rows from m0 (acc[r]: row r's sums in
/// channel order), the first `cols` (1..8) channels of each stored, with
/// `dynamic` (per-row zero points), `row_scaled` (float output scaled per
/// row) and `biased` (float output with out_bias) as the call has them. The
/// whole tiles of qg_ymm_epilogue_rows pass all four as constants, so their
/// rows run without a branch.
QG_YMM_INLINE void qg_ymm_int32_float_rows(const qg_gemm_args *a, int64_t m0, const int R, int64_t n, int cols,
                                           const __m256i *acc, const qg_output_kind kind, const int dynamic,
                                           const int row_scaled, const int biased) {
#pragma clang fp contract(off) // the reference's float operations, unfused
    const int64_t ldy = a->ldy;
    __m256i sums[QG_YMM_MAX_ROWS];
    if (dynamic) {
        const int32_t *const row_zero_point = a->row_zero_point;
        const __m256i row_sum = _mm256_loadu_si256((const __m256i *)(a->row_sum + n));
#pragma clang loop unroll(full)
        for (int r = 0; r < R; r++)
            sums[r] = _mm256_sub_epi32(acc[r], _mm256_mullo_epi32(_mm256_set1_epi32(row_zero_point[m0 + r]), row_sum));
    } else {
#pragma clang loop unroll(full)
        for (int r = 0; r < R; r++) sums[r] = acc[r];
    }
    if (kind == QG_KIND_INT32) {
        int32_t *const y = (int32_t *)a->y + m0 * ldy + n;
#pragma clang loop unroll(full)
        for (int r = 0; r < R; r++) qg_ymm_store_words(y + r * ldy, sums[r], cols);
        return;
    }
    float *const y = (float *)a->y + m0 * ldy + n;
    const __m256 weight_scale = _mm256_loadu_ps(a->weight_scale + n);
    const __m256 bias = biased ? _mm256_loadu_ps(a->out_bias + n) : _mm256_setzero_ps();
    const __m256 call_scale = _mm256_mul_ps(_mm256_set1_ps(a->x_scale), weight_scale);
    float sx[QG_YMM_MAX_ROWS];
    if (row_scaled) {
#pragma clang loop unroll(full)
        for (int r = 0; r < R; r++) sx[r] = a->row_scale[m0 + r];
    }
#pragma clang loop unroll(full)
    for (int r = 0; r < R; r++) {
        const __m256 scale = row_scaled ? _mm256_mul_ps(_mm256_set1_ps(sx[r]), weight_scale) : call_scale;
        const __m256 v = _mm256_mul_ps(_mm256_cvtepi32_ps(sums[r]), scale);
        qg_ymm_store_words(y + r * ldy, _mm256_castps_si256(biased ? _mm256_add_ps(v, bias) : v), cols);
    }
}

/// The epilogue of R rows from m0 and channels n … n + cols − 1 (acc[r]: row
/// r's sums in channel order) for every output but the narrow route of int8
/// and uint8. Whole tiles of int32 or float output (all 8 channels) run from
/// their sums to their stores without a branch: the call's options are
/// tested once, and its fields read before the first store (a store to y
/// could alias *a, so the compiler would read them again after each row).
/// At small K the epilogue is a large share of a tile, and per-row branches
/// there hold up the next tile's multiply-adds (KERNELS.md, "The epilogue").
QG_YMM_INLINE void qg_ymm_epilogue_rows(const qg_gemm_args *a, int64_t m0, const int R, int64_t n, int cols,
                                        const __m256i *acc, const qg_output_kind kind) {
    if (kind != QG_KIND_INT32 && kind != QG_KIND_FLOAT) {
#pragma clang loop unroll(full)
        for (int r = 0; r < R; r++) qg_ymm_epilogue8(a, m0 + r, n, cols, acc[r], kind);
        return;
    }
    // For int32 output only `dynamic` can be set, and the compiler drops the rest.
    const int dynamic = a->row_zero_point != NULL, row_scaled = kind == QG_KIND_FLOAT && a->row_scale,
              biased = kind == QG_KIND_FLOAT && a->out_bias;
    if (cols < 8) {
        qg_ymm_int32_float_rows(a, m0, R, n, cols, acc, kind, dynamic, row_scaled, biased);
        return;
    }
    switch (dynamic | row_scaled << 1 | biased << 2) {
    case 0: qg_ymm_int32_float_rows(a, m0, R, n, 8, acc, kind, 0, 0, 0); return;
    case 1: qg_ymm_int32_float_rows(a, m0, R, n, 8, acc, kind, 1, 0, 0); return;
    case 2: qg_ymm_int32_float_rows(a, m0, R, n, 8, acc, kind, 0, 1, 0); return;
    case 3: qg_ymm_int32_float_rows(a, m0, R, n, 8, acc, kind, 1, 1, 0); return;
    case 4: qg_ymm_int32_float_rows(a, m0, R, n, 8, acc, kind, 0, 0, 1); return;
    case 5: qg_ymm_int32_float_rows(a, m0, R, n, 8, acc, kind, 1, 0, 1); return;
    case 6: qg_ymm_int32_float_rows(a, m0, R, n, 8, acc, kind, 0, 1, 1); return;
    default: qg_ymm_int32_float_rows(a, m0, R, n, 8, acc, kind, 1, 1, 1); return;
    }
}

#endif
