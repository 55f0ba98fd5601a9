// CQGEMM: the C half of swift-qgemm.
//
// Every exported symbol starts with `qg_`. The Swift module QGEMM validates
// all user input before it reaches these functions; the C side trusts its
// arguments (sizes, strides, pointers) and documents what it needs.
//
// The microkernel contract (packed layouts, tiles, tails, epilogue) is written
// once, in Sources/CQGEMM/KERNELS.md.
#ifndef QGEMM_H
#define QGEMM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// MARK: - CPU features

/// What the running CPU (and the OS, for register state) supports.
typedef struct qg_cpu_features {
    // x86-64
    int sse41, avx, avx2, fma;
    int avx512f, avx512bw, avx512vl, avx512vnni, avxvnni;
    /// GF2P8AFFINEQB and the other Galois-field byte instructions (GFNI),
    /// in whatever encodings the vector features above allow.
    int gfni;
    /// VCVTPH2PS on xmm/ymm (F16C; every AVX2 CPU has it).
    int f16c;
    // arm64
    int neon, dotprod, i8mm;
    /// NUL-terminated CPU brand string (may be empty).
    char brand[64];
} qg_cpu_features;

/// Detected once (CPUID / auxv), then cached. Thread-safe.
const qg_cpu_features *qg_cpu_get_features(void);

/// Logical CPUs this process may use (at least 1), found once (core/limits.c):
/// on Linux the CPUs of the calling thread's affinity mask at the first call,
/// at most its cgroup's CPU quota rounded up; elsewhere the online CPUs. What
/// a call asked to run on all cores (threads 0) runs on.
int qg_cpu_count(void);

/// Online logical CPUs (at least 1), whether this process may use them or not.
int qg_cpu_online_count(void);

/// The memory limit of this process's cgroup in bytes (the smallest of its
/// cgroup's and its ancestors'), found once, at the first call, as the CPU
/// count is; 0 where none is set or it cannot be read (and on every system
/// but Linux).
int64_t qg_memory_limit_bytes(void);

/// The limits qg_cpu_count and qg_memory_limit_bytes read, from a file in
/// /proc/self/cgroup's format and the cgroup hierarchies mounted under
/// `root` (v2 at `root` or `root`/unified, v1 at `root`/controller-list):
/// `cpus` the smallest CPU quota as CPUs (quota ÷ period), `memory_bytes`
/// the smallest memory limit, each 0 where none is set; a NULL output is not
/// read. Exposed for tests.
void qg_cgroup_limits(const char *cgroup_file, const char *root, double *cpus, int64_t *memory_bytes);

/// `cpus` (at least 1) at most a CPU quota of `quota` CPUs rounded up (0: no
/// quota), as qg_cpu_count applies it. Exposed for tests.
int qg_cpus_within_quota(int cpus, double quota);

/// Bytes of the data (or unified) cache of `level` (1, 2 or 3) of the first
/// CPU, read once from Linux's sysfs (/sys/devices/system/cpu/cpu0/cache) or,
/// on Darwin, from sysctl; 0 where it cannot be read. Paths derive block
/// sizes from it, with a default where it is 0.
int64_t qg_cpu_cache_bytes(int level);

/// Whether a 64-byte store that crosses a cache line costs this CPU about
/// what one within a line does (AMD family 1Ah; measured on Zen 5), found
/// once. Then the avx512vnni tile stores int32 and float rows that start off
/// a line as they are at K ≤ 128, else it splits them at the lines
/// (KERNELS.md, "The epilogue"). Only the speed differs, never a bit.
int qg_cpu_line_crossing_stores_cheap(void);

/// Whether the 512-bit tiles read the weights of a call of few rows as one
/// stream from memory (AMD family 1Ah, where it was measured; KERNELS.md,
/// "One stream for decode"), found once: the 4-bit decode tile (the tile of
/// one-row groups: M = 1) takes its four panels one at a time, each panel's
/// nibbles from start to end with a software prefetch 8 KiB ahead, instead
/// of side by side (0.93–0.97 of a plain read instead of 0.78–0.87), 4-bit
/// calls of two rows whose weights exceed the L2 do the same, and 4-bit
/// calls of 4 to 8 rows and avx512vnni int8 calls of 10 to 12 prefetch
/// the next tile's panels in address order instead of each panel a few KiB
/// ahead. Only the speed differs, never a bit.
int qg_cpu_one_stream_decode(void);

/// Whether the avx512vnni path's 4-bit main tile takes the high nibbles of
/// each chunk down with one GF2P8AFFINEQB (its twin,
/// qg_w4_8x32c8__avx512vnnigfni) rather than a 16-bit shift and an AND,
/// found once: Intel CPUs with GFNI, whose server cores issue
/// all three on VPDPBUSD's ports (Emerald Rapids, 128×4096×4096: 1.04–1.07×
/// the shift). On AMD's Zen 4 the twin ran slower (0.93–1.00× the shift,
/// KERNELS.md, "GFNI"), so AMD CPUs (Zen 5 not measured) and others keep the
/// shift. Only the speed differs, never a bit.
int qg_cpu_w4_high_nibbles_by_gfni(void);

/// Whether the avx2 path's int8 main tile widens the weights' bytes to int16
/// with byte shuffles (VPSHUFB, VPERMQ, VPMOVSXBW) rather than shifts
/// (VPSLLW, VPSRAW), found once: Intel's Haswell and Broadwell cores with
/// AVX2 (family 6, models 3Ch, 3Fh, 45h, 46h, 3Dh, 47h, 4Fh and 56h), whose
/// vector shifts run on port 0 only, beside VPMADDWD (KERNELS.md, "AVX2
/// detail"). Only the speed differs, never a bit.
int qg_cpu_widen_bytes_by_shuffles(void);

