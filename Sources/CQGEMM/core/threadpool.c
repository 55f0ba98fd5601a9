// One process-wide pool of worker threads, created lazily and kept.
//
// Policy (documented in the README):
// - a GEMM asking for T threads runs on the caller plus T − 1 pool workers;
// - the pool serves one GEMM at a time; a GEMM that finds it busy runs all its
//   tasks on its own calling thread. Concurrent callers therefore never create
//   threads beyond the pool, and the cores are not oversubscribed by QGEMM;
// - tasks are handed out dynamically (an atomic counter). Each output element
//   is computed by the same code whatever thread runs it, so results are
//   bit-identical for every thread count;
// - waking a sleeping thread costs tens of microseconds, as much as a whole
//   small GEMM. So a worker spins (with a pause, checking the time) for a short
//   while after each job before it sleeps, the caller never waits for a worker
//   that has not joined yet (it takes the tasks itself), and it waits only for
//   workers still running a task, spinning briefly before it sleeps. A call
//   with more threads is then never much slower than one with fewer;
// - a call wakes only the workers it wants (each sleeps on its own condition
//   variable), and a worker a job does not want sleeps without spinning, so
//   the workers of an earlier, wider call do not busy-wait beside it.
// - a forked child starts with an empty pool (fork handlers), so its wide
//   calls make workers of their own instead of waiting on the parent's;
// - a job's tasks run in the caller's floating-point control state (rounding
//   mode, flush-to-zero) on every thread. A worker inherits its creator's
//   state when it is made and keeps it, so without this a caller that changed
//   its rounding mode after the pool was made would get rows rounded two ways
//   in one call, differently for each thread count and schedule.
#include "threadpool.h"
#include "qgemm.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

/// How long an idle worker, or a caller waiting for workers, spins before sleeping.
#define QG_SPIN_NANOSECONDS 100000

static void qg_cpu_relax(void) {
#if defined(__x86_64__)
    _mm_pause();
#elif defined(__aarch64__)
    __asm__ volatile("yield");
#endif
}

static int64_t qg_now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

/// Spins until `done(arg)` or the spin time is up; returns done(arg).
static int qg_spin_until(int (*done)(void *), void *arg) {
    const int64_t until = qg_now_ns() + QG_SPIN_NANOSECONDS;
    for (;;) {
        for (int i = 0; i < 64; i++) {
            if (done(arg)) return 1;
            qg_cpu_relax();
        }
        if (qg_now_ns() >= until) return done(arg);
    }
}

/// The floating-point control register's value: the rounding mode and
/// flush-to-zero bits every float instruction the library runs obeys (MXCSR
/// for SSE and AVX on x86-64, FPCR on arm64; none elsewhere). On x86-64 the
/// exception flags (MXCSR's bits 0-5) are left out, and a set keeps the
/// thread's own: they are each thread's record of what it raised, not part
/// of how it computes (arm64 keeps them apart, in FPSR).
#if defined(__x86_64__)
typedef unsigned int qg_fp_control;
#define QG_MXCSR_FLAGS 0x3Fu
static qg_fp_control qg_fp_control_get(void) { return _mm_getcsr() & ~QG_MXCSR_FLAGS; }
static void qg_fp_control_set(qg_fp_control c) { _mm_setcsr((_mm_getcsr() & QG_MXCSR_FLAGS) | (c & ~QG_MXCSR_FLAGS)); }
#elif defined(__aarch64__)
typedef uint64_t qg_fp_control;
static qg_fp_control qg_fp_control_get(void) {
    uint64_t c;
    __asm__ volatile("mrs %0, fpcr" : "=r"(c));
    return c;
}
static void qg_fp_control_set(qg_fp_control c) { __asm__ volatile("msr fpcr, %0" : : "r"(c)); }
#else
typedef int qg_fp_control;
static qg_fp_control qg_fp_control_get(void) { return 0; }
static void qg_fp_control_set(qg_fp_control c) { (void)c; }
#endif

uint64_t qg_fp_control_state(void) { return (uint64_t)qg_fp_control_get(); }
void qg_set_fp_control_state(uint64_t state) { qg_fp_control_set((qg_fp_control)state); }

