// Scaled dot-product attention of one sequence and one head, in Float.
//
// Both products are register tiles of 16-float vectors, as many as the
// copy's register file holds (8 rows × 32 columns for AVX-512, 6 × 16 for
// AVX2 and the baseline): the scores (Kᵀ packed once per head so that 16 key
// tokens are one load), then the context values (the head's rows of V copied
// side by side first), broadcasting each exponential against a row of V, the
// softmax's normalization applied once per context value.
// Each output is one chain of fused multiply-adds in a fixed order (over the
// head's dimensions for a score, over the key tokens for a context value),
// so the result is the same on every CPU and vector width; only the speed
// depends on which copy of the code runs.
#include "encoder_kernels.h"
#include "approximations.h"

#include <stdint.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

typedef enc_v16 v16;
typedef enc_vi16 vi16;

#define ALWAYS_INLINE static inline __attribute__((always_inline))
#define BLOCK_ROWS 8
#define SOFTMAX_ROWS 4

// Unaligned loads and stores through a packed, may-alias struct; macros, not
// functions, so that no 64-byte vector crosses a call in the default target.
// The helpers below that take or return vectors are always inlined, so none
// crosses a call either, and the compiler's ABI warning about such calls
// does not apply.
#pragma clang diagnostic ignored "-Wpsabi"
typedef struct __attribute__((packed, may_alias)) { v16 v; } unaligned_v16;
#define load16(p) (((const unaligned_v16 *)(p))->v)
#define store16(p, x) (((unaligned_v16 *)(p))->v = (x))
#define fma16(a, b, c) __builtin_elementwise_fma((a), (b), (c))

static ptrdiff_t padded_tokens(ptrdiff_t t) { return (t + 15) / 16 * 16; }

ptrdiff_t enc_attention_scratch_count(ptrdiff_t tokens, ptrdiff_t head_size) {
    ptrdiff_t tp = padded_tokens(tokens);
    return tp * head_size + tokens * tp + tokens + tokens * head_size;
}

/// s[r][j..j+16·NV) = Σ_c q[r][c]·kt[c][j..], for `rows` ≤ BLOCK_ROWS rows.
ALWAYS_INLINE void score_tile(const float *q, ptrdiff_t ldq, const float *kt, ptrdiff_t tp, ptrdiff_t d,
                              float *s, ptrdiff_t lds, const int nv, const int rows) {
    v16 acc[BLOCK_ROWS][2];
    for (int r = 0; r < rows; r++)
        for (int v = 0; v < nv; v++) acc[r][v] = (v16)0.0f;
    for (ptrdiff_t c = 0; c < d; c++) {
        v16 k0 = load16(kt + c * tp), k1 = nv > 1 ? load16(kt + c * tp + 16) : k0;
        for (int r = 0; r < rows; r++) {
            v16 qv = (v16)q[r * ldq + c];
            acc[r][0] = fma16(qv, k0, acc[r][0]);
            if (nv > 1) acc[r][1] = fma16(qv, k1, acc[r][1]);
        }
    }
    for (int r = 0; r < rows; r++)
        for (int v = 0; v < nv; v++) store16(s + r * lds + 16 * v, acc[r][v]);
}

/// out[r][0..16·NV) = inv[r]·Σ_j p[r][j]·v[j][0..], for `rows` ≤ BLOCK_ROWS
/// rows: the softmax's normalization applied once per output, not per score.
ALWAYS_INLINE void context_tile(const float *p, ptrdiff_t ldp, const float *inv, const float *v, ptrdiff_t ldv,
                                ptrdiff_t t, float *out, ptrdiff_t ldo, const int nv, const int rows) {
    v16 acc[BLOCK_ROWS][2];
    for (int r = 0; r < rows; r++)
        for (int x = 0; x < nv; x++) acc[r][x] = (v16)0.0f;
    for (ptrdiff_t j = 0; j < t; j++) {
        v16 v0 = load16(v + j * ldv), v1 = nv > 1 ? load16(v + j * ldv + 16) : v0;
        for (int r = 0; r < rows; r++) {
            v16 pv = (v16)p[r * ldp + j];
            acc[r][0] = fma16(pv, v0, acc[r][0]);
            if (nv > 1) acc[r][1] = fma16(pv, v1, acc[r][1]);
        }
    }
    for (int r = 0; r < rows; r++)
        for (int x = 0; x < nv; x++) store16(out + r * ldo + 16 * x, acc[r][x] * inv[r]);
}