/// Whether the avx2 path widens each step's weights to int16 once per block
/// of at least 32 rows, for all of the block's row groups, instead of in
/// every main tile, found once: AMD's Zen 1 and Zen+ (family 17h, models
/// below 30h), where the tile's widening instructions cost beside VPMADDWD
/// (KERNELS.md, "AVX2 detail"). Only the speed differs, never a bit.
int qg_cpu_avx2_widens_weights_ahead(void);

/// The huge page of qg_advise_huge_pages: 2 MiB.
#define QG_HUGE_PAGE_BYTES 2097152

/// Asks Linux to back the whole 2 MiB pages inside [p, p + bytes) with
/// transparent huge pages (madvise MADV_HUGEPAGE), before the memory is first
/// written: weights streamed from memory read faster so. Advice only: nothing
/// happens elsewhere, for buffers under 2 MiB, or where the system refuses.
void qg_advise_huge_pages(void *p, int64_t bytes);

/// Threads that ran the last GEMM the calling thread made (1 for the reference
/// path, for a busy pool or for work too small to split; 0 before any call
/// and after a call that failed for want of memory before running).
int qg_threads_of_last_call(void);
/// Records a call with no rows, which runs no kernel, as one thread's (what
/// qg_gemm and qg_w4_gemm record at M = 0), for the Swift entry points that
/// return before any C call then.
void qg_note_call_without_rows(void);

/// Runs task(ctx, t, worker) once for every t in [0, count) on up to
/// `threads` threads of the pool the GEMMs run on, the calling thread
/// included, and returns when every task has ended. Tasks are handed out one
/// at a time in order of t, each to whichever of the call's threads is free.
/// `worker` (0 ≤ worker < max(threads, 1)) names the thread: 0 the caller,
/// the others a pool worker each, so while a task runs no other task of the
/// call has its worker (scratch indexed by it is never shared). When the pool
/// is busy (a GEMM or qg_run_tasks of another thread, or the call whose task
/// calls this) every task runs on the calling thread, as worker 0, as it does
/// for threads ≤ 1. qg_threads_of_last_call reads afterwards as it did before
/// (GEMMs the tasks ran on this thread are not reported). A task must not
/// fork: the fork would wait for this call, which waits for the task.
/// Nothing for count ≤ 0.
void qg_run_tasks(int64_t count, int threads, void (*task)(void *ctx, int64_t t, int worker), void *ctx);

/// The calling thread's floating-point control state (MXCSR on x86-64, FPCR
/// on arm64: the rounding mode and flush-to-zero every float instruction
/// obeys; 0 elsewhere), and setting it. The pool's workers take the caller's
/// for each job. On x86-64 the exception flags (MXCSR's bits 0-5) are not
/// part of it: the state read leaves them out and a set keeps the thread's
/// own, so each thread's flags record what that thread raised.
uint64_t qg_fp_control_state(void);
void qg_set_fp_control_state(uint64_t state);

/// Rows of X per task (MC) of the last GEMM the calling thread ran through a
/// kernel path's driver (0 before any such call): what qg_path_block_rows
/// must predict.
int64_t qg_block_rows_of_last_call(void);

// MARK: - Kernel paths

/// Kernel paths are numbered 0 ..< qg_path_count(). Path 0 is the scalar
/// reference that defines every result; the others come from the kernel
/// registry (Sources/CQGEMM/core/kernel_list.h), worst to best, and must reproduce
/// the reference bit for bit.
enum { QG_PATH_REFERENCE = 0 };

/// What a path is, for tools and tests.
typedef struct qg_path_info {
    const char *name;      // "avx2"
    const char *requires;  // "x86-64 with AVX2"
    const char *ukernel;   // the main tile's name, "qg_gemm_4x16c4__avx2"
    int mr, nr, kr;        // the main tile: rows × channels, and the K group
    const char *few_rows_ukernel; // the tile for short row groups, or NULL
    int few_rows_mr, few_rows_nr;
    int test_only;         // 1: exists to test the driver; never a default
    int panel_n;           // the weight layout it reads: panels of panel_n channels, K groups of kr
    const char *peak_instruction; // what qg_peak_probe_int8 runs for it, "VPMADDWD + VPADDD (ymm)"
} qg_path_info;

/// Number of paths (the reference plus every registered kernel).
int qg_path_count(void);
/// Lower-case name, e.g. "reference", "avx2"; "unknown" out of range.
const char *qg_path_name(int path);
/// The path with this name, or -1.
int qg_path_find(const char *name);
/// Fills `info`; returns 0, or -1 for a path number out of range.
int qg_path_describe(int path, qg_path_info *info);
/// The weight layout `path` reads (panel_n × kr); the shared layout for the
/// reference. Returns 0, or -1 for a path number out of range.
int qg_path_layout(int path, int *panel_n, int *kr);
/// 1 when the CPU can run `path`, else 0.
int qg_path_is_supported(int path);
/// The best supported path that is not test-only.
int qg_path_best(void);
/// Rows of X per task (MC) the driver uses on `path` for this K, M and N:
/// the kernel's X block budget, or, for weights past half the L3, the most
/// rows its tile allows (max_row_groups·MR) as far as every core's X block
/// fits a quarter of the L3, and never fewer than the budget gives.
int64_t qg_path_block_rows(int path, int64_t k, int64_t m, int64_t n);

