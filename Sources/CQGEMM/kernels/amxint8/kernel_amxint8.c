// The AMX-INT8 path: TDPBUSD / TDPBSSD on AMX tile registers (Intel Sapphire
// Rapids, Emerald Rapids and later Xeons).
//
// One TDPBxxD multiplies a 16 × 64-byte tile of activations (16 rows, 64 K
// values) by a 16 × 64-byte tile of weights laid out as 16 K-groups of 16
// channels × 4 K values, and adds the 16 × 16 int32 sums to an accumulator
// tile, exactly: 16,384 multiply-adds in one instruction, eight times the
// work of a zmm VPDPBUSD per cycle. The weight tile is 16 consecutive K-groups
// of one panel of the shared layout, read in place (stride 64 bytes). The
// activations enter as they are: TDPBUSD takes uint8, TDPBSSD int8, so there
// is no +128 fold.
//
// Activation layout: rows of roundup(K, 64) bytes, zero-padded, kpa =
// roundup(K, 64) + 64 bytes apart, in row groups of 32 (a short last group
// padded with zero rows):
//   x_group[r · kpa + k] = X[m0 + r][k]
// so an activation tile is 16 rows at stride kpa. The extra 64 bytes make the
// stride an odd number of cache lines, so the 16 rows of a tile never share
// a few L1 sets (at a stride of 4 KiB they would all fall into one). (Reading X in place when K
// is a multiple of 64 was tried: 17 % slower at 1024³, 4 % faster at
// 64×1152×128, so the rows are always packed.)
//
// The tile: 32 rows × 32 channels (two panels), four accumulator tiles
// (rows 0–15 and 16–31 × panel 0 and 1), two activation tiles and two weight
// tiles: all eight tile registers. Per 64 K values: 4 tile loads, 4 TDPBxxD.
// A group of at most 16 rows, or a last step of at most 16 channels, runs only
// the tiles it needs. The sums are stored to a 4 KiB buffer and finished by
// the 512-bit epilogue shared with the avx512vnni path (../x86/epilogue_zmm.h).
//
// Tile state needs the OS's permission on Linux (arch_prctl
// ARCH_REQ_XCOMP_PERM), which qg_amx_supported asks for once. The tile
// configuration is per thread: the driver has each task load it before its
// first tile and release the tiles after its last (the descriptor's enter
// and leave), so a task runs the same on any thread, whatever ran there before.
#include "kernel.h"

#if defined(__x86_64__)
#include <immintrin.h>
#include <pthread.h>
#include <string.h>

#if defined(__linux__)
#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

// scripts/check-vnni-emulated compiles this file with software tiles and
// AVX-512 stand-ins and QG_AMX_TARGET="avx2", to run its logic on any AVX2 CPU.
#ifndef QG_AMX_TARGET
#define QG_AMX_TARGET "avx2,avx512f,avx512bw,avx512vnni,amx-tile,amx-int8"
#endif
#define QG_AMX __attribute__((target(QG_AMX_TARGET)))
#define QG_AMX_INLINE static inline QG_SPECIALIZE __attribute__((target(QG_AMX_TARGET)))
#define QG_ZMM_INLINE QG_AMX_INLINE

#include "../x86/epilogue_zmm.h"
#include "tile_config.h"
#include "w4_amxint8.h"

enum { QG_AMX_MR = 32, QG_AMX_KB = 64 };

// MARK: - CPU and OS support

#if defined(__linux__)
/// CPUID: AMX-TILE and AMX-INT8 (leaf 7, EDX bits 24 and 25), AVX-512 F/BW/VNNI
/// for the epilogue, and the OS enabling the tile state in XCR0 (bits 17, 18).
static int qg_amx_cpu_has(void) {
    const qg_cpu_features *f = qg_cpu_get_features();
    if (!(f->avx2 && f->avx512f && f->avx512bw && f->avx512vnni)) return 0;
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    if (!((d >> 24) & 1) || !((d >> 25) & 1)) return 0;
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return (lo & (3u << 17)) == (3u << 17);
}

/// Asks Linux for the tile data state (ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA);
/// without it the first tile instruction kills the process.
static int qg_amx_os_permits(void) {
    enum { ARCH_REQ_XCOMP_PERM = 0x1023, XFEATURE_XTILEDATA = 18 };
    return syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0;
}
#endif

