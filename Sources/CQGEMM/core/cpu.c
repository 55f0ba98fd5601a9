// CPU feature detection, done once and cached.
//
// x86-64: CPUID leaves 1 and 7 plus XGETBV, because a CPU may have AVX-512
// while the OS does not save the zmm/opmask state (then it cannot be used);
// on Darwin, which turns that state on at a thread's first use, a sysctl.
// arm64: Linux reports the hardware-capability bits in the auxiliary vector
// (getauxval), Darwin in sysctls named after the Arm features; nothing
// Linux-only is compiled on Darwin.
#include "qgemm.h"
#include "kernel.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(_M_X64)
#include <cpuid.h>
#if defined(__APPLE__)
#include <stdlib.h>
#include <sys/sysctl.h>

/// Whether Darwin lets this process use AVX-512. Its kernel turns on a
/// thread's zmm and opmask state at the thread's first AVX-512 instruction,
/// so XCR0 does not show it beforehand; the sysctl says whether the CPU has
/// it. Kernels before Darwin 21.3 (macOS 12.2) could lose the opmask
/// registers across a signal handler, so AVX-512 is used from 21.3 on.
static int qg_darwin_avx512_usable(void) {
    int has = 0;
    size_t size = sizeof has;
    if (sysctlbyname("hw.optional.avx512f", &has, &size, NULL, 0) != 0 || has == 0) return 0;
    char release[32] = {0};
    size = sizeof release - 1;
    if (sysctlbyname("kern.osrelease", release, &size, NULL, 0) != 0) return 0;
    char *end = NULL;
    const long major = strtol(release, &end, 10);
    const long minor = end && *end == '.' ? strtol(end + 1, NULL, 10) : 0;
    return major > 21 || (major == 21 && minor >= 3);
}
#endif

static uint64_t qg_xgetbv0(void) {
    uint32_t eax, edx;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return ((uint64_t)edx << 32) | eax;
}

static void qg_detect(qg_cpu_features *f) {
    unsigned a, b, c, d;
    unsigned max_leaf = __get_cpuid_max(0, NULL);
    if (max_leaf < 1) return;
    __cpuid(1, a, b, c, d);
    f->sse41 = (c >> 19) & 1;
    int osxsave = (c >> 27) & 1;
    int avx_bit = (c >> 28) & 1;
    int fma_bit = (c >> 12) & 1;
    uint64_t xcr0 = osxsave ? qg_xgetbv0() : 0;
    int ymm_ok = (xcr0 & 0x6) == 0x6;           // SSE and AVX state
#if defined(__APPLE__)
    int zmm_ok = ymm_ok && qg_darwin_avx512_usable();
#else
    int zmm_ok = ymm_ok && (xcr0 & 0xE0) == 0xE0; // opmask, ZMM_Hi256, Hi16_ZMM
#endif
    f->avx = avx_bit && ymm_ok;
    f->fma = fma_bit && f->avx;
    f->f16c = ((c >> 29) & 1) && f->avx;
    if (max_leaf >= 7) {
        __cpuid_count(7, 0, a, b, c, d);
        f->avx2 = ((b >> 5) & 1) && f->avx;
        f->avx512f = ((b >> 16) & 1) && zmm_ok;
        f->avx512bw = ((b >> 30) & 1) && f->avx512f;
        f->avx512vl = ((b >> 31) & 1) && f->avx512f;
        f->avx512vnni = ((c >> 11) & 1) && f->avx512f;
        f->gfni = (c >> 8) & 1;
        unsigned eax1 = 0, ebx1, ecx1, edx1;
        if (a >= 1) __cpuid_count(7, 1, eax1, ebx1, ecx1, edx1);
        f->avxvnni = ((eax1 >> 4) & 1) && f->avx2;
    }
    unsigned ext = __get_cpuid_max(0x80000000, NULL);
    if (ext >= 0x80000004) {
        unsigned regs[12];
        for (unsigned i = 0; i < 3; i++)
            __cpuid(0x80000002 + i, regs[4 * i], regs[4 * i + 1], regs[4 * i + 2], regs[4 * i + 3]);
        memcpy(f->brand, regs, 48);
        f->brand[48] = 0;
    }
}

