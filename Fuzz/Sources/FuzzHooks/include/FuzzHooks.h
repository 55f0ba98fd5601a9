// libFuzzer's own byte-level mutator, which a custom mutator may call to mix
// plain bit flips and splices with its structure-aware edits.
#ifndef FUZZ_HOOKS_H
#define FUZZ_HOOKS_H
#include <stddef.h>
#include <stdint.h>

size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t max_size);

// The C core's switches between kernel variants a CPU would otherwise fix
// (Sources/CQGEMM/core/kernel.h, where the kernel tester sets them): 0 or 1
// forces a variant for the calls that follow, -1 gives the CPU's answer back.
// Every variant gives the same bits, so the differential targets may draw
// them. Linked from the C core the targets already carry.
void qg_cpu_force_line_crossing_stores(int cheap);
void qg_cpu_force_one_stream_decode(int one);
void qg_cpu_force_widen_bytes_by_shuffles(int shuffles);
void qg_cpu_force_avx2_widens_weights_ahead(int ahead);
void qg_cpu_force_two_row_stream_min_bytes(int64_t bytes);
void qg_cpu_force_w4_ymm_three_row_passes(int three);
// Values > 0 per part of the quantization of rows (split over threads),
// 0 the core's rule.
void qg_force_row_part_values(int64_t values);

#endif
