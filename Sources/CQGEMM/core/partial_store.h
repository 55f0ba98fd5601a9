// Internal: the store of a tile's last, partial columns, for every path.
//
// A tile computes whole vectors of channels and stores only the first `cols`
// of them when the tile runs past N. The vector goes to a small buffer on the
// stack and its first bytes are copied out with copies of constant sizes.
// Not with memcpy of a variable length: that is a real call, and around a
// call the compiler saves every live vector register. It did so on every
// tile, partial or not, since the stores of a tile's rows follow each other:
// the avx2 tile (then 6×8) spilled and reloaded its accumulators each time, about
// a sixth of its time at K = 64 on Zen 2.
#ifndef QG_PARTIAL_STORE_H
#define QG_PARTIAL_STORE_H

#include <stdint.h>
#include <string.h>

/// Copies the first `count` (0 … 127) bytes of `src` to `dst`, with copies of
/// constant sizes only (no call).
static inline __attribute__((always_inline)) void qg_copy_first_bytes(void *dst, const void *src, int count) {
    uint8_t *d = dst;
    const uint8_t *s = src;
    if (count & 64) { memcpy(d, s, 64); d += 64; s += 64; }
    if (count & 32) { memcpy(d, s, 32); d += 32; s += 32; }
    if (count & 16) { memcpy(d, s, 16); d += 16; s += 16; }
    if (count & 8) { memcpy(d, s, 8); d += 8; s += 8; }
    if (count & 4) { memcpy(d, s, 4); d += 4; s += 4; }
    if (count & 2) { memcpy(d, s, 2); d += 2; s += 2; }
    if (count & 1) *d = *s;
}

#endif