#elif defined(__aarch64__) && defined(__APPLE__)
#include <TargetConditionals.h>
#include <errno.h>
#include <sys/sysctl.h>

/// 1 when the sysctl named exists and is non-zero (Apple names each Arm feature).
static int qg_sysctl_flag(const char *name) {
    int value = 0;
    size_t size = sizeof value;
    return sysctlbyname(name, &value, &size, NULL, 0) == 0 && value != 0;
}

static void qg_detect(qg_cpu_features *f) {
    f->neon = 1; // Advanced SIMD is mandatory on arm64.
    // The FEAT_ names came with macOS 12 and iOS 15. Every Apple silicon Mac
    // has the dot product, so on macOS a missing name (macOS 11) is taken as
    // present; older iPhone and iPad chips lack it, so elsewhere it is not.
    int dotprod = 0;
    size_t dotprod_size = sizeof dotprod;
    const int asked = sysctlbyname("hw.optional.arm.FEAT_DotProd", &dotprod, &dotprod_size, NULL, 0) == 0;
#if TARGET_OS_OSX
    f->dotprod = asked ? dotprod != 0 : errno == ENOENT;
#else
    f->dotprod = asked && dotprod != 0;
#endif
    f->i8mm = qg_sysctl_flag("hw.optional.arm.FEAT_I8MM");
    size_t size = sizeof f->brand - 1;
    if (sysctlbyname("machdep.cpu.brand_string", f->brand, &size, NULL, 0) != 0) f->brand[0] = 0;
}

#elif defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1 << 20)
#endif
#ifndef HWCAP2_I8MM
#define HWCAP2_I8MM (1 << 13)
#endif

static void qg_detect(qg_cpu_features *f) {
    unsigned long hw = getauxval(AT_HWCAP), hw2 = getauxval(AT_HWCAP2);
    f->neon = 1; // Advanced SIMD is mandatory on arm64.
    f->dotprod = (hw & HWCAP_ASIMDDP) != 0;
    f->i8mm = (hw2 & HWCAP2_I8MM) != 0;
}

#elif defined(__aarch64__)
// Other arm64 systems: Advanced SIMD only, until their feature query is added.
static void qg_detect(qg_cpu_features *f) { f->neon = 1; }

#else
static void qg_detect(qg_cpu_features *f) { (void)f; }
#endif

static qg_cpu_features qg_features;
static pthread_once_t qg_features_once = PTHREAD_ONCE_INIT;

static void qg_features_init(void) {
    memset(&qg_features, 0, sizeof qg_features);
    qg_detect(&qg_features);
    // Trim trailing blanks some CPUs pad the brand string with.
    size_t len = strlen(qg_features.brand);
    while (len > 0 && qg_features.brand[len - 1] == ' ') qg_features.brand[--len] = 0;
}

const qg_cpu_features *qg_cpu_get_features(void) {
    pthread_once(&qg_features_once, qg_features_init);
    return &qg_features;
}

// MARK: - Choices measured on one CPU family

static int qg_amd_family_1a, qg_amd_zen1, qg_intel, qg_intel_shifts_on_port0;
static pthread_once_t qg_family_once = PTHREAD_ONCE_INIT;
static _Atomic int qg_crossing_forced = -1, qg_one_stream_forced = -1, qg_ymm_passes_forced = -1,
                   qg_shuffles_forced = -1, qg_widen_ahead_forced = -1;
static _Atomic int64_t qg_two_row_min_forced = -1;