/// The same sums one value at a time, for head sizes that are not a
/// multiple of 16 (the same order of operations as the tiles).
ALWAYS_INLINE float dot_strided(const float *a, ptrdiff_t sa, const float *b, ptrdiff_t sb, ptrdiff_t n) {
    float acc = 0.0f;
    for (ptrdiff_t i = 0; i < n; i++) acc = __builtin_fmaf(a[i * sa], b[i * sb], acc);
    return acc;
}

/// The larger of each pair of lanes, halving until one is left (8 + 8,
/// 4 + 4, …): four dependent steps instead of fifteen, in an order every
/// copy spells the same.
ALWAYS_INLINE float max_across(v16 x) {
    const __attribute__((ext_vector_type(8))) float a = x.hi > x.lo ? x.hi : x.lo;
    const __attribute__((ext_vector_type(4))) float b = a.hi > a.lo ? a.hi : a.lo;
    const __attribute__((ext_vector_type(2))) float c = b.hi > b.lo ? b.hi : b.lo;
    return c.y > c.x ? c.y : c.x;
}

/// The sum of the lanes in the same pairwise order as max_across.
ALWAYS_INLINE float sum_across(v16 x) {
    const __attribute__((ext_vector_type(8))) float a = x.lo + x.hi;
    const __attribute__((ext_vector_type(4))) float b = a.lo + a.hi;
    const __attribute__((ext_vector_type(2))) float c = b.lo + b.hi;
    return c.x + c.y;
}

/// Softmax's exponentials of `rows` ≤ SOFTMAX_ROWS rows of n scores (row
/// stride lds), in place: s ← exp(scale·(s − row max)), inv[r] ← 1 / the
/// row's sum. Each row has room for n rounded up to 16, so a last partial
/// step runs as a whole sixteen-lane step in which the lanes past n take no
/// part (their places get 0). Per row: the maximum first, then the
/// exponentials with sixteen partial sums, both reduced pairwise; every row
/// has its own chains, so the rows run side by side (one row alone waits on
/// its maximum, then on its sums: a 128-token head's softmax took as long
/// as its scores). The whole steps keep a loop of their own without the
/// mask, which cost 16 % of a 128-token head when every step had it.
ALWAYS_INLINE void softmax_exp_rows(float *s, ptrdiff_t lds, ptrdiff_t n, float scale, float *inv, const int rows) {
    v16 top[SOFTMAX_ROWS], sum[SOFTMAX_ROWS];
    float max[SOFTMAX_ROWS];
    for (int r = 0; r < rows; r++) top[r] = (v16)s[r * lds];
    ptrdiff_t j = 0;
    for (; j + 16 <= n; j += 16)
        for (int r = 0; r < rows; r++) {
            const v16 x = load16(s + r * lds + j);
            top[r] = x > top[r] ? x : top[r];
        }
    const vi16 live = (vi16){0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15} < (vi16)(int32_t)(n - j);
    if (j < n)
        for (int r = 0; r < rows; r++) {
            const v16 x = live ? load16(s + r * lds + j) : (v16)s[r * lds];
            top[r] = x > top[r] ? x : top[r];
        }
    for (int r = 0; r < rows; r++) {
        max[r] = max_across(top[r]);
        sum[r] = (v16)0.0f;
    }
    for (j = 0; j + 16 <= n; j += 16)
        for (int r = 0; r < rows; r++) {
            const v16 e = enc_expf16((load16(s + r * lds + j) - max[r]) * scale);
            store16(s + r * lds + j, e);
            sum[r] += e;
        }
    if (j < n)
        for (int r = 0; r < rows; r++) {
            const v16 e = live ? enc_expf16((load16(s + r * lds + j) - max[r]) * scale) : (v16)0.0f;
            store16(s + r * lds + j, e);
            sum[r] += e;
        }
    for (int r = 0; r < rows; r++) inv[r] = 1.0f / sum_across(sum[r]);
}

/// softmax_exp_rows over `rows` rows, SOFTMAX_ROWS at a time.
ALWAYS_INLINE void softmax_rows_body(float *s, ptrdiff_t rows, ptrdiff_t t, ptrdiff_t lds, float scale, float *inv) {
    ptrdiff_t i = 0;
    for (; i + SOFTMAX_ROWS <= rows; i += SOFTMAX_ROWS) softmax_exp_rows(s + i * lds, lds, t, scale, inv + i, SOFTMAX_ROWS);
    for (; i < rows; i++) softmax_exp_rows(s + i * lds, lds, t, scale, inv + i, 1);
}

