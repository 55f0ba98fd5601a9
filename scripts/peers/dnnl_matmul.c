// Times oneDNN's matmul primitive on the int8 route a quantized linear layer
// takes, for scripts/bench-peers: uint8 activations X[M×K] (row-major, used in
// place) times int8 weights W[N×K]ᵀ plus an int32 bias, with a runtime source
// zero point. Two outputs: s8 with per-output-channel weight scales, a source
// scale and a destination scale and zero point (requantized, what qgemm
// writes), and s32, the plain accumulator (no scales), as qgemm's int32 output. The weights are stored N×K like
// qgemm's; oneDNN sees them as K×N with strides {1, K} ("ba") and picks its own
// packed layout (format "any"), into which they are reordered once, before
// timing, as qgemm packs once.
//
// Reads lines "M K N THREADS MIN_SECONDS [cold BYTES CHUNK]" on stdin ("cold
// BYTES CHUNK": the caches evicted before every timed run with a read of BYTES
// bytes in chunks of CHUNK, each read twice, cache_evictor.h) and prints, after the
// "check" lines of the arithmetic check below,
// "M K N THREADS OUT IMPL GOPS_MEDIAN GOPS_BEST RUNS" for OUT = s8 and s32,
// IMPL being the implementation oneDNN chose (spaces made '_'). The thread
// count goes to oneDNN's OpenMP runtime (omp_set_num_threads) before the
// primitives are made, since oneDNN sizes its blocking by it then.
//
// Written for oneDNN v3 (per-argument scales, passed at execution) and for
// the v2 of Debian 12 (2.6): v2 has no per-argument scales for matmul, so
// there the three scales are folded into its one per-output-channel output
// scale, src_scale·wei_scale[n]/dst_scale, the same arithmetic, given when the
// primitive is made (at run time 2.6 drops to its slower gemm:jit). The zero
// points are run-time values in both.
//
// Before the first case it checks its own wiring: on a few small shapes the
// matmul with plain weights packed as above, an int32 bias and (second pass)
// a runtime source zero point Z must give exactly Σ_k (x−Z)·w + bias, as a
// plain C loop does; it stops with an error otherwise. Those activations stay
// below 128, so no two products can pass int16's range together.
//
// Then it checks oneDNN's own arithmetic on this CPU with full-range data
// (uint8 0…255, int8 −128…127, 64×256×128, Z = 128), through the two routes
// it times: s32 output must equal the exact sums, and s8
// output (unit source and weight scales, destination scale 3000, zero point 0)
// must be within one step of the exact sums rounded, clamped. Without VNNI,
// oneDNN's int8 kernels add pairs of products in int16 with saturation
// (VPMADDUBSW), and then they are not. It prints "check s8|s32 ok" or
// "check s8|s32 wrong WRONG CHECKED LARGEST_ERROR" and goes on timing.
// Each timed case is checked as well (check_output below), with the timed
// operands, scales and zero points, since oneDNN picks its kernel per shape
// and thread count: "check s8|s32 M K N THREADS ok" or "... wrong ...".
#include <oneapi/dnnl/dnnl.h>
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cache_evictor.h"
#include "dnnl_operands.h"

#if DNNL_VERSION_MAJOR >= 3
typedef dnnl_memory_desc_t md_t;          // an opaque handle in v3
typedef const_dnnl_memory_desc_t cmd_t;
#else
typedef dnnl_memory_desc_t *md_t;         // a struct in v2, kept on the heap
typedef const dnnl_memory_desc_t *cmd_t;
#endif

#define CHECK(call)                                                                             \
    do {                                                                                        \
        dnnl_status_t s_ = (call);                                                              \
        if (s_ != dnnl_success) {                                                               \
            fprintf(stderr, "dnnl_matmul: %s failed at line %d: %s (status %d)\n", #call,       \
                    __LINE__, status_name(s_), (int)s_);                                        \
            exit(1);                                                                            \
        }                                                                                       \
    } while (0)

static const char *status_name(dnnl_status_t s) {
    switch (s) {
    case dnnl_out_of_memory: return "out of memory";
    case dnnl_invalid_arguments: return "invalid arguments";
    case dnnl_unimplemented: return "unimplemented (no implementation for these types/attributes)";
    case dnnl_iterator_ends: return "iterator ends";
    case dnnl_runtime_error: return "runtime error";
    case dnnl_not_required: return "not required";
    default: return "error";
    }
}

