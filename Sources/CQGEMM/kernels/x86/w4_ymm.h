// The 256-bit 4-bit-weight (W4A8) tile, shared by the avx2 and avxvnni paths:
// the same loop, a different int8 dot product. The includer defines
//   QG_W4Y_INLINE              its QG_SPECIALIZE attributes (with its target)
//   QG_W4Y_DOT(sum, lo, hi, x0, x1)
//       sum + lo·x0 + hi·x1 over each lane's 4 bytes (unsigned nibbles ×
//       signed activations), exact in int32 (or QG_W4Y_DOT1 below instead)
// and may define
//   QG_W4Y_DOT1(sum, v, x)     sum + v·x over each lane's 4 bytes, one
//                              instruction with a long latency (VPDPBUSD):
//                              tiles of at most 4 sums (R·NH ≤ 4) then add
//                              the low and the high nibbles into sums of
//                              their own, twice the chains, and add the two
//                              once per group. With one sum per channel, two
//                              such instructions in a row per chunk leave so
//                              few chains that the tile waits on their
//                              latency; larger tiles have chains enough,
//                              and add each chunk in two passes
//                              (qg_w4y_group_sums_passes), where tiles of up
//                              to 12 sums may keep the high nibbles apart too
//   QG_W4Y_PREFETCH_BYTES      how far ahead a streaming tile (PF = 1 below)
//                              of several rows prefetches each panel's
//                              weights (none at all when undefined); a
//                              streaming tile of one row then also
//                              prefetches its scales, bias and output
//   QG_W4Y_DECODE_PREFETCH_BYTES  with QG_W4Y_PREFETCH_BYTES, the distance
//                              for streaming tiles of one row (default: the
//                              same)
//   QG_W4Y_DOT16(lo, hi, x0, x1), QG_W4Y_WIDEN(sum, part)
//       QG_W4Y_DOT in two steps: int16 lanes lo·x0 + hi·x1 over byte pairs
//       (at most 2·2·15·128 = 7,680 in magnitude), and sum + the pairs of
//       such lanes in int32. Tiles of several rows then add up to four
//       chunks' int16 lanes (at most 30,720, so exact) before each widening:
//       one widening per four chunks instead of one per chunk.
// A 64-byte chunk of the W4 layout is two ymm halves of 8 channels × 8 K:
// bytes 0…31 are channels 0…7, bytes 32…63 channels 8…15, each with K 0…3 in
// its low nibbles and K 4…7 in its high ones (qgemm.h). Each group's sums start
// at the row's offset term; once per group one conversion and one FMA with
// the group's scales (binary16, widened exactly by VCVTPH2PS: F16C), as the
// contract orders them.
#ifndef QG_W4_YMM_H
#define QG_W4_YMM_H

#include <immintrin.h>
#include <string.h>

#include "partial_store.h"

#if defined(QG_W4Y_PREFETCH_BYTES) && !defined(QG_W4Y_DECODE_PREFETCH_BYTES)
#define QG_W4Y_DECODE_PREFETCH_BYTES QG_W4Y_PREFETCH_BYTES
#endif
/// How far ahead a streaming tile of R rows prefetches its nibbles (0: none).
#ifdef QG_W4Y_PREFETCH_BYTES
#define QG_W4Y_AHEAD(R) ((R) == 1 ? QG_W4Y_DECODE_PREFETCH_BYTES : QG_W4Y_PREFETCH_BYTES)
#else
#define QG_W4Y_AHEAD(R) 0
#endif

/// Whether a tile of R rows × NH halves keeps the high nibbles' sums apart.
#define QG_W4Y_SPLIT(R, NH) ((R) * (NH) <= 4)

QG_W4Y_INLINE __m256i qg_w4y_broadcast(const int8_t *x) {
    int32_t word;
    memcpy(&word, x, sizeof word);
    return _mm256_set1_epi32(word);
}

