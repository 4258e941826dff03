// A thread pool for the parallel loops of one inference at a time.
//
// A loop is published by bumping the generation in `state`; every participant (the caller and
// each worker) claims task indices from `state` with a compare-and-swap that carries the
// generation, and counts each finished task in `done`. The caller returns when every task is
// done, so a worker that is not scheduled in time costs nothing. Workers spin for a short
// while between loops, because consecutive kernels are microseconds apart and a sleeping
// thread takes tens of microseconds to wake; after
// KILN_SPIN_NS without work they sleep on a condition variable. Nothing here allocates after
// kiln_thread_pool_create.
#include "CKilnKernels.h"
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define CPU_RELAX() _mm_pause()
#elif defined(__aarch64__)
#define CPU_RELAX() __asm__ volatile("yield")
#else
#define CPU_RELAX() ((void)0)
#endif

/// How long an idle worker spins before sleeping.
#define KILN_SPIN_NS 200000

struct kiln_thread_pool {
    size_t threads;
    pthread_t *workers;
    pthread_mutex_t mutex;
    pthread_cond_t wake;
    /// The current loop's generation (high 32 bits) and next unclaimed task (low 32 bits):
    /// one word, so a task can only be claimed for the loop it belongs to.
    _Atomic uint64_t state;
    _Atomic size_t sleepers;
    /// Tasks of the current loop that have finished.
    _Atomic size_t done;
    _Atomic int stop;
    /// The current loop; written only after the previous loop was closed (see run).
    _Atomic(kiln_task_fn) fn;
    _Atomic(void *) context;
    _Atomic size_t tasks;
};

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/// Claims and runs tasks of generation `gen` until none is left (or a newer loop started).
static void run_tasks(kiln_thread_pool *pool, uint32_t gen, kiln_task_fn fn, void *context, size_t tasks) {
    uint64_t v = atomic_load_explicit(&pool->state, memory_order_acquire);
    for (;;) {
        if ((uint32_t)(v >> 32) != gen || (v & 0xffffffffu) >= tasks) return;
        if (!atomic_compare_exchange_weak_explicit(&pool->state, &v, v + 1, memory_order_acq_rel, memory_order_acquire))
            continue;
        fn(context, (size_t)(v & 0xffffffffu));
        atomic_fetch_add_explicit(&pool->done, 1, memory_order_release);
        v = atomic_load_explicit(&pool->state, memory_order_acquire);
    }
}

static void *worker_main(void *arg) {
    kiln_thread_pool *pool = arg;
    uint32_t seen = 0;
    for (;;) {
        uint32_t g = (uint32_t)(atomic_load_explicit(&pool->state, memory_order_acquire) >> 32);
        if (g == seen) {
            uint64_t start = now_ns();
            unsigned spins = 0;
            while ((g = (uint32_t)(atomic_load_explicit(&pool->state, memory_order_acquire) >> 32)) == seen) {
                CPU_RELAX();
                if (++spins % 256 == 0 && now_ns() - start > KILN_SPIN_NS) break;
            }
            if (g == seen) {
                pthread_mutex_lock(&pool->mutex);
                atomic_fetch_add(&pool->sleepers, 1);
                while ((g = (uint32_t)(atomic_load(&pool->state) >> 32)) == seen) pthread_cond_wait(&pool->wake, &pool->mutex);
                atomic_fetch_sub(&pool->sleepers, 1);
                pthread_mutex_unlock(&pool->mutex);
            }
        }
        seen = g;
        if (atomic_load_explicit(&pool->stop, memory_order_acquire)) return NULL;
        // The loop's parameters were written before its generation was published. If the
        // caller has already finished this loop and started another, the claims below fail
        // (they carry the generation), so stale parameters are never used.
        kiln_task_fn fn = atomic_load_explicit(&pool->fn, memory_order_relaxed);
        void *context = atomic_load_explicit(&pool->context, memory_order_relaxed);
        size_t tasks = atomic_load_explicit(&pool->tasks, memory_order_relaxed);
        // Pairs with the release fence in run: parameters of a newer loop imply that the
        // older loop's closing (its task index saturated) is visible to the claims below.
        atomic_thread_fence(memory_order_acquire);
        run_tasks(pool, g, fn, context, tasks);
    }
}

/// Publishes a new generation (with task index 0) and wakes sleeping workers.
static uint32_t publish(kiln_thread_pool *pool) {
    uint64_t v = atomic_load(&pool->state);
    uint32_t gen = (uint32_t)(v >> 32) + 1;
    atomic_store(&pool->state, (uint64_t)gen << 32);  // sequentially consistent: pairs with `sleepers`
    if (atomic_load(&pool->sleepers) > 0) {
        pthread_mutex_lock(&pool->mutex);
        pthread_cond_broadcast(&pool->wake);
        pthread_mutex_unlock(&pool->mutex);
    }
    return gen;
}

kiln_thread_pool *kiln_thread_pool_create(size_t threads) {
    if (threads == 0) return NULL;
    kiln_thread_pool *pool = calloc(1, sizeof *pool);
    if (!pool) return NULL;
    pool->threads = threads;
    pthread_mutex_init(&pool->mutex, NULL);
    pthread_cond_init(&pool->wake, NULL);
    if (threads > 1) {
        pool->workers = calloc(threads - 1, sizeof(pthread_t));
        if (!pool->workers) {
            free(pool);
            return NULL;
        }
        for (size_t i = 0; i + 1 < threads; i++) {
            if (pthread_create(&pool->workers[i], NULL, worker_main, pool) != 0) {
                pool->threads = i + 1;  // the ones that started are joined by destroy
                kiln_thread_pool_destroy(pool);
                return NULL;
            }
        }
    }
    return pool;
}

void kiln_thread_pool_destroy(kiln_thread_pool *pool) {
    if (!pool) return;
    atomic_store(&pool->stop, 1);
    publish(pool);
    for (size_t i = 0; i + 1 < pool->threads; i++) pthread_join(pool->workers[i], NULL);
    pthread_cond_destroy(&pool->wake);
    pthread_mutex_destroy(&pool->mutex);
    free(pool->workers);
    free(pool);
}

size_t kiln_thread_pool_threads(const kiln_thread_pool *pool) { return pool ? pool->threads : 1; }

void kiln_thread_pool_run(kiln_thread_pool *pool, kiln_task_fn fn, void *context, size_t tasks) {
    if (!pool || pool->threads == 1 || tasks <= 1) {
        for (size_t t = 0; t < tasks; t++) fn(context, t);
        return;
    }
    atomic_thread_fence(memory_order_release);
    atomic_store_explicit(&pool->fn, fn, memory_order_relaxed);
    atomic_store_explicit(&pool->context, context, memory_order_relaxed);
    atomic_store_explicit(&pool->tasks, tasks, memory_order_relaxed);
    atomic_store_explicit(&pool->done, 0, memory_order_relaxed);
    uint32_t gen = publish(pool);
    run_tasks(pool, gen, fn, context, tasks);
    // Wait for the tasks workers claimed, not for the workers: one that was not scheduled in
    // time claims nothing and is not waited for.
    while (atomic_load_explicit(&pool->done, memory_order_acquire) < tasks) CPU_RELAX();
    // Close the loop: no claim can succeed for it any more, whatever parameters a late
    // worker reads next.
    atomic_store(&pool->state, ((uint64_t)gen << 32) | 0xffffffffu);
}
