// The kernel paths, worst to best: one line each. registry.c includes this
// list twice (X-macro): once to declare each descriptor, once to build the
// table. Adding a path = one folder kernels/<path>/ defining its qg_kernel
// + one line here (KERNELS.md). The default path is the last line that the
// CPU supports and is not test-only.
QG_KERNEL(qg_kernel_test3x5) // test-only: odd tile, crosses panel boundaries
QG_KERNEL(qg_kernel_test5x6) // test-only: odd tile with a few-rows tile
QG_KERNEL(qg_kernel_test4x8k8) // test-only: its own weight layout (8-channel panels, K groups of 8)
QG_KERNEL(qg_kernel_portable)
#if defined(__x86_64__)
QG_KERNEL(qg_kernel_avx2)
QG_KERNEL(qg_kernel_avxvnni)
QG_KERNEL(qg_kernel_avx512vnni)
QG_KERNEL(qg_kernel_amxint8)
#endif
#if defined(__aarch64__)
QG_KERNEL(qg_kernel_neondot)
QG_KERNEL(qg_kernel_neoni8mm) // its own weight layout (8-channel panels, K groups of 8)
#endif
