// The 512-bit 4-bit-weight (W4A8) tile, shared by the avx512vnni path (all
// its 4-bit tiles) and the amxint8 path (its decode tile). The includer
// defines QG_W4Z_INLINE, its QG_SPECIALIZE attributes with an AVX-512 VNNI
// target.
//
// One 64-byte chunk of the W4 layout is 16 channels × 8 K. Its low nibbles,
// masked out with one AND, are a VPDPBUSD operand for K 0…3 of the chunk, and
// its high nibbles, after a 16-bit shift right by 4 and the same AND (or, in
// tiles that keep their sums apart, in place: below), the one for K 4…7. The
// nibbles are the unsigned operand (u = q_W + 8 ∈ [0, 15]); the activations,
// broadcast 4 bytes at a time, the signed one. Each group's
// int32 sums start at the row's offset term (−8·Σ q_X), which takes the +8
// back, so a sum is exactly Σ q_W·q_X. Then, once per group, one conversion
// and one FMA with the group's 16 scales (binary16, widened by VCVTPH2PS,
// which is exact), as the contract orders them. With few chains (R·NP ≤ 4)
// the low and high nibbles go into separate sums, so that twice the VPDPBUSD
// chains hide its latency; the float sums live in L1, touched once per group.
// Those separate high sums take the high nibbles in place (one AND with 0xF0:
// 16·u), and the group's sum is divided by 16 once, by an arithmetic shift
// that is exact because every term is a multiple of 16 (and the sum covers
// the group's G/2 high-nibble values: |16·Σ u·x| ≤ 16·15·128·2048 < 2^26 for
// groups up to QG_W4_MAX_GROUP). That drops a shift per chunk and panel: on
// CPUs that split a zmm operation in two 256-bit halves (Zen 4) the
// unpacking, not VPDPBUSD, bounds decode. The decode tile does this (four
// panels side by side, R·NP = 4, or one at a time: qg_w4z_decode), and so
// do the 8×32 tile at one or two rows (R·NP ≤ 4 sums) and the two-row calls
// that take one panel at a time (qg_w4z_rows). The other
// tiles take the high nibbles down with a shift and an AND, or, where the
// includer defines QG_W4Z_GFNI (and a target with GFNI), with one
// GF2P8AFFINEQB (qg_w4z_high_nibbles).
#ifndef QG_W4_ZMM_H
#define QG_W4_ZMM_H

#include <immintrin.h>
#include <string.h>

QG_W4Z_INLINE __m512i qg_w4z_broadcast(const int8_t *x) {
    int32_t word;
    memcpy(&word, x, sizeof word);
    return _mm512_set1_epi32(word);
}

/// Each byte's high nibble as a byte 0…15. With QG_W4Z_GFNI one
/// GF2P8AFFINEQB, whose bit matrix moves bits 4…7 to 0…3 and clears the
/// rest; else a 16-bit shift and an AND. Intel's server cores run both
/// operations, like VPDPBUSD, on ports 0 and 5, so the one instruction
/// saved per chunk and panel is a VPDPBUSD slot.
QG_W4Z_INLINE __m512i qg_w4z_high_nibbles(__m512i v, __m512i nibble) {
#ifdef QG_W4Z_GFNI
    (void)nibble;
    // Row i of the matrix (byte 7 − i of each qword) picks input bit i + 4
    // for output bit i < 4; rows 4…7 are zero.
    return _mm512_gf2p8affine_epi64_epi8(v, _mm512_set1_epi64(0x1020408000000000ll), 0);
#else
    return _mm512_and_si512(_mm512_srli_epi16(v, 4), nibble);
#endif
}

/// Row m's outputs of a tile at n0: y = fma(S_X[m], s, bias) for its `cols`
/// channels, from the float sums `s` (NP panels of 16, consecutive).
QG_W4Z_INLINE void qg_w4z_store_row(const qg_w4_args *a, int64_t m, int64_t n0, int cols, int NP, const float *s) {
    const __m512 xs = _mm512_set1_ps(a->x_scale[m]);
    float *y = a->y + m * a->ldy + n0;
    for (int p = 0; p < NP; p++) {
        const int left = cols - p * QG_W4_PANEL_N;
        if (left <= 0) break;
        const __m512 b = a->bias ? _mm512_loadu_ps(a->bias + n0 + p * QG_W4_PANEL_N) : _mm512_setzero_ps();
        const __m512 out = _mm512_fmadd_ps(xs, _mm512_loadu_ps(s + p * QG_W4_PANEL_N), b);
        if (left >= QG_W4_PANEL_N) _mm512_storeu_ps(y + p * QG_W4_PANEL_N, out);
        else _mm512_mask_storeu_ps(y + p * QG_W4_PANEL_N, (__mmask16)((1u << left) - 1), out);
    }
}

