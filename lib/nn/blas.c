#include <cblas.h>
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "blas.h"

/* OpenBLAS extras; declared here so we do not depend on which cblas.h
 * variant (openblas or reference) the include path picks. */
extern void openblas_set_num_threads(int num_threads);
extern int openblas_get_num_threads(void);
extern char *openblas_get_corename(void);

void sd_sgemm(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, float alpha,
              const float *A, int64_t lda, const float *B, int64_t ldb, float beta, float *C,
              int64_t ldc) {
    if (M <= 0 || N <= 0) return;
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                trans_b ? CblasTrans : CblasNoTrans, (blasint)M, (blasint)N, (blasint)K, alpha, A,
                (blasint)lda, B, (blasint)ldb, beta, C, (blasint)ldc);
}

/* cblas_sbgemm(order, transA, transB, M, N, K, alpha, A(bf16), lda, B(bf16), ldb, beta, C, ldc) */
typedef void (*sbgemm_fn)(int, int, int, blasint, blasint, blasint, float, const uint16_t *,
                          blasint, const uint16_t *, blasint, float, float *, blasint);

static sbgemm_fn resolve_sbgemm(void) {
    static _Atomic(int) state = 0;  /* 0 unknown, 1 absent, 2 present */
    static sbgemm_fn fn = NULL;
    int s = atomic_load(&state);
    if (s == 0) {
        void *sym = dlsym(RTLD_DEFAULT, "cblas_sbgemm");
        /* A data-to-function pointer conversion through memcpy-free union. */
        union {
            void *p;
            sbgemm_fn f;
        } u;
        u.p = sym;
        fn = u.f;
        atomic_store(&state, sym ? 2 : 1);
        s = sym ? 2 : 1;
    }
    return s == 2 ? fn : NULL;
}

int sd_sbgemm_available(void) { return resolve_sbgemm() != NULL; }

int sd_sbgemm(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, float alpha,
              const uint16_t *A, int64_t lda, const uint16_t *B, int64_t ldb, float beta,
              float *C, int64_t ldc) {
    sbgemm_fn fn = resolve_sbgemm();
    if (!fn) return -1;
    if (M <= 0 || N <= 0) return 0;
    fn(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
       (blasint)M, (blasint)N, (blasint)K, alpha, A, (blasint)lda, B, (blasint)ldb, beta, C,
       (blasint)ldc);
    return 0;
}

void sd_blas_set_threads(int n) {
    if (n < 1) n = 1;
    if (openblas_get_num_threads() != n) openblas_set_num_threads(n);
}

int sd_blas_get_threads(void) { return openblas_get_num_threads(); }

const char *sd_blas_corename(void) {
    const char *name = openblas_get_corename();
    return name ? name : "unknown";
}

/* ------------------------------------------------- address-space guard
 *
 * OpenBLAS takes a work buffer of SD_BLAS_BUFFER_BYTES for each thread
 * that calls a GEMM (the caller) and one for each of its worker threads
 * (when the worker starts), and keeps them. When the buffer cannot be
 * mapped -- a process under `ulimit -v` or `ulimit -d` -- it retries for
 * ever (0.3.21, blas_memory_alloc), so the call never returns. smdiff
 * therefore checks, before raising the number of callers or workers, that
 * the new buffers would fit (a trial mapping of their size, released at
 * once), and fails with SMDIFF_E_NOMEM when they would not. Without a
 * finite limit nothing is checked. The check cannot see allocations of
 * other threads made between it and OpenBLAS's, nor workers that OpenBLAS
 * started before main() (docs/RELIABILITY.md, "Memory limits"). */

static pthread_mutex_t guard_mu = PTHREAD_MUTEX_INITIALIZER;
static atomic_int guard_active;  /* callers between sd_blas_enter and sd_blas_leave */
static int guard_callers;        /* concurrent callers whose buffers are known to fit */
static int guard_workers = -1;   /* most OpenBLAS threads known to exist (-1: not yet read) */
/* Bytes of buffers and stacks approved since no product ran: OpenBLAS maps
 * them later (a worker's when it starts, asynchronously; a caller's at its
 * first product), so a trial mapping alone would count the same free space
 * twice -- an approved worker and an approved caller each fitting, both
 * together not, and OpenBLAS looping. Each check adds them in; when the
 * last caller leaves, they are mapped and the free space shows it. */
static uint64_t guard_pending;

