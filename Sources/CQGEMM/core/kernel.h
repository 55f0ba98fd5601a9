// Internal: the contract between the driver and a kernel path: the
// microkernel signature, the register tile, the path's descriptor, the
// registry of descriptors, and where a K group of the shared weight layout
// starts. Every path folder under kernels/ includes this and nothing of
// another path. The contract a microkernel must keep is written once, in
// KERNELS.md. Not part of the public C API.
#ifndef QG_KERNEL_H
#define QG_KERNEL_H

#include "qgemm.h"

/// Marks a kernel helper that tiles call with constant arguments (row count,
/// vector count, layout, output kind). Optimized builds inline it into every
/// caller, so that each combination becomes a loop of its own with the
/// constants folded: the tiles' speed rests on that. Unoptimized builds
/// (SwiftPM's debug configuration, the sanitizer and fuzzing builds, the
/// emulated check's 512-bit files) fold nothing, so forced copies there cost only compile
/// time: under AddressSanitizer each x86 kernel file grew to 11 MB of code
/// and 45-50 s of compiling. There each helper stays one ordinary function.
/// The C, and so every memory access the sanitizers check, is the same.
#if defined(__OPTIMIZE__)
#define QG_SPECIALIZE __attribute__((always_inline))
#else
#define QG_SPECIALIZE
#endif

/// What a call's epilogue writes: the output type and, for requantized
/// output, the rounding mode. It is fixed per call, so it is part of a tile's
/// identity (as XNNPACK names a kernel by its requantization and ruy by its
/// destination type): every tile is compiled once per kind, and the driver
/// picks the one this call needs before any tile runs, so no microkernel or
/// epilogue tests the output type or the rounding mode while it works.
/// int8 and uint8 share a kind: their requantized values already lie in the
/// type's range, so the stored byte is the same low byte for both.
typedef enum qg_output_kind {
    QG_KIND_INT32,      // int32 sums, bias and zero-point terms included
    QG_KIND_FLOAT,      // float: (float)acc · S_X·S_W (+ float bias)
    QG_KIND_Q8_SINGLE,  // int8/uint8, fixed-point multiplier, single rounding
    QG_KIND_Q8_DOUBLE,  // int8/uint8, fixed-point multiplier, double rounding
    QG_KIND_Q8_FLOAT,   // int8/uint8, float multiplier, round to nearest even
    QG_KIND_COUNT
} qg_output_kind;

/// Whether a call's output is int8 or uint8 with clamp bounds inside the type
/// and not crossed (qgemm.h asks for both): then saturating narrows clamp to
/// the type's range exactly, which the vector epilogues' short routes rely on.
static inline int qg_clamp_inside_type(const qg_gemm_args *a) {
    const int32_t lo = a->out_type == QG_OUT_UINT8 ? 0 : -128;
    return (a->out_type == QG_OUT_INT8 || a->out_type == QG_OUT_UINT8) && a->clamp_lo >= lo &&
           a->clamp_hi <= lo + 255 && a->clamp_lo <= a->clamp_hi;
}

/// The kind of a call.
static inline qg_output_kind qg_output_kind_of(const qg_gemm_args *a) {
    if (a->out_type == QG_OUT_INT32) return QG_KIND_INT32;
    if (a->out_type == QG_OUT_FLOAT) return QG_KIND_FLOAT;
    if (a->rounding == QG_ROUND_SINGLE) return QG_KIND_Q8_SINGLE;
    return a->rounding == QG_ROUND_DOUBLE ? QG_KIND_Q8_DOUBLE : QG_KIND_Q8_FLOAT;
}

