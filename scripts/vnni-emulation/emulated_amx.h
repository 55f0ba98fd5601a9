// Software stand-ins for the AMX tile intrinsics kernel_amxint8.c uses: eight
// tiles of up to 16 rows × 64 bytes per thread, configured, loaded, multiplied
// (TDPBUSD, TDPBSSD) and stored in plain C, so that the amxint8 kernel's logic
// (packing, K blocks and the zero-padded tail, the 2 × 2 tile blocking, the
// stores and the epilogue) runs on a CPU without AMX (scripts/check-vnni-emulated,
// which force-includes this file with QG_EMULATE_AMX). check_stand_ins.c
// compares them with the instructions on a CPU that has them.
//
// Where the hardware faults (LDTILECFG's #GP on a configuration it does not
// take, the tile instructions' #UD with no configuration loaded or with
// shapes that do not fit together), the stand-ins stop the process with the
// rule broken, so that the emulation cannot pass code a real CPU would
// trap in (Intel's AMX reference: LDTILECFG; TDPBUSD/TDPBSSD, AMX-E4).
#ifndef QG_EMULATED_AMX_H
#define QG_EMULATED_AMX_H

#include <immintrin.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct qg_emu_tiles {
    int configured; // palette 1 loaded and not released
    int rows[8], colsb[8];
    uint8_t t[8][16][64];
} qg_emu_tiles;

static _Thread_local qg_emu_tiles qg_emu_amx;

/// What the hardware would trap on: the instruction and the rule.
static inline void qg_emu_amx_fault(const char *instruction, const char *rule) {
    fprintf(stderr, "emulated AMX: %s would fault on hardware: %s\n", instruction, rule);
    abort();
}

/// LDTILECFG: palette 1 (byte 0), bytes per row at 16 + 2i, rows at 48 + i; tiles zeroed.
/// Palette 0 releases the tiles (the rest of the bytes unread); palette 1
/// with a reserved byte set, more than 64 bytes or 16 rows, or a tile with
/// rows but no bytes (or bytes but no rows) is #GP, as is any other palette.
/// The start row (byte 1, for restarting an interrupted load) is taken as
/// the hardware takes it, and ignored: the library never sets one.
static inline void qg_emu_tile_loadconfig(const void *config) {
    const uint8_t *c = config;
    if (c[0] > 1) qg_emu_amx_fault("LDTILECFG", "a palette other than 0 or 1");
    memset(&qg_emu_amx, 0, sizeof qg_emu_amx);
    if (c[0] == 0) return;
    for (int i = 2; i < 64; i++)
        if ((i < 16 || (i >= 32 && i < 48) || i >= 56) && c[i] != 0) qg_emu_amx_fault("LDTILECFG", "a reserved byte set");
    for (int i = 0; i < 8; i++) {
        qg_emu_amx.colsb[i] = c[16 + 2 * i] | (c[17 + 2 * i] << 8);
        qg_emu_amx.rows[i] = c[48 + i];
        if (qg_emu_amx.colsb[i] > 64) qg_emu_amx_fault("LDTILECFG", "a tile row of more than 64 bytes");
        if (qg_emu_amx.rows[i] > 16) qg_emu_amx_fault("LDTILECFG", "a tile of more than 16 rows");
        if ((qg_emu_amx.colsb[i] == 0) != (qg_emu_amx.rows[i] == 0))
            qg_emu_amx_fault("LDTILECFG", "a tile with rows but no bytes, or bytes but no rows");
    }
    qg_emu_amx.configured = 1;
}

static inline void qg_emu_tile_release(void) { memset(&qg_emu_amx, 0, sizeof qg_emu_amx); }

/// The tile instructions' #UD without a configuration (before LDTILECFG, or
/// after TILERELEASE) or with a tile number past the palette's eight.
static inline void qg_emu_tile_check(const char *instruction, int t) {
    if (!qg_emu_amx.configured) qg_emu_amx_fault(instruction, "no tile configuration loaded");
    if (t < 0 || t > 7) qg_emu_amx_fault(instruction, "a tile number past 7");
}

static inline void qg_emu_tile_zero(int t) {
    qg_emu_tile_check("TILEZERO", t);
    memset(qg_emu_amx.t[t], 0, sizeof qg_emu_amx.t[t]);
}