/// Whether this is an AMD CPU of family 1Ah (Zen 5), found once: the choices
/// below were measured there (an EPYC, model 2) and nowhere else; whether
/// it is a Zen 1 or Zen+ (family 17h, models below 30h: Zen 2 starts at
/// 31h); whether it is an Intel CPU; and whether a Haswell or Broadwell one.
static void qg_detect_family(void) {
#if defined(__x86_64__) || defined(_M_X64)
    unsigned a, b, c, d;
    if (__get_cpuid_max(0, NULL) < 1) return;
    __cpuid(0, a, b, c, d);
    const int amd = b == 0x68747541u && d == 0x69746E65u && c == 0x444D4163u; // "AuthenticAMD"
    qg_intel = b == 0x756E6547u && d == 0x49656E69u && c == 0x6C65746Eu;      // "GenuineIntel"
    __cpuid(1, a, b, c, d);
    unsigned family = (a >> 8) & 0xF;
    if (family == 0xF) family += (a >> 20) & 0xFF;
    const unsigned model = ((a >> 4) & 0xF) | (((a >> 16) & 0xF) << 4);
    qg_amd_family_1a = amd && family == 0x1A;
    qg_amd_zen1 = amd && family == 0x17 && model < 0x30;
    if (qg_intel && family == 6) {
        static const unsigned port0_shifts[] = {0x3C, 0x3F, 0x45, 0x46, 0x3D, 0x47, 0x4F, 0x56};
        for (unsigned i = 0; i < sizeof port0_shifts / sizeof port0_shifts[0]; i++)
            if (model == port0_shifts[i]) qg_intel_shifts_on_port0 = 1;
    }
#endif
}

/// One of qg_detect_family's answers, found once.
static int qg_family_answer(const int *answer) {
    pthread_once(&qg_family_once, qg_detect_family);
    return *answer;
}

static int qg_is_amd_family_1a(void) { return qg_family_answer(&qg_amd_family_1a); }
static int qg_is_intel(void) { return qg_family_answer(&qg_intel); }
static int qg_is_amd_zen1(void) { return qg_family_answer(&qg_amd_zen1); }
static int qg_has_intel_shifts_on_port0(void) { return qg_family_answer(&qg_intel_shifts_on_port0); }

/// A choice the kernel tester may force: its forced value (0 or 1) where one
/// is set, else this CPU's answer.
static int qg_choice(_Atomic int *forced, int cpu) {
    const int f = atomic_load(forced);
    return f >= 0 ? f : cpu;
}

/// Forces a choice to `value` (0 or 1, any other non-negative as 1), or
/// with −1 gives it back to the CPU.
static void qg_force_choice(_Atomic int *forced, int value) { atomic_store(forced, value < 0 ? -1 : value != 0); }

/// A 64-byte store across two lines costs Intel CPUs about two stores
/// (Emerald Rapids: the avx512vnni tile's rows split at the lines ran int32
/// 3136×64×64 at 587 GOP/s against 459), while AMD's Zen 5 (family 1Ah) takes
/// it about as one, and each extra store costs it more: there the split rows
/// ran 3–9 % slower at K = 64 (KERNELS.md, "The epilogue"). Zen 4 keeps the
/// split: without it int32 rows at K ≤ 147 ran 1–5 % faster there, but float
/// rows 2 % slower to 1 % faster (KERNELS.md). Older AMD CPUs and families
/// after 1Ah are not measured and keep the split.
int qg_cpu_line_crossing_stores_cheap(void) { return qg_choice(&qg_crossing_forced, qg_is_amd_family_1a()); }

void qg_cpu_force_line_crossing_stores(int cheap) { qg_force_choice(&qg_crossing_forced, cheap); }

