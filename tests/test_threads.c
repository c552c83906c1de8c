/* test_threads.c -- object lifetimes across threads (smdiff.h, "Threads and
 * lifetimes"):
 *  - the last reference to a model dropped by another thread while a
 *    generation runs: the generation holds its own reference, finishes with
 *    the same tokens as an undisturbed one, and the model is destroyed when
 *    it returns (no allocation left);
 *  - the same for evaluation and for logits;
 *  - four threads generating with one model, each on its own reference
 *    (smdiff_model_retain before the thread starts), while the creator drops
 *    its reference at once;
 *  - concurrent logits on one model (its worker pool serves one caller at a
 *    time, the others run inline).
 * `make check-tsan` runs this program built with ThreadSanitizer (CI does),
 * which fails on any data race; `make check` runs it as a plain test. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "smdiff/smdiff.h"
#include "testutil.h"

static smdiff_model *load(void) {
    smdiff_model *m = NULL;
    assert_int_equal(smdiff_model_create(&m), SMDIFF_OK);
    assert_int_equal(smdiff_model_set_int(m, SMDIFF_MODEL_THREADS, 2), SMDIFF_OK);
    assert_int_equal(smdiff_model_load_file(m, test_data_path("tiny_dream_f32.gguf")), SMDIFF_OK);
    return m;
}

/* A handshake: the worker says it has started, the main thread says it
 * has freed the model. */
typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int started, freed;
} handshake;

static void hs_init(handshake *h) {
    pthread_mutex_init(&h->mu, NULL);
    pthread_cond_init(&h->cv, NULL);
    h->started = h->freed = 0;
}

static void hs_set(handshake *h, int *flag) {
    pthread_mutex_lock(&h->mu);
    *flag = 1;
    pthread_cond_broadcast(&h->cv);
    pthread_mutex_unlock(&h->mu);
}

static void hs_wait(handshake *h, int *flag) {
    pthread_mutex_lock(&h->mu);
    while (!*flag) pthread_cond_wait(&h->cv, &h->mu);
    pthread_mutex_unlock(&h->mu);
}

static void hs_destroy(handshake *h) {
    pthread_mutex_destroy(&h->mu);
    pthread_cond_destroy(&h->cv);
}

typedef struct {
    smdiff_model *m;
    handshake *hs;
    int what; /* 0 generate, 1 ELBO */
    int32_t rc;
    int32_t out[16];
    size_t n_out;
    double nll;
} job;

/* After the first step the main thread frees the model; the run goes on. */
static int32_t on_step(size_t step, size_t n_steps, const int32_t *canvas, const uint8_t *committed,
                       const float *lambda, size_t n, void *ud) {
    (void)n_steps, (void)canvas, (void)committed, (void)lambda, (void)n;
    job *j = ud;
    if (step == 0 && j->hs) {
        hs_set(j->hs, &j->hs->started);
        hs_wait(j->hs, &j->hs->freed);
    }
    return 0;
}

static const int32_t prompt[4] = {3, 1, 4, 1};

static void *generate(void *arg) {
    job *j = arg;
    smdiff_sampler *s = NULL;
    if (smdiff_sampler_create(&s)) abort();
    smdiff_sampler_set_int(s, SMDIFF_SAMPLER_GEN_LENGTH, 16);
    smdiff_sampler_set_int(s, SMDIFF_SAMPLER_STEPS, 8);
    smdiff_sampler_set_int(s, SMDIFF_SAMPLER_THREADS, 2);
    smdiff_sampler_set_int(s, SMDIFF_SAMPLER_STOP_AT_EOS, 0);
    smdiff_sampler_set_step_callback(s, on_step, j);
    j->rc = smdiff_generate_tokens(s, j->m, prompt, 4, j->out, 16, &j->n_out);
    smdiff_sampler_free(s);
    return NULL;
}