/// A plain memory descriptor of `ndims` (1 or 2) dimensions in format `tag`.
static md_t md_with_tag(int ndims, const dnnl_dims_t dims, dnnl_data_type_t dt, dnnl_format_tag_t tag) {
#if DNNL_VERSION_MAJOR >= 3
    md_t md;
    CHECK(dnnl_memory_desc_create_with_tag(&md, ndims, dims, dt, tag));
#else
    md_t md = calloc(1, sizeof *md);
    CHECK(dnnl_memory_desc_init_by_tag(md, ndims, dims, dt, tag));
#endif
    return md;
}

static md_t md_tag(dnnl_dim_t d0, dnnl_dim_t d1, dnnl_data_type_t dt, dnnl_format_tag_t tag) {
    const dnnl_dims_t dims = {d0, d1};
    return md_with_tag(2, dims, dt, tag);
}

static md_t md_1d(dnnl_dim_t d0, dnnl_data_type_t dt) {
    const dnnl_dims_t dims = {d0};
    return md_with_tag(1, dims, dt, dnnl_a);
}

// W stored N×K, seen as the K×N matrix Wᵀ: element (k, n) at n·K + k.
static md_t md_weights_plain(dnnl_dim_t k, dnnl_dim_t n) {
    const dnnl_dims_t dims = {k, n}, strides = {1, k};
#if DNNL_VERSION_MAJOR >= 3
    md_t md;
    CHECK(dnnl_memory_desc_create_with_strides(&md, 2, dims, dnnl_s8, strides));
#else
    md_t md = calloc(1, sizeof *md);
    CHECK(dnnl_memory_desc_init_by_strides(md, 2, dims, dnnl_s8, strides));
#endif
    return md;
}

