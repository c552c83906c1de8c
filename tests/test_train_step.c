/* test_train_step.c -- two full training steps (MDLM with SM off and on,
 * dream and llada, and AR) against the independent PyTorch implementation
 * in tests/ref/train_ref.py (autograd + torch.optim.AdamW, float64), whose
 * losses and updated weights are the fixtures tests/data/train_step_*.bin.
 *
 * Same tiny model (V=50, d=16, 2 layers, 4 heads / 2 KV heads, F=32),
 * same weights (uniforms from the Philox stream key 777 + (i << 64) for
 * tensor i, which sd_rng reproduces), same batch (B=2, L=8), mask and t.
 *
 * Tolerances: the C side is float32 against a float64 reference. Losses
 * agree to ~1e-7 relative (we allow 2e-5). After two AdamW steps each
 * weight moved by up to ~2 lr = 0.02 (0.1 for the SM parameters). Adam's
 * m / (sqrt(v) + eps) amplifies the float32 gradient error where |g| is
 * near eps, so the step uses eps = 1e-6 (both sides) instead of 1e-8;
 * then weights agree to 4e-6 at worst (measured), and we allow
 * 5e-5 + 2e-5 |w|, still 20x below the smallest effect a bug would have
 * (weight decay alone moves a weight by lr * wd * |w| ~ 5e-4 per step), so a
 * wrong gradient, a missing weight-decay term or a wrong bias correction fails. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "train/objective.h"
#include "train/optim.h"

enum { V = 50, D = 16, B = 2, L = 8, N_STEPS_MAX = 4 };

typedef struct fixture {
    int n_steps;
    double loss[N_STEPS_MAX];
    int n_tensors;
    char name[64][48];
    int count[64];
    float *vals[64];
} fixture;

static int load_fixture(const char *tag, fixture *fx) {
    char path[256];
    snprintf(path, sizeof path, "tests/data/train_step_%s.bin", tag);
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    char magic[4];
    int ok = fread(magic, 1, 4, f) == 4 && !memcmp(magic, "SDTS", 4);
    ok = ok && fread(&fx->n_steps, 4, 1, f) == 1 && fx->n_steps > 0 && fx->n_steps <= N_STEPS_MAX;
    ok = ok && fread(fx->loss, 8, (size_t)fx->n_steps, f) == (size_t)fx->n_steps;
    ok = ok && fread(&fx->n_tensors, 4, 1, f) == 1 && fx->n_tensors > 0 && fx->n_tensors <= 64;
    for (int i = 0; ok && i < fx->n_tensors; i++) {
        ok = fread(fx->name[i], 1, 48, f) == 48 && fread(&fx->count[i], 4, 1, f) == 1 &&
             fx->count[i] > 0 && fx->count[i] < 1000000;
        if (!ok) break;
        fx->name[i][47] = 0;
        fx->vals[i] = malloc((size_t)fx->count[i] * sizeof(float));
        ok = fread(fx->vals[i], 4, (size_t)fx->count[i], f) == (size_t)fx->count[i];
    }
    fclose(f);
    return ok ? 0 : -2;
}

static void free_fixture(fixture *fx) {
    for (int i = 0; i < fx->n_tensors; i++) free(fx->vals[i]);
}

/* The reference's initial weights (train_ref.py init_params). */
static void init_like_reference(sd_tmodel *m) {
    for (int32_t i = 0; i < m->n_tensors; i++) {
        const sd_ttensor *t = &m->tensors[i];
        float *x = m->params + t->offset;
        int64_t n = t->rows * t->cols;
        sd_rng r;
        sd_rng_init(&r, 777, (uint64_t)i);
        if (t->group == SD_TGROUP_SM) {
            x[0] = 0.0f;
            x[1] = (float)log(exp(1.0) - 1);
            x[2] = (float)log(exp(3.0) - 1);
            continue;
        }
        int is_norm = strstr(t->name, "norm") != NULL, is_bias = strstr(t->name, ".bias") != NULL;
        for (int64_t j = 0; j < n; j++) {
            double u = sd_rng_uniform(&r);
            x[j] = (float)(is_norm ? 1 + 0.2 * (2 * u - 1) : is_bias ? 0.2 * (2 * u - 1) : 0.5 * (2 * u - 1));
        }
    }
}

