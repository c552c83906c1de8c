/* test_eval.c -- evaluation (lib/eval/ through smdiff_eval_*):
 *  - the ELBO of a model that predicts the uniform distribution equals its
 *    analytic value: exactly log V * mean(m / (L t)) on the documented
 *    noise (re-drawn here from the contract in smdiff.h), and log V in
 *    expectation (checked on many windows); the two-pass bound agrees;
 *  - the two-pass bound differs from the single-pass one for a live
 *    soft-mask and agrees with it when omega_s = 1e-6;
 *  - the noise is fixed: the same seed gives the same bound, a split
 *    evaluation (first_window) equals one call, another seed differs;
 *  - generative perplexity: an AR reference model trained here on real
 *    English (this repository's LICENSE, as bytes) scores its own training
 *    text lower than the same tokens shuffled;
 *  - adapting that AR model into a diffusion model (Dream-style shifted
 *    logits, SMDIFF_TRAIN_SHIFT_LOGITS) gives it a far lower MDLM
 *    bound than reading it unshifted, the saved file records the shift,
 *    and a few MDLM steps from there lower the bound further;
 *  - MAUVE of identical feature sets is 1 and of far-apart sets near 0;
 *  - bad arguments, ids and files give errors;
 *  - `smdiff eval elbo` prints the API's bound; `smdiff eval gate` gives
 *    a uniform model's entropy log V and the lambda of the SM formula; `smdiff eval samples` with
 *    the uniform model as its reference reports a generative perplexity of
 *    exactly V; bad command lines exit with status 2, bad files with 1;
 *  - the report script's tables are the mean and sd over seeds;
 *  - examples/reproduce.sh runs every stage once and skips finished ones;
 *  - models/train-bundled.sh runs AR, shifted adaptation and SM in order. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"

#include "core/rng.h"
#include "smdiff/smdiff.h"
#include "train/checkpoint.h"
#include "train/model_train.h"

static char dir[256], uniform_path[300];
static smdiff_model *uniform; /* the model at uniform_path, loaded */

/* A model file loaded for the evaluation functions (fails the test otherwise). */
static smdiff_model *open_model(const char *path) {
    smdiff_model *m = NULL;
    assert_int_equal(smdiff_model_create(&m), SMDIFF_OK);
    if (smdiff_model_load_file(m, path)) fail_msg("%s: %s", path, smdiff_last_error());
    return m;
}
enum { V = 40, L = 24 };

/* the tests' tiny shape of arch (vocabulary V), every parameter 0 */
static sd_tmodel *tiny_model_arch(int arch) {
    sd_hparams hp = {0};
    hp.arch = arch, hp.shift_logits = arch == SD_ARCH_DREAM;
    hp.n_vocab = V, hp.n_embd = 16, hp.n_layer = 1, hp.n_head = 2, hp.n_head_kv = 2, hp.n_ff = 32;
    hp.n_ctx = 64, hp.norm_eps = 1e-5f, hp.rope_base = 10000.0f, hp.rope_permuted = 1;
    hp.mask_id = V - 1, hp.eos_id = -1, hp.bos_id = -1, hp.pad_id = -1;
    sd_tmodel *m = NULL;
    assert_int_equal(sd_tmodel_create(&hp, 1, 8, 0, &m, NULL), SMDIFF_OK);
    return m;
}

static sd_tmodel *tiny_model(void) { return tiny_model_arch(SD_ARCH_LLADA); }

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* a llada model with every parameter 0: logits 0, p = 1/V everywhere */
static void write_uniform_model(void) {
    sd_tmodel *m = tiny_model();
    /* raw SM values of a live soft-mask, so the two-pass bound mixes */
    m->p.sm_raw[0] = 0.0f, m->p.sm_raw[1] = 0.5f, m->p.sm_raw[2] = 0.5f;
    assert_int_equal(sd_tmodel_save_gguf(m, uniform_path, NULL, NULL), SMDIFF_OK);
    sd_tmodel_free(m);
}

static int setup(void **state) {
    if (test_dir_setup(state)) return -1;
    snprintf(dir, sizeof dir, "%s", test_dir);
    snprintf(uniform_path, sizeof uniform_path, "%s/uniform.gguf", dir);
    write_uniform_model();
    uniform = open_model(uniform_path);
    return 0;
}

static int teardown(void **state) {
    smdiff_model_free(uniform);
    return test_dir_teardown(state);
}

static void fill_windows(int32_t *w, int64_t n, uint64_t seed) {
    sd_rng r;
    sd_rng_init(&r, seed, 99);
    for (int64_t i = 0; i < n; i++) w[i] = (int32_t)sd_rng_below(&r, V - 1);
}

static void test_elbo_uniform_exact(void **state) {
    (void)state;
    enum { NW = 10, D = 3 };
    const uint64_t seed = 5;
    int32_t w[NW * L];
    fill_windows(w, NW * L, 1);
    double nll = 0, nll2 = 0;
    size_t nm = 0, nm2 = 0;
    assert_int_equal(smdiff_eval_elbo(uniform, w, NW, 0, L, D, seed, 0, 1, &nll, &nm), SMDIFF_OK);
    /* the documented noise, drawn independently of lib/eval/likelihood.c */
    double want = 0;
    size_t masked = 0;
    for (int i = 0; i < NW; i++) {
        sd_rng r;
        sd_rng_init(&r, seed, (uint64_t)i + 1);
        double u = sd_rng_uniform(&r);
        for (int j = 0; j < D; j++) {
            double t = 1e-3 + (1 - 1e-3) * (u + j) / D;
            int m = 0;
            for (int p = 0; p < L; p++) m += sd_rng_uniform(&r) < (double)(float)t;
            want += (double)m / ((double)L * (double)(float)t);
            masked += (size_t)m;
        }
    }
    want = want / (NW * D) * log((double)V);
    printf("  uniform model: bound %.6f, analytic on this noise %.6f, %lld masked\n", nll, want,
           (long long)nm);
    assert_int_equal(nm, masked);
    assert_true(fabs(nll - want) < 1e-5 * want);
    /* soft inputs change nothing when the head is zero: the same bound */
    assert_int_equal(smdiff_eval_elbo(uniform, w, NW, 0, L, D, seed, 1, 1, &nll2, &nm2), SMDIFF_OK);
    assert_int_equal(nm2, nm);
    assert_true(fabs(nll2 - nll) < 1e-6 * nll);
}

