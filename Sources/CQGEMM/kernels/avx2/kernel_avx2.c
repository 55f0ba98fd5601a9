// The AVX2 path: exact int8 GEMM with VPMADDWD.
//
// Both operands are widened to int16 and multiplied with VPMADDWD, which sums
// pairs of int16 products into int32 exactly. VPMADDUBSW is never used: its
// int16 sums saturate for 255·127·2.
//
// Weights are read from the shared packed layout (KERNELS.md): 32 bytes =
// 8 channels × 4 K values, channel c's in bytes 4c … 4c + 3. As 16 int16
// lanes, lane 2c holds channel c's k0 (low byte) and k1 (high byte), lane
// 2c + 1 its k2 and k3. Two shifts sign-extend the low bytes (k0, k2) and one
// the high bytes (k1, k3), so VPMADDWD with a broadcast of (x0, x2), and one
// with (x1, x3), each leave channel c's two products summed in 32-bit lane c:
// whole channel sums in channel order, 8 channels a vector, with no VPHADDD
// or lane permute at the end of a tile. On Haswell and Broadwell, whose
// shifts share port 0 with VPMADDWD, the main tile splits the bytes with
// VPSHUFB and VPERMQ and widens them with VPMOVSXBW instead, the same int16
// lanes (qg_cpu_widen_bytes_by_shuffles). The few-rows tile at one row (the
// driver gives it every row group of one row) takes each byte 256 times over
// instead (one shift and one AND: QG_AVX2_TIMES_256) and shifts its sums
// back every 256 K values.
//
// Activation layout (one row group of R ≤ 4 rows, K padded to kp), after
// the group's 64-byte header (qg_avx2_group_header):
//   x_group[(g·R + r)·4 + t] = (int16) X[m0 + r][4g + qg_avx2_k_of[t]]
// with t = 0..3 holding k = 0, 2, 1, 3: one 32-bit broadcast of the first
// two values pairs with the low bytes, one of the last two with the high.
//
// On Zen 1 the main tile's widening costs (qg_cpu_avx2_widens_weights_ahead),
// so there the driver has each step's weights widened once per block
// (qg_avx2_prepare_weights) into int16 vectors, per K-group of a panel
// [low 0…7, high 0…7, low 8…15, high 8…15] (the lanes qg_avx2_widen makes),
// and every row group's header says where; the main tile then loads them.
#include "kernel.h"

#if defined(__x86_64__)
#include <immintrin.h>
#include <string.h>

#define QG_AVX2 __attribute__((target("avx2")))
#define QG_AVX2_INLINE static inline QG_SPECIALIZE __attribute__((target("avx2")))

enum { QG_AVX2_MR = 4 };

/// Calls of at most this many rows read K from two places at once in every tile.
#ifndef QG_AVX2_SPLIT_K_ROWS
#define QG_AVX2_SPLIT_K_ROWS 4
#endif
#ifndef QG_PREFETCH_BYTES
#define QG_PREFETCH_BYTES 2048
#endif
/// Tiles of one row, and the few-rows tile over two panels (one or two rows,
/// four streams), prefetch nearer, as the 4-bit decode tile does
/// (w4_avx2.c). Zen 2, one thread, caches evicted, fastest of three
/// interleaved rounds, GOP/s (2 KiB → 512 bytes ahead): 1×1024×4096 29–31 →
/// 37–40, 1×4096×4096 37–40 → 43–49, 1×11008×4096 40–46 → 47–51; not
/// evicted, 1×11008×4096 (weights larger than the L3) 37–39 → 46–49; two
/// threads, evicted, 1×4096×4096 66–70 → 78–81, 1×11008×4096 72–78 →
/// 79–88. Two rows over two panels, evicted, 2 KiB → 512 bytes: 2×1024×4096
/// 59–60 → 65–68, 2×4096×4096 82–84 → 85–87, 2×4096×11008 81–82 → 82–84,
/// but 2×11008×4096 91–95 → 88–90. The other tiles keep 2 KiB: at 512
/// bytes M = 4 and 8 lost 4–7 %.
#ifndef QG_DECODE_PREFETCH_BYTES
#define QG_DECODE_PREFETCH_BYTES 512
#endif

// FMA and F16C too, for the 4-bit tiles' float steps: every AVX2 CPU has both.
static int qg_avx2_supported(void) {
    const qg_cpu_features *f = qg_cpu_get_features();
    return f->avx2 && f->fma && f->f16c;
}

