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

#define QG_YMM_INLINE static inline __attribute__((always_inline, target("avx2")))

// MARK: - Per-call params

/// The order of a tile's 8 lanes (channels n … n + 7 of a row) where it runs
/// the epilogue: as the channels (the VNNI tiles' accumulators), or as
/// VPHADDD leaves the avx2 tile's pairs of partial sums: channels 0 1 4 5 in
/// the low 128 bits and 2 3 6 7 in the high. The avx2 tile's int8 output
/// stays in that order to the last byte shuffle, which saves a lane-crossing
/// permute per row; its other outputs put the lanes in channel order first.
typedef enum qg_ymm_lane_order { QG_YMM_CHANNEL_ORDER, QG_YMM_HADD_ORDER } qg_ymm_lane_order;

/// What a 256-bit tile reads per call, made once by qg_ymm_init_params:
/// - each channel's starting value, bias − (Z_X + fold)·row_sum, where `fold`
///   is the path's private bias fold (128 when int8 activations enter an
///   unsigned dot product as x + 128);
/// - for the narrow route (int8/uint8 output, single rounding, every channel
///   within narrow_requantize.h's bounds): each channel's M0, the odd lanes'
///   M0 moved to the even lanes, the shift after the high half, the rounding
///   constant with the output zero point folded in, and the row sums (for
///   per-row zero points). uint8 output is computed as int8 output with
///   Z_Y − 128 and bounds − 128 and moved back by an XOR with 0x80 (`flip`),
///   as the 512-bit route does; `clamp` says whether the bounds are narrower
///   than the int8 range.
/// Every array is in the kernel's lane order (qg_ymm_lane_order) and padded
/// to whole panels, so a tile reads whole vectors.
typedef struct qg_ymm_params {
    int32_t narrow, clamp, clamp_lo, clamp_hi, flip;
    int32_t pad[11];
    int32_t data[]; // base, m0, m0_odd, count, round, row_sum: qg_packed_n(n) each
} qg_ymm_params;