static void test_elbo_uniform_expectation(void **state) {
    (void)state;
    /* E[m / (L t)] = 1, so the bound is log V in expectation; 400 windows x 16
     * stratified draws put the mean within a few percent (the 1/t tail near
     * eps is the spread). Dropping the 1/t weight would give about log V / 2. */
    enum { NW = 400, D = 16, LL = 64 };
    int32_t *w = malloc(sizeof(int32_t) * NW * LL);
    assert_non_null(w);
    fill_windows(w, (int64_t)NW * LL, 2);
    double nll = 0;
    assert_int_equal(smdiff_eval_elbo(uniform, w, NW, 0, LL, D, 11, 0, 0, &nll, NULL), SMDIFF_OK);
    printf("  uniform model: bound %.4f over %d windows x %d draws, log V = %.4f\n", nll, NW, D, log((double)V));
    assert_true(fabs(nll / log((double)V) - 1.0) < 0.05);
    free(w);
}

/* a random llada model with the given omega (raw SM values set from them) */
static void write_random_model(const char *path, double omega_s) {
    sd_tmodel *m = tiny_model();
    sd_rng r;
    sd_rng_init(&r, 12, 0);
    sd_tmodel_init_random(m, &r, 0.5f, omega_s, 2.0, -8.0); /* wide gate: lambda ~ omega_s */
    sd_ckpt_opts o = {NULL, 0, 3, NULL};
    assert_int_equal(sd_tmodel_save_gguf(m, path, &o, NULL), SMDIFF_OK);
    sd_tmodel_free(m);
}

/* The two-pass bound feeds pass 1's predictions back: with a live soft-mask
 * it differs from the single-pass bound; with omega_s = 1e-6 the mixture
 * moves an embedding by about 1e-6 of itself and the bounds agree. */
static void test_two_pass_is_wired(void **state) {
    (void)state;
    enum { NW = 8 };
    int32_t w[NW * L];
    fill_windows(w, NW * L, 13);
    char live[300], off[300];
    snprintf(live, sizeof live, "%s/live.gguf", dir);
    snprintf(off, sizeof off, "%s/off.gguf", dir);
    write_random_model(live, 0.6);
    write_random_model(off, 1e-6);
    smdiff_model *ml = open_model(live), *mo = open_model(off);
    double l1 = 0, l2 = 0, o1 = 0, o2 = 0;
    assert_int_equal(smdiff_eval_elbo(ml, w, NW, 0, L, 2, 3, 0, 1, &l1, NULL), SMDIFF_OK);
    assert_int_equal(smdiff_eval_elbo(ml, w, NW, 0, L, 2, 3, 1, 1, &l2, NULL), SMDIFF_OK);
    assert_int_equal(smdiff_eval_elbo(mo, w, NW, 0, L, 2, 3, 0, 1, &o1, NULL), SMDIFF_OK);
    assert_int_equal(smdiff_eval_elbo(mo, w, NW, 0, L, 2, 3, 1, 1, &o2, NULL), SMDIFF_OK);
    smdiff_model_free(ml);
    smdiff_model_free(mo);
    printf("  random model: live SM single %.6f two-pass %.6f; omega_s 1e-6 single %.6f two-pass %.6f\n", l1,
           l2, o1, o2);
    assert_true(fabs(l2 - l1) > 1e-3 * l1);
    assert_true(fabs(o2 - o1) < 1e-4 * o1);
    assert_true(fabs(o1 - l1) < 1e-9 * l1); /* the same weights: omega plays no part in one pass */
}

static char ar_path[300];

/* LICENSE as byte tokens (vocabulary 257: bytes + a mask id) */
static int32_t *license_bytes(int64_t *n) {
    FILE *f = fopen("LICENSE", "rb");
    assert_non_null(f);
    static unsigned char buf[8192];
    size_t got = fread(buf, 1, sizeof buf, f);
    fclose(f);
    assert_true(got > 800);
    int32_t *t = malloc(sizeof(int32_t) * got);
    for (size_t i = 0; i < got; i++) t[i] = buf[i];
    *n = (int64_t)got;
    return t;
}

static void train_ar(const int32_t *tok, int64_t n) {
    snprintf(ar_path, sizeof ar_path, "%s/ar.gguf", dir);
    smdiff_trainer *t = NULL;
    assert_int_equal(smdiff_trainer_create(&t), SMDIFF_OK);
    assert_int_equal(smdiff_trainer_set_int(t, SMDIFF_TRAIN_OBJECTIVE, SMDIFF_TRAIN_AR), SMDIFF_OK);
    assert_int_equal(smdiff_trainer_set_int(t, SMDIFF_TRAIN_SEQ_LEN, 32), SMDIFF_OK);
    assert_int_equal(smdiff_trainer_set_int(t, SMDIFF_TRAIN_BATCH, 8), SMDIFF_OK);
    assert_int_equal(smdiff_trainer_set_int(t, SMDIFF_TRAIN_THREADS, 1), SMDIFF_OK);
    assert_int_equal(smdiff_trainer_set_double(t, SMDIFF_TRAIN_LR, 3e-3), SMDIFF_OK);
    assert_int_equal(test_trainer_shape(t, 257, 32, 2, 4, 4, 64, 256, -1), SMDIFF_OK);
    assert_int_equal(smdiff_trainer_init_new(t, "llada"), SMDIFF_OK);
    assert_int_equal(smdiff_trainer_set_data(t, tok, n, tok, n), SMDIFF_OK);
    double loss = 0, first = 0;
    for (int s = 0; s < 150; s++) {
        assert_int_equal(smdiff_trainer_step(t, &loss), SMDIFF_OK);
        if (s == 0) first = loss;
    }
    printf("  AR reference on LICENSE bytes: loss %.3f -> %.3f in 150 steps\n", first, loss);
    assert_int_equal(smdiff_trainer_save(t, ar_path, 0, NULL), SMDIFF_OK);
    smdiff_trainer_free(t);
}