/// How far ahead the tiles of two panels (the 8×32 tile; on Zen 5 not in
/// calls of 4 to 8 rows, QG_W4Z_SWEEP_MIN_ROWS, nor in calls of two rows
/// whose weights exceed the L2, which take QG_W4Z_DECODE_PREFETCH_BYTES) prefetch
/// each panel's nibbles: one prefetch per 64-byte chunk and panel. With the
/// caches evicted, two streams alone left the memory idle between their
/// misses. Zen 5, one thread, group 32, caches evicted, fastest of three
/// interleaved rounds, GOP/s (none → 2 KiB → 4 KiB ahead): 8×4096×4096 368
/// → 613 → 684, 32×4096×4096 591 → 741 → 769, 4×4096×4096 256 → 371 (2 KiB),
/// 2×4096×4096 169 → 208 → 209; warm 128×4096×4096 782 → 807 → 832 and
/// 8×4096×4096 869 → 871 → 859. Zen 4, the same (none → 4 KiB ahead, three
/// rounds): caches evicted 8×4096×4096 279–298 → 333–335, 32× 344–349 →
/// 353–361, 128× 336–346 → 353–364, 4× 256–260 → 257–270; warm 128× 349–359
/// → 365–370, 8× 379 → 381–383. Other distances measured on Zen 5 only.
enum { QG_W4Z_PREFETCH_BYTES = 4096 };

/// How far ahead the decode tile (qg_w4z_decode: one panel at a time)
/// prefetches its one stream of nibbles. Zen 5, one thread, group 32, caches
/// evicted, fastest of three interleaved rounds, the weights' bytes per second
/// over a plain read of them (2, 4, 8, 12 and 16 KiB ahead): 1×4096×4096
/// 0.86, 0.92–0.94, 0.94–0.95, 0.95, 0.92; 1×11008×4096 0.84, 0.93–0.94,
/// 0.97, 0.95, 0.94. Without it, one panel at a time read 0.83 and 0.82, no
/// better than four side by side. Not measured on other CPUs.
enum { QG_W4Z_DECODE_PREFETCH_BYTES = 8192 };

/// Calls of this many rows up to QG_W4Z_SWEEP_MAX_ROWS (one row group of the
/// 8×32 tile: their weights come from memory once) have the two-panel tile
/// prefetch the next tile's panels in address order instead of its own 4 KiB
/// ahead, where the CPU reads one stream faster than several
/// (qg_cpu_one_stream_decode: Zen 5). Memory then sees one sequential stream,
/// the prefetches walking the next 2·16·K/2 bytes while the tile reads its
/// own, which the walk before it brought in. Zen 5, one thread, group 32,
/// caches evicted, fastest of three interleaved rounds, GOP/s, own → walk:
/// 2×4096×4096 212–223 → 197–206, 3× 325 → 313, 4× 405–415 → 441–463, 6×
/// 588 → 750, 8× 658–678 → 776–796, 8×11008×4096 801 → 857; warm 4×4096×4096
/// 815 → 780, 8×4096×4096 888 → 891. So from four rows.
enum { QG_W4Z_SWEEP_MIN_ROWS = 4, QG_W4Z_SWEEP_MAX_ROWS = 8 };