enum { QG_YMM_BASE, QG_YMM_M0, QG_YMM_M0_ODD, QG_YMM_COUNT, QG_YMM_ROUND, QG_YMM_ROW_SUM, QG_YMM_ARRAYS };

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
/// shift −2, Z_Y 0.
QG_YMM_INLINE void qg_ymm_init_params(const qg_gemm_args *a, void *out, int32_t fold, const qg_ymm_lane_order order) {
    qg_ymm_params *p = out;
    const int64_t np = qg_packed_n(a->n);
    int32_t *base = p->data, *m0 = base + np, *m0_odd = m0 + np, *count = m0_odd + np, *round = count + np,
            *row_sum = round + np;
    const int32_t flip = a->out_type == QG_OUT_UINT8 ? 128 : 0, zy = a->y_zero_point - flip;
    // |Z_Y| ≤ 2^29 keeps 1 + 2·|Z_Y| below in int32 (real zero points are bytes).
    const int64_t z_abs = zy < 0 ? -(int64_t)zy : zy;
    // The saturating packs clamp to the type's range, so bounds outside it or
    // crossed (which qgemm.h rules out) go the general way, as in epilogue_zmm.h.
    const int candidate = (a->out_type == QG_OUT_INT8 || a->out_type == QG_OUT_UINT8) &&
                          a->rounding == QG_ROUND_SINGLE && z_abs <= (1 << 29) && a->clamp_lo >= -128 + flip &&
                          a->clamp_hi <= 127 + flip && a->clamp_lo <= a->clamp_hi;
    const __m256i lanes = order == QG_YMM_HADD_ORDER ? _mm256_setr_epi32(0, 1, 4, 5, 2, 3, 6, 7)
                                                     : _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i z = _mm256_set1_epi32((int32_t)((uint32_t)a->x_zero_point + (uint32_t)fold));
    const __m256i one = _mm256_set1_epi32(1), zy_v = _mm256_set1_epi32(zy);
    const __m256i zy_limit = _mm256_set1_epi32((int32_t)(1 + 2 * z_abs)); // narrow: 1 + 2|Z_Y| ≤ 2^(32 + shift)
    __m256i all_narrow = _mm256_set1_epi32(-1);
    for (int64_t g = 0; g < np; g += 8) {
        // Lane i holds channel g + lanes[i]; `real` marks the channels < N.
        const __m256i real = _mm256_cmpgt_epi32(_mm256_set1_epi32((int32_t)(a->n - g < 8 ? a->n - g : 8)), lanes);
#define QG_YMM_LANES(array) _mm256_permutevar8x32_epi32(_mm256_loadu_si256((const __m256i *)((array) + g)), lanes)
        const __m256i sums = QG_YMM_LANES(a->row_sum);
        const __m256i bias = a->bias ? _mm256_and_si256(QG_YMM_LANES(a->bias), real) : _mm256_setzero_si256();
        _mm256_storeu_si256((__m256i *)(base + g), _mm256_sub_epi32(bias, _mm256_mullo_epi32(z, sums)));
        _mm256_storeu_si256((__m256i *)(row_sum + g), sums);
        if (!candidate) continue;
        const __m256i shift = _mm256_blendv_epi8(_mm256_set1_epi32(-2), QG_YMM_LANES(a->shift), real);
        const __m256i mult = _mm256_and_si256(QG_YMM_LANES(a->multiplier), real);
#undef QG_YMM_LANES
        const __m256i c = _mm256_sub_epi32(_mm256_set1_epi32(-1), shift); // c = −1 − shift
        // Narrow when shift ∈ [−31, −2] and 2^(c−1)·(1 + 2|Z_Y|) ≤ 2^30, that is
        // 1 + 2|Z_Y| ≤ 2^(32 + shift) (narrow_requantize.h, qg_narrow_channel).
        const __m256i in_range = _mm256_and_si256(_mm256_cmpgt_epi32(shift, _mm256_set1_epi32(-32)),
                                                  _mm256_cmpgt_epi32(_mm256_set1_epi32(-1), shift));
        const __m256i room = _mm256_sllv_epi32(one, _mm256_add_epi32(shift, _mm256_set1_epi32(32)));
        const __m256i narrow = _mm256_andnot_si256(_mm256_cmpgt_epi32(zy_limit, room), in_range);
        all_narrow = _mm256_and_si256(all_narrow, _mm256_or_si256(narrow, _mm256_xor_si256(real, _mm256_set1_epi32(-1))));
        const __m256i zy_lane = _mm256_and_si256(zy_v, real);
        _mm256_storeu_si256((__m256i *)(m0 + g), mult);
        // The lanes of a pair hold neighbouring channels in either order, so
        // the odd lane's M0 moves to the even lane with a 64-bit shift.
        _mm256_storeu_si256((__m256i *)(m0_odd + g), _mm256_srli_epi64(mult, 32));
        _mm256_storeu_si256((__m256i *)(count + g), c);
        _mm256_storeu_si256((__m256i *)(round + g),
                            _mm256_add_epi32(_mm256_sllv_epi32(one, _mm256_sub_epi32(c, one)), _mm256_sllv_epi32(zy_lane, c)));
    }
    p->narrow = candidate && _mm256_movemask_epi8(all_narrow) == -1;
    p->clamp = a->clamp_lo > -128 + flip || a->clamp_hi < 127 + flip;
    p->clamp_lo = a->clamp_lo - flip;
    p->clamp_hi = a->clamp_hi - flip;
    p->flip = flip;
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

/// Stores the first `cols` (1..8) of 8 int32 or float lanes.
QG_YMM_INLINE void qg_ymm_store_words(void *dst, __m256i v, int cols) {
    if (cols == 8) {
        _mm256_storeu_si256((__m256i *)dst, v);
    } else {
        int32_t tmp[8];
        _mm256_storeu_si256((__m256i *)tmp, v);
        qg_copy_first_bytes(dst, tmp, cols * (int)sizeof(int32_t));
    }
}

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

/// VPSHUFB indices that put 8 bytes from VPHADDD's lane order (channels
/// 0 1 4 5 2 3 6 7) into channel order, in each 64-bit word.
static const int8_t qg_ymm_hadd_bytes[32] = {0, 1, 4, 5, 2, 3, 6,  7,  8, 9, 12, 13, 10, 11, 14, 15,
                                             0, 1, 4, 5, 2, 3, 6,  7,  8, 9, 12, 13, 10, 11, 14, 15};

/// The narrow route's per-channel constants of channels n … n + 7, in the
/// params' lane order.
typedef struct qg_ymm_narrow_channels {
    __m256i m0, m0_odd, count, round, row_sum;
} qg_ymm_narrow_channels;

QG_YMM_INLINE qg_ymm_narrow_channels qg_ymm_narrow_load(const qg_gemm_args *a, const qg_ymm_params *p, int64_t n) {
    qg_ymm_narrow_channels c;
    c.m0 = _mm256_loadu_si256((const __m256i *)(qg_ymm_array(p, a, QG_YMM_M0) + n));
    c.m0_odd = _mm256_loadu_si256((const __m256i *)(qg_ymm_array(p, a, QG_YMM_M0_ODD) + n));
    c.count = _mm256_loadu_si256((const __m256i *)(qg_ymm_array(p, a, QG_YMM_COUNT) + n));
    c.round = _mm256_loadu_si256((const __m256i *)(qg_ymm_array(p, a, QG_YMM_ROUND) + n));
    c.row_sum = a->row_zero_point ? _mm256_loadu_si256((const __m256i *)(qg_ymm_array(p, a, QG_YMM_ROW_SUM) + n))
                                  : _mm256_setzero_si256();
    return c;
}

/// Requantizes 8 sums of row m (narrow_requantize.h): the row's zero-point
/// term, the high halves of acc·M0 (two VPMULDQ, a shift and a blend), one add
/// that also adds the output zero point, one shift. The result includes Z_Y
/// and still needs the clamp.
QG_YMM_INLINE __m256i qg_ymm_narrow_requantize(const qg_gemm_args *a, int64_t m, __m256i acc,
                                               const qg_ymm_narrow_channels *c) {
    if (a->row_zero_point) acc = _mm256_sub_epi32(acc, _mm256_mullo_epi32(_mm256_set1_epi32(a->row_zero_point[m]), c->row_sum));
    const __m256i even = _mm256_mul_epi32(acc, c->m0), odd = _mm256_mul_epi32(_mm256_srli_epi64(acc, 32), c->m0_odd);
    const __m256i high = _mm256_blend_epi32(_mm256_srli_epi64(even, 32), odd, 0xAA);
    return _mm256_srav_epi32(_mm256_add_epi32(high, c->round), c->count);
}

/// Four requantized vectors to bytes: two signed saturating packs (which clamp
/// to the int8 range exactly: the values already include Z_Y), one permute
/// (and for VPHADDD's order one byte shuffle) that leaves vector i's 8 bytes
/// in channel order in 64-bit word i, a byte min/max if the call's clamp is
/// narrower, and the XOR that turns the int8 form of uint8 output back.
QG_YMM_INLINE __m256i qg_ymm_narrow_pack4(const qg_ymm_params *p, const __m256i q[4], const qg_ymm_lane_order order) {
    const __m256i w01 = _mm256_packs_epi32(q[0], q[1]), w23 = _mm256_packs_epi32(q[2], q[3]);
    __m256i b = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(w01, w23),
                                            _mm256_loadu_si256((const __m256i *)qg_ymm_pack_order));
    if (order == QG_YMM_HADD_ORDER) b = _mm256_shuffle_epi8(b, _mm256_loadu_si256((const __m256i *)qg_ymm_hadd_bytes));
    if (p->clamp) b = _mm256_min_epi8(_mm256_max_epi8(b, _mm256_set1_epi8((char)p->clamp_lo)), _mm256_set1_epi8((char)p->clamp_hi));
    return _mm256_xor_si256(b, _mm256_set1_epi8((char)p->flip));
}

