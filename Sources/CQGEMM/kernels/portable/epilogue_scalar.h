// Internal: the scalar epilogue: one output element from its raw dot product,
// with the reference's formulas in wrapping int32 (exact under the
// PackedWeights overflow bound). The portable tiles and the test-only tiles
// (kernels/test/, as they share the portable packing) call it with their output kind a compile-time constant, so each copy of a
// tile keeps only its own kind's code.
#ifndef QG_EPILOGUE_SCALAR_H
#define QG_EPILOGUE_SCALAR_H

#include "kernel.h"

/// Finishes element (m, n) from the raw dot product Σ_k W[n][k]·X[m][k]: adds
/// the bias and zero-point terms, then writes the output of `kind`.
static inline QG_SPECIALIZE void qg_epilogue_scalar(const qg_gemm_args *a, int64_t m, int64_t n,
                                                                     int32_t dot, const qg_output_kind kind) {
#pragma clang fp contract(off) // the reference's float operations, unfused
    uint32_t acc = (uint32_t)dot;
    if (a->bias) acc += (uint32_t)a->bias[n];
    const int32_t zp = a->x_zero_point + (a->row_zero_point ? a->row_zero_point[m] : 0);
    acc -= (uint32_t)zp * (uint32_t)a->row_sum[n];
    const int32_t v = (int32_t)acc;
    if (kind == QG_KIND_INT32) {
        ((int32_t *)a->y)[m * a->ldy + n] = v;
    } else if (kind == QG_KIND_FLOAT) {
        const float sx = a->row_scale ? a->row_scale[m] : a->x_scale;
        const float scale = sx * a->weight_scale[n];
        float f = (float)v * scale;
        if (a->out_bias) f = f + a->out_bias[n];
        ((float *)a->y)[m * a->ldy + n] = f;
    } else {
        const int32_t lo = a->clamp_lo - a->y_zero_point, hi = a->clamp_hi - a->y_zero_point;
        int32_t q;
        if (kind == QG_KIND_Q8_SINGLE) q = qg_requantize_single(v, a->multiplier[n], a->shift[n], lo, hi);
        else if (kind == QG_KIND_Q8_DOUBLE) q = qg_requantize_double(v, a->multiplier[n], a->shift[n], lo, hi);
        else q = qg_requantize_float(v, a->float_multiplier[n], lo, hi);
        // int8 and uint8 alike: the value's low byte.
        ((uint8_t *)a->y)[m * a->ldy + n] = (uint8_t)(q + a->y_zero_point);
    }
}

#endif