static void test_gen_ppl_own_vs_shuffled(void **state) {
    (void)state;
    int64_t n = 0;
    int32_t *tok = license_bytes(&n);
    train_ar(tok, n);
    enum { NS = 16, S = 32 };
    int32_t own[NS * S], shuf[NS * S];
    sd_rng r;
    sd_rng_init(&r, 4, 0);
    for (int i = 0; i < NS; i++) {
        int64_t start = (int64_t)sd_rng_below(&r, (uint64_t)(n - S + 1));
        memcpy(own + i * S, tok + start, sizeof(int32_t) * S);
        memcpy(shuf + i * S, own + i * S, sizeof(int32_t) * S);
        for (int k = S - 1; k > 0; k--) { /* Fisher-Yates within the window */
            int j = (int)sd_rng_below(&r, (uint64_t)k + 1);
            int32_t x = shuf[i * S + k];
            shuf[i * S + k] = shuf[i * S + j], shuf[i * S + j] = x;
        }
    }
    double a[NS], b[NS], ma = 0, mb = 0;
    size_t d = 0;
    float feats[NS * 32];
    smdiff_model *ar = open_model(ar_path);
    assert_int_equal(smdiff_eval_ar(ar, own, NS, S, 1, a, feats, &d), SMDIFF_OK);
    assert_int_equal(d, 32);
    assert_int_equal(smdiff_eval_ar(ar, shuf, NS, S, 1, b, NULL, NULL), SMDIFF_OK);
    smdiff_model_free(ar);
    for (int i = 0; i < NS; i++) ma += a[i] / NS, mb += b[i] / NS;
    for (int i = 0; i < NS * 32; i++) assert_true(isfinite(feats[i]));
    printf("  generative perplexity: own training text %.2f, shuffled %.2f\n", exp(ma), exp(mb));
    assert_true(ma + 0.5 < mb);
    free(tok);
}

/* Rewrite the AR model with shift on / off, optionally training `steps`
 * MDLM steps on the same bytes; returns the path. */
static const char *adapt(const char *name, int on, int steps, const int32_t *tok, int64_t n) {
    static char path[2][320];
    char *p = path[on];
    snprintf(p, sizeof path[0], "%s/%s", dir, name);
    smdiff_trainer *t = NULL;
    assert_int_equal(smdiff_trainer_create(&t), SMDIFF_OK);
    assert_int_equal(smdiff_trainer_set_int(t, SMDIFF_TRAIN_SEQ_LEN, 32), SMDIFF_OK);
    assert_int_equal(smdiff_trainer_set_int(t, SMDIFF_TRAIN_THREADS, 1), SMDIFF_OK);
    assert_int_equal(smdiff_trainer_set_int(t, SMDIFF_TRAIN_SM, 0), SMDIFF_OK);
    assert_int_equal(smdiff_trainer_set_double(t, SMDIFF_TRAIN_LR, 1e-3), SMDIFF_OK);
    /* an option since 0.2: set before the model, frozen after */
    assert_int_equal(smdiff_trainer_set_int(t, SMDIFF_TRAIN_SHIFT_LOGITS, 2), SMDIFF_E_RANGE);
    assert_int_equal(smdiff_trainer_set_int(t, SMDIFF_TRAIN_SHIFT_LOGITS, on), SMDIFF_OK);
    assert_int_equal(smdiff_trainer_init_from_file(t, ar_path), SMDIFF_OK);
    assert_int_equal(smdiff_trainer_set_int(t, SMDIFF_TRAIN_SHIFT_LOGITS, on), SMDIFF_E_STATE);
    assert_int_equal(smdiff_trainer_set_data(t, tok, n, tok, n), SMDIFF_OK);
    for (int s = 0; s < steps; s++) assert_int_equal(smdiff_trainer_step(t, NULL), SMDIFF_OK);
    assert_int_equal(smdiff_trainer_save(t, p, 0, NULL), SMDIFF_OK);
    smdiff_trainer_free(t);
    smdiff_model *m = NULL;
    int64_t shift = -1;
    assert_int_equal(smdiff_model_create(&m), SMDIFF_OK);
    assert_int_equal(smdiff_model_load_file(m, p), SMDIFF_OK);
    assert_int_equal(smdiff_model_property(m, SMDIFF_PROP_SHIFT_LOGITS, &shift), SMDIFF_OK);
    assert_int_equal(shift, on);
    smdiff_model_free(m);
    return p;
}

static void test_adapt_ar_with_shift(void **state) {
    (void)state;
    int64_t n = 0;
    int32_t *tok = license_bytes(&n);
    if (!ar_path[0]) train_ar(tok, n);
    enum { S = 32, NW = 48 };
    int32_t w[NW * S];
    for (int i = 0; i < NW; i++) memcpy(w + i * S, tok + (int64_t)i * (n - S) / NW, sizeof(int32_t) * S);
    double bound[3] = {0};
    const struct { const char *name; int on, steps; } runs[3] = {{"ar-off.gguf", 0, 0}, {"ar-on.gguf", 1, 0},
                                                                  {"ar-on-30.gguf", 1, 30}};
    for (int i = 0; i < 3; i++) {
        smdiff_model *m = open_model(adapt(runs[i].name, runs[i].on, runs[i].steps, tok, n));
        assert_int_equal(smdiff_eval_elbo(m, w, NW, 0, S, 4, 5, 0, 1, &bound[i], NULL), SMDIFF_OK);
        smdiff_model_free(m);
    }
    double off = bound[0], on = bound[1], tuned = bound[2];
    printf("  AR model as MDLM: unshifted %.3f, shifted %.3f, shifted + 30 MDLM steps %.3f nats/token "
           "(uniform %.3f)\n", off, on, tuned, log(257.0));
    assert_true(on + 0.3 < off);
    assert_true(tuned < on);
    free(tok);
}

static void test_mauve_api(void **state) {
    (void)state;
    enum { N = 60, DIM = 8 };
    float p[N * DIM], q[N * DIM];
    sd_rng r;
    sd_rng_init(&r, 8, 0);
    for (int i = 0; i < N * DIM; i++) p[i] = (float)sd_rng_uniform(&r) - 0.5f;
    double s = 0;
    assert_int_equal(smdiff_eval_mauve(p, N, p, N, DIM, 1, &s), SMDIFF_OK);
    assert_true(fabs(s - 1.0) < 1e-9);
    /* q far away along its own axis: the sets share no cluster */
    for (int i = 0; i < N * DIM; i++) q[i] = p[i] + ((i % DIM) == 0 ? 50.0f : 0.0f);
    for (int i = 0; i < N * DIM; i++) p[i] += ((i % DIM) == 1 ? 50.0f : 0.0f);
    assert_int_equal(smdiff_eval_mauve(p, N, q, N, DIM, 1, &s), SMDIFF_OK);
    printf("  MAUVE of disjoint sets %.4f\n", s);
    assert_true(s < 0.02);
    int32_t ids[4] = {1, 1, 2, 3};
    assert_int_equal(smdiff_eval_unigram_entropy(ids, 4, 5, &s), SMDIFF_OK);
    assert_true(fabs(s - (-0.5 * log(0.5) - 2 * 0.25 * log(0.25))) < 1e-12);
}