/// Once per process (the permission, once granted, stays): one answer for
/// every thread. Two threads asking at once would each make the request, and
/// the kernel may refuse one of them (ENOSPC while some thread's signal stack
/// is too small for the tiles), so a path chosen as the default on one answer
/// could later read as unsupported.
static int qg_amx_state; // 1 supported, 2 not
static pthread_once_t qg_amx_once = PTHREAD_ONCE_INIT;
static void qg_amx_decide(void) {
#if defined(__linux__)
    qg_amx_state = qg_amx_cpu_has() && qg_amx_os_permits() ? 1 : 2;
#else
    qg_amx_state = 2;
#endif
}
static int qg_amx_supported(void) {
    pthread_once(&qg_amx_once, qg_amx_decide);
    return qg_amx_state == 1;
}

// MARK: - Activations

static int64_t qg_amx_kpa(int64_t kp) { return (kp + QG_AMX_KB - 1) / QG_AMX_KB * QG_AMX_KB + QG_AMX_KB; }

static size_t qg_amx_x_bytes(int64_t rows, int64_t kp) {
    return (size_t)((rows + QG_AMX_MR - 1) / QG_AMX_MR * QG_AMX_MR * qg_amx_kpa(kp));
}

/// Copies each row, zero-padded to kpa (the last 64 bytes are never read,
/// but zero), and zero rows after a short last group.
static void qg_amx_pack_x(const qg_gemm_args *a, int64_t m0, int64_t rows, void *dst) {
    uint8_t *out = dst;
    const int64_t kpa = qg_amx_kpa(a->kp), padded = (rows + QG_AMX_MR - 1) / QG_AMX_MR * QG_AMX_MR;
    for (int64_t r = 0; r < rows; r++) {
        memcpy(out + r * kpa, (const uint8_t *)a->x + (m0 + r) * a->ldx, (size_t)a->k);
        memset(out + r * kpa + a->k, 0, (size_t)(kpa - a->k));
    }
    memset(out + rows * kpa, 0, (size_t)((padded - rows) * kpa));
}

// MARK: - The tile

/// R rows (from m0) of one 16-channel panel p of the 32 × 32 sums `c`, with
/// the panel's start values, through the epilogue of `kind`: four rows at a
/// time, then the last one to three.
QG_AMX_INLINE void qg_amx_finish_panel(const qg_gemm_args *a, const qg_avx512_params *params, const int32_t (*c)[32],
                                       int p, int R, int64_t m0, int64_t n, int cols, const int ROWS,
                                       const qg_output_kind kind) {
    const qg_avx512_panel *panel = params->panel + n / QG_PANEL_N;
    const __m512i base = _mm512_loadu_si512((const void *)panel->base);
    __m512i acc[4];
    int r = 0;
#define QG_AMX_ROWS(COUNT)                                                                                        \
    {                                                                                                             \
        for (int i = 0; i < COUNT; i++) acc[i] = _mm512_add_epi32(_mm512_loadu_si512((const void *)&c[r + i][16 * p]), base); \
        if (ROWS) qg_avx512_q8_rows(a, params, panel, m0 + r, COUNT, n, cols, acc, kind);                         \
        else qg_avx512_epilogue_rows(a, m0 + r, COUNT, n, cols, acc, kind);                                      \
    }
    for (; r + 4 <= R; r += 4) QG_AMX_ROWS(4)
    switch (R - r) {
    case 3: QG_AMX_ROWS(3) break;
    case 2: QG_AMX_ROWS(2) break;
    case 1: QG_AMX_ROWS(1) break;
    default: break;
    }
#undef QG_AMX_ROWS
}

/// The epilogue of one kind for the NP panels of a tile's 32 × 32 sums, by the
/// rows route where the call's params allow it.
#define QG_AMX_FINISH_KIND(SUFFIX, KIND)                                                                          \
    static QG_AMX void qg_amx_finish_##SUFFIX(const qg_gemm_args *a, const qg_avx512_params *params,              \
                                              const int32_t (*c)[32], int np, int rows, int64_t m0, int64_t n0,   \
                                              int cols) {                                                         \
        const int rows_route = qg_avx512_takes_rows(params, KIND);                                                \
        for (int p = 0; p < np && cols - 16 * p > 0; p++) {                                                       \
            const int here = cols - 16 * p > 16 ? 16 : cols - 16 * p;                                             \
            if (rows_route) qg_amx_finish_panel(a, params, c, p, rows, m0, n0 + 16 * p, here, 1, KIND);              \
            else qg_amx_finish_panel(a, params, c, p, rows, m0, n0 + 16 * p, here, 0, KIND);                     \
        }                                                                                                         \
    }
