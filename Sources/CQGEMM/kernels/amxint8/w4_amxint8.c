// The amxint8 path's 4-bit-weight (W4A8) tiles.
//
// The main tile, up to 128 rows × 32 channels, runs TDPBSSD on int8
// activations and int8 weights. Per group it unpacks each panel's chunks
// once per sweep (the whole 16-row passes, then a tail pass of 9–15 rows if
// there is one), for all the sweep's rows, into B tiles in L1: a chunk's low nibbles are
// exactly one B-tile row (16 channels × 4 K, the VNNI layout), its high
// nibbles the next, and u − 8 is q_W itself, so no offset term is needed
// (both operands are signed). A K block is 64 values, or the whole group
// when it is shorter (the tiles are configured that narrow); rows past the
// group's K stay zero, so the last block of a longer group may read the
// activations after it: they meet zero weights. The activation tiles are
// read in place from the prepared rows (qgemm.h guarantees 64 bytes past any
// group's start).
//
// The rows run in passes of 16, and the passes' sum tiles alternate between
// two pairs, so one pass's tile stores overlap the next pass's TDPBSSDs.
// Once per group each sum is converted and fused into its float sum with the
// group's scales, as the contract orders them; a pass's sums are fused one
// pass later, while the tile unit works. Per group, that store and fusion is
// what the 4-bit tile pays beyond the int8 one, so short groups cost most.
//
// The tile configuration depends on the rows and the group, so each sweep
// loads its own and the call releases the tiles after. The float sums (16
// KB), and each sweep's integer sums (16 KB, of which two passes' 4 KB are
// touched unless a group runs in parts) and unpacked weights (8 KB) live on
// the stack: tens of KB, well within a thread's stack. Calls of 8 rows or fewer,
// decode included, take the 512-bit tile of ../x86/w4_zmm.h instead: they
// would fill a fraction of a tile's 16 rows.
#include "kernel.h"

#if defined(__x86_64__)
#include <immintrin.h>
#include <string.h>

#ifndef QG_AMX_TARGET
#define QG_AMX_TARGET "avx2,avx512f,avx512bw,avx512vnni,amx-tile,amx-int8"
#endif
#define QG_W4Z_INLINE static inline QG_SPECIALIZE __attribute__((target(QG_AMX_TARGET)))
#define QG_W4A __attribute__((target(QG_AMX_TARGET)))

#include "../x86/w4_zmm.h"
#include "tile_config.h"
#include "w4_amxint8.h"

/// K blocks unpacked at a time: a group longer than that runs in parts,
/// its partial sums kept in memory between them.
enum { QG_W4A_SEG = 4 };

/// One K block of one panel as a B tile (`tile_rows` rows × 64 bytes):
/// `chunks` chunks (8 K each) unpacked to q_W = u − 8, then zero rows.
QG_W4Z_INLINE void qg_w4a_unpack(const uint8_t *w, int chunks, int tile_rows, int8_t *tile) {
    const __m512i nibble = _mm512_set1_epi8(0x0F), eight = _mm512_set1_epi8(8);
    for (int c = 0; c < chunks; c++) {
        const __m512i v = _mm512_loadu_si512((const void *)(w + 64 * c));
        _mm512_storeu_si512((void *)(tile + 128 * c), _mm512_sub_epi8(_mm512_and_si512(v, nibble), eight));
        _mm512_storeu_si512((void *)(tile + 128 * c + 64),
                            _mm512_sub_epi8(_mm512_and_si512(_mm512_srli_epi16(v, 4), nibble), eight));
    }
    for (int r = 2 * chunks; r < tile_rows; r++) _mm512_storeu_si512((void *)(tile + 64 * r), _mm512_setzero_si512());
}