/// Where a block's row groups find their step's weights widened to int16
/// (NULL: nowhere; the tiles widen them): channels [n0, n1), panel-aligned
/// n0, K-group g of channel n's panel at w16 + ((n − n0) / 16 · kp/4 + g) · 64.
typedef struct qg_avx2_group_header {
    const int16_t *w16;
    int64_t n0, n1;
} qg_avx2_group_header;
enum { QG_AVX2_HEADER = 64 };
_Static_assert(sizeof(qg_avx2_group_header) <= QG_AVX2_HEADER, "a row group's header fits its bytes");

/// Calls and blocks of fewer rows keep widening in the tiles: a step's
/// widening writes twice its weights' bytes, which a few row groups do not
/// repay (Zen 1, one thread, fastest of three interleaved runs: 12×768×768
/// 38.5 GOP/s against 42.5, 8×4096×4096 35.3 against 41.2, 24×1024×1024
/// level). From 32 rows on it gains at every K, 8 to 4,096 (KERNELS.md,
/// "AVX2 detail").
#ifndef QG_AVX2_AHEAD_MIN_ROWS
#define QG_AVX2_AHEAD_MIN_ROWS 32
#endif

/// Whole row groups, each a header and room for QG_AVX2_MR rows.
static size_t qg_avx2_x_bytes(int64_t rows, int64_t kp) {
    const int64_t groups = (rows + QG_AVX2_MR - 1) / QG_AVX2_MR;
    return (size_t)groups * (QG_AVX2_HEADER + (size_t)(QG_AVX2_MR * kp) * sizeof(int16_t));
}

/// The K offset within its group of each of a packed group's four values.
static const int qg_avx2_k_of[QG_K_GROUP] = {0, 2, 1, 3};

/// 16 activations widened to int16, each K-group's values put in the packed
/// order 0, 2, 1, 3 (qg_avx2_k_of).
QG_AVX2_INLINE __m256i qg_avx2_widen16(const void *src, int x_unsigned) {
    const __m128i bytes = _mm_loadu_si128((const __m128i *)src);
    const __m256i v = x_unsigned ? _mm256_cvtepu8_epi16(bytes) : _mm256_cvtepi8_epi16(bytes);
    return _mm256_shufflehi_epi16(_mm256_shufflelo_epi16(v, 0xD8), 0xD8);
}

/// Widens 16 activations (4 K-groups of one row) to int16 and scatters the
/// four 8-byte groups to their places, `stride` int16 apart.
QG_AVX2_INLINE void qg_avx2_pack16(const void *src, int x_unsigned, int16_t *dst, int64_t stride) {
    const __m256i v = qg_avx2_widen16(src, x_unsigned);
    const __m128i lo = _mm256_castsi256_si128(v), hi = _mm256_extracti128_si256(v, 1);
    _mm_storel_epi64((__m128i *)dst, lo);
    _mm_storel_epi64((__m128i *)(dst + stride), _mm_unpackhi_epi64(lo, lo));
    _mm_storel_epi64((__m128i *)(dst + 2 * stride), hi);
    _mm_storel_epi64((__m128i *)(dst + 3 * stride), _mm_unpackhi_epi64(hi, hi));
}

/// The same for two neighbouring rows at once: their K-groups sit side by
/// side in the layout, so each store writes 16 bytes, two rows' groups.
QG_AVX2_INLINE void qg_avx2_pack16_pair(const void *src0, const void *src1, int x_unsigned, int16_t *dst,
                                        int64_t stride) {
    const __m256i v0 = qg_avx2_widen16(src0, x_unsigned), v1 = qg_avx2_widen16(src1, x_unsigned);
    const __m256i even = _mm256_unpacklo_epi64(v0, v1), odd = _mm256_unpackhi_epi64(v0, v1); // groups 0, 2 and 1, 3
    _mm_storeu_si128((__m128i *)dst, _mm256_castsi256_si128(even));
    _mm_storeu_si128((__m128i *)(dst + stride), _mm256_castsi256_si128(odd));
    _mm_storeu_si128((__m128i *)(dst + 2 * stride), _mm256_extracti128_si256(even, 1));
    _mm_storeu_si128((__m128i *)(dst + 3 * stride), _mm256_extracti128_si256(odd, 1));
}

