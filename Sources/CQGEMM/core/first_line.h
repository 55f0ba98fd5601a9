// Internal: the first line of a small system file (sysfs, cgroupfs), for
// cpu.c's cache sizes and limits.c's limits.
#ifndef QG_FIRST_LINE_H
#define QG_FIRST_LINE_H

#include <stdio.h>
#include <string.h>

/// The first line of the file at `path` without its line break, or "" when
/// it cannot be read (never more than `size` − 1 bytes).
static inline void qg_read_first_line(const char *path, char *out, size_t size) {
    out[0] = 0;
    FILE *f = fopen(path, "r");
    if (!f) return;
    if (!fgets(out, (int)size, f)) out[0] = 0;
    fclose(f);
    out[strcspn(out, "\n")] = 0;
}

#endif
