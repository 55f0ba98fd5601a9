// Software stand-ins for the AMX tile intrinsics kernel_amxint8.c uses: eight
// tiles of up to 16 rows × 64 bytes per thread, configured, loaded, multiplied
// (TDPBUSD, TDPBSSD) and stored in plain C, so that the amxint8 kernel's logic
// (packing, K blocks and the zero-padded tail, the 2 × 2 tile blocking, the
// stores and the epilogue) runs on a CPU without AMX (scripts/check-vnni-emulated,
// which force-includes this file with QG_EMULATE_AMX). check_stand_ins.c
// compares them with the instructions on a CPU that has them.
#ifndef QG_EMULATED_AMX_H
#define QG_EMULATED_AMX_H

#include <immintrin.h>
#include <stdint.h>
#include <string.h>

typedef struct qg_emu_tiles {
    int rows[8], colsb[8];
    uint8_t t[8][16][64];
} qg_emu_tiles;

static _Thread_local qg_emu_tiles qg_emu_amx;

/// LDTILECFG: palette 1 (byte 0), bytes per row at 16 + 2i, rows at 48 + i; tiles zeroed.
static inline void qg_emu_tile_loadconfig(const void *config) {
    const uint8_t *c = config;
    memset(&qg_emu_amx, 0, sizeof qg_emu_amx);
    for (int i = 0; i < 8; i++) {
        qg_emu_amx.colsb[i] = c[16 + 2 * i] | (c[17 + 2 * i] << 8);
        qg_emu_amx.rows[i] = c[48 + i];
    }
}

static inline void qg_emu_tile_release(void) { memset(&qg_emu_amx, 0, sizeof qg_emu_amx); }

static inline void qg_emu_tile_zero(int t) { memset(qg_emu_amx.t[t], 0, sizeof qg_emu_amx.t[t]); }

/// TILELOADD: rows[t] rows of colsb[t] bytes, `stride` bytes apart; the rest of each row zero.
static inline void qg_emu_tile_loadd(int t, const void *base, int64_t stride) {
    qg_emu_tile_zero(t);
    for (int r = 0; r < qg_emu_amx.rows[t]; r++)
        memcpy(qg_emu_amx.t[t][r], (const uint8_t *)base + r * stride, (size_t)qg_emu_amx.colsb[t]);
}

static inline void qg_emu_tile_stored(int t, void *base, int64_t stride) {
    for (int r = 0; r < qg_emu_amx.rows[t]; r++)
        memcpy((uint8_t *)base + r * stride, qg_emu_amx.t[t][r], (size_t)qg_emu_amx.colsb[t]);
}

/// TDPBxxD: c[m][n] += Σ_k Σ_i A[m][4k + i]·B[k][4n + i], in wrapping int32;
/// A unsigned when `a_unsigned`, B signed (the two products the kernel uses).
static inline void qg_emu_tile_dp(int c, int a, int b, int a_unsigned) {
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
