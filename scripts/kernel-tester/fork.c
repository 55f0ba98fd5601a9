// --fork: a process whose GEMMs ran on several threads and that then forks
// (a prefork server warms up, then forks its workers) must find a working
// pool in the child: the child has none of the parent's worker threads, and
// its GEMMs must run on several threads again and give the parent's bits.
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "qgemm.h"

uint32_t kernel_tester_next(void);

typedef struct fork_case {
    int path;
    int64_t m, n, k, kp;
    uint8_t *x;
    int8_t *w;
    int32_t *row_sum;
} fork_case;

/// Y = X·Wᵀ with int32 output on `threads` threads; returns qg_gemm's status.
static int fork_run(const fork_case *c, int threads, int32_t *y) {
    qg_gemm_args a = {.m = c->m, .n = c->n, .k = c->k, .x = c->x, .ldx = c->k, .x_unsigned = 1, .w = c->w,
                      .kp = c->kp, .row_sum = c->row_sum, .x_zero_point = 128, .y = y, .ldy = c->n,
                      .out_type = QG_OUT_INT32};
    return qg_gemm(&a, c->path, threads);
}

int kernel_tester_check_fork(void) {
    fork_case c = {.path = qg_path_best(), .m = 384, .n = 256, .k = 512};
    int panel_n = 0, kr = 0;
    qg_path_layout(c.path, &panel_n, &kr);
    const int64_t np = qg_packed_n(c.n);
    int8_t *w = malloc((size_t)(c.n * c.k)), *packed = calloc((size_t)qg_packed_size(c.n, c.k), 1);
    int64_t *sum = malloc(sizeof(int64_t) * (size_t)np), *abs_sum = malloc(sizeof(int64_t) * (size_t)np);
    c.x = malloc((size_t)(c.m * c.k));
    c.row_sum = calloc((size_t)np, sizeof(int32_t));
    for (int64_t i = 0; i < c.m * c.k; i++) c.x[i] = (uint8_t)kernel_tester_next();
    for (int64_t i = 0; i < c.n * c.k; i++) w[i] = (int8_t)kernel_tester_next();
    qg_pack_weights(w, c.k, 1, c.n, c.k, packed, sum, abs_sum);
    for (int64_t i = 0; i < c.n; i++) c.row_sum[i] = (int32_t)sum[i];
    c.w = packed;
    c.kp = qg_packed_k(c.k);
    int8_t *own = NULL;
    if (panel_n != QG_PANEL_N || kr != QG_K_GROUP) { // a path with a layout of its own reads a repacked copy
        own = calloc((size_t)qg_layout_size(c.n, c.k, panel_n, kr), 1);
        qg_repack_weights(packed, c.n, c.k, panel_n, kr, own);
        c.w = own;
        c.kp = qg_layout_k(c.k, kr);
    }
    int32_t *want = malloc(sizeof(int32_t) * (size_t)(c.m * c.n)), *got = malloc(sizeof(int32_t) * (size_t)(c.m * c.n));
    int failed = 0;
    // A call counts the threads that ran its tasks, and a worker that has not
    // woken yet leaves them to the caller: up to 200 calls for one on two.
    int two = 0;
    for (int i = 0; i < 200 && !two; i++) two = fork_run(&c, 2, want) == 0 && qg_threads_of_last_call() == 2;
    if (!two) {
        printf("kernel-tester: fork check skipped: no call of the parent ran on 2 threads (%d; one core?)\n",
               qg_threads_of_last_call());
    } else {
        fflush(stdout);
        // Inherited dispositions must not hide the child's end or its alarm.
        signal(SIGCHLD, SIG_DFL);
        const pid_t child = fork();
        if (child == 0) {
            // Only async-signal-safe calls are promised after fork in a
            // threaded process; this is what a prefork server does anyway.
            // A child that hangs (a lock held for ever) is ended by the alarm.
            signal(SIGALRM, SIG_DFL);
            sigset_t alarm_set;
            sigemptyset(&alarm_set);
            sigaddset(&alarm_set, SIGALRM);
            sigprocmask(SIG_UNBLOCK, &alarm_set, NULL);
            alarm(60);
            int code = 5;
            for (int i = 0; i < 200 && code == 5; i++) {
                if (fork_run(&c, 2, got) != 0) _exit(3);
                if (memcmp(got, want, sizeof(int32_t) * (size_t)(c.m * c.n)) != 0) _exit(4);
                if (qg_threads_of_last_call() == 2) code = 0;
            }
            _exit(code);
        }
        // Waits at most 90 s: a child hung on a lock fails the check, not CI.
        int status = 0;
        pid_t done = 0;
        for (int waited = 0; child > 0 && done == 0 && waited < 900; waited++) {
            done = waitpid(child, &status, WNOHANG);
            if (done == 0) nanosleep(&(struct timespec){.tv_nsec = 100000000}, NULL);
        }
        if (child > 0 && done == 0) {
            kill(child, SIGKILL);
            waitpid(child, &status, 0);
            printf("FORK MISMATCH: the forked child's GEMM hung\n");
            failed = 1;
        } else if (child < 0 || done != child) {
            printf("kernel-tester: fork: could not fork and wait\n");
            failed = 1;
        } else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            const int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
            printf("FORK MISMATCH: the forked child's GEMM %s\n",
                   code == 3 ? "failed" : code == 4 ? "differs from the parent's" : code == 5 ? "ran on one thread in 200 calls, not 2"
                                                                                    : "did not end normally (hung or crashed)");
            failed = 1;
        } else {
            printf("kernel-tester: fork: the child's GEMM ran on 2 threads with the parent's bits\n");
        }
    }
    free(w); free(packed); free(sum); free(abs_sum); free(c.x); free(c.row_sum); free(own); free(want); free(got);
    return failed;
}
