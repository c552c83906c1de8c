/* test_train_trainer.c -- the training loop state (lib/train/trainer.c):
 * exact resume (a run saved after k steps and resumed in a fresh process
 * state gives the same losses and weights, bit for bit, as an uninterrupted
 * run), evaluation, and bad input (empty or too small corpus, unreadable
 * state, shape mismatch on resume, NaN loss keeping the last good state). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"

#include "train/trainer.h"

enum { B = 3, L = 12, NDATA = 400 };
static int32_t data[NDATA];
static char state_path[256];

static sd_trainer *make(int64_t l, int kind) {
    sd_hparams hp = {0};
    hp.arch = SD_ARCH_DREAM;
    hp.n_vocab = 30, hp.n_embd = 16, hp.n_layer = 2, hp.n_head = 4, hp.n_head_kv = 2, hp.n_ff = 32;
    hp.norm_eps = 1e-5f, hp.rope_base = 10000.0f, hp.mask_id = 29, hp.shift_logits = 1;
    sd_tmodel *m = NULL;
    assert_int_equal(sd_tmodel_create(&hp, B, l, 0, &m, NULL), 0);
    sd_rng r;
    sd_rng_init(&r, 3, 0);
    sd_tmodel_init_random(m, &r, 0.1f, 0.5, 1.0, -3.0);
    sd_trainer_opts o;
    memset(&o, 0, sizeof o);
    o.B = B, o.L = l, o.seed = 77;
    sd_objective_defaults(&o.obj);
    o.obj.kind = kind;
    o.obj.sm = 1;
    sd_adamw_defaults(&o.adam);
    o.adam.lr = 3e-3, o.adam.warmup_steps = 2, o.adam.ema_decay = 0.9;
    sd_trainer *t = NULL;
    assert_int_equal(sd_trainer_create(m, &o, NULL, &t, NULL), 0);
    assert_int_equal(sd_trainer_set_data(t, data, NDATA), 0);
    return t;
}

static void test_exact_resume(void **state) {
    (void)state;
    double straight[8], resumed[8];
    sd_trainer *a = make(L, SD_OBJ_MDLM);
    for (int s = 0; s < 8; s++) assert_int_equal(sd_trainer_step(a, &straight[s], NULL), 0);

    sd_trainer *b = make(L, SD_OBJ_MDLM);
    for (int s = 0; s < 3; s++) assert_int_equal(sd_trainer_step(b, &resumed[s], NULL), 0);
    assert_int_equal(sd_trainer_save_state(b, state_path), 0);
    sd_trainer_free(b); /* as if the process were killed here */

    sd_trainer *c = make(L, SD_OBJ_MDLM);
    assert_int_equal(sd_trainer_load_state(c, state_path), 0);
    assert_int_equal(c->step, 3);
    for (int s = 3; s < 8; s++) assert_int_equal(sd_trainer_step(c, &resumed[s], NULL), 0);
    for (int s = 0; s < 8; s++) {
        printf("  step %d loss %.9f %s\n", s + 1, straight[s], s < 3 ? "" : "(resumed run identical)");
        assert_true(straight[s] == resumed[s]);
    }
    assert_memory_equal(a->m->params, c->m->params, a->m->n_params * sizeof(float));
    assert_memory_equal(a->opt.v, c->opt.v, a->m->n_params * sizeof(float));
    assert_memory_equal(a->opt.ema, c->opt.ema, a->m->n_params * sizeof(float));
    assert_true(straight[7] < straight[0]);

    /* evaluation is deterministic and does not disturb the training stream */
    double e1, e2;
    assert_int_equal(sd_trainer_eval(a, data, NDATA, 2, &e1), 0);
    assert_int_equal(sd_trainer_eval(a, data, NDATA, 2, &e2), 0);
    assert_true(e1 == e2 && isfinite(e1));
    double la, lc;
    assert_int_equal(sd_trainer_step(a, &la, NULL), 0);
    assert_int_equal(sd_trainer_step(c, &lc, NULL), 0);
    assert_true(la == lc); /* a evaluated twice, c did not: the streams still agree */
    sd_trainer_free(a);
    sd_trainer_free(c);
}

static void test_bad_input(void **state) {
    (void)state;
    sd_trainer *t = make(L, SD_OBJ_MDLM);
    assert_int_equal(sd_trainer_set_data(t, data, 0), SMDIFF_E_INVAL);
    assert_non_null(strstr(t->err.msg, "corpus too small"));
    assert_int_equal(sd_trainer_set_data(t, data, L - 1), SMDIFF_E_INVAL);
    int32_t bad[L] = {0};
    bad[5] = 30;
    assert_int_equal(sd_trainer_set_data(t, bad, L), SMDIFF_E_INVAL);
    assert_non_null(strstr(t->err.msg, "outside vocabulary"));
    /* unreadable and wrong state files */
    assert_int_equal(sd_trainer_load_state(t, "no/such/state.gguf"), SMDIFF_E_IO);
    assert_int_equal(sd_trainer_load_state(t, test_data_path("tiny_dream_f32.gguf")), SMDIFF_E_FORMAT);
    assert_int_equal(sd_trainer_save_state(t, state_path), 0);
    sd_trainer *other = make(L - 2, SD_OBJ_MDLM);
    assert_int_equal(sd_trainer_load_state(other, state_path), SMDIFF_E_FORMAT);
    assert_non_null(strstr(other->err.msg, "shape mismatch on resume"));
    sd_trainer_free(other);
    other = make(L, SD_OBJ_AR);
    assert_int_equal(sd_trainer_load_state(other, state_path), SMDIFF_E_FORMAT);
    sd_trainer_free(other);
    /* a NaN weight: the step stops with SMDIFF_E_NUMERIC and changes nothing */
    double loss;
    assert_int_equal(sd_trainer_step(t, &loss, NULL), 0);
    t->m->p.output_norm[0] = NAN;
    float *before = malloc(t->m->n_params * sizeof(float));
    memcpy(before, t->opt.m, t->m->n_params * sizeof(float));
    assert_int_equal(sd_trainer_step(t, &loss, NULL), SMDIFF_E_NUMERIC);
    assert_non_null(strstr(t->err.msg, "not finite"));
    assert_int_equal(t->step, 1);
    assert_int_equal(t->opt.step, 1);
    assert_memory_equal(before, t->opt.m, t->m->n_params * sizeof(float));
    free(before);
    sd_trainer_free(t);
    unlink(state_path);
}

static void test_ar_trainer(void **state) {
    (void)state;
    sd_trainer *t = make(L, SD_OBJ_AR);
    double e0, e1, loss;
    assert_int_equal(sd_trainer_eval(t, data, NDATA, 1, &e0), 0);
    for (int s = 0; s < 40; s++) assert_int_equal(sd_trainer_step(t, &loss, NULL), 0);
    assert_int_equal(sd_trainer_eval(t, data, NDATA, 1, &e1), 0);
    printf("  AR: eval loss %.4f -> %.4f after 40 steps\n", e0, e1);
    assert_true(e1 < e0);
    sd_trainer_free(t);
}

int main(void) {
    snprintf(state_path, sizeof state_path, "/tmp/smdiff_test_state_%d.gguf", (int)getpid());
    for (int i = 0; i < NDATA; i++) data[i] = (i % 17 == 0) ? 0 : 1 + (i * 7) % 11 + (i / 50) % 3;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exact_resume),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_ar_trainer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