/// kt[c][j] = k[j][c] for the t key tokens, zeros up to tp: Kᵀ, so that 16
/// keys are one load in the score tile.
typedef void (*transpose_keys_fn)(const float *k, ptrdiff_t ld, ptrdiff_t t, ptrdiff_t d, float *kt, ptrdiff_t tp);

ALWAYS_INLINE void transpose_keys_scalar(const float *k, ptrdiff_t ld, ptrdiff_t t, ptrdiff_t d, float *kt, ptrdiff_t tp) {
    for (ptrdiff_t c = 0; c < d; c++) {
        for (ptrdiff_t j = 0; j < t; j++) kt[c * tp + j] = k[j * ld + c];
        for (ptrdiff_t j = t; j < tp; j++) kt[c * tp + j] = 0.0f;
    }
}

/// The score tiles of `rows` rows (q and s at their first row): whole
/// 16·nv-column tiles, then 16-column ones up to tp.
ALWAYS_INLINE void score_rows(const float *q, ptrdiff_t ld, const float *kt, ptrdiff_t tp, ptrdiff_t d, float *s,
                              const int nv, const int rows) {
    ptrdiff_t j = 0;
    for (; j + 16 * nv <= tp; j += 16 * nv) score_tile(q, ld, kt + j, tp, d, s + j, tp, nv, rows);
    for (; j < tp; j += 16) score_tile(q, ld, kt + j, tp, d, s + j, tp, 1, rows);
}

/// Calls `tiles` (score_rows or context_tile, whose row count comes last)
/// for the last t − i < block rows as one tile of that many rows, each
/// count a constant.
#define LAST_ROWS(tiles, left, block, ...)                                                                        \
    switch (left) {                                                                                               \
    case 1: tiles(__VA_ARGS__, 1); break;                                                                         \
    case 2: if (2 < (block)) tiles(__VA_ARGS__, 2); break;                                                        \
    case 3: if (3 < (block)) tiles(__VA_ARGS__, 3); break;                                                        \
    case 4: if (4 < (block)) tiles(__VA_ARGS__, 4); break;                                                        \
    case 5: if (5 < (block)) tiles(__VA_ARGS__, 5); break;                                                        \
    case 6: if (6 < (block)) tiles(__VA_ARGS__, 6); break;                                                        \
    case 7: if (7 < (block)) tiles(__VA_ARGS__, 7); break;                                                        \
    default: break;                                                                                               \
    }

/// `transpose`: the copy's own Kᵀ (a data movement: every copy's is the
/// same). `block` rows × `nv` vectors of 16 is the copy's register tile,
/// sized to its register file (block · nv · 16 floats of sums, plus the nv
/// loaded vectors and a broadcast): the tiling changes the speed only, as
/// every output's chain of multiply-adds is the same in any tile.
ALWAYS_INLINE void attention_body(const float *q, const float *k, const float *v, ptrdiff_t ld, ptrdiff_t t,
                                  ptrdiff_t d, float scale, float *out, ptrdiff_t ldo, float *scratch,
                                  transpose_keys_fn transpose, const int block, const int nv) {
    ptrdiff_t tp = padded_tokens(t);
    float *kt = scratch, *s = scratch + tp * d, *inv = s + t * tp, *vc = inv + t;
    if (transpose) transpose(k, ld, t, d, kt, tp);
    else transpose_keys_scalar(k, ld, t, d, kt, tp);
    // V's rows of this head side by side: in place they are a Q/K/V row
    // apart (3 × hidden floats), a stride that maps them onto a few L1 sets,
    // so the context tiles would read them from L2 again and again.
    for (ptrdiff_t j = 0; j < t; j++)
        for (ptrdiff_t c = 0; c < d; c++) vc[j * d + c] = v[j * ld + c];
    v = vc;
    const ptrdiff_t ldv = d;
    // Scores, `block` rows at a time, then the remaining rows as one tile.
    ptrdiff_t i = 0;
    for (; i + block <= t; i += block) score_rows(q + i * ld, ld, kt, tp, d, s + i * tp, nv, block);
    LAST_ROWS(score_rows, t - i, block, q + i * ld, ld, kt, tp, d, s + i * tp, nv)
    // Each row of s has tp ≥ t columns (t rounded up to 16), the room the
    // softmax's last masked step needs.
    softmax_rows_body(s, t, t, tp, scale, inv);
    // Context: whole 16·nv- and 16-column blocks of the head, then any rest.
    ptrdiff_t c = 0;
    for (; c + 16 * nv <= d; c += 16 * nv) {
        for (i = 0; i + block <= t; i += block)
            context_tile(s + i * tp, tp, inv + i, v + c, ldv, t, out + i * ldo + c, ldo, nv, block);
        LAST_ROWS(context_tile, t - i, block, s + i * tp, tp, inv + i, v + c, ldv, t, out + i * ldo + c, ldo, nv)
    }
    for (; c + 16 <= d; c += 16) {
        for (i = 0; i + block <= t; i += block)
            context_tile(s + i * tp, tp, inv + i, v + c, ldv, t, out + i * ldo + c, ldo, 1, block);
        LAST_ROWS(context_tile, t - i, block, s + i * tp, tp, inv + i, v + c, ldv, t, out + i * ldo + c, ldo, 1)
    }
    for (; c < d; c++)
        for (i = 0; i < t; i++) out[i * ldo + c] = dot_strided(s + i * tp, 1, v + c, ldv, t) * inv[i];
}

