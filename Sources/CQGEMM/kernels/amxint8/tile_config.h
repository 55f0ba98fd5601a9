// The amxint8 path's tile configuration (the LDTILECFG operand): palette 1,
// all eight tiles 16 rows × 64 bytes. One definition for the kernel and its
// peak probe. Included by this folder's files only.
#ifndef QG_AMX_TILE_CONFIG_H
#define QG_AMX_TILE_CONFIG_H

#include <stdint.h>

typedef struct __attribute__((aligned(64))) qg_amx_config {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} qg_amx_config;

static const qg_amx_config qg_amx_tiles = {
    .palette = 1,
    .colsb = {64, 64, 64, 64, 64, 64, 64, 64},
    .rows = {16, 16, 16, 16, 16, 16, 16, 16},
};

#endif