static void test_noise_fixed_and_errors(void **state) {
    (void)state;
    enum { NW = 6 };
    int32_t w[NW * L];
    fill_windows(w, NW * L, 3);
    double one = 0, a = 0, b = 0, other = 0;
    size_t ma = 0, mb = 0;
    assert_int_equal(smdiff_eval_elbo(uniform, w, NW, 0, L, 2, 9, 0, 1, &one, NULL), SMDIFF_OK);
    assert_int_equal(smdiff_eval_elbo(uniform, w, 4, 0, L, 2, 9, 0, 1, &a, &ma), SMDIFF_OK);
    assert_int_equal(smdiff_eval_elbo(uniform, w + 4 * L, 2, 4, L, 2, 9, 0, 1, &b, &mb), SMDIFF_OK);
    assert_true(fabs((4 * a + 2 * b) / NW - one) < 1e-9 * one);
    assert_int_equal(smdiff_eval_elbo(uniform, w, NW, 0, L, 2, 10, 0, 1, &other, NULL), SMDIFF_OK);
    assert_true(other != one);
    /* errors: arguments, ids, files */
    double x;
    assert_int_equal(smdiff_eval_elbo(NULL, w, NW, 0, L, 2, 9, 0, 1, &x, NULL), SMDIFF_E_INVAL);
    assert_int_equal(smdiff_eval_elbo(uniform, w, 0, 0, L, 2, 9, 0, 1, &x, NULL), SMDIFF_E_INVAL);
    assert_int_equal(smdiff_eval_elbo(uniform, w, NW, (size_t)-1, L, 2, 9, 0, 1, &x, NULL), SMDIFF_E_INVAL);
    assert_int_equal(smdiff_eval_elbo(uniform, w, NW, 0, L, 0, 9, 0, 1, &x, NULL), SMDIFF_E_INVAL);
    assert_int_equal(smdiff_eval_elbo(uniform, w, NW, 0, L, 2, 9, 2, 1, &x, NULL), SMDIFF_E_INVAL);
    /* never past the model's context */
    int64_t ctx;
    assert_int_equal(smdiff_model_property(uniform, SMDIFF_PROP_CONTEXT, &ctx), SMDIFF_OK);
    int32_t *longer = calloc((size_t)ctx + 1, sizeof *longer);
    assert_non_null(longer);
    assert_int_equal(smdiff_eval_elbo(uniform, longer, 1, 0, (size_t)ctx + 1, 2, 9, 0, 1, &x, NULL), SMDIFF_E_INVAL);
    assert_non_null(strstr(smdiff_last_error(), "beyond the model's context"));
    assert_int_equal(smdiff_eval_ar(uniform, longer, 1, (size_t)ctx + 1, 1, &x, NULL, NULL), SMDIFF_E_INVAL);
    assert_non_null(strstr(smdiff_last_error(), "beyond the model's context"));
    assert_int_equal(smdiff_eval_elbo(uniform, longer, 1, 0, (size_t)ctx, 1, 9, 0, 1, &x, NULL), SMDIFF_OK);
    free(longer);
    w[5] = V;
    assert_int_equal(smdiff_eval_elbo(uniform, w, NW, 0, L, 2, 9, 0, 1, &x, NULL), SMDIFF_E_RANGE);
    assert_non_null(strstr(smdiff_last_error(), "outside vocabulary"));
    w[5] = -1;
    assert_int_equal(smdiff_eval_ar(uniform, w, 2, L, 1, NULL, NULL, NULL), SMDIFF_E_RANGE);
    w[5] = 0;
    /* files are the loader's business now: a model that did not load is refused */
    smdiff_model *bad_file = NULL;
    assert_int_equal(smdiff_model_create(&bad_file), SMDIFF_OK);
    assert_int_equal(smdiff_model_load_file(bad_file, "no/such.gguf"), SMDIFF_E_IO);
    assert_int_equal(smdiff_model_load_file(bad_file, "LICENSE"), SMDIFF_E_FORMAT);
    assert_int_equal(smdiff_eval_elbo(bad_file, w, NW, 0, L, 2, 9, 0, 1, &x, NULL), SMDIFF_E_STATE);
    assert_int_equal(smdiff_eval_ar(bad_file, w, 2, L, 1, NULL, NULL, NULL), SMDIFF_E_STATE);
    smdiff_model_free(bad_file);
    assert_int_equal(smdiff_eval_ar(uniform, w, 2, 1, 1, NULL, NULL, NULL), SMDIFF_E_INVAL);
    assert_int_equal(smdiff_eval_ar(uniform, NULL, 2, L, 1, NULL, NULL, NULL), SMDIFF_E_INVAL);
    float f[4] = {0};
    assert_int_equal(smdiff_eval_mauve(f, 0, f, 1, 4, 1, &x), SMDIFF_E_INVAL);
    assert_int_equal(smdiff_eval_mauve(NULL, 1, f, 1, 4, 1, &x), SMDIFF_E_INVAL);
    int32_t bad[2] = {0, 7};
    assert_int_equal(smdiff_eval_unigram_entropy(bad, 2, 5, &x), SMDIFF_E_RANGE);
    assert_int_equal(smdiff_eval_unigram_entropy(bad, 0, 5, &x), SMDIFF_E_INVAL);
}

/* smdiff_eval_gate on the uniform model: every masked position has H = log V
 * and, all tokens tied, the truth counts as top-1; lambda follows the
 * schedule's formula (the model's own, or one given); two rates draw their
 * own masks; bad arguments are refused. */