typedef struct qg_job {
    /// One of the two is set: the GEMMs' task, or qg_run_tasks's, which
    /// also learns which of the call's threads runs it.
    void (*task)(void *ctx, int64_t t);
    void (*task_on_worker)(void *ctx, int64_t t, int worker);
    void *ctx;
    int64_t count;
    _Atomic int64_t next;
    _Atomic int helpers; // workers that ran at least one task of this job
    /// The caller's floating-point control state, which workers take on
    /// for the job's tasks.
    qg_fp_control fp;
} qg_job;

/// Threads that ran tasks of this thread's last qg_parallel_for (what
/// `threads:` turned into: fewer when the pool was busy or tasks were few).
static _Thread_local int qg_last_threads = 0;

int qg_threads_of_last_call(void) { return qg_last_threads; }
void qg_set_threads_of_last_call(int threads) { qg_last_threads = threads; }
void qg_note_call_without_rows(void) { qg_last_threads = 1; }

/// Workers spinning now, waiting for a job after the one they took part in
/// (qg_worker); a heuristic for how work is cut, never for a result.
static _Atomic int qg_spinning = 0;

int qg_pool_warm_workers(void) { return atomic_load_explicit(&qg_spinning, memory_order_relaxed); }

/// Values per part forced for the fuzz targets (qg_force_row_part_values),
/// or −1: the rule below.
static _Atomic int64_t qg_row_part_values_forced = -1;

void qg_force_row_part_values(int64_t values) { atomic_store(&qg_row_part_values_forced, values > 0 ? values : -1); }

/// `parts` (at most QG_MAX_ROW_PARTS) of whole rows: rows per part in
/// *part_rows, and the count, which rounding the rows up may lower.
static int64_t qg_whole_row_parts(int64_t rows, int64_t parts, int64_t *part_rows) {
    if (parts > QG_MAX_ROW_PARTS) parts = QG_MAX_ROW_PARTS;
    if (parts <= 1) {
        *part_rows = rows;
        return 1;
    }
    *part_rows = (rows + parts - 1) / parts;
    return (rows + *part_rows - 1) / *part_rows;
}

int64_t qg_row_parts(int64_t rows, int64_t k, int threads, int64_t *part_rows) {
    const int64_t forced = atomic_load_explicit(&qg_row_part_values_forced, memory_order_relaxed);
    if (forced > 0) {
        // As many parts as `forced` values give, up to the thread count (1:
        // the finest split the threads allow; whole rows cap it at the rows).
        const int64_t wanted = threads > 0 ? threads : qg_cpu_count();
        int64_t parts = rows * k / forced;
        if (parts > wanted) parts = wanted;
        return qg_whole_row_parts(rows, parts, part_rows);
    }
    return qg_row_parts_with(rows, k, threads, qg_pool_warm_workers(), part_rows);
}

int64_t qg_row_parts_with(int64_t rows, int64_t k, int threads, int warm, int64_t *part_rows) {
    const int64_t wanted = threads > 0 ? threads : qg_cpu_count(), values = rows * k;
    int64_t parts = values / QG_ROW_PART_VALUES;
    if (parts > wanted) parts = wanted;
    // The warm bar: on the caller and every spinning worker the call may use
    // (a worker a job does not want sleeps without spinning, so a job on
    // fewer would put the others to sleep before the next GEMM).
    if (warm > 0 && values / QG_ROW_PART_VALUES_WARM >= 2) {
        int64_t on_warm = (int64_t)warm + 1;
        if (on_warm > wanted) on_warm = wanted;
        if (on_warm > rows) on_warm = rows;
        if (on_warm > parts) parts = on_warm;
    }
    return qg_whole_row_parts(rows, parts, part_rows);
}

/// MC of this thread's last call through the driver.
static _Thread_local int64_t qg_last_block_rows = 0;

int64_t qg_block_rows_of_last_call(void) { return qg_last_block_rows; }
void qg_set_block_rows_of_last_call(int64_t rows) { qg_last_block_rows = rows; }

static struct {
    pthread_mutex_t lock;
    /// Worker i sleeps on wake[i]; a job wakes only the workers it wants,
    /// so the others neither run nor spin beside a call on fewer threads.
    pthread_cond_t wake[QG_MAX_WORKERS];
    pthread_cond_t idle;  // signalled when no worker is inside the job (active = 0), or one leaves the pool
    pthread_mutex_t owner; // held by the caller that owns the pool for a job
    int workers;
    uint64_t generation;
    _Atomic uint64_t published; // = generation, readable without the lock (for spinning)
    qg_job *job;
    int wanted;
    _Atomic int active;         // workers inside the current job (changed under the lock)
    int stopping; // set at process exit: workers leave their loop
} qg_pool = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .wake = {[0 ... QG_MAX_WORKERS - 1] = PTHREAD_COND_INITIALIZER},
    .idle = PTHREAD_COND_INITIALIZER,
    .owner = PTHREAD_MUTEX_INITIALIZER,
};