/// Most values of each dimension qg_path_test_shapes gives.
#define QG_TEST_SHAPES_MAX 64

/// The shapes that test a path at every edge its tiles and the driver's
/// blocking can get wrong, the one rule for the kernel tester, the test
/// suite and `qgemm validate` (as XNNPACK derives each microkernel's tests
/// from its tile):
/// - K: 1 … 2·KR+1 and `large_k`, and KB−1, KB, KB+1, 2·KB, 2·KB+3 for a path whose
///   tile consumes K in blocks of KB > KR (AMX: 64);
/// - N: NR−1, NR, NR+1, 2·NR+3 for the main tile and the few-rows tile;
/// - M: 1 … MR+1, 2·MR+1, and MC−1, MC, MC+1 at each K above (MC from
///   qg_path_block_rows for a large M and the largest N above).
/// Each list is ascending, each value once, at most QG_TEST_SHAPES_MAX long;
/// the shapes are their product. The reference path has tile 1×1, K group 1
/// and no blocking. Returns 0, or -1 for a path number out of range or a
/// list that would be longer than QG_TEST_SHAPES_MAX.
int qg_path_test_shapes(int path, int64_t large_k, int64_t ms[QG_TEST_SHAPES_MAX], int *m_count,
                        int64_t ns[QG_TEST_SHAPES_MAX], int *n_count, int64_t ks[QG_TEST_SHAPES_MAX], int *k_count);

// MARK: - Packed weight layout

/// Output channels per packed panel.
#define QG_PANEL_N 16
/// Consecutive K values stored together for one channel.
#define QG_K_GROUP 4

/// K rounded up to a multiple of QG_K_GROUP.
static inline int64_t qg_packed_k(int64_t k) { return (k + QG_K_GROUP - 1) / QG_K_GROUP * QG_K_GROUP; }
/// N rounded up to a multiple of QG_PANEL_N.
static inline int64_t qg_packed_n(int64_t n) { return (n + QG_PANEL_N - 1) / QG_PANEL_N * QG_PANEL_N; }
/// Bytes of the packed weights for an N×K matrix.
static inline int64_t qg_packed_size(int64_t n, int64_t k) { return qg_packed_n(n) * qg_packed_k(k); }
/// Where W[n][k] lives in the packed buffer (the layout's index map).
static inline int64_t qg_packed_index(int64_t n, int64_t k, int64_t kp) {
    return (n / QG_PANEL_N) * (QG_PANEL_N * kp) + (k / QG_K_GROUP) * (QG_PANEL_N * QG_K_GROUP)
         + (n % QG_PANEL_N) * QG_K_GROUP + (k % QG_K_GROUP);
}

/// Another panel layout, for kernels that read one (their descriptor's
/// panel_n × kr): panels of `panel_n` channels, K in groups of `kr`, same
/// order inside (group-major, channel-major, kr values per channel).
/// `panel_n` divides QG_PANEL_N, so per-channel arrays padded for the shared
/// layout are long enough for it too.
static inline int64_t qg_layout_k(int64_t k, int kr) { return (k + kr - 1) / kr * kr; }
static inline int64_t qg_layout_size(int64_t n, int64_t k, int panel_n, int kr) {
    return (n + panel_n - 1) / panel_n * panel_n * qg_layout_k(k, kr);
}
static inline int64_t qg_layout_index(int64_t n, int64_t k, int64_t kp, int panel_n, int kr) {
    return (n / panel_n) * (panel_n * kp) + (k / kr) * (panel_n * kr) + (n % panel_n) * kr + (k % kr);
}
/// Copies weights packed in the shared layout into the layout panel_n × kr
/// (qg_layout_size bytes, padding zeroed).
void qg_repack_weights(const int8_t *packed, int64_t n, int64_t k, int panel_n, int kr, int8_t *out);

/// Packs W (element [n][k] at `w[n*n_stride + k*k_stride]`) into `packed`
/// (qg_packed_size(n, k) bytes, padding zeroed) and writes Σ_k W[n][k] to
/// `row_sum[n]` and Σ_k |W[n][k]| to `abs_sum[n]` (int64, exact).
void qg_pack_weights(const int8_t *w, int64_t n_stride, int64_t k_stride, int64_t n, int64_t k,
                     int8_t *packed, int64_t *row_sum, int64_t *abs_sum);

// MARK: - GEMM arguments

typedef enum qg_output_type {
    QG_OUT_INT8 = 0,
    QG_OUT_UINT8 = 1,
    QG_OUT_INT32 = 2,
    QG_OUT_FLOAT = 3
} qg_output_type;

typedef enum qg_rounding {
    QG_ROUND_SINGLE = 0,
    QG_ROUND_DOUBLE = 1,
    QG_ROUND_FLOAT = 2
} qg_rounding;

