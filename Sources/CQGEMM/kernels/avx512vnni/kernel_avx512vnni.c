// The AVX-512 VNNI path: VPDPBUSD on zmm registers.
//
// VPDPBUSD multiplies 4 unsigned bytes by 4 signed bytes and adds the four
// products to an int32 lane, exactly. The weights are the signed operand, read
// straight from the shared layout (one 64-byte K-group = 16 channels × 4 K =
// one zmm). Activations are the unsigned operand: uint8 read in place (packed
// as it is where its row stride would crowd the L1), int8 packed plus 128, in
// row groups of up to 12 rows (../x86/vnni_activations.h,
// shared with the avxvnni path); the accumulators start at the bias and the
// zero-point term with that +128 taken back (the per-call params).
//
// Like every path, it is offered when CPUID and the OS's XSAVE state say the
// CPU can run it, and trusted because the test suite and `qgemm validate`
// check it bit for bit against the reference (and scripts/check-vnni-emulated
// checks its logic on CPUs without AVX-512). It never disables itself quietly.
#include "kernel.h"

#if defined(__x86_64__)
#include <string.h>

// scripts/check-vnni-emulated compiles this file with software AVX-512
// intrinsics and QG_VNNI_TARGET="avx2" to run its logic on any AVX2 CPU.
#ifndef QG_VNNI_TARGET
#define QG_VNNI_TARGET "avx2,avx512f,avx512bw,avx512vnni"
#endif
#define QG_VNNI __attribute__((target(QG_VNNI_TARGET)))
#define QG_VNNI_INLINE static inline QG_SPECIALIZE __attribute__((target(QG_VNNI_TARGET)))
#define QG_ZMM_INLINE QG_VNNI_INLINE

#include "../x86/epilogue_zmm.h"
#include "../x86/vnni_activations.h"
#include "w4_avx512vnni.h"

enum { QG_VNNI_MR = 12 };

/// How far ahead the 12×32 tile prefetches each panel. The first row group
/// of each step of channels reads its panels from the L3 or memory (the
/// later ones find them in the L2), and the L2's streamer stops at every
/// 4 KiB page. Emerald Rapids, one thread (C harness, fastest of three
/// rounds): 128×4096×11008 (45 MB of weights) 570 → 631 GOP/s, 32×4096×4096
/// 675 → 705, 384×768×3072 701 → 709, 1024³, 197×768×768 and K = 64 and
/// 147 the same; 1, 1.5 and 2 KiB ahead measured alike, 0.5 KiB gained less,
/// and 4 KiB was slower than none. (One prefetch per panel and K-group: at 12
/// rows, two per 24 VPDPBUSD, and the load ports have room.) On Zen 4 the
/// same shapes ran level with and without it (KERNELS.md), so it stays.
enum { QG_VNNI_PREFETCH_BYTES = 2048 };

/// Calls of this many rows up to QG_VNNI_MR (one row group: the weights
/// come from memory once) have the 12×32 tile prefetch the next tile's
/// panels in address order instead of its own 2 KiB ahead, where the CPU
/// reads one stream faster than several (qg_cpu_one_stream_decode: Zen 5).
/// Zen 5, one thread, float output, fastest of three interleaved rounds,
/// GOP/s, own → walk, caches evicted: 8×4096×4096 511–522 → 601–611, 9×
/// 572 → 676, 10× 608 → 754, 11× 663 → 821, 12× 685–718 → 897–916,
/// 12×4096×11008 (int8 output) 707 → 912; warm: 6× 977–993 → 751–773, 8×
/// 1,004–1,020 → 894–914, 9× 1,022 → 973, 10× 1,028 → 1,043, 11× 1,036 →
/// 1,050, 12× 1,028 → 1,058. So from ten rows; below, a call's rows fit the
/// L1 and the walk's lines push them out; with the T1 or NTA hint instead of
/// T0 it lost as much warm.
enum { QG_VNNI_WALK_MIN_ROWS = 10 };

static void qg_vnni_pack_x(const qg_gemm_args *a, int64_t m0, int64_t rows, void *dst) {
    qg_vnni_pack_rows(a, m0, rows, dst, QG_VNNI_MR);
}