/// qg_avx2_pack_x with the signedness a constant (x_unsigned) and the call's
/// fields in locals: the stores could alias *a, so the compiler would read
/// a->x_unsigned again in every step of the loops.
QG_AVX2_INLINE void qg_avx2_pack_x_as(const qg_gemm_args *a, int64_t m0, int64_t rows, uint8_t *out,
                                      const int x_unsigned) {
    const int64_t kp = a->kp, k = a->k, ldx = a->ldx;
    const int64_t groups = kp / QG_K_GROUP;
    // K-groups in whole blocks of 16 activations inside the row: vector path.
    const int64_t whole = k / (4 * QG_K_GROUP) * 4;
    const uint8_t *const x = (const uint8_t *)a->x;
    for (int64_t r0 = 0; r0 < rows; r0 += QG_AVX2_MR) {
        const int64_t R = rows - r0 < QG_AVX2_MR ? rows - r0 : QG_AVX2_MR;
        uint8_t *start = out + (size_t)(r0 / QG_AVX2_MR) * qg_avx2_x_bytes(QG_AVX2_MR, kp);
        memset(start, 0, QG_AVX2_HEADER); // no widened weights until prepare_weights says so
        int16_t *group = (int16_t *)(start + QG_AVX2_HEADER);
        const uint8_t *x0 = x + (m0 + r0) * ldx;
        int64_t r = 0;
        for (; r + 1 < R; r += 2)
            for (int64_t g = 0; g < whole; g += 4)
                qg_avx2_pack16_pair(x0 + r * ldx + g * QG_K_GROUP, x0 + (r + 1) * ldx + g * QG_K_GROUP,
                                    x_unsigned, group + (g * R + r) * QG_K_GROUP, R * QG_K_GROUP);
        for (; r < R; r++)
            for (int64_t g = 0; g < whole; g += 4)
                qg_avx2_pack16(x0 + r * ldx + g * QG_K_GROUP, x_unsigned, group + (g * R + r) * QG_K_GROUP,
                               R * QG_K_GROUP);
        // The rest of each row, zero-padded to kp.
        for (r = 0; r < R; r++) {
            const uint8_t *xr = x0 + r * ldx;
            for (int64_t g = whole; g < groups; g++) {
                int16_t *o = group + (g * R + r) * QG_K_GROUP;
                for (int t = 0; t < QG_K_GROUP; t++) {
                    const int64_t kk = g * QG_K_GROUP + qg_avx2_k_of[t];
                    o[t] = kk < k ? (x_unsigned ? (int16_t)xr[kk] : (int16_t)(int8_t)xr[kk]) : 0;
                }
            }
        }
    }
}

static QG_AVX2 void qg_avx2_pack_x(const qg_gemm_args *a, int64_t m0, int64_t rows, void *dst) {
    if (a->x_unsigned) qg_avx2_pack_x_as(a, m0, rows, dst, 1);
    else qg_avx2_pack_x_as(a, m0, rows, dst, 0);
}

#include "../x86/epilogue_ymm.h"
_Static_assert(QG_AVX2_MR <= QG_YMM_MAX_ROWS, "the 256-bit epilogue holds a tile's rows");
#include "w4_avx2.h"

// MARK: - Microkernels

/// How a tile widens its weight bytes to int16 lanes (a compile-time
/// constant of its loops: a run-time one left them spilling).
enum {
    /// Sign-extended by shifts: VPSLLW and VPSRAW for the low bytes, VPSRAW
    /// for the high ones.
    QG_AVX2_BY_SHIFTS,
    /// Sign-extended by shuffles (VPSHUFB, VPERMQ, VPMOVSXBW), on the CPUs
    /// whose shifts share VPMADDWD's port (qg_cpu_widen_bytes_by_shuffles).
    QG_AVX2_BY_SHUFFLES,
    /// 256 times each byte, exactly (its int8 value in the lane's high byte,
    /// 0 below: −32,768 … 32,512): VPSLLW for the low bytes, VPAND for the
    /// high ones, one shift instead of three. The products are then 256 times
    /// the true ones, so the tile sums them from 0 in blocks of
    /// QG_AVX2_TIMES_256_GROUPS K-groups and adds each block's sums, shifted
    /// right by 8 (exact: they are multiples of 256), to its own.
    QG_AVX2_TIMES_256,
};

/// K-groups of 4 values summed 256 times over before the shift right by 8:
/// 256 K values of |w·x| ≤ 128·255, times 256, is at most 2,139,095,040,
/// below 2^31, so no block's int32 sums wrap.
#define QG_AVX2_TIMES_256_GROUPS 64
_Static_assert((int64_t)QG_AVX2_TIMES_256_GROUPS * QG_K_GROUP * 128 * 255 * 256 <= INT32_MAX,
               "a block of scaled products fits int32");