/// One quantized GEMM, Y[M×N] = epilogue(X[M×K] · W[N×K]ᵀ).
///
/// The exact accumulator (KERNELS.md, "The problem") is formed as
///
///     acc[m][n] = Σ_k W[n][k]·X[m][k]  +  bias[n]
///                 − x_zero_point·row_sum[n]  − row_zero_point[m]·row_sum[n]
///
/// (terms with a NULL pointer are absent). Static quantization folds Z_X into
/// `bias` at pack time and passes x_zero_point = 0; a zero point known only
/// per call, or per row, goes through the last two terms. The caller
/// guarantees |acc| ≤ 2^31 − 1 (PackedWeights' overflow check).
typedef struct qg_gemm_args {
    /// M ≥ 0, N ≥ 1, K ≥ 1 (the Swift layer refuses K = 0; a kernel path's
    /// X block for K = 0 would be empty, which its scratch does not provide).
    int64_t m, n, k;
    /// X: int8 (x_unsigned = 0) or uint8 (x_unsigned = 1), row m at x + m*ldx.
    const void *x;
    int64_t ldx;
    int x_unsigned;
    /// Packed W in the layout the path reads (qg_pack_weights, or qg_repack_weights
    /// for a path with its own panel_n × kr) and K padded to that layout's K group.
    const int8_t *w;
    int64_t kp;
    const int32_t *row_sum;        // [n], Σ_k W[n][k]
    const int32_t *bias;           // [n] or NULL
    int32_t x_zero_point;
    const int32_t *row_zero_point; // [m] or NULL
    /// Y, row m at y + m*ldy elements of out_type.
    void *y;
    int64_t ldy;
    qg_output_type out_type;
    /// Requantized outputs (QG_OUT_INT8 / QG_OUT_UINT8).
    qg_rounding rounding;
    const int32_t *multiplier;     // [n], M0 in [2^30, 2^31) or 0
    const int32_t *shift;          // [n], in [-31, 30]
    const float *float_multiplier; // [n], for QG_ROUND_FLOAT
    int32_t y_zero_point;          // in the output type's range
    int32_t clamp_lo, clamp_hi;    // in the output type's range, clamp_lo ≤ clamp_hi
    /// Float output: y = (float)acc * scale + out_bias[n], where
    /// scale = x_scale * weight_scale[n], or row_scale[m] * weight_scale[n]
    /// when row_scale != NULL (the product is formed in float).
    float x_scale;
    const float *weight_scale;     // [n]
    const float *row_scale;        // [m] or NULL
    const float *out_bias;         // [n] or NULL
} qg_gemm_args;

// MARK: - Entry points

/// The scalar reference: obviously correct, int64 throughout, never optimised.
void qg_gemm_reference(const qg_gemm_args *args);

/// Runs `args` on `path` with up to `threads` threads (0 = all cores), and
/// at most one per 2^16 multiply-adds (on Zen 2, two threads lost to one on
/// calls of 2^15; driver.h has the figures).
/// Returns 0; -1 if the path is not supported on this CPU; -2 if per-thread
/// scratch memory could not be allocated (nothing is then guaranteed written);
/// -3, writing nothing, for a negative M, N or K, or at M, N > 0 an ldx < K
/// or ldy < N (QGEMM refuses those first).
///
/// Every per-channel array (bias, row_sum, multiplier, shift,
/// float_multiplier, weight_scale, out_bias) must hold qg_packed_n(n)
/// entries: the SIMD epilogues read whole vectors of channels.
int qg_gemm(const qg_gemm_args *args, int path, int threads);

// MARK: - 4-bit weights with int8 or uint8 activations (W4A8)

/// Group-wise int4 weights q_W[n][k] ∈ [−8, 7] with a half-precision scale
/// S_W[n][g] (IEEE binary16, as GPTQ, AWQ and llama.cpp store theirs) per
/// output channel and group of `group` consecutive K values, times int8
/// activations quantized per row, symmetrically (Z_X = 0): q_X[m][k] with
/// scale S_X[m] (uint8 ones with a zero point per row: qg_w4_args.x_shift
/// below). The contract (KERNELS.md, "4-bit weights"):
///
///     acc_g[m][n] = Σ_{k∈g} q_W[n][k]·q_X[m][k]                 (int32, exact)
///     s = +0;  for g = 0, 1, …:  s = fma((float)S_W[n][g], (float)acc_g, s)
///     y[m][n] = fma(S_X[m], s, bias[n])                         (bias +0 when absent)
///
/// Every fma is one rounding, and the groups are summed in increasing order,
/// so every path gives the reference's bits. |acc_g| ≤ 8·128·group < 2^24, so
/// (float)acc_g is exact, and so is every binary16 value as a float.
///
/// Packed layout (one for every path): panels of QG_W4_PANEL_N channels;
/// within a panel, K in chunks of QG_W4_K_CHUNK = 8, each 64 bytes: byte 4·j + i
/// (channel j of the panel, i = 0…3) holds u(8c + i) in its low nibble and
/// u(8c + 4 + i) in its high one, u = q_W + 8 ∈ [0, 15]. So one chunk's low
/// nibbles are a VPDPBUSD operand of 16 channels × 4 K, its high nibbles the
/// next 4 K. Padding (channels past N, K past K) holds q_W = 0 with scale 0.
/// Scales are binary16 bits, [panel][group][QG_W4_PANEL_N].
#define QG_W4_PANEL_N 16
#define QG_W4_K_CHUNK 8
/// Largest group size (|acc_g| stays below 2^24, so its float is exact).
#define QG_W4_MAX_GROUP 4096

/// Groups per channel: ⌈K / group⌉.
static inline int64_t qg_w4_groups(int64_t k, int64_t group) { return (k + group - 1) / group; }
/// K padded to whole groups.
static inline int64_t qg_w4_packed_k(int64_t k, int64_t group) { return qg_w4_groups(k, group) * group; }
/// The least row stride of prepared activations: K padded to whole groups,
/// and 64 bytes more (a tile may read 64 bytes from any group's start).
static inline int64_t qg_w4_row_bytes(int64_t k, int64_t group) { return qg_w4_packed_k(k, group) + 64; }
/// Bytes of packed 4-bit weights.
static inline int64_t qg_w4_packed_bytes(int64_t n, int64_t k, int64_t group) {
    return qg_packed_n(n) * qg_w4_packed_k(k, group) / 2;
}
/// Binary16 scales of packed weights: [panel][group][QG_W4_PANEL_N].
static inline int64_t qg_w4_scale_count(int64_t n, int64_t k, int64_t group) {
    return qg_packed_n(n) * qg_w4_groups(k, group);
}