static void md_free(md_t md) {
#if DNNL_VERSION_MAJOR >= 3
    dnnl_memory_desc_destroy(md);
#else
    free(md);
#endif
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

enum { QUANT_S8, QUANT_S32, CHECK_PLAIN, CHECK_ZP };

// Scales and zero points; v3 reads them at execution, from these addresses.
static float src_scale = 0.02f, dst_scale = 0.5f;
static int32_t src_zero = 3, dst_zero = -5;

// One matmul, ready to run: primitive, its memories and execution arguments.
typedef struct {
    dnnl_primitive_desc_t pd;
    dnnl_primitive_t prim;
    dnnl_memory_t mem[12];
    dnnl_exec_arg_t args[12];
    int nargs;
    char impl[128];
} matmul_t;

static void add_arg(matmul_t *mm, int arg, md_t md, dnnl_engine_t eng, void *data) {
    dnnl_memory_t mem;
    CHECK(dnnl_memory_create(&mem, md, eng, data));
    mm->mem[mm->nargs] = mem;
    mm->args[mm->nargs].arg = arg;
    mm->args[mm->nargs].memory = mem;
    mm->nargs++;
}

// Makes the matmul of kind `kind` for X (M×K u8), W (N×K s8) and bias (N s32)
// writing into dst; wei_scales holds N floats (used by the quantized kinds).
static void matmul_make(matmul_t *mm, int kind, dnnl_engine_t eng, dnnl_stream_t stream, dnnl_dim_t m,
                        dnnl_dim_t k, dnnl_dim_t n, uint8_t *x, int8_t *w, int32_t *bias, void *dst,
                        float *wei_scales, float *out_scales) {
    memset(mm, 0, sizeof *mm);
    (void)out_scales;  // v2 only
    const int quant = kind == QUANT_S8 || kind == QUANT_S32;
    // Scales only for s8 output: the s32 route is the plain accumulator
    // (source zero point and int32 bias folded in), as qgemm's int32 output
    // it is set beside, not a float scale-and-round back to int32.
    const int scaled = kind == QUANT_S8;
    const int src_zp = quant || kind == CHECK_ZP;
    const int dst_s8 = kind == QUANT_S8;
    md_t src_md = md_tag(m, k, dnnl_u8, dnnl_ab);
    md_t wei_any = md_tag(k, n, dnnl_s8, dnnl_format_tag_any);
    md_t wei_plain = md_weights_plain(k, n);
    md_t bias_md = md_tag(1, n, dnnl_s32, dnnl_ab);
    md_t dst_md = md_tag(m, n, dst_s8 ? dnnl_s8 : dnnl_s32, dnnl_ab);
    md_t one_f32 = md_1d(1, dnnl_f32), n_f32 = md_1d(n, dnnl_f32), one_s32 = md_1d(1, dnnl_s32);

    dnnl_primitive_attr_t attr;
    CHECK(dnnl_primitive_attr_create(&attr));
#if DNNL_VERSION_MAJOR >= 3
    if (scaled) {
        CHECK(dnnl_primitive_attr_set_scales_mask(attr, DNNL_ARG_SRC, 0));
        CHECK(dnnl_primitive_attr_set_scales_mask(attr, DNNL_ARG_WEIGHTS, 1 << 1));
        if (dst_s8) CHECK(dnnl_primitive_attr_set_scales_mask(attr, DNNL_ARG_DST, 0));
    }
    if (src_zp) CHECK(dnnl_primitive_attr_set_zero_points_mask(attr, DNNL_ARG_SRC, 0));
    if (dst_s8) CHECK(dnnl_primitive_attr_set_zero_points_mask(attr, DNNL_ARG_DST, 0));
    CHECK(dnnl_matmul_primitive_desc_create(&mm->pd, eng, src_md, wei_any, bias_md, dst_md, attr));
#else
    // v2.6 falls back from its brgemm (AMX/VNNI) kernels to gemm:jit when the
    // output scales come at run time, so they are given here, as constants.
    const int32_t rt_s32 = DNNL_RUNTIME_S32_VAL;
    if (scaled) {
        for (dnnl_dim_t j = 0; j < n; j++)
            out_scales[j] = src_scale * wei_scales[j] / (dst_s8 ? dst_scale : 1.0f);
        CHECK(dnnl_primitive_attr_set_output_scales(attr, n, 1 << 1, out_scales));
    }
    if (src_zp) CHECK(dnnl_primitive_attr_set_zero_points(attr, DNNL_ARG_SRC, 1, 0, &rt_s32));
    if (dst_s8) CHECK(dnnl_primitive_attr_set_zero_points(attr, DNNL_ARG_DST, 1, 0, &rt_s32));
    dnnl_matmul_desc_t desc;
    CHECK(dnnl_matmul_desc_init(&desc, src_md, wei_any, bias_md, dst_md));
    CHECK(dnnl_primitive_desc_create(&mm->pd, &desc, attr, eng, NULL));
#endif
    CHECK(dnnl_primitive_attr_destroy(attr));
    CHECK(dnnl_primitive_create(&mm->prim, mm->pd));
    const char *impl = NULL;
    CHECK(dnnl_primitive_desc_query(mm->pd, dnnl_query_impl_info_str, 0, &impl));
    snprintf(mm->impl, sizeof mm->impl, "%s", impl ? impl : "unknown");
    for (char *c = mm->impl; *c; c++)
        if (*c == ' ' || *c == '\t') *c = '_';

    // Pack the weights once into the layout the primitive asked for.
    cmd_t wei_packed = dnnl_primitive_desc_query_md(mm->pd, dnnl_query_weights_md, 0);
    dnnl_memory_t plain_mem, packed_mem;
    CHECK(dnnl_memory_create(&plain_mem, wei_plain, eng, w));
    CHECK(dnnl_memory_create(&packed_mem, wei_packed, eng, DNNL_MEMORY_ALLOCATE));
    dnnl_primitive_desc_t rpd;
    dnnl_primitive_t reorder;
    CHECK(dnnl_reorder_primitive_desc_create(&rpd, wei_plain, eng, wei_packed, eng, NULL));
    CHECK(dnnl_primitive_create(&reorder, rpd));
    dnnl_exec_arg_t rargs[2] = {{DNNL_ARG_FROM, plain_mem}, {DNNL_ARG_TO, packed_mem}};
    CHECK(dnnl_primitive_execute(reorder, stream, 2, rargs));
    CHECK(dnnl_stream_wait(stream));
    CHECK(dnnl_primitive_destroy(reorder));
    CHECK(dnnl_primitive_desc_destroy(rpd));
    CHECK(dnnl_memory_destroy(plain_mem));

    add_arg(mm, DNNL_ARG_SRC, src_md, eng, x);
    mm->mem[mm->nargs] = packed_mem;
    mm->args[mm->nargs].arg = DNNL_ARG_WEIGHTS;
    mm->args[mm->nargs].memory = packed_mem;
    mm->nargs++;
    add_arg(mm, DNNL_ARG_BIAS, bias_md, eng, bias);
    add_arg(mm, DNNL_ARG_DST, dst_md, eng, dst);
    if (scaled) {
#if DNNL_VERSION_MAJOR >= 3
        add_arg(mm, DNNL_ARG_ATTR_SCALES | DNNL_ARG_SRC, one_f32, eng, &src_scale);
        add_arg(mm, DNNL_ARG_ATTR_SCALES | DNNL_ARG_WEIGHTS, n_f32, eng, wei_scales);
        if (dst_s8) add_arg(mm, DNNL_ARG_ATTR_SCALES | DNNL_ARG_DST, one_f32, eng, &dst_scale);
#endif
    }
    if (src_zp) add_arg(mm, DNNL_ARG_ATTR_ZERO_POINTS | DNNL_ARG_SRC, one_s32, eng, &src_zero);
    if (dst_s8) add_arg(mm, DNNL_ARG_ATTR_ZERO_POINTS | DNNL_ARG_DST, one_s32, eng, &dst_zero);
    md_free(src_md); md_free(wei_any); md_free(wei_plain); md_free(bias_md); md_free(dst_md);
    md_free(one_f32); md_free(n_f32); md_free(one_s32);
}

static void matmul_run(matmul_t *mm, dnnl_stream_t stream) {
    CHECK(dnnl_primitive_execute(mm->prim, stream, mm->nargs, mm->args));
    CHECK(dnnl_stream_wait(stream));
}

static void matmul_free(matmul_t *mm) {
    for (int i = 0; i < mm->nargs; i++) CHECK(dnnl_memory_destroy(mm->mem[i]));
    CHECK(dnnl_primitive_destroy(mm->prim));
    CHECK(dnnl_primitive_desc_destroy(mm->pd));
}

/// Pseudo-random operands (dnnl_operands.h), then the bias and weight scales.
// The bias is in the accumulator's units on v2 (added before the folded
// output scale), ±32,768: about ±13 steps of output. v3 adds it after the
// source and weight scales, in the output's float units before the
// destination scale, so there it is drawn in ±16 (±32 steps): the same
// ±32,768 would clamp nearly every output and leave the check blind.
static void fill(uint8_t *x, int8_t *w, int32_t *bias, float *wei_scales, long long m, long long k, long long n,
                 int x_max) {
    uint64_t s = fill_operands(x, w, m, k, n, x_max);
    for (long long j = 0; j < n; j++) {
        operands_next(&s);
#if DNNL_VERSION_MAJOR >= 3
        bias[j] = (int32_t)(s >> 59) - 16;
#else
        bias[j] = (int32_t)(s >> 48) - 32768;
#endif
        wei_scales[j] = 0.004f + 0.001f * (float)(j % 7);
    }
}

// The wiring check: exact int32 results against a plain loop.
static void self_check(dnnl_engine_t eng, dnnl_stream_t stream) {
    static const long long shapes[][3] = {{1, 100, 72}, {29, 100, 72}, {64, 256, 128}};
    omp_set_num_threads(1);
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const long long m = shapes[s][0], k = shapes[s][1], n = shapes[s][2];
        uint8_t *x = malloc((size_t)(m * k));
        int8_t *w = malloc((size_t)(n * k));
        int32_t *bias = malloc(sizeof(int32_t) * (size_t)n), *c = malloc(sizeof(int32_t) * (size_t)(m * n));
        float *ws = malloc(sizeof(float) * (size_t)n);
        fill(x, w, bias, ws, m, k, n, 127);
        for (int kind = CHECK_PLAIN; kind <= CHECK_ZP; kind++) {
            const int32_t z = kind == CHECK_ZP ? src_zero : 0;
            matmul_t mm;
            matmul_make(&mm, kind, eng, stream, m, k, n, x, w, bias, c, ws, NULL);
            memset(c, 0x55, sizeof(int32_t) * (size_t)(m * n));
            matmul_run(&mm, stream);
            for (long long i = 0; i < m; i++)
                for (long long j = 0; j < n; j++) {
                    const int32_t ref = bias[j] + (int32_t)exact_dot(x, w, i, j, k, z);
                    if (c[i * n + j] != ref) {
                        fprintf(stderr, "dnnl_matmul: self-check failed (%s, %s) at %lldx%lldx%lld, C[%lld][%lld] = %d, "
                                "a plain loop gives %d\n", kind == CHECK_ZP ? "source zero point" : "plain",
                                mm.impl, m, k, n, i, j, c[i * n + j], ref);
                        exit(1);
                    }
                }
            matmul_free(&mm);
        }
        free(x); free(w); free(bias); free(c); free(ws);
    }
}

