/* test_eval_gonogo.c -- the go/no-go of soft-masking
 * (smdiff_eval_elbo_windows, `smdiff eval gonogo`):
 *  - one implementation: smdiff_eval_elbo's single-pass and two-pass bounds
 *    are the means of the matching per-window columns; the single-pass
 *    column does not depend on the settings beside it; omega_s -> 0 gives
 *    the single-pass bound window by window; a setting's column does not
 *    depend on the other settings of the call (k 1 beside k 3 included);
 *  - hand-made models where soft-masking must help or must hurt: every
 *    transformer block is the identity, so a masked position's prediction
 *    depends on its own input embedding alone, and the two-pass bound of
 *    each window is the single-pass one times CE2 / CE1, computed here
 *    from the SM formula by hand;
 *  - `smdiff eval gonogo` says "yes" for the first model and "no" for the
 *    second, prints the API's numbers, and refuses bad command lines. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"

#include "core/rng.h"
#include "smdiff/smdiff.h"
#include "train/checkpoint.h"
#include "train/model_train.h"

static char dir[256], random_path[300], help_path[300], hurt_path[300];

static smdiff_model *open_model(const char *path) {
    smdiff_model *m = NULL;
    assert_int_equal(smdiff_model_create(&m), SMDIFF_OK);
    if (smdiff_model_load_file(m, path)) fail_msg("%s: %s", path, smdiff_last_error());
    return m;
}

static sd_tmodel *llada(int32_t V, int32_t d, int32_t F) {
    sd_hparams hp = {0};
    hp.arch = SD_ARCH_LLADA;
    hp.n_vocab = V, hp.n_embd = d, hp.n_layer = 1, hp.n_head = 2, hp.n_head_kv = 2, hp.n_ff = F;
    hp.n_ctx = 64, hp.norm_eps = 1e-5f, hp.rope_base = 10000.0f, hp.rope_permuted = 1;
    hp.mask_id = V - 1, hp.eos_id = -1, hp.bos_id = -1, hp.pad_id = -1;
    sd_tmodel *m = NULL;
    assert_int_equal(sd_tmodel_create(&hp, 1, 8, 0, &m, NULL), SMDIFF_OK);
    return m;
}

/* The hand-made model (V 4: A = 0, B = 1, C = 2, MASK = 3; d 4): blocks
 * all zero (identity: the residual stream passes unchanged), norms 1,
 * E[MASK] = e0, E[A] = e1, E[B] = e2, E[C] = e3, and only the head row of A
 * non-zero: (2, a1, 0, 0). A masked position reads E[MASK] in pass 1 and
 * predicts A with logit 2 / rms(e0); pass 2 mixes in E[A], whose logit
 * weight a1 > 0 makes A more likely (SM helps) and a1 < 0 less (hurts). */
static void write_hand_made(const char *path, float a1) {
    sd_tmodel *m = llada(4, 4, 8);
    const int32_t d = 4;
    for (int i = 0; i < d; i++) {
        m->p.output_norm[i] = 1.0f;
        m->p.layers[0].attn_norm[i] = m->p.layers[0].ffn_norm[i] = 1.0f;
    }
    m->p.token_embd[3 * d + 0] = 1.0f; /* MASK */
    for (int v = 0; v < 3; v++) m->p.token_embd[v * d + v + 1] = 1.0f;
    m->p.output[0] = 2.0f, m->p.output[1] = a1;
    m->p.sm_raw[0] = 0.0f, m->p.sm_raw[1] = 1.0f, m->p.sm_raw[2] = 1.0f; /* stored, not used below */
    sd_ckpt_opts o = {NULL, 0, 1, NULL};
    assert_int_equal(sd_tmodel_save_gguf(m, path, &o, NULL), SMDIFF_OK);
    sd_tmodel_free(m);
}

