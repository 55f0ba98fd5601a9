// The rule of `qgemm bench --cold` for the two oneDNN harnesses (dnnl_gemm.c,
// dnnl_matmul.c), as cache_rule.py states it for the Python ones: before every
// timed run, read a buffer of twice the caches the run's most threads N may
// use (an L2 each, an L3 for each of as many L3s as threads; at least 64 MiB),
// not timed. The reads run on the timed call's THREADS OpenMP threads, the
// runtime oneDNN's workers come from, so each worker's own L2 is emptied too.
// Also: the harnesses' input lines, "M K N THREADS MIN_SECONDS" with an
// optional "cold N" after them. Static functions only.
#ifndef CACHE_EVICTOR_H
#define CACHE_EVICTOR_H

#include <glob.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/// The first word of the sysfs file DIR/NAME (at most 63 characters) into
/// `word`; 0 when it cannot be read.
static int evictor_sysfs_word(const char *dir, const char *name, char word[64]) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    const int read = fscanf(f, "%63s", word) == 1;
    fclose(f);
    return read;
}

/// Bytes of cpu0's level-`level` data or unified cache, from Linux sysfs (as
/// qgemm reads them); 0 where sysfs does not say.
static long long evictor_cache_bytes(int level) {
    glob_t g;
    long long bytes = 0;
    if (glob("/sys/devices/system/cpu/cpu0/cache/index*", 0, NULL, &g) != 0) return 0;
    for (size_t i = 0; i < g.gl_pathc && !bytes; i++) {
        char word[64];
        if (!evictor_sysfs_word(g.gl_pathv[i], "level", word) || atoi(word) != level) continue;
        if (evictor_sysfs_word(g.gl_pathv[i], "type", word) && strcmp(word, "Instruction") == 0) continue;
        if (!evictor_sysfs_word(g.gl_pathv[i], "size", word)) continue;
        char *unit;
        const long long size = strtoll(word, &unit, 10);
        bytes = *unit == 'K' ? size << 10 : *unit == 'M' ? size << 20 : *unit == 'G' ? size << 30 : size;
    }
    globfree(&g);
    return bytes;
}

/// The distinct L3 caches of the CPUs (sysfs shared_cpu_list), as qgemm
/// bench counts them; 1 where sysfs does not say.
static int evictor_l3_count(void) {
    glob_t g;
    if (glob("/sys/devices/system/cpu/cpu[0-9]*/cache/index*", 0, NULL, &g) != 0) return 1;
    static char seen[256][64];
    int count = 0;
    for (size_t i = 0; i < g.gl_pathc && count < 256; i++) {
        char word[64];
        if (!evictor_sysfs_word(g.gl_pathv[i], "level", word) || atoi(word) != 3) continue;
        if (!evictor_sysfs_word(g.gl_pathv[i], "shared_cpu_list", word)) continue;
        int known = 0;
        for (int j = 0; j < count && !known; j++) known = strcmp(seen[j], word) == 0;
        if (!known) strcpy(seen[count++], word);
    }
    globfree(&g);
    return count > 0 ? count : 1;
}

typedef struct cache_evictor {
    uint64_t *words;
    long long count;
} cache_evictor;

/// The buffer for a run of at most `threads` threads.
static cache_evictor evictor_make(int threads) {
    const long long t = threads > 0 ? threads : 1, l3s = evictor_l3_count();
    const long long caches = evictor_cache_bytes(2) * t + evictor_cache_bytes(3) * (t < l3s ? t : l3s);
    const long long bytes = 2 * caches > (64ll << 20) ? 2 * caches : 64ll << 20;
    cache_evictor e = {malloc((size_t)bytes), bytes / 8};
    if (!e.words) {
        fprintf(stderr, "cache_evictor: cannot allocate %lld bytes\n", bytes);
        exit(1);
    }
    for (long long i = 0; i < e.count; i++) e.words[i] = 0xA5A5A5A5A5A5A5A5ull ^ (uint64_t)i;
    return e;
}

/// Reads the whole buffer on `threads` OpenMP threads.
static void evictor_run(const cache_evictor *e, int threads) {
    uint64_t sum = 0;
#pragma omp parallel for num_threads(threads) reduction(^ : sum) schedule(static)
    for (long long i = 0; i < e->count; i++) sum ^= e->words[i];
    __asm__ volatile("" : : "r"(sum)); // the reads are the point: keep them
}

static void evictor_free(cache_evictor *e) {
    free(e->words);
    e->words = NULL;
}

/// One input line, "M K N THREADS MIN_SECONDS" with an optional "cold N";
/// *cold_threads is N, or 0 for a warm line. Returns 0 at the end of the
/// input; exits on a malformed line.
static int read_case(long long *m, long long *k, long long *n, int *threads, double *min_seconds,
                     int *cold_threads) {
    char line[256], word[16] = "", rest[2] = "";
    while (fgets(line, sizeof line, stdin)) {
        *cold_threads = 0;
        const int fields = sscanf(line, "%lld %lld %lld %d %lf %15s %d %1s", m, k, n, threads, min_seconds, word,
                                  cold_threads, rest);
        if (fields == EOF) continue; // a blank line
        if (!(fields == 5 || (fields == 7 && strcmp(word, "cold") == 0 && *cold_threads > 0))) {
            fprintf(stderr, "expected \"M K N THREADS MIN_SECONDS [cold N]\", got: %s", line);
            exit(2);
        }
        return 1;
    }
    return 0;
}

#endif