/// The int16 lanes of 32 weight bytes (8 channels × k0 … k3): in `low` the
/// bytes k0, k2 of each channel, in `high` k1, k3, widened the way WAY says.
QG_AVX2_INLINE void qg_avx2_widen(__m256i bytes, const int WAY, __m256i *low, __m256i *high) {
    if (WAY == QG_AVX2_BY_SHUFFLES) {
        // Each 128-bit lane's even bytes, then its odd ones; the permute puts
        // both lanes' even bytes in the low half and the odd in the high.
        const __m256i even_odd = _mm256_setr_epi8(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15,
                                                  0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15);
        const __m256i split = _mm256_permute4x64_epi64(_mm256_shuffle_epi8(bytes, even_odd), 0xD8);
        *low = _mm256_cvtepi8_epi16(_mm256_castsi256_si128(split));
        *high = _mm256_cvtepi8_epi16(_mm256_extracti128_si256(split, 1));
    } else if (WAY == QG_AVX2_TIMES_256) {
        *low = _mm256_slli_epi16(bytes, 8);
        *high = _mm256_and_si256(bytes, _mm256_set1_epi16((short)0xFF00));
    } else {
        *low = _mm256_srai_epi16(_mm256_slli_epi16(bytes, 8), 8);
        *high = _mm256_srai_epi16(bytes, 8);
    }
}

/// Adds K-group g (4 values) of R rows × 8·NV channels to `acc`. Vector v
/// (8 channels) is 32 bytes of `w` (v < 2) or of the next panel's `w_next`.
QG_AVX2_INLINE void qg_avx2_group(__m256i acc[QG_AVX2_MR][4], const int16_t *x, const int R, const int8_t *w,
                                  const int8_t *w_next, const int NV, const int WAY, const int16_t *w16,
                                  const int W16, int64_t g) {
    // Few rows reuse each weight byte little (M = 1 is one MAC per byte),
    // so they stream W from memory: fetch ahead (one row, and the four
    // streams of two panels, nearer: QG_DECODE_PREFETCH_BYTES). Every row
    // count does (but not from the widened panels, below):
    // on Zen 2, with the caches evicted, 4×4096×4096 went from 63–65 to
    // 70–75 GOP/s and 8×4096×4096 from 82–84 to 96–98, and compute-bound
    // shapes no slower (128×4096×4096 warm: 101–102 → 103–104).
    const int64_t ahead = R == 1 || NV == 4 ? QG_DECODE_PREFETCH_BYTES : QG_PREFETCH_BYTES;
    // The widened panel is not fetched ahead: prepare_weights has just
    // written it, and the tiles read it in order. Fetching it 2 KiB ahead
    // made the tiles up to nearly four times slower, depending on where the
    // scratch lay beside the X block (modulo 8 KiB; Zen 1, one thread:
    // 384×768×3072 29.0 GOP/s against 45.0, 128×64×64 11.5 against 37.7);
    // without the prefetch every placement ran at the same speed
    // (KERNELS.md, "AVX2 detail").
    if (!W16) _mm_prefetch((const char *)(w + g * (QG_PANEL_N * QG_K_GROUP) + ahead), _MM_HINT_T0);
    if (NV > 2) _mm_prefetch((const char *)(w_next + g * (QG_PANEL_N * QG_K_GROUP) + ahead), _MM_HINT_T0);
    // A panel (two vectors) at a time: its 4 widened vectors, the 2·R
    // accumulators of its channels and the 2 broadcasts stay in registers
    // with the other panel's accumulators (two rows of two panels: 14 ymm).
#pragma clang loop unroll(full)
    for (int p = 0; p < NV; p += 2) {
        const int8_t *panel = (p < 2 ? w : w_next) + g * (QG_PANEL_N * QG_K_GROUP);
        const int nv = NV - p < 2 ? NV - p : 2;
        __m256i low[2], high[2];
        if (W16) {
            // One panel (NV = 2): its K-group's four vectors, widened before.
            const int16_t *wide = w16 + g * (QG_PANEL_N * QG_K_GROUP);
#pragma clang loop unroll(full)
            for (int v = 0; v < nv; v++) {
                low[v] = _mm256_loadu_si256((const __m256i *)(wide + 32 * v));
                high[v] = _mm256_loadu_si256((const __m256i *)(wide + 32 * v + 16));
            }
        } else {
#pragma clang loop unroll(full)
            for (int v = 0; v < nv; v++)
                qg_avx2_widen(_mm256_loadu_si256((const __m256i *)(panel + 32 * v)), WAY, &low[v], &high[v]);
        }
#pragma clang loop unroll(full)
        for (int r = 0; r < R; r++) {
            int32_t pair[2];
            memcpy(pair, x + (g * R + r) * QG_K_GROUP, sizeof pair);
            const __m256i x02 = _mm256_set1_epi32(pair[0]), x13 = _mm256_set1_epi32(pair[1]);
#pragma clang loop unroll(full)
            for (int v = 0; v < nv; v++) {
                acc[r][p + v] = _mm256_add_epi32(acc[r][p + v], _mm256_madd_epi16(low[v], x02));
                acc[r][p + v] = _mm256_add_epi32(acc[r][p + v], _mm256_madd_epi16(high[v], x13));
            }
        }
    }
}