/// A microkernel: computes and stores Y[m0 ..< m0+rows][n0 ..< n0+cols], epilogue
/// included, from one packed row group `x` (the `rows` rows starting at m0, in the
/// kernel's activation layout) and the packed weights `a->w`.
/// 1 ≤ rows ≤ the tile's mr, 1 ≤ cols ≤ its nr, and n0 is a multiple of its nr.
/// `params` is what the kernel's `init_params` made of `a` once for this call
/// (NULL when it has none), as XNNPACK's microkernels take prepared params.
typedef void (*qg_ukernel_fn)(const qg_gemm_args *a, const void *x, int rows, int64_t m0, int64_t n0, int cols,
                              const void *params);

/// One register tile: up to `mr` rows × `nr` channels per call, compiled once
/// per output kind.
typedef struct qg_tile {
    int mr, nr;
    /// The tile's microkernel for each output kind (all NULL: no such tile).
    qg_ukernel_fn run[QG_KIND_COUNT];
    /// The tile's name, qg_gemm_<MR>x<NR>c<KR>__<path> (tile, K group, then
    /// path, as XNNPACK names its kernels); the microkernel of kind K is
    /// that name with _<kind> after qg_gemm (QG_KIND_SUFFIXES).
    const char *name;
} qg_tile;

/// Whether a descriptor has this tile (few_rows is optional).
static inline int qg_tile_exists(const qg_tile *t) { return t->run[QG_KIND_INT32] != NULL; }

/// Defines the microkernels qg_gemm_<kind>_<TILE>, one per output kind, each a
/// call of IMPL(a, x, rows, m0, n0, cols, params, QG_KIND_…) with the kind a
/// compile-time constant: IMPL is a QG_SPECIALIZE function whose epilogue
/// switches on the kind, so each copy keeps only its own kind's code. ATTR is
/// the path's function attributes (its target, say).
#define QG_DEFINE_TILE_KINDS(ATTR, TILE, IMPL)                                                                          \
    QG_DEFINE_TILE_KIND(ATTR, TILE, IMPL, int32, QG_KIND_INT32)                                                        \
    QG_DEFINE_TILE_KIND(ATTR, TILE, IMPL, float, QG_KIND_FLOAT)                                                        \
    QG_DEFINE_TILE_KIND(ATTR, TILE, IMPL, q8single, QG_KIND_Q8_SINGLE)                                                 \
    QG_DEFINE_TILE_KIND(ATTR, TILE, IMPL, q8double, QG_KIND_Q8_DOUBLE)                                                 \
    QG_DEFINE_TILE_KIND(ATTR, TILE, IMPL, q8float, QG_KIND_Q8_FLOAT)
#define QG_DEFINE_TILE_KIND(ATTR, TILE, IMPL, SUFFIX, KIND)                                                            \
    static ATTR void qg_gemm_##SUFFIX##_##TILE(const qg_gemm_args *a, const void *x, int rows, int64_t m0, int64_t n0, \
                                               int cols, const void *params) {                                         \
        IMPL(a, x, rows, m0, n0, cols, params, KIND);                                                                  \
    }