/* The tighter of RLIMIT_AS and RLIMIT_DATA in bytes, or 0 without one. */
static uint64_t address_limit(void) {
    uint64_t lim = 0;
    const int which[2] = {RLIMIT_AS, RLIMIT_DATA};
    for (int i = 0; i < 2; i++) {
        struct rlimit r;
        if (getrlimit(which[i], &r) == 0 && r.rlim_cur != RLIM_INFINITY && (!lim || (uint64_t)r.rlim_cur < lim))
            lim = (uint64_t)r.rlim_cur;
    }
    return lim;
}

/* Whether bytes more of private writable memory can be mapped now. */
static int fits(uint64_t bytes) {
    if (bytes > SIZE_MAX) return 0;
    void *p = mmap(NULL, (size_t)bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) return 0;
    munmap(p, (size_t)bytes);
    return 1;
}

/* The process's mapped address space in bytes (/proc/self/statm), or 0
 * when it cannot be read. */
static uint64_t mapped_bytes(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long long pages = 0;
    if (!f) return 0;
    if (fscanf(f, "%llu", &pages) != 1) pages = 0;
    fclose(f);
    return (uint64_t)pages * (uint64_t)sysconf(_SC_PAGESIZE);
}

/* Wait (at most 2 s) until the address space has grown by `grow` bytes
 * from `from`: new OpenBLAS workers map their buffers as they start, in
 * their own threads; until they have, the free space a later check sees
 * still holds them. 0 when they have, -1 otherwise. */
static int wait_mapped(uint64_t from, uint64_t grow) {
    for (int i = 0; i < 2000; i++) {
        uint64_t now = mapped_bytes();
        if (!now || now >= from + grow) return now ? 0 : -1;
        nanosleep(&(struct timespec){0, 1000000}, NULL);
    }
    return -1;
}

/* A new worker's stack (glibc's default: RLIMIT_STACK, 8 MiB if unlimited). */
static uint64_t thread_stack_bytes(void) {
    struct rlimit r;
    if (getrlimit(RLIMIT_STACK, &r) == 0 && r.rlim_cur != RLIM_INFINITY) return (uint64_t)r.rlim_cur;
    return (uint64_t)8 << 20;
}

static int32_t no_room(sd_error *err, const char *what, int n, uint64_t bytes) {
    return sd_fail(err, SMDIFF_E_NOMEM,
                   "not enough address space for %s (%d x %llu MiB for OpenBLAS's work buffers) under the "
                   "process's memory limit of %llu MiB (ulimit -v / -d): raise the limit or use fewer threads",
                   what, n, (unsigned long long)(bytes >> 20), (unsigned long long)(address_limit() >> 20));
}

int32_t sd_blas_reserve_threads(int n, sd_error *err) {
    if (n < 1) n = 1;
    pthread_mutex_lock(&guard_mu);
    if (guard_workers < 0) guard_workers = openblas_get_num_threads();
    int32_t rc = SMDIFF_OK;
    if (n > guard_workers && address_limit()) {
        int added = n - guard_workers;
        uint64_t each = SD_BLAS_BUFFER_BYTES + thread_stack_bytes(), need = each * (uint64_t)added;
        uint64_t before = mapped_bytes();
        if (!fits(guard_pending + need)) {
            rc = no_room(err, "more BLAS threads", added, each);
        } else {
            sd_blas_set_threads(n);
            guard_workers = n;
            /* their buffers are mapped before anything else may take the
             * room; when that cannot be seen, count them as pending */
            if (wait_mapped(before, SD_BLAS_BUFFER_BYTES * (uint64_t)added) != 0) guard_pending += need;
        }
    } else {
        if (n > guard_workers) guard_workers = n;
        sd_blas_set_threads(n);
    }
    pthread_mutex_unlock(&guard_mu);
    return rc;
}

int32_t sd_blas_enter(sd_error *err) {
    int n = atomic_fetch_add(&guard_active, 1) + 1;
    int32_t rc = SMDIFF_OK;
    pthread_mutex_lock(&guard_mu);
    if (n > guard_callers) {
        uint64_t need = SD_BLAS_BUFFER_BYTES * (uint64_t)(n - guard_callers);
        if (!address_limit()) guard_callers = n;
        else if (!fits(guard_pending + need)) rc = no_room(err, "a matrix product", n - guard_callers, SD_BLAS_BUFFER_BYTES);
        else guard_callers = n, guard_pending += need;
    }
    pthread_mutex_unlock(&guard_mu);
    if (rc) atomic_fetch_sub(&guard_active, 1);
    return rc;
}

void sd_blas_leave(void) {
    if (atomic_fetch_sub(&guard_active, 1) != 1) return;
    pthread_mutex_lock(&guard_mu);
    guard_pending = 0;
    pthread_mutex_unlock(&guard_mu);
}