/// Runs tasks until none is left, as the call's thread `worker` (0 the
/// caller, pool worker i as i + 1); returns how many this thread ran.
static int64_t qg_drain(qg_job *job, int worker) {
    int64_t ran = 0;
    for (;;) {
        int64_t t = atomic_fetch_add_explicit(&job->next, 1, memory_order_relaxed);
        if (t >= job->count) return ran;
        if (job->task_on_worker) job->task_on_worker(job->ctx, t, worker);
        else job->task(job->ctx, t);
        ran++;
    }
}

typedef struct qg_worker_start {
    int index;
    uint64_t generation; // the pool's generation when the worker was created
} qg_worker_start;

static int qg_new_generation(void *seen) {
    return atomic_load_explicit(&qg_pool.published, memory_order_acquire) != *(uint64_t *)seen;
}

static void *qg_worker(void *arg) {
    const qg_worker_start start = *(qg_worker_start *)arg;
    free(arg);
    const int index = start.index;
    // Start from the generation at creation: a job published before this
    // thread first runs must still be seen as new.
    uint64_t seen = start.generation;
    pthread_mutex_lock(&qg_pool.lock);
    for (;;) {
        if (qg_pool.generation == seen && !qg_pool.stopping) {
            // Spin a little before sleeping: the next call often comes at once.
            pthread_mutex_unlock(&qg_pool.lock);
            atomic_fetch_add_explicit(&qg_spinning, 1, memory_order_relaxed);
            qg_spin_until(qg_new_generation, &seen);
            atomic_fetch_sub_explicit(&qg_spinning, 1, memory_order_relaxed);
            pthread_mutex_lock(&qg_pool.lock);
            while (qg_pool.generation == seen && !qg_pool.stopping) pthread_cond_wait(&qg_pool.wake[index], &qg_pool.lock);
        }
        if (qg_pool.stopping) break;
        seen = qg_pool.generation;
        // Read under the lock, for the generation just seen: a worker that is
        // not wanted (or comes after the caller stopped taking helpers) must
        // not touch the job (it may already be gone).
        if (index >= qg_pool.wanted) {
            // Not needed for this job (a spinning worker saw it): sleep until
            // a job that wants this worker signals it, without the spin, or a
            // call on few threads would keep every idle worker of an earlier,
            // wider call busy-waiting beside it.
            while (!qg_pool.stopping && !(qg_pool.generation != seen && index < qg_pool.wanted))
                pthread_cond_wait(&qg_pool.wake[index], &qg_pool.lock);
            if (qg_pool.stopping) break;
            seen = qg_pool.generation;
        }
        qg_job *job = qg_pool.job;
        atomic_fetch_add(&qg_pool.active, 1);
        pthread_mutex_unlock(&qg_pool.lock);
        // index < wanted ≤ threads − 1: worker index + 1 is the call's own.
        const qg_fp_control own = qg_fp_control_get();
        if (own != job->fp) qg_fp_control_set(job->fp);
        if (qg_drain(job, index + 1) > 0) atomic_fetch_add_explicit(&job->helpers, 1, memory_order_relaxed);
        if (own != job->fp) qg_fp_control_set(own);
        pthread_mutex_lock(&qg_pool.lock);
        if (atomic_fetch_sub(&qg_pool.active, 1) == 1) pthread_cond_signal(&qg_pool.idle);
    }
    qg_pool.workers--;
    pthread_cond_broadcast(&qg_pool.idle);
    pthread_mutex_unlock(&qg_pool.lock);
    return NULL; // the thread's scratch is freed by its key destructor
}

