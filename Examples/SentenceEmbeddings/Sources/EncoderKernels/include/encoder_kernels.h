// The operations of a BERT encoder besides its Linear layers: LayerNorm,
// erf-GELU, softmax, attention and mean pooling. Plain loops with branch-free
// approximations of exp and erf (absolute error ≤ 5e-7 for erf, relative
// ≤ 2e-7 for exp on [-87.3, 88.3], 0 below), written so that the compiler
// vectorizes them.
#ifndef ENCODER_KERNELS_H
#define ENCODER_KERNELS_H

#include <stddef.h>

/// x[r] ← LayerNorm(x[r] + residual[r]) · gamma + beta for each of `rows` rows
/// of `n` values (residual may be NULL).
void enc_add_layer_norm(float *x, const float *residual, ptrdiff_t rows, ptrdiff_t n,
                        const float *gamma, const float *beta, float eps);

/// x ← 0.5·x·(1 + erf(x/√2)), in place.
void enc_gelu_erf(float *x, ptrdiff_t count);

/// erf(x) for each value (the approximation GELU uses; exposed for tests).
void enc_erf(const float *x, float *y, ptrdiff_t count);

/// exp(x) for each value, x clamped to [-87.3, 88.3] first and 0 below -87.3
/// (the approximation softmax uses, on values ≤ 0; exposed for tests).
void enc_exp(const float *x, float *y, ptrdiff_t count);

/// Scaled dot-product attention of one sequence of `tokens` tokens and one
/// head of `head_size` values: Q, K and V rows start at q, k and v with row
/// stride `ld`; out[i] (row stride `ldo`) ← Σ_j softmax(scale·Q·Kᵀ)[i][j]·V[j].
/// `scratch` holds enc_attention_scratch_count(tokens, head_size) floats.
/// Each value is one chain of fused multiply-adds in a fixed order, so the
/// result does not depend on the CPU's vector width.
void enc_attention_head(const float *q, const float *k, const float *v, ptrdiff_t ld, ptrdiff_t tokens,
                        ptrdiff_t head_size, float scale, float *out, ptrdiff_t ldo, float *scratch);

/// enc_attention_head with one copy of the code: 0 the baseline target,
/// 1 AVX2 with FMA, 2 AVX-512 (x86-64 only). Returns -1, doing nothing, when
/// the CPU cannot run that copy. For tests: every copy gives the same bits.
int enc_attention_head_copy(int copy, const float *q, const float *k, const float *v, ptrdiff_t ld, ptrdiff_t tokens,
                            ptrdiff_t head_size, float scale, float *out, ptrdiff_t ldo, float *scratch);

/// Softmax's exponentials of `rows` rows of t scores in place (row stride
/// `lds` ≥ t rounded up to 16, the room its last masked step writes):
/// s ← exp(scale·(s − row max)), inv[i] ← 1 / the row's sum; the bits of
/// that step in enc_attention_head, for attention whose products run
/// elsewhere (int8, through QGEMM's ActivationProduct).
void enc_softmax_rows(float *s, ptrdiff_t rows, ptrdiff_t t, ptrdiff_t lds, float scale, float *inv);

/// y[i][c] ← y[i][c]·factor[i] for `rows` rows of n values (row stride ldy).
void enc_scale_rows(float *y, ptrdiff_t rows, ptrdiff_t n, ptrdiff_t ldy, const float *factor);

/// The floats of scratch enc_attention_head needs.
ptrdiff_t enc_attention_scratch_count(ptrdiff_t tokens, ptrdiff_t head_size);

/// out[n] ← the mean of `rows` rows of `n` values, scaled to unit L2 norm
/// (a mean of zeros stays zero: it has no direction, and the caller refuses it).
void enc_mean_pool_normalize(const float *h, ptrdiff_t rows, ptrdiff_t n, float *out);

/// y[r] += bias, for `rows` rows of `n` values.
void enc_add_bias(float *y, ptrdiff_t rows, ptrdiff_t n, const float *bias);

#endif
