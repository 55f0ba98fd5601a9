// The activations of the VPDPBUSD paths (avx512vnni, avxvnni): VPDPBUSD takes
// them as its unsigned operand, so uint8 is read in place (or packed as it is,
// where its stride would crowd the L1: below) and int8 is packed with +128 (a
// flip of the top bit); the +128 adds 128·row_sum[n] to every dot product,
// which the per-call start values take back (qg_ymm_init_base's fold;
// KERNELS.md: a path's private bias fold, which never changes a result).
//
// Packed layout (one row group of R ≤ MR rows, K padded to kp):
//   x_group[(g·R + r)·4 + t] = (uint8) X[m0 + r][4g + t] + 128 (int8),
//                              X[m0 + r][4g + t] (uint8)
// so one 32-bit broadcast is the K-group of one row. Plain C and SSE2 (the
// x86-64 baseline); included by the two kernel files only.
//
// Why the packing goes 64 bytes of K at a time through 4×4 transposes
// (qg_vnni_pack_rows): row by row, one word at a time, each row writes words
// 4·R bytes apart across the whole group, and at K = 4,096 a 12-row group is
// 48 KiB, an L1's worth, so each row fetches the group's lines again (Emerald
// Rapids: the pack took 61 % of 96×4096×32's time, against 22 % for the tiles;
// 11 % of 3136×64×256's).
#ifndef QG_VNNI_ACTIVATIONS_H
#define QG_VNNI_ACTIVATIONS_H

#include "kernel.h"

#include <emmintrin.h>
#include <string.h>

/// Whether rows `ldx` bytes apart crowd one set of the L1 data cache when a
/// tile reads them side by side. x86 L1Ds index their sets by address bits
/// 6–11, so with a stride within a few bytes of a multiple of 4 KiB (K =
/// 4,096, say) the 12 rows of a group land in one set, more lines than it
/// has ways, and the broadcasts keep missing: 1024×4096×1024 ran at 65–70 %
/// of 1024×4160×1024's speed on Zen 4. The line drawn: seven rows within 64
/// bytes (mod 4 KiB); a 2,048-byte stride (six rows a set) measured as fast
/// as its neighbours. (Rows less than a line apart share lines, not sets.)
static inline int qg_vnni_rows_crowd_l1(int64_t ldx) {
    const int64_t d = ldx & 4095, c = d < 4096 - d ? d : 4096 - d;
    return ldx > 4096 - 64 && 6 * c < 64;
}

/// uint8 activations are already what VPDPBUSD wants: the tiles then
/// broadcast each K-group straight from X (one load each, at the row's own
/// stride; a partial last K-group is read byte by byte, never past the row)
/// and nothing is packed, unless the stride crowds the L1 (above) and a row
/// group of the path's tile (`mr` rows, fewer if M is smaller) has more rows
/// than a set holds beside the weights' two lines (six of its eight ways; at
/// M = 4 in place measured faster than packed, and avxvnni's 6-row groups
/// never pack). int8 needs its +128 flip, so it is packed.
static inline int qg_vnni_in_place(const qg_gemm_args *a, int64_t mr) {
    const int64_t rows = a->m < mr ? a->m : mr;
    return a->x_unsigned && !(rows > 6 && qg_vnni_rows_crowd_l1(a->ldx));
}

/// The fold the start values take back: 128 for int8 (packed with +128), 0
/// for uint8 (in place or packed as it is).
static inline int32_t qg_vnni_fold(const qg_gemm_args *a) { return a->x_unsigned ? 0 : 128; }

/// Bytes of `rows` packed rows.
static inline size_t qg_vnni_x_bytes(int64_t rows, int64_t kp) { return (size_t)(rows * kp); }

/// Row r's partial last K-group g, read in place: its `left` (1..3) bytes,
/// zero above (the padding meets zero weights); never reads past the row.
static inline QG_SPECIALIZE int32_t qg_vnni_tail_word(const uint8_t *x, int64_t g, int64_t row_step,
                                                                       int r, int left) {
    const uint8_t *t = x + g * QG_K_GROUP + r * row_step;
    uint32_t word = t[0];
    if (left > 1) word |= (uint32_t)t[1] << 8;
    if (left > 2) word |= (uint32_t)t[2] << 16;
    return (int32_t)word;
}

/// Four rows' K-groups g…g+3 (16 bytes of each row) into the packed layout:
/// a 4×4 transpose of 32-bit words, so that each 16-byte store is one
/// K-group of the four rows. SSE2, the x86-64 baseline: both paths call it.
static inline void qg_vnni_pack_4x4(const uint8_t *x0, int64_t ldx, __m128i flip, uint8_t *o, int64_t group_bytes) {
    const __m128i a0 = _mm_xor_si128(_mm_loadu_si128((const __m128i *)x0), flip);
    const __m128i a1 = _mm_xor_si128(_mm_loadu_si128((const __m128i *)(x0 + ldx)), flip);
    const __m128i a2 = _mm_xor_si128(_mm_loadu_si128((const __m128i *)(x0 + 2 * ldx)), flip);
    const __m128i a3 = _mm_xor_si128(_mm_loadu_si128((const __m128i *)(x0 + 3 * ldx)), flip);
    const __m128i t0 = _mm_unpacklo_epi32(a0, a1), t1 = _mm_unpacklo_epi32(a2, a3);
    const __m128i t2 = _mm_unpackhi_epi32(a0, a1), t3 = _mm_unpackhi_epi32(a2, a3);
    _mm_storeu_si128((__m128i *)o, _mm_unpacklo_epi64(t0, t1));
    _mm_storeu_si128((__m128i *)(o + group_bytes), _mm_unpackhi_epi64(t0, t1));
    _mm_storeu_si128((__m128i *)(o + 2 * group_bytes), _mm_unpacklo_epi64(t2, t3));
    _mm_storeu_si128((__m128i *)(o + 3 * group_bytes), _mm_unpackhi_epi64(t2, t3));
}

