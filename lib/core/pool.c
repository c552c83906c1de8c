#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>
#include <uv.h>

#include "alloc.h"
#include "pool.h"

/* Whether a new thread's stack (RLIMIT_STACK, 8 MiB if unlimited) and a
 * margin for its guard page and thread block can be mapped now. */
static int stack_fits(void) {
    struct rlimit r;
    size_t n = getrlimit(RLIMIT_STACK, &r) == 0 && r.rlim_cur != RLIM_INFINITY ? (size_t)r.rlim_cur : (size_t)8 << 20;
    n += (size_t)1 << 20;
    void *m = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED) return 0;
    munmap(m, n);
    return 1;
}

struct sd_pool {
    int n_threads;
    int n_workers;          /* n_threads - 1 */
    uv_thread_t *workers;
    uv_mutex_t mutex;
    uv_cond_t wake;         /* workers wait here for a new generation */
    uv_cond_t done;         /* the caller waits here for pending == 0 */
    uint64_t generation;    /* bumped per job */
    int pending;            /* workers still running the current job */
    int stopping;
    sd_pool_fn fn;
    void *ctx;
    int64_t n_items;
};

typedef struct {
    sd_pool *pool;
    int index;  /* 1..n_workers; the caller is 0 */
} worker_arg;

void sd_pool_range(int64_t n_items, int n, int t, int64_t *begin, int64_t *end) {
    int64_t base = n_items / n, rem = n_items % n;
    *begin = t * base + (t < rem ? t : rem);
    *end = *begin + base + (t < rem ? 1 : 0);
}

static void worker_main(void *arg) {
    worker_arg *wa = arg;
    sd_pool *p = wa->pool;
    uint64_t seen = 0;
    for (;;) {
        uv_mutex_lock(&p->mutex);
        while (p->generation == seen && !p->stopping) uv_cond_wait(&p->wake, &p->mutex);
        if (p->stopping) {
            uv_mutex_unlock(&p->mutex);
            return;
        }
        seen = p->generation;
        sd_pool_fn fn = p->fn;
        void *ctx = p->ctx;
        int64_t n_items = p->n_items;
        uv_mutex_unlock(&p->mutex);

        int64_t b, e;
        sd_pool_range(n_items, p->n_threads, wa->index, &b, &e);
        if (b < e) fn(ctx, b, e, wa->index);

        uv_mutex_lock(&p->mutex);
        if (--p->pending == 0) uv_cond_signal(&p->done);
        uv_mutex_unlock(&p->mutex);
    }
}

int32_t sd_pool_create(int n_threads, sd_pool **out, sd_error *err) {
    if (n_threads < 1) return sd_fail(err, SMDIFF_E_INVAL, "pool needs at least one thread");
    sd_pool *p = sd_calloc(1, sizeof *p);
    if (!p) return sd_fail(err, SMDIFF_E_NOMEM, "out of memory creating a worker pool");
    p->n_threads = n_threads;
    p->n_workers = 0;
    if (uv_mutex_init(&p->mutex) != 0) {
        sd_free(p);
        return sd_fail(err, SMDIFF_E_THREAD, "uv_mutex_init failed");
    }
    if (uv_cond_init(&p->wake) != 0) {
        uv_mutex_destroy(&p->mutex);
        sd_free(p);
        return sd_fail(err, SMDIFF_E_THREAD, "uv_cond_init failed");
    }
    if (uv_cond_init(&p->done) != 0) {
        uv_cond_destroy(&p->wake);
        uv_mutex_destroy(&p->mutex);
        sd_free(p);
        return sd_fail(err, SMDIFF_E_THREAD, "uv_cond_init failed");
    }
    if (n_threads > 1) {
        /* One allocation holds the thread handles and their arguments. */
        size_t each = sizeof(uv_thread_t) + sizeof(worker_arg);
        char *mem = sd_calloc((size_t)(n_threads - 1), each);
        if (!mem) {
            sd_pool_free(p);
            return sd_fail(err, SMDIFF_E_NOMEM, "out of memory creating a worker pool");
        }
        p->workers = (uv_thread_t *)mem;
        worker_arg *args = (worker_arg *)(mem + (size_t)(n_threads - 1) * sizeof(uv_thread_t));
        for (int i = 0; i < n_threads - 1; i++) {
            args[i].pool = p;
            args[i].index = i + 1;
            int e = uv_thread_create(&p->workers[i], worker_main, &args[i]);
            if (e != 0) {
                /* EAGAIN is no memory for the thread's stack (ulimit -v)
                 * or too many threads (ulimit -u): a stack's worth of
                 * address space that cannot be mapped tells them apart
                 * (asked before the started workers' stacks are freed) */
                int nomem = e == UV_ENOMEM || (e == UV_EAGAIN && !stack_fits());
                sd_pool_free(p);
                return sd_fail(err, nomem ? SMDIFF_E_NOMEM : SMDIFF_E_THREAD, "could not start worker thread %d: %s",
                               i + 1, nomem ? "no memory for its stack (ulimit -v?)" : uv_strerror(e));
            }
            p->n_workers = i + 1;
        }
    }
    *out = p;
    return SMDIFF_OK;
}

void sd_pool_free(sd_pool *p) {
    if (!p) return;
    uv_mutex_lock(&p->mutex);
    p->stopping = 1;
    uv_cond_broadcast(&p->wake);
    uv_mutex_unlock(&p->mutex);
    for (int i = 0; i < p->n_workers; i++) uv_thread_join(&p->workers[i]);
    uv_cond_destroy(&p->done);
    uv_cond_destroy(&p->wake);
    uv_mutex_destroy(&p->mutex);
    sd_free(p->workers);
    sd_free(p);
}

int sd_pool_threads(const sd_pool *p) { return p->n_threads; }

void sd_pool_run(sd_pool *p, sd_pool_fn fn, void *ctx, int64_t n_items) {
    if (n_items <= 0) return;
    if (!p || p->n_threads == 1 || n_items < 2) {
        fn(ctx, 0, n_items, 0);
        return;
    }
    uv_mutex_lock(&p->mutex);
    p->fn = fn;
    p->ctx = ctx;
    p->n_items = n_items;
    p->pending = p->n_workers;
    p->generation++;
    uv_cond_broadcast(&p->wake);
    uv_mutex_unlock(&p->mutex);

    int64_t b, e;
    sd_pool_range(n_items, p->n_threads, 0, &b, &e);
    if (b < e) fn(ctx, b, e, 0);

    uv_mutex_lock(&p->mutex);
    while (p->pending > 0) uv_cond_wait(&p->done, &p->mutex);
    uv_mutex_unlock(&p->mutex);
}

int sd_cpu_count(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : (int)n;
}
