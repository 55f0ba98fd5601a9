// The amxint8 path's peak probe: a register-only loop of TDPBUSD into four
// independent accumulator tiles (as the 32×32 tile has); the caller times it
// (qg_peak_probe_int8), and only when the path is supported (the OS has then
// granted the tile state). The last tile is stored and its sum taken by an
// empty asm, so the loop cannot be optimised away.
#if defined(__x86_64__)
#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#include "tile_config.h"

__attribute__((target("amx-tile,amx-int8"))) int64_t qg_peak_amxint8(int64_t iterations) {
    uint8_t data[16 * 64] __attribute__((aligned(64)));
    memset(data, 3, sizeof data);
    _tile_loadconfig(&qg_amx_tiles);
    _tile_loadd(4, data, 64);
    _tile_loadd(5, data, 64);
    _tile_loadd(6, data, 64);
    _tile_loadd(7, data, 64);
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
    for (int64_t it = 0; it < iterations; it++) {
        _tile_dpbusd(0, 4, 6);
        _tile_dpbusd(1, 4, 7);
        _tile_dpbusd(2, 5, 6);
        _tile_dpbusd(3, 5, 7);
    }
    int32_t out[16 * 16] __attribute__((aligned(64)));
    _tile_stored(3, out, 64);
    _tile_release();
    uint32_t sink = 0; // wrapping: the sums overflow on long runs
    for (int i = 0; i < 256; i++) sink += (uint32_t)out[i];
    __asm__ volatile("" : : "r"(sink));
    return iterations * 4 * 16 * 16 * 64;
}
#endif
