// The AVX-512 VNNI path (placeholder registration until the kernel lands).
#include "driver.h"

#if defined(__x86_64__)
static int qg_vnni_supported(void) { return 0; }

const qg_kernel qg_kernel_avx512vnni = {
    .name = "none",
    .path = QG_PATH_AVX512VNNI,
    .mr = 1,
    .is_supported = qg_vnni_supported,
};
#endif
