// libFuzzer's own byte-level mutator, which a custom mutator may call to mix
// plain bit flips and splices with its structure-aware edits.
#ifndef FUZZ_HOOKS_H
#define FUZZ_HOOKS_H
#include <stddef.h>
#include <stdint.h>

size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t max_size);

#endif