static void run_case(const char *tag, sd_arch arch, int ar, int use_sm) {
    fixture fx;
    memset(&fx, 0, sizeof fx);
    int rc = load_fixture(tag, &fx);
    if (rc) {
        printf("  fixture tests/data/train_step_%s.bin missing or malformed (%d): regenerate with "
               "/usr/bin/python3 tests/ref/train_ref.py\n", tag, rc);
        fail();
    }
    sd_hparams hp = {0};
    hp.arch = arch;
    hp.n_vocab = V, hp.n_embd = D, hp.n_layer = 2, hp.n_head = 4, hp.n_head_kv = 2, hp.n_ff = 32;
    hp.norm_eps = 1e-5f, hp.rope_base = 10000.0f, hp.mask_id = V - 1;
    hp.shift_logits = arch == SD_ARCH_DREAM;
    hp.rope_permuted = arch == SD_ARCH_LLADA;
    sd_tmodel *m = NULL;
    assert_int_equal(sd_tmodel_create(&hp, B, L, 0, &m, NULL), 0);
    init_like_reference(m);
    assert_int_equal(fx.n_tensors, m->n_tensors);

    int32_t x0[B * L];
    uint8_t mk[B * L];
    float t[B] = {0.4f, 0.7f};
    for (int n = 0; n < B * L; n++) {
        x0[n] = (n * 7 + 3) % (V - 1);
        mk[n] = (n * 5) % 3 == 0 || n % 7 == 2;
    }
    sd_objective_opts o;
    sd_objective_defaults(&o);
    o.sm_k = 3;
    sd_objective_ws ws;
    assert_int_equal(sd_objective_ws_init(&ws, m, 3, NULL), 0);
    sd_adamw_opts ao;
    sd_adamw_defaults(&ao);
    ao.lr = 1e-2, ao.sm_lr = 5e-2, ao.weight_decay = 0.1, ao.grad_clip = 0.5, ao.eps = 1e-6;
    sd_adamw opt;
    assert_int_equal(sd_adamw_init(&opt, &ao, m->params, m->n_params, NULL), 0);
    for (int s = 0; s < fx.n_steps; s++) {
        double loss;
        if (ar)
            assert_int_equal(sd_ar_loss_grad(m, &ws, x0, B, L, &loss), 0);
        else
            assert_int_equal(sd_mdlm_loss_grad(m, &ws, &o, x0, B, L, mk, t, use_sm, &loss, NULL), 0);
        printf("  %-14s step %d loss %.8f (reference %.8f)\n", tag, s + 1, loss, fx.loss[s]);
        assert_true(fabs(loss - fx.loss[s]) <= 2e-5 * fabs(fx.loss[s]));
        assert_int_equal(sd_adamw_step(&opt, m->params, m->grads, m->tensors, m->n_tensors, NULL, NULL), 0);
    }
    double worst = 0;
    int bad = 0;
    for (int i = 0; i < m->n_tensors; i++) {
        const sd_ttensor *tt = &m->tensors[i];
        assert_string_equal(fx.name[i], tt->name);
        assert_int_equal(fx.count[i], tt->rows * tt->cols);
        for (int j = 0; j < fx.count[i]; j++) {
            double ref = fx.vals[i][j], got = m->params[tt->offset + j];
            double err = fabs(got - ref), lim = 5e-5 + 2e-5 * fabs(ref);
            if (err > lim && bad++ < 5)
                printf("  %s[%d]: %.8g vs reference %.8g\n", tt->name, j, got, ref);
            if (err > worst && getenv("SD_TEST_VERBOSE")) printf("   worst so far %s[%d] %.8g vs %.8g\n", tt->name, j, got, ref);
            worst = fmax(worst, err);
        }
    }
    printf("  %-14s weights: largest difference %.3g, %d beyond tolerance; SM raw now %.6f %.6f %.6f\n",
           tag, worst, bad, m->p.sm_raw[0], m->p.sm_raw[1], m->p.sm_raw[2]);
    assert_int_equal(bad, 0);
    sd_adamw_free(&opt);
    sd_objective_ws_free(&ws);
    sd_tmodel_free(m);
    free_fixture(&fx);
}

static void test_dream_mdlm(void **state) {
    (void)state;
    run_case("dream_mdlm", SD_ARCH_DREAM, 0, 0);
}
static void test_dream_mdlm_sm(void **state) {
    (void)state;
    run_case("dream_mdlm_sm", SD_ARCH_DREAM, 0, 1);
}
static void test_llada_mdlm_sm(void **state) {
    (void)state;
    run_case("llada_mdlm_sm", SD_ARCH_LLADA, 0, 1);
}
static void test_llada_ar(void **state) {
    (void)state;
    run_case("llada_ar", SD_ARCH_LLADA, 1, 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dream_mdlm),
        cmocka_unit_test(test_dream_mdlm_sm),
        cmocka_unit_test(test_llada_mdlm_sm),
        cmocka_unit_test(test_llada_ar),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