/// R rows × NP panels (both compile-time constants) of one tile.
QG_W4Z_INLINE void qg_w4z_tile(const qg_w4_args *a, int64_t m0, int64_t n0, int cols, const int R, const int NP) {
    // Separate sums for the high nibbles when the tile has few chains.
    const int split = R * NP <= 4;
    const int64_t groups = qg_w4_groups(a->k, a->group), chunks = a->group / QG_W4_K_CHUNK;
    const uint8_t *w[4];
    const uint16_t *ws[4];
    for (int p = 0; p < NP; p++) {
        w[p] = qg_w4_panel_weights(a, qg_w4_tile_panel(n0, p, cols));
        ws[p] = qg_w4_panel_scales(a, qg_w4_tile_panel(n0, p, cols));
    }
    const __m512i nibble = _mm512_set1_epi8(0x0F), high_nibble = _mm512_set1_epi8((char)0xF0);
    // Where the tiles of two panels prefetch: each panel 4 KiB ahead, or the
    // next tile's panels in address order (above). Past the last panel the
    // walk's addresses lie past the weights: prefetches never fault.
    const int sweep = NP <= 2 && a->m >= QG_W4Z_SWEEP_MIN_ROWS && a->m <= QG_W4Z_SWEEP_MAX_ROWS &&
                      qg_cpu_one_stream_decode();
    const uint8_t *const next = qg_w4_panel_weights(a, n0 / QG_W4_PANEL_N + NP);
    const int8_t *x[8];
    const int32_t *offset[8];
    // The float sums live in L1, not registers: each is touched once per
    // group, and the registers go to the int32 sums of more rows.
    float s[8][4][16] __attribute__((aligned(64)));
    for (int r = 0; r < R; r++) {
        x[r] = a->x + (m0 + r) * a->ldx;
        offset[r] = a->x_offset + (m0 + r) * groups;
        for (int p = 0; p < NP; p++) _mm512_store_ps(s[r][p], _mm512_setzero_ps());
    }
    for (int64_t g = 0; g < groups; g++) {
        __m512i lo_sum[8][4], hi_sum[8][4];
        for (int r = 0; r < R; r++) {
            const __m512i start = _mm512_set1_epi32(offset[r][g]);
            for (int p = 0; p < NP; p++) {
                lo_sum[r][p] = start;
                if (split) hi_sum[r][p] = _mm512_setzero_si512();
            }
        }
        const int64_t kg = g * a->group;
        for (int64_t c = 0; c < chunks; c++) {
            __m512i lo[4], hi[4];
            for (int p = 0; p < NP; p++) {
                // Four panels side by side (decode off Zen 5) ran 5–7 %
                // slower from memory with a prefetch on Zen 5, and on Zen 4
                // (weights of the L3's size and more, one thread) 0.51–0.63
                // of a plain read against 0.69–0.85 without, so only the
                // tiles of two panels take one.
                if (NP <= 2)
                    _mm_prefetch(sweep ? (const char *)(next + ((g * chunks + c) * NP + p) * 64)
                                       : (const char *)(w[p] + (g * chunks + c) * 64 + QG_W4Z_PREFETCH_BYTES),
                                 _MM_HINT_T0);
                const __m512i v = _mm512_loadu_si512((const void *)(w[p] + (g * chunks + c) * 64));
                lo[p] = _mm512_and_si512(v, nibble);
                hi[p] = split ? _mm512_and_si512(v, high_nibble) : qg_w4z_high_nibbles(v, nibble);
            }
            for (int r = 0; r < R; r++) {
                const __m512i x0 = qg_w4z_broadcast(x[r] + kg + c * 8), x1 = qg_w4z_broadcast(x[r] + kg + c * 8 + 4);
                for (int p = 0; p < NP; p++) {
                    lo_sum[r][p] = _mm512_dpbusd_epi32(lo_sum[r][p], lo[p], x0);
                    if (split) hi_sum[r][p] = _mm512_dpbusd_epi32(hi_sum[r][p], hi[p], x1);
                    else lo_sum[r][p] = _mm512_dpbusd_epi32(lo_sum[r][p], hi[p], x1);
                }
            }
        }
        for (int p = 0; p < NP; p++) {
            const __m512 scale = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(ws[p] + g * QG_W4_PANEL_N)));
            for (int r = 0; r < R; r++) {
                const __m512i sum =
                    split ? _mm512_add_epi32(lo_sum[r][p], _mm512_srai_epi32(hi_sum[r][p], 4)) : lo_sum[r][p];
                _mm512_store_ps(s[r][p], _mm512_fmadd_ps(scale, _mm512_cvtepi32_ps(sum), _mm512_load_ps(s[r][p])));
            }
        }
    }
    for (int r = 0; r < R; r++) qg_w4z_store_row(a, m0 + r, n0, cols, NP, &s[r][0][0]);
}

