/* pool.h -- a small fork-join worker pool on libuv threads.
 *
 * sd_pool_run splits [0, n_items) into one contiguous range per thread and
 * runs fn on each range; the calling thread takes range 0. The split is a
 * pure function of (n_items, n_threads), so work that computes each item
 * independently gives identical results on any thread count.
 *
 * Uses only uv_thread_*, uv_mutex_* and uv_cond_*; never libuv's global
 * threadpool or allocator. A pool serves one caller at a time.
 */
#ifndef SD_CORE_POOL_H
#define SD_CORE_POOL_H

#include <stdint.h>

#include "error.h"

typedef struct sd_pool sd_pool;

/* fn(ctx, begin, end, thread_index) processes items [begin, end). */
typedef void (*sd_pool_fn)(void *ctx, int64_t begin, int64_t end, int thread);

/* n_threads >= 1 (the caller counts as one). */
int32_t sd_pool_create(int n_threads, sd_pool **out, sd_error *err);
void sd_pool_free(sd_pool *pool);  /* joins the workers; accepts NULL */
int sd_pool_threads(const sd_pool *pool);

/* Run and wait. With one thread, or n_items < 2, runs inline. */
void sd_pool_run(sd_pool *pool, sd_pool_fn fn, void *ctx, int64_t n_items);

/* The range of items thread t gets out of n_items on n threads. */
void sd_pool_range(int64_t n_items, int n, int t, int64_t *begin, int64_t *end);

/* Number of online CPUs (>= 1); resolves a "0 = all" thread setting. */
int sd_cpu_count(void);

#endif