/// At process exit: stop the workers and wait until each has left the pool's
/// state (its last steps, the return and its scratch's destructor, follow).
/// Skipped if the pool is owned then: a GEMM still running (exit called from
/// another thread mid-call) or a fork in progress.
static void qg_pool_shutdown(void) {
    if (pthread_mutex_trylock(&qg_pool.owner) != 0) return;
    pthread_mutex_lock(&qg_pool.lock);
    qg_pool.stopping = 1;
    for (int i = 0; i < qg_pool.workers; i++) pthread_cond_signal(&qg_pool.wake[i]);
    while (qg_pool.workers > 0) pthread_cond_wait(&qg_pool.idle, &qg_pool.lock);
    pthread_mutex_unlock(&qg_pool.lock);
    pthread_mutex_unlock(&qg_pool.owner);
}

/// fork(): the child has only the forking thread, so none of the pool's
/// workers, and a lock a worker held at that moment would stay held for
/// ever. Before the fork the forking thread takes both locks (waiting for a
/// GEMM another thread runs to end), so the pool's state is whole; after it,
/// the parent lets them go, and the child starts the pool afresh: no
/// workers (the next wide call makes new ones), fresh conditions.
static void qg_pool_before_fork(void) {
    pthread_mutex_lock(&qg_pool.owner);
    pthread_mutex_lock(&qg_pool.lock);
}

static void qg_pool_after_fork_parent(void) {
    pthread_mutex_unlock(&qg_pool.lock);
    pthread_mutex_unlock(&qg_pool.owner);
}

static void qg_pool_after_fork_child(void) {
    for (int i = 0; i < QG_MAX_WORKERS; i++) pthread_cond_init(&qg_pool.wake[i], NULL);
    pthread_cond_init(&qg_pool.idle, NULL);
    qg_pool.workers = 0;
    qg_pool.wanted = 0;
    qg_pool.job = NULL;
    atomic_store(&qg_pool.active, 0);
    atomic_store(&qg_spinning, 0);
    pthread_mutex_unlock(&qg_pool.lock);
    pthread_mutex_unlock(&qg_pool.owner);
}

static pthread_once_t qg_atexit_once = PTHREAD_ONCE_INIT;
static void qg_register_shutdown(void) {
    atexit(qg_pool_shutdown);
    pthread_atfork(qg_pool_before_fork, qg_pool_after_fork_parent, qg_pool_after_fork_child);
}

/// The fork handlers exist before any thread can own the pool: registered
/// on a first wide call instead, a fork by another thread while that call
/// held `owner` would run without them (glibc skips a handler registered
/// during a fork), and the child would find the pool owned for ever.
__attribute__((constructor)) static void qg_register_at_load(void) {
    pthread_once(&qg_atexit_once, qg_register_shutdown);
}

/// Starts workers up to `count` (called with qg_pool.owner held). Returns how many exist.
static int qg_ensure_workers(int count) {
    if (count > QG_MAX_WORKERS) count = QG_MAX_WORKERS;
    // Done at load already, unless another library's constructor calls a
    // GEMM before this one's runs (their order is not defined).
    pthread_once(&qg_atexit_once, qg_register_shutdown);
    while (qg_pool.workers < count) {
        qg_worker_start *start = malloc(sizeof *start);
        if (!start) break;
        pthread_t thread;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        pthread_mutex_lock(&qg_pool.lock);
        start->index = qg_pool.workers;
        start->generation = qg_pool.generation;
        int rc = pthread_create(&thread, &attr, qg_worker, start);
        if (rc == 0) qg_pool.workers++;
        else free(start);
        pthread_mutex_unlock(&qg_pool.lock);
        pthread_attr_destroy(&attr);
        if (rc != 0) break;
    }
    return qg_pool.workers;
}

static int qg_no_worker_active(void *unused) {
    (void)unused;
    return atomic_load_explicit(&qg_pool.active, memory_order_acquire) == 0;
}

