// The AVX-512 VNNI path's 4-bit main tile for CPUs that also have GFNI
// (Ice Lake and later, Zen 4 and later; not Cascade Lake): w4_avx512vnni.c's
// 8×32 tile whose row groups of three or more take the high nibbles down
// with one GF2P8AFFINEQB instead of a shift and an AND (../x86/w4_zmm.h).
// The same bits; the descriptor runs it in that tile's place where the CPU
// has GFNI and is an Intel CPU (w4_main_fast, w4_main_fast_preferred: on
// Zen 4 it was the slower). On Intel's server cores the shift, the AND and
// VPDPBUSD all issue on ports 0 and 5, so each unpacking operation saved is
// a VPDPBUSD slot: a chunk of two panels costs 32 VPDPBUSD and 4 unpacking
// operations instead of 6 (KERNELS.md, "GFNI", has the measurements).
//
// Its own file, not a target attribute in w4_avx512vnni.c: the compiler may
// turn the other tiles' byte shifts into GF2P8AFFINEQB where the target has
// GFNI, and those tiles also run on CPUs without it.
#include "kernel.h"

#if defined(__x86_64__)
// scripts/check-vnni-emulated sets "avx2" and software stand-ins.
#ifndef QG_VNNI_GFNI_TARGET
#define QG_VNNI_GFNI_TARGET "avx2,avx512f,avx512bw,avx512vnni,gfni"
#endif
#define QG_W4Z_INLINE static inline QG_SPECIALIZE __attribute__((target(QG_VNNI_GFNI_TARGET)))
#define QG_W4Z_GFNI 1

#include "../x86/w4_zmm.h"
#include "w4_avx512vnni.h"

__attribute__((target(QG_VNNI_GFNI_TARGET))) void qg_w4_8x32c8__avx512vnnigfni(const qg_w4_args *a, int rows, int64_t m0,
                                                                              int64_t n0, int cols) {
    qg_w4z_rows(a, rows, m0, n0, cols);
}
#endif