/// Adds the K-groups g_begin … g_end − 1 of the first half of K (half =
/// ⌈groups / 2⌉), each beside its partner g + half in the second half; the
/// odd last group, half − 1, has none and comes last, outside the loop.
QG_AVX2_INLINE void qg_avx2_groups_from_both_halves(__m256i acc[QG_AVX2_MR][4], const int16_t *x, const int R,
                                                    const int8_t *w, const int8_t *w_next, const int NV,
                                                    const int WAY, const int16_t *w16, const int W16,
                                                    int64_t g_begin, int64_t g_end, int64_t groups) {
    const int64_t half = (groups + 1) / 2, paired_end = g_end < groups - half ? g_end : groups - half;
    for (int64_t g = g_begin; g < paired_end; g++) {
        qg_avx2_group(acc, x, R, w, w_next, NV, WAY, w16, W16, g);
        qg_avx2_group(acc, x, R, w, w_next, NV, WAY, w16, W16, g + half);
    }
    if (g_end > paired_end) qg_avx2_group(acc, x, R, w, w_next, NV, WAY, w16, W16, half - 1);
}

/// R rows × 8·NV channels (NV ≤ 4), full K, then the epilogue of `kind`.
/// `w` points at the first of the tile's channels inside a panel; K-groups
/// are 64 bytes apart. With NV > 2 the channels 16 … 31 come from the next
/// panel, `w_next`. The channel sums start from the params' start values.
QG_AVX2_INLINE void qg_avx2_tile(const qg_gemm_args *a, const void *x_group, const int R, const int8_t *w,
                                 const int8_t *w_next, const int NV, const int WAY, const int16_t *w16,
                                 const int W16, const qg_ymm_params *params, int64_t m0, int64_t n0, int cols,
                                 const qg_output_kind kind) {
    const int16_t *x = x_group;
    const int32_t *base = qg_ymm_array(params, a, QG_YMM_BASE) + n0;
    __m256i acc[QG_AVX2_MR][4];
#pragma clang loop unroll(full)
    for (int v = 0; v < NV; v++) {
        const __m256i start = _mm256_loadu_si256((const __m256i *)(base + 8 * v));
#pragma clang loop unroll(full)
        for (int r = 0; r < R; r++) acc[r][v] = start;
    }
    const int64_t groups = a->kp / QG_K_GROUP;
    if (WAY == QG_AVX2_TIMES_256) {
        // Both halves of K at once, as below, in blocks of
        // QG_AVX2_TIMES_256_GROUPS K-groups (half from each half of K).
        const int64_t half = (groups + 1) / 2, pairs = QG_AVX2_TIMES_256_GROUPS / 2;
        for (int64_t g0 = 0; g0 < half; g0 += pairs) {
            __m256i scaled[QG_AVX2_MR][4];
#pragma clang loop unroll(full)
            for (int v = 0; v < NV; v++)
#pragma clang loop unroll(full)
                for (int r = 0; r < R; r++) scaled[r][v] = _mm256_setzero_si256();
            const int64_t g1 = g0 + pairs < half ? g0 + pairs : half;
            qg_avx2_groups_from_both_halves(scaled, x, R, w, w_next, NV, WAY, NULL, 0, g0, g1, groups);
#pragma clang loop unroll(full)
            for (int v = 0; v < NV; v++)
#pragma clang loop unroll(full)
                for (int r = 0; r < R; r++) acc[r][v] = _mm256_add_epi32(acc[r][v], _mm256_srai_epi32(scaled[r][v], 8));
        }
    } else if (NV == 4 || a->m <= QG_AVX2_SPLIT_K_ROWS) {
        // Each panel is read from both halves of K at once: the rows of two
        // panels have four streams of weight lines in flight instead of two,
        // and the tiles of calls of a few rows two instead of one. The int32
        // sums are exact, so their order does not change a bit. Calls of
        // more rows gain nothing: their weights come from the caches for all
        // but the first row group (Zen 2, caches evicted, fastest of 3
        // rounds: 2×4096×4096 51–64 → 67–70 GOP/s, 3× 55–56 → 63–68, 4×
        // 65–73 → 81–86; 8× unchanged at 95–98).
        qg_avx2_groups_from_both_halves(acc, x, R, w, w_next, NV, WAY, w16, W16, 0, (groups + 1) / 2, groups);
    } else {
        for (int64_t g = 0; g < groups; g++) qg_avx2_group(acc, x, R, w, w_next, NV, WAY, w16, W16, g);
    }
    // The sums are in channel order (the params' arrays too). Each row of
    // four vectors (the few-rows tile over two panels) packs them together.
    if (NV == 4 && qg_ymm_q8_takes_rows(params, kind)) {
#pragma clang loop unroll(full)
        for (int r = 0; r < R; r++) qg_ymm_q8_row(a, params, m0 + r, n0, (cols + 7) / 8, cols, acc[r], kind);
        return;
    }
#pragma clang loop unroll(full)
    for (int v = 0; v < NV; v++) {
        const int c = cols - 8 * v;
        if (c <= 0) break;
        __m256i s[QG_AVX2_MR];
#pragma clang loop unroll(full)
        for (int r = 0; r < R; r++) s[r] = acc[r][v];
        if (qg_ymm_q8_takes_rows(params, kind)) {
            qg_ymm_q8_rows(a, params, m0, R, n0 + 8 * v, c > 8 ? 8 : c, s, kind);
        } else {
            qg_ymm_epilogue_rows(a, m0, R, n0 + 8 * v, c > 8 ? 8 : c, s, kind);
        }
    }
}