static void check_output(int kind, const uint8_t *x, const int8_t *w, const int32_t *bias, const void *c,
                         const float *wei_scales, const float *out_scales, long long m, long long k, long long n,
                         int threads);

// oneDNN's arithmetic on this CPU with full-range operands, through the
// routes timed below (see the header); prints one "check" line per route.
static void arithmetic_check(dnnl_engine_t eng, dnnl_stream_t stream) {
    const long long m = 64, k = 256, n = 128;
    const float saved_src_scale = src_scale, saved_dst_scale = dst_scale;
    const int32_t saved_src_zero = src_zero, saved_dst_zero = dst_zero;
    src_scale = 1.0f; dst_scale = 3000.0f; src_zero = 128; dst_zero = 0;
    omp_set_num_threads(1);
    uint8_t *x = malloc((size_t)(m * k));
    int8_t *w = malloc((size_t)(n * k));
    int32_t *bias = calloc((size_t)n, sizeof(int32_t)), *c = malloc(sizeof(int32_t) * (size_t)(m * n));
    float *ws = malloc(sizeof(float) * (size_t)n), *out_scales = malloc(sizeof(float) * (size_t)n);
    fill(x, w, bias, ws, m, k, n, 255);
    memset(bias, 0, sizeof(int32_t) * (size_t)n);
    for (long long j = 0; j < n; j++) ws[j] = 1.0f;
    for (int kind = QUANT_S8; kind <= QUANT_S32; kind++) {
        matmul_t mm;
        matmul_make(&mm, kind, eng, stream, m, k, n, x, w, bias, c, ws, out_scales);
        memset(c, 0x55, sizeof(int32_t) * (size_t)(m * n));
        matmul_run(&mm, stream);
        check_output(kind, x, w, bias, c, ws, out_scales, m, k, n, 0);
        matmul_free(&mm);
    }
    free(x); free(w); free(bias); free(c); free(ws); free(out_scales);
    src_scale = saved_src_scale; dst_scale = saved_dst_scale; src_zero = saved_src_zero; dst_zero = saved_dst_zero;
}

