// The scalar epilogue: the per-element finish of every non-reference path that
// has no vector epilogue for a case. Same formulas as qg_gemm_reference, in
// wrapping int32 (exact under the PackedWeights overflow bound).
#include "epilogue.h"

#pragma clang fp contract(off)

void qg_epilogue_scalar(const qg_gemm_args *a, int64_t m, int64_t n, int32_t dot) {
    uint32_t acc = (uint32_t)dot;
    if (a->bias) acc += (uint32_t)a->bias[n];
    int32_t zp = a->x_zero_point + (a->row_zero_point ? a->row_zero_point[m] : 0);
    acc -= (uint32_t)zp * (uint32_t)a->row_sum[n];
    const int32_t v = (int32_t)acc;
    switch (a->out_type) {
    case QG_OUT_INT32:
        ((int32_t *)a->y)[m * a->ldy + n] = v;
        return;
    case QG_OUT_FLOAT: {
        const float sx = a->row_scale ? a->row_scale[m] : a->x_scale;
        const float scale = sx * a->weight_scale[n];
        float f = (float)v * scale;
        if (a->out_bias) f = f + a->out_bias[n];
        ((float *)a->y)[m * a->ldy + n] = f;
        return;
    }
    case QG_OUT_INT8:
    case QG_OUT_UINT8: {
        const int32_t lo = a->clamp_lo - a->y_zero_point, hi = a->clamp_hi - a->y_zero_point;
        int32_t q;
        if (a->rounding == QG_ROUND_SINGLE) q = qg_requantize_single(v, a->multiplier[n], a->shift[n], lo, hi);
        else if (a->rounding == QG_ROUND_DOUBLE) q = qg_requantize_double(v, a->multiplier[n], a->shift[n], lo, hi);
        else q = qg_requantize_float(v, a->float_multiplier[n], lo, hi);
        q += a->y_zero_point;
        if (a->out_type == QG_OUT_INT8) ((int8_t *)a->y)[m * a->ldy + n] = (int8_t)q;
        else ((uint8_t *)a->y)[m * a->ldy + n] = (uint8_t)q;
        return;
    }
    }
}
