// What this process may use of the machine: CPUs and memory.
//
// A container or `taskset` gives a process fewer CPUs than are online and
// less memory than is installed. "All cores" (threads 0) means the CPUs the
// process may run on, so a call in a container limited to 2 of 64 CPUs runs
// on 2 threads instead of time-slicing 64 on them; the memory checks of the
// Swift layer and the tools refuse against the container's limit, not the
// machine's, so that an allocation the container would kill the process for
// is a clear error instead.
//
// Linux: the affinity mask (sched_getaffinity) and the cgroup limits of the
// process's cgroup and of each of its ancestors (v2 `cpu.max`, `memory.max`;
// v1 `cpu.cfs_quota_us` / `cpu.cfs_period_us`, `memory.limit_in_bytes`),
// found through /proc/self/cgroup. Elsewhere: the online CPUs, no limit.
// Neither ever changes a result: every output is bit-identical for every
// thread count.
#if defined(__linux__) && !defined(_GNU_SOURCE)
#define _GNU_SOURCE // CPU_ALLOC and sched_getaffinity
#endif
#include "qgemm.h"
#include "first_line.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#if defined(__linux__)
#include <sched.h>
#endif

int qg_cpu_online_count(void) {
    const long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (n < 1 << 20 ? (int)n : 1 << 20) : 1;
}

/// A whole decimal number (an optional minus sign, then digits, nothing
/// after); 0 when it is not one, so "max" reads as no number.
static int qg_limits_number(const char *text, long long *value) {
    if (!text[0]) return 0;
    char *end = NULL;
    const long long v = strtoll(text, &end, 10);
    if (end == text || *end) return 0;
    *value = v;
    return 1;
}

/// Limits one cgroup directory sets, folded into `cpus` (0: none yet) and
/// `memory` (0: none yet); `v2` picks the file names.
static void qg_limits_of_dir(const char *dir, int v2, int want_cpu, int want_memory, double *cpus, int64_t *memory) {
    char path[4352], line[256];
    long long quota = 0, period = 0, bytes = 0;
    if (want_cpu) {
        int found = 0;
        if (v2) {
            // "max 100000" (no limit) or "150000 100000": quota and period in µs.
            snprintf(path, sizeof path, "%s/cpu.max", dir);
            qg_read_first_line(path, line, sizeof line);
            char *space = strchr(line, ' ');
            if (space) {
                *space = 0;
                found = qg_limits_number(line, &quota) && qg_limits_number(space + 1, &period);
            }
        } else {
            // cpu.cfs_quota_us is −1 for no limit.
            snprintf(path, sizeof path, "%s/cpu.cfs_quota_us", dir);
            qg_read_first_line(path, line, sizeof line);
            found = qg_limits_number(line, &quota);
            snprintf(path, sizeof path, "%s/cpu.cfs_period_us", dir);
            qg_read_first_line(path, line, sizeof line);
            found = found && qg_limits_number(line, &period);
        }
        if (found && quota > 0 && period > 0) {
            const double c = (double)quota / (double)period;
            if (*cpus == 0 || c < *cpus) *cpus = c;
        }
    }
    if (want_memory) {
        snprintf(path, sizeof path, "%s/%s", dir, v2 ? "memory.max" : "memory.limit_in_bytes");
        qg_read_first_line(path, line, sizeof line);
        // v1 writes "no limit" as a number near 2^63 (rounded down to a page).
        if (qg_limits_number(line, &bytes) && bytes > 0 && bytes < (1LL << 62) && (*memory == 0 || bytes < *memory))
            *memory = bytes;
    }
}

/// The limits of cgroup `path` (as /proc/self/cgroup gives it) under the
/// hierarchy mounted at `base`, and of every ancestor up to `base`. Inside a
/// container without its own cgroup namespace the path names the host's
/// cgroup, which is not there; walking up then reaches the container's own
/// at `base`.
static void qg_limits_walk(const char *base, const char *path, int v2, int want_cpu, int want_memory, double *cpus,
                           int64_t *memory) {
    char dir[4096];
    const size_t base_length = strlen(base);
    // A process outside its cgroup namespace's root sees "/../…": that path
    // leaves the mount, and the limits above it are not the process's own.
    for (const char *p = strstr(path, ".."); p; p = strstr(p + 1, ".."))
        if ((p == path || p[-1] == '/') && (p[2] == 0 || p[2] == '/')) return;
    if (snprintf(dir, sizeof dir, "%s%s", base, path[0] == '/' ? path : "/") >= (int)sizeof dir) return;
    for (;;) {
        size_t length = strlen(dir);
        while (length > base_length && dir[length - 1] == '/') dir[--length] = 0;
        qg_limits_of_dir(dir, v2, want_cpu, want_memory, cpus, memory);
        if (length <= base_length) return;
        // The path starts with '/', so there is one after `base` until the
        // walk is back at `base`.
        char *slash = strrchr(dir + base_length, '/');
        if (!slash) return;
        *slash = 0;
    }
}

