// A neighbour for `scripts/bench-peers --neighbour`: a process on a CPU the
// timed libraries do not use, loading what that CPU shares with theirs, until
// it is killed. It prints "ready" when its load starts. The question it answers: does qgemm lose more speed than the
// peers do when another process shares the caches and memory?
//
//   neighbour stream BYTES   adds 1 to every word of a BYTES buffer, over and
//                            over: memory bandwidth, and the shared cache
//                            evicted (BYTES several times the last level)
//   neighbour reads BYTES    dependent reads in a random cycle through a BYTES
//                            buffer, one per 64-byte line: the lines stay in
//                            whichever cache holds BYTES (3/4 of the L3, or of
//                            the L2 where two logical CPUs share a core)
//   neighbour fma            256-bit multiply-adds on registers, no memory: a
//                            core's ports where logical CPUs share one, and the
//                            clock where a busy package lowers it
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#if defined(__linux__)
#include <sys/prctl.h>
#endif

static volatile uint64_t sink;  // keeps the loops' results alive

// Says the buffers are filled and the load is about to start, so that the
// caller's first timed call already runs beside it.
static void ready(void) {
    puts("ready");
    fflush(stdout);
}

static void stream(size_t bytes) {
    const size_t n = bytes / sizeof(uint64_t);
    uint64_t *a = malloc(n * sizeof *a);
    if (!a) exit(2);
    for (size_t i = 0; i < n; i++) a[i] = i;
    ready();
    for (;;) {
        for (size_t i = 0; i < n; i++) a[i] += 1;
        sink = a[n / 2];
    }
}

// xorshift64: a permutation that does not depend on the C library's rand().
static uint64_t next(uint64_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void reads(size_t bytes) {
    const size_t lines = bytes / 64;
    if (lines < 2) exit(2);
    uint64_t *a = aligned_alloc(64, lines * 64);
    uint32_t *order = malloc(lines * sizeof *order);
    if (!a || !order) exit(2);
    for (size_t i = 0; i < lines; i++) order[i] = (uint32_t)i;
    uint64_t s = 0x9E3779B97F4A7C15u;
    for (size_t i = lines - 1; i > 0; i--) {
        const size_t j = next(&s) % (i + 1);
        const uint32_t t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    // Each line holds the index of the next one in the cycle, so every read
    // waits on the one before: the prefetchers cannot run ahead.
    for (size_t i = 0; i < lines; i++) a[(size_t)order[i] * 8] = order[(i + 1) % lines];
    uint64_t at = order[0];
    ready();
    for (;;) {
        for (size_t i = 0; i < lines; i++) at = a[at * 8];
        sink = at;
    }
}

static void multiply_adds_plain(void) {
    float a[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    ready();
    for (;;) {
        for (int r = 0; r < 1000000; r++)
            for (int i = 0; i < 8; i++) a[i] = a[i] * 0.999999f + 1e-7f;
        sink = (uint64_t)a[0];
    }
}

#if defined(__x86_64__)
#include <immintrin.h>
#define STEP(v) v = _mm256_fmadd_ps(v, m, c)
__attribute__((target("avx2,fma"))) static void multiply_adds_avx2(void) {
    const __m256 m = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
    __m256 a0 = _mm256_set1_ps(1), a1 = _mm256_set1_ps(2), a2 = _mm256_set1_ps(3), a3 = _mm256_set1_ps(4);
    __m256 a4 = _mm256_set1_ps(5), a5 = _mm256_set1_ps(6), a6 = _mm256_set1_ps(7), a7 = _mm256_set1_ps(8);
    ready();
    for (;;) {
        // Eight independent chains: enough to keep both FMA ports busy.
        for (int r = 0; r < 1000000; r++) {
            STEP(a0), STEP(a1), STEP(a2), STEP(a3), STEP(a4), STEP(a5), STEP(a6), STEP(a7);
        }
        const __m256 all = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)),
                                         _mm256_add_ps(_mm256_add_ps(a4, a5), _mm256_add_ps(a6, a7)));
        sink = (uint64_t)_mm256_cvtss_f32(all);
    }
}
#endif

static void multiply_adds(void) {
#if defined(__x86_64__)
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) multiply_adds_avx2();
#endif
    multiply_adds_plain();
}

int main(int argc, char **argv) {
#if defined(__linux__)
    // Stopped with its caller, however the caller ends: never left loading a
    // CPU beside whatever runs next.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    // A caller that died before the line above is no longer our parent.
    const char *parent = getenv("NEIGHBOUR_PARENT");
    if (parent && getppid() != (pid_t)strtol(parent, NULL, 10)) return 2;
#endif
    if (argc == 3 && !strcmp(argv[1], "stream")) stream(strtoull(argv[2], NULL, 10));
    if (argc == 3 && !strcmp(argv[1], "reads")) reads(strtoull(argv[2], NULL, 10));
    if (argc == 2 && !strcmp(argv[1], "fma")) multiply_adds();
    fprintf(stderr, "usage: neighbour stream BYTES | reads BYTES | fma\n");
    return 2;
}