/// Packs int4 values q[n][k] (at q[n*ldq + k], each in [−8, 7]) and their
/// scales (binary16 bits, scales[n*groups + g]) into the layout above; group
/// is a multiple of QG_W4_K_CHUNK in [8, QG_W4_MAX_GROUP].
void qg_w4_pack(const int8_t *q, int64_t ldq, int64_t n, int64_t k, int64_t group, const uint16_t *scales,
                uint8_t *packed, uint16_t *packed_scales);

/// The group quantization of 4-bit weights w[n][k] (finite; w[n*k + i]),
/// groups of `group` along K (the last one cut short by K): per channel c
/// and group g, scales[c*groups + g] and the values
/// values[c*k + i] = clamp(round-half-away(w/S), lo, 7). absMax rule
/// (`minimizing` 0): S = absMax/7 rounded to binary16, lo = −7. Minimizing
/// rule: of the candidates absMax/d (d = 7, 7.25, …, 14) rounded to
/// binary16, the one with the least Σ (w − S·q)² (each term in float, squared
/// and summed in double in K order), the first on a tie; lo = −8. A group
/// with no usable candidate gets scale 0 (below binary16's smallest) or +Inf
/// (absMax/7 above 65504), and values 0. `vector` 1 takes the widest copy
/// this CPU has (AVX2 weighs 8 candidates at once), 0 the plain C one: the
/// same bits.
void qg_w4_quantize_groups(const float *w, int64_t n, int64_t k, int64_t group, int minimizing, int vector,
                           int8_t *values, float *scales);
/// The minimizing rule's error Σ (w − S·q)² over the `count` weights at `w`
/// for each of the 8 `scales` (finite, above 0), with q in [lo, hi] (whole
/// numbers of at most 16 in size): what
/// qg_w4_quantize_groups compares, on the copy `vector` chooses.
void qg_w4_squared_errors(const float *w, int64_t count, const float *scales, float lo, float hi, int vector,
                          double *errors);

/// Adds to h (k×k, row-major) the upper triangle of xᵀx for the calibration
/// rows x (rows×K floats): h[i*k + j] += Σ_r x[r][i]·x[r][j] for j ≥ i, in
/// double, each element summed over r in order (every product of two floats
/// is exact in double, so these are the bits of a plain loop over r). Only
/// H's blocks of 4 rows b = i/4 with b % parts == part: parts calls on
/// threads of their own fill it all. The entries left of the diagonal are
/// not written. `vector` 1 takes the AVX2 tiles where the CPU has them, 0
/// the plain C copy: the same bits.
void qg_gram_upper_part(const float *x, int64_t rows, int64_t k, int64_t part, int64_t parts, int vector, double *h);

/// IEEE binary16 bits of `f`, rounded to nearest even in every rounding mode
/// (±Inf beyond 65504 after rounding; NaN stays NaN).
uint16_t qg_f16_from_f32(float f);
/// The float value of binary16 bits (exact).
float qg_f32_from_f16(uint16_t h);
/// q_W[n][k] read back from the packed layout.
int8_t qg_w4_packed_value(const uint8_t *packed, int64_t n, int64_t k, int64_t kp);

/// Dynamic per-row activation quantization for W4A8: per row, S_X = absmax/127
/// (1 for a row of zeros; rounded up where it is below 2^-126 and 127 of it
/// fall short of absmax, as QuantizationParameters' scales are), q =
/// round-half-away(x / S_X) (as qg_quantize_rows,
/// zero point 0), zero-padded to ldq ≥ qg_w4_row_bytes; and the row's offset term
/// offset[m][g] = −8·Σ_{k∈g} q_X[m][k], which takes back the +8 the stored
/// weights carry (u = q_W + 8), so kernels multiply unsigned nibbles by signed
/// activations. Returns −1, or the flat index (m·K + i) of the first NaN or
/// ±Inf (rows before it are written).
int64_t qg_w4_prepare_rows(const float *x, int64_t rows, int64_t k, int64_t ldx, int64_t group, int8_t *q, int64_t ldq,
                           float *scale, int32_t *offset);
/// qg_w4_prepare_rows on up to `threads` threads (0: as many as the process
/// may use; one per 2^15 values at most, or, from 2^14 values, one part for
/// the caller and each of the pool's workers still spinning after a job if
/// that gives more), in parts of whole rows: the same
/// bits whatever the count, and the same return value (the first NaN or ±Inf
/// of all rows; rows after it may be written too). qg_threads_of_last_call
/// reads afterwards as it did before.
int64_t qg_w4_prepare_rows_threads(const float *x, int64_t rows, int64_t k, int64_t ldx, int64_t group, int8_t *q,
                                   int64_t ldq, float *scale, int32_t *offset, int threads);

