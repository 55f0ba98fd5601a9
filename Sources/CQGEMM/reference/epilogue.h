// Internal: the scalar epilogue (epilogue.c): one output element from its raw
// dot product, as the reference computes it; the portable tiles call it.
#ifndef QG_EPILOGUE_H
#define QG_EPILOGUE_H

#include "qgemm.h"

/// Finishes one output element from the raw dot product Σ_k W[n][k]·X[m][k]:
/// adds the bias and zero-point terms, then writes the requested output type.
void qg_epilogue_scalar(const qg_gemm_args *args, int64_t m, int64_t n, int32_t dot);

#endif