/// The main tile: rows ≤ 4 × 16 channels (one panel): 8 accumulators, 4
/// widened weight vectors and 2 broadcasts. Each K-group is 16 VPMADDWD
/// against 2 loads of weights, 6 shifts (by shifts) and 8 broadcasts (or,
/// where the block's step was widened ahead, 4 loads and no shifts), the
/// fewest instructions per VPMADDWD of the tiles that fit the registers
/// (6 × 8 channels: 12 VPMADDWD against 1 load, 3 shifts and 12
/// broadcasts).
QG_AVX2_INLINE void qg_avx2_main(const qg_gemm_args *a, const void *group, int rows, int64_t m0, int64_t n0, int cols,
                                 const void *params, const qg_output_kind kind) {
    const int8_t *w = qg_weights_at(a, n0, 0);
    const qg_ymm_params *ymm = params;
    const qg_avx2_group_header *header = group;
    const void *x = (const uint8_t *)group + QG_AVX2_HEADER;
    // This panel's weights as int16, where the block's step has them.
    const int16_t *w16 = header->w16 && n0 >= header->n0 && n0 < header->n1
                             ? header->w16 + (n0 - header->n0) * a->kp
                             : NULL;
    // Constant R and way of widening for the compiler: one specialised loop
    // each. The driver gives groups of 1 or 2 rows to the few-rows tile, so
    // only 3 and 4 rows come here in a call, and only they widen by shuffles
    // or read widened weights.
    const int shuffles = ymm->by_shuffles;
    switch (rows) {
    case 4:
        if (w16) qg_avx2_tile(a, x, 4, w, NULL, 2, QG_AVX2_BY_SHIFTS, w16, 1, ymm, m0, n0, cols, kind);
        else if (shuffles) qg_avx2_tile(a, x, 4, w, NULL, 2, QG_AVX2_BY_SHUFFLES, NULL, 0, ymm, m0, n0, cols, kind);
        else qg_avx2_tile(a, x, 4, w, NULL, 2, QG_AVX2_BY_SHIFTS, NULL, 0, ymm, m0, n0, cols, kind);
        return;
    case 3:
        if (w16) qg_avx2_tile(a, x, 3, w, NULL, 2, QG_AVX2_BY_SHIFTS, w16, 1, ymm, m0, n0, cols, kind);
        else if (shuffles) qg_avx2_tile(a, x, 3, w, NULL, 2, QG_AVX2_BY_SHUFFLES, NULL, 0, ymm, m0, n0, cols, kind);
        else qg_avx2_tile(a, x, 3, w, NULL, 2, QG_AVX2_BY_SHIFTS, NULL, 0, ymm, m0, n0, cols, kind);
        return;
    case 2: qg_avx2_tile(a, x, 2, w, NULL, 2, QG_AVX2_BY_SHIFTS, NULL, 0, ymm, m0, n0, cols, kind); return;
    default: qg_avx2_tile(a, x, 1, w, NULL, 2, QG_AVX2_BY_SHIFTS, NULL, 0, ymm, m0, n0, cols, kind); return;
    }
}
QG_DEFINE_TILE_KINDS(QG_AVX2, 4x16c4__avx2, qg_avx2_main)