QG_AMX_FINISH_KIND(int32, QG_KIND_INT32)
QG_AMX_FINISH_KIND(float, QG_KIND_FLOAT)
QG_AMX_FINISH_KIND(q8single, QG_KIND_Q8_SINGLE)
QG_AMX_FINISH_KIND(q8double, QG_KIND_Q8_DOUBLE)
QG_AMX_FINISH_KIND(q8float, QG_KIND_Q8_FLOAT)
#undef QG_AMX_FINISH_KIND

/// rows ≤ 32 (HALVES = 1 when rows ≤ 16) × cols ≤ 32 channels (NP panels),
/// full K, then the epilogue. SIGNED: int8 activations (TDPBSSD), else uint8
/// (TDPBUSD). The last 64-K block, when kp is not a multiple of 64, reads its
/// weights from a zero-padded copy, so no tile reads past the packed weights
/// (the activations are zero there, so the padding adds nothing).
QG_AMX_INLINE void qg_amx_tile(const qg_gemm_args *a, const qg_avx512_params *params, const uint8_t *x, int rows,
                               const int HALVES, const int NP, const int SIGNED, int64_t m0, int64_t n0, int cols,
                               const qg_output_kind kind) {
    const int64_t kpa = qg_amx_kpa(a->kp), panel = QG_PANEL_N * a->kp;
    const int8_t *w = qg_weights_at(a, n0, 0);
    const int64_t blocks = a->kp / QG_AMX_KB, tail_groups = (a->kp % QG_AMX_KB) / QG_K_GROUP;
    _tile_zero(0);
    if (NP > 1) _tile_zero(1);
    if (HALVES > 1) _tile_zero(2);
    if (HALVES > 1 && NP > 1) _tile_zero(3);
#define QG_AMX_STEP(XB, W0, W1, WSTRIDE)                                                                          \
    {                                                                                                             \
        _tile_loadd(4, (XB), kpa);                                                                               \
        if (HALVES > 1) _tile_loadd(5, (XB) + 16 * kpa, kpa);                                                    \
        _tile_loadd(6, (W0), WSTRIDE);                                                                           \
        if (NP > 1) _tile_loadd(7, (W1), WSTRIDE);                                                               \
        if (SIGNED) {                                                                                            \
            _tile_dpbssd(0, 4, 6);                                                                               \
            if (NP > 1) _tile_dpbssd(1, 4, 7);                                                                   \
            if (HALVES > 1) _tile_dpbssd(2, 5, 6);                                                               \
            if (HALVES > 1 && NP > 1) _tile_dpbssd(3, 5, 7);                                                     \
        } else {                                                                                                 \
            _tile_dpbusd(0, 4, 6);                                                                               \
            if (NP > 1) _tile_dpbusd(1, 4, 7);                                                                   \
            if (HALVES > 1) _tile_dpbusd(2, 5, 6);                                                               \
            if (HALVES > 1 && NP > 1) _tile_dpbusd(3, 5, 7);                                                     \
        }                                                                                                        \
    }
    for (int64_t b = 0; b < blocks; b++)
        QG_AMX_STEP(x + b * QG_AMX_KB, w + b * (QG_PANEL_N * QG_AMX_KB), w + panel + b * (QG_PANEL_N * QG_AMX_KB), 64)
    if (tail_groups) {
        int8_t tail[2][QG_PANEL_N * QG_AMX_KB] __attribute__((aligned(64)));
        const size_t bytes = (size_t)tail_groups * 64;
        for (int p = 0; p < NP; p++) {
            memcpy(tail[p], w + p * panel + blocks * (QG_PANEL_N * QG_AMX_KB), bytes);
            memset(tail[p] + bytes, 0, sizeof tail[p] - bytes);
        }
        QG_AMX_STEP(x + blocks * QG_AMX_KB, tail[0], tail[1], 64)
    }
#undef QG_AMX_STEP
    int32_t c[QG_AMX_MR][32] __attribute__((aligned(64)));
    const int32_t(*sums)[32] = (const int32_t(*)[32])c;
    _tile_stored(0, &c[0][0], 128);
    if (NP > 1) _tile_stored(1, &c[0][16], 128);
    if (HALVES > 1) _tile_stored(2, &c[16][0], 128);
    if (HALVES > 1 && NP > 1) _tile_stored(3, &c[16][16], 128);
    // The epilogue is a call of its own per kind: inlined into each of the
    // tile's 16 variants it made this file five times slower to compile, for
    // nothing (it runs once per tile, after 4 tile stores).
    switch (kind) {
    case QG_KIND_INT32: qg_amx_finish_int32(a, params, sums, NP, rows, m0, n0, cols); break;
    case QG_KIND_FLOAT: qg_amx_finish_float(a, params, sums, NP, rows, m0, n0, cols); break;
    case QG_KIND_Q8_SINGLE: qg_amx_finish_q8single(a, params, sums, NP, rows, m0, n0, cols); break;
    case QG_KIND_Q8_DOUBLE: qg_amx_finish_q8double(a, params, sums, NP, rows, m0, n0, cols); break;
    default: qg_amx_finish_q8float(a, params, sums, NP, rows, m0, n0, cols); break;
    }
}