#if defined(__x86_64__)
/// Kᵀ sixteen tokens at a time, each dimension one gather (the last tokens
/// masked, the padding zero): a sixth of the scalar copy's instructions.
/// Row strides beyond what 32-bit gather offsets reach take the scalar copy.
__attribute__((target("avx512f"))) static void transpose_keys_avx512(const float *k, ptrdiff_t ld, ptrdiff_t t,
                                                                     ptrdiff_t d, float *kt, ptrdiff_t tp) {
    if (ld > INT32_MAX / 16) {
        transpose_keys_scalar(k, ld, t, d, kt, tp);
        return;
    }
    const __m512i rows = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                            _mm512_set1_epi32((int)ld));
    for (ptrdiff_t j = 0; j < tp; j += 16) {
        const __mmask16 live = t - j >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (t - j)) - 1);
        for (ptrdiff_t c = 0; c < d; c++)
            _mm512_storeu_ps(kt + c * tp + j, _mm512_mask_i32gather_ps(_mm512_setzero_ps(), live, rows, k + j * ld + c, 4));
    }
}

/// Kᵀ in 8 × 8 blocks (eight loads, the in-register transpose of unpacks
/// and lane permutes, eight stores), the rest and the padding through the
/// scalar copy's loops: about a third of the scalar copy's time.
__attribute__((target("avx2"))) static void transpose_keys_avx2(const float *k, ptrdiff_t ld, ptrdiff_t t, ptrdiff_t d,
                                                                float *kt, ptrdiff_t tp) {
    const ptrdiff_t t8 = t / 8 * 8, d8 = d / 8 * 8;
    for (ptrdiff_t j = 0; j < t8; j += 8)
        for (ptrdiff_t c = 0; c < d8; c += 8) {
            __m256 r[8], u[8], w[8];
            for (int i = 0; i < 8; i++) r[i] = _mm256_loadu_ps(k + (j + i) * ld + c);
            for (int i = 0; i < 8; i += 2) {
                u[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);     // rows i, i+1 interleaved: dims 0, 1 | 4, 5
                u[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]); // dims 2, 3 | 6, 7
            }
            for (int i = 0; i < 8; i += 4)
                for (int h = 0; h < 2; h++) {
                    // Four rows of one dimension pair: lows give the first dimension, highs the second.
                    const __m256d a = _mm256_castps_pd(u[i + h]), b = _mm256_castps_pd(u[i + 2 + h]);
                    w[i + 2 * h] = _mm256_castpd_ps(_mm256_unpacklo_pd(a, b));
                    w[i + 2 * h + 1] = _mm256_castpd_ps(_mm256_unpackhi_pd(a, b));
                }
            // w[0..3] hold rows 0-3 of dims 0,1,2,3 | 4,5,6,7 and w[4..7] rows 4-7.
            for (int i = 0; i < 4; i++) {
                _mm256_storeu_ps(kt + (c + i) * tp + j, _mm256_permute2f128_ps(w[i], w[i + 4], 0x20));
                _mm256_storeu_ps(kt + (c + i + 4) * tp + j, _mm256_permute2f128_ps(w[i], w[i + 4], 0x31));
            }
        }
    for (ptrdiff_t c = 0; c < d; c++) {
        for (ptrdiff_t j = c < d8 ? t8 : 0; j < t; j++) kt[c * tp + j] = k[j * ld + c];
        for (ptrdiff_t j = t; j < tp; j++) kt[c * tp + j] = 0.0f;
    }
}