/// Rows [r0, r1) × whole K-groups [g0, g1) of one row group, a 32-bit word
/// at a time (int8's flip an XOR of the word).
static inline void qg_vnni_pack_words(const uint8_t *x, int64_t ldx, int64_t r0, int64_t r1, int64_t g0, int64_t g1,
                                      uint32_t flip, uint8_t *group, int64_t group_bytes) {
    for (int64_t r = r0; r < r1; r++)
        for (int64_t g = g0; g < g1; g++) {
            uint32_t word;
            memcpy(&word, x + r * ldx + g * QG_K_GROUP, sizeof word);
            word ^= flip;
            memcpy(group + g * group_bytes + r * QG_K_GROUP, &word, sizeof word);
        }
}

/// Packs rows [m0, m0 + rows) of X in groups of `mr` rows. Whole K-groups go
/// 64 bytes of K at a time (one line of each row in, the chunk's R·64 bytes
/// out, which stay in the L1 while every row writes into them), four rows by
/// four K-groups per transpose (qg_vnni_pack_4x4); rows beyond a multiple of
/// four, K-groups beyond one, and groups of fewer than four rows go a word at
/// a time (qg_vnni_pack_words); the last, partial K-group is one word
/// (qg_vnni_tail_word). uint8 read in place is not packed.
static inline void qg_vnni_pack_rows(const qg_gemm_args *a, int64_t m0, int64_t rows, void *dst, int64_t mr) {
    if (qg_vnni_in_place(a, mr)) return;
    uint8_t *out = dst;
    const uint32_t flip = a->x_unsigned ? 0 : 0x80808080u; // int8 → uint8 with +128
    const __m128i flip4 = _mm_set1_epi32((int32_t)flip);
    const int64_t groups = a->kp / QG_K_GROUP, full = a->k / QG_K_GROUP, ldx = a->ldx;
    for (int64_t r0 = 0; r0 < rows; r0 += mr) {
        const int64_t R = rows - r0 < mr ? rows - r0 : mr, group_bytes = R * QG_K_GROUP;
        const uint8_t *x = (const uint8_t *)a->x + (m0 + r0) * ldx;
        uint8_t *group = out + r0 * a->kp;
        // Fewer than four rows (decode): row by row (the chunks below cost
        // more than they save at M = 1).
        if (R < 4) qg_vnni_pack_words(x, ldx, 0, R, 0, full, flip, group, group_bytes);
        for (int64_t g0 = 0; R >= 4 && g0 < full; g0 += 16) {
            const int64_t g1 = g0 + 16 < full ? g0 + 16 : full, g4 = g0 + (g1 - g0) / 4 * 4;
            int64_t r = 0;
            for (; r + 4 <= R; r += 4) {
                for (int64_t g = g0; g < g4; g += 4)
                    qg_vnni_pack_4x4(x + r * ldx + g * QG_K_GROUP, ldx, flip4, group + g * group_bytes + r * QG_K_GROUP,
                                     group_bytes);
                qg_vnni_pack_words(x, ldx, r, r + 4, g4, g1, flip, group, group_bytes);
            }
            qg_vnni_pack_words(x, ldx, r, R, g0, g1, flip, group, group_bytes);
        }
        // The K tail: a partial last K-group with its real bytes flipped and
        // zeros above them, then any zero groups (the padding meets zero weights).
        const int left = (int)(a->k % QG_K_GROUP);
        const uint32_t tail_flip = left ? flip & (0xFFFFFFFFu >> (8 * (QG_K_GROUP - left))) : 0;
        for (int64_t r = 0; r < R; r++) {
            int64_t g = full;
            if (left) {
                const uint32_t word = (uint32_t)qg_vnni_tail_word(x + r * ldx, g, 0, 0, left) ^ tail_flip;
                memcpy(group + g * group_bytes + r * QG_K_GROUP, &word, sizeof word);
                g++;
            }
            for (; g < groups; g++) memset(group + g * group_bytes + r * QG_K_GROUP, 0, QG_K_GROUP);
        }
    }
}

/// Row r's K-group g as a 32-bit word (packed, or in place at X's row stride).
static inline QG_SPECIALIZE int32_t qg_vnni_group_word(const uint8_t *x, int64_t g, int64_t group_step,
                                                                        int64_t row_step, int r) {
    int32_t four;
    memcpy(&four, x + g * group_step + r * row_step, sizeof four);
    return four;
}

#endif