/// Dynamic per-row activation quantization for W4A8 with a zero point per
/// row (the uint8 activations of Int4Weights.Activations.uint8): per row,
/// S_X and Z_X by qg_uint8_parameters from the row's min and max (the rule
/// of the int8 layers' dynamic per-row mode), q_X = clamp(round-half-away(x /
/// S_X) + Z_X, 0, 255), stored as q_X − 128 (int8, the form every 4-bit tile
/// multiplies) zero-padded to ldq ≥ qg_w4_row_bytes; scale[m] = S_X,
/// shift[m] = 128 − Z_X as a float, and offset[m][g] = −8·Σ_{k∈g} (q_X − 128).
/// With qg_w4_args.x_shift = shift and .w_sum = qg_w4_weight_sums, a call
/// computes Σ q_W·(q_X − Z_X) (below, "zero points"). Returns −1; or, for
/// the first row m (in row order) that cannot be quantized, the flat index
/// m·K + i of its first NaN or ±Inf, or −2 − m when its values are finite but
/// qg_uint8_parameters refuses its range. Threads as qg_w4_prepare_rows_threads.
int64_t qg_w4_prepare_rows_uint8_threads(const float *x, int64_t rows, int64_t k, int64_t ldx, int64_t group, int8_t *q,
                                         int64_t ldq, float *scale, float *shift, int32_t *offset, int threads);
/// Either of the two above (shift NULL: qg_w4_prepare_rows_threads, else
/// the uint8 one) on the rows of a smoothed layer, X·diag(1/divisor): in
/// the same task as its quantization, row m is divided by the K factors
/// (qg_divide_columns) into smoothed + m·K and quantized from there, so
/// the division is shared out over the threads too and the row is read
/// from memory once. The return value's indices and rows are those of the
/// divided rows (a NaN or ±Inf there, or a range the uint8 rule refuses);
/// the failing row's divided values are written. divisor NULL: the rows of
/// x themselves (smoothed is not touched).
int64_t qg_w4_prepare_smoothed_rows_threads(const float *x, int64_t rows, int64_t k, int64_t ldx, const float *divisor,
                                            float *smoothed, int64_t group, int8_t *q, int64_t ldq, float *scale,
                                            float *shift, int32_t *offset, int threads);

/// Each channel's weight sum for zero points: for n < N,
/// w_sum[n] = +0, then for g = 0, 1, …: w_sum[n] = fma((float)S_W[n][g], (float)Σ_{k∈g} q_W[n][k], w_sum[n]),
/// and 0 for the padding up to qg_packed_n(n). Computed once per packed
/// weights (Int4Weights does so when it is built).
void qg_w4_weight_sums(const uint8_t *packed, const uint16_t *packed_scales, int64_t n, int64_t k, int64_t group,
                       float *w_sum);

/// One W4A8 GEMM, y[M×N] = X·Wᵀ (+ bias), by the contract above.
typedef struct qg_w4_args {
    /// K ≥ 1; group a multiple of 8 in 8 … 4096 (QG_W4_MAX_GROUP), as
    /// Int4Weights checks before any call (qg_w4_gemm refuses them again).
    int64_t m, n, k, group;
    /// Prepared activations (qg_w4_prepare_rows, or
    /// qg_w4_prepare_rows_uint8_threads with x_shift): row m at x + m*ldx, zero
    /// padded to ldx ≥ qg_w4_row_bytes; scale[m]; offset[m*groups + g].
    const int8_t *x;
    int64_t ldx;
    const float *x_scale;
    const int32_t *x_offset;
    /// Packed weights and scales (qg_w4_pack).
    const uint8_t *w;
    const uint16_t *w_scale;
    /// [qg_packed_n(n)] or NULL.
    const float *bias;
    float *y;
    int64_t ldy;
    /// Zero points: NULL for symmetric activations (Z_X = 0). Else the rows
    /// come from qg_w4_prepare_rows_uint8_threads, x_shift[m] = 128 − Z_X[m]
    /// is its `shift`, w_sum[n] its weights' qg_w4_weight_sums, and the last
    /// step of the contract becomes
    ///     y[m][n] = fma(S_X[m], fma(x_shift[m], w_sum[n], s), bias[n]):
    /// s sums the groups of q_W·(q_X − 128), and x_shift·w_sum adds back
    /// Σ_g S_W·(128 − Z_X)·Σ_{k∈g} q_W, once per output instead of per group.
    const float *x_shift;
    const float *w_sum;
} qg_w4_args;

/// The scalar reference: decodes each weight, sums each group in int64.
void qg_w4_gemm_reference(const qg_w4_args *args);
/// 1 when `path` has 4-bit tiles (the reference always has).
int qg_w4_path_has_kernel(int path);
/// The best supported path with 4-bit tiles that is not test-only.
int qg_w4_path_best(void);
/// The main 4-bit tile a call on `path` runs on this CPU ("qg_w4_8x32c8__avx512vnnigfni"
/// where the CPU has the path and qg_cpu_w4_high_nibbles_by_gfni says so, else
/// "qg_w4_8x32c8__avx512vnni"), or NULL.
const char *qg_w4_path_ukernel(int path);
/// Rows of X per m-block (MC) the 4-bit driver uses on `path` for this K and
/// group (a quarter of the L2 the OS reports); 0 for a path without 4-bit
/// tiles (and the reference) or K, group < 1.
int64_t qg_w4_path_block_rows(int path, int64_t k, int64_t group);
/// Runs `args` on `path` with up to `threads` threads (0 = all cores), and
/// at most one per 2^16 multiply-adds, as qg_gemm.
/// Returns 0, or −1 when the CPU cannot run the path or it has no 4-bit tiles,
/// or −3, writing nothing, for a negative M or N, K < 1, a group size
/// outside the layout's, or at M, N > 0 an ldx < qg_w4_row_bytes or ldy < N
/// (Int4Weights refuses those first).
int qg_w4_gemm(const qg_w4_args *args, int path, int threads);

// MARK: - Activation quantization (dynamic mode)

