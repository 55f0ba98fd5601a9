// The AVX-VNNI path: the VEX-encoded VPDPBUSD on ymm registers, for the CPUs
// that have it without AVX-512 (Alder Lake and later client cores, Zen 5
// clients) and, forced with --kernel avxvnni, on those that have both.
//
// VPDPBUSD multiplies 4 unsigned bytes by 4 signed bytes and adds the four
// products to an int32 lane, exactly. The weights are the signed operand, read
// straight from the shared layout: a 64-byte K-group of a panel is two ymm,
// channels 0–7 and 8–15, 4 K values each. The activations are the unsigned
// operand, read in place (uint8) or packed with +128 (int8), as the AVX-512
// path does (../x86/vnni_activations.h); the accumulators start at the bias
// and the zero-point term with the +128 taken back, and the 256-bit epilogue
// of ../x86/epilogue_ymm.h finishes them.
//
// The main tile is 6 rows × 16 channels: 12 accumulators, 2 weight registers
// and a broadcast fill 15 of the 16 ymm registers (the shape of the classic
// 6×16 AVX2 float kernel). Each K-group takes 2 weight loads, 6 broadcasts
// and 12 VPDPBUSD.
#include "kernel.h"

#if defined(__x86_64__)
#include <immintrin.h>

#include "../x86/epilogue_ymm.h"
#include "w4_avxvnni.h"
#include "../x86/vnni_activations.h"

// scripts/check-vnni-emulated compiles this file with a software VPDPBUSD and
// QG_AVXVNNI_TARGET="avx2" to run its logic on any AVX2 CPU.
#ifndef QG_AVXVNNI_TARGET
#define QG_AVXVNNI_TARGET "avx2,avxvnni"
#endif
#define QG_AVXVNNI __attribute__((target(QG_AVXVNNI_TARGET)))
#define QG_AVXVNNI_INLINE static inline QG_SPECIALIZE __attribute__((target(QG_AVXVNNI_TARGET)))

enum { QG_AVXVNNI_MR = 6 };
_Static_assert(QG_AVXVNNI_MR <= QG_YMM_MAX_ROWS, "the 256-bit epilogue holds a tile's rows");

#ifndef QG_AVXVNNI_PREFETCH_BYTES
#define QG_AVXVNNI_PREFETCH_BYTES 1024
#endif

static int qg_avxvnni_supported(void) {
    const qg_cpu_features *f = qg_cpu_get_features();
    return f->avx2 && f->fma && f->f16c && f->avxvnni;
}

static void qg_avxvnni_pack_x(const qg_gemm_args *a, int64_t m0, int64_t rows, void *dst) {
    qg_vnni_pack_rows(a, m0, rows, dst, QG_AVXVNNI_MR);
}

static int qg_avxvnni_reads_x_in_place(const qg_gemm_args *a) { return qg_vnni_in_place(a, QG_AVXVNNI_MR); }

static QG_AVXVNNI void qg_avxvnni_init_params(const qg_gemm_args *a, void *params) { qg_ymm_init_params(a, params, qg_vnni_fold(a)); }

/// Row r's K-group g as a broadcast (packed, or in place at X's row stride).
QG_AVXVNNI_INLINE __m256i qg_avxvnni_broadcast(const uint8_t *x, int64_t g, int64_t group_step, int64_t row_step, int r) {
    return _mm256_set1_epi32(qg_vnni_group_word(x, g, group_step, row_step, r));
}