static int setup(void **state) {
    if (test_dir_setup(state)) return -1;
    snprintf(dir, sizeof dir, "%s", test_dir);
    snprintf(random_path, sizeof random_path, "%s/random.gguf", dir);
    snprintf(help_path, sizeof help_path, "%s/help.gguf", dir);
    snprintf(hurt_path, sizeof hurt_path, "%s/hurt.gguf", dir);
    sd_tmodel *m = llada(40, 16, 32);
    sd_rng r;
    sd_rng_init(&r, 12, 0);
    sd_tmodel_init_random(m, &r, 0.5f, 0.6, 2.0, -8.0); /* a live soft-mask of its own */
    sd_ckpt_opts o = {NULL, 0, 3, NULL};
    sd_error err = {0};
    if (sd_tmodel_save_gguf(m, random_path, &o, &err)) {
        fprintf(stderr, "setup: %s\n", err.msg);
        return -1;
    }
    sd_tmodel_free(m);
    write_hand_made(help_path, 4.0f);
    write_hand_made(hurt_path, -4.0f);
    return 0;
}

static int teardown(void **state) { return test_dir_teardown(state); }

static smdiff_softmask *schedule(double s, double a, double b, int64_t k) {
    smdiff_softmask *sm = NULL;
    assert_int_equal(smdiff_softmask_create(&sm), SMDIFF_OK);
    assert_int_equal(smdiff_softmask_set_double(sm, SMDIFF_SM_SCALE, s), SMDIFF_OK);
    assert_int_equal(smdiff_softmask_set_double(sm, SMDIFF_SM_STEEPNESS, a), SMDIFF_OK);
    assert_int_equal(smdiff_softmask_set_double(sm, SMDIFF_SM_CENTRE, b), SMDIFF_OK);
    assert_int_equal(smdiff_softmask_set_int(sm, SMDIFF_SM_TOPK, k), SMDIFF_OK);
    return sm;
}

enum { L = 16, NW = 12, D = 2 };

static void test_one_implementation(void **state) {
    (void)state;
    smdiff_model *m = open_model(random_path);
    int32_t w[NW * L];
    sd_rng r;
    sd_rng_init(&r, 3, 7);
    for (int i = 0; i < NW * L; i++) w[i] = (int32_t)sd_rng_below(&r, 39);
    smdiff_softmask *tiny = schedule(1e-9, 6.66, -0.75, 3), *live = schedule(0.5, 2.0, -8.0, 3),
                    *live1 = schedule(0.5, 2.0, -8.0, 1);
    const smdiff_softmask *set3[3] = {NULL, tiny, live};
    double per3[NW * 4], per0[NW], per1[NW * 2], single = 0, two = 0;
    size_t nm3 = 0, nm0 = 0;
    assert_int_equal(smdiff_eval_elbo_windows(m, w, NW, 0, L, D, 5, set3, 3, 1, per3, &nm3), SMDIFF_OK);
    assert_int_equal(smdiff_eval_elbo_windows(m, w, NW, 0, L, D, 5, NULL, 0, 1, per0, &nm0), SMDIFF_OK);
    assert_int_equal(smdiff_eval_elbo(m, w, NW, 0, L, D, 5, 0, 1, &single, NULL), SMDIFF_OK);
    assert_int_equal(smdiff_eval_elbo(m, w, NW, 0, L, D, 5, 1, 1, &two, NULL), SMDIFF_OK);
    assert_int_equal(nm3, nm0);
    double mean0 = 0, mean_own = 0, worst_tiny = 0, live_gap = 0;
    for (int i = 0; i < NW; i++) {
        assert_true(per3[i * 4] == per0[i]); /* column 0 ignores the settings beside it */
        mean0 += per0[i] / NW, mean_own += per3[i * 4 + 1] / NW;
        worst_tiny = fmax(worst_tiny, fabs(per3[i * 4 + 2] - per3[i * 4]) / per3[i * 4]);
        live_gap = fmax(live_gap, fabs(per3[i * 4 + 3] - per3[i * 4]) / per3[i * 4]);
    }
    printf("  random model: single %.6f (API %.6f), own two-pass %.6f (API %.6f); omega_s 1e-9 differs by at "
           "most %.1e, omega_s 0.5 by up to %.1e of the window's bound\n", mean0, single, mean_own, two, worst_tiny,
           live_gap);
    assert_true(fabs(mean0 - single) < 1e-12 * single);
    assert_true(fabs(mean_own - two) < 1e-12 * two);
    assert_true(worst_tiny < 1e-6);
    assert_true(live_gap > 1e-3);
    /* a setting's column is the same whatever the other settings are: k 1
     * beside k 3 (the first of the sorted top-3, renormalised) */
    const smdiff_softmask *mixed[2] = {live, live1}, *alone[1] = {live1};
    double perm[NW * 3];
    assert_int_equal(smdiff_eval_elbo_windows(m, w, NW, 0, L, D, 5, mixed, 2, 1, perm, NULL), SMDIFF_OK);
    assert_int_equal(smdiff_eval_elbo_windows(m, w, NW, 0, L, D, 5, alone, 1, 1, per1, NULL), SMDIFF_OK);
    for (int i = 0; i < NW; i++) {
        assert_true(fabs(perm[i * 3 + 1] - per3[i * 4 + 3]) <= 1e-12 * per3[i * 4 + 3]);
        assert_true(fabs(perm[i * 3 + 2] - per1[i * 2 + 1]) <= 1e-6 * per1[i * 2 + 1]);
    }
    assert_true(fabs(perm[2] - perm[1]) > 0 || fabs(perm[5] - perm[4]) > 0); /* k does matter */
    /* bad arguments */
    const smdiff_softmask *with_null_list = NULL;
    (void)with_null_list;
    assert_int_equal(smdiff_eval_elbo_windows(m, w, NW, 0, L, D, 5, NULL, 1, 1, per1, NULL), SMDIFF_E_INVAL);
    assert_int_equal(smdiff_eval_elbo_windows(m, w, NW, 0, L, D, 5, alone, 1025, 1, per1, NULL), SMDIFF_E_INVAL);
    assert_int_equal(smdiff_eval_elbo_windows(m, w, NW, 0, L, D, 5, alone, 1, 1, NULL, NULL), SMDIFF_E_INVAL);
    assert_int_equal(smdiff_eval_elbo_windows(m, w, 0, 0, L, D, 5, alone, 1, 1, per1, NULL), SMDIFF_E_INVAL);
    assert_int_equal(smdiff_eval_elbo_windows(NULL, w, NW, 0, L, D, 5, alone, 1, 1, per1, NULL), SMDIFF_E_INVAL);
    w[3] = 40;
    assert_int_equal(smdiff_eval_elbo_windows(m, w, NW, 0, L, D, 5, alone, 1, 1, per1, NULL), SMDIFF_E_RANGE);
    smdiff_softmask_free(tiny);
    smdiff_softmask_free(live);
    smdiff_softmask_free(live1);
    smdiff_model_free(m);
}

