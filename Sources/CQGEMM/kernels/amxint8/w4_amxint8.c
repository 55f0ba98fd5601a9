// The amxint8 path's 4-bit-weight (W4A8) tiles.
//
// The main tile, 32 rows × 32 channels, runs TDPBSSD on int8 activations and
// int8 weights. Per group and 64-K block it unpacks each panel's chunks into
// a B tile in L1: a chunk's low nibbles are exactly one B-tile row (16
// channels × 4 K, the VNNI layout), its high nibbles the next, and u − 8 is
// q_W itself, so no offset term is needed (both operands are signed). Rows
// past the group's K stay zero, so a block of a group shorter than 64 may
// read the activations after it: they meet zero weights. The activation
// tiles are read in place from the prepared rows (qgemm.h guarantees 64
// bytes past any group's start), 16 rows each, configured to the call's row
// count so no tile reads past the last row. Once per group the four
// accumulator tiles are stored, and each sum is converted and fused into its
// float sum with the group's scales, as the contract orders them.
//
// The tile configuration depends on the call's rows, so each call loads its
// own and releases the tiles after. Decode (one row) takes the 512-bit tile
// of ../x86/w4_zmm.h instead: a 1-row TDPBSSD would waste its 16-row array;
// so do groups under 64 K and calls of 8 rows or fewer (below).
#include "kernel.h"

#if defined(__x86_64__)
#include <immintrin.h>
#include <string.h>

#ifndef QG_AMX_TARGET
#define QG_AMX_TARGET "avx2,avx512f,avx512bw,avx512vnni,amx-tile,amx-int8"
#endif
#define QG_W4Z_INLINE static inline __attribute__((always_inline, target(QG_AMX_TARGET)))
#define QG_W4A __attribute__((target(QG_AMX_TARGET)))

#include "../x86/w4_zmm.h"
#include "tile_config.h"
#include "w4_amxint8.h"

/// One 64-K block of one panel as a B tile (16 rows × 64 bytes): `chunks`
/// chunks (8 K each) unpacked to q_W = u − 8, then zero rows.
QG_W4Z_INLINE void qg_w4a_unpack(const uint8_t *w, int chunks, int8_t *tile) {
    const __m512i nibble = _mm512_set1_epi8(0x0F), eight = _mm512_set1_epi8(8);
    for (int c = 0; c < chunks; c++) {
        const __m512i v = _mm512_loadu_si512((const void *)(w + 64 * c));
        _mm512_storeu_si512((void *)(tile + 128 * c), _mm512_sub_epi8(_mm512_and_si512(v, nibble), eight));
        _mm512_storeu_si512((void *)(tile + 128 * c + 64),
                            _mm512_sub_epi8(_mm512_and_si512(_mm512_srli_epi16(v, 4), nibble), eight));
    }
    for (int r = 2 * chunks; r < 16; r++) _mm512_storeu_si512((void *)(tile + 64 * r), _mm512_setzero_si512());
}