/// The nibbles of one 64-byte chunk (`at` bytes into each half's stream)
/// for NH halves of 8 channels: K 0…3 in `lo`, K 4…7 in `hi`, as bytes 0…15,
/// or with HIGH16 as 16 times those (the high nibbles left in place: one AND,
/// no shift; the tile divides their group's sum by 16, as w4_zmm.h explains).
/// AHEAD (bytes, a constant; 0: none): the tile streams its panels from
/// memory, so it prefetches them that far ahead.
QG_W4Y_INLINE void qg_w4y_unpack(const uint8_t *const *w, const int NH, const int AHEAD, const int HIGH16, int64_t at,
                                 __m256i nibble, __m256i *lo, __m256i *hi) {
    // Halves 2p and 2p + 1 share panel p's 64-byte chunks.
    if (AHEAD)
        for (int h = 0; h < NH; h += 2) _mm_prefetch((const char *)(w[h] + at + AHEAD), _MM_HINT_T0);
    for (int h = 0; h < NH; h++) {
        const __m256i v = _mm256_loadu_si256((const __m256i *)(w[h] + at));
        lo[h] = _mm256_and_si256(v, nibble);
        hi[h] = HIGH16 ? _mm256_andnot_si256(nibble, v) : _mm256_and_si256(_mm256_srli_epi16(v, 4), nibble);
    }
}

/// Adds one group's dot products (`chunks` chunks from `at` bytes into each
/// half's stream, activations from `x[r] + kg`) to `sum[r][h]`, a chunk at a time.
/// With QG_W4Y_DOT1, tiles that keep them apart (QG_W4Y_SPLIT) add the high
/// nibbles' products, 16 times over (HIGH16), to `sum_hi`.
QG_W4Y_INLINE void qg_w4y_group_sums(const uint8_t *const *w, const int NH, const int R, const int PF,
                                     const int8_t *const *x, int64_t kg, int64_t at, int64_t chunks, __m256i nibble,
                                     __m256i sum[6][8], __m256i sum_hi[6][8]) {
#ifdef QG_W4Y_DOT1
    const int high16 = QG_W4Y_SPLIT(R, NH);
#else
    const int high16 = 0;
#endif
    for (int64_t c = 0; c < chunks; c++) {
        __m256i lo[8], hi[8];
        qg_w4y_unpack(w, NH, PF ? QG_W4Y_AHEAD(R) : 0, high16, at + c * 64, nibble, lo, hi);
        for (int r = 0; r < R; r++) {
            const __m256i x0 = qg_w4y_broadcast(x[r] + kg + c * 8), x1 = qg_w4y_broadcast(x[r] + kg + c * 8 + 4);
            for (int h = 0; h < NH; h++) {
#ifdef QG_W4Y_DOT1
                sum[r][h] = QG_W4Y_DOT1(sum[r][h], lo[h], x0);
                if (QG_W4Y_SPLIT(R, NH)) sum_hi[r][h] = QG_W4Y_DOT1(sum_hi[r][h], hi[h], x1);
                else sum[r][h] = QG_W4Y_DOT1(sum[r][h], hi[h], x1);
#else
                (void)sum_hi;
                sum[r][h] = QG_W4Y_DOT(sum[r][h], lo[h], hi[h], x0, x1);
#endif
            }
        }
    }
}

