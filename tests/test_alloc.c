/* test_alloc.c -- allocation through the host's hooks, and failure
 * injected at every allocation point: each failing call returns
 * SMDIFF_E_NOMEM and, once the caller frees what it got, nothing leaks. */
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/arena.h"
#include "core/pool.h"
#include "smdiff/smdiff.h"
#include "smdiff/smdiff_decoder.h"
#include "testutil.h"

typedef struct {
    long allocs, frees;
    long fail_at;  /* fail the allocation with this index (0-based); -1 never */
    long tag;
} hook_state;

static void *hook_alloc(size_t n, void *ud) {
    hook_state *h = ud;
    if (h->fail_at >= 0 && h->allocs == h->fail_at) {
        h->fail_at = -2;  /* one failure per run: later calls see memory again */
        return NULL;
    }
    h->allocs++;
    return malloc(n);
}

static void hook_free(void *p, void *ud) {
    hook_state *h = ud;
    if (p) h->frees++;
    free(p);
}

static int32_t pick(const smdiff_step_view *v, int32_t *c, int32_t *nc, int32_t *r, int32_t *nr,
                    void *ud) {
    (void)v, (void)c, (void)r, (void)ud;
    *nc = 0;
    *nr = 0;
    return SMDIFF_OK;
}

/* Everything the library allocates in this version, through its public and
 * internal entry points. Returns the first failing status (or OK) and
 * frees whatever it obtained. */
static int32_t scenario(void) {
    int32_t rc;
    smdiff_model *m = NULL;
    smdiff_sampler *s = NULL;
    smdiff_softmask *sm = NULL, *copy = NULL;
    sd_pool *pool = NULL;
    sd_arena arena = {0};
    int registered = 0;
    if ((rc = smdiff_model_create(&m))) goto out;
    if ((rc = smdiff_sampler_create(&s))) goto out;
    if ((rc = smdiff_softmask_create(&sm))) goto out;
    if ((rc = smdiff_softmask_clone(sm, &copy))) goto out;
    if ((rc = smdiff_sampler_set_softmask(s, copy))) goto out;
    smdiff_decoder d;
    memset(&d, 0, sizeof d);
    d.struct_size = sizeof d;
    d.abi_version = SMDIFF_DECODER_ABI_VERSION;
    d.name = "alloc_probe";
    d.description = "a description that must be copied";
    d.select = pick;
    if ((rc = smdiff_decoder_register(&d, NULL))) goto out;
    registered = 1;
    if ((rc = smdiff_sampler_set_strategy(s, "alloc_probe"))) goto out;
    /* model loading and a forward pass (nn) */
    if ((rc = smdiff_model_set_int(m, SMDIFF_MODEL_THREADS, 2))) goto out;
    if ((rc = smdiff_model_load_file(m, "tests/data/tiny_dream_f16.gguf"))) goto out;
    int32_t ids[5] = {3, 1, 4, 1, 5}, rows[2] = {4, 0};
    float logits[2 * 160];
    if ((rc = smdiff_model_logits(m, ids, 5, rows, 2, logits, 2 * 160))) goto out;
    /* a generation: the sampler's workspace, pool and forward scratch */
    int32_t gen[4];
    size_t n_gen;
    if ((rc = smdiff_sampler_set_int(s, SMDIFF_SAMPLER_GEN_LENGTH, 4)) ||
        (rc = smdiff_sampler_set_int(s, SMDIFF_SAMPLER_STEPS, 2)) ||
        (rc = smdiff_sampler_set_int(s, SMDIFF_SAMPLER_THREADS, 2)) ||
        (rc = smdiff_sampler_set_double(s, SMDIFF_SAMPLER_TOP_P, 0.9)) ||
        (rc = smdiff_generate_tokens(s, m, ids, 3, gen, 4, &n_gen)))
        goto out;
    if ((rc = sd_pool_create(2, &pool, NULL))) goto out;
    if (sd_arena_init(&arena, 4096, 1) != 0) {
        rc = SMDIFF_E_NOMEM;
        goto out;
    }
    for (int i = 0; i < 3; i++)
        if (!sd_arena_alloc(&arena, 3000)) {
            rc = SMDIFF_E_NOMEM;
            goto out;
        }
    void *grown = sd_malloc(10);
    if (!grown) {
        rc = SMDIFF_E_NOMEM;
        goto out;
    }
    void *bigger = sd_realloc(grown, 1000);
    if (!bigger) {
        sd_free(grown);
        rc = SMDIFF_E_NOMEM;
        goto out;
    }
    sd_free(bigger);
out:
    sd_arena_destroy(&arena);
    sd_pool_free(pool);
    if (registered) smdiff_decoder_unregister("alloc_probe");
    smdiff_softmask_free(copy);
    smdiff_softmask_free(sm);
    smdiff_sampler_free(s);
    smdiff_model_free(m);
    return rc;
}