/// Chunk c of one panel's group (nibbles at wg, activations at xg) added to
/// one row's sums: the low nibbles to `lo`, the high ones in place (16·u) to
/// `hi`.
QG_W4Z_INLINE void qg_w4z_panel_chunk(const uint8_t *wg, const int8_t *xg, int64_t c, __m512i *lo, __m512i *hi) {
    const __m512i v = _mm512_loadu_si512((const void *)(wg + c * 64));
    *lo = _mm512_dpbusd_epi32(*lo, _mm512_and_si512(v, _mm512_set1_epi8(0x0F)), qg_w4z_broadcast(xg + c * 8));
    *hi = _mm512_dpbusd_epi32(*hi, _mm512_and_si512(v, _mm512_set1_epi8((char)0xF0)), qg_w4z_broadcast(xg + c * 8 + 4));
}

/// R rows (1 or 2, a compile-time constant) × one panel of 16 channels, the
/// whole of K: a single stream of nibbles, read from start to end. Four sums
/// a row (low and high nibbles of even and odd chunks) hide VPDPBUSD's
/// latency; int32 addition of exact terms (no sum can overflow: see the bound
/// above) makes their order free, so the group's sum is the same number as
/// the reference's. The rows share each chunk's load and ANDs, but each
/// activation broadcast feeds one VPDPBUSD (two in the tiles of two panels):
/// Zen 5, one thread, group 32, 4096×4096, weights in the L3, GOP/s, two
/// panels → one at a time: 2 rows 559–591 → 514–553, 3 rows 762 → 647
/// (caches evicted: 206–213 → 264–268 and 325 → 383); with the weights in the L2
/// (2×1024×1024) 634 → 547. Hence calls of one row, and of two whose weights
/// exceed the L2 (qg_w4z_decode, qg_w4z_rows).
QG_W4Z_INLINE void qg_w4z_panel_rows(const qg_w4_args *a, int64_t m0, const int R, int64_t n0, int cols) {
    const int64_t groups = qg_w4_groups(a->k, a->group), chunks = a->group / QG_W4_K_CHUNK;
    const int64_t panel = n0 / QG_W4_PANEL_N;
    const uint8_t *w = qg_w4_panel_weights(a, panel);
    const uint16_t *ws = qg_w4_panel_scales(a, panel);
    const int8_t *x[2];
    const int32_t *offset[2];
    __m512 s[2];
    for (int r = 0; r < R; r++) {
        x[r] = a->x + (m0 + r) * a->ldx;
        offset[r] = a->x_offset + (m0 + r) * groups;
        s[r] = _mm512_setzero_ps();
    }
    for (int64_t g = 0; g < groups; g++) {
        __m512i lo0[2], lo1[2], hi0[2], hi1[2];
        for (int r = 0; r < R; r++) {
            lo0[r] = _mm512_set1_epi32(offset[r][g]);
            lo1[r] = hi0[r] = hi1[r] = _mm512_setzero_si512();
        }
        const uint8_t *wg = w + g * chunks * 64;
        const int64_t kg = g * a->group;
        int64_t c = 0;
        // One prefetch per chunk, QG_W4Z_DECODE_PREFETCH_BYTES ahead.
        for (; c + 2 <= chunks; c += 2) {
            _mm_prefetch((const char *)(wg + c * 64 + QG_W4Z_DECODE_PREFETCH_BYTES), _MM_HINT_T0);
            _mm_prefetch((const char *)(wg + c * 64 + 64 + QG_W4Z_DECODE_PREFETCH_BYTES), _MM_HINT_T0);
            for (int r = 0; r < R; r++) {
                qg_w4z_panel_chunk(wg, x[r] + kg, c, &lo0[r], &hi0[r]);
                qg_w4z_panel_chunk(wg, x[r] + kg, c + 1, &lo1[r], &hi1[r]);
            }
        }
        if (c < chunks) {
            _mm_prefetch((const char *)(wg + c * 64 + QG_W4Z_DECODE_PREFETCH_BYTES), _MM_HINT_T0);
            for (int r = 0; r < R; r++) qg_w4z_panel_chunk(wg, x[r] + kg, c, &lo0[r], &hi0[r]);
        }
        const __m512 scale = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(ws + g * QG_W4_PANEL_N)));
        for (int r = 0; r < R; r++) {
            const __m512i sum = _mm512_add_epi32(_mm512_add_epi32(lo0[r], lo1[r]),
                                                 _mm512_srai_epi32(_mm512_add_epi32(hi0[r], hi1[r]), 4));
            s[r] = _mm512_fmadd_ps(scale, _mm512_cvtepi32_ps(sum), s[r]);
        }
    }
    for (int r = 0; r < R; r++) {
        float out[QG_W4_PANEL_N] __attribute__((aligned(64)));
        _mm512_store_ps(out, s[r]);
        qg_w4z_store_row(a, m0 + r, n0, cols, 1, out);
    }
}