__attribute__((target("avx512f,avx512dq,avx512vl,fma")))
static void attention_avx512(const float *q, const float *k, const float *v, ptrdiff_t ld, ptrdiff_t t,
                             ptrdiff_t d, float scale, float *out, ptrdiff_t ldo, float *scratch) {
    attention_body(q, k, v, ld, t, d, scale, out, ldo, scratch, transpose_keys_avx512, 8, 2);
}

__attribute__((target("avx2,fma")))
static void attention_avx2(const float *q, const float *k, const float *v, ptrdiff_t ld, ptrdiff_t t,
                           ptrdiff_t d, float scale, float *out, ptrdiff_t ldo, float *scratch) {
    attention_body(q, k, v, ld, t, d, scale, out, ldo, scratch, transpose_keys_avx2, 6, 1);
}
#endif

// The softmax step alone, for attention whose products run elsewhere (the
// int8 ones): the same step, and bits, as in attention_body.
#if defined(__x86_64__)
__attribute__((target("avx512f,avx512dq,avx512vl,fma")))
static void softmax_rows_avx512(float *s, ptrdiff_t rows, ptrdiff_t t, ptrdiff_t lds, float scale, float *inv) {
    softmax_rows_body(s, rows, t, lds, scale, inv);
}

__attribute__((target("avx2,fma")))
static void softmax_rows_avx2(float *s, ptrdiff_t rows, ptrdiff_t t, ptrdiff_t lds, float scale, float *inv) {
    softmax_rows_body(s, rows, t, lds, scale, inv);
}
#endif

/// Whether this CPU runs copy `copy` of the code (0 the baseline, 1 AVX2
/// with FMA, 2 AVX-512).
static int copy_runs(int copy) {
    switch (copy) {
    case 0: return 1;
#if defined(__x86_64__)
    case 1: return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case 2:
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
               __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("fma");
#endif
    default: return 0;
    }
}

void enc_softmax_rows(float *s, ptrdiff_t rows, ptrdiff_t t, ptrdiff_t lds, float scale, float *inv) {
    if (rows <= 0 || t <= 0) return;
#if defined(__x86_64__)
    if (copy_runs(2)) {
        softmax_rows_avx512(s, rows, t, lds, scale, inv);
        return;
    }
    if (copy_runs(1)) {
        softmax_rows_avx2(s, rows, t, lds, scale, inv);
        return;
    }
#endif
    softmax_rows_body(s, rows, t, lds, scale, inv);
}

void enc_scale_rows(float *y, ptrdiff_t rows, ptrdiff_t n, ptrdiff_t ldy, const float *factor) {
    for (ptrdiff_t i = 0; i < rows; i++)
        for (ptrdiff_t c = 0; c < n; c++) y[i * ldy + c] *= factor[i];
}

int enc_attention_head_copy(int copy, const float *q, const float *k, const float *v, ptrdiff_t ld, ptrdiff_t tokens,
                            ptrdiff_t head_size, float scale, float *out, ptrdiff_t ldo, float *scratch) {
    if (tokens <= 0) return 0;
    if (!copy_runs(copy)) return -1;
    switch (copy) {
    case 0:
        attention_body(q, k, v, ld, tokens, head_size, scale, out, ldo, scratch, NULL, 6, 1);
        return 0;
#if defined(__x86_64__)
    case 1:
        attention_avx2(q, k, v, ld, tokens, head_size, scale, out, ldo, scratch);
        return 0;
    case 2:
        attention_avx512(q, k, v, ld, tokens, head_size, scale, out, ldo, scratch);
        return 0;
#endif
    default:
        return -1;
    }
}

void enc_attention_head(const float *q, const float *k, const float *v, ptrdiff_t ld, ptrdiff_t tokens,
                        ptrdiff_t head_size, float scale, float *out, ptrdiff_t ldo, float *scratch) {
    // The widest copy this CPU runs.
    for (int copy = 2; copy >= 0; copy--)
        if (enc_attention_head_copy(copy, q, k, v, ld, tokens, head_size, scale, out, ldo, scratch) == 0) return;
}
