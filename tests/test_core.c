/* test_core.c -- status codes, logging, arena, worker pool, RNG, options. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/arena.h"
#include "core/error.h"
#include "core/log.h"
#include "core/pool.h"
#include "core/rng.h"
#include "testutil.h"

static void test_every_status_has_name_and_message(void **state) {
    (void)state;
    for (int32_t c = 0; c >= SMDIFF_E_LAST_; c--) {
        const char *name = smdiff_err_name(c);
        const char *msg = smdiff_strerror(c);
        assert_non_null(name);
        assert_non_null(msg);
        assert_string_not_equal(name, "SMDIFF_E_UNKNOWN");
        assert_string_not_equal(msg, "unknown error");
        assert_true(strlen(msg) > 3);
        /* Names are distinct. */
        for (int32_t d = c - 1; d >= SMDIFF_E_LAST_; d--)
            assert_string_not_equal(name, smdiff_err_name(d));
    }
    /* Pinned numbers: these must never change. */
    assert_string_equal(smdiff_err_name(0), "SMDIFF_OK");
    assert_string_equal(smdiff_err_name(-1), "SMDIFF_E_INVAL");
    assert_string_equal(smdiff_err_name(-2), "SMDIFF_E_NOMEM");
    assert_string_equal(smdiff_err_name(-3), "SMDIFF_E_RANGE");
    assert_string_equal(smdiff_err_name(-4), "SMDIFF_E_UNSUPPORTED");
    assert_string_equal(smdiff_err_name(-6), "SMDIFF_E_FORMAT");
    assert_string_equal(smdiff_err_name(-10), "SMDIFF_E_ABORTED");
    assert_string_equal(smdiff_err_name(SMDIFF_E_LAST_ - 1), "SMDIFF_E_UNKNOWN");
    assert_string_equal(smdiff_err_name(1), "SMDIFF_E_UNKNOWN");
    assert_string_equal(smdiff_strerror(-1000), "unknown error");
    assert_string_equal(smdiff_strerror(INT32_MIN), "unknown error");
}

static void test_version(void **state) {
    (void)state;
    assert_int_equal(smdiff_version_number(), SMDIFF_VERSION_NUMBER);
    assert_string_equal(smdiff_version_string(), SMDIFF_VERSION_STRING);
}

static void test_thread_local_error(void **state) {
    (void)state;
    assert_int_equal(sd_fail(NULL, SMDIFF_E_IO, "file %s missing", "x.gguf"), SMDIFF_E_IO);
    assert_string_equal(smdiff_last_error(), "file x.gguf missing");
    sd_error e;
    sd_error_clear(&e);
    assert_string_equal(e.msg, "");
    sd_fail(&e, SMDIFF_E_RANGE, "%d", 7);
    assert_string_equal(e.msg, "7");
    /* 0.2's rule: a failure recorded on an object is in the thread's slot too */
    assert_string_equal(smdiff_last_error(), "7");
    sd_error src = {SMDIFF_E_IO, "forwarded"};
    assert_int_equal(sd_error_forward(&e, &src), SMDIFF_E_IO);
    assert_string_equal(e.msg, "forwarded");
    assert_string_equal(smdiff_last_error(), "forwarded");
}

typedef struct {
    int calls;
    int32_t last_level;
    char last[128];
} log_capture;

static void capture(int32_t level, const char *message, void *ud) {
    log_capture *c = ud;
    c->calls++;
    c->last_level = level;
    snprintf(c->last, sizeof c->last, "%s", message);
}

static void test_log_callback(void **state) {
    (void)state;
    log_capture c = {0};
    sd_log(SMDIFF_LOG_ERROR, "nobody listens");
    assert_int_equal(smdiff_set_log_callback(capture, &c, SMDIFF_LOG_INFO), SMDIFF_OK);
    SD_LOGI("hello %d", 42);
    assert_int_equal(c.calls, 1);
    assert_int_equal(c.last_level, SMDIFF_LOG_INFO);
    assert_string_equal(c.last, "hello 42");
    SD_LOGD("filtered");
    assert_int_equal(c.calls, 1);
    assert_int_equal(smdiff_set_log_callback(capture, &c, 9), SMDIFF_E_RANGE);
    assert_int_equal(smdiff_set_log_callback(capture, &c, -1), SMDIFF_E_RANGE);
    assert_int_equal(smdiff_set_log_callback(NULL, NULL, SMDIFF_LOG_DEBUG), SMDIFF_OK);
    SD_LOGE("gone");
    assert_int_equal(c.calls, 1);
}

static void test_arena(void **state) {
    (void)state;
    sd_arena a;
    assert_int_equal(sd_arena_init(&a, 1000, 0), 0);
    char *p = sd_arena_alloc(&a, 10);
    assert_non_null(p);
    assert_int_equal((uintptr_t)p % SD_ALIGN, 0);
    float *f = sd_arena_floats(&a, 100);
    assert_non_null(f);
    assert_int_equal((uintptr_t)f % SD_ALIGN, 0);
    assert_true((char *)f >= p + 10);
    sd_arena_mark m = sd_arena_save(&a);
    assert_non_null(sd_arena_alloc(&a, 400));
    assert_null(sd_arena_alloc(&a, 800));  /* fixed arena: full */
    sd_arena_restore(&a, m);
    assert_non_null(sd_arena_alloc(&a, 400));
    assert_null(sd_arena_floats(&a, SIZE_MAX / 2));  /* overflow is refused */
    sd_arena_reset(&a);
    assert_int_equal(a.used_total, 0);
    assert_true(a.high_water >= 64 + 448 + 448);
    sd_arena_destroy(&a);

    assert_int_equal(sd_arena_init(&a, 128, 1), 0);
    for (int i = 0; i < 10; i++) assert_non_null(sd_arena_alloc(&a, 100));
    m = sd_arena_save(&a);
    for (int i = 0; i < 10; i++) assert_non_null(sd_arena_alloc(&a, 300));
    sd_arena_restore(&a, m);
    assert_non_null(sd_arena_alloc(&a, 10));
    sd_arena_destroy(&a);
    assert_int_equal(sd_alloc_live(), 0);
}