/// Quantizes `rows` rows of K floats: out[m][i] = clamp(round-half-away(x / scale[m]) + zero[m])
/// into uint8 (x_unsigned = 1) or int8 bytes (x_unsigned = 0). No value may be NaN, and each
/// zero[m] must lie in the type's range (as QuantizationParameters guarantees): the vector
/// copies clamp the quotient to ±1024 first, which moves no result only then.
void qg_quantize_rows(const float *x, int64_t rows, int64_t k, int64_t ldx, const float *scale, const int32_t *zero,
                      int x_unsigned, uint8_t *out, int64_t ldo);

/// The float layer's output y [rows×N] = x [rows×K] · wᵀ + bias (bias may
/// be NULL; w is [N×K]), each output Σ_k x·w in Double, k ascending, then
/// the bias, rounded to Float once: the same bits on every CPU and thread
/// count (core/float_layer.c); with rows, K or N of 0 it writes nothing
/// (callers have K ≥ 1). `wt` is scratch of
/// qg_float_layer_scratch_count(k, n) floats. `threads` as qg_gemm takes
/// them (0: all).
void qg_float_layer(const float *x, int64_t rows, int64_t k, const float *w, int64_t n, const float *bias, float *y,
                    float *wt, int threads);

/// qg_float_layer's sums themselves: sums[m*n + o] = Σ_k x·w in Double, k
/// ascending, without bias and not rounded to Float (what 4-bit weights'
/// scale search measures its candidates against). Scratch and threads as
/// qg_float_layer.
void qg_float_layer_sums(const float *x, int64_t rows, int64_t k, const float *w, int64_t n, double *sums, float *wt,
                         int threads);

/// Floats of scratch qg_float_layer needs: K·N with N rounded up to 16.
int64_t qg_float_layer_scratch_count(int64_t k, int64_t n);

/// qg_float_layer on the calling thread with copy `copy` of its code (0 the
/// baseline, 1 AVX2 with FMA, 2 AVX-512): 0, or -1 when this CPU lacks it.
/// Exposed for tests: every copy gives the same bits.
int qg_float_layer_copy(int copy, const float *x, int64_t rows, int64_t k, const float *w, int64_t n, const float *bias,
                        float *y, float *wt);

/// The index of the first NaN of n floats, or -1: the check that lets
/// qg_quantize_rows's callers refuse a NaN before writing anything, in
/// blocks the compiler vectorizes (a Swift `firstIndex(where:)` took about
/// four times as long as the quantization after it).
int64_t qg_first_nan(const float *x, int64_t n);

/// Static input quantization, one scale and zero point for every row: q =
/// clamp(round-half-away(x[m][i] / scale) + zero) with the type's bounds
/// (uint8 when x_unsigned, else int8), or for a smoothed layer (SmoothQuant;
/// divisor not NULL) of x[m][i] / divisor[i], each division rounded in the
/// caller's mode; ±Inf saturates. Returns -1, or the index m·k + i of the
/// first NaN (nothing of its row written; other rows may be). Rows are
/// shared out over up to `threads` threads (0: as many as the process may
/// use) as qg_w4_prepare_rows_threads shares them: the index, and on success
/// every byte, do not depend on the count (on a NaN, which rows after its
/// own are written does).
int64_t qg_quantize_static_rows_threads(const float *x, int64_t rows, int64_t k, int64_t ldx, const float *divisor,
                                        float scale, int32_t zero, int x_unsigned, uint8_t *out, int64_t ldo,
                                        int threads);
/// out[m][i] = x[m][i] / divisor[i] for m < rows, i < k (row m of x at
/// x + m·ldx, of out at out + m·ldo; out may be x with ldo = ldx): the
/// input X·diag(1/s) of a smoothed layer. IEEE division in the caller's
/// rounding mode, so the bits of Swift's `x / s` value by value, in vector
/// registers where the CPU has them.
void qg_divide_columns(const float *x, int64_t rows, int64_t k, int64_t ldx, const float *divisor, float *out,
                       int64_t ldo);
/// Per-row min and max. Returns -1, or the flat index (m·K + i) of the first
/// NaN or ±Inf, where it stops.
int64_t qg_row_min_max(const float *x, int64_t rows, int64_t k, int64_t ldx, float *mins, float *maxs);

/// QuantizationParameters(observedMin:observedMax:type: .uint8)'s rule for a
/// finite range with observed_min ≤ observed_max, operation for operation:
/// the range widened to hold 0; scale 1 and zero point 0 when it is [0, 0];
/// else scale = Float((hi − lo) / 255) through qg_covering_scale (rounded up
/// where that is below 2^−126 and 255 of it fall short of hi − lo; FLT_MIN
/// where even that does not, with flush-to-zero on) and Z = clamp(round-half-away(0 − lo / scale), 0, 255) in
/// double. Returns 0, or
/// −1 when an end of the grid, Float(0 − Z)·scale or Float(255 − Z)·scale,
/// overflows Float (nothing written).
int qg_uint8_parameters(float observed_min, float observed_max, float *scale, int32_t *zero);
/// QuantizationParameters.symmetricWeights(absMax:)'s scale for a finite
/// abs_max ≥ 0: 1 for 0, else abs_max / 127 in Float, through
/// qg_covering_scale (rounded up where that is below 2^−126 and 127 of it
/// fall short of abs_max; FLT_MIN where even that does not, with
/// flush-to-zero on). Returns 0, or −1 when 128 times that (the int8 grid's
/// far end) overflows Float (nothing written).
int qg_symmetric_int8_scale(float abs_max, float *scale);
/// Dynamic per-row uint8 quantization in one pass over the rows: per row its
/// min and max (as qg_row_min_max, into mins/maxs), its parameters
/// (qg_uint8_parameters, into scale/zero) and its values (as
/// qg_quantize_rows, row m at out + m·ldo). Returns -1; or m·k + i for the
/// first NaN or ±Inf (row m's range not written), or, where no value is
/// NaN or ±Inf, −2 − m for the first row m whose range qg_uint8_parameters
/// refuses (its mins/maxs written): qg_row_min_max, then the parameters row by row.
/// Runs on up to `threads` threads (0: as many as the process may use), at
/// most one per 2^15 values (or, from 2^14 values, one for the caller and
/// each of the pool's workers still spinning after a job if that gives more),
/// each on whole rows. What it returns does not depend on the threads, nor
/// what it writes on success; on an error, rows of parts other than the
/// failing row's may have been written too (with one part, nothing after it).
int64_t qg_quantize_rows_dynamic(const float *x, int64_t rows, int64_t k, int64_t ldx, float *mins, float *maxs,
                                 float *scale, int32_t *zero, uint8_t *out, int64_t ldo, int threads);