/* -log p(A) of a masked position whose input is (1 - lam) E[MASK] + lam E[A]
 * in the hand-made model (head row of A: (2, a1, 0, 0), RMSNorm eps 1e-5) */
static double hand_ce(double lam, double a1) {
    double x0 = 1 - lam, x1 = lam, rms = sqrt((x0 * x0 + x1 * x1) / 4 + 1e-5);
    double z = (2 * x0 + a1 * x1) / rms;
    return -(z - log(exp(z) + 3));
}

/* lambda of pass 1's prediction: omega_s sigmoid(omega_a (-H - omega_b)),
 * H the entropy of softmax(2 / rms(e0), 0, 0, 0) over the 4 tokens */
static double hand_lambda(double s, double a, double b) {
    double z = 2 / sqrt(0.25 + 1e-5), pa = exp(z) / (exp(z) + 3), po = 1 / (exp(z) + 3);
    double H = -pa * log(pa) - 3 * po * log(po);
    return s / (1 + exp(-a * (-H - b)));
}

static void check_hand_made(const char *path, double a1, int helps) {
    smdiff_model *m = open_model(path);
    int32_t w[NW * L] = {0}; /* every token A */
    smdiff_softmask *sm = schedule(0.5, 6.66, -0.75, 1);
    const smdiff_softmask *set[1] = {sm};
    double per[NW * 2];
    assert_int_equal(smdiff_eval_elbo_windows(m, w, NW, 0, L, D, 9, set, 1, 1, per, NULL), SMDIFF_OK);
    double lam = hand_lambda(0.5, 6.66, -0.75), ratio = hand_ce(lam, a1) / hand_ce(0, a1);
    printf("  hand-made model (a1 %+g): lambda %.4f, CE %.5f -> %.5f; window 0: %.5f -> %.5f\n", a1, lam,
           hand_ce(0, a1), hand_ce(lam, a1), per[0], per[1]);
    int scored = 0;
    for (int i = 0; i < NW; i++) {
        if (per[i * 2] == 0) { /* no masked position in either draw */
            assert_true(per[i * 2 + 1] == 0);
            continue;
        }
        scored++;
        assert_true(fabs(per[i * 2 + 1] / per[i * 2] - ratio) < 2e-5 * ratio);
        assert_true(helps ? per[i * 2 + 1] < per[i * 2] : per[i * 2 + 1] > per[i * 2]);
    }
    assert_true(scored >= NW - 1);
    smdiff_softmask_free(sm);
    smdiff_model_free(m);
}