static int qg_vnni_reads_x_in_place(const qg_gemm_args *a) { return qg_vnni_in_place(a, QG_VNNI_MR); }

/// Row r's K-group g as a broadcast (packed, or in place at X's row stride).
QG_VNNI_INLINE __m512i qg_vnni_broadcast(const uint8_t *x, int64_t g, int64_t group_step, int64_t row_step, int r) {
    return _mm512_set1_epi32(qg_vnni_group_word(x, g, group_step, row_step, r));
}

/// Row r's partial last K-group g, read in place, as a broadcast.
QG_VNNI_INLINE __m512i qg_vnni_broadcast_tail(const uint8_t *x, int64_t g, int64_t row_step, int r, int left) {
    return _mm512_set1_epi32(qg_vnni_tail_word(x, g, row_step, r, left));
}

/// R rows × NP panels of 16 channels, full K; then the epilogue panel by panel
/// (../x86/epilogue_zmm.h) of `kind` (int32 and float rows that start off a
/// 64-byte line: both panels of a row at once, stored by lines), by the rows route when ROWS (an
/// int8/uint8 call whose params allow it: a route of the call's constants,
/// fixed per call like the kind). `w` is the first panel; the
/// second is 16·kp bytes later.
/// The accumulators start at the panel's bias and zero-point term (params).
/// Every loop over rows and panels is unrolled (at R = 12 the compiler would
/// otherwise keep the 24 accumulators in memory).
/// in_place: the activations are read from X itself (qg_vnni_in_place).
QG_VNNI_INLINE void qg_vnni_tile(const qg_gemm_args *a, const qg_avx512_params *params, const uint8_t *x, const int R,
                                 int in_place, const int8_t *w, const int NP, const int ROWS, int64_t m0,
                                 int64_t n0, int cols, const qg_output_kind kind) {
    // Row r's K-group g: packed [g][r][4], or in place at X's row stride.
    const int64_t group_step = in_place ? QG_K_GROUP : R * QG_K_GROUP, row_step = in_place ? a->ldx : QG_K_GROUP;
    const qg_avx512_panel *c = params->panel + n0 / QG_PANEL_N;
    __m512i acc[QG_VNNI_MR][2];
    #pragma clang loop unroll(full)
    for (int p = 0; p < NP; p++) {
        const __m512i base = _mm512_loadu_si512((const void *)c[p].base);
        #pragma clang loop unroll(full)
        for (int r = 0; r < R; r++) acc[r][p] = base;
    }
    // In place, only the whole K-groups are broadcast from X in the loop; a
    // packed block has its tail zero-padded already.
    const int64_t groups = in_place ? a->k / QG_K_GROUP : a->kp / QG_K_GROUP, panel = QG_PANEL_N * a->kp;
    // Where the tile prefetches: each panel 2 KiB ahead, or the next tile's
    // panels in address order (QG_VNNI_WALK_MIN_ROWS). Past the last panel
    // the walk's addresses lie past the weights: prefetches never fault.
    const int walk = a->m >= QG_VNNI_WALK_MIN_ROWS && a->m <= QG_VNNI_MR && qg_cpu_one_stream_decode();
    // Panel p's prefetch for K-group g is at ahead + g·ahead_step + p·ahead_panel:
    // chosen once here, not per K-group in the loop.
    const char *const ahead = walk ? (const char *)(w + NP * panel) : (const char *)(w + QG_VNNI_PREFETCH_BYTES);
    const int64_t ahead_step = walk ? NP * 64 : 64, ahead_panel = walk ? 64 : panel;
    for (int64_t g = 0; g < groups; g++) {
        __m512i wv[2];
        #pragma clang loop unroll(full)
        for (int p = 0; p < NP; p++) wv[p] = _mm512_loadu_si512((const void *)(w + p * panel + g * 64));
        #pragma clang loop unroll(full)
        for (int p = 0; p < NP; p++) _mm_prefetch(ahead + g * ahead_step + p * ahead_panel, _MM_HINT_T0);
        #pragma clang loop unroll(full)
        for (int r = 0; r < R; r++) {
            const __m512i xb = qg_vnni_broadcast(x, g, group_step, row_step, r);
            #pragma clang loop unroll(full)
            for (int p = 0; p < NP; p++) acc[r][p] = _mm512_dpbusd_epi32(acc[r][p], xb, wv[p]);
        }
    }
    const int left = (int)(a->k % QG_K_GROUP);
    if (in_place && left) {
        __m512i wv[2];
        #pragma clang loop unroll(full)
        for (int p = 0; p < NP; p++) wv[p] = _mm512_loadu_si512((const void *)(w + p * panel + groups * 64));
        #pragma clang loop unroll(full)
        for (int r = 0; r < R; r++) {
            const __m512i xb = qg_vnni_broadcast_tail(x, groups, row_step, r, left);
            #pragma clang loop unroll(full)
            for (int p = 0; p < NP; p++) acc[r][p] = _mm512_dpbusd_epi32(acc[r][p], xb, wv[p]);
        }
    }
    if ((kind == QG_KIND_INT32 || kind == QG_KIND_FLOAT) && NP == 2 && cols == 2 * QG_PANEL_N && params->by_lines) {
        qg_avx512_line_stores lines;
        if (qg_avx512_line_stores_for((const char *)a->y + (m0 * a->ldy + n0) * 4, a->ldy * 4, &lines)) {
            qg_avx512_wide_rows_by_lines(a, m0, R, n0, acc, kind, &lines);
            return;
        }
    }
    #pragma clang loop unroll(full)
    for (int p = 0; p < NP && cols - 16 * p > 0; p++) {
        __m512i panel_acc[QG_VNNI_MR];
        #pragma clang loop unroll(full)
        for (int r = 0; r < R; r++) panel_acc[r] = acc[r][p];
        const int n = (int)(cols - 16 * p > 16 ? 16 : cols - 16 * p);
        if (ROWS) qg_avx512_q8_rows(a, params, c + p, m0, R, n0 + 16 * p, n, panel_acc, kind);
        else qg_avx512_epilogue_rows(a, m0, R, n0 + 16 * p, n, panel_acc, kind);
    }
}