static void test_every_allocation_point(void **state) {
    (void)state;
    hook_state h = {0, 0, -1, 0};
    assert_int_equal(smdiff_set_allocator(hook_alloc, hook_free, &h), SMDIFF_OK);
    assert_int_equal(scenario(), SMDIFF_OK);
    long total = h.allocs;
    assert_true(total >= 10);  /* the scenario really allocates */
    assert_int_equal(h.allocs, h.frees);

    for (long k = 0; k < total; k++) {
        h.allocs = h.frees = 0;
        h.fail_at = k;
        int32_t rc = scenario();
        assert_int_equal(h.fail_at, -2);  /* the failure was injected */
        assert_int_equal(rc, SMDIFF_E_NOMEM);
        assert_int_equal(h.allocs, h.frees);  /* nothing leaked */
        assert_int_equal(sd_alloc_live(), 0);
    }
    assert_int_equal(smdiff_set_allocator(NULL, NULL, NULL), SMDIFF_OK);
}

static void test_allocator_guard(void **state) {
    (void)state;
    hook_state h = {0, 0, -1, 0};
    assert_int_equal(smdiff_set_allocator(hook_alloc, NULL, &h), SMDIFF_E_INVAL);
    assert_int_equal(smdiff_set_allocator(NULL, hook_free, &h), SMDIFF_E_INVAL);
    smdiff_sampler *s = NULL;
    assert_int_equal(smdiff_sampler_create(&s), SMDIFF_OK);
    /* Swapping hooks under live memory would free with the wrong function. */
    assert_int_equal(smdiff_set_allocator(hook_alloc, hook_free, &h), SMDIFF_E_STATE);
    assert_true(strlen(smdiff_last_error()) > 0);
    smdiff_sampler_free(s);
    assert_int_equal(smdiff_set_allocator(hook_alloc, hook_free, &h), SMDIFF_OK);
    assert_int_equal(smdiff_sampler_create(&s), SMDIFF_OK);
    assert_int_equal(h.allocs, 1);
    smdiff_sampler_free(s);
    assert_int_equal(h.frees, 1);
    assert_int_equal(smdiff_set_allocator(NULL, NULL, NULL), SMDIFF_OK);
}

static void test_alignment_and_overflow(void **state) {
    (void)state;
    for (size_t n = 1; n < 300; n += 37) {
        void *p = sd_malloc(n);
        assert_non_null(p);
        assert_int_equal((uintptr_t)p % SD_ALIGN, 0);
        sd_free(p);
    }
    assert_null(sd_malloc(SIZE_MAX - 8));
    assert_null(sd_calloc(SIZE_MAX / 2, 4));
    unsigned char *z = sd_calloc(16, 4);
    for (int i = 0; i < 64; i++) assert_int_equal(z[i], 0);
    z[3] = 9;
    z = sd_realloc(z, 4096);
    assert_int_equal(z[3], 9);
    sd_free(z);
    sd_free(NULL);
    assert_int_equal(sd_alloc_live(), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_allocation_point),
        cmocka_unit_test(test_allocator_guard),
        cmocka_unit_test(test_alignment_and_overflow),
    };
    return cmocka_run_group_tests_name("alloc", tests, NULL, NULL);
}
