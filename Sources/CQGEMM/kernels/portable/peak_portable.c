// The portable path's peak probe: a register-only loop of the tile's
// multiply-add (qg_portable_pair_sums) and the add into its sums, with
// enough independent chains to hide latency; the caller times it
// (qg_peak_probe_int8). It ends with an empty asm that takes its sum, so the
// loop cannot be optimised away.
#include "pair_sums.h"
#include "portable.h"

// Keeps a vector in a register the compiler cannot see into, so that no
// product is hoisted out of the loop; in memory on targets without a vector
// register constraint here (there the probe also times the stores and loads,
// and reads low).
#if defined(__x86_64__)
#define QG_OPAQUE(v) __asm__ volatile("" : "+x"(v))
#elif defined(__aarch64__)
#define QG_OPAQUE(v) __asm__ volatile("" : "+w"(v))
#else
#define QG_OPAQUE(v) __asm__ volatile("" : "+m"(v))
#endif

/// 8 distinct pair sums a round (4 activation vectors × 2 weight vectors, so
/// that the compiler cannot merge them; the tile has 8 a row and K-group, one
/// activation vector against 8 of weights), 8 multiply-adds each. The tile's
/// widening of the weight bytes and its activation shuffle are left out.
int64_t qg_peak_portable(int64_t iterations) {
    qg_pv8s16 w0 = {3, 3, 3, 3, 3, 3, 3, 3}, w1 = {4, 4, 4, 4, 4, 4, 4, 4};
    qg_pv8s16 x0 = {5, 5, 5, 5, 5, 5, 5, 5}, x1 = {6, 6, 6, 6, 6, 6, 6, 6}, x2 = {7, 7, 7, 7, 7, 7, 7, 7},
              x3 = {8, 8, 8, 8, 8, 8, 8, 8};
    qg_pv4u32 acc[8] = {0};
    for (int64_t it = 0; it < iterations; it++) {
        acc[0] += qg_portable_pair_sums(w0, x0);
        acc[1] += qg_portable_pair_sums(w1, x0);
        acc[2] += qg_portable_pair_sums(w0, x1);
        acc[3] += qg_portable_pair_sums(w1, x1);
        acc[4] += qg_portable_pair_sums(w0, x2);
        acc[5] += qg_portable_pair_sums(w1, x2);
        acc[6] += qg_portable_pair_sums(w0, x3);
        acc[7] += qg_portable_pair_sums(w1, x3);
        QG_OPAQUE(w0);
        QG_OPAQUE(w1);
        QG_OPAQUE(x0);
        QG_OPAQUE(x1);
        QG_OPAQUE(x2);
        QG_OPAQUE(x3);
    }
    qg_pv4u32 s = acc[0];
    for (int i = 1; i < 8; i++) s += acc[i];
    const uint32_t sink = s[0];
    __asm__ volatile("" : : "r"(sink));
    return iterations * 8 * 8;
}