/* Each item's value depends only on the item, so any split agrees. */
typedef struct {
    double *out;
    int max_thread_seen;
} pool_ctx;

static void work(void *ctx, int64_t b, int64_t e, int thread) {
    pool_ctx *c = ctx;
    for (int64_t i = b; i < e; i++) {
        double x = 0;
        for (int k = 1; k <= 200; k++) x += sin((double)(i * k)) / k;
        c->out[i] = x;
    }
    if (thread > c->max_thread_seen) c->max_thread_seen = thread;
}

static void test_pool_deterministic(void **state) {
    (void)state;
    enum { N = 1001 };
    static double one[N], two[N];
    sd_pool *p1 = NULL, *p2 = NULL;
    assert_int_equal(sd_pool_create(1, &p1, NULL), SMDIFF_OK);
    assert_int_equal(sd_pool_create(2, &p2, NULL), SMDIFF_OK);
    pool_ctx c1 = {one, 0}, c2 = {two, 0};
    for (int rep = 0; rep < 20; rep++) {
        memset(two, 0, sizeof two);
        sd_pool_run(p1, work, &c1, N);
        sd_pool_run(p2, work, &c2, N);
        assert_memory_equal(one, two, sizeof one);
    }
    assert_int_equal(c1.max_thread_seen, 0);
    assert_int_equal(c2.max_thread_seen, 1);  /* the second thread really ran */
    sd_pool_run(p2, work, &c2, 0);            /* nothing to do is fine */
    sd_pool_free(p1);
    sd_pool_free(p2);
    sd_pool_free(NULL);
    assert_int_equal(sd_pool_create(0, &p1, NULL), SMDIFF_E_INVAL);

    /* Ranges cover [0,n) exactly, in order. */
    for (int n_threads = 1; n_threads <= 5; n_threads++) {
        int64_t expect = 0;
        for (int t = 0; t < n_threads; t++) {
            int64_t b, e;
            sd_pool_range(13, n_threads, t, &b, &e);
            assert_int_equal(b, expect);
            assert_true(e >= b);
            expect = e;
        }
        assert_int_equal(expect, 13);
    }
    assert_int_equal(sd_alloc_live(), 0);
}

static void test_rng_matches_numpy_stream(void **state) {
    (void)state;
    FILE *f = fopen(test_data_path("rng_philox.txt"), "r");
    assert_non_null(f);
    char line[256];
    int checked = 0;
    sd_rng r, u;
    unsigned long long cur_seed = 1, cur_stream = 1;
    int fresh = 1;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#') continue;
        unsigned long long seed, stream, value;
        int index;
        double uniform;
        assert_int_equal(sscanf(line, "%llu %llu %d %llu %lf", &seed, &stream, &index, &value, &uniform), 5);
        if (fresh || seed != cur_seed || stream != cur_stream || index == 0) {
            sd_rng_init(&r, seed, stream);
            sd_rng_init(&u, seed, stream);
            cur_seed = seed;
            cur_stream = stream;
            fresh = 0;
        }
        assert_int_equal(sd_rng_u64(&r), (uint64_t)value);
        assert_true(sd_rng_uniform(&u) == uniform);  /* bit-exact, same 53-bit map */
        checked++;
    }
    fclose(f);
    assert_int_equal(checked, 55);
}

static void test_rng_distributions(void **state) {
    (void)state;
    sd_rng r;
    sd_rng_init(&r, 7, 0);
    enum { N = 200000 };
    double s = 0, s2 = 0, g = 0;
    int below[10] = {0};
    for (int i = 0; i < N; i++) {
        double x = sd_rng_normal(&r);
        s += x;
        s2 += x * x;
        g += sd_rng_gumbel(&r);
        below[sd_rng_below(&r, 10)]++;
        float uf = sd_rng_uniformf(&r);
        assert_true(uf >= 0.0f && uf < 1.0f);
    }
    assert_true(fabs(s / N) < 0.01);
    assert_true(fabs(s2 / N - 1.0) < 0.02);
    assert_true(fabs(g / N - 0.5772156649) < 0.02);  /* Euler-Mascheroni */
    for (int k = 0; k < 10; k++) assert_true(abs(below[k] - N / 10) < 800);

    /* Split streams depend on the key and id only. */
    sd_rng a, b, c1, c2;
    sd_rng_init(&a, 5, 1);
    sd_rng_init(&b, 5, 1);
    for (int i = 0; i < 9; i++) sd_rng_u64(&b);
    sd_rng_split(&a, 3, &c1);
    sd_rng_split(&b, 3, &c2);
    assert_int_equal(sd_rng_u64(&c1), sd_rng_u64(&c2));
    sd_rng_split(&a, 4, &c2);
    assert_int_not_equal(sd_rng_u64(&c1), sd_rng_u64(&c2));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_status_has_name_and_message),
        cmocka_unit_test(test_version),
        cmocka_unit_test(test_thread_local_error),
        cmocka_unit_test(test_log_callback),
        cmocka_unit_test(test_arena),
        cmocka_unit_test(test_pool_deterministic),
        cmocka_unit_test(test_rng_matches_numpy_stream),
        cmocka_unit_test(test_rng_distributions),
    };
    return cmocka_run_group_tests_name("core", tests, NULL, NULL);
}
