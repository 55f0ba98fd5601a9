// Internal: the shared scalar peak probe (peak.c) that the reference and the
// test-only paths name.
// A SIMD path's probe lives in its own folder, declared where its descriptor
// names it; each runs only when its kernel is supported (qg_peak_probe_int8).
#ifndef QG_PROBES_H
#define QG_PROBES_H

#include <stdint.h>

/// The scalar multiply-add probe of the test-only paths (and of the reference).
int64_t qg_peak_scalar(int64_t iterations);
/// What qg_peak_scalar runs, for the descriptors that name it.
#define QG_SCALAR_PEAK_INSTRUCTION "scalar int32 multiply-add"

#endif