/// The few-rows tile: 1 or 2 rows × two 16-channel panels, each streamed
/// once with a software prefetch (M = 1 and 2 are bound by reading the
/// weights). The rows read both panels side by side, each from both halves
/// of K: four streams of weight lines in flight read DRAM faster than one or
/// two (Zen 2, one thread, weights not in the caches: 1×11008×4096 at 35
/// GOP/s with two streams, 47–49 with four; 2×11008×4096 80–86 with the
/// panels one after the other, 88–90 side by side). Two rows hold 8
/// accumulators, and the group loop widens one panel's weights at a time,
/// by shifts: these tiles read their weights from memory, where the shifts'
/// port is not what bounds them at two rows, even on Haswell (its port 0
/// takes 7 instructions per 32 bytes there: about 15 GB/s at 3.2 GHz). One
/// row takes its weights 256 times over (QG_AVX2_TIMES_256: one shift and
/// one AND per 32 bytes, not three shifts): Zen 1 runs vector shifts on one
/// pipe, two µops each, so three shifts per two VPMADDWD bounded the row
/// there (one thread, fastest of three interleaved rounds, GOP/s:
/// 1×4096×4096 24.4–24.9 → 29.0–29.2, 1×11008×4096 24.8–25.2 → 29.7–30.2,
/// 1×1024×1024 25.7 → 30.4–30.7); two rows, whose VPMADDWD bound them,
/// ran level with it (2×4096×4096 32.3–33.6 against 32.1–32.7).
QG_AVX2_INLINE void qg_avx2_few_rows(const qg_gemm_args *a, const void *group, int rows, int64_t m0, int64_t n0,
                                     int cols, const void *params, const qg_output_kind kind) {
    const qg_ymm_params *ymm = params;
    const void *x = (const uint8_t *)group + QG_AVX2_HEADER;
    if (cols > QG_PANEL_N) {
        const int8_t *w = qg_weights_at(a, n0, 0), *w_next = qg_weights_at(a, n0 + QG_PANEL_N, 0);
        if (rows == 2) qg_avx2_tile(a, x, 2, w, w_next, 4, QG_AVX2_BY_SHIFTS, NULL, 0, ymm, m0, n0, cols, kind);
        else qg_avx2_tile(a, x, 1, w, w_next, 4, QG_AVX2_TIMES_256, NULL, 0, ymm, m0, n0, cols, kind);
        return;
    }
    for (int c = 0; c < cols; c += QG_PANEL_N) {
        const int8_t *w = qg_weights_at(a, n0 + c, 0);
        const int panel_cols = cols - c < QG_PANEL_N ? cols - c : QG_PANEL_N;
        if (rows == 2) qg_avx2_tile(a, x, 2, w, NULL, 2, QG_AVX2_BY_SHIFTS, NULL, 0, ymm, m0, n0 + c, panel_cols, kind);
        else qg_avx2_tile(a, x, 1, w, NULL, 2, QG_AVX2_TIMES_256, NULL, 0, ymm, m0, n0 + c, panel_cols, kind);
    }
}
QG_DEFINE_TILE_KINDS(QG_AVX2, 2x32c4__avx2, qg_avx2_few_rows)

/// The per-call params: each channel's start value (activations are widened
/// exactly, so there is no private fold), and how the tiles widen weights.
static QG_AVX2 void qg_avx2_init_params(const qg_gemm_args *a, void *params) {
    qg_ymm_init_params(a, params, 0);
    ((qg_ymm_params *)params)->by_shuffles = qg_cpu_widen_bytes_by_shuffles();
    ((qg_ymm_params *)params)->widen_ahead = qg_cpu_avx2_widens_weights_ahead();
}