/// Tiles 0 and 1 sum even passes for panels 0 and 1, tiles 2 and 3 odd
/// passes; tile 4 holds a pass's activations (`rows` × kb bytes), tiles 6
/// and 7 the panels' weights (kb / 4 rows of 16 channels × 4 K).
QG_W4Z_INLINE void qg_w4a_configure(int rows, int kb) {
    qg_amx_config config = {.palette = 1};
    for (int t = 0; t < 5; t++) config.rows[t] = (uint8_t)rows;
    config.rows[6] = config.rows[7] = (uint8_t)(kb / 4);
    for (int t = 0; t < 8; t++) config.colsb[t] = config.rows[t] == 0 ? 0 : t == 4 ? (uint16_t)kb : 64;
    _tile_loadconfig(&config);
}

/// One pass's integer sums of group `g`, fused into its float sums in the
/// contract's order: s = fma(S_W, float(acc), s).
QG_W4Z_INLINE void qg_w4a_fuse(int32_t (*c)[32], int rows, float (*s)[32], const uint16_t *const *ws, int64_t g,
                               const int NP) {
    for (int p = 0; p < NP; p++) {
        const __m512 scale = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(ws[p] + g * QG_W4_PANEL_N)));
        for (int r = 0; r < rows; r++) {
            const __m512 sum = _mm512_cvtepi32_ps(_mm512_load_si512((const void *)&c[r][16 * p]));
            _mm512_store_ps(&s[r][16 * p], _mm512_fmadd_ps(scale, sum, _mm512_load_ps(&s[r][16 * p])));
        }
    }
}

/// One pass over the blocks [b0, b1) of the unpacked part, into sum tiles T0
/// and T1 (a macro: tile numbers must be constants; it uses the sweep's
/// locals a, x, b, c, cp, kb, b0, b1, rows, s, ws, NP, pending, pending_g
/// and its slot macro). Its sums start at zero
/// in a group's first part, else from the previous part's stored ones. The
/// pending pass's sums are fused after the TDPBSSDs are issued and before
/// this pass's store, so no buffer is overwritten unread.
#define QG_W4A_PASS(T0, T1)                                                                                           \
    do {                                                                                                              \
        if (b0 == 0) {                                                                                                \
            _tile_zero(T0);                                                                                           \
            if (NP > 1) _tile_zero(T1);                                                                               \
        } else {                                                                                                      \
            _tile_loadd(T0, &cp[0][0], 128);                                                                          \
            if (NP > 1) _tile_loadd(T1, &cp[0][16], 128);                                                             \
        }                                                                                                             \
        for (int64_t i = b0; i < b1; i++) {                                                                           \
            _tile_loadd(4, x + i * kb, a->ldx);                                                                       \
            _tile_loadd(6, b[i - b0][0], 64);                                                                         \
            if (NP > 1) _tile_loadd(7, b[i - b0][1], 64);                                                             \
            _tile_dpbssd(T0, 4, 6);                                                                                   \
            if (NP > 1) _tile_dpbssd(T1, 4, 7);                                                                       \
        }                                                                                                             \
        if (pending >= 0) qg_w4a_fuse(c[slot(pending)], rows, s + 16 * pending, ws, pending_g, NP);                    \
        pending = -1;                                                                                                 \
        _tile_stored(T0, &cp[0][0], 128);                                                                             \
        if (NP > 1) _tile_stored(T1, &cp[0][16], 128);                                                                \
    } while (0)