/// One K-group `g` of the few-rows tile into accumulator chain `u`; `xb[r]`
/// is row r's broadcast K-group.
QG_VNNI_INLINE void qg_vnni_few_rows_group(const __m512i *xb, const int R, const int8_t *w, const int NP, int64_t panel,
                                           int64_t g, __m512i acc[2][4][2], const int u) {
    __m512i wv[4];
    #pragma clang loop unroll(full)
    for (int p = 0; p < NP; p++) wv[p] = _mm512_loadu_si512((const void *)(w + p * panel + g * 64));
    #pragma clang loop unroll(full)
    for (int r = 0; r < R; r++)
        #pragma clang loop unroll(full)
        for (int p = 0; p < NP; p++) acc[r][p][u] = _mm512_dpbusd_epi32(acc[r][p][u], xb[r], wv[p]);
}

/// The few-rows tile (M = 1 or 2, LLM decode): R ≤ 2 rows × 4 panels (64
/// channels). The 12×32 tile has only two accumulators per row, so one row
/// waits on VPDPBUSD's latency; here 4 panels × 2 K-groups in flight give
/// 8 independent chains per row, each panel streamed once. It has no
/// software prefetch: the hardware's prefetchers stream the four panels
/// faster alone (Zen 4: 1.3–1.5× from memory, 5 % slower from the L3). The
/// two K-chains are added before the epilogue (the
/// general one: at M ≤ 2 the weights' bytes, not the epilogue, set the time).
/// Every loop over rows and panels is unrolled: left to its own judgement,
/// the compiler once kept the 16 accumulators in memory, a store after every
/// VPDPBUSD (M = 2 at 56 % of its speed).
QG_VNNI_INLINE void qg_vnni_few_rows_tile(const qg_gemm_args *a, const qg_avx512_params *params, const uint8_t *x,
                                          const int R, int in_place, const int8_t *w, const int NP, int64_t m0,
                                          int64_t n0, int cols, const qg_output_kind kind) {
    const int64_t group_step = in_place ? QG_K_GROUP : R * QG_K_GROUP, row_step = in_place ? a->ldx : QG_K_GROUP;
    const qg_avx512_panel *c = params->panel + n0 / QG_PANEL_N;
    __m512i acc[2][4][2];
    #pragma clang loop unroll(full)
    for (int p = 0; p < NP; p++) {
        const __m512i base = _mm512_loadu_si512((const void *)c[p].base);
        #pragma clang loop unroll(full)
        for (int r = 0; r < R; r++) {
            acc[r][p][0] = base;
            acc[r][p][1] = _mm512_setzero_si512();
        }
    }
    const int64_t groups = in_place ? a->k / QG_K_GROUP : a->kp / QG_K_GROUP, panel = QG_PANEL_N * a->kp;
    int64_t g = 0;
    for (; g + 1 < groups; g += 2) {
        __m512i xb[2];
        #pragma clang loop unroll(full)
        for (int r = 0; r < R; r++) xb[r] = qg_vnni_broadcast(x, g, group_step, row_step, r);
        qg_vnni_few_rows_group(xb, R, w, NP, panel, g, acc, 0);
        #pragma clang loop unroll(full)
        for (int r = 0; r < R; r++) xb[r] = qg_vnni_broadcast(x, g + 1, group_step, row_step, r);
        qg_vnni_few_rows_group(xb, R, w, NP, panel, g + 1, acc, 1);
    }
    if (g < groups) {
        __m512i xb[2];
        #pragma clang loop unroll(full)
        for (int r = 0; r < R; r++) xb[r] = qg_vnni_broadcast(x, g, group_step, row_step, r);
        qg_vnni_few_rows_group(xb, R, w, NP, panel, g, acc, 0);
        g++;
    }
    const int left = (int)(a->k % QG_K_GROUP);
    if (in_place && left) {
        __m512i xb[2];
        #pragma clang loop unroll(full)
        for (int r = 0; r < R; r++) xb[r] = qg_vnni_broadcast_tail(x, g, row_step, r, left);
        qg_vnni_few_rows_group(xb, R, w, NP, panel, g, acc, 1);
    }
    #pragma clang loop unroll(full)
    for (int p = 0; p < NP && cols - 16 * p > 0; p++) {
        __m512i panel_acc[2];
        #pragma clang loop unroll(full)
        for (int r = 0; r < R; r++) panel_acc[r] = _mm512_add_epi32(acc[r][p][0], acc[r][p][1]);
        qg_avx512_epilogue_rows(a, m0, R, n0 + 16 * p, cols - 16 * p > 16 ? 16 : cols - 16 * p, panel_acc, kind);
    }
}