/// Room for `channels` channels' weights widened to int16, on the CPUs that
/// widen ahead; else none (the driver asks only for blocks of
/// QG_AVX2_AHEAD_MIN_ROWS rows or more: prepare_min_rows).
static size_t qg_avx2_weights_scratch_bytes(const qg_gemm_args *a, const void *params, int64_t channels) {
    if (!((const qg_ymm_params *)params)->widen_ahead) return 0;
    const int64_t panels = (channels + QG_PANEL_N - 1) / QG_PANEL_N;
    return (size_t)(panels * QG_PANEL_N * a->kp) * sizeof(int16_t);
}

/// Widens the panels of channels [n0, n1) once for all of the block's row
/// groups, with qg_avx2_widen's shifts (the same lanes, so the same bits),
/// and tells each group's header; blocks of few rows, which the driver does
/// not prepare, keep widening in the tiles (their headers stay empty, as
/// pack_x left them).
static QG_AVX2 void qg_avx2_prepare_weights(const qg_gemm_args *a, const void *params, int64_t n0, int64_t n1,
                                            void *x_block, int64_t rows, void *scratch) {
    (void)params;
    int16_t *out = scratch;
    const int64_t panels = (n1 - n0 + QG_PANEL_N - 1) / QG_PANEL_N;
    const int64_t vectors = panels * QG_PANEL_N * a->kp / 32; // of 32 weight bytes, K-groups of whole panels
    const int8_t *w = qg_weights_at(a, n0, 0);
    for (int64_t v = 0; v < vectors; v++) {
        __m256i low, high;
        qg_avx2_widen(_mm256_loadu_si256((const __m256i *)(w + 32 * v)), QG_AVX2_BY_SHIFTS, &low, &high);
        _mm256_storeu_si256((__m256i *)(out + 32 * v), low);
        _mm256_storeu_si256((__m256i *)(out + 32 * v + 16), high);
    }
    const size_t group_bytes = qg_avx2_x_bytes(QG_AVX2_MR, a->kp);
    for (int64_t r = 0; r < rows; r += QG_AVX2_MR) {
        qg_avx2_group_header *header = (qg_avx2_group_header *)((uint8_t *)x_block + (size_t)(r / QG_AVX2_MR) * group_bytes);
        *header = (qg_avx2_group_header){.w16 = out, .n0 = n0, .n1 = n1};
    }
}

/// The peak probe of this path's instruction (peak_avx2.c in this folder).
int64_t qg_peak_avx2(int64_t iterations);

const qg_kernel qg_kernel_avx2 = {
    .name = "avx2",
    .requires = "x86-64 with AVX2, FMA and F16C",
    .main = {.mr = QG_AVX2_MR, .nr = QG_PANEL_N, .run = QG_TILE_KINDS(4x16c4__avx2), .name = "qg_gemm_4x16c4__avx2"},
    .few_rows = {.mr = 2, .nr = 2 * QG_PANEL_N, .run = QG_TILE_KINDS(2x32c4__avx2), .name = "qg_gemm_2x32c4__avx2"},
    .kr = QG_K_GROUP,
    .panel_n = QG_PANEL_N,
    .is_supported = qg_avx2_supported,
    .x_block_bytes = qg_avx2_x_bytes,
    .pack_x = qg_avx2_pack_x,
    .x_block_target = 512 * 1024,
    .max_row_groups = 24, // 96 rows, as when the main tile had 6
    .params_bytes = qg_ymm_params_bytes,
    .init_params = qg_avx2_init_params,
    .weights_scratch_bytes = qg_avx2_weights_scratch_bytes,
    .prepare_weights = qg_avx2_prepare_weights,
    .prepare_min_rows = QG_AVX2_AHEAD_MIN_ROWS,
    .peak_probe = qg_peak_avx2,
    .peak_instruction = "VPMADDWD + VPADDD (ymm)",
    .w4_main = {.mr = 2, .nr = QG_W4_PANEL_N, .run = qg_w4_2x16c8__avx2, .name = "qg_w4_2x16c8__avx2"},
    .w4_few = {.mr = 1, .nr = 4 * QG_W4_PANEL_N, .run = qg_w4_1x64c8__avx2, .name = "qg_w4_1x64c8__avx2"},
};
#endif