/// R rows × NV·8 channels from `w` (NV ymm of one K-group; a panel is two),
/// into U independent accumulator chains per vector (chain g % U takes K-group
/// g), full K; the chains are summed before the epilogue. in_place: the
/// activations are read from X itself.
QG_AVXVNNI_INLINE void qg_avxvnni_tile(const qg_gemm_args *a, const uint8_t *x, const int R, int in_place,
                                       const int8_t *w, const int NV, const int U, const qg_ymm_params *params, int64_t m0,
                                       int64_t n0, int cols, const qg_output_kind kind) {
    const int64_t group_step = in_place ? QG_K_GROUP : R * QG_K_GROUP, row_step = in_place ? a->ldx : QG_K_GROUP;
    const int64_t panel = QG_PANEL_N * a->kp;
    // Vector v holds channels 8v … 8v + 7: panel v / 2, half v % 2.
#define QG_AVXVNNI_W(v, g) ((const void *)(w + ((v) / 2) * panel + (g) * 64 + ((v) % 2) * 32))
    const int32_t *base = qg_ymm_array(params, a, QG_YMM_BASE) + n0;
    __m256i acc[QG_AVXVNNI_MR][4][2];
#pragma clang loop unroll(full)
    for (int v = 0; v < NV; v++) {
        const __m256i start = _mm256_loadu_si256((const __m256i *)(base + 8 * v));
#pragma clang loop unroll(full)
        for (int r = 0; r < R; r++) {
            acc[r][v][0] = start;
            if (U > 1) acc[r][v][1] = _mm256_setzero_si256();
        }
    }
    // In place, only the whole K-groups are read in the loop; a packed block
    // has its tail zero-padded already.
    const int64_t groups = in_place ? a->k / QG_K_GROUP : a->kp / QG_K_GROUP;
    int64_t g = 0;
    for (; g + U <= groups; g += U) {
        // The panels, fetched ahead: few rows reuse each weight byte little,
        // and the first row group of a step finds its panel in the L3 or
        // memory. Emerald Rapids, one thread, C harness, fastest of four
        // rounds, prefetching in every tile against in tiles of ≤ 2 rows only:
        // 8×4096×4096 254 → 292 GOP/s, 32×4096×4096 265 → 333,
        // 128×11008×4096 232 → 261, 197×768×768 and 1024³ alike. For the
        // tiles of ≤ 2 rows: 2×4096×4096 113 → 120 against none, M = 1 alike.
#pragma clang loop unroll(full)
        for (int v = 0; v < NV; v += 2) _mm_prefetch((const char *)QG_AVXVNNI_W(v, g) + QG_AVXVNNI_PREFETCH_BYTES, _MM_HINT_T0);
#pragma clang loop unroll(full)
        for (int u = 0; u < U; u++) {
            __m256i wv[4];
#pragma clang loop unroll(full)
            for (int v = 0; v < NV; v++) wv[v] = _mm256_loadu_si256((const __m256i *)QG_AVXVNNI_W(v, g + u));
#pragma clang loop unroll(full)
            for (int r = 0; r < R; r++) {
                const __m256i xb = qg_avxvnni_broadcast(x, g + u, group_step, row_step, r);
#pragma clang loop unroll(full)
                for (int v = 0; v < NV; v++) acc[r][v][u] = _mm256_dpbusd_avx_epi32(acc[r][v][u], xb, wv[v]);
            }
        }
    }
    // The K-groups left over by the unroll, then (in place) the partial one.
    const int left = in_place ? (int)(a->k % QG_K_GROUP) : 0;
    for (; g < groups + (left > 0); g++) {
        __m256i wv[4];
#pragma clang loop unroll(full)
        for (int v = 0; v < NV; v++) wv[v] = _mm256_loadu_si256((const __m256i *)QG_AVXVNNI_W(v, g));
#pragma clang loop unroll(full)
        for (int r = 0; r < R; r++) {
            const __m256i xb = g < groups ? qg_avxvnni_broadcast(x, g, group_step, row_step, r)
                                          : _mm256_set1_epi32(qg_vnni_tail_word(x, g, row_step, r, left));
#pragma clang loop unroll(full)
            for (int v = 0; v < NV; v++) acc[r][v][0] = _mm256_dpbusd_avx_epi32(acc[r][v][0], xb, wv[v]);
        }
    }
#undef QG_AVXVNNI_W
#pragma clang loop unroll(full)
    for (int v = 0; v < NV && cols - 8 * v > 0; v++) {
        __m256i s[QG_AVXVNNI_MR];
#pragma clang loop unroll(full)
        for (int r = 0; r < R; r++) s[r] = U > 1 ? _mm256_add_epi32(acc[r][v][0], acc[r][v][1]) : acc[r][v][0];
        const int c = cols - 8 * v > 8 ? 8 : cols - 8 * v;
        if (qg_ymm_q8_takes_rows(params, kind)) {
            qg_ymm_q8_rows(a, params, m0, R, n0 + 8 * v, c, s, kind);
        } else {
            qg_ymm_epilogue_rows(a, m0, R, n0 + 8 * v, c, s, kind);
        }
    }
}

