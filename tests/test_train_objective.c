/* test_train_objective.c -- MDLM / SM two-pass / AR objectives
 * (lib/train/objective.c): the mask and t sampling, the loss rows and
 * weights (including dream's shift), SM with lambda -> 0 reducing to MDLM,
 * determinism from the seed, and that a few hundred AdamW steps learn a
 * simple corpus with each objective. Exact numbers against an independent
 * implementation are in test_train_step.c (PyTorch fixtures). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "train/objective.h"
#include "train/optim.h"

static sd_tmodel *tiny(sd_arch arch, int64_t B, int64_t L) {
    sd_hparams hp = {0};
    hp.arch = arch;
    hp.n_vocab = 20, hp.n_embd = 16, hp.n_layer = 2, hp.n_head = 4, hp.n_head_kv = 2, hp.n_ff = 32;
    hp.norm_eps = 1e-5f, hp.rope_base = 10000.0f, hp.mask_id = 19;
    hp.shift_logits = arch == SD_ARCH_DREAM;
    sd_tmodel *m = NULL;
    assert_int_equal(sd_tmodel_create(&hp, B, L, 0, &m, NULL), 0);
    sd_rng r;
    sd_rng_init(&r, 99, 0);
    sd_tmodel_init_random(m, &r, 0.1f, 1e-6, 6.66, -0.75);
    return m;
}

/* omega_s = 0.5, omega_a = 1, omega_b = -3: lambda = 0.5 sigmoid(3 - H) is
 * about 0.25 at the near-uniform predictions of a fresh model (H ~ log 20),
 * where the paper's initial values would give lambda ~ 1e-13. */
static void sm_visible(sd_tmodel *m) {
    m->p.sm_raw[0] = 0.0f;
    m->p.sm_raw[1] = (float)log(exp(1.0) - 1.0);
    m->p.sm_raw[2] = (float)log(exp(3.0) - 1.0);
}

static void test_sampling(void **state) {
    (void)state;
    enum { B = 64, L = 200 };
    float t[B], t2[B];
    uint8_t mk[B * L], mk2[B * L];
    sd_objective_opts o;
    sd_objective_defaults(&o);
    sd_rng r;
    sd_rng_init(&r, 5, 1);
    sd_mdlm_sample(&r, &o, B, L, t, mk);
    sd_rng_init(&r, 5, 1);
    sd_mdlm_sample(&r, &o, B, L, t2, mk2);
    assert_memory_equal(t, t2, sizeof t);
    assert_memory_equal(mk, mk2, sizeof mk);
    /* masked fraction tracks t: binomial sd sqrt(t(1-t)/L) <= 0.036 */
    double dev = 0;
    for (int b = 0; b < B; b++) {
        assert_true(t[b] >= o.eps && t[b] < 1);
        int c = 0;
        for (int p = 0; p < L; p++) c += mk[b * L + p];
        dev = fmax(dev, fabs(c / (double)L - t[b]));
    }
    assert_true(dev < 0.15); /* > 4 sd */
    /* antithetic: sorted t are evenly spaced by (1 - eps) / B */
    o.antithetic = 1;
    sd_mdlm_sample(&r, &o, B, L, t, mk);
    for (int b = 1; b < B; b++) assert_float_equal(t[b] - t[b - 1], (1 - o.eps) / B, 1e-6);
}