// An output checked: every row (threads 0: the full-range check), or a timed
// case's, where oneDNN picked its kernel for that shape and thread count: the
// last timed run's, on up to 8 rows spread over M. s32 must
// be the exact Σ_k (x − Z)·w + bias; s8 within one step of the float
// requantization rounded and clamped: v2 scales the sum with its bias by the
// folded output scale (its reference matmul adds the bias first), v3 adds the
// bias after the source and weight scales and before the destination scale,
// as its reference matmul does. Prints one check line (dnnl_operands.h).
static void check_output(int kind, const uint8_t *x, const int8_t *w, const int32_t *bias, const void *c,
                         const float *wei_scales, const float *out_scales, long long m, long long k, long long n,
                         int threads) {
    long long rows[8], wrong = 0, checked = 0, clamped = 0;
    double largest = 0;
    const int nrows = threads > 0 ? sampled_rows(m, rows, 8) : (int)m;
    for (int r = 0; r < nrows; r++)
        for (long long j = 0; j < n; j++, checked++) {
            const long long i = threads > 0 ? rows[r] : r;
            const double sum = (double)exact_dot(x, w, i, j, k, src_zero);
            double error;
            if (kind == QUANT_S32) {
                error = fabs((double)((const int32_t *)c)[i * n + j] - (sum + bias[j]));
            } else {
#if DNNL_VERSION_MAJOR >= 3
                (void)out_scales;
                const double real = ((double)src_scale * wei_scales[j] * sum + bias[j]) / dst_scale;
#else
                (void)wei_scales;
                const double real = (double)out_scales[j] * (sum + bias[j]);
#endif
                const double exact = fmin(127.0, fmax(-128.0, nearbyint(real) + dst_zero));
                if (exact == 127.0 || exact == -128.0) clamped++;
                error = fabs((double)((const int8_t *)c)[i * n + j] - exact);
                if (error <= 1.0) error = 0;  // rounding and float order may differ by one step
            }
            if (error > 0) wrong++;
            if (error > largest) largest = error;
        }
    // A check whose expected values are nearly all clamped sees little.
    if (kind == QUANT_S8 && clamped * 10 > checked * 9)
        fprintf(stderr, "dnnl_matmul: %lld of the %lld s8 values checked at %lldx%lldx%lld are clamped to the int8 "
                "range: that case's check sees little of the sums\n", clamped, checked, m, k, n);
    print_check(kind == QUANT_S8 ? "s8" : "s32", m, k, n, threads, wrong, checked, largest);
}