/// A job on up to `threads` threads (qg_parallel_for, qg_run_tasks).
static void qg_run_job(qg_job *job, int threads) {
    const int64_t count = job->count;
    atomic_init(&job->next, 0);
    atomic_init(&job->helpers, 0);
    qg_last_threads = 1;
    if (threads <= 1 || count <= 1 || pthread_mutex_trylock(&qg_pool.owner) != 0) {
        qg_drain(job, 0);
        return;
    }
    if (qg_pool.stopping) { // after the exit-time shutdown: no workers any more
        pthread_mutex_unlock(&qg_pool.owner);
        qg_drain(job, 0);
        return;
    }
    job->fp = qg_fp_control_get();
    int wanted = threads - 1;
    if (wanted > count - 1) wanted = (int)(count - 1);
    const int available = qg_ensure_workers(wanted); // fewer if thread creation failed
    if (available < wanted) wanted = available;

    pthread_mutex_lock(&qg_pool.lock);
    qg_pool.job = job;
    qg_pool.wanted = wanted;
    qg_pool.generation++;
    atomic_store_explicit(&qg_pool.published, qg_pool.generation, memory_order_release);
    for (int i = 0; i < wanted; i++) pthread_cond_signal(&qg_pool.wake[i]);
    pthread_mutex_unlock(&qg_pool.lock);

    qg_drain(job, 0);

    // Every task has been taken. Close the job to late workers (they see
    // wanted = 0 and leave it alone), then wait only for those still inside:
    // `job` lives on the caller's stack.
    pthread_mutex_lock(&qg_pool.lock);
    qg_pool.wanted = 0;
    if (atomic_load(&qg_pool.active) > 0) {
        pthread_mutex_unlock(&qg_pool.lock);
        qg_spin_until(qg_no_worker_active, NULL);
        pthread_mutex_lock(&qg_pool.lock);
        while (atomic_load(&qg_pool.active) > 0) pthread_cond_wait(&qg_pool.idle, &qg_pool.lock);
    }
    qg_pool.job = NULL;
    pthread_mutex_unlock(&qg_pool.lock);
    pthread_mutex_unlock(&qg_pool.owner);
    qg_last_threads = 1 + atomic_load_explicit(&job->helpers, memory_order_relaxed);
}

void qg_parallel_for(int64_t count, int threads, void (*task)(void *ctx, int64_t t), void *ctx) {
    qg_job job = {.task = task, .ctx = ctx, .count = count};
    qg_run_job(&job, threads);
}

/// A job that is not a GEMM (qg_run_tasks, qg_parallel_for_rows): what the
/// calling thread's last GEMM ran on stays readable.
static void qg_run_side_job(qg_job *job, int threads) {
    const int last = qg_last_threads;
    qg_run_job(job, threads);
    qg_last_threads = last;
}

void qg_run_tasks(int64_t count, int threads, void (*task)(void *ctx, int64_t t, int worker), void *ctx) {
    if (count <= 0 || !task) return;
    qg_job job = {.task_on_worker = task, .ctx = ctx, .count = count};
    qg_run_side_job(&job, threads);
}

void qg_parallel_for_rows(int64_t count, void (*task)(void *ctx, int64_t t), void *ctx) {
    qg_job job = {.task = task, .ctx = ctx, .count = count};
    qg_run_side_job(&job, (int)count);
}

// MARK: - Per-thread scratch

typedef struct qg_scratch {
    void *data[QG_SCRATCH_SLOTS];
    size_t size[QG_SCRATCH_SLOTS];
} qg_scratch;

static pthread_key_t qg_scratch_key;
static pthread_once_t qg_scratch_once = PTHREAD_ONCE_INIT;

static void qg_scratch_free(void *p) {
    qg_scratch *s = p;
    for (int i = 0; i < QG_SCRATCH_SLOTS; i++) free(s->data[i]);
    free(s);
}

/// Whether the key was made: without it (the process's keys used up), key 0
/// would be another library's, and its slot read and written as ours.
static int qg_scratch_key_made;
static void qg_scratch_init(void) { qg_scratch_key_made = pthread_key_create(&qg_scratch_key, qg_scratch_free) == 0; }

void *qg_thread_scratch(int slot, size_t bytes) {
    pthread_once(&qg_scratch_once, qg_scratch_init);
    if (!qg_scratch_key_made) return NULL; // the caller reports it as memory it could not have
    qg_scratch *s = pthread_getspecific(qg_scratch_key);
    if (!s) {
        s = calloc(1, sizeof *s);
        if (!s) return NULL;
        if (pthread_setspecific(qg_scratch_key, s) != 0) {
            free(s);
            return NULL;
        }
    }
    if (s->size[slot] < bytes) {
        // Rounded up to whole pages, which a size within a page of SIZE_MAX
        // cannot be (it would wrap to 0 and be allocated as 0 bytes).
        if (bytes > SIZE_MAX - 4095) return NULL;
        size_t size = (bytes + 4095) & ~(size_t)4095;
        void *p = aligned_alloc(64, size);
        if (!p) return NULL;
        free(s->data[slot]);
        s->data[slot] = p;
        s->size[slot] = size;
    }
    return s->data[slot];
}