static void test_gate_api(void **state) {
    (void)state;
    enum { NW = 4 };
    int32_t w[NW * L];
    fill_windows(w, NW * L, 21);
    const double rates[2] = {0.5, 0.25};
    smdiff_gate_stats st[2];
    memset(st, 0, sizeof st);
    assert_int_equal(smdiff_eval_gate(uniform, NULL, w, NW, L, rates, 2, 1, st), SMDIFF_OK);
    /* the file's raw (0, 0.5, 0.5): omega_s 0.5, omega_a = -omega_b = softplus(0.5) */
    double wa = log1p(exp(0.5)), want_l = 0.5 / (1 + exp(-wa * (-log((double)V) + wa)));
    for (int i = 0; i < 2; i++) {
        printf("  gate t %.2f: %zu masked, median H %.4f, top-1 %.3f, mean lambda %.5f (want %.5f)\n", rates[i],
               st[i].n_masked, st[i].median_entropy, st[i].top1, st[i].mean_lambda, want_l);
        assert_true(st[i].n_masked > 0 && st[i].n_masked < NW * L);
        assert_true(fabs(st[i].median_entropy - log((double)V)) < 1e-4);
        assert_true(st[i].top1 == 1.0 && st[i].topk == 1.0);
        assert_true(fabs(st[i].mean_lambda - want_l) < 1e-5);
        assert_true(st[i].lambda_above_001 == 1.0 && st[i].lambda_above_01 == (want_l > 0.1 ? 1.0 : 0.0));
    }
    assert_true(st[0].n_masked > st[1].n_masked); /* rate 0.5 masks about twice as many */
    /* a schedule given: constant lambda 0.3 */
    smdiff_softmask *sm = NULL;
    assert_int_equal(smdiff_softmask_create(&sm), SMDIFF_OK);
    assert_int_equal(smdiff_softmask_set_int(sm, SMDIFF_SM_MODE, SMDIFF_SM_CONSTANT), SMDIFF_OK);
    assert_int_equal(smdiff_softmask_set_double(sm, SMDIFF_SM_CONSTANT_LAMBDA, 0.3), SMDIFF_OK);
    smdiff_gate_stats c;
    assert_int_equal(smdiff_eval_gate(uniform, sm, w, NW, L, rates, 1, 1, &c), SMDIFF_OK);
    assert_int_equal(c.n_masked, st[0].n_masked); /* the same masks */
    assert_true(fabs(c.mean_lambda - 0.3) < 1e-12);
    smdiff_softmask_free(sm);
    /* refusals */
    const double bad_rate[1] = {0.0};
    assert_int_equal(smdiff_eval_gate(NULL, NULL, w, NW, L, rates, 1, 1, &c), SMDIFF_E_INVAL);
    assert_int_equal(smdiff_eval_gate(uniform, NULL, w, NW, L, bad_rate, 1, 1, &c), SMDIFF_E_INVAL);
    assert_int_equal(smdiff_eval_gate(uniform, NULL, w, NW, 65, rates, 1, 1, &c), SMDIFF_E_INVAL); /* > context */
    assert_int_equal(smdiff_eval_gate(uniform, NULL, w, 0, L, rates, 1, 1, &c), SMDIFF_E_INVAL);
    assert_int_equal(smdiff_eval_gate(uniform, NULL, w, NW, L, rates, 1, 1, NULL), SMDIFF_E_INVAL);
    w[3] = V;
    assert_int_equal(smdiff_eval_gate(uniform, NULL, w, NW, L, rates, 1, 1, &c), SMDIFF_E_RANGE);
    assert_non_null(strstr(smdiff_last_error(), "outside vocabulary"));
}

/* The gate reads, for each masked position, the row that predicts it: row p
 * for llada, row p - 1 for a model with shifted logits (dream), whose
 * position 0 has no predicting row and stays unmasked. At t = 1 every other
 * position is masked, so the input (all [MASK] but that position 0, here
 * token 3) and its logits are known in
 * advance: windows built from each predicting row's argmax must score top-1
 * on every position, and the median entropy is that of those rows. */
static void check_gate_rows(int arch) {
    enum { NW = 2 };
    sd_tmodel *m = tiny_model_arch(arch);
    sd_rng r;
    sd_rng_init(&r, 31, 0);
    sd_tmodel_init_random(m, &r, 2.0f, 1e-6, 6.66, -0.75);
    char path[300];
    snprintf(path, sizeof path, "%s/rows-%d.gguf", dir, arch);
    assert_int_equal(sd_tmodel_save_gguf(m, path, NULL, NULL), SMDIFF_OK);
    sd_tmodel_free(m);
    smdiff_model *model = open_model(path);
    int64_t shift = 0;
    assert_int_equal(smdiff_model_property(model, SMDIFF_PROP_SHIFT_LOGITS, &shift), SMDIFF_OK);
    assert_int_equal(shift, arch == SD_ARCH_DREAM);
    int32_t ids[L], rows[L], w[NW * L];
    float *lg = malloc(sizeof(float) * L * V);
    double h[L];
    assert_non_null(lg);
    for (int p = 0; p < L; p++) ids[p] = V - 1, rows[p] = p;
    if (shift) ids[0] = 3; /* position 0 stays unmasked: the gate's input is this */
    assert_int_equal(smdiff_model_logits(model, ids, L, rows, L, lg, (size_t)L * V), SMDIFF_OK);
    for (int p = 0; p < L; p++) { /* row p: its argmax and its entropy */
        const float *z = lg + (size_t)p * V;
        int best = 0;
        double mx = z[0], sum = 0, ez = 0;
        for (int v = 1; v < V; v++) if (z[v] > z[best]) best = v, mx = z[v];
        for (int v = 0; v < V; v++) sum += exp(z[v] - mx), ez += exp(z[v] - mx) * (z[v] - mx);
        h[p] = log(sum) - ez / sum;
        for (int win = 0; win < NW; win++)
            if (p + shift < L) w[win * L + p + shift] = best;
    }
    for (int win = 0; win < NW; win++) if (shift) w[win * L] = 3;
    const double one[1] = {1.0};
    smdiff_gate_stats st;
    assert_int_equal(smdiff_eval_gate(model, NULL, w, NW, L, one, 1, 5, &st), SMDIFF_OK);
    size_t n = L - (size_t)shift; /* predicting rows 0 .. n-1, each seen NW times */
    double hs[L];
    memcpy(hs, h, sizeof(double) * n);
    qsort(hs, n, sizeof *hs, cmp_double);
    printf("  gate at t 1, shift %d: %zu masked, top-1 %.3f, median H %.6f (rows' own %.6f)\n", (int)shift,
           st.n_masked, st.top1, st.median_entropy, hs[n / 2]);
    assert_int_equal(st.n_masked, NW * n);
    assert_true(st.top1 == 1.0);
    assert_true(fabs(st.median_entropy - hs[n / 2]) < 1e-4);
    free(lg);
    smdiff_model_free(model);
}

static void test_gate_reads_the_predicting_row(void **state) {
    (void)state;
    check_gate_rows(SD_ARCH_LLADA);
    check_gate_rows(SD_ARCH_DREAM);
}

/* ------------------------------------------------------------ the CLI */