static void test_rows_weights_and_shift(void **state) {
    (void)state;
    enum { B = 2, L = 6 };
    int32_t x0[B * L] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    uint8_t mk[B * L] = {1, 1, 0, 0, 1, 0, 0, 0, 1, 0, 0, 1};
    float t[B] = {0.5f, 0.25f};
    sd_objective_opts o;
    sd_objective_defaults(&o);
    for (int arch = SD_ARCH_DREAM; arch <= SD_ARCH_LLADA; arch++) {
        sd_tmodel *m = tiny((sd_arch)arch, B, L);
        sd_objective_ws ws;
        assert_int_equal(sd_objective_ws_init(&ws, m, 3, NULL), 0);
        double loss;
        int64_t nm;
        assert_int_equal(sd_mdlm_loss_grad(m, &ws, &o, x0, B, L, mk, t, 0, &loss, &nm), 0);
        assert_int_equal(nm, 5);
        int32_t want_rows_dream[5] = {0, 0, 3, 7, 10}, want_rows_llada[5] = {0, 1, 4, 8, 11};
        int32_t want_tg[5] = {1, 2, 5, 9, 12};
        float want_w[5] = {2.f / 12, 2.f / 12, 2.f / 12, 4.f / 12, 4.f / 12};
        for (int r = 0; r < 5; r++) {
            assert_int_equal(ws.loss_rows[r], arch == SD_ARCH_DREAM ? want_rows_dream[r] : want_rows_llada[r]);
            assert_int_equal(ws.loss_targets[r], want_tg[r]);
            assert_float_equal(ws.loss_weights[r], want_w[r], 1e-7);
        }
        for (int n = 0; n < B * L; n++) assert_int_equal(ws.ids[n], mk[n] ? 19 : x0[n]);
        /* the loss is the weighted sum of the per-row CE the model reports */
        double s = 0;
        for (int r = 0; r < 5; r++) s += want_w[r] * m->a.losses[r];
        assert_float_equal(loss, s, 1e-6);
        /* with omega_s = sigmoid(-30) SM inputs are E[MASK] to 1e-13: the same loss */
        m->p.sm_raw[0] = -30.0f;
        double loss_sm;
        assert_int_equal(sd_mdlm_loss_grad(m, &ws, &o, x0, B, L, mk, t, 1, &loss_sm, NULL), 0);
        assert_int_equal(ws.batch.n_soft, 5);
        assert_float_equal(loss_sm, loss, 1e-6);
        /* ... but omega_s learns: its raw gradient is nonzero only with SM */
        sm_visible(m);
        assert_int_equal(sd_mdlm_loss_grad(m, &ws, &o, x0, B, L, mk, t, 1, &loss_sm, NULL), 0);
        assert_true(fabsf(m->g.sm_raw[0]) > 1e-6f);
        assert_true(fabs(loss_sm - loss) > 1e-6);
        assert_int_equal(sd_mdlm_loss_grad(m, &ws, &o, x0, B, L, mk, t, 0, &loss_sm, NULL), 0);
        assert_true(m->g.sm_raw[0] == 0.0f);
        /* bad input */
        int32_t bad[B * L];
        memcpy(bad, x0, sizeof bad);
        bad[3] = 20;
        assert_int_equal(sd_mdlm_loss_grad(m, &ws, &o, bad, B, L, mk, t, 0, &loss, NULL), SMDIFF_E_INVAL);
        assert_int_equal(sd_mdlm_loss_grad(m, &ws, &o, x0, B + 1, L, mk, t, 0, &loss, NULL), SMDIFF_E_INVAL);
        sd_objective_ws_free(&ws);
        sd_tmodel_free(m);
    }
}

/* Train on a corpus of two alternating patterns; the loss must fall well
 * below its starting value, and two runs with one seed must agree bit for bit. */
static double train_run(int kind, int sm, uint64_t seed, int steps, double *first, int *n_sm) {
    enum { B = 4, L = 12 };
    sd_tmodel *m = tiny(SD_ARCH_LLADA, B, L);
    sm_visible(m);
    sd_objective_opts o;
    sd_objective_defaults(&o);
    o.kind = kind;
    o.sm = sm;
    o.antithetic = 1;
    sd_objective_ws ws;
    assert_int_equal(sd_objective_ws_init(&ws, m, 3, NULL), 0);
    sd_adamw_opts ao;
    sd_adamw_defaults(&ao);
    ao.lr = 1e-2;
    ao.warmup_steps = 10;
    sd_adamw opt;
    assert_int_equal(sd_adamw_init(&opt, &ao, m->params, m->n_params, NULL), 0);
    sd_rng rng;
    sd_rng_init(&rng, seed, 0);
    int32_t x0[B * L];
    double avg = 0;
    *n_sm = 0;
    for (int s = 0; s < steps; s++) {
        for (int b = 0; b < B; b++) {
            int kindp = (int)sd_rng_below(&rng, 2);
            for (int p = 0; p < L; p++) x0[b * L + p] = kindp ? 1 + p % 3 : 10 + (p % 4);
        }
        double loss;
        int used;
        assert_int_equal(sd_objective_loss_grad(m, &ws, &o, &rng, x0, B, L, &loss, &used), 0);
        *n_sm += used;
        assert_int_equal(sd_adamw_step(&opt, m->params, m->grads, m->tensors, m->n_tensors, NULL, NULL), 0);
        if (s < 20) *first += loss / 20;
        if (s >= steps - 20) avg += loss / 20;
    }
    sd_adamw_free(&opt);
    sd_objective_ws_free(&ws);
    sd_tmodel_free(m);
    return avg;
}

static void test_training_learns(void **state) {
    (void)state;
    const char *names[3] = {"MDLM", "MDLM+SM", "AR"};
    for (int c = 0; c < 3; c++) {
        double first = 0, first2 = 0;
        int nsm, nsm2;
        int kind = c == 2 ? SD_OBJ_AR : SD_OBJ_MDLM;
        double last = train_run(kind, c == 1, 42, 150, &first, &nsm);
        double last2 = train_run(kind, c == 1, 42, 150, &first2, &nsm2);
        printf("  %-8s mean loss first 20 steps %.4f, last 20 %.4f, SM used in %d/150\n", names[c],
               first, last, nsm);
        assert_true(last == last2 && first == first2 && nsm == nsm2);
        assert_true(last < 0.5 * first);
        if (c == 1) assert_true(nsm > 100 && nsm < 140); /* p = 0.8: 120 +- 4.9 */
        else assert_int_equal(nsm, 0);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sampling),
        cmocka_unit_test(test_rows_weights_and_shift),
        cmocka_unit_test(test_training_learns),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
