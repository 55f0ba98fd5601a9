// The AVX-512 VNNI path: VPDPBUSD on zmm registers.
//
// VPDPBUSD multiplies 4 unsigned bytes by 4 signed bytes and adds the four
// products to an int32 lane, exactly. The weights are the signed operand, read
// straight from the shared layout (one 64-byte K-group = 16 channels × 4 K =
// one zmm). Activations are the unsigned operand: uint8 as they are, int8 plus
// 128 (a flip of the top bit). The +128 adds 128·row_sum[n] to every dot
// product; the epilogue removes it by adding 128 to the zero point it
// subtracts (DESIGN §3: a path's private bias fold, which never changes a
// result).
//
// Activation layout (one row group of R ≤ 8 rows, K padded to kp):
//   x_group[(g·R + r)·4 + t] = (uint8) X[m0 + r][4g + t] (+128 for int8)
// so one 32-bit broadcast is the K-group of one row.
//
// Validation: this machine-independent file could not be run where it was
// written (no AVX-512 there). The path therefore reports itself supported only
// after a known-answer self-test against the scalar reference passes on the
// running CPU (qg_vnni_self_test); the test suite and `qgemm validate` then
// check it like every other path.
#include "driver.h"

#if defined(__x86_64__)
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "epilogue_avx2.h"

// scripts/check-vnni-emulated compiles this file with software AVX-512
// intrinsics and QG_VNNI_TARGET="avx2" to run its logic on any AVX2 CPU.
#ifndef QG_VNNI_TARGET
#define QG_VNNI_TARGET "avx2,avx512f,avx512bw,avx512vnni"
#endif
#define QG_VNNI __attribute__((target(QG_VNNI_TARGET)))
#define QG_VNNI_INLINE static inline __attribute__((always_inline, target(QG_VNNI_TARGET)))

enum { QG_VNNI_MR = 8 };

static size_t qg_vnni_x_bytes(int64_t rows, int64_t kp) { return (size_t)(rows * kp); }

static void qg_vnni_pack_x(const qg_gemm_args *a, int64_t m0, int64_t rows, void *dst) {
    uint8_t *out = dst;
    const uint8_t flip = a->x_unsigned ? 0 : 0x80; // int8 → uint8 with +128
    const int64_t groups = a->kp / QG_K_GROUP;
    for (int64_t r0 = 0; r0 < rows; r0 += QG_VNNI_MR) {
        const int64_t R = rows - r0 < QG_VNNI_MR ? rows - r0 : QG_VNNI_MR;
        uint8_t *group = out + r0 * a->kp;
        for (int64_t r = 0; r < R; r++) {
            const uint8_t *x = (const uint8_t *)a->x + (m0 + r0 + r) * a->ldx;
            for (int64_t g = 0; g < groups; g++) {
                uint8_t *o = group + (g * R + r) * QG_K_GROUP;
                for (int t = 0; t < QG_K_GROUP; t++) {
                    const int64_t k = g * QG_K_GROUP + t;
                    o[t] = k < a->k ? (uint8_t)(x[k] ^ flip) : 0; // padding meets zero weights
                }
            }
        }
    }
}

/// R rows × NP panels of 16 channels, full K; then the shared epilogue on
/// 8-channel halves. `w` is the first panel; the second is 16·kp bytes later.
QG_VNNI_INLINE void qg_vnni_tile(const qg_gemm_args *a, const uint8_t *x, const int R, const int8_t *w, const int NP,
                                 int64_t m0, int64_t n0, int cols) {
    __m512i acc[QG_VNNI_MR][2];
    for (int r = 0; r < R; r++)
        for (int p = 0; p < NP; p++) acc[r][p] = _mm512_setzero_si512();
    const int64_t groups = a->kp / QG_K_GROUP, panel = QG_PANEL_N * a->kp;
    for (int64_t g = 0; g < groups; g++) {
        __m512i wv[2];
        for (int p = 0; p < NP; p++) wv[p] = _mm512_loadu_si512((const void *)(w + p * panel + g * 64));
        for (int r = 0; r < R; r++) {
            int32_t four;
            memcpy(&four, x + (g * R + r) * QG_K_GROUP, sizeof four);
            const __m512i xb = _mm512_set1_epi32(four);
            for (int p = 0; p < NP; p++) acc[r][p] = _mm512_dpbusd_epi32(acc[r][p], xb, wv[p]);
        }
    }
    const int32_t offset = a->x_unsigned ? 0 : 128;
    for (int r = 0; r < R; r++) {
        for (int h = 0; h < 2 * NP; h++) {
            const int c = cols - 8 * h;
            if (c <= 0) break;
            const __m512i v = acc[r][h / 2];
            const __m256i half = (h % 2 == 0) ? _mm512_castsi512_si256(v) : _mm512_extracti64x4_epi64(v, 1);
            qg_avx2_epilogue8(a, m0 + r, n0 + 8 * h, c > 8 ? 8 : c, half, offset);
        }
    }
}