static void test_cli(void **state) {
    (void)state;
    const char *smdiff = test_cli_path();
    if (!smdiff) SKIP_BECAUSE("the smdiff CLI is not built (set BUILD to its folder)");
    enum { NT = 2000 };
    static int32_t tok[NT];
    fill_windows(tok, NT, 6);
    char tpath[300], csv[300], cmd[2400];
    static char out[16384];
    snprintf(tpath, sizeof tpath, "%s/tok.i32", dir);
    snprintf(csv, sizeof csv, "%s/s.csv", dir);
    FILE *f = fopen(tpath, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(tok, sizeof tok[0], NT, f), NT);
    fclose(f);
    /* the held-out split is the last max(1%, one window) = 24 tokens: one window */
    snprintf(cmd, sizeof cmd, "%s eval elbo -m %s --tokens %s --seq 24 --windows 0 --draws 3 --seed 5 "
             "--threads 1 2>/dev/null", smdiff, uniform_path, tpath);
    assert_int_equal(test_run(cmd, out, sizeof out), 0);
    const char *b = strstr(out, "single-pass bound ");
    assert_non_null(b);
    double printed = atof(b + strlen("single-pass bound ")), api = 0;
    assert_int_equal(smdiff_eval_elbo(uniform, tok + NT - 24, 1, 0, 24, 3, 5, 0, 1, &api, NULL), SMDIFF_OK);
    printf("  smdiff eval elbo printed %.4f, API %.6f\n", printed, api);
    assert_true(fabs(printed - api) < 6e-5);
    /* a uniform reference gives every text the perplexity V */
    snprintf(cmd, sizeof cmd, "%s eval samples -m %s --ref %s --tokens %s --len 8 --n 4 --seeds 1,2 "
             "--budgets 2,8 --threads 1 --softmask off --label u --csv %s 2>/dev/null",
             smdiff, uniform_path, uniform_path, tpath, csv);
    assert_int_equal(test_run(cmd, out, sizeof out), 0);
    assert_non_null(strstr(out, "u steps 2: gen ppl 40.00 +- 0.00"));
    assert_non_null(strstr(out, "u steps 8: gen ppl 40.00 +- 0.00"));
    assert_non_null(strstr(out, "human text: gen ppl 40.00"));
    f = fopen(csv, "r");
    assert_non_null(f);
    int rows = 0, human = 0;
    char line[256];
    while (fgets(line, sizeof line, f)) rows++, human += !strncmp(line, "human,0,", 8);
    fclose(f);
    assert_int_equal(rows, 6); /* 2 seeds x (human + 2 budgets) */
    assert_int_equal(human, 2);
    /* semi-autoregressive blocks: the same perplexity; a block length that
     * does not divide the length is refused with the sampler's reason */
    snprintf(cmd, sizeof cmd, "%s eval samples -m %s --ref %s --tokens %s --len 8 --n 2 --seeds 1 "
             "--budgets 2,8 --block-len 4 --threads 1 --softmask off --label ub 2>/dev/null",
             smdiff, uniform_path, uniform_path, tpath);
    assert_int_equal(test_run(cmd, out, sizeof out), 0);
    assert_non_null(strstr(out, "block 4,"));
    assert_non_null(strstr(out, "ub steps 2: gen ppl 40.00"));
    snprintf(cmd, sizeof cmd, "%s eval samples -m %s --ref %s --tokens %s --len 8 --n 2 --seeds 1 "
             "--budgets 8 --block-len 3 --threads 1 2>&1", smdiff, uniform_path, uniform_path, tpath);
    assert_int_equal(test_run(cmd, out, sizeof out), 1);
    assert_non_null(strstr(out, "must divide gen_length"));
    /* gate: a uniform model has H = log V at every masked position, and
     * lambda = omega_s sigmoid(omega_a (-H - omega_b)) with the file's raw
     * (0, 0.5, 0.5): omega_s 0.5, omega_a = -omega_b = softplus(0.5) */
    snprintf(cmd, sizeof cmd, "%s eval gate -m %s --tokens %s --seq 24 --t 0.5 --threads 1 2>/dev/null", smdiff,
             uniform_path, tpath);
    assert_int_equal(test_run(cmd, out, sizeof out), 0);
    const char *row = strstr(out, "\n 0.50 ");
    assert_non_null(row);
    double t_, masked_, medh, top1, topk, meanl;
    assert_int_equal(sscanf(row, "%lf %lf %lf %lf %lf %lf", &t_, &masked_, &medh, &top1, &topk, &meanl), 6);
    double wa = log1p(exp(0.5)), want_l = 0.5 / (1 + exp(-wa * (-log((double)V) + wa)));
    printf("  eval gate on the uniform model: median H %.3f (log V %.3f), mean lambda %.4f (want %.4f)\n", medh,
           log((double)V), meanl, want_l);
    assert_true(masked_ > 0);
    assert_true(fabs(medh - log((double)V)) < 1e-3);
    assert_true(fabs(meanl - want_l) < 1e-4);
    /* bad command lines: 2; bad files: 1 */
    const char *bad[] = {
        "eval", "eval bogus", "eval samples -m X --tokens Y", "eval elbo --tokens Y",
        "eval elbo -m X --tokens Y --draws 0", "eval samples -m X --ref X --tokens Y --budgets 0",
        "eval samples -m X --ref X --tokens Y --seeds a,b", "eval elbo -m X --tokens Y --bogus 1",
        "eval gate -m X --tokens Y --t 0", "eval gate -m X --tokens Y --t 0.5x", "eval gate --tokens Y",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(cmd, sizeof cmd, "%s %s 2>/dev/null", smdiff, bad[i]);
        assert_int_equal(test_run(cmd, out, sizeof out), 2);
    }
    snprintf(cmd, sizeof cmd, "%s eval elbo -m no/such.gguf --tokens %s --seq 24 2>/dev/null", smdiff, tpath);
    assert_int_equal(test_run(cmd, out, sizeof out), 1);
    snprintf(cmd, sizeof cmd, "%s eval elbo -m %s --tokens no/such.i32 2>/dev/null", smdiff, uniform_path);
    assert_int_equal(test_run(cmd, out, sizeof out), 1);
    snprintf(cmd, sizeof cmd, "%s eval samples -m %s --ref LICENSE --tokens %s --len 8 --n 2 2>/dev/null",
             smdiff, uniform_path, tpath);
    assert_int_equal(test_run(cmd, out, sizeof out), 1);
}

/* ------------------------------------------------- examples/reproduce_report.py */

/* The report that docs/RESULTS.md's tables come from: given sample CSVs with
 * known values, its table cells are the mean and sample sd over seeds
 * (computed here independently), the human row is kept once, and the plots
 * are complete SVG documents. */
