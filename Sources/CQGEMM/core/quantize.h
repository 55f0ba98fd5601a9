// Internal: the activation quantizer's implementations by instruction set.
// qg_quantize_rows and qg_row_min_max take the widest one the CPU has; the
// kernel tester runs every one the CPU has against its own scalar reference,
// so the narrower ones stay tested on CPUs that never pick them. One level
// serves both: the ranges' AVX-512 copy needs only AVX-512 F, but waits for
// BW and VL with the quantizer (every AVX-512 CPU that runs this has them;
// the ranges' bits are the same from every copy).
#ifndef QG_QUANTIZE_H
#define QG_QUANTIZE_H

#include <stdint.h>

typedef enum qg_quantizer {
    QG_QUANTIZER_SCALAR = 0, // plain C: every CPU
    QG_QUANTIZER_AVX2 = 1,   // 8 lanes
    QG_QUANTIZER_AVX512 = 2, // 16 lanes, masked tails (AVX-512 F, BW and VL)
    QG_QUANTIZER_COUNT = 3,
} qg_quantizer;

/// 1 when this CPU can run `level`.
int qg_quantizer_supported(qg_quantizer level);
/// The name the kernel tester prints ("avx512").
const char *qg_quantizer_name(qg_quantizer level);
/// The widest level this CPU has (qg_cpu_get_features reads the CPU once).
qg_quantizer qg_widest_quantizer(void);
/// The scale of `width` over `steps` levels from its float quotient, as
/// QuantizationParameters.coveringScale gives it (dynamic_quantize.c): the
/// quotient as divided; where it is below FLT_MIN and `steps` of it fall
/// short of `width`, the next float up; FLT_MIN where even that does not
/// cover (flush-to-zero or denormals-are-zero on).
float qg_covering_scale(float quotient, double width, double steps);
/// qg_quantize_rows on `level`, which must be supported.
void qg_quantize_rows_with(qg_quantizer level, const float *x, int64_t rows, int64_t k, int64_t ldx, const float *scale,
                           const int32_t *zero, int x_unsigned, uint8_t *out, int64_t ldo);
/// qg_row_min_max on `level`, which must be supported.
int64_t qg_row_min_max_with(qg_quantizer level, const float *x, int64_t rows, int64_t k, int64_t ldx, float *mins,
                            float *maxs);

#endif