/// Zen 5 reads weights from memory faster as one stream than as several
/// (KERNELS.md, "One stream for decode"): the 4-bit decode tile's at 0.93–0.97
/// of a plain read when it streams its panels one at a time with a software
/// prefetch, at 0.78–0.87 when it reads four side by side; 4-bit calls of two
/// rows gained the same way (qg_cpu_two_row_stream_min_bytes); and calls of a
/// few rows (4-bit 4 to 8, avx512vnni int8 10 to 12) ran faster from memory
/// with the tiles prefetching the next tile's panels in address order. On
/// Zen 4 a test program read four streams faster than one (43 against 21–32
/// GB/s, without software prefetch), and the library forced to one stream
/// there (4-bit, group 32, one thread, fastest of three interleaved rounds,
/// GOP/s, side by side → one stream) ran warm 1×4096×4096 283–286 → 224–227
/// and 2×11008×4096 287–322 → 273–303, and with the caches evicted
/// 1×11008×4096 105–110 → 92–103 and 2×11008×4096 155–180 → 138–165
/// (1×4096×4096 95–96 → 89–108, 8×4096×4096 alike). So Zen 4 and every
/// other CPU keep the panels side by side and each tile's own prefetch.
int qg_cpu_one_stream_decode(void) { return qg_choice(&qg_one_stream_forced, qg_is_amd_family_1a()); }

void qg_cpu_force_one_stream_decode(int one) { qg_force_choice(&qg_one_stream_forced, one); }

/// GF2P8AFFINEQB in place of a shift and an AND in the avx512vnni 4-bit
/// main tile: on Intel's server cores all three share ports 0 and 5 with
/// VPDPBUSD, so the instruction saved is a multiply-add's slot (Emerald
/// Rapids, 128×4096×4096, the tile alone: 1.04–1.07×). Zen 4 runs the shift
/// and the AND beside VPDPBUSD, and there the twin ran up to 8 % slower
/// (`qgemm bench --weights int4`, one thread, fastest runs of interleaved
/// rounds: group 32, 128×4096×4096 1.02–1.03× faster with the shift, 3 and 4
/// rows 1.07–1.08×; KERNELS.md, "GFNI"). So Intel CPUs with GFNI take the twin; AMD's,
/// Zen 5 not measured, and others keep the shift.
int qg_cpu_w4_high_nibbles_by_gfni(void) { return qg_is_intel() && qg_cpu_get_features()->gfni; }

/// The avx2 int8 tiles sign-extend the weights' bytes with three shifts per
/// 32 bytes. Haswell and Broadwell run vector shifts on port 0 only, where
/// VPMADDWD runs too: llvm-mca -mcpu=haswell gives the 4×16 tile's K-group
/// (16 VPMADDWD) 22.1 cycles so, and 16.1 with the bytes split by VPSHUFB
/// and VPERMQ and widened by VPMOVSXBW, all on port 5 (16.1–18.7 for the
/// compiled loops, which keep some accumulators on the stack). Skylake and
/// later Intel cores run shifts and VPMADDWD on ports 0 and 1 (14.0 cycles
/// by shifts, 15.1 by shuffles), and on AMD's Zen 2 the shuffles, forced,
/// ran 20 % slower (17.1 cycles against 16.1 in the model), on Zen 1 4–13 %
/// slower (KERNELS.md, "AVX2 detail"). Not measured on a Haswell or
/// Broadwell machine. Only CPUs with AVX2 (some Haswell
/// Pentiums and Celerons have none) answer yes.
int qg_cpu_widen_bytes_by_shuffles(void) {
    return qg_choice(&qg_shuffles_forced, qg_has_intel_shifts_on_port0() && qg_cpu_get_features()->avx2);
}

void qg_cpu_force_widen_bytes_by_shuffles(int shuffles) { qg_force_choice(&qg_shuffles_forced, shuffles); }

/// Zen 1 runs a 256-bit operation as two halves and every vector instruction
/// beside VPMADDWD costs there, the main tile's three shifts per 32 weight
/// bytes too (KERNELS.md, "AVX2 detail"): the 4×16 K-loop ran at 41.3 GOP/s,
/// 46.7 on weights already int16, against a probe of 47. So there the driver
/// has each step's weights widened once for all of a block's row groups
/// (qg_kernel.prepare_weights). Measured on model 1 (EPYC) only; Zen+ has
/// the same core. Other CPUs keep the tiles' widening: on Zen 2 the shifts
/// ran as fast as the probe allows.
int qg_cpu_avx2_widens_weights_ahead(void) {
    return qg_choice(&qg_widen_ahead_forced, qg_is_amd_zen1() && qg_cpu_get_features()->avx2);
}