static void test_hand_made_help_and_hurt(void **state) {
    (void)state;
    check_hand_made(help_path, 4.0, 1);
    check_hand_made(hurt_path, -4.0, 0);
}

static void test_cli(void **state) {
    (void)state;
    const char *smdiff = test_cli_path();
    if (!smdiff) SKIP_BECAUSE("the smdiff CLI is not built (set BUILD to its folder)");
    enum { NT = 40000 }; /* held out: the last 1%, 400 tokens = 25 windows of 16 */
    static int32_t tok[NT];
    char tpath[300], csv[300], cmd[1400];
    static char out[16384];
    snprintf(tpath, sizeof tpath, "%s/a.i32", dir);
    snprintf(csv, sizeof csv, "%s/gonogo.csv", dir);
    FILE *f = fopen(tpath, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(tok, sizeof tok[0], NT, f), NT);
    fclose(f);
    const char *paths[2] = {help_path, hurt_path}, *verdict[2] = {"SM helps at first order: yes",
                                                                  "SM helps at first order: no"};
    for (int i = 0; i < 2; i++) {
        snprintf(cmd, sizeof cmd, "%s eval gonogo -m %s --tokens %s --seq 16 --draws 2 --seed 4 --k 1 "
                 "--omega 0.5,6.66,-0.75 --omega 0.05,6.66,-0.75 --threads 1 --csv %s 2>/dev/null",
                 smdiff, paths[i], tpath, csv);
        assert_int_equal(test_run(cmd, out, sizeof out), 0);
        printf("%s", out);
        assert_non_null(strstr(out, verdict[i]));
        assert_non_null(strstr(out, "[omega_s 0.05:")); /* the smallest omega_s decides */
        /* the printed single-pass bound is the API's */
        const char *b = strstr(out, "single-pass");
        assert_non_null(b);
        double printed = atof(strstr(b, "bound ") + 6), api = 0;
        smdiff_model *m = open_model(paths[i]);
        assert_int_equal(smdiff_eval_elbo(m, tok + NT - 400, 25, 0, 16, 2, 4, 0, 1, &api, NULL), SMDIFF_OK);
        smdiff_model_free(m);
        assert_true(fabs(printed - api) < 1e-5);
    }
    char *c = test_read_file(csv, NULL);
    assert_non_null(c);
    int rows = 0;
    for (char *p = c; (p = strchr(p, '\n')); p++) rows++;
    assert_int_equal(rows, 4); /* 2 models x 2 settings */
    free(c);
    const char *bad[] = {
        "eval gonogo --tokens Y", "eval gonogo -m X", "eval gonogo -m X --tokens Y --omega 0.5,1",
        "eval gonogo -m X --tokens Y --omega 1.5,6.66,-0.75", "eval gonogo -m X --tokens Y --omega 0.5,6.66,0.2",
        "eval gonogo -m X --tokens Y --k 65", "eval gonogo -m X --tokens Y --draws 0",
        "eval gonogo -m X --tokens Y --bogus",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(cmd, sizeof cmd, "%s %s 2>/dev/null", smdiff, bad[i]);
        assert_int_equal(test_run(cmd, out, sizeof out), 2);
    }
    snprintf(cmd, sizeof cmd, "%s eval gonogo -m no/such.gguf --tokens %s --seq 16 2>/dev/null", smdiff, tpath);
    assert_int_equal(test_run(cmd, out, sizeof out), 1);
    snprintf(cmd, sizeof cmd, "%s eval gonogo -m %s --tokens no/such.i32 2>/dev/null", smdiff, help_path);
    assert_int_equal(test_run(cmd, out, sizeof out), 1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_implementation),
        cmocka_unit_test(test_hand_made_help_and_hurt),
        cmocka_unit_test(test_cli),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