#ifdef QG_W4Y_DOT1
/// qg_w4y_group_sums for tiles of three or more rows (QG_W4Y_DOT1 only): each
/// chunk in two passes, the low nibbles of every half against every row, then
/// the high ones. Only one kind of unpacked nibbles is live at a time (NH
/// registers, not 2·NH) and a sum's two VPDPBUSD of a chunk lie R·NH apart,
/// so a tile of six rows (12 sums) fits the 16 ymm registers of AVX-VNNI and
/// hides the instruction's latency. SPLIT: the high nibbles, unshifted (an
/// AND of 0xF0: 16·u), go into sums of their own, as in the tiles of
/// QG_W4Y_SPLIT; three rows × two halves (12 sums) is the largest such tile.
QG_W4Y_INLINE void qg_w4y_group_sums_passes(const uint8_t *const *w, const int NH, const int R, const int SPLIT,
                                            const int8_t *const *x, int64_t kg, int64_t at, int64_t chunks,
                                            __m256i nibble, __m256i sum[6][8], __m256i sum_hi[6][8]) {
    for (int64_t c = 0; c < chunks; c++) {
        __m256i v[8];
        for (int h = 0; h < NH; h++) v[h] = _mm256_and_si256(_mm256_loadu_si256((const __m256i *)(w[h] + at + c * 64)), nibble);
        for (int r = 0; r < R; r++) {
            const __m256i x0 = qg_w4y_broadcast(x[r] + kg + c * 8);
            for (int h = 0; h < NH; h++) sum[r][h] = QG_W4Y_DOT1(sum[r][h], v[h], x0);
        }
        // The chunk is loaded again (from L1) for the high nibbles: left to
        // itself, the compiler kept the first loads for them and, at six
        // rows, spilled two sums and a chunk in the loop instead.
        __asm__ volatile("" ::: "memory");
        for (int h = 0; h < NH; h++) {
            const __m256i raw = _mm256_loadu_si256((const __m256i *)(w[h] + at + c * 64));
            v[h] = SPLIT ? _mm256_andnot_si256(nibble, raw) : _mm256_and_si256(_mm256_srli_epi16(raw, 4), nibble);
        }
        for (int r = 0; r < R; r++) {
            const __m256i x1 = qg_w4y_broadcast(x[r] + kg + c * 8 + 4);
            for (int h = 0; h < NH; h++) {
                if (SPLIT) sum_hi[r][h] = QG_W4Y_DOT1(sum_hi[r][h], v[h], x1);
                else sum[r][h] = QG_W4Y_DOT1(sum[r][h], v[h], x1);
            }
        }
    }
}
#endif

#ifdef QG_W4Y_DOT16
/// `count` (1…4) chunks from chunk c0 added in int16, then widened into `sum`.
QG_W4Y_INLINE void qg_w4y_block16(const uint8_t *const *w, const int NH, const int R, const int PF,
                                  const int8_t *const *x, int64_t kg, int64_t at, int64_t c0, const int count,
                                  __m256i nibble, __m256i sum[6][8]) {
    __m256i part[6][8];
    for (int i = 0; i < count; i++) {
        const int64_t c = c0 + i;
        __m256i lo[8], hi[8];
        qg_w4y_unpack(w, NH, PF ? QG_W4Y_AHEAD(R) : 0, 0, at + c * 64, nibble, lo, hi);
        for (int r = 0; r < R; r++) {
            const __m256i x0 = qg_w4y_broadcast(x[r] + kg + c * 8), x1 = qg_w4y_broadcast(x[r] + kg + c * 8 + 4);
            for (int h = 0; h < NH; h++) {
                const __m256i d = QG_W4Y_DOT16(lo[h], hi[h], x0, x1);
                part[r][h] = i == 0 ? d : _mm256_add_epi16(part[r][h], d);
            }
        }
    }
    for (int r = 0; r < R; r++)
        for (int h = 0; h < NH; h++) sum[r][h] = QG_W4Y_WIDEN(sum[r][h], part[r][h]);
}

/// qg_w4y_group_sums with up to four chunks added in int16 before each
/// widening: whole blocks of four (a constant count, so unrolled), then the
/// rest.
QG_W4Y_INLINE void qg_w4y_group_sums16(const uint8_t *const *w, const int NH, const int R, const int PF,
                                       const int8_t *const *x, int64_t kg, int64_t at, int64_t chunks, __m256i nibble,
                                       __m256i sum[6][8]) {
    int64_t c0 = 0;
    for (; c0 + 4 <= chunks; c0 += 4) qg_w4y_block16(w, NH, R, PF, x, kg, at, c0, 4, nibble, sum);
    switch (chunks - c0) {
    case 3: qg_w4y_block16(w, NH, R, PF, x, kg, at, c0, 3, nibble, sum); break;
    case 2: qg_w4y_block16(w, NH, R, PF, x, kg, at, c0, 2, nibble, sum); break;
    case 1: qg_w4y_block16(w, NH, R, PF, x, kg, at, c0, 1, nibble, sum); break;
    default: break;
    }
}
#endif