/// `passes` passes of `rows` rows each (16, or one shorter pass), from row
/// m0, over every group; s holds their float sums.
QG_W4Z_INLINE void qg_w4a_sweep(const qg_w4_args *a, int passes, int rows, int64_t m0, const uint8_t *const *w,
                                const uint16_t *const *ws, float (*s)[32], const int NP) {
    const int64_t group = a->group, groups = qg_w4_groups(a->k, group), chunks = group / QG_W4_K_CHUNK;
    const int kb = group < 64 ? (int)group : 64, block_chunks = kb / QG_W4_K_CHUNK;
    const int64_t blocks = (group + kb - 1) / kb;
    int32_t c[QG_W4A_MR / 16][16][32] __attribute__((aligned(64)));
    int8_t b[QG_W4A_SEG][2][16 * 64] __attribute__((aligned(64)));
    qg_w4a_configure(rows, kb);
    // A pass's sum buffer: its own when a group runs in parts (the sums stay
    // in memory between parts), else two alternating by pass, which keeps L1 free.
    const int parted = blocks > QG_W4A_SEG;
#define slot(pass) (parted ? (pass) : (pass) & 1)
    int pending = -1;
    int64_t pending_g = 0;
    for (int64_t g = 0; g < groups; g++) {
        for (int64_t b0 = 0; b0 < blocks; b0 += QG_W4A_SEG) {
            const int64_t b1 = b0 + QG_W4A_SEG < blocks ? b0 + QG_W4A_SEG : blocks;
            for (int64_t i = b0; i < b1; i++) {
                const int64_t left = group - i * kb;
                const int here = (int)((left < kb ? left : kb) / QG_W4_K_CHUNK);
                for (int p = 0; p < NP; p++)
                    qg_w4a_unpack(w[p] + (g * chunks + i * block_chunks) * 64, here, kb / 4, b[i - b0][p]);
            }
            for (int pass = 0; pass < passes; pass++) {
                int32_t(*cp)[32] = c[slot(pass)];
                const int8_t *x = a->x + (m0 + 16 * pass) * a->ldx + g * group;
                if (pass & 1) QG_W4A_PASS(2, 3);
                else QG_W4A_PASS(0, 1);
                if (b1 == blocks) {
                    pending = pass;
                    pending_g = g;
                }
            }
        }
    }
    if (pending >= 0) qg_w4a_fuse(c[slot(pending)], rows, s + 16 * pending, ws, pending_g, NP);
#undef slot
}

/// Up to 128 rows × up to 32 channels (NP panels): passes of 16 rows, then
/// the rest (more than 8 rows by one shorter pass, else by the 512-bit tile).
QG_W4Z_INLINE void qg_w4a_tile(const qg_w4_args *a, int rows, int64_t m0, int64_t n0, int cols, const int NP) {
    const uint8_t *w[2];
    const uint16_t *ws[2];
    for (int p = 0; p < NP; p++) {
        w[p] = qg_w4_panel_weights(a, qg_w4_tile_panel(n0, p, cols));
        ws[p] = qg_w4_panel_scales(a, qg_w4_tile_panel(n0, p, cols));
    }
    float s[QG_W4A_MR][32] __attribute__((aligned(64)));
    const int full = rows / 16 * 16, rest = rows - full, amx_rows = rest > 8 ? rows : full;
    for (int r = 0; r < amx_rows; r++)
        for (int p = 0; p < NP; p++) _mm512_store_ps(&s[r][16 * p], _mm512_setzero_ps());
    if (full > 0) qg_w4a_sweep(a, full / 16, 16, m0, w, ws, s, NP);
    if (rest > 8) qg_w4a_sweep(a, 1, rest, m0 + full, w, ws, s + full, NP);
    _tile_release();
    for (int r = 0; r < amx_rows; r++) qg_w4z_store_row(a, m0 + r, n0, cols, NP, s[r]);
    if (rest > 0 && rest <= 8) qg_w4z_rows(a, rest, m0 + full, n0, cols);
}

QG_W4A void qg_w4_128x32c8__amxint8(const qg_w4_args *a, int rows, int64_t m0, int64_t n0, int cols) {
    // 8 rows or fewer fill a fraction of a tile's 16 rows, and its per-group
    // store and conversion then cost more than they save (4 and 8 rows ran
    // at half the 512-bit tile's speed), so they take the 512-bit tile.
    if (rows <= 8) {
        qg_w4z_rows(a, rows, m0, n0, cols);
        return;
    }
    if (cols > QG_W4_PANEL_N) qg_w4a_tile(a, rows, m0, n0, cols, 2);
    else qg_w4a_tile(a, rows, m0, n0, cols, 1);
}

QG_W4A void qg_w4_1x64c8__amxint8(const qg_w4_args *a, int rows, int64_t m0, int64_t n0, int cols) {
    (void)rows;
    qg_w4z_decode(a, m0, n0, cols, 4);
}
#endif
