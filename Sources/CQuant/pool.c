// A persistent worker pool: threads are created once (on first use or when the count changes) and
// wait for work by spinning briefly, then sleeping on a condition variable, so a decoding step
// that runs ~200 products costs no thread creation and little wake-up latency.
//
// One run at a time (the decoder calls from one thread): vq_parallel publishes fn/ctx under a new
// generation number, runs index 0 itself, then waits until every worker has finished its index.
#include "CQuant.h"
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define VQ_PAUSE() _mm_pause()
#elif defined(__aarch64__)
#define VQ_PAUSE() __asm__ __volatile__("yield")
#else
#define VQ_PAUSE() ((void)0)
#endif

enum { VQ_MAX_THREADS = 256, VQ_SPIN = 20000 };

static struct {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    pthread_t tids[VQ_MAX_THREADS];
    int started;                 // workers running (threads - 1 when ready)
    int threads;                 // wanted, including the caller
    _Atomic unsigned generation; // bumped per run
    _Atomic int pending;         // workers not done with the current run
    _Atomic int sleepers;
    _Atomic int quit;
    void (*fn)(void *, int, int);
    void *ctx;
    int count;
    unsigned base;
} pool = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER };

static pthread_mutex_t config_lock = PTHREAD_MUTEX_INITIALIZER;

static void *worker(void *arg) {
    int index = (int)(intptr_t)arg;
    unsigned seen = pool.base;   // the generation when this worker was created
    for (;;) {
        unsigned g;
        int spins = 0;
        while ((g = atomic_load_explicit(&pool.generation, memory_order_acquire)) == seen) {
            if (++spins < VQ_SPIN) { VQ_PAUSE(); continue; }
            pthread_mutex_lock(&pool.lock);
            atomic_fetch_add(&pool.sleepers, 1);
            while (atomic_load(&pool.generation) == seen && !atomic_load(&pool.quit))
                pthread_cond_wait(&pool.wake, &pool.lock);
            atomic_fetch_sub(&pool.sleepers, 1);
            pthread_mutex_unlock(&pool.lock);
            spins = 0;
        }
        seen = g;
        if (atomic_load(&pool.quit)) return NULL;
        if (index < pool.count) pool.fn(pool.ctx, index, pool.count);
        atomic_fetch_sub_explicit(&pool.pending, 1, memory_order_acq_rel);
    }
}

static int online_cores(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : (n > VQ_MAX_THREADS ? VQ_MAX_THREADS : (int)n);
}

static void stop_workers(void) {
    if (pool.started == 0) return;
    pthread_mutex_lock(&pool.lock);
    atomic_store(&pool.quit, 1);
    atomic_fetch_add(&pool.generation, 1);
    pthread_cond_broadcast(&pool.wake);
    pthread_mutex_unlock(&pool.lock);
    for (int i = 0; i < pool.started; i++) pthread_join(pool.tids[i], NULL);
    pool.started = 0;
    atomic_store(&pool.quit, 0);
}

static void ensure_started(void) {
    if (pool.threads == 0) pool.threads = online_cores();
    if (pool.started == pool.threads - 1) return;
    stop_workers();
    pool.base = atomic_load(&pool.generation);
    int started = 0;
    for (int i = 1; i < pool.threads; i++) {
        if (pthread_create(&pool.tids[started], NULL, worker, (void *)(intptr_t)i) != 0) break;
        started++;
    }
    pool.started = started;
    pool.threads = started + 1;   // fewer threads when creation failed
}

void vq_set_threads(int n) {
    pthread_mutex_lock(&config_lock);
    if (n < 1) n = 1;
    if (n > VQ_MAX_THREADS) n = VQ_MAX_THREADS;
    if (n != pool.threads) {
        stop_workers();
        pool.threads = n;
    }
    pthread_mutex_unlock(&config_lock);
}

int vq_threads(void) {
    if (pool.threads == 0) return online_cores();
    return pool.threads;
}

void vq_parallel(void (*fn)(void *, int, int), void *ctx) {
    pthread_mutex_lock(&config_lock);
    ensure_started();
    int n = pool.threads;
    if (n == 1) {
        pthread_mutex_unlock(&config_lock);
        fn(ctx, 0, 1);
        return;
    }
    pool.fn = fn; pool.ctx = ctx; pool.count = n;
    atomic_store_explicit(&pool.pending, pool.started, memory_order_release);
    atomic_fetch_add(&pool.generation, 1);   // seq_cst: ordered before the sleepers check
    if (atomic_load(&pool.sleepers) > 0) {
        pthread_mutex_lock(&pool.lock);
        pthread_cond_broadcast(&pool.wake);
        pthread_mutex_unlock(&pool.lock);
    }
    fn(ctx, 0, n);
    int spins = 0;
    while (atomic_load_explicit(&pool.pending, memory_order_acquire) > 0) {
        if (++spins < VQ_SPIN) VQ_PAUSE(); else { sched_yield(); }
    }
    pthread_mutex_unlock(&config_lock);
}