static void test_free_while_generating(void **state) {
    (void)state;
    /* the undisturbed result */
    job ref = {load(), NULL, 0, -1, {0}, 0, 0};
    generate(&ref);
    assert_int_equal(ref.rc, SMDIFF_OK);
    smdiff_model_free(ref.m);
    assert_int_equal(sd_alloc_live(), 0);

    handshake hs;
    hs_init(&hs);
    job j = {load(), &hs, 0, -1, {0}, 0, 0};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, generate, &j), 0);
    hs_wait(&hs, &hs.started);
    smdiff_model_free(j.m); /* the last reference of the caller's */
    hs_set(&hs, &hs.freed);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(j.rc, SMDIFF_OK);
    assert_int_equal(j.n_out, ref.n_out);
    assert_memory_equal(j.out, ref.out, sizeof j.out);
    assert_int_equal(sd_alloc_live(), 0); /* destroyed when the generation returned */
    hs_destroy(&hs);
}

/* ELBO and logits: the main thread frees the model while they run (no
 * callback here: it frees as soon as the worker says it is about to call,
 * and the result must be right either way). */
static void *evaluate(void *arg) {
    job *j = arg;
    int32_t w[32];
    for (int i = 0; i < 32; i++) w[i] = (i * 7) % 150;
    hs_set(j->hs, &j->hs->started);
    if (j->what == 1) {
        j->rc = smdiff_eval_elbo(j->m, w, 2, 0, 16, 4, 1, 1, 2, &j->nll, NULL);
    } else {
        int32_t rows[4] = {0, 5, 9, 15};
        float *logits = malloc(sizeof(float) * 4 * 160);
        j->rc = smdiff_model_logits(j->m, w, 16, rows, 4, logits, 4 * 160);
        free(logits);
    }
    return NULL;
}

static void test_free_while_evaluating(void **state) {
    (void)state;
    for (int what = 1; what >= 0; what--) {
        handshake hs;
        hs_init(&hs);
        job j = {load(), &hs, what, -1, {0}, 0, 0};
        /* the worker's own reference, as the API asks of a thread that
         * may start after its creator lets go */
        assert_int_equal(smdiff_model_retain(j.m), SMDIFF_OK);
        pthread_t t;
        assert_int_equal(pthread_create(&t, NULL, evaluate, &j), 0);
        hs_wait(&hs, &hs.started);
        smdiff_model_free(j.m);
        assert_int_equal(pthread_join(t, NULL), 0);
        assert_int_equal(j.rc, SMDIFF_OK);
        smdiff_model_free(j.m); /* the worker's */
        assert_int_equal(sd_alloc_live(), 0);
        hs_destroy(&hs);
    }
}

static void *generate_and_release(void *arg) {
    job *j = arg;
    generate(j);
    smdiff_model_free(j->m);
    return NULL;
}

static void test_shared_model(void **state) {
    (void)state;
    enum { N = 4 };
    smdiff_model *m = load();
    job jobs[N];
    pthread_t t[N];
    for (int i = 0; i < N; i++) {
        jobs[i] = (job){m, NULL, 0, -1, {0}, 0, 0};
        assert_int_equal(smdiff_model_retain(m), SMDIFF_OK);
        assert_int_equal(pthread_create(&t[i], NULL, generate_and_release, &jobs[i]), 0);
    }
    smdiff_model_free(m); /* the creator lets go at once */
    for (int i = 0; i < N; i++) {
        assert_int_equal(pthread_join(t[i], NULL), 0);
        assert_int_equal(jobs[i].rc, SMDIFF_OK);
        if (i) assert_memory_equal(jobs[i].out, jobs[0].out, sizeof jobs[i].out);
    }
    assert_int_equal(sd_alloc_live(), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_free_while_generating),
        cmocka_unit_test(test_free_while_evaluating),
        cmocka_unit_test(test_shared_model),
    };
    return cmocka_run_group_tests_name("threads", tests, NULL, NULL);
}