/// rows ≤ 2 × cols ≤ 64 channels (four panels; n0 is a multiple of 64).
QG_VNNI_INLINE void qg_vnni_few_rows(const qg_gemm_args *a, const void *x_group, int rows, int64_t m0, int64_t n0,
                                     int cols, const void *params, const qg_output_kind kind) {
    const int8_t *w = qg_weights_at(a, n0, 0);
    const int in_place = qg_vnni_in_place(a, QG_VNNI_MR);
    const uint8_t *x = in_place ? (const uint8_t *)a->x + m0 * a->ldx : x_group;
    // Only the panels that hold channels to store are read (the last step of
    // N may have fewer than four); constant R and NP for the compiler.
    const int np = (cols + QG_PANEL_N - 1) / QG_PANEL_N;
#define QG_FEW_CASE(NPP)                                                                             \
    case NPP:                                                                                        \
        if (rows == 2) qg_vnni_few_rows_tile(a, params, x, 2, in_place, w, NPP, m0, n0, cols, kind); \
        else qg_vnni_few_rows_tile(a, params, x, 1, in_place, w, NPP, m0, n0, cols, kind);           \
        return;
    switch (np) { QG_FEW_CASE(1) QG_FEW_CASE(2) QG_FEW_CASE(3) QG_FEW_CASE(4) }
#undef QG_FEW_CASE
}

QG_DEFINE_TILE_KINDS(QG_VNNI, 2x64c4__avx512vnni, qg_vnni_few_rows)

/// The width (one or two panels) variants of one row count, route and kind,
/// each with its constants fixed for the compiler. The layout (in place or
/// packed) is a run-time value: its two strides cost nothing in the loop, and
/// a copy per layout doubled the file's compile time.
#define QG_VNNI_TILE_VARIANTS(R, ROWS, KIND)                                               \
    if (two) qg_vnni_tile(a, params, x, R, in_place, w, 2, ROWS, m0, n0, cols, KIND);      \
    else qg_vnni_tile(a, params, x, R, in_place, w, 1, ROWS, m0, n0, cols, KIND);

