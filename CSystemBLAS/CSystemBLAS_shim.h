// The part of OpenBLAS that swift-qgemm uses: cblas_sgemm / cblas_sgemv (the
// float reference and speed baseline) and OpenBLAS's own thread and build
// queries. The include path comes from pkg-config `openblas`.
#ifndef CSYSTEMBLAS_SHIM_H
#define CSYSTEMBLAS_SHIM_H

#include <cblas.h>

// Declared by OpenBLAS's cblas.h; repeated here so the module fails loudly at
// compile time if a different CBLAS without them is picked up.
void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);
char *openblas_get_corename(void);
char *openblas_get_config(void);

#endif