/// The run table of a tile defined by QG_DEFINE_TILE_KINDS, for a descriptor.
#define QG_TILE_KINDS(TILE)                                                                                            \
    {[QG_KIND_INT32] = qg_gemm_int32_##TILE, [QG_KIND_FLOAT] = qg_gemm_float_##TILE,                                   \
     [QG_KIND_Q8_SINGLE] = qg_gemm_q8single_##TILE, [QG_KIND_Q8_DOUBLE] = qg_gemm_q8double_##TILE,                   \
     [QG_KIND_Q8_FLOAT] = qg_gemm_q8float_##TILE}

/// A 4-bit-weight (W4A8) microkernel: computes and stores
/// y[m0 ..< m0+rows][n0 ..< n0+cols] over all of K, by the contract in
/// qgemm.h (1 ≤ rows ≤ the tile's mr, 1 ≤ cols ≤ its nr, which is a multiple
/// of QG_W4_PANEL_N). n0 is a multiple of QG_W4_PANEL_N, not always of nr:
/// with several threads the driver shares N out in whole panels (N = 48 on
/// three threads gives a 1×64 tile n0 = 16 and 32), so a tile finds its
/// panels from n0 / QG_W4_PANEL_N and reads only those holding `cols`.
typedef void (*qg_w4_ukernel_fn)(const qg_w4_args *a, int rows, int64_t m0, int64_t n0, int cols);

/// The packed panel that panel `p` of a 4-bit tile at channel n0 reads: its
/// own, or the tile's first when it lies past the tile's `cols` channels
/// (it may lie past the packed weights' end; its lanes are never stored).
static inline int64_t qg_w4_tile_panel(int64_t n0, int p, int cols) {
    return n0 / QG_W4_PANEL_N + (p * QG_W4_PANEL_N < cols ? p : 0);
}
/// That panel's nibbles, and its scales ([group][QG_W4_PANEL_N] binary16).
static inline const uint8_t *qg_w4_panel_weights(const qg_w4_args *a, int64_t panel) {
    return a->w + panel * (QG_W4_PANEL_N * qg_w4_packed_k(a->k, a->group) / 2);
}
static inline const uint16_t *qg_w4_panel_scales(const qg_w4_args *a, int64_t panel) {
    return a->w_scale + panel * (QG_W4_PANEL_N * qg_w4_groups(a->k, a->group));
}

/// One 4-bit register tile (run NULL: none). Named qg_w4_<MR>x<NR>c8__<path>.
typedef struct qg_w4_tile {
    int mr, nr;
    qg_w4_ukernel_fn run;
    const char *name;
} qg_w4_tile;

/// Everything the driver, the registry, the tools and the tests need to know
/// of one kernel path (BLIS's context and XNNPACK's gemm config in one).
typedef struct qg_kernel {
    /// Path name, lower case: "avx2".
    const char *name;
    /// What the CPU needs, for people: "x86-64 with AVX2".
    const char *requires;
    /// The tile for row groups of more than few_rows.mr rows (and for all, when there is no few_rows tile).
    qg_tile main;
    /// Optional tile for short row groups (LLM decode: M = 1 or 2), e.g. one that streams a
    /// whole 16-channel panel once. Its nr and main.nr must divide the larger of the two.
    qg_tile few_rows;
    /// K values the kernel takes together from the packed weights (the layout's K group).
    int kr;
    /// K values a tile consumes per step of its loop when that is more than kr
    /// (AMX: 64, one tile of activations), else 0; the test shapes then
    /// include K around it and its multiples, and the ways of reading X that
    /// depend on it.
    int k_block;
    /// Channels per panel of the packed weight layout it reads (QG_PANEL_N).
    int panel_n;
    /// 1 for the variants that exist to test the driver and tail rules on every CPU:
    /// never offered as a default, never in `available`.
    int test_only;
    int (*is_supported)(void);
    /// Bytes of packed activations for `rows` rows; row groups of main.mr rows start
    /// at multiples of x_block_bytes(main.mr, kp).
    size_t (*x_block_bytes)(int64_t rows, int64_t kp);
    /// Packs rows [m0, m0 + rows) of X into `dst` in groups of main.mr rows (the last may be shorter).
    void (*pack_x)(const qg_gemm_args *args, int64_t m0, int64_t rows, void *dst);
    /// Optional (NULL: never): whether the tiles read this call's X where it
    /// is and pack_x copies nothing. Then splitting N costs no second packing
    /// of the rows (qg_choose_split).
    int (*reads_x_in_place)(const qg_gemm_args *args);
    /// Block sizes: the packed X block of one task aims at `x_block_target` bytes
    /// (next to the W panel it meets in L2) and at most `max_row_groups` row groups.
    int64_t x_block_target;
    int max_row_groups;
    /// Optional per-call preparation (NULL: none): `params_bytes(a)` bytes, 64-byte
    /// aligned, filled once per call by `init_params(a, params)` on the calling
    /// thread before any tile runs, then read by every tile of the call (per-channel
    /// epilogue constants, say, that would otherwise be rebuilt in every tile).
    size_t (*params_bytes)(const qg_gemm_args *a);
    void (*init_params)(const qg_gemm_args *a, void *params);
    /// Optional per-thread state around a task (NULL: none): `enter` runs on
    /// the task's thread before its first tile, `leave` after its last, so a
    /// path whose tiles need thread state (AMX's tile configuration) sets it
    /// up once per task instead of once per tile, and gives it back.
    void (*enter)(void);
    void (*leave)(void);
    /// Optional (NULL: none): a path may prepare a block's weights once for
    /// all of its row groups. Before the row groups of a block meet channels
    /// [n0, n1) (a step of them, or all of the block's where the driver runs
    /// every step inside each row group), the driver calls
    /// prepare_weights(a, params, n0, n1, x_block, rows, scratch) with the
    /// block as pack_x left it and per-thread `scratch` of
    /// weights_scratch_bytes(a, params, n1 − n0) bytes, 64-byte aligned; a
    /// size of 0 means the call prepares nothing and the driver never calls
    /// it, nor for blocks of fewer than prepare_min_rows rows. The path tells
    /// its own tiles what it prepared through the block's row groups (the
    /// avx2 path on Zen 1: its weights widened to int16).
    size_t (*weights_scratch_bytes)(const qg_gemm_args *a, const void *params, int64_t channels);
    void (*prepare_weights)(const qg_gemm_args *a, const void *params, int64_t n0, int64_t n1, void *x_block,
                            int64_t rows, void *scratch);
    /// The fewest rows of a block worth preparing (0: any): the driver
    /// prepares no smaller block (nor a call of fewer rows), and where the
    /// call prepares anything it splits N rather than cut M into such blocks
    /// when that costs no more work (qg_choose_split). A path with
    /// weights_scratch_bytes has init_params too: the driver passes it the
    /// call's params.
    int64_t prepare_min_rows;
    /// 4-bit weights (qgemm.h's W4A8 layout, shared by every path): the tile
    /// for row groups of more than w4_few.mr rows, and the optional one for
    /// fewer (decode: M = 1). No w4_main: the path has no 4-bit kernel.
    qg_w4_tile w4_main, w4_few;
    /// Optional (run NULL: none): w4_main's twin, of the same mr and nr and
    /// the same bits, that needs more of the CPU than the path does and runs
    /// in w4_main's place where w4_main_fast_supported() says the CPU has it
    /// and w4_main_fast_preferred (below) allows (XNNPACK's avx512vnnigfni
    /// kernels beside its avx512vnni ones).
    qg_w4_tile w4_main_fast;
    int (*w4_main_fast_supported)(void);
    /// Optional (NULL: wherever it is supported): whether the driver runs
    /// the twin on this CPU where it is supported. A twin is only faster
    /// where the instructions it saves cost what the ones it adds do not
    /// (avx512vnni's GFNI twin: on Intel, not on Zen 4), while the kernel
    /// tester checks it wherever the CPU can run it.
    int (*w4_main_fast_preferred)(void);
    /// Register-only loop of the kernel's multiply-accumulate instruction; returns MACs done.
    int64_t (*peak_probe)(int64_t iterations);
    /// What peak_probe runs, for people ("VPMADDWD + VPADDD (ymm)"): the
    /// tools print it beside the peak they measure with it.
    const char *peak_instruction;
} qg_kernel;

/// The 4-bit main tile a call of `kernel` runs on this CPU: w4_main_fast
/// where the CPU has what it needs and the path prefers it there, else
/// w4_main.
static inline const qg_w4_tile *qg_w4_main_tile(const qg_kernel *kernel) {
    const int fast = kernel->w4_main_fast.run && kernel->w4_main_fast_supported() &&
                     (!kernel->w4_main_fast_preferred || kernel->w4_main_fast_preferred());
    return fast ? &kernel->w4_main_fast : &kernel->w4_main;
}

/// The registry (registry.c): every kernel compiled for this architecture, worst
/// to best; the best supported non-test entry is the default path.
extern const qg_kernel *const qg_kernels[];
extern const int qg_kernel_count;

/// The kernel of a path number (1 ... qg_path_count() − 1), or NULL for the reference.
const qg_kernel *qg_kernel_for_path(int path);

/// For the kernel tester, which runs both store routes on every CPU: 0 or 1
/// overrides qg_cpu_line_crossing_stores_cheap (qgemm.h) for the calls that
/// follow, −1 restores the CPU's answer. The fuzz targets draw it too (Fuzz/, ForcedVariants).
void qg_cpu_force_line_crossing_stores(int cheap);

/// For the kernel tester, which runs both 4-bit decode routes on every CPU:
/// 0 or 1 overrides qg_cpu_one_stream_decode (qgemm.h) for the calls that
/// follow, −1 restores the CPU's answer. The fuzz targets draw it too (Fuzz/, ForcedVariants).
void qg_cpu_force_one_stream_decode(int one);

/// For the kernel tester, which runs both ways of widening on every AVX2
/// CPU: 0 or 1 overrides qg_cpu_widen_bytes_by_shuffles (qgemm.h) for the
/// calls that follow, −1 restores the CPU's answer. The fuzz targets draw it too (Fuzz/, ForcedVariants).
void qg_cpu_force_widen_bytes_by_shuffles(int shuffles);

/// For the kernel tester, which runs the avx2 path both ways on every AVX2
/// CPU: 0 or 1 overrides qg_cpu_avx2_widens_weights_ahead (qgemm.h) for the
/// calls that follow, −1 restores the CPU's answer. The fuzz targets draw it too (Fuzz/, ForcedVariants).
void qg_cpu_force_avx2_widens_weights_ahead(int ahead);

/// The packed 4-bit weights' bytes above which calls of two rows read their
/// panels one at a time where qg_cpu_one_stream_decode says so
/// (kernels/x86/w4_zmm.h): the L2's size, so that weights the L2 holds keep
/// the two-panel tile.
int64_t qg_cpu_two_row_stream_min_bytes(void);

/// For the kernel tester, whose weights are small: a value ≥ 0 overrides
/// qg_cpu_two_row_stream_min_bytes for the calls that follow, −1 restores
/// it. The fuzz targets draw it too (Fuzz/, ForcedVariants).
void qg_cpu_force_two_row_stream_min_bytes(int64_t bytes);

/// Whether the avxvnni 6-row 4-bit tile runs as two tiles of three rows with
/// the high nibbles' sums apart (Intel CPUs: cpu.c), rather than six rows
/// together; its 3-row calls then take that form too. Both give the same
/// bits.
int qg_cpu_w4_ymm_three_row_passes(void);

/// For the kernel tester, which runs both forms on every CPU: 0 or 1
/// overrides qg_cpu_w4_ymm_three_row_passes for the calls that follow, −1
/// restores the CPU's answer. The fuzz targets draw it too (Fuzz/, ForcedVariants).
void qg_cpu_force_w4_ymm_three_row_passes(int three);

/// For the fuzz targets, whose inputs are small: a value > 0 cuts the
/// quantization of rows into parts of about that many values (whole rows,
/// at most one a thread) instead of qg_row_parts' rule, for the calls that
/// follow; 0 or less restores the rule. The parts give the same bits and
/// report the same first fault as one pass (threadpool.c).
void qg_force_row_part_values(int64_t values);

/// Where the K group `g` of channel `n` starts in the shared packed layout.
static inline const int8_t *qg_weights_at(const qg_gemm_args *a, int64_t n, int64_t g) {
    return a->w + (n / QG_PANEL_N) * (QG_PANEL_N * a->kp) + g * (QG_PANEL_N * QG_K_GROUP) + (n % QG_PANEL_N) * QG_K_GROUP;
}

#endif