/// One row count of the 12×32 tile for one kind: constant R, NP, layout and
/// epilogue for the compiler. Only int8/uint8 output has a rows route.
#define QG_VNNI_TILE_ROWS_KIND(R, SUFFIX, KIND)                                                                      \
    static QG_VNNI void qg_vnni_tile_##R##_##SUFFIX(const qg_gemm_args *a, const qg_avx512_params *params,          \
                                                    const uint8_t *x, int in_place, const int8_t *w, int64_t m0,     \
                                                    int64_t n0, int cols) {                                          \
        const int two = cols > QG_PANEL_N;                                                                           \
        if (qg_avx512_takes_rows(params, KIND)) {                                                                    \
            QG_VNNI_TILE_VARIANTS(R, 1, KIND)                                                                        \
        } else {                                                                                                     \
            QG_VNNI_TILE_VARIANTS(R, 0, KIND)                                                                        \
        }                                                                                                            \
    }
#define QG_VNNI_TILE_ROWS(SUFFIX, KIND)                                                                              \
    QG_VNNI_TILE_ROWS_KIND(1, SUFFIX, KIND) QG_VNNI_TILE_ROWS_KIND(2, SUFFIX, KIND)                                  \
    QG_VNNI_TILE_ROWS_KIND(3, SUFFIX, KIND) QG_VNNI_TILE_ROWS_KIND(4, SUFFIX, KIND)                                  \
    QG_VNNI_TILE_ROWS_KIND(5, SUFFIX, KIND) QG_VNNI_TILE_ROWS_KIND(6, SUFFIX, KIND)                                  \
    QG_VNNI_TILE_ROWS_KIND(7, SUFFIX, KIND) QG_VNNI_TILE_ROWS_KIND(8, SUFFIX, KIND)                                  \
    QG_VNNI_TILE_ROWS_KIND(9, SUFFIX, KIND) QG_VNNI_TILE_ROWS_KIND(10, SUFFIX, KIND)                                 \
    QG_VNNI_TILE_ROWS_KIND(11, SUFFIX, KIND) QG_VNNI_TILE_ROWS_KIND(12, SUFFIX, KIND)

/// The 12×32 tile of one kind: rows ≤ 12 × cols ≤ 32 channels (two panels;
/// n0 is a multiple of 32), dispatched to the row count's copy.
#define QG_VNNI_MAIN(SUFFIX, KIND)                                                                                   \
    QG_VNNI_TILE_ROWS(SUFFIX, KIND)                                                                                  \
    static QG_VNNI void qg_gemm_##SUFFIX##_12x32c4__avx512vnni(const qg_gemm_args *a, const void *x_group, int rows, \
                                                               int64_t m0, int64_t n0, int cols, const void *p) {    \
        const qg_avx512_params *params = p;                                                                          \
        const int in_place = qg_vnni_in_place(a, QG_VNNI_MR);                                                        \
        const uint8_t *x = in_place ? (const uint8_t *)a->x + m0 * a->ldx : x_group;                                 \
        const int8_t *w = qg_weights_at(a, n0, 0);                                                                   \
        switch (rows) {                                                                                              \
        case 1: qg_vnni_tile_1_##SUFFIX(a, params, x, in_place, w, m0, n0, cols); return;                            \
        case 2: qg_vnni_tile_2_##SUFFIX(a, params, x, in_place, w, m0, n0, cols); return;                            \
        case 3: qg_vnni_tile_3_##SUFFIX(a, params, x, in_place, w, m0, n0, cols); return;                            \
        case 4: qg_vnni_tile_4_##SUFFIX(a, params, x, in_place, w, m0, n0, cols); return;                            \
        case 5: qg_vnni_tile_5_##SUFFIX(a, params, x, in_place, w, m0, n0, cols); return;                            \
        case 6: qg_vnni_tile_6_##SUFFIX(a, params, x, in_place, w, m0, n0, cols); return;                            \
        case 7: qg_vnni_tile_7_##SUFFIX(a, params, x, in_place, w, m0, n0, cols); return;                            \
        case 8: qg_vnni_tile_8_##SUFFIX(a, params, x, in_place, w, m0, n0, cols); return;                            \
        case 9: qg_vnni_tile_9_##SUFFIX(a, params, x, in_place, w, m0, n0, cols); return;                            \
        case 10: qg_vnni_tile_10_##SUFFIX(a, params, x, in_place, w, m0, n0, cols); return;                          \
        case 11: qg_vnni_tile_11_##SUFFIX(a, params, x, in_place, w, m0, n0, cols); return;                          \
        default: qg_vnni_tile_12_##SUFFIX(a, params, x, in_place, w, m0, n0, cols); return;                          \
        }                                                                                                            \
    }