/// R rows × up to NP panels, one panel after the other (qg_w4z_panel_rows).
QG_W4Z_INLINE void qg_w4z_panels_in_turn(const qg_w4_args *a, int64_t m0, const int R, int64_t n0, int cols,
                                         const int NP) {
    for (int p = 0; p < NP && p * QG_W4_PANEL_N < cols; p++)
        qg_w4z_panel_rows(a, m0, R, n0 + p * QG_W4_PANEL_N, cols - p * QG_W4_PANEL_N);
}

/// The decode tile: one row × up to NP panels. Where the CPU is known to
/// prefer it (qg_cpu_one_stream_decode: Zen 5), each panel is streamed alone,
/// one after the other, so that the nibbles, panel after panel in memory,
/// are read as one sequential stream (the scales, panel after panel too, as
/// a second); elsewhere qg_w4z_tile reads the panels side by side, four
/// streams a panel's bytes apart. On Zen 5 (group 32, one thread, caches
/// evicted) those came from memory at 0.78–0.87 of a plain read of their
/// bytes, with or without prefetching; one at a time, with
/// QG_W4Z_DECODE_PREFETCH_BYTES, at 0.93–0.97.
QG_W4Z_INLINE void qg_w4z_decode(const qg_w4_args *a, int64_t m0, int64_t n0, int cols, const int NP) {
    if (!qg_cpu_one_stream_decode()) {
        qg_w4z_tile(a, m0, n0, cols, 1, NP);
        return;
    }
    qg_w4z_panels_in_turn(a, m0, 1, n0, cols, NP);
}

/// Whether the call's packed weights (nibbles and scales) exceed
/// qg_cpu_two_row_stream_min_bytes (the L2).
QG_W4Z_INLINE int qg_w4z_weights_past_l2(const qg_w4_args *a) {
    const int64_t bytes = qg_w4_packed_bytes(a->n, a->k, a->group) +
                          (int64_t)sizeof(uint16_t) * qg_w4_scale_count(a->n, a->k, a->group);
    return bytes > qg_cpu_two_row_stream_min_bytes();
}

/// 1 to 8 rows (`rows`, a run-time count) × 2 panels: the R of qg_w4z_tile
/// made a compile-time constant, and calls of two rows one panel at a time
/// where that reads faster (qg_w4z_panel_rows).
QG_W4Z_INLINE void qg_w4z_rows(const qg_w4_args *a, int rows, int64_t m0, int64_t n0, int cols) {
    switch (rows) {
    case 1: qg_w4z_tile(a, m0, n0, cols, 1, 2); break;
    case 2:
        // Calls of two rows read their weights once: one panel at a time
        // there too where the CPU prefers one stream (above) and the weights
        // are larger than the L2 (so they come from the L3 or memory). The
        // call's M, not `rows`: the two-row tail of a longer call finds its
        // weights in the caches, left there by the rows before it. The limit
        // is one core's L2 whatever the threads: with two, each reads half
        // the weights (warm and in its L2, one at a time is slower there:
        // unmeasured, left so).
        if (a->m == 2 && qg_cpu_one_stream_decode() && qg_w4z_weights_past_l2(a))
            qg_w4z_panels_in_turn(a, m0, 2, n0, cols, 2);
        else qg_w4z_tile(a, m0, n0, cols, 2, 2);
        break;
    case 3: qg_w4z_tile(a, m0, n0, cols, 3, 2); break;
    case 4: qg_w4z_tile(a, m0, n0, cols, 4, 2); break;
    case 5: qg_w4z_tile(a, m0, n0, cols, 5, 2); break;
    case 6: qg_w4z_tile(a, m0, n0, cols, 6, 2); break;
    case 7: qg_w4z_tile(a, m0, n0, cols, 7, 2); break;
    default: qg_w4z_tile(a, m0, n0, cols, 8, 2); break;
    }
}

#endif