static void test_report_script(void **state) {
    (void)state;
    if (system("python3 -c 'import csv' 2>/dev/null") != 0) SKIP_BECAUSE("python3 is not installed");
    char out[300], dest[300], p[400], cmd[1000];
    snprintf(out, sizeof out, "%s/rep", dir);
    snprintf(dest, sizeof dest, "%s/rep/docs", dir);
    assert_int_equal(mkdir(out, 0700), 0);
    const double v[2][3] = {{100.0, 130.0, 160.0}, {50.0, 52.0, 57.0}}; /* gen ppl per budget, seed */
    for (int f = 0; f < 2; f++) { /* two files, each repeating the human rows */
        snprintf(p, sizeof p, "%s/samples-%s.csv", out, f ? "base" : "zz");
        FILE *c = fopen(p, "w");
        assert_non_null(c);
        for (int seed = 1; seed <= 3; seed++) {
            fprintf(c, "human,0,%d,10,%.1f,3.0,1\n", seed, 20.0 + seed);
            for (int b = 0; b < 2; b++)
                fprintf(c, "%s,%d,%d,10,%.4f,%.5f,%.5f\n", f ? "base" : "zz", 4 << b, seed, v[b][seed - 1] * (f + 1),
                        3.0 + 0.1 * seed, 0.5 + 0.1 * b);
        }
        fclose(c);
    }
    /* a gate listing and a bound naming the run's own files: the results
     * name them under $OUT, never the machine's folder */
    snprintf(p, sizeof p, "%s/gate-sm-cpt.txt", out);
    FILE *g = fopen(p, "w");
    assert_non_null(g);
    fprintf(g, "# %s/cpt-sm.gguf: soft-mask omega_s 0.5\n 0.50 10 1.0\n", out);
    fclose(g);
    snprintf(p, sizeof p, "%s/elbo.csv", out);
    g = fopen(p, "w");
    assert_non_null(g);
    fprintf(g, "%s/cpt-sm.gguf,two-pass,128,256,4,1,1,5.8,339.3,66041\n", out);
    fclose(g);
    snprintf(cmd, sizeof cmd, "python3 examples/reproduce_report.py %s %s", out, dest);
    assert_int_equal(system(cmd), 0);
    const char *named[] = {"gate-sm-cpt.txt", "elbo.csv", "tables.md"};
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s/%s", dest, named[i]);
        size_t n = 0;
        char *text = test_read_file(p, &n);
        assert_non_null(strstr(text, "$OUT/cpt-sm.gguf"));
        assert_null(strstr(text, out));
        free(text);
    }
    snprintf(p, sizeof p, "%s/tables.md", dest);
    FILE *f = fopen(p, "r");
    assert_non_null(f);
    static char md[65536];
    md[fread(md, 1, sizeof md - 1, f)] = 0;
    fclose(f);
    /* zz, budget 4: 100, 130, 160 -> 130.0 +- 30.0; budget 8: 50, 52, 57 -> 53.0 +- 3.6 */
    char want[200];
    for (int k = 0; k < 2; k++) {
        double m[2], sd[2];
        for (int b = 0; b < 2; b++) {
            double a = 0, q = 0;
            for (int i = 0; i < 3; i++) a += v[b][i] * (k + 1) / 3;
            for (int i = 0; i < 3; i++) q += (v[b][i] * (k + 1) - a) * (v[b][i] * (k + 1) - a) / 2;
            m[b] = a, sd[b] = sqrt(q);
        }
        snprintf(want, sizeof want, "| %s | %.1f ± %.1f | %.1f ± %.1f |", k ? "base (binary MDLM), SM off" : "zz",
                 m[0], sd[0], m[1], sd[1]);
        printf("  report row: %s\n", want);
        assert_non_null(strstr(md, want));
    }
    assert_non_null(strstr(md, "| held-out human text | 22.0 ± 1.0 | 22.0 ± 1.0 |"));
    assert_non_null(strstr(md, "Mean ± sd over 3 seeds, 10 samples"));
    const char *plots[] = {"gen_ppl.svg", "entropy.svg", "mauve.svg"};
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s/%s", dest, plots[i]);
        f = fopen(p, "r");
        assert_non_null(f);
        static char svg[65536];
        svg[fread(svg, 1, sizeof svg - 1, f)] = 0;
        fclose(f);
        assert_int_equal(strncmp(svg, "<svg ", 5), 0);
        assert_non_null(strstr(svg, "</svg>\n"));
        assert_null(strstr(svg, "nan"));
    }
}

/* examples/reproduce.sh's control flow, with a stand-in for smdiff that
 * records its calls and writes the files each stage expects: a first run
 * makes every call (1 AR + 2 continued-pretraining runs + 2 bounds + 2 gates
 * + 6 sample configurations + info) and the report; a second run redoes
 * only the report, every stage being done. */
/* A stand-in for smdiff at dir/stub.sh that appends each call's arguments
 * to dir/stub.calls and makes the outputs the scripts expect. */
static void write_stub(char *stub, char *calls, size_t cap) {
    snprintf(stub, cap, "%s/stub.sh", dir);
    snprintf(calls, cap, "%s/stub.calls", dir);
    static const char body[] =
        "#!/bin/sh\n"
        "# stand-in for smdiff: records the call, makes the outputs the script expects\n"
        "echo \"$*\" >> CALLS\n"
        "cmd=$1; shift\n"
        "case \"$cmd\" in\n"
        "train) out=; tok=; while [ $# -gt 0 ]; do case \"$1\" in --out) out=$2;; --tokens) tok=$2;; esac; shift; done\n"
        "       [ -f \"$tok\" ] || printf 'abcd' > \"$tok\"; echo x > \"$out\"; echo \"step,loss,val_loss,tokens_per_s,elapsed_s\" > \"$out.csv\"; echo \"1,5,5.5,1,1\" >> \"$out.csv\";;\n"
        "eval) sub=$1; csv=; label=x; while [ $# -gt 0 ]; do case \"$1\" in --csv) csv=$2;; --label) label=$2;; esac; shift; done\n"
        "      case \"$sub\" in\n"
        "      elbo) echo \"m,single-pass,128,256,4,1,0,5.8,330.3,100\" >> \"$csv\";;\n"
        "      gate) echo \"# gate\";;\n"
        "      samples) for s in 1 2 3; do echo \"human,0,$s,100,110,3.1,1\" >> \"$csv\"; for b in 4 8 16 32; do echo \"$label,$b,$s,100,1000,3.2,0.9\" >> \"$csv\"; done; done;;\n"
        "      esac;;\n"
        "info) echo \"soft-mask: entropy, k 3, scale 0.4\";;\n"
        "esac\n";
    FILE *f = fopen(stub, "w");
    assert_non_null(f);
    /* the calls file's path replaces CALLS */
    for (const char *c = body; *c; c++) {
        if (!strncmp(c, "CALLS", 5)) fputs(calls, f), c += 4;
        else fputc(*c, f);
    }
    fclose(f);
    assert_int_equal(chmod(stub, 0755), 0);
}