/// How a tile adds up a group's chunks: a chunk at a time (every path), or in
/// two passes, with the high nibbles' sums apart or not (QG_W4Y_DOT1 only:
/// qg_w4y_group_sums_passes).
enum { QG_W4Y_BY_CHUNKS, QG_W4Y_PASSES, QG_W4Y_PASSES_SPLIT };

/// R rows (at most 6) × NH halves of 8 channels; PF: prefetch the weights,
/// and with one row the scales, bias and output (a chunk at a time only: the
/// passes serve tiles of several rows, whose weights come from the caches);
/// HOW: QG_W4Y_BY_CHUNKS, QG_W4Y_PASSES or QG_W4Y_PASSES_SPLIT (all
/// compile-time constants).
QG_W4Y_INLINE void qg_w4y_tile_by(const qg_w4_args *a, int64_t m0, int64_t n0, int cols, const int R, const int NH,
                                  const int PF, const int HOW) {
    // Whether the high nibbles' sums are kept apart (and so taken unshifted).
#ifdef QG_W4Y_DOT1
    const int split = HOW == QG_W4Y_PASSES_SPLIT || (HOW == QG_W4Y_BY_CHUNKS && QG_W4Y_SPLIT(R, NH));
#else
    const int split = 0;
#endif
    const int64_t kp = qg_w4_packed_k(a->k, a->group), groups = qg_w4_groups(a->k, a->group);
    const int64_t chunks = a->group / QG_W4_K_CHUNK, panel_bytes = QG_W4_PANEL_N * kp / 2;
    // Half h's 8 channels: bytes (h % 2)·32 of panel h / 2's chunks. A half
    // past the last of `cols` channels may lie past the packed weights' end:
    // such halves read half 0 again, and their lanes are never stored.
    const uint8_t *w[8];
    const uint16_t *ws[8];
    for (int h = 0; h < NH; h++) {
        const int hh = h * 8 < cols ? h : 0;
        w[h] = a->w + (n0 / QG_W4_PANEL_N + hh / 2) * panel_bytes + (hh % 2) * 32;
        ws[h] = a->w_scale + (n0 / QG_W4_PANEL_N + hh / 2) * (QG_W4_PANEL_N * groups) + (hh % 2) * 8;
    }
    const __m256i nibble = _mm256_set1_epi8(0x0F);
    const int8_t *x[6];
    const int32_t *offset[6];
    __m256 s[6][8];
    for (int r = 0; r < R; r++) {
        x[r] = a->x + (m0 + r) * a->ldx;
        offset[r] = a->x_offset + (m0 + r) * groups;
        for (int h = 0; h < NH; h++) s[r][h] = _mm256_setzero_ps();
    }
#ifdef QG_W4Y_PREFETCH_BYTES
    // A decode tile (one row, streaming) reads, beside each panel's nibbles,
    // its scales (32 bytes a group: a new line every other group), and at
    // the end the bias and the output's lines. Cold, those come from memory
    // too, a few lines each per tile, too few for the hardware's prefetchers
    // to have a stream to follow, and each group's FMA waits on its scales.
    // So the first groups' scales, the bias and the output are asked for
    // here (bias and output a half, 32 bytes, at a time: they need not start
    // on a line), and each panel's scales four groups ahead below (Zen 2,
    // group 128, cold, median of five interleaved rounds: 1×4096×4096 80 →
    // 83 GOP/s with all its nibbles on huge pages, 86 with these too;
    // 1×11008×4096 +2 %). Tiles of two rows gain nothing warm from it and
    // lost 1–4 % (M = 4 and 8 at group 32).
    if (PF && R == 1)
        for (int h = 0; h < NH && h * 8 < cols; h++) {
            if (h % 2 == 0)
                for (int64_t g = 0; g < groups && g < 4; g += 2) _mm_prefetch((const char *)(ws[h] + g * QG_W4_PANEL_N), _MM_HINT_T0);
            if (a->bias) _mm_prefetch((const char *)(a->bias + n0 + h * 8), _MM_HINT_T0);
            _mm_prefetch((const char *)(a->y + m0 * a->ldy + n0 + h * 8), _MM_HINT_T0);
        }
#endif
    for (int64_t g = 0; g < groups; g++) {
        __m256i sum[6][8], sum_hi[6][8];
#ifdef QG_W4Y_PREFETCH_BYTES
        if (PF && R == 1 && g % 2 == 0 && g + 4 < groups)
            for (int h = 0; h < NH; h += 2) _mm_prefetch((const char *)(ws[h] + (g + 4) * QG_W4_PANEL_N), _MM_HINT_T0);
#endif
        for (int r = 0; r < R; r++) {
            const __m256i start = _mm256_set1_epi32(offset[r][g]);
            for (int h = 0; h < NH; h++) {
                sum[r][h] = start;
                sum_hi[r][h] = _mm256_setzero_si256();
            }
        }
        const int64_t kg = g * a->group;
#ifdef QG_W4Y_DOT16
        // Several rows share each unpacked chunk, and the multiplies bound
        // the tile; one row is bound by reading its weights, and there the
        // extra int16 adds cost more than the widenings they save.
        if (R > 1) qg_w4y_group_sums16(w, NH, R, PF, x, kg, g * chunks * 64, chunks, nibble, sum);
        else
#endif
#ifdef QG_W4Y_DOT1
        if (HOW != QG_W4Y_BY_CHUNKS)
            qg_w4y_group_sums_passes(w, NH, R, split, x, kg, g * chunks * 64, chunks, nibble, sum, sum_hi);
        else
#endif
            qg_w4y_group_sums(w, NH, R, PF, x, kg, g * chunks * 64, chunks, nibble, sum, sum_hi);
#ifdef QG_W4Y_DOT1
        if (split)
            for (int r = 0; r < R; r++)
                for (int h = 0; h < NH; h++) sum[r][h] = _mm256_add_epi32(sum[r][h], _mm256_srai_epi32(sum_hi[r][h], 4));
#endif
        for (int h = 0; h < NH; h++) {
            const __m256 scale = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(ws[h] + g * QG_W4_PANEL_N)));
            for (int r = 0; r < R; r++) s[r][h] = _mm256_fmadd_ps(scale, _mm256_cvtepi32_ps(sum[r][h]), s[r][h]);
        }
    }
    for (int r = 0; r < R; r++) {
        const __m256 xs = _mm256_set1_ps(a->x_scale[m0 + r]);
        float *y = a->y + (m0 + r) * a->ldy + n0;
        for (int h = 0; h < NH; h++) {
            const int left = cols - h * 8;
            if (left <= 0) break;
            const __m256 b = a->bias ? _mm256_loadu_ps(a->bias + n0 + h * 8) : _mm256_setzero_ps();
            const __m256 out = _mm256_fmadd_ps(xs, s[r][h], b);
            if (left >= 8) {
                _mm256_storeu_ps(y + h * 8, out);
            } else {
                float lanes[8];
                _mm256_storeu_ps(lanes, out);
                qg_copy_first_bytes(y + h * 8, lanes, left * (int)sizeof(float));
            }
        }
    }
}

/// qg_w4y_tile_by a chunk at a time: the tiles of every path.
QG_W4Y_INLINE void qg_w4y_tile(const qg_w4_args *a, int64_t m0, int64_t n0, int cols, const int R, const int NH,
                               const int PF) {
    qg_w4y_tile_by(a, m0, n0, cols, R, NH, PF, QG_W4Y_BY_CHUNKS);
}

#endif