/// Whether `list` (comma-separated, as in /proc/self/cgroup) holds `name`.
static int qg_limits_has_controller(const char *list, const char *name) {
    const size_t n = strlen(name);
    for (const char *p = list; *p;) {
        const char *comma = strchr(p, ',');
        const size_t length = comma ? (size_t)(comma - p) : strlen(p);
        if (length == n && strncmp(p, name, n) == 0) return 1;
        if (!comma) break;
        p = comma + 1;
    }
    return 0;
}

void qg_cgroup_limits(const char *cgroup_file, const char *root, double *cpus, int64_t *memory_bytes) {
    // A NULL output is a limit not wanted: its files are not read.
    double no_cpus = 0;
    int64_t no_memory = 0;
    const int want_cpu = cpus != NULL, want_memory = memory_bytes != NULL;
    if (!cpus) cpus = &no_cpus;
    if (!memory_bytes) memory_bytes = &no_memory;
    *cpus = 0;
    *memory_bytes = 0;
    FILE *f = fopen(cgroup_file, "r");
    if (!f) return;
    char line[4096], base[4352];
    while (fgets(line, sizeof line, f)) {
        const size_t length = strcspn(line, "\n");
        if (!line[length] && !feof(f)) {
            // Longer than the buffer: its cut path could name another
            // cgroup, so the line is skipped, its rest read away.
            int c;
            while ((c = fgetc(f)) != EOF && c != '\n') {}
            continue;
        }
        line[length] = 0;
        // "hierarchy-ID:controller-list:cgroup-path"; v2 is "0::path".
        char *first = strchr(line, ':');
        char *second = first ? strchr(first + 1, ':') : NULL;
        if (!second) continue;
        *first = 0;
        *second = 0;
        const char *controllers = first + 1, *path = second + 1;
        if (strcmp(line, "0") == 0 && !controllers[0]) {
            // The v2 hierarchy: at the root (unified), or beside v1 (hybrid).
            qg_limits_walk(root, path, 1, want_cpu, want_memory, cpus, memory_bytes);
            snprintf(base, sizeof base, "%s/unified", root);
            qg_limits_walk(base, path, 1, want_cpu, want_memory, cpus, memory_bytes);
            continue;
        }
        const int cpu = want_cpu && qg_limits_has_controller(controllers, "cpu"),
                  memory = want_memory && qg_limits_has_controller(controllers, "memory");
        if (!cpu && !memory) continue;
        // v1 mounts a hierarchy at its controller list ("cpu,cpuacct"), often
        // with a link named after each controller; either is enough.
        snprintf(base, sizeof base, "%s/%s", root, controllers);
        qg_limits_walk(base, path, 0, cpu, memory, cpus, memory_bytes);
        if (cpu && strcmp(controllers, "cpu") != 0) {
            snprintf(base, sizeof base, "%s/cpu", root);
            qg_limits_walk(base, path, 0, 1, 0, cpus, memory_bytes);
        }
        if (memory && strcmp(controllers, "memory") != 0) {
            snprintf(base, sizeof base, "%s/memory", root);
            qg_limits_walk(base, path, 0, 0, 1, cpus, memory_bytes);
        }
    }
    fclose(f);
}

int qg_cpus_within_quota(int cpus, double quota) {
    if (cpus < 1) cpus = 1;
    if (!(quota > 0) || quota >= cpus) return cpus;
    // A quota of 1.5 CPUs keeps two busy part of the time: round up.
    const int whole = (int)quota + ((double)(int)quota < quota);
    return whole < 1 ? 1 : whole;
}

static int qg_usable_cpus;
static pthread_once_t qg_usable_cpus_once = PTHREAD_ONCE_INIT;

static void qg_read_usable_cpus(void) {
    int n = qg_cpu_online_count();
#if defined(__linux__)
    // The mask may name more CPUs than a cpu_set_t holds: grow until it fits.
    for (int size = 1024; size <= 1 << 20; size *= 2) {
        cpu_set_t *set = CPU_ALLOC(size);
        if (!set) break;
        const size_t bytes = CPU_ALLOC_SIZE(size);
        CPU_ZERO_S(bytes, set);
        if (sched_getaffinity(0, bytes, set) == 0) {
            const int in_mask = CPU_COUNT_S(bytes, set);
            CPU_FREE(set);
            if (in_mask > 0 && in_mask < n) n = in_mask;
            break;
        }
        CPU_FREE(set);
    }
    double quota = 0;
    qg_cgroup_limits("/proc/self/cgroup", "/sys/fs/cgroup", &quota, NULL);
    n = qg_cpus_within_quota(n, quota);
#endif
    qg_usable_cpus = n;
}

int qg_cpu_count(void) {
    pthread_once(&qg_usable_cpus_once, qg_read_usable_cpus);
    return qg_usable_cpus;
}

// Read once: the array forms and the scratch check it before allocating,
// and reading the cgroup's files took about 30 µs, more than a small call.
static int64_t qg_memory_limit;
static pthread_once_t qg_memory_limit_once = PTHREAD_ONCE_INIT;

static void qg_read_memory_limit(void) {
#if defined(__linux__)
    qg_cgroup_limits("/proc/self/cgroup", "/sys/fs/cgroup", NULL, &qg_memory_limit);
#endif
}

int64_t qg_memory_limit_bytes(void) {
    pthread_once(&qg_memory_limit_once, qg_read_memory_limit);
    return qg_memory_limit;
}
