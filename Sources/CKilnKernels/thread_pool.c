// A thread pool for the parallel loops of one inference at a time.
//
// A loop is published by bumping `generation`; every participant (the caller and each worker)
// takes task indices from `next_task` until none is left, then counts itself done in
// `finished`. Workers spin for a short while between loops, because consecutive kernels are
// microseconds apart and a sleeping thread takes tens of microseconds to wake; after
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
    _Atomic uint64_t generation;
    _Atomic size_t sleepers;
    _Atomic size_t next_task;
    _Atomic size_t finished;
    _Atomic int stop;
    kiln_task_fn fn;
    void *context;
    size_t tasks;
};

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void run_tasks(kiln_thread_pool *pool) {
    for (;;) {
        size_t t = atomic_fetch_add_explicit(&pool->next_task, 1, memory_order_relaxed);
        if (t >= pool->tasks) break;
        pool->fn(pool->context, t);
    }
    atomic_fetch_add_explicit(&pool->finished, 1, memory_order_release);
}

static void *worker_main(void *arg) {
    kiln_thread_pool *pool = arg;
    uint64_t seen = 0;
    for (;;) {
        uint64_t g = atomic_load_explicit(&pool->generation, memory_order_acquire);
        if (g == seen) {
            uint64_t start = now_ns();
            unsigned spins = 0;
            while ((g = atomic_load_explicit(&pool->generation, memory_order_acquire)) == seen) {
                CPU_RELAX();
                if (++spins % 256 == 0 && now_ns() - start > KILN_SPIN_NS) break;
            }
            if (g == seen) {
                pthread_mutex_lock(&pool->mutex);
                atomic_fetch_add(&pool->sleepers, 1);
                while ((g = atomic_load(&pool->generation)) == seen) pthread_cond_wait(&pool->wake, &pool->mutex);
                atomic_fetch_sub(&pool->sleepers, 1);
                pthread_mutex_unlock(&pool->mutex);
            }
        }
        seen = g;
        if (atomic_load_explicit(&pool->stop, memory_order_acquire)) return NULL;
        run_tasks(pool);
    }
}

static void publish(kiln_thread_pool *pool) {
    atomic_fetch_add(&pool->generation, 1);  // sequentially consistent: pairs with `sleepers`
    if (atomic_load(&pool->sleepers) > 0) {
        pthread_mutex_lock(&pool->mutex);
        pthread_cond_broadcast(&pool->wake);
        pthread_mutex_unlock(&pool->mutex);
    }
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
    pool->fn = fn;
    pool->context = context;
    pool->tasks = tasks;
    atomic_store_explicit(&pool->next_task, 0, memory_order_relaxed);
    atomic_store_explicit(&pool->finished, 0, memory_order_relaxed);
    publish(pool);
    run_tasks(pool);
    while (atomic_load_explicit(&pool->finished, memory_order_acquire) < pool->threads) CPU_RELAX();
}