/// qg_quantize_rows_dynamic on the rows of a smoothed layer, X·diag(1/divisor)
/// (divisor not NULL): each thread divides its rows by the K factors
/// (qg_divide_columns), a step of rows at a time, into divided (rows×K, row
/// m at divided + m·K) and ranges and quantizes them from there. Indices and rows in the return
/// value are those of the divided rows (a value division makes ±Inf counts
/// as one); on an error, the failing row's divided values are written.
int64_t qg_quantize_smoothed_rows_dynamic(const float *x, int64_t rows, int64_t k, int64_t ldx, const float *divisor,
                                          float *divided, float *mins, float *maxs, float *scale, int32_t *zero,
                                          uint8_t *out, int64_t ldo, int threads);
/// Symmetric per-channel int8 weights from floats, PackedWeights(quantizing:
/// granularity: .perChannel)'s rule: per channel c, absMax = max(−min, max),
/// scale[c] = qg_symmetric_int8_scale(absMax), q[c][i] =
/// clamp(round-half-away(w / scale[c]), −127, 127) into q [n×k]. W is [n×k]
/// with rows ldb apart, or with input_major [k×n] with rows (of n channels)
/// ldb apart, transposed first into rows_scratch (n·k floats; unused
/// otherwise). mins/maxs (n) are scratch. Returns -1; or c·k + i for the
/// first NaN or ±Inf (channel c, in channel order), or, where no value is
/// NaN or ±Inf, −2 − c for the first channel c whose absMax
/// qg_symmetric_int8_scale refuses (its mins/maxs written). Threads as qg_quantize_rows_dynamic.
int64_t qg_quantize_channels_symmetric(const float *b, int64_t n, int64_t k, int64_t ldb, int input_major, float *rows_scratch,
                                       float *mins, float *maxs, float *scale, int8_t *q, int threads);

// MARK: - Peak probes

/// Runs `iterations` rounds of the path's int8 multiply-accumulate
/// instruction (its descriptor's probe: VPDPBUSD, VPMADDWD, SDOT, SMMLA, or scalar) on
/// registers only; returns the multiply-accumulates done (0 if the CPU lacks
/// the path).
int64_t qg_peak_probe_int8(int path, int64_t iterations);
/// The same with the widest fp32 FMA the CPU has (512-bit with AVX-512 F,
/// else 256-bit FMA3); returns the lane FMAs done, 0 without FMA.
int64_t qg_peak_probe_fp32(int64_t iterations);
/// The vector width in bits that qg_peak_probe_fp32 uses: 512, 256 or 0.
int qg_peak_fp32_vector_bits(void);
/// Reads `bytes` bytes of `buffer` once with the widest plain loads the CPU
/// has, split into parts of whole 4 KiB multiples over up to `threads` threads
/// (at most 64; qg_threads_of_last_call is left as the last GEMM set it): the speed a weight-streaming call is compared with. Returns a value
/// computed from every byte it read (0 for an empty or NULL buffer), so the
/// loads cannot be dropped.
uint64_t qg_peak_read(const void *buffer, int64_t bytes, int threads);
/// qg_peak_read of two spans at once, as if the second followed the first
/// (one split over the threads for both): for a call that reads two arrays,
/// packed weights and their scales. A NULL span or a negative size reads
/// nothing of that span.
uint64_t qg_peak_read_pair(const void *first, int64_t first_bytes, const void *second, int64_t second_bytes,
                           int threads);

// MARK: - Scalar requantization (one accumulator; the definition of the README's "Arithmetic" table)

/// (acc·M0 + 2^(30−shift)) >> (31−shift), clamped to [lo, hi] before narrowing.
int32_t qg_requantize_single(int32_t acc, int32_t m0, int32_t shift, int32_t lo, int32_t hi);
/// SRDHM(acc·2^max(shift,0), M0) then a rounding (half away) divide by 2^max(−shift,0), clamped.
int32_t qg_requantize_double(int32_t acc, int32_t m0, int32_t shift, int32_t lo, int32_t hi);
/// (float)acc·f rounded half to even, then clamped to [lo, hi] exactly (for
/// bounds Float holds, every output type's, the same as the kernels' clamp
/// in float before rounding).
int32_t qg_requantize_float(int32_t acc, float f, int32_t lo, int32_t hi);

#ifdef __cplusplus
}
#endif
#endif