static double times[100000];

int main(void) {
    const dnnl_version_t *v = dnnl_version();
    if (v->cpu_runtime != DNNL_RUNTIME_OMP)
        fprintf(stderr, "dnnl_matmul: warning: oneDNN %d.%d.%d uses CPU runtime %u, not OpenMP: "
                "omp_set_num_threads may not set its thread count\n", v->major, v->minor, v->patch, v->cpu_runtime);
    dnnl_engine_t eng;
    dnnl_stream_t stream;
    CHECK(dnnl_engine_create(&eng, dnnl_cpu, 0));
    CHECK(dnnl_stream_create(&stream, eng, dnnl_stream_default_flags));
    self_check(eng, stream);
    arithmetic_check(eng, stream);

    long long m, k, n;
    int threads;
    long long cold, cold_chunk;
    double min_seconds;
    while (read_case(&m, &k, &n, &threads, &min_seconds, &cold, &cold_chunk)) {
        omp_set_num_threads(threads);
        cache_evictor evictor = {NULL, 0};
        if (cold) evictor = evictor_make(cold, cold_chunk);
        uint8_t *x = malloc((size_t)(m * k));
        int8_t *w = malloc((size_t)(n * k));
        int32_t *bias = malloc(sizeof(int32_t) * (size_t)n);
        void *c = malloc(sizeof(int32_t) * (size_t)(m * n));
        float *ws = malloc(sizeof(float) * (size_t)n), *out_scales = malloc(sizeof(float) * (size_t)n);
        fill(x, w, bias, ws, m, k, n, 255);
        for (int kind = QUANT_S8; kind <= QUANT_S32; kind++) {
            matmul_t mm;
            matmul_make(&mm, kind, eng, stream, m, k, n, x, w, bias, c, ws, out_scales);
            matmul_run(&mm, stream);  // warm-up: first-touch, JIT, caches
            int runs = 0;
            const double start = now();
            while (runs < 5 || (now() - start < min_seconds && runs < 100000)) {
                if (cold) evictor_run(&evictor, threads);
                const double t0 = now();
                CHECK(dnnl_primitive_execute(mm.prim, stream, mm.nargs, mm.args));
                CHECK(dnnl_stream_wait(stream));
                times[runs++] = now() - t0;
            }
            check_output(kind, x, w, bias, c, ws, out_scales, m, k, n, threads);
            const double median = sorted_median(times, runs);
            const double ops = 2.0 * (double)m * (double)n * (double)k;
            printf("%lld %lld %lld %d %s %s %.6f %.6f %d\n", m, k, n, threads, kind == QUANT_S8 ? "s8" : "s32",
                   mm.impl, ops / median / 1e9, ops / times[0] / 1e9, runs);
            fflush(stdout);
            matmul_free(&mm);
        }
        free(x); free(w); free(bias); free(c); free(ws); free(out_scales);
        evictor_free(&evictor);
    }
    CHECK(dnnl_stream_destroy(stream));
    CHECK(dnnl_engine_destroy(eng));
    return 0;
}
