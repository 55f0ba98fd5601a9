// qg_gemm_reference: the scalar reference that defines every result.
//
// Kept slow and obvious on purpose: one output element at a time, int64
// arithmetic, weights read through the packed layout's index map. Never
// optimise this file; the fast paths are tested against it.
#include "qgemm.h"

#pragma clang fp contract(off)

static int64_t qg_ref_x(const qg_gemm_args *a, int64_t m, int64_t k) {
    if (a->x_unsigned) return ((const uint8_t *)a->x)[m * a->ldx + k];
    return ((const int8_t *)a->x)[m * a->ldx + k];
}

void qg_gemm_reference(const qg_gemm_args *a) {
    for (int64_t m = 0; m < a->m; m++) {
        for (int64_t n = 0; n < a->n; n++) {
            int64_t acc = 0;
            for (int64_t k = 0; k < a->k; k++)
                acc += (int64_t)a->w[qg_packed_index(n, k, a->kp)] * qg_ref_x(a, m, k);
            if (a->bias) acc += a->bias[n];
            acc -= (int64_t)a->x_zero_point * a->row_sum[n];
            if (a->row_zero_point) acc -= (int64_t)a->row_zero_point[m] * a->row_sum[n];
            const int32_t acc32 = (int32_t)acc; // in range: PackedWeights checked the bound

            switch (a->out_type) {
            case QG_OUT_INT32:
                ((int32_t *)a->y)[m * a->ldy + n] = acc32;
                break;
            case QG_OUT_FLOAT: {
                const float sx = a->row_scale ? a->row_scale[m] : a->x_scale;
                const float scale = sx * a->weight_scale[n];
                float v = (float)acc32 * scale;
                if (a->out_bias) v = v + a->out_bias[n];
                ((float *)a->y)[m * a->ldy + n] = v;
                break;
            }
            case QG_OUT_INT8:
            case QG_OUT_UINT8: {
                const int32_t lo = a->clamp_lo - a->y_zero_point;
                const int32_t hi = a->clamp_hi - a->y_zero_point;
                int32_t q;
                if (a->rounding == QG_ROUND_SINGLE)
                    q = qg_requantize_single(acc32, a->multiplier[n], a->shift[n], lo, hi);
                else if (a->rounding == QG_ROUND_DOUBLE)
                    q = qg_requantize_double(acc32, a->multiplier[n], a->shift[n], lo, hi);
                else
                    q = qg_requantize_float(acc32, a->float_multiplier[n], lo, hi);
                q += a->y_zero_point;
                if (a->out_type == QG_OUT_INT8)
                    ((int8_t *)a->y)[m * a->ldy + n] = (int8_t)q;
                else
                    ((uint8_t *)a->y)[m * a->ldy + n] = (uint8_t)q;
                break;
            }
            }
        }
    }
}