/// rows ≤ 32 (HALVES = 2 when rows > 16) × cols ≤ 32 channels (NP panels).
QG_W4Z_INLINE void qg_w4a_tile(const qg_w4_args *a, int rows, int64_t m0, int64_t n0, int cols, const int HALVES,
                               const int NP) {
    qg_amx_config config = {.palette = 1};
    const int top = rows < 16 ? rows : 16, bottom = rows - top;
    for (int t = 0; t < 8; t++) config.colsb[t] = 64;
    config.rows[0] = config.rows[1] = config.rows[4] = (uint8_t)top;      // sums and activations, rows 0–15
    config.rows[2] = config.rows[3] = config.rows[5] = (uint8_t)bottom;   // rows 16–31
    config.rows[6] = config.rows[7] = 16;                                 // weights: 16 × (16 channels × 4 K)
    for (int t = 0; t < 8; t++)
        if (config.rows[t] == 0) config.colsb[t] = 0;
    _tile_loadconfig(&config);

    const int64_t groups = qg_w4_groups(a->k, a->group), group = a->group;
    const int64_t chunks = group / QG_W4_K_CHUNK;
    const uint8_t *w[2];
    const uint16_t *ws[2];
    for (int p = 0; p < NP; p++) {
        w[p] = qg_w4_panel_weights(a, qg_w4_tile_panel(n0, p, cols));
        ws[p] = qg_w4_panel_scales(a, qg_w4_tile_panel(n0, p, cols));
    }
    const int8_t *x = a->x + m0 * a->ldx;
    float s[32][32] __attribute__((aligned(64)));
    int32_t c[32][32] __attribute__((aligned(64)));
    int8_t b[2][16 * 64] __attribute__((aligned(64)));
    for (int r = 0; r < rows; r++)
        for (int p = 0; p < NP; p++) _mm512_store_ps(&s[r][16 * p], _mm512_setzero_ps());
    for (int64_t g = 0; g < groups; g++) {
        _tile_zero(0);
        if (NP > 1) _tile_zero(1);
        if (HALVES > 1) _tile_zero(2);
        if (HALVES > 1 && NP > 1) _tile_zero(3);
        for (int64_t k0 = 0; k0 < group; k0 += 64) {
            const int here = (int)((group - k0 < 64 ? group - k0 : 64) / QG_W4_K_CHUNK);
            for (int p = 0; p < NP; p++) qg_w4a_unpack(w[p] + (g * chunks + k0 / QG_W4_K_CHUNK) * 64, here, b[p]);
            _tile_loadd(4, x + g * group + k0, a->ldx);
            if (HALVES > 1) _tile_loadd(5, x + 16 * a->ldx + g * group + k0, a->ldx);
            _tile_loadd(6, b[0], 64);
            if (NP > 1) _tile_loadd(7, b[1], 64);
            _tile_dpbssd(0, 4, 6);
            if (NP > 1) _tile_dpbssd(1, 4, 7);
            if (HALVES > 1) _tile_dpbssd(2, 5, 6);
            if (HALVES > 1 && NP > 1) _tile_dpbssd(3, 5, 7);
        }
        _tile_stored(0, &c[0][0], 128);
        if (NP > 1) _tile_stored(1, &c[0][16], 128);
        if (HALVES > 1) _tile_stored(2, &c[16][0], 128);
        if (HALVES > 1 && NP > 1) _tile_stored(3, &c[16][16], 128);
        for (int p = 0; p < NP; p++) {
            const __m512 scale = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(ws[p] + g * QG_W4_PANEL_N)));
            for (int r = 0; r < rows; r++) {
                const __m512 sum = _mm512_cvtepi32_ps(_mm512_load_si512((const void *)&c[r][16 * p]));
                _mm512_store_ps(&s[r][16 * p], _mm512_fmadd_ps(scale, sum, _mm512_load_ps(&s[r][16 * p])));
            }
        }
    }
    _tile_release();
    for (int r = 0; r < rows; r++) qg_w4z_store_row(a, m0 + r, n0, cols, NP, s[r]);
}

/// Up to 32 rows by the 512-bit tile, 8 rows at a time.
QG_W4Z_INLINE void qg_w4a_by_zmm(const qg_w4_args *a, int rows, int64_t m0, int64_t n0, int cols) {
    for (int r = 0; r < rows; r += 8) qg_w4z_rows(a, rows - r < 8 ? rows - r : 8, m0 + r, n0, cols);
}

QG_W4A void qg_w4_32x32c8__amxint8(const qg_w4_args *a, int rows, int64_t m0, int64_t n0, int cols) {
    // Groups under 64 K fill half a tile's K at most, and 8 rows or fewer a
    // fraction of its rows; the tiles' per-group store and conversion then
    // cost more than they save (128 rows at group 32: no faster than the
    // 512-bit tile; 4 and 8 rows: half its speed), so those take the 512-bit tile.
    if (a->group < 64 || rows <= 8) {
        qg_w4a_by_zmm(a, rows, m0, n0, cols);
        return;
    }
    if (rows > 16) {
        if (cols > QG_W4_PANEL_N) qg_w4a_tile(a, rows, m0, n0, cols, 2, 2);
        else qg_w4a_tile(a, rows, m0, n0, cols, 2, 1);
    } else {
        if (cols > QG_W4_PANEL_N) qg_w4a_tile(a, rows, m0, n0, cols, 1, 2);
        else qg_w4a_tile(a, rows, m0, n0, cols, 1, 1);
    }
}

QG_W4A void qg_w4_1x64c8__amxint8(const qg_w4_args *a, int rows, int64_t m0, int64_t n0, int cols) {
    (void)rows;
    qg_w4z_tile(a, m0, n0, cols, 1, 4);
}
#endif
