/* test_sampler_defaults.c -- defaults a sampler settles against the model
 * at each run (smdiff.h, sampler section):
 *  - a model that stores learned soft-mask parameters is decoded with them
 *    unless the caller set a schedule: the same tokens as with the model's
 *    schedule set explicitly, and soft-mask weights of the learned size,
 *    where the reference schedule (omega_s 1e-6) gives weights near 0;
 *  - gen_length left at its default is clamped to the context left after
 *    the prompt (steps with it); one set that does not fit, or a prompt
 *    that fills the context, fails with a message naming the limit; the
 *    options read back as set;
 *  - `smdiff generate -p TEXT` with no other flag works on the bundled
 *    model (its context is 128 tokens, the default gen_length 128). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "smdiff/smdiff.h"
#include "testutil.h"

enum { V = 24, CTX = 16 };
static char path[256];
static smdiff_model *model;

/* A tiny dream model whose file stores a live soft-mask: omega_s 0.6, a
 * gentle steepness and a centre far below -H, so lambda is about 0.6. */
static int setup(void **state) {
    (void)state;
    snprintf(path, sizeof path, "/tmp/smdiff_test_sampler_defaults_%d.gguf", (int)getpid());
    smdiff_trainer *t = NULL;
    smdiff_softmask *sm = NULL;
    int32_t rc = smdiff_trainer_create(&t);
    if (!rc) rc = smdiff_softmask_create(&sm);
    if (!rc) rc = smdiff_softmask_set_double(sm, SMDIFF_SM_SCALE, 0.6);
    if (!rc) rc = smdiff_softmask_set_double(sm, SMDIFF_SM_STEEPNESS, 2.0);
    if (!rc) rc = smdiff_softmask_set_double(sm, SMDIFF_SM_CENTRE, -8.0);
    if (!rc) rc = smdiff_trainer_set_softmask(t, sm);
    if (!rc) rc = smdiff_trainer_set_int(t, SMDIFF_TRAIN_SEQ_LEN, CTX);
    if (!rc) rc = smdiff_trainer_set_int(t, SMDIFF_TRAIN_BATCH, 1);
    if (!rc) rc = smdiff_trainer_set_int(t, SMDIFF_TRAIN_THREADS, 1);
    if (!rc) rc = test_trainer_shape(t, V, 16, 1, 2, 2, 32, V - 1, -1);
    if (!rc) rc = smdiff_trainer_init_new(t, "dream");
    if (!rc) rc = smdiff_trainer_save(t, path, 0, NULL);
    smdiff_softmask_free(sm);
    smdiff_trainer_free(t);
    if (!rc) rc = smdiff_model_create(&model);
    if (!rc) rc = smdiff_model_load_file(model, path);
    if (rc) print_message("setup: %s\n", smdiff_last_error());
    return rc ? -1 : 0;
}

static int teardown(void **state) {
    (void)state;
    smdiff_model_free(model);
    unlink(path);
    return 0;
}

static int32_t max_lambda(size_t step, size_t n_steps, const int32_t *canvas, const uint8_t *committed,
                          const float *lambda, size_t n, void *ud) {
    float *mx = ud;
    for (size_t i = 0; i < n; i++) *mx = fmaxf(*mx, lambda[i]);
    return 0;
}

/* Generate 8 tokens after a 4-token prompt with sched (NULL: none set);
 * *lmax gets the largest soft-mask weight the steps reported. */
static void run(const smdiff_softmask *sched, int32_t out[8], float *lmax) {
    smdiff_sampler *s = NULL;
    assert_int_equal(smdiff_sampler_create(&s), SMDIFF_OK);
    assert_int_equal(smdiff_sampler_set_int(s, SMDIFF_SAMPLER_GEN_LENGTH, 8), SMDIFF_OK);
    assert_int_equal(smdiff_sampler_set_int(s, SMDIFF_SAMPLER_STEPS, 4), SMDIFF_OK);
    assert_int_equal(smdiff_sampler_set_int(s, SMDIFF_SAMPLER_STOP_AT_EOS, 0), SMDIFF_OK);
    assert_int_equal(smdiff_sampler_set_int(s, SMDIFF_SAMPLER_THREADS, 1), SMDIFF_OK);
    if (sched) assert_int_equal(smdiff_sampler_set_softmask(s, sched), SMDIFF_OK);
    *lmax = 0;
    assert_int_equal(smdiff_sampler_set_step_callback(s, max_lambda, lmax), SMDIFF_OK);
    const int32_t prompt[4] = {3, 4, 5, 6};
    size_t n = 0;
    assert_int_equal(smdiff_generate_tokens(s, model, prompt, 4, out, 8, &n), SMDIFF_OK);
    assert_int_equal(n, 8);
    smdiff_sampler_free(s);
}