void qg_cpu_force_avx2_widens_weights_ahead(int ahead) { qg_force_choice(&qg_widen_ahead_forced, ahead); }

/// Two-row calls whose weights the L2 holds ran slower one panel at a time
/// (each activation broadcast then feeds one VPDPBUSD, not two): Zen 5,
/// 2×1024×1024, group 32, 634 → 547 GOP/s; from the L3 or memory they gain
/// (kernels/x86/w4_zmm.h).
int64_t qg_cpu_two_row_stream_min_bytes(void) {
    const int64_t forced = atomic_load(&qg_two_row_min_forced);
    if (forced >= 0) return forced;
    const int64_t l2 = qg_cpu_cache_bytes(2);
    return l2 > 0 ? l2 : 1024 * 1024;
}

void qg_cpu_force_two_row_stream_min_bytes(int64_t bytes) { atomic_store(&qg_two_row_min_forced, bytes < 0 ? -1 : bytes); }

/// Intel cores issue the 256-bit VPDPBUSD, the 16-bit shift and each group's
/// conversion and FMA on ports 0 and 1 only, with a VPDPBUSD latency of 5
/// cycles (llvm-mca's Alder Lake model): there the avxvnni 6-row 4-bit tile
/// runs as two tiles of three rows whose high nibbles need no shift, each sum
/// taking one VPDPBUSD per chunk (KERNELS.md, "What bounds the avxvnni tile").
/// On Zen 5 (`--kernel avxvnni`) the shift is free and that form ran 20 %
/// slower at group 32, so AMD and other CPUs keep the six rows together.
int qg_cpu_w4_ymm_three_row_passes(void) { return qg_choice(&qg_ymm_passes_forced, qg_is_intel()); }

void qg_cpu_force_w4_ymm_three_row_passes(int three) { qg_force_choice(&qg_ymm_passes_forced, three); }

// MARK: - Cache sizes

#if defined(__APPLE__)
#include <sys/sysctl.h>
#endif
#include <stdio.h>
#include <stdlib.h>

static int64_t qg_caches[4];
static pthread_once_t qg_caches_once = PTHREAD_ONCE_INIT;

#if defined(__linux__)
#include "first_line.h"
#endif

static void qg_read_caches(void) {
#if defined(__linux__)
    for (int i = 0; i < 8; i++) {
        char path[96], level[16], type[32], size[32];
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/level", i);
        qg_read_first_line(path, level, sizeof level);
        if (!level[0]) break;
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/type", i);
        qg_read_first_line(path, type, sizeof type);
        if (strncmp(type, "Instruction", 11) == 0) continue;
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/size", i);
        qg_read_first_line(path, size, sizeof size);
        char *end = NULL;
        const long long value = strtoll(size, &end, 10);
        // A size past 1 TiB, in whatever unit, is no cache (and its bytes
        // could overflow below).
        if (value <= 0 || value > (1LL << 40) || !end) continue;
        const int64_t bytes = *end == 'K' ? value * 1024 : *end == 'M' ? value * 1024 * 1024 : value;
        if (bytes > (1LL << 40)) continue;
        const long lv = strtol(level, NULL, 10);
        if (lv >= 1 && lv <= 3) qg_caches[lv] = bytes;
    }
#elif defined(__APPLE__)
    const char *names[4] = {NULL, "hw.l1dcachesize", "hw.l2cachesize", "hw.l3cachesize"};
    for (int lv = 1; lv <= 3; lv++) {
        int64_t v = 0;
        size_t len = sizeof v;
        if (sysctlbyname(names[lv], &v, &len, NULL, 0) == 0 && v > 0) qg_caches[lv] = v;
    }
#endif
}

int64_t qg_cpu_cache_bytes(int level) {
    if (level < 1 || level > 3) return 0;
    pthread_once(&qg_caches_once, qg_read_caches);
    return qg_caches[level];
}