/// TILELOADD: rows[t] rows of colsb[t] bytes, `stride` bytes apart; the rest of each row zero.
static inline void qg_emu_tile_loadd(int t, const void *base, int64_t stride) {
    qg_emu_tile_check("TILELOADD", t);
    memset(qg_emu_amx.t[t], 0, sizeof qg_emu_amx.t[t]);
    for (int r = 0; r < qg_emu_amx.rows[t]; r++)
        memcpy(qg_emu_amx.t[t][r], (const uint8_t *)base + r * stride, (size_t)qg_emu_amx.colsb[t]);
}

static inline void qg_emu_tile_stored(int t, void *base, int64_t stride) {
    qg_emu_tile_check("TILESTORED", t);
    for (int r = 0; r < qg_emu_amx.rows[t]; r++)
        memcpy((uint8_t *)base + r * stride, qg_emu_amx.t[t][r], (size_t)qg_emu_amx.colsb[t]);
}

/// TDPBxxD: c[m][n] += Σ_k Σ_i A[m][4k + i]·B[k][4n + i], in wrapping int32;
/// A unsigned when `a_unsigned`, B signed (the two products the kernel uses).
/// #UD unless the three tiles differ and their shapes fit: C's rows are
/// A's, A's row is 4·(B's rows) bytes, C's row is B's, both multiples of 4.
static inline void qg_emu_tile_dp(int c, int a, int b, int a_unsigned) {
    const char *const name = a_unsigned ? "TDPBUSD" : "TDPBSSD";
    qg_emu_tile_check(name, c);
    qg_emu_tile_check(name, a);
    qg_emu_tile_check(name, b);
    if (c == a || c == b || a == b) qg_emu_amx_fault(name, "two operands in one tile");
    if (qg_emu_amx.rows[c] != qg_emu_amx.rows[a]) qg_emu_amx_fault(name, "C's rows other than A's");
    if (qg_emu_amx.colsb[c] % 4 != 0 || qg_emu_amx.colsb[a] % 4 != 0)
        qg_emu_amx_fault(name, "C's or A's row not a whole number of 4-byte elements");
    if (qg_emu_amx.colsb[a] / 4 != qg_emu_amx.rows[b]) qg_emu_amx_fault(name, "A's row other than 4 bytes per row of B");
    if (qg_emu_amx.colsb[c] != qg_emu_amx.colsb[b]) qg_emu_amx_fault(name, "C's row other than B's");
    const int m_rows = qg_emu_amx.rows[c], n_cols = qg_emu_amx.colsb[c] / 4, k_groups = qg_emu_amx.colsb[a] / 4;
    for (int m = 0; m < m_rows; m++)
        for (int n = 0; n < n_cols; n++) {
            int32_t acc;
            memcpy(&acc, &qg_emu_amx.t[c][m][4 * n], 4);
            uint32_t sum = (uint32_t)acc;
            for (int k = 0; k < k_groups; k++)
                for (int i = 0; i < 4; i++) {
                    const uint8_t x = qg_emu_amx.t[a][m][4 * k + i];
                    const int32_t xv = a_unsigned ? (int32_t)x : (int32_t)(int8_t)x;
                    sum += (uint32_t)(xv * (int32_t)(int8_t)qg_emu_amx.t[b][k][4 * n + i]);
                }
            acc = (int32_t)sum;
            memcpy(&qg_emu_amx.t[c][m][4 * n], &acc, 4);
        }
}

#ifdef QG_EMULATE_AMX
#undef _tile_loadconfig
#define _tile_loadconfig qg_emu_tile_loadconfig
#undef _tile_release
#define _tile_release qg_emu_tile_release
#undef _tile_zero
#define _tile_zero qg_emu_tile_zero
#undef _tile_loadd
#define _tile_loadd qg_emu_tile_loadd
#undef _tile_stored
#define _tile_stored qg_emu_tile_stored
#undef _tile_dpbusd
#define _tile_dpbusd(c, a, b) qg_emu_tile_dp(c, a, b, 1)
#undef _tile_dpbssd
#define _tile_dpbssd(c, a, b) qg_emu_tile_dp(c, a, b, 0)
#endif

#endif