QG_VNNI_MAIN(int32, QG_KIND_INT32)
QG_VNNI_MAIN(float, QG_KIND_FLOAT)
QG_VNNI_MAIN(q8single, QG_KIND_Q8_SINGLE)
QG_VNNI_MAIN(q8double, QG_KIND_Q8_DOUBLE)
QG_VNNI_MAIN(q8float, QG_KIND_Q8_FLOAT)
#undef QG_VNNI_MAIN
#undef QG_VNNI_TILE_ROWS
#undef QG_VNNI_TILE_ROWS_KIND
#undef QG_VNNI_TILE_VARIANTS

/// The per-call params, with the +128 of int8 activations taken back.
static QG_VNNI void qg_vnni_init_params(const qg_gemm_args *a, void *params) { qg_avx512_init_params(a, params, qg_vnni_fold(a)); }

static int qg_vnni_supported(void) {
    const qg_cpu_features *f = qg_cpu_get_features();
    return f->avx2 && f->avx512f && f->avx512bw && f->avx512vnni;
}

/// What the 4-bit GFNI tile needs: the path, and GFNI (not on Cascade Lake).
static int qg_vnni_gfni_supported(void) { return qg_vnni_supported() && qg_cpu_get_features()->gfni; }

/// The peak probe of this path's instruction (peak_avx512vnni.c in this folder).
int64_t qg_peak_vnni(int64_t iterations);

const qg_kernel qg_kernel_avx512vnni = {
    .name = "avx512vnni",
    .requires = "x86-64 with AVX-512 F/BW/VNNI (and the OS saving zmm state)",
    .main = {.mr = QG_VNNI_MR, .nr = 2 * QG_PANEL_N, .run = QG_TILE_KINDS(12x32c4__avx512vnni),
             .name = "qg_gemm_12x32c4__avx512vnni"},
    .few_rows = {.mr = 2, .nr = 4 * QG_PANEL_N, .run = QG_TILE_KINDS(2x64c4__avx512vnni),
                 .name = "qg_gemm_2x64c4__avx512vnni"},
    .kr = QG_K_GROUP,
    .panel_n = QG_PANEL_N,
    .is_supported = qg_vnni_supported,
    .x_block_bytes = qg_vnni_x_bytes,
    .pack_x = qg_vnni_pack_x,
    .reads_x_in_place = qg_vnni_reads_x_in_place,
    .x_block_target = 512 * 1024,
    .max_row_groups = 16,
    .params_bytes = qg_avx512_params_bytes,
    .init_params = qg_vnni_init_params,
    .peak_probe = qg_peak_vnni,
    .peak_instruction = "VPDPBUSD (zmm)",
    .w4_main = {.mr = 8, .nr = 2 * QG_W4_PANEL_N, .run = qg_w4_8x32c8__avx512vnni, .name = "qg_w4_8x32c8__avx512vnni"},
    .w4_few = {.mr = 1, .nr = 4 * QG_W4_PANEL_N, .run = qg_w4_1x64c8__avx512vnni, .name = "qg_w4_1x64c8__avx512vnni"},
    .w4_main_fast = {.mr = 8, .nr = 2 * QG_W4_PANEL_N, .run = qg_w4_8x32c8__avx512vnnigfni,
                     .name = "qg_w4_8x32c8__avx512vnnigfni"},
    .w4_main_fast_supported = qg_vnni_gfni_supported,
    .w4_main_fast_preferred = qg_cpu_w4_high_nibbles_by_gfni,
};
#endif
