// For the two oneDNN harnesses (dnnl_gemm.c, dnnl_matmul.c): their input
// lines, "M K N THREADS MIN_SECONDS" with an optional "cold BYTES CHUNK", and
// the eviction "cold" asks for: before every timed run, a read of BYTES bytes
// in chunks of CHUNK bytes, each chunk twice in a row, as `qgemm bench --cold`
// reads (compare.py passes on its JSON's machine.evict_bytes and
// evict_chunk_bytes; cold_lines.py says why twice), not timed. The reads run on the timed call's THREADS
// OpenMP threads, the runtime oneDNN's workers come from, so each worker's
// own L2 is emptied too. Static functions only.
#ifndef CACHE_EVICTOR_H
#define CACHE_EVICTOR_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct cache_evictor {
    uint64_t *words;
    long long count, chunk; // words in all, and per chunk
} cache_evictor;

/// A buffer of `bytes` bytes read in chunks of `chunk`, every page written
/// once (so the reads touch memory, not the zero page).
static cache_evictor evictor_make(long long bytes, long long chunk) {
    cache_evictor e = {malloc((size_t)bytes), bytes / 8, chunk / 8 > 0 ? chunk / 8 : 1};
    if (!e.words) {
        fprintf(stderr, "cache_evictor: cannot allocate %lld bytes\n", bytes);
        exit(1);
    }
    for (long long i = 0; i < e.count; i++) e.words[i] = 0xA5A5A5A5A5A5A5A5ull ^ (uint64_t)i;
    return e;
}

/// Reads the whole buffer on `threads` OpenMP threads, chunk by chunk, each
/// chunk twice.
static void evictor_run(const cache_evictor *e, int threads) {
    for (long long start = 0; start < e->count; start += e->chunk) {
        const long long end = start + e->chunk < e->count ? start + e->chunk : e->count;
        for (int pass = 0; pass < 2; pass++) {
            uint64_t sum = 0;
#pragma omp parallel for num_threads(threads) reduction(^ : sum) schedule(static)
            for (long long i = start; i < end; i++) sum ^= e->words[i];
            __asm__ volatile("" : : "r"(sum)); // the reads are the point: keep them
        }
    }
}

static void evictor_free(cache_evictor *e) {
    free(e->words);
    e->words = NULL;
}

/// One input line, "M K N THREADS MIN_SECONDS" with an optional "cold
/// BYTES CHUNK"; *cold_bytes and *cold_chunk are BYTES and CHUNK, or 0 for a
/// warm line. Returns 0 at the end of the input; exits on a malformed line.
static int read_case(long long *m, long long *k, long long *n, int *threads, double *min_seconds,
                     long long *cold_bytes, long long *cold_chunk) {
    char line[256], word[16] = "", rest[2] = "";
    while (fgets(line, sizeof line, stdin)) {
        *cold_bytes = *cold_chunk = 0;
        const int fields = sscanf(line, "%lld %lld %lld %d %lf %15s %lld %lld %1s", m, k, n, threads, min_seconds,
                                  word, cold_bytes, cold_chunk, rest);
        if (fields == EOF) continue; // a blank line
        if (!(fields == 5 || (fields == 8 && strcmp(word, "cold") == 0 && *cold_bytes > 0 && *cold_chunk > 0 &&
                              *cold_chunk <= *cold_bytes))) {
            fprintf(stderr, "expected \"M K N THREADS MIN_SECONDS [cold BYTES CHUNK]\" (0 < CHUNK <= BYTES), got: %s", line);
            exit(2);
        }
        return 1;
    }
    return 0;
}

#endif