/// The main tile: rows ≤ 6 × cols ≤ 16 channels (one panel).
QG_AVXVNNI_INLINE void qg_avxvnni_main(const qg_gemm_args *a, const void *x_group, int rows, int64_t m0, int64_t n0,
                                       int cols, const void *params, const qg_output_kind kind) {
    const int in_place = qg_vnni_in_place(a, QG_AVXVNNI_MR);
    const uint8_t *x = in_place ? (const uint8_t *)a->x + m0 * a->ldx : x_group;
    const int8_t *w = qg_weights_at(a, n0, 0);
    const qg_ymm_params *ymm = params;
    // Constant R for the compiler: one specialised loop per row count (the
    // layout, in place or packed, is a run-time stride).
#define QG_AVXVNNI_ROWS(R)                                                                                  \
    case R: qg_avxvnni_tile(a, x, R, in_place, w, 2, 1, ymm, m0, n0, cols, kind); return;
    switch (rows) { QG_AVXVNNI_ROWS(1) QG_AVXVNNI_ROWS(2) QG_AVXVNNI_ROWS(3) QG_AVXVNNI_ROWS(4) QG_AVXVNNI_ROWS(5)
                    default: QG_AVXVNNI_ROWS(6) }
#undef QG_AVXVNNI_ROWS
}
QG_DEFINE_TILE_KINDS(QG_AVXVNNI, 6x16c4__avxvnni, qg_avxvnni_main)

/// The few-rows tile (M = 1 or 2, LLM decode): rows ≤ 2 × cols ≤ 32 channels
/// (two panels, streamed once with a software prefetch ahead). One row has
/// two K-chains per vector, so 8 independent VPDPBUSD chains hide its
/// latency; two rows have one each (8 again). Only the panels that hold
/// channels to store are read.
QG_AVXVNNI_INLINE void qg_avxvnni_few_rows(const qg_gemm_args *a, const void *x_group, int rows, int64_t m0, int64_t n0,
                                           int cols, const void *params, const qg_output_kind kind) {
    const int in_place = qg_vnni_in_place(a, QG_AVXVNNI_MR);
    const uint8_t *x = in_place ? (const uint8_t *)a->x + m0 * a->ldx : x_group;
    const int8_t *w = qg_weights_at(a, n0, 0);
    const qg_ymm_params *ymm = params;
    const int two_panels = cols > QG_PANEL_N;
#define QG_AVXVNNI_FEW(NV)                                                                                  \
    if (rows == 2) qg_avxvnni_tile(a, x, 2, in_place, w, NV, 1, ymm, m0, n0, cols, kind);                  \
    else qg_avxvnni_tile(a, x, 1, in_place, w, NV, 2, ymm, m0, n0, cols, kind);
    if (two_panels) { QG_AVXVNNI_FEW(4) } else { QG_AVXVNNI_FEW(2) }
#undef QG_AVXVNNI_FEW
}
QG_DEFINE_TILE_KINDS(QG_AVXVNNI, 2x32c4__avxvnni, qg_avxvnni_few_rows)

/// The peak probe of this path's instruction (peak_avxvnni.c in this folder).
int64_t qg_peak_avxvnni(int64_t iterations);

const qg_kernel qg_kernel_avxvnni = {
    .name = "avxvnni",
    .requires = "x86-64 with AVX2, FMA, F16C and AVX-VNNI (VEX-encoded VPDPBUSD)",
    .main = {.mr = QG_AVXVNNI_MR, .nr = QG_PANEL_N, .run = QG_TILE_KINDS(6x16c4__avxvnni), .name = "qg_gemm_6x16c4__avxvnni"},
    .few_rows = {.mr = 2, .nr = 2 * QG_PANEL_N, .run = QG_TILE_KINDS(2x32c4__avxvnni),
                 .name = "qg_gemm_2x32c4__avxvnni"},
    .kr = QG_K_GROUP,
    .panel_n = QG_PANEL_N,
    .is_supported = qg_avxvnni_supported,
    .x_block_bytes = qg_vnni_x_bytes,
    .pack_x = qg_avxvnni_pack_x,
    .reads_x_in_place = qg_avxvnni_reads_x_in_place,
    .x_block_target = 512 * 1024,
    .max_row_groups = 16,
    .params_bytes = qg_ymm_params_bytes,
    .init_params = qg_avxvnni_init_params,
    .peak_probe = qg_peak_avxvnni,
    .peak_instruction = "VPDPBUSD (ymm, VEX)",
    .w4_main = {.mr = 6, .nr = QG_W4_PANEL_N, .run = qg_w4_6x16c8__avxvnni, .name = "qg_w4_6x16c8__avxvnni"},
    .w4_few = {.mr = 1, .nr = 2 * QG_W4_PANEL_N, .run = qg_w4_1x32c8__avxvnni, .name = "qg_w4_1x32c8__avxvnni"},
};
#endif
