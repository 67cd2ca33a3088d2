// A persistent worker pool for the short parallel regions of decoding (about a hundred per
// token, each tens of microseconds): workers spin briefly between regions instead of sleeping,
// so a hand-off costs well under a microsecond instead of a futex wake-up.
//
// Protocol. One job runs at a time (`busy`). A job is published under a sequence lock
// (`generation` odd while its fields change, even once they are stable). Task ids come from one
// counter that only grows (`next`); a job owns ids [base, end). A worker copies the job's
// fields, checks the generation did not move, then claims ids by compare-and-swap only while
// they are below `end`, so a worker holding stale fields can never claim a task of a newer job,
// and the fields it copied stay valid while it holds a task (the caller waits for every task).
#include "ckernels.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#if defined(__x86_64__)
#include <immintrin.h>
#define PAUSE() _mm_pause()
#else
#define PAUSE() ((void)0)
#endif

enum { MAX_WORKERS = 63 };
/// How long an idle worker spins before it sleeps (and the caller before it yields its core).
static const long SPIN_NS = 200 * 1000;

static struct {
    pthread_mutex_t busy;  // held by the thread running a job
    pthread_mutex_t sleep_lock;
    pthread_cond_t wake;
    atomic_ulong generation;
    atomic_int sleepers;
    atomic_long next;  // the task id counter
    atomic_long base, end;
    atomic_uintptr_t fn, ctx;
    atomic_long done;  // tasks of the current job finished
    int workers;
} pool = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER};

static pthread_once_t once = PTHREAD_ONCE_INIT;

static long now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long)t.tv_sec * 1000000000L + t.tv_nsec;
}

/// Runs tasks of the job [base, end) until none is left to claim.
static void claim_and_run(long base, long end, ck_task_fn fn, void *ctx) {
    long v = atomic_load_explicit(&pool.next, memory_order_relaxed);
    for (;;) {
        if (v < base || v >= end) return;
        if (!atomic_compare_exchange_weak_explicit(&pool.next, &v, v + 1, memory_order_acq_rel, memory_order_relaxed))
            continue;
        fn(ctx, v - base);
        atomic_fetch_add_explicit(&pool.done, 1, memory_order_release);
        v = atomic_load_explicit(&pool.next, memory_order_relaxed);
    }
}

static void *worker_main(void *arg) {
    (void)arg;
    unsigned long seen = 0;
    for (;;) {
        unsigned long g = atomic_load(&pool.generation);
        if (g == seen || (g & 1)) {
            // Idle: spin, then sleep until a new job is published.
            long start = now_ns();
            for (int i = 1;; i++) {
                PAUSE();
                g = atomic_load_explicit(&pool.generation, memory_order_acquire);
                if (g != seen && !(g & 1)) break;
                if ((i & 255) == 0 && now_ns() - start > SPIN_NS) {
                    pthread_mutex_lock(&pool.sleep_lock);
                    atomic_fetch_add(&pool.sleepers, 1);
                    while ((g = atomic_load(&pool.generation)) == seen || (g & 1))
                        pthread_cond_wait(&pool.wake, &pool.sleep_lock);
                    atomic_fetch_sub(&pool.sleepers, 1);
                    pthread_mutex_unlock(&pool.sleep_lock);
                    break;
                }
            }
        }
        long base = atomic_load_explicit(&pool.base, memory_order_relaxed);
        long end = atomic_load_explicit(&pool.end, memory_order_relaxed);
        ck_task_fn fn = (ck_task_fn)atomic_load_explicit(&pool.fn, memory_order_relaxed);
        void *ctx = (void *)atomic_load_explicit(&pool.ctx, memory_order_relaxed);
        atomic_thread_fence(memory_order_acquire);
        if (atomic_load_explicit(&pool.generation, memory_order_relaxed) != g) continue;  // torn: retry
        seen = g;
        claim_and_run(base, end, fn, ctx);
    }
    return NULL;
}

static void start_workers(void) {
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    int n = (int)(cores > 1 ? cores - 1 : 0);
    const char *off = getenv("SELFSPEC_NO_POOL");  // troubleshooting: 1 = no pool, GCD only
    if (off && off[0] == '1') n = 0;
    if (n > MAX_WORKERS) n = MAX_WORKERS;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    for (int i = 0; i < n; i++) {
        pthread_t t;
        if (pthread_create(&t, &attr, worker_main, NULL) == 0) pool.workers++;
    }
    pthread_attr_destroy(&attr);
}

int ck_pool_workers(void) {
    pthread_once(&once, start_workers);
    return pool.workers;
}

int ck_pool_run(long tasks, ck_task_fn fn, void *ctx) {
    if (tasks <= 0) return 1;
    if (ck_pool_workers() == 0) return 0;
    if (pthread_mutex_trylock(&pool.busy) != 0) return 0;  // another job (or a nested call) holds the pool

    // Publish the job under the sequence lock.
    atomic_fetch_add(&pool.generation, 1);  // odd: fields changing
    atomic_thread_fence(memory_order_release);  // the seqlock writer: the odd value before the fields
    long base = atomic_load(&pool.next);
    atomic_store_explicit(&pool.base, base, memory_order_relaxed);
    atomic_store_explicit(&pool.end, base + tasks, memory_order_relaxed);
    atomic_store_explicit(&pool.fn, (uintptr_t)fn, memory_order_relaxed);
    atomic_store_explicit(&pool.ctx, (uintptr_t)ctx, memory_order_relaxed);
    atomic_store_explicit(&pool.done, 0, memory_order_relaxed);
    atomic_fetch_add(&pool.generation, 1);  // even: published (sequentially consistent)
    if (atomic_load(&pool.sleepers) > 0) {
        pthread_mutex_lock(&pool.sleep_lock);
        pthread_cond_broadcast(&pool.wake);
        pthread_mutex_unlock(&pool.sleep_lock);
    }

    claim_and_run(base, base + tasks, fn, ctx);

    // Wait for the tasks other threads claimed.
    long start = 0;
    for (unsigned i = 1; atomic_load_explicit(&pool.done, memory_order_acquire) < tasks; i++) {
        PAUSE();
        if ((i & 255) == 0) {
            if (start == 0) start = now_ns();
            else if (now_ns() - start > SPIN_NS) sched_yield();
        }
    }
    pthread_mutex_unlock(&pool.busy);
    return 1;
}