/* the stub's calls so far, one per line, into buf; returns how many */
static int read_calls(const char *calls, char *buf, size_t cap) {
    FILE *f = fopen(calls, "r");
    assert_non_null(f);
    size_t n = fread(buf, 1, cap - 1, f);
    buf[n] = 0;
    fclose(f);
    int lines = 0;
    for (size_t i = 0; i < n; i++) lines += buf[i] == '\n';
    return lines;
}

static void test_reproduce_dry_run(void **state) {
    (void)state;
    if (system("python3 -c 'import csv' 2>/dev/null") != 0) SKIP_BECAUSE("python3 is not installed");
    char stub[300], calls[300], out[300], rep[300], cmd[1600];
    write_stub(stub, calls, sizeof stub);
    snprintf(out, sizeof out, "%s/repro", dir);
    snprintf(rep, sizeof rep, "%s/repro-report", dir);
    snprintf(cmd, sizeof cmd, "OUT=%s SMDIFF=%s REPORT=%s SMDIFF_SHARED_DATA=%s/none "
             "sh examples/reproduce.sh > /dev/null", out, stub, rep, dir);
    for (int run = 0; run < 2; run++) {
        remove(calls);
        assert_int_equal(system(cmd), 0);
        FILE *f = fopen(calls, "r");
        assert_non_null(f);
        int n = 0, samples = 0;
        char line[1024];
        while (fgets(line, sizeof line, f)) n++, samples += !strncmp(line, "eval samples", 12);
        fclose(f);
        printf("  reproduce.sh run %d: %d calls (%d sample configurations)\n", run + 1, n, samples);
        assert_int_equal(n, run ? 1 : 14);
        assert_int_equal(samples, run ? 0 : 6);
    }
    snprintf(cmd, sizeof cmd, "grep -q '(b) SM CPT, SM on' %s/tables.md", rep);
    assert_int_equal(system(cmd), 0);
    /* the corpus still to tokenize and no data folder named: stop, saying which variable */
    char msg[1024];
    snprintf(cmd, sizeof cmd, "env -u SMDIFF_SHARED_DATA OUT=%s/repro-nodata REPORT=%s/repro-nodata SMDIFF=%s "
             "sh examples/reproduce.sh 2>&1", dir, dir, stub);
    assert_int_equal(test_run(cmd, msg, sizeof msg), 2);
    assert_non_null(strstr(msg, "set SMDIFF_SHARED_DATA"));
}

/* models/train-bundled.sh: the default is AR pretraining, then the AR model
 * adapted with shifted logits, then soft-masking; finished stages are
 * skipped; `base` is the binary MDLM from scratch. */
static void test_train_bundled_dry_run(void **state) {
    (void)state;
    char stub[300], calls[300], out[300], cmd[1600];
    static char buf[8192];
    write_stub(stub, calls, sizeof stub);
    snprintf(out, sizeof out, "%s/bundled", dir);
    snprintf(cmd, sizeof cmd, "mkdir -p %s/data/tokenizers/gpt2 && touch %s/data/tokenizers/gpt2/encoder.json "
             "%s/data/tokenizers/gpt2/vocab.bpe", dir, dir, dir);
    assert_int_equal(system(cmd), 0);
    snprintf(cmd, sizeof cmd, "OUT=%s SMDIFF=%s SMDIFF_SHARED_DATA=%s/data sh models/train-bundled.sh%%s > /dev/null",
             out, stub, dir);
    char run_default[1700], run_base[1700];
    snprintf(run_default, sizeof run_default, cmd, "");
    snprintf(run_base, sizeof run_base, cmd, " base");
    remove(calls);
    assert_int_equal(system(run_default), 0);
    assert_int_equal(read_calls(calls, buf, sizeof buf), 4); /* tokenize, ar, adapt, sm */
    char want[1200];
    snprintf(want, sizeof want, "train --init %s/ar.gguf --shift-logits on --tokens %s/gutenberg.i32 --out %s/adapted.gguf",
             out, out, out);
    assert_non_null(strstr(buf, want));
    snprintf(want, sizeof want, "train --init %s/adapted.gguf --tokens %s/gutenberg.i32 --out %s/smdiff-gutenberg-18m-sm.gguf",
             out, out, out);
    assert_non_null(strstr(buf, want));
    const char *ar = strstr(buf, "--ar ");
    assert_non_null(ar);
    assert_true(ar < strstr(buf, "--shift-logits on")); /* AR first */
    assert_non_null(strstr(buf, "--corpus")); /* the first stage tokenizes */
    remove(calls);
    assert_int_equal(system(run_default), 0);
    assert_int_equal(read_calls(calls, buf, sizeof buf), 1); /* only the tokenizer export */
    remove(calls);
    assert_int_equal(system(run_base), 0);
    assert_int_equal(read_calls(calls, buf, sizeof buf), 2);
    assert_non_null(strstr(buf, "--no-sm"));
    assert_null(strstr(buf, "--corpus")); /* the token file is there */
    snprintf(cmd, sizeof cmd, "SMDIFF=%s sh models/train-bundled.sh nonsense 2>/dev/null", stub);
    int st = system(cmd);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 2);
    /* the corpus still to tokenize and no data folder named: stop, saying which variable */
    snprintf(cmd, sizeof cmd, "env -u SMDIFF_SHARED_DATA OUT=%s/bundled-nodata SMDIFF=%s sh models/train-bundled.sh 2>&1",
             dir, stub);
    assert_int_equal(test_run(cmd, buf, sizeof buf), 2);
    assert_non_null(strstr(buf, "set SMDIFF_SHARED_DATA"));
    printf("  train-bundled.sh: AR, adapt (shifted), SM stages in order; reruns skip them\n");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_elbo_uniform_exact),
        cmocka_unit_test(test_elbo_uniform_expectation),
        cmocka_unit_test(test_noise_fixed_and_errors),
        cmocka_unit_test(test_two_pass_is_wired),
        cmocka_unit_test(test_gen_ppl_own_vs_shuffled),
        cmocka_unit_test(test_adapt_ar_with_shift),
        cmocka_unit_test(test_mauve_api),
        cmocka_unit_test(test_gate_api),
        cmocka_unit_test(test_gate_reads_the_predicting_row),
        cmocka_unit_test(test_cli),
        cmocka_unit_test(test_report_script),
        cmocka_unit_test(test_reproduce_dry_run),
        cmocka_unit_test(test_train_bundled_dry_run),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