/// The narrow route (params->narrow) for channels n … n + 7 of R rows from m0,
/// acc[r] holding row r's sums (bias and the call's zero-point term in) in the
/// lane order `order`, four rows at a time. Stores the first `cols` (1..8) of
/// each row.
QG_YMM_INLINE void qg_ymm_narrow_rows(const qg_gemm_args *a, const qg_ymm_params *p, int64_t m0, const int R, int64_t n,
                                      int cols, const __m256i *acc, const qg_ymm_lane_order order) {
    // Locals: stores to y could alias *a and *p, so the compiler would reload
    // these once per group of rows.
    uint8_t *const y = (uint8_t *)a->y;
    const int64_t ldy = a->ldy;
    const qg_ymm_narrow_channels c = qg_ymm_narrow_load(a, p, n);
#pragma clang loop unroll(full)
    for (int r0 = 0; r0 < R; r0 += 4) {
        // A short last group packs its first row again in the missing rows'
        // places and stores only its own.
        __m256i q[4];
#pragma clang loop unroll(full)
        for (int i = 0; i < 4; i++) q[i] = r0 + i < R ? qg_ymm_narrow_requantize(a, m0 + r0 + i, acc[r0 + i], &c) : q[0];
        const __m256i b = qg_ymm_narrow_pack4(p, q, order);
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

/// The narrow route for G (1..4) groups of 8 channels of one row m, from n:
/// acc[g] holds channels n + 8g …, in the lane order `order`. The groups pack
/// together, so the row's first `cols` (1..8·G) bytes go out in one store.
QG_YMM_INLINE void qg_ymm_narrow_row(const qg_gemm_args *a, const qg_ymm_params *p, int64_t m, int64_t n, const int G,
                                     int cols, const __m256i *acc, const qg_ymm_lane_order order) {
    uint8_t *const dst = (uint8_t *)a->y + m * a->ldy + n;
    __m256i q[4];
#pragma clang loop unroll(full)
    for (int g = 0; g < 4; g++) {
        if (g >= G) {
            q[g] = q[0];
            continue;
        }
        const qg_ymm_narrow_channels c = qg_ymm_narrow_load(a, p, n + 8 * g);
        q[g] = qg_ymm_narrow_requantize(a, m, acc[g], &c);
    }
    const __m256i b = qg_ymm_narrow_pack4(p, q, order);
    if (cols == 32) {
        _mm256_storeu_si256((__m256i *)dst, b);
    } else {
        uint8_t bytes[32];
        _mm256_storeu_si256((__m256i *)bytes, b);
        qg_copy_first_bytes(dst, bytes, cols);
    }
}

/// Finishes 8 channel sums of row m in channel order (channels n …, bias and
/// the call's zero-point term already in: the params' start values) into the
/// output of `kind`, and stores the first `cols` (1..8). Not the narrow
/// route: where the call's params allow it, the tiles take qg_ymm_narrow_rows
/// (or, the avx2 decode tile, qg_ymm_narrow_row).
QG_YMM_INLINE void qg_ymm_epilogue8(const qg_gemm_args *a, int64_t m, int64_t n, int cols, __m256i acc,
                                    const qg_output_kind kind) {
#pragma clang fp contract(off) // the reference's float operations, unfused
    if (a->row_zero_point) {
        const __m256i rs = _mm256_loadu_si256((const __m256i *)(a->row_sum + n));
        acc = _mm256_sub_epi32(acc, _mm256_mullo_epi32(_mm256_set1_epi32(a->row_zero_point[m]), rs));
    }
    if (kind == QG_KIND_INT32) {
        qg_ymm_store_words((int32_t *)a->y + m * a->ldy + n, acc, cols);
    } else if (kind == QG_KIND_FLOAT) {
        const float sx = a->row_scale ? a->row_scale[m] : a->x_scale;
        const __m256 scale = _mm256_mul_ps(_mm256_set1_ps(sx), _mm256_loadu_ps(a->weight_scale + n));
        __m256 v = _mm256_mul_ps(_mm256_cvtepi32_ps(acc), scale);
        if (a->out_bias) v = _mm256_add_ps(v, _mm256_loadu_ps(a->out_bias + n));
        qg_ymm_store_words((float *)a->y + m * a->ldy + n, _mm256_castps_si256(v), cols);
    } else {
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
}

#endif