static QG_VNNI void qg_gemm_8x32c4_avx512vnni(const qg_gemm_args *a, const uint8_t *x, int R, const int8_t *w,
                                              int np, int64_t m0, int64_t n0, int cols) {
    // Constant R and NP for the compiler: one specialised loop per shape.
#define QG_VNNI_CASE(RR)                                                  \
    case RR:                                                              \
        if (np == 2) qg_vnni_tile(a, x, RR, w, 2, m0, n0, cols);          \
        else qg_vnni_tile(a, x, RR, w, 1, m0, n0, cols);                  \
        return;
    switch (R) {
        QG_VNNI_CASE(1) QG_VNNI_CASE(2) QG_VNNI_CASE(3) QG_VNNI_CASE(4)
        QG_VNNI_CASE(5) QG_VNNI_CASE(6) QG_VNNI_CASE(7) QG_VNNI_CASE(8)
    }
#undef QG_VNNI_CASE
}

static void qg_vnni_compute(const qg_gemm_args *a, const void *x_block, int64_t m0, int64_t rows, int64_t n0,
                            int64_t n1) {
    const uint8_t *x = x_block;
    for (int64_t n = n0; n < n1; n += 2 * QG_PANEL_N) {
        const int8_t *panel = a->w + (n / QG_PANEL_N) * (QG_PANEL_N * a->kp);
        const int cols = (int)(n1 - n < 2 * QG_PANEL_N ? n1 - n : 2 * QG_PANEL_N);
        const int np = cols > QG_PANEL_N ? 2 : 1;
        for (int64_t r = 0; r < rows; r += QG_VNNI_MR) {
            const int R = (int)(rows - r < QG_VNNI_MR ? rows - r : QG_VNNI_MR);
            qg_gemm_8x32c4_avx512vnni(a, x + r * a->kp, R, panel, np, m0 + r, n, cols);
        }
    }
}

static int qg_vnni_cpu_has(void) {
    const qg_cpu_features *f = qg_cpu_get_features();
    return f->avx2 && f->avx512f && f->avx512bw && f->avx512vnni;
}

static int qg_vnni_self_test_passed;
static pthread_once_t qg_vnni_once = PTHREAD_ONCE_INIT;

/// Known-answer check against the reference on int8 and uint8 activations,
/// with tails in M, N and K, before the path is offered.
static void qg_vnni_self_test(void) {
    enum { M = 11, N = 37, K = 77 };
    const int64_t kp = qg_packed_k(K), np = qg_packed_n(N);
    static int8_t w[N * K], packed[48 * 80]; // qg_packed_size(N, K): N padded to 48, K to 80
    static uint8_t x[M * K];
    static int32_t row_sum[64], bias[64], want[M * N], got[M * N];
    static int64_t rs64[N], abs64[N];
    if (qg_packed_size(N, K) != (int64_t)sizeof packed) return; // layout changed: stay disabled
    uint32_t state = 12345;
    for (int i = 0; i < N * K; i++) { state = state * 1664525u + 1013904223u; w[i] = (int8_t)(state >> 24); }
    for (int i = 0; i < M * K; i++) { state = state * 1664525u + 1013904223u; x[i] = (uint8_t)(state >> 24); }
    qg_pack_weights(w, K, 1, N, K, packed, rs64, abs64);
    for (int i = 0; i < np; i++) { row_sum[i] = i < N ? (int32_t)rs64[i] : 0; bias[i] = i < N ? i * 1000 - 7 : 0; }
    int ok = 1;
    for (int unsigned_x = 0; unsigned_x <= 1 && ok; unsigned_x++) {
        qg_gemm_args a = {0};
        a.m = M; a.n = N; a.k = K; a.x = x; a.ldx = K; a.x_unsigned = unsigned_x; a.w = packed; a.kp = kp;
        a.row_sum = row_sum; a.bias = bias; a.x_zero_point = unsigned_x ? 200 : -100; a.y = want; a.ldy = N;
        a.out_type = QG_OUT_INT32;
        qg_gemm_reference(&a);
        a.y = got;
        if (qg_driver_run(&a, &qg_kernel_avx512vnni, 1) != 0 || memcmp(want, got, sizeof want) != 0) ok = 0;
    }
    qg_vnni_self_test_passed = ok;
    if (!ok) fprintf(stderr, "qgemm: the avx512vnni kernel failed its self-test on this CPU; the path is disabled\n");
}

static int qg_vnni_supported(void) {
    if (!qg_vnni_cpu_has()) return 0;
    pthread_once(&qg_vnni_once, qg_vnni_self_test);
    return qg_vnni_self_test_passed;
}

const qg_kernel qg_kernel_avx512vnni = {
    .name = "qg_gemm_8x32c4_avx512vnni",
    .path = QG_PATH_AVX512VNNI,
    .mr = QG_VNNI_MR,
    .is_supported = qg_vnni_supported,
    .x_block_bytes = qg_vnni_x_bytes,
    .pack_x = qg_vnni_pack_x,
    .compute = qg_vnni_compute,
};
#endif