static void test_learned_softmask_by_default(void **state) {
    (void)state;
    smdiff_softmask *own = NULL, *ref = NULL;
    assert_int_equal(smdiff_softmask_create_from_model(model, &own), SMDIFF_OK);
    assert_int_equal(smdiff_softmask_create(&ref), SMDIFF_OK);
    int32_t a[8], b[8], c[8];
    float la = 0, lb = 0, lc = 0;
    run(NULL, a, &la);
    run(own, b, &lb);
    run(ref, c, &lc);
    print_message("largest lambda: no schedule set %.4f, the model's set %.4f, reference defaults %.2g\n", la, lb,
                  lc);
    assert_memory_equal(a, b, sizeof a);
    assert_true(la == lb);
    assert_true(la > 0.3f);  /* the stored omega_s 0.6 at work */
    assert_true(lc < 1e-5f); /* omega_s 1e-6: soft-masking is off in effect */
    smdiff_softmask_free(own);
    smdiff_softmask_free(ref);
}

static void test_gen_length_fits_the_context(void **state) {
    (void)state;
    smdiff_sampler *s = NULL;
    assert_int_equal(smdiff_sampler_create(&s), SMDIFF_OK);
    assert_int_equal(smdiff_sampler_set_int(s, SMDIFF_SAMPLER_STOP_AT_EOS, 0), SMDIFF_OK);
    assert_int_equal(smdiff_sampler_set_int(s, SMDIFF_SAMPLER_THREADS, 1), SMDIFF_OK);
    int32_t prompt[CTX], out[128];
    for (int i = 0; i < CTX; i++) prompt[i] = 1 + i % (V - 2);
    size_t n = 0;
    /* defaults (gen_length 128, steps 64) after a 10-token prompt: 6 tokens in 6 steps */
    assert_int_equal(smdiff_generate_tokens(s, model, prompt, 10, out, 128, &n), SMDIFF_OK);
    assert_int_equal(n, CTX - 10);
    int64_t v = 0;
    assert_int_equal(smdiff_sampler_get_int(s, SMDIFF_SAMPLER_GEN_LENGTH, &v), SMDIFF_OK);
    assert_int_equal(v, 128); /* the option as set, not the settled value */
    assert_int_equal(smdiff_sampler_get_int(s, SMDIFF_SAMPLER_STEPS, &v), SMDIFF_OK);
    assert_int_equal(v, 64);
    /* a prompt that fills the context leaves no room */
    assert_int_equal(smdiff_generate_tokens(s, model, prompt, CTX, out, 128, &n), SMDIFF_E_RANGE);
    assert_non_null(strstr(smdiff_sampler_last_error(s), "context of 16"));
    /* set by the caller, gen_length must fit: the message names the room */
    assert_int_equal(smdiff_sampler_set_int(s, SMDIFF_SAMPLER_GEN_LENGTH, 8), SMDIFF_OK);
    n = 99;
    assert_int_equal(smdiff_generate_tokens(s, model, prompt, 10, out, 128, &n), SMDIFF_E_RANGE);
    assert_non_null(strstr(smdiff_sampler_last_error(s), "at most 6 tokens"));
    assert_int_equal(n, 99);
    assert_int_equal(smdiff_generate_tokens(s, model, prompt, 8, out, 128, &n), SMDIFF_OK);
    assert_int_equal(n, 8);
    /* steps set by the caller are not clamped: more steps than tokens is refused */
    assert_int_equal(smdiff_sampler_set_int(s, SMDIFF_SAMPLER_GEN_LENGTH, 4), SMDIFF_OK);
    assert_int_equal(smdiff_sampler_set_int(s, SMDIFF_SAMPLER_STEPS, 5), SMDIFF_OK);
    assert_int_equal(smdiff_generate_tokens(s, model, prompt, 8, out, 128, &n), SMDIFF_E_INVAL);
    smdiff_sampler_free(s);
}

/* The README's first try: a prompt and nothing else. The prompt is long
 * (over 100 of the 128 positions), so the default gen_length and steps both
 * have to shrink, and the run stays short. */
static void test_cli_generate_with_defaults(void **state) {
    (void)state;
    const char *smdiff = test_cli_path();
    if (!smdiff) SKIP_BECAUSE("the smdiff CLI is not built (set BUILD to its folder)");
    if (access("models/smdiff-gutenberg-18m-sm.gguf", R_OK) != 0) SKIP_BECAUSE("the bundled model is not in models/");
    char cmd[2048], out[8192];
    snprintf(cmd, sizeof cmd,
             "%s generate -p 'It was a bright cold day in April, and the clocks were striking thirteen. Winston "
             "Smith, his chin nuzzled into his breast in an effort to escape the vile wind, slipped quickly through "
             "the glass doors of Victory Mansions, though not quickly enough to prevent a swirl of gritty dust from "
             "entering along with him. The hallway smelt of boiled cabbage and old rag mats. At one end of it a "
             "coloured poster, too large for indoor display, had been tacked to the wall.' 2>/dev/null",
             smdiff);
    assert_int_equal(test_run(cmd, out, sizeof out), 0);
    assert_true(strlen(out) > 1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_learned_softmask_by_default),
        cmocka_unit_test(test_gen_length_fits_the_context),
        cmocka_unit_test(test_cli_generate_with_defaults),
    };
    return cmocka_run_group_tests_name("sampler defaults", tests, setup, teardown);
}
