// Transparent huge pages for packed weights.
//
// A decode step (M = 1 or 2) streams every weight once from memory, four
// panels at a time. On 4 KiB pages each stream changes page every 4 KiB and
// takes a TLB miss there. Backed by 2 MiB pages the same streams ran up to
// 1.25× faster on Zen 4 (README, `qgemm bench`). Linux gives huge pages to
// anonymous memory that asks for them (madvise) when
// /sys/kernel/mm/transparent_hugepage/enabled is "madvise", as many
// distributions set it; "always" needs no asking and "never" ignores it.
// Only the placement of the bytes changes, never a result.
#include "qgemm.h"

#if defined(__linux__)
#include <stdint.h>
#include <sys/mman.h>
#endif

void qg_advise_huge_pages(void *p, int64_t bytes) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    if (!p || bytes < QG_HUGE_PAGE_BYTES) return;
    // Only whole 2 MiB pages inside the buffer can be huge; the advice covers
    // them and nothing outside the buffer.
    const uintptr_t start = ((uintptr_t)p + QG_HUGE_PAGE_BYTES - 1) & ~(uintptr_t)(QG_HUGE_PAGE_BYTES - 1);
    const uintptr_t end = ((uintptr_t)p + (uintptr_t)bytes) & ~(uintptr_t)(QG_HUGE_PAGE_BYTES - 1);
    if (end > start) (void)madvise((void *)start, end - start, MADV_HUGEPAGE); // advice: a refusal changes nothing
#else
    (void)p;
    (void)bytes;
#endif
}