/// rows ≤ 32 × cols ≤ 32 channels (two panels; n0 is a multiple of 32).
QG_AMX_INLINE void qg_amx_main(const qg_gemm_args *a, const void *x_group, int rows, int64_t m0, int64_t n0, int cols,
                               const void *p, const qg_output_kind kind) {
    const qg_avx512_params *params = p;
    const uint8_t *x = x_group;
    const int halves = rows > 16 ? 2 : 1, np = cols > QG_PANEL_N ? 2 : 1, sgn = !a->x_unsigned;
    // Constant halves, panels and signedness for the compiler.
#define QG_AMX_CALL(H, NPP, S) qg_amx_tile(a, params, x, rows, H, NPP, S, m0, n0, cols, kind)
#define QG_AMX_BY_SIGN(H, NPP)                                                                                    \
    if (sgn) QG_AMX_CALL(H, NPP, 1);                                                                             \
    else QG_AMX_CALL(H, NPP, 0);
    if (halves == 2) {
        if (np == 2) { QG_AMX_BY_SIGN(2, 2) } else { QG_AMX_BY_SIGN(2, 1) }
    } else {
        if (np == 2) { QG_AMX_BY_SIGN(1, 2) } else { QG_AMX_BY_SIGN(1, 1) }
    }
#undef QG_AMX_BY_SIGN
#undef QG_AMX_CALL
}
QG_DEFINE_TILE_KINDS(QG_AMX, 32x32c4__amxint8, qg_amx_main)

/// Per task: the tile configuration in, and the tiles given back after.
static QG_AMX void qg_amx_enter(void) { _tile_loadconfig(&qg_amx_tiles); }
static QG_AMX void qg_amx_leave(void) { _tile_release(); }

/// The per-call params: no private fold (both activation types enter as they are).
static QG_AMX void qg_amx_init_params(const qg_gemm_args *a, void *params) { qg_avx512_init_params(a, params, 0); }

/// The peak probe of this path's instruction (peak_amxint8.c in this folder).
int64_t qg_peak_amxint8(int64_t iterations);

const qg_kernel qg_kernel_amxint8 = {
    .name = "amxint8",
    .requires = "x86-64 with AMX-TILE and AMX-INT8 and AVX-512 F/BW/VNNI (and the OS granting the tile state)",
    .main = {.mr = QG_AMX_MR, .nr = 2 * QG_PANEL_N, .run = QG_TILE_KINDS(32x32c4__amxint8),
             .name = "qg_gemm_32x32c4__amxint8"},
    .kr = QG_K_GROUP,
    .k_block = QG_AMX_KB,
    .panel_n = QG_PANEL_N,
    .is_supported = qg_amx_supported,
    .x_block_bytes = qg_amx_x_bytes,
    .pack_x = qg_amx_pack_x,
    .x_block_target = 512 * 1024,
    .max_row_groups = 16,
    .params_bytes = qg_avx512_params_bytes,
    .init_params = qg_amx_init_params,
    .enter = qg_amx_enter,
    .leave = qg_amx_leave,
    .peak_probe = qg_peak_amxint8,
    .peak_instruction = "TDPBUSD (tiles)",
    .w4_main = {.mr = QG_W4A_MR, .nr = 2 * QG_W4_PANEL_N, .run = qg_w4_128x32c8__amxint8, .name = "qg_w4_128x32c8__amxint8"},
    .w4_few = {.mr = 1, .nr = 4 * QG_W4_PANEL_N, .run = qg_w4_1x64c8__amxint8, .name = "qg_w4_1x64c8__amxint8"},
};
#endif
