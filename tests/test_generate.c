/* test_generate.c -- the denoising loop (lib/diffusion/generate.c).
 *
 *  - end to end on the tiny random dream and llada models of
 *    tests/ref/tiny_models.py: committed positions at every step and the
 *    final tokens equal tests/ref/decode_ref.py's reference loop, with
 *    soft-masking off, in entropy mode and in constant mode;
 *  - determinism across runs and thread counts while sampling;
 *  - callbacks (step, abort), EOS handling and a user strategy, on a
 *    synthetic model reached through the loop's model interface;
 *  - a user-registered copy of each built-in (same select, same
 *    declaration, another name) gives the built-in's tokens exactly;
 *  - no allocation after a run's first step, none at all in a second run
 *    of the same shape (a counting allocator);
 *  - bad input: each a clear error code, never a crash.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "diffusion/decoder.h"
#include "diffusion/generate.h"
#include "io/gguf.h"
#include "smdiff/smdiff.h"
#include "smdiff/smdiff_decoder.h"
#include "testutil.h"

/* ------------------------------------------------------------ helpers */

typedef struct trace {
    int n_steps;
    int n_commit[128];
    int pos[128][64];
    float max_lambda;
    int calls;
    int stop_after; /* 0: never */
    int32_t mask;   /* mask id: lambda may be non-zero only where the canvas holds it */
} trace;

static int32_t record_step(size_t step, size_t n_steps, const int32_t *canvas,
                           const uint8_t *committed, const float *lambda, size_t n, void *ud) {
    trace *t = ud;
    assert_int_equal(step, t->n_steps);
    assert_true(step < n_steps);
    t->n_commit[step] = 0;
    for (size_t p = 0; p < n; p++) {
        if (committed[p]) t->pos[step][t->n_commit[step]++] = p;
        if (lambda[p] > t->max_lambda) t->max_lambda = lambda[p];
        if (lambda[p] > 0) assert_int_equal(canvas[p], t->mask);
        if (committed[p]) assert_true(canvas[p] != t->mask);
    }
    t->n_steps++;
    t->calls++;
    return t->stop_after && t->calls >= t->stop_after;
}

static smdiff_model *load(const char *arch) { return test_load_tiny(arch, 1); }

/* ------------------------------------------------ reference decoding */

/* The soft-mask schedule of a reference case. */
static void set_softmask(smdiff_sampler *s, int mode, int k, double scale, double steep, double centre, double cst) {
    smdiff_softmask *sm;
    assert_int_equal(smdiff_softmask_create(&sm), 0);
    assert_int_equal(smdiff_softmask_set_int(sm, SMDIFF_SM_MODE, mode), 0);
    assert_int_equal(smdiff_softmask_set_int(sm, SMDIFF_SM_TOPK, k), 0);
    if (mode == SMDIFF_SM_ENTROPY) {
        assert_int_equal(smdiff_softmask_set_double(sm, SMDIFF_SM_SCALE, scale), 0);
        assert_int_equal(smdiff_softmask_set_double(sm, SMDIFF_SM_STEEPNESS, steep), 0);
        assert_int_equal(smdiff_softmask_set_double(sm, SMDIFF_SM_CENTRE, centre), 0);
    }
    if (mode == SMDIFF_SM_CONSTANT)
        assert_int_equal(smdiff_softmask_set_double(sm, SMDIFF_SM_CONSTANT_LAMBDA, cst), 0);
    assert_int_equal(smdiff_sampler_set_softmask(s, sm), 0);
    smdiff_softmask_free(sm);
}

static void test_reference_decoding(void **state) {
    (void)state;
    FILE *f = fopen("tests/data/decode_ref.txt", "r");
    assert_non_null(f);
    char tag[16], name[64], arch[16], strat[32];
    int cases = 0;
    while (fscanf(f, "%15s", tag) == 1) {
        assert_string_equal(tag, "case");
        int gen, block, steps, mode, k;
        double thr, scale, steep, centre, cst;
        assert_int_equal(fscanf(f, "%63s %15s %31s %d %d %d %lf %d %d %lf %lf %lf %lf", name, arch, strat,
                                &gen, &block, &steps, &thr, &mode, &k, &scale, &steep, &centre, &cst),
                         13);
        int np, prompt[16], want_n, want[64];
        assert_int_equal(fscanf(f, "%15s %d", tag, &np), 2);
        for (int i = 0; i < np; i++) assert_int_equal(fscanf(f, "%d", &prompt[i]), 1);
        assert_int_equal(fscanf(f, "%15s %d", tag, &want_n), 2);
        for (int i = 0; i < gen; i++) assert_int_equal(fscanf(f, "%d", &want[i]), 1);

        smdiff_model *m = load(arch);
        smdiff_sampler *s;
        assert_int_equal(smdiff_sampler_create(&s), 0);
        assert_int_equal(smdiff_sampler_set_int(s, SMDIFF_SAMPLER_GEN_LENGTH, gen), 0);
        assert_int_equal(smdiff_sampler_set_int(s, SMDIFF_SAMPLER_BLOCK_LENGTH, block), 0);
        assert_int_equal(smdiff_sampler_set_int(s, SMDIFF_SAMPLER_STEPS, steps), 0);
        assert_int_equal(smdiff_sampler_set_double(s, SMDIFF_SAMPLER_THRESHOLD, thr), 0);
        assert_int_equal(smdiff_sampler_set_strategy(s, strat), 0);
        set_softmask(s, mode, k, scale, steep, centre, cst);
        trace t;
        memset(&t, 0, sizeof t);
        int64_t mask_id;
        assert_int_equal(smdiff_model_property(m, SMDIFF_PROP_MASK_ID, &mask_id), 0);
        t.mask = (int32_t)mask_id;
        assert_int_equal(smdiff_sampler_set_step_callback(s, record_step, &t), 0);
        int32_t out[64];
        size_t n_out = (size_t)-1;
        int32_t rc = smdiff_generate_tokens(s, m, prompt, np, out, 64, &n_out);
        if (rc) fail_msg("%s: %s", name, smdiff_sampler_last_error(s));
        int g = 0, rg, rk;
        while (fscanf(f, "%15s", tag) == 1 && strcmp(tag, "end") != 0) {
            assert_string_equal(tag, "step");
            assert_int_equal(fscanf(f, "%d %d", &rg, &rk), 2);
            assert_int_equal(rg, g);
            if (g >= t.n_steps) fail_msg("%s: the loop stopped after %d steps", name, t.n_steps);
            if (rk != t.n_commit[g]) fail_msg("%s: step %d committed %d, reference %d", name, g, t.n_commit[g], rk);
            for (int i = 0; i < rk; i++) {
                int p;
                assert_int_equal(fscanf(f, "%d", &p), 1);
                if (t.pos[g][i] != p) fail_msg("%s: step %d commit %d at %d, reference %d", name, g, i, t.pos[g][i], p);
            }
            g++;
        }
        assert_int_equal(g, t.n_steps);
        assert_int_equal(n_out, want_n);
        for (int i = 0; i < gen; i++)
            if (out[i] != want[i]) fail_msg("%s: token %d is %d, reference %d", name, i, out[i], want[i]);
        if (mode == SMDIFF_SM_OFF) assert_true(t.max_lambda == 0.0f);
        else assert_true(t.max_lambda > 0.1f);
        smdiff_sampler_free(s);
        smdiff_model_free(m);
        cases++;
    }
    fclose(f);
    assert_int_equal(cases, 6);
}

/* Commits and re-masks of every step: a re-mask is a position holding a
 * token after the previous step and the mask id after this one. */
typedef struct canvas_trace {
    int n_steps, L;
    int32_t mask, prev[64];
    int n_commit[64], commit[64][64], n_remask[64], remask[64][64];
} canvas_trace;

static int32_t record_canvas(size_t step, size_t n_steps, const int32_t *canvas, const uint8_t *committed,
                             const float *lambda, size_t n, void *ud) {
    canvas_trace *t = ud;
    assert_int_equal(step, t->n_steps);
    assert_true(step < 64 && n == (size_t)t->L);
    t->n_commit[step] = t->n_remask[step] = 0;
    for (int32_t p = 0; p < (int32_t)n; p++) {
        if (committed[p]) t->commit[step][t->n_commit[step]++] = p;
        if (canvas[p] == t->mask && t->prev[p] != t->mask) t->remask[step][t->n_remask[step]++] = p;
        if (lambda[p] > 0) assert_int_equal(canvas[p], t->mask);
        t->prev[p] = canvas[p];
    }
    t->n_steps++;
    return 0;
}

/* Infilling canvases, ReMDM and SM across blocks on the tiny models:
 * every step's commits and re-masks and the final canvas equal
 * tests/ref/decode_ref.py's reference loop (decode_canvas_ref.txt). */
static void test_reference_canvas(void **state) {
    (void)state;
    FILE *f = fopen("tests/data/decode_canvas_ref.txt", "r");
    assert_non_null(f);
    char tag[16], name[64], arch[16], strat[32];
    int cases = 0, remasked = 0;
    while (fscanf(f, "%15s", tag) == 1) {
        assert_string_equal(tag, "case");
        int block, steps, mode, k, seed, across;
        double thr, scale, steep, centre, cst, eta, t_on, t_off, alpha_on, eps;
        assert_int_equal(fscanf(f, "%63s %15s %31s %d %d %lf %d %d %lf %lf %lf %lf %d %d %lf %lf %lf %lf %lf", name,
                                arch, strat, &block, &steps, &thr, &mode, &k, &scale, &steep, &centre, &cst, &seed,
                                &across, &eta, &t_on, &t_off, &alpha_on, &eps),
                         19);
        int L, n;
        int32_t canvas[64], want[64];
        assert_int_equal(fscanf(f, "%15s %d", tag, &L), 2);
        assert_true(L <= 64);
        for (int i = 0; i < L; i++) assert_int_equal(fscanf(f, "%d", &canvas[i]), 1);
        assert_int_equal(fscanf(f, "%15s %d", tag, &n), 2);
        assert_int_equal(n, L);
        for (int i = 0; i < L; i++) assert_int_equal(fscanf(f, "%d", &want[i]), 1);

        smdiff_model *m = load(arch);
        smdiff_sampler *s;
        assert_int_equal(smdiff_sampler_create(&s), 0);
        const struct {
            int32_t key;
            int64_t v;
        } ints[] = {{SMDIFF_SAMPLER_BLOCK_LENGTH, block}, {SMDIFF_SAMPLER_STEPS, steps}, {SMDIFF_SAMPLER_SEED, seed},
                    {SMDIFF_SAMPLER_SM_ACROSS_BLOCKS, across}};
        for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++)
            assert_int_equal(smdiff_sampler_set_int(s, ints[i].key, ints[i].v), 0);
        const struct {
            int32_t key;
            double v;
        } dbls[] = {{SMDIFF_SAMPLER_THRESHOLD, thr},   {SMDIFF_SAMPLER_REMDM_ETA, eta},
                    {SMDIFF_SAMPLER_REMDM_T_ON, t_on}, {SMDIFF_SAMPLER_REMDM_T_OFF, t_off},
                    {SMDIFF_SAMPLER_REMDM_ALPHA_ON, alpha_on}, {SMDIFF_SAMPLER_EPS, eps}};
        for (size_t i = 0; i < sizeof dbls / sizeof dbls[0]; i++)
            assert_int_equal(smdiff_sampler_set_double(s, dbls[i].key, dbls[i].v), 0);
        assert_int_equal(smdiff_sampler_set_strategy(s, strat), 0);
        set_softmask(s, mode, k, scale, steep, centre, cst);
        canvas_trace t;
        memset(&t, 0, sizeof t);
        int64_t mask_id;
        assert_int_equal(smdiff_model_property(m, SMDIFF_PROP_MASK_ID, &mask_id), 0);
        t.mask = (int32_t)mask_id;
        t.L = L;
        memcpy(t.prev, canvas, sizeof(int32_t) * (size_t)L);
        assert_int_equal(smdiff_sampler_set_step_callback(s, record_canvas, &t), 0);
        int32_t rc = smdiff_generate_canvas(s, m, canvas, (size_t)L);
        if (rc) fail_msg("%s: %s", name, smdiff_sampler_last_error(s));
        int g = 0, rg, rk, rr, p;
        while (fscanf(f, "%15s", tag) == 1 && strcmp(tag, "end") != 0) {
            assert_string_equal(tag, "step");
            assert_int_equal(fscanf(f, "%d %d", &rg, &rk), 2);
            assert_int_equal(rg, g);
            if (g >= t.n_steps) fail_msg("%s: the loop stopped after %d steps", name, t.n_steps);
            if (rk != t.n_commit[g]) fail_msg("%s: step %d committed %d, reference %d", name, g, t.n_commit[g], rk);
            for (int i = 0; i < rk; i++) {
                assert_int_equal(fscanf(f, "%d", &p), 1);
                if (t.commit[g][i] != p) fail_msg("%s: step %d commit %d at %d, reference %d", name, g, i, t.commit[g][i], p);
            }
            assert_int_equal(fscanf(f, "%d", &rr), 1);
            if (rr != t.n_remask[g]) fail_msg("%s: step %d re-masked %d, reference %d", name, g, t.n_remask[g], rr);
            for (int i = 0; i < rr; i++) {
                assert_int_equal(fscanf(f, "%d", &p), 1);
                if (t.remask[g][i] != p) fail_msg("%s: step %d re-mask %d at %d, reference %d", name, g, i, t.remask[g][i], p);
            }
            remasked += rr;
            g++;
        }
        assert_int_equal(g, t.n_steps);
        for (int i = 0; i < L; i++)
            if (canvas[i] != want[i]) fail_msg("%s: canvas[%d] is %d, reference %d", name, i, canvas[i], want[i]);
        if (strcmp(strat, "ddpm_cache") == 0) { /* every block ran its steps and the argmax pass */
            int nb = block ? (L - 4 + block - 1) / block : 1;
            printf("  %s: %d passes, argmax pass commits:", name, t.n_steps);
            for (int b = 0, per = steps / nb + 1; b < nb; b++) printf(" %d", t.n_commit[(b + 1) * per - 1]);
            printf("\n");
        }
        smdiff_sampler_free(s);
        smdiff_model_free(m);
        cases++;
    }
    fclose(f);
    assert_int_equal(cases, 11);
    assert_true(remasked > 10); /* the ReMDM cases do re-mask */
}

static int32_t abort_on_second_poll(void *ud) {
    int *n = ud;
    return ++*n >= 2;
}

/* The abort callback also reaches the forward pass: the first poll is
 * before step 0, the second between two layers of its forward. */
static void test_abort_between_layers(void **state) {
    (void)state;
    smdiff_model *m = load("llada");
    smdiff_sampler *s;
    assert_int_equal(smdiff_sampler_create(&s), 0);
    assert_int_equal(smdiff_sampler_set_int(s, SMDIFF_SAMPLER_GEN_LENGTH, 8), 0);
    assert_int_equal(smdiff_sampler_set_int(s, SMDIFF_SAMPLER_STEPS, 4), 0);
    int polls = 0;
    assert_int_equal(smdiff_sampler_set_abort_callback(s, abort_on_second_poll, &polls), 0);
    int32_t prompt[] = {4, 5}, out[8];
    size_t n;
    assert_int_equal(smdiff_generate_tokens(s, m, prompt, 2, out, 8, &n), SMDIFF_E_ABORTED);
    assert_non_null(strstr(smdiff_sampler_last_error(s), "during step 0"));
    assert_int_equal(polls, 2);
    smdiff_sampler_free(s);
    smdiff_model_free(m);
}

static int32_t count_steps(size_t step, size_t n_steps, const int32_t *canvas, const uint8_t *committed,
                           const float *lambda, size_t n, void *ud) {
    (*(int *)ud)++;
    return 0;
}

/* Text in, text out: the tiny dream model with Dream's tokenizer attached
 * (its first 160 ids are byte tokens, so "!" = id 0 is inside the tiny
 * vocabulary). The two-call pattern returns the cached text without
 * generating again. */
static void test_generate_text(void **state) {
    (void)state;
    const char *dir = "tests/data/tokenizers/dream-qwen2.5";
    smdiff_model *m;
    assert_int_equal(smdiff_model_create(&m), 0);
    assert_int_equal(smdiff_model_load_tokenizer(m, dir), 0);
    assert_int_equal(smdiff_model_load_file(m, "tests/data/tiny_dream_f32.gguf"), 0);
    smdiff_sampler *s;
    assert_int_equal(smdiff_sampler_create(&s), 0);
    assert_int_equal(smdiff_sampler_set_int(s, SMDIFF_SAMPLER_GEN_LENGTH, 8), 0);
    assert_int_equal(smdiff_sampler_set_int(s, SMDIFF_SAMPLER_STEPS, 4), 0);
    assert_int_equal(smdiff_sampler_set_int(s, SMDIFF_SAMPLER_STOP_AT_EOS, 0), 0);
    int steps = 0;
    assert_int_equal(smdiff_sampler_set_step_callback(s, count_steps, &steps), 0);
    size_t need = 0;
    assert_int_equal(smdiff_generate_text(s, m, "!", 0, NULL, 0, &need), SMDIFF_E_BUFFER);
    assert_int_equal(steps, 4);
    assert_true(need > 0);
    char text[256];
    size_t got = 0;
    assert_int_equal(smdiff_generate_text(s, m, "!", 0, text, sizeof text, &got), 0);
    assert_int_equal(steps, 4); /* cached: no second generation */
    assert_int_equal(got, need);
    /* Once delivered, a new call generates again (same seed: same text). */
    char again[256];
    size_t got2 = 0;
    assert_int_equal(smdiff_generate_text(s, m, "!", 0, again, sizeof again, &got2), 0);
    assert_int_equal(steps, 8);
    assert_int_equal(got2, got);
    assert_memory_equal(again, text, got);
    /* The same as tokens in, tokens out, then detokenized. */
    int32_t prompt = 0, out[8];
    size_t n;
    assert_int_equal(smdiff_generate_tokens(s, m, &prompt, 1, out, 8, &n), 0);
    char want[256];
    size_t wn = 0;
    assert_int_equal(smdiff_model_detokenize(m, out, n, 0, want, sizeof want, &wn), 0);
    assert_int_equal(wn, got);
    assert_memory_equal(want, text, got);
    /* The chat template's special tokens lie outside the tiny vocabulary. */
    assert_int_equal(smdiff_generate_text(s, m, "!", 1, text, sizeof text, &got), SMDIFF_E_RANGE);
    smdiff_sampler_free(s);
    smdiff_model_free(m);
}

/* Same seed, same tokens: twice, and on 1 and 2 threads, while sampling
 * with temperature, top-p, SM on and a random strategy. */
static void test_determinism(void **state) {
    (void)state;
    smdiff_model *m = load("dream");
    int32_t prompt[] = {3, 4, 5};
    int32_t out[3][24];
    size_t n[3];
    for (int r = 0; r < 3; r++) {
        smdiff_sampler *s;
        assert_int_equal(smdiff_sampler_create(&s), 0);
        assert_int_equal(smdiff_sampler_set_int(s, SMDIFF_SAMPLER_GEN_LENGTH, 24), 0);
        assert_int_equal(smdiff_sampler_set_int(s, SMDIFF_SAMPLER_STEPS, 12), 0);
        assert_int_equal(smdiff_sampler_set_int(s, SMDIFF_SAMPLER_STOP_AT_EOS, 0), 0);
        assert_int_equal(smdiff_sampler_set_double(s, SMDIFF_SAMPLER_TEMPERATURE, 0.9), 0);
        assert_int_equal(smdiff_sampler_set_double(s, SMDIFF_SAMPLER_TOP_P, 0.95), 0);
        assert_int_equal(smdiff_sampler_set_double(s, SMDIFF_SAMPLER_ALG_TEMP, 0.3), 0);
        assert_int_equal(smdiff_sampler_set_int(s, SMDIFF_SAMPLER_SEED, 1234), 0);
        assert_int_equal(smdiff_sampler_set_int(s, SMDIFF_SAMPLER_THREADS, r == 2 ? 2 : 1), 0);
        assert_int_equal(smdiff_generate_tokens(s, m, prompt, 3, out[r], 24, &n[r]), 0);
        assert_int_equal(n[r], 24);
        smdiff_sampler_free(s);
    }
    assert_memory_equal(out[0], out[1], sizeof out[0]);
    assert_memory_equal(out[0], out[2], sizeof out[0]);
    smdiff_model_free(m);
}

/* --------------------------------------------------- synthetic model */

#define FV 16
#define FD 4
#define FEOS 1
#define FMASK 15

typedef struct fake {
    int eos_at;      /* position whose logits favour EOS, -1 none */
    int forwards;
} fake;

static void fake_embed(void *ctx, int32_t id, float *out) {
    (void)ctx;
    for (int j = 0; j < FD; j++) out[j] = (float)cos(0.7 * id + 1.3 * j);
}

/* logits[r][v] = 3 <embd[r] + embd[r+1], E[v]>: a fixed function of the
 * input embeddings, so soft-masked inputs change the result. It keeps no
 * cache (every request is computed from the embeddings). */
static int32_t fake_forward(void *ctx, const sd_gen_fwd *seqs, size_t n_seqs, float *logits,
                            int (*abort_fn)(void *), void *abort_ud, sd_error *err) {
    fake *f = ctx;
    f->forwards++;
    if (abort_fn && abort_fn(abort_ud)) return sd_fail(err, SMDIFF_E_ABORTED, "aborted");
    for (size_t q = 0; q < n_seqs; q++) {
        const float *embd = seqs[q].embd;
        int64_t L = seqs[q].L;
        for (int64_t i = 0; i < seqs[q].n_rows; i++, logits += FV) {
            int r = seqs[q].rows[i];
            for (int v = 0; v < FV; v++) {
                float e[FD];
                fake_embed(NULL, v, e);
                double acc = 0;
                for (int j = 0; j < FD; j++)
                    acc += (embd[r * FD + j] + embd[((r + 1) % L) * FD + j]) * e[j];
                logits[v] = (float)(3 * acc) + (v == FMASK ? -50.0f : 0.0f);
            }
            if (r == f->eos_at) logits[FEOS] = 100.0f;
        }
    }
    return SMDIFF_OK;
}

static sd_gen_model fake_model(fake *f) {
    sd_gen_model gm = {FV, FD, 64, FMASK, FEOS, 0, fake_embed, fake_forward, NULL, f};
    return gm;
}

static int32_t abort_after_two(void *ud) {
    int *n = ud;
    return ++*n > 2;
}

static void test_callbacks_and_abort(void **state) {
    (void)state;
    fake f = {-1, 0};
    sd_gen_model gm = fake_model(&f);
    smdiff_sampler *s;
    assert_int_equal(smdiff_sampler_create(&s), 0);
    assert_int_equal(smdiff_sampler_set_int(s, SMDIFF_SAMPLER_GEN_LENGTH, 8), 0);
    assert_int_equal(smdiff_sampler_set_int(s, SMDIFF_SAMPLER_STEPS, 8), 0);
    int32_t prompt[] = {2, 3}, out[8];
    size_t n;
    int polls = 0;
    assert_int_equal(smdiff_sampler_set_abort_callback(s, abort_after_two, &polls), 0);
    assert_int_equal(sd_generate(s, &gm, prompt, 2, out, 8, &n), SMDIFF_E_ABORTED);
    assert_non_null(strstr(smdiff_sampler_last_error(s), "abort"));
    assert_int_equal(smdiff_sampler_set_abort_callback(s, NULL, NULL), 0);
    trace t;
    memset(&t, 0, sizeof t);
    t.mask = FMASK;
    t.stop_after = 3;
    assert_int_equal(smdiff_sampler_set_step_callback(s, record_step, &t), 0);
    assert_int_equal(sd_generate(s, &gm, prompt, 2, out, 8, &n), SMDIFF_E_ABORTED);
    assert_int_equal(t.calls, 3);
    /* A full run: one commit per step (8 steps, 8 tokens, maskgit_plus). */
    memset(&t, 0, sizeof t);
    t.mask = FMASK;
    assert_int_equal(sd_generate(s, &gm, prompt, 2, out, 8, &n), 0);
    assert_int_equal(t.n_steps, 8);
    assert_int_equal(n, 8);
    smdiff_sampler_free(s);
}

/* EOS committed with everything before it decided: the run stops early,
 * pads with EOS and reports the tokens before it. */
static void test_eos(void **state) {
    (void)state;
    fake f = {4, 0};
    sd_gen_model gm = fake_model(&f);
    smdiff_sampler *s;
    assert_int_equal(smdiff_sampler_create(&s), 0);
    assert_int_equal(smdiff_sampler_set_int(s, SMDIFF_SAMPLER_GEN_LENGTH, 12), 0);
    assert_int_equal(smdiff_sampler_set_int(s, SMDIFF_SAMPLER_STEPS, 12), 0);
    assert_int_equal(smdiff_sampler_set_strategy(s, "low_confidence"), 0);
    int32_t prompt[] = {2, 3}, out[12];
    size_t n;
    assert_int_equal(sd_generate(s, &gm, prompt, 2, out, 12, &n), 0);
    assert_int_equal(n, 2); /* positions 2, 3 then EOS at 4 */
    for (int i = 2; i < 12; i++) assert_int_equal(out[i], FEOS);
    assert_true(f.forwards < 12);
    /* stop_at_eos off: every step runs and all tokens are returned. */
    f.forwards = 0;
    assert_int_equal(smdiff_sampler_set_int(s, SMDIFF_SAMPLER_STOP_AT_EOS, 0), 0);
    assert_int_equal(sd_generate(s, &gm, prompt, 2, out, 12, &n), 0);
    assert_int_equal(n, 12);
    assert_int_equal(f.forwards, 12);
    smdiff_sampler_free(s);
}

/* A user strategy through the public plug-in interface: commit the
 * leftmost masked position each step (autoregressive order). */
static int32_t leftmost(const smdiff_step_view *v, int32_t *commit, int32_t *n_commit, int32_t *remask,
                        int32_t *n_remask, void *ud) {
    (void)remask;
    int *calls = ud;
    (*calls)++;
    size_t best = 0;
    for (size_t i = 1; i < v->n_masked; i++)
        if (v->position[i] < v->position[best]) best = i;
    commit[0] = (int32_t)best;
    *n_commit = 1;
    *n_remask = 0;
    return SMDIFF_OK;
}

static void test_user_strategy(void **state) {
    (void)state;
    static int calls;
    smdiff_decoder d = {sizeof d, SMDIFF_DECODER_ABI_VERSION, "test_leftmost", "left to right", leftmost, NULL,
                        0, 0, 0, 0, 0, 0};
    assert_int_equal(smdiff_decoder_register(&d, &calls), 0);
    fake f = {-1, 0};
    sd_gen_model gm = fake_model(&f);
    smdiff_sampler *s;
    assert_int_equal(smdiff_sampler_create(&s), 0);
    assert_int_equal(smdiff_sampler_set_int(s, SMDIFF_SAMPLER_GEN_LENGTH, 6), 0);
    assert_int_equal(smdiff_sampler_set_int(s, SMDIFF_SAMPLER_STEPS, 6), 0);
    assert_int_equal(smdiff_sampler_set_strategy(s, "test_leftmost"), 0);
    trace t;
    memset(&t, 0, sizeof t);
    t.mask = FMASK;
    assert_int_equal(smdiff_sampler_set_step_callback(s, record_step, &t), 0);
    int32_t prompt[] = {2}, out[6];
    size_t n;
    assert_int_equal(sd_generate(s, &gm, prompt, 1, out, 6, &n), 0);
    assert_int_equal(calls, 6);
    for (int g = 0; g < 6; g++) {
        assert_int_equal(t.n_commit[g], 1);
        assert_int_equal(t.pos[g][0], 1 + g);
    }
    assert_int_equal(smdiff_decoder_unregister("test_leftmost"), 0);
    assert_int_equal(sd_generate(s, &gm, prompt, 1, out, 6, &n), SMDIFF_E_NOT_FOUND);
    smdiff_sampler_free(s);
}

/* --------------------------------- declarations, not names, decide */

/* A run's output and a fingerprint of every step (positions committed,
 * lambda per position), so two runs compare step by step. */
typedef struct run_result {
    int32_t rc, out[24], n;
    uint64_t steps;
} run_result;

static int32_t fingerprint(size_t step, size_t n_steps, const int32_t *canvas, const uint8_t *committed,
                           const float *lambda, size_t n, void *ud) {
    uint64_t *h = ud;
    *h = *h * 1000003u + (uint64_t)step * 31u + (uint64_t)n_steps;
    for (size_t p = 0; p < n; p++) {
        uint32_t bits;
        memcpy(&bits, &lambda[p], sizeof bits);
        *h = (*h * 131u + (uint64_t)(uint32_t)canvas[p] + 7u * committed[p]) * 17u + bits;
    }
    return 0;
}

/* One configuration of the comparison: model, strategy, prompt, seed,
 * temperature (and with it top-p/alg_temp), SM mode, block length. */
/* as_canvas: the prompt and 24 masks through smdiff_generate_canvas; eos:
 * SMDIFF_SAMPLER_STOP_AT_EOS. */
static run_result run_config_as(smdiff_model *m, const char *strategy, int cfg, int as_canvas, int eos) {
    static const double temps[] = {0.0, 0.8, 1.4};
    static const int32_t prompts[3][3] = {{4, 5, 6}, {9, 2, 7}, {3, 3, 1}};
    int t = cfg % 3, sm_mode = (cfg / 3) % 3, pr = (cfg / 9) % 3;
    smdiff_sampler *s;
    assert_int_equal(smdiff_sampler_create(&s), 0);
    assert_int_equal(smdiff_sampler_set_int(s, SMDIFF_SAMPLER_GEN_LENGTH, 24), 0);
    assert_int_equal(smdiff_sampler_set_int(s, SMDIFF_SAMPLER_BLOCK_LENGTH, cfg % 2 ? 8 : 0), 0);
    assert_int_equal(smdiff_sampler_set_int(s, SMDIFF_SAMPLER_STEPS, cfg % 2 ? 12 : 8), 0);
    assert_int_equal(smdiff_sampler_set_double(s, SMDIFF_SAMPLER_TEMPERATURE, temps[t]), 0);
    assert_int_equal(smdiff_sampler_set_double(s, SMDIFF_SAMPLER_TOP_P, t == 1 ? 0.9 : 1.0), 0);
    assert_int_equal(smdiff_sampler_set_double(s, SMDIFF_SAMPLER_ALG_TEMP, t == 2 ? 0.5 : 0.0), 0);
    assert_int_equal(smdiff_sampler_set_double(s, SMDIFF_SAMPLER_THRESHOLD, 0.05), 0);
    assert_int_equal(smdiff_sampler_set_int(s, SMDIFF_SAMPLER_SEED, 11 + cfg), 0);
    assert_int_equal(smdiff_sampler_set_int(s, SMDIFF_SAMPLER_STOP_AT_EOS, eos), 0);
    assert_int_equal(smdiff_sampler_set_strategy(s, strategy), 0);
    smdiff_softmask *sm;
    assert_int_equal(smdiff_softmask_create(&sm), 0);
    assert_int_equal(smdiff_softmask_set_int(sm, SMDIFF_SM_MODE, sm_mode), 0);
    if (sm_mode == SMDIFF_SM_ENTROPY) {
        assert_int_equal(smdiff_softmask_set_double(sm, SMDIFF_SM_SCALE, 0.9), 0);
        assert_int_equal(smdiff_softmask_set_double(sm, SMDIFF_SM_CENTRE, -3.0), 0);
    }
    assert_int_equal(smdiff_sampler_set_softmask(s, sm), 0);
    smdiff_softmask_free(sm);
    run_result r;
    memset(&r, 0, sizeof r);
    assert_int_equal(smdiff_sampler_set_step_callback(s, fingerprint, &r.steps), 0);
    if (as_canvas) {
        int64_t mask_id, eos_id;
        assert_int_equal(smdiff_model_property(m, SMDIFF_PROP_MASK_ID, &mask_id), 0);
        assert_int_equal(smdiff_model_property(m, SMDIFF_PROP_EOS_ID, &eos_id), 0);
        int32_t canvas[27];
        memcpy(canvas, prompts[pr], sizeof prompts[pr]);
        for (int i = 3; i < 27; i++) canvas[i] = (int32_t)mask_id;
        r.rc = smdiff_generate_canvas(s, m, canvas, 27);
        memcpy(r.out, canvas + 3, sizeof r.out);
        r.n = 24;
        for (int i = 0; eos && i < 24; i++)
            if (r.out[i] == eos_id) {
                r.n = i;
                break;
            }
    } else {
        size_t n = 0;
        r.rc = smdiff_generate_tokens(s, m, prompts[pr], 3, r.out, 24, &n);
        r.n = (int32_t)n;
    }
    if (r.rc) fail_msg("%s, configuration %d: %s", strategy, cfg, smdiff_sampler_last_error(s));
    smdiff_sampler_free(s);
    return r;
}

static run_result run_config(smdiff_model *m, const char *strategy, int cfg) {
    return run_config_as(m, strategy, cfg, 0, 0);
}

/* A user-registered copy of each built-in (its select, its declaration,
 * another name) gives the built-in's tokens and steps exactly, over
 * prompts, seeds, temperatures (with top-p and alg_temp), SM off, entropy
 * and constant, one block and three, on both tiny models. A copy that
 * declares another schedule does not: the declaration, not the name,
 * decides. */
static void test_user_copies_of_builtins(void **state) {
    (void)state;
    const char *archs[] = {"dream", "llada"};
    for (int a = 0; a < 2; a++) {
        smdiff_model *m = load(archs[a]);
        for (int i = 0; sd_builtin_decoders[i]; i++) {
            const char *name = sd_builtin_decoders[i]->name;
            smdiff_decoder copy;
            void *ud;
            assert_int_equal(sd_decoder_lookup(name, &copy, &ud), 0);
            char copy_name[64];
            snprintf(copy_name, sizeof copy_name, "copy_of_%s", name);
            copy.name = copy_name;
            copy.description = "a user strategy declared as a built-in";
            assert_int_equal(smdiff_decoder_register(&copy, NULL), 0);
            for (int cfg = 0; cfg < 27; cfg++) {
                run_result want = run_config(m, name, cfg), got = run_config(m, copy_name, cfg);
                if (memcmp(&want, &got, sizeof want) != 0)
                    fail_msg("%s, %s, configuration %d: the copy differs from the built-in", archs[a], name,
                             cfg);
            }
            assert_int_equal(smdiff_decoder_unregister(copy_name), 0);
        }
        /* low_confidence declared with Dream's schedule instead */
        smdiff_decoder other;
        void *ud;
        assert_int_equal(sd_decoder_lookup("low_confidence", &other, &ud), 0);
        other.name = "other_schedule";
        other.schedule = SMDIFF_SCHEDULE_TIMESTEP;
        assert_int_equal(smdiff_decoder_register(&other, NULL), 0);
        int differs = 0;
        for (int cfg = 0; cfg < 27; cfg++) {
            run_result want = run_config(m, "low_confidence", cfg), got = run_config(m, "other_schedule", cfg);
            differs += memcmp(&want, &got, sizeof want) != 0;
        }
        assert_true(differs > 0);
        assert_int_equal(smdiff_decoder_unregister("other_schedule"), 0);
        smdiff_model_free(m);
    }
}

/* ------------------------------------------------------- infilling */

/* A prompt followed by masks, given as a canvas, decodes exactly as the
 * prompt does through smdiff_generate_tokens: every built-in (ReMDM's
 * included) over run_config's configurations (seeds, temperatures with
 * top-p and alg_temp, SM off/entropy/constant, one block and three), each
 * step fingerprinted, with EOS handling off and on, on both tiny models. */
static void test_canvas_equals_prompt(void **state) {
    (void)state;
    const char *archs[] = {"dream", "llada"};
    for (int a = 0; a < 2; a++) {
        smdiff_model *m = load(archs[a]);
        for (int i = 0; sd_builtin_decoders[i]; i++)
            for (int cfg = 0; cfg < 27; cfg += 2)
                for (int eos = 0; eos < 2; eos++) {
                    const char *name = sd_builtin_decoders[i]->name;
                    run_result want = run_config_as(m, name, cfg, 0, eos), got = run_config_as(m, name, cfg, 1, eos);
                    if (memcmp(&want, &got, sizeof want) != 0)
                        fail_msg("%s, %s, configuration %d, eos %d: the canvas differs from the prompt", archs[a],
                                 name, cfg, eos);
                }
        smdiff_model_free(m);
    }
}

/* Lambda seen outside [lo, hi) of the canvas, and masks at the end. */
typedef struct infill_watch {
    int32_t mask;
    int steps;
} infill_watch;

static int32_t count_calls(size_t step, size_t n_steps, const int32_t *canvas, const uint8_t *committed,
                           const float *lambda, size_t n, void *ud) {
    infill_watch *w = ud;
    w->steps++;
    for (int32_t p = 0; p < (int32_t)n; p++) {
        if (lambda[p] > 0) assert_int_equal(canvas[p], w->mask);
        if (committed[p] && canvas[p] == w->mask) fail_msg("committed the mask id at %d step %zu", p, step);
    }
    return 0;
}

/* Every built-in fills a canvas with a prefix, two spans around context
 * and a suffix, with SM off, entropy and constant, one block and blocks
 * that cross from one span to the next, SM across blocks off and on:
 * context is never changed, nothing stays masked, the same seed gives the
 * same canvas, and the suffix is context the model reads (changing it
 * changes the fills). Greedy: sampling at a temperature, the tiny random
 * model can draw the mask id itself as a token (the loop, like Dream's and
 * LLaDA's, does not exclude it), which would leave a position masked. */
static void test_infill_every_strategy(void **state) {
    (void)state;
    smdiff_model *m = load("llada");
    const int32_t M = 126;
    const int32_t base[16] = {4, 5, M, M, M, M, 9, 10, M, M, M, M, 11, 12, 13, 14};
    int suffix_mattered = 0;
    for (int i = 0; sd_builtin_decoders[i]; i++)
        for (int cfg = 0; cfg < 12; cfg++) {
            int sm_mode = cfg % 3, block = (cfg / 3) % 2 ? 4 : 0, across = cfg / 6;
            int32_t out[2][16];
            for (int variant = 0; variant < 3; variant++) {
                smdiff_sampler *s;
                assert_int_equal(smdiff_sampler_create(&s), 0);
                assert_int_equal(smdiff_sampler_set_int(s, SMDIFF_SAMPLER_BLOCK_LENGTH, block), 0);
                assert_int_equal(smdiff_sampler_set_int(s, SMDIFF_SAMPLER_STEPS, 4), 0);
                assert_int_equal(smdiff_sampler_set_int(s, SMDIFF_SAMPLER_SEED, 5 + cfg), 0);
                assert_int_equal(smdiff_sampler_set_int(s, SMDIFF_SAMPLER_SM_ACROSS_BLOCKS, across), 0);
                assert_int_equal(smdiff_sampler_set_int(s, SMDIFF_SAMPLER_STOP_AT_EOS, 0), 0);
                assert_int_equal(smdiff_sampler_set_double(s, SMDIFF_SAMPLER_THRESHOLD, 0.05), 0);
                assert_int_equal(smdiff_sampler_set_double(s, SMDIFF_SAMPLER_REMDM_ETA, 0.3), 0);
                assert_int_equal(smdiff_sampler_set_strategy(s, sd_builtin_decoders[i]->name), 0);
                smdiff_softmask *sm;
                assert_int_equal(smdiff_softmask_create(&sm), 0);
                assert_int_equal(smdiff_softmask_set_int(sm, SMDIFF_SM_MODE, sm_mode), 0);
                assert_int_equal(smdiff_softmask_set_double(sm, SMDIFF_SM_SCALE, 0.9), 0);
                assert_int_equal(smdiff_sampler_set_softmask(s, sm), 0);
                smdiff_softmask_free(sm);
                infill_watch w = {M, 0};
                assert_int_equal(smdiff_sampler_set_step_callback(s, count_calls, &w), 0);
                int32_t canvas[16];
                memcpy(canvas, base, sizeof canvas);
                if (variant == 2) canvas[14] = 40, canvas[15] = 41; /* another suffix */
                int32_t rc = smdiff_generate_canvas(s, m, canvas, 16);
                if (rc) fail_msg("%s, configuration %d: %s", sd_builtin_decoders[i]->name, cfg,
                                 smdiff_sampler_last_error(s));
                assert_true(w.steps > 0);
                for (int p = 0; p < 16; p++) {
                    if (base[p] != M && !(variant == 2 && p >= 14)) assert_int_equal(canvas[p], base[p]);
                    if (canvas[p] == M)
                        fail_msg("%s, configuration %d: position %d still masked", sd_builtin_decoders[i]->name, cfg, p);
                }
                if (variant < 2) memcpy(out[variant], canvas, sizeof canvas);
                else suffix_mattered += memcmp(out[0], canvas, sizeof(int32_t) * 14) != 0;
                smdiff_sampler_free(s);
            }
            assert_memory_equal(out[0], out[1], sizeof out[0]);
        }
    assert_true(suffix_mattered > 0);
    smdiff_model_free(m);
}

/* EOS works per span: an EOS in the first span pads the rest of that span
 * only; the context between the spans and the suffix are kept and the
 * second span is still decoded. (The synthetic model favours EOS at
 * position 3.) */
static void test_infill_eos_per_span(void **state) {
    (void)state;
    fake f = {3, 0};
    sd_gen_model gm = fake_model(&f);
    smdiff_sampler *s;
    assert_int_equal(smdiff_sampler_create(&s), 0);
    assert_int_equal(smdiff_sampler_set_int(s, SMDIFF_SAMPLER_STEPS, 8), 0);
    assert_int_equal(smdiff_sampler_set_strategy(s, "low_confidence"), 0);
    const int32_t M = FMASK;
    int32_t canvas[12] = {2, M, M, M, M, M, 3, M, M, M, 4, 5};
    assert_int_equal(sd_generate_canvas(s, &gm, canvas, 12), 0);
    assert_int_equal(canvas[0], 2);
    assert_int_equal(canvas[3], FEOS);
    assert_int_equal(canvas[4], FEOS);
    assert_int_equal(canvas[5], FEOS);
    assert_int_equal(canvas[6], 3);
    assert_int_equal(canvas[10], 4);
    assert_int_equal(canvas[11], 5);
    for (int p = 7; p < 10; p++) assert_true(canvas[p] != M && canvas[p] != FEOS);
    assert_true(canvas[1] != M && canvas[2] != M);
    /* A span that runs to the end of the canvas behaves as a prompt's
     * generation: the run stops once it is padded. */
    f.eos_at = 8;
    f.forwards = 0;
    int32_t tail[10] = {2, M, M, 3, M, M, M, M, M, M};
    assert_int_equal(smdiff_sampler_set_int(s, SMDIFF_SAMPLER_STEPS, 8), 0);
    assert_int_equal(sd_generate_canvas(s, &gm, tail, 10), 0);
    for (int p = 8; p < 10; p++) assert_int_equal(tail[p], FEOS);
    assert_int_equal(tail[3], 3);
    assert_true(f.forwards < 8);
    smdiff_sampler_free(s);
}

/* SM across blocks: with SM off it changes nothing; with SM on but every
 * weight 0 (a window no step reaches) the extra rows it computes leave the
 * block's draws alone (they are keyed by position), so tokens are the
 * same; with SM on, masked positions of later blocks get a weight during
 * earlier blocks and a block's first step uses the last prediction
 * (lambda > 0 reported before it), which never happens with the option
 * off. */
typedef struct lambda_watch {
    int32_t mask;
    int P, B, steps_per_block, step;
    int outside_block, at_block_start;
} lambda_watch;

static int32_t watch_lambda(size_t step, size_t n_steps, const int32_t *canvas, const uint8_t *committed,
                            const float *lambda, size_t n, void *ud) {
    lambda_watch *w = ud;
    int block = step / w->steps_per_block, last = (step + 1) % w->steps_per_block == 0;
    for (int32_t p = 0; p < (int32_t)n; p++) {
        if (lambda[p] > 0) assert_int_equal(canvas[p], w->mask);
        int bp = p < w->P ? -1 : (p - w->P) / w->B;
        if (lambda[p] > 0 && bp > block) w->outside_block++;
        if (lambda[p] > 0 && last && bp == block + 1) w->at_block_start++;
    }
    return 0;
}

static void test_sm_across_blocks(void **state) {
    (void)state;
    smdiff_model *m = load("dream");
    int32_t prompt[] = {5, 17, 33}, out[3][24];
    size_t n;
    for (int mode = 0; mode < 3; mode++) {
        lambda_watch w[2];
        for (int across = 0; across < 2; across++) {
            smdiff_sampler *s;
            assert_int_equal(smdiff_sampler_create(&s), 0);
            assert_int_equal(smdiff_sampler_set_int(s, SMDIFF_SAMPLER_GEN_LENGTH, 24), 0);
            assert_int_equal(smdiff_sampler_set_int(s, SMDIFF_SAMPLER_BLOCK_LENGTH, 8), 0);
            assert_int_equal(smdiff_sampler_set_int(s, SMDIFF_SAMPLER_STEPS, 12), 0);
            assert_int_equal(smdiff_sampler_set_int(s, SMDIFF_SAMPLER_STOP_AT_EOS, 0), 0);
            assert_int_equal(smdiff_sampler_set_double(s, SMDIFF_SAMPLER_TEMPERATURE, 0.8), 0);
            assert_int_equal(smdiff_sampler_set_int(s, SMDIFF_SAMPLER_SEED, 3), 0);
            assert_int_equal(smdiff_sampler_set_int(s, SMDIFF_SAMPLER_SM_ACROSS_BLOCKS, across), 0);
            smdiff_softmask *sm;
            assert_int_equal(smdiff_softmask_create(&sm), 0);
            assert_int_equal(smdiff_softmask_set_int(sm, SMDIFF_SM_MODE, mode ? SMDIFF_SM_CONSTANT : SMDIFF_SM_OFF), 0);
            /* mode 2: SM on, but a window no step reaches (lambda always 0) */
            if (mode == 2) assert_int_equal(smdiff_softmask_set_double(sm, SMDIFF_SM_WINDOW_START, 0.999), 0);
            assert_int_equal(smdiff_sampler_set_softmask(s, sm), 0);
            smdiff_softmask_free(sm);
            lambda_watch z = {158, 3, 8, 4, 0, 0, 0};
            w[across] = z;
            assert_int_equal(smdiff_sampler_set_step_callback(s, watch_lambda, &w[across]), 0);
            assert_int_equal(smdiff_generate_tokens(s, m, prompt, 3, out[across], 24, &n), 0);
            smdiff_sampler_free(s);
        }
        if (mode != 1) assert_memory_equal(out[0], out[1], sizeof out[0]);
        assert_int_equal(w[0].outside_block, 0);
        assert_int_equal(w[0].at_block_start, 0);
        if (mode == 1) {
            assert_true(w[1].outside_block > 0);
            assert_int_equal(w[1].at_block_start, 16); /* blocks 2 and 3 start with 8 weighted masks each */
        }
    }
    smdiff_model_free(m);
}

/* Text infilling on the bundled model (GPT-2's tokenizer with a mask
 * token, shifted logits): the two-call pattern returns the cached text
 * without decoding again; the text is the span of the same canvas built
 * by hand and filled through smdiff_generate_canvas, cut at its first EOS;
 * with an empty suffix it is smdiff_generate_text's continuation. */
static void test_infill_text(void **state) {
    (void)state;
    smdiff_model *m;
    assert_int_equal(smdiff_model_create(&m), 0);
    assert_int_equal(smdiff_model_set_int(m, SMDIFF_MODEL_THREADS, 1), 0);
    assert_int_equal(smdiff_model_load_file(m, "models/smdiff-gutenberg-18m-sm.gguf"), 0);
    smdiff_sampler *s;
    assert_int_equal(smdiff_sampler_create(&s), 0);
    assert_int_equal(smdiff_sampler_set_int(s, SMDIFF_SAMPLER_GEN_LENGTH, 8), 0);
    assert_int_equal(smdiff_sampler_set_int(s, SMDIFF_SAMPLER_STEPS, 8), 0);
    assert_int_equal(smdiff_sampler_set_int(s, SMDIFF_SAMPLER_THREADS, 1), 0);
    int steps = 0;
    assert_int_equal(smdiff_sampler_set_step_callback(s, count_steps, &steps), 0);
    const char *prefix = "The old man looked at the sea", *suffix = " and went home to sleep.";
    size_t need = 0, got = 0;
    assert_int_equal(smdiff_generate_infill_text(s, m, prefix, suffix, NULL, 0, &need), SMDIFF_E_BUFFER);
    assert_int_equal(steps, 8);
    char text[512];
    assert_int_equal(smdiff_generate_infill_text(s, m, prefix, suffix, text, sizeof text, &got), 0);
    assert_int_equal(steps, 8); /* cached */
    assert_int_equal(got, need);
    /* the same canvas by hand */
    int32_t canvas[64];
    size_t np = 0, ns = 0;
    assert_int_equal(smdiff_model_tokenize(m, prefix, strlen(prefix), SMDIFF_TOKENIZE_PARSE_SPECIAL, canvas, 64, &np), 0);
    for (int i = 0; i < 8; i++) canvas[np + (size_t)i] = 50257;
    assert_int_equal(smdiff_model_tokenize(m, suffix, strlen(suffix), SMDIFF_TOKENIZE_PARSE_SPECIAL, canvas + np + 8,
                                           64 - np - 8, &ns), 0);
    int32_t keep_suffix[64];
    memcpy(keep_suffix, canvas + np + 8, sizeof(int32_t) * ns);
    assert_int_equal(smdiff_generate_canvas(s, m, canvas, np + 8 + ns), 0);
    assert_memory_equal(canvas + np + 8, keep_suffix, sizeof(int32_t) * ns);
    size_t span = 8;
    for (size_t i = 0; i < 8; i++)
        if (canvas[np + i] == 50256) {
            span = i;
            break;
        }
    char want[512];
    size_t wn = 0;
    assert_int_equal(smdiff_model_detokenize(m, canvas + np, span, 0, want, sizeof want, &wn), 0);
    assert_int_equal(wn, got);
    assert_memory_equal(want, text, got);
    /* no suffix: a continuation, as smdiff_generate_text */
    char cont[512], plain[512];
    size_t nc = 0, npl = 0;
    assert_int_equal(smdiff_generate_infill_text(s, m, prefix, "", cont, sizeof cont, &nc), 0);
    assert_int_equal(smdiff_generate_text(s, m, prefix, 0, plain, sizeof plain, &npl), 0);
    assert_int_equal(nc, npl);
    assert_memory_equal(cont, plain, nc);
    /* bad arguments */
    assert_int_equal(smdiff_generate_infill_text(s, m, NULL, suffix, text, sizeof text, &got), SMDIFF_E_INVAL);
    assert_int_equal(smdiff_generate_infill_text(s, m, prefix, NULL, text, sizeof text, &got), SMDIFF_E_INVAL);
    assert_int_equal(smdiff_generate_infill_text(s, m, prefix, suffix, NULL, 8, &got), SMDIFF_E_INVAL);
    assert_int_equal(smdiff_generate_infill_text(NULL, m, prefix, suffix, text, sizeof text, &got), SMDIFF_E_INVAL);
    /* shifted logits: an empty prefix leaves position 0 to nobody */
    assert_int_equal(smdiff_generate_infill_text(s, m, "", suffix, text, sizeof text, &got), SMDIFF_E_INVAL);
    assert_non_null(strstr(smdiff_sampler_last_error(s), "position 0"));
    smdiff_sampler_free(s);
    smdiff_model_free(m);
}

/* `smdiff generate` fills {{fill:N}} markers and the span before
 * --suffix, printing the whole text: the prompt's text and the suffix come
 * back unchanged around the fill; a malformed marker and --chat with
 * infilling are refused with exit status 2. */
static void test_cli_infill(void **state) {
    (void)state;
    const char *cli = test_cli_path();
    if (!cli) SKIP_BECAUSE("the smdiff CLI is not built");
    char cmd[1024], out[4096];
    const char *model = "-m models/smdiff-gutenberg-18m-sm.gguf -q --steps 6";
    snprintf(cmd, sizeof cmd, "%s generate %s -p 'The old man walked{{fill:6}} and went home.'", cli, model);
    assert_int_equal(test_run(cmd, out, sizeof out), 0);
    assert_true(strncmp(out, "The old man walked", 18) == 0);
    size_t n = strlen(out);
    assert_true(n > 18 + 16 && strcmp(out + n - 16, " and went home.\n") == 0);
    snprintf(cmd, sizeof cmd, "%s generate %s --gen-len 6 -p 'It was a cold night' --suffix ' and then he slept.'",
             cli, model);
    assert_int_equal(test_run(cmd, out, sizeof out), 0);
    n = strlen(out);
    assert_true(strncmp(out, "It was a cold night", 19) == 0);
    assert_true(n > 19 + 20 && strcmp(out + n - 20, " and then he slept.\n") == 0);
    snprintf(cmd, sizeof cmd, "%s generate %s -p 'It was {{fill:x}}' 2>/dev/null", cli, model);
    assert_int_equal(test_run(cmd, out, sizeof out), 2);
    snprintf(cmd, sizeof cmd, "%s generate %s --chat -p 'Hi' --suffix '.' 2>/dev/null", cli, model);
    assert_int_equal(test_run(cmd, out, sizeof out), 2);
}

/* ------------------------------------------------------------- ReMDM */

/* remdm_cap with eta = 0 is MDLM's step, Dream's origin: the same tokens
 * and steps. More steps than tokens are refused for a strategy that does
 * not re-mask, allowed for ReMDM (inference-time scaling), and a
 * re-masking strategy runs every step of its budget. A re-masked
 * position's soft-mask weight is the rule's at entropy 0. */
typedef struct remask_watch {
    int32_t mask, prev[64];
    int steps, remasks, checked;
    float want;
} remask_watch;

static int32_t watch_remask(size_t step, size_t n_steps, const int32_t *canvas, const uint8_t *committed,
                            const float *lambda, size_t n, void *ud) {
    remask_watch *w = ud;
    for (int32_t p = 0; p < (int32_t)n; p++) {
        if (w->steps > 0 && canvas[p] == w->mask && w->prev[p] != w->mask) {
            w->remasks++;
            if (step + 1 < n_steps) { /* gate 1 before the last step */
                assert_float_equal(lambda[p], w->want, 1e-6);
                w->checked++;
            }
        }
        w->prev[p] = canvas[p];
    }
    w->steps++;
    return 0;
}

static void test_remdm(void **state) {
    (void)state;
    smdiff_model *m = load("dream");
    /* eta = 0: origin's tokens. */
    for (int cfg = 0; cfg < 27; cfg++) {
        int32_t out[2][16];
        for (int which = 0; which < 2; which++) {
            smdiff_sampler *s;
            assert_int_equal(smdiff_sampler_create(&s), 0);
            assert_int_equal(smdiff_sampler_set_int(s, SMDIFF_SAMPLER_GEN_LENGTH, 16), 0);
            assert_int_equal(smdiff_sampler_set_int(s, SMDIFF_SAMPLER_BLOCK_LENGTH, cfg % 2 ? 8 : 0), 0);
            assert_int_equal(smdiff_sampler_set_int(s, SMDIFF_SAMPLER_STEPS, 8), 0);
            assert_int_equal(smdiff_sampler_set_int(s, SMDIFF_SAMPLER_SEED, cfg), 0);
            assert_int_equal(smdiff_sampler_set_double(s, SMDIFF_SAMPLER_TEMPERATURE, cfg % 3 ? 0.9 : 0.0), 0);
            assert_int_equal(smdiff_sampler_set_double(s, SMDIFF_SAMPLER_REMDM_ETA, 0.0), 0);
            assert_int_equal(smdiff_sampler_set_strategy(s, which ? "remdm_cap" : "origin"), 0);
            int32_t prompt[] = {4, 5, 6};
            size_t n;
            assert_int_equal(smdiff_generate_tokens(s, m, prompt, 3, out[which], 16, &n), 0);
            smdiff_sampler_free(s);
        }
        assert_memory_equal(out[0], out[1], sizeof out[0]);
    }
    /* steps > gen_length */
    smdiff_sampler *s;
    assert_int_equal(smdiff_sampler_create(&s), 0);
    /* the options' bounds and names */
    assert_int_equal(smdiff_sampler_set_double(s, SMDIFF_SAMPLER_REMDM_ALPHA_ON, 1.0), SMDIFF_E_RANGE);
    assert_int_equal(smdiff_sampler_set_double(s, SMDIFF_SAMPLER_REMDM_ALPHA_ON, 0.0), SMDIFF_E_RANGE);
    assert_int_equal(smdiff_sampler_set_double(s, SMDIFF_SAMPLER_REMDM_ETA, 1.5), SMDIFF_E_RANGE);
    assert_int_equal(smdiff_sampler_set_double(s, SMDIFF_SAMPLER_REMDM_T_ON, NAN), SMDIFF_E_RANGE);
    assert_int_equal(smdiff_sampler_set_int(s, SMDIFF_SAMPLER_SM_ACROSS_BLOCKS, 2), SMDIFF_E_RANGE);
    const char *names[] = {"sm_across_blocks", "remdm_eta", "remdm_t_on", "remdm_t_off", "remdm_alpha_on"};
    const int32_t keys[] = {SMDIFF_SAMPLER_SM_ACROSS_BLOCKS, SMDIFF_SAMPLER_REMDM_ETA, SMDIFF_SAMPLER_REMDM_T_ON,
                            SMDIFF_SAMPLER_REMDM_T_OFF, SMDIFF_SAMPLER_REMDM_ALPHA_ON};
    for (int i = 0; i < 5; i++) {
        int32_t key = -1;
        assert_int_equal(smdiff_sampler_option_key(names[i], &key), 0);
        assert_int_equal(key, keys[i]);
    }
    assert_int_equal(smdiff_sampler_set_int(s, SMDIFF_SAMPLER_GEN_LENGTH, 8), 0);
    assert_int_equal(smdiff_sampler_set_int(s, SMDIFF_SAMPLER_STEPS, 32), 0);
    assert_int_equal(smdiff_sampler_set_int(s, SMDIFF_SAMPLER_STOP_AT_EOS, 0), 0);
    int32_t prompt[] = {4, 5, 6}, out[8];
    size_t n;
    assert_int_equal(smdiff_generate_tokens(s, m, prompt, 3, out, 8, &n), SMDIFF_E_INVAL);
    assert_non_null(strstr(smdiff_sampler_last_error(s), "steps"));
    const char *remdm[] = {"remdm_cap", "remdm_loop"};
    for (int i = 0; i < 2; i++) {
        assert_int_equal(smdiff_sampler_set_strategy(s, remdm[i]), 0);
        assert_int_equal(smdiff_sampler_set_double(s, SMDIFF_SAMPLER_REMDM_ETA, 0.3), 0);
        smdiff_softmask *sm;
        assert_int_equal(smdiff_softmask_create(&sm), 0);
        assert_int_equal(smdiff_softmask_set_double(sm, SMDIFF_SM_SCALE, 0.8), 0);
        assert_int_equal(smdiff_sampler_set_softmask(s, sm), 0);
        remask_watch w;
        memset(&w, 0, sizeof w);
        w.mask = 158;
        /* the weight at entropy 0: omega_s * sigmoid(omega_a * (0 - omega_b)) */
        w.want = (float)(0.8 / (1.0 + exp(-6.66 * 0.75)));
        assert_int_equal(smdiff_sampler_set_step_callback(s, watch_remask, &w), 0);
        assert_int_equal(smdiff_generate_tokens(s, m, prompt, 3, out, 8, &n), 0);
        assert_int_equal(w.steps, 32); /* every step, masks or not */
        assert_true(w.remasks > 0 && w.checked > 0);
        for (int p = 0; p < 8; p++) assert_true(out[p] != 158);
        /* with SM off, re-masked positions get no weight */
        assert_int_equal(smdiff_softmask_set_int(sm, SMDIFF_SM_MODE, SMDIFF_SM_OFF), 0);
        assert_int_equal(smdiff_sampler_set_softmask(s, sm), 0);
        smdiff_softmask_free(sm);
        memset(&w, 0, sizeof w);
        w.mask = 158;
        w.want = 0.0f;
        assert_int_equal(smdiff_generate_tokens(s, m, prompt, 3, out, 8, &n), 0);
        assert_true(w.remasks > 0 && w.checked > 0);
    }
    smdiff_sampler_free(s);
    smdiff_model_free(m);
}

/* Re-masks a strategy may not ask for: a prompt position, a position of
 * another block, the same position twice, more than the capacity. */
static int bad_remask_kind;

static int32_t bad_remasker(const smdiff_step_view *v, int32_t *commit, int32_t *n_commit, int32_t *remask,
                            int32_t *n_remask, void *ud) {
    (void)ud;
    commit[0] = 0;
    *n_commit = v->n_masked ? 1 : 0;
    *n_remask = 0;
    /* once each, early in block 1 (so a missing check would pass) */
    if (v->block != 1 || v->step != (bad_remask_kind == 2 ? 1u : 0u)) return SMDIFF_OK;
    switch (bad_remask_kind) {
    case -1: break;
    case 0: remask[0] = 0, *n_remask = 1; break; /* the prompt */
    case 1: remask[0] = 2, *n_remask = 1; break; /* committed in block 0 */
    case 2: remask[0] = remask[1] = v->committed_position[0], *n_remask = 2; break; /* twice */
    default: *n_remask = (int32_t)v->remask_capacity + 1; break;
    }
    return SMDIFF_OK;
}

static void test_remask_validation(void **state) {
    (void)state;
    smdiff_decoder d = {sizeof d, SMDIFF_DECODER_ABI_VERSION, "bad_remasker", NULL, bad_remasker, NULL,
                        0, 0, SMDIFF_NEED_POSITION, 0, 1, 0};
    assert_int_equal(smdiff_decoder_register(&d, NULL), 0);
    fake f = {-1, 0};
    sd_gen_model gm = fake_model(&f);
    smdiff_sampler *s;
    assert_int_equal(smdiff_sampler_create(&s), 0);
    assert_int_equal(smdiff_sampler_set_int(s, SMDIFF_SAMPLER_GEN_LENGTH, 8), 0);
    assert_int_equal(smdiff_sampler_set_int(s, SMDIFF_SAMPLER_BLOCK_LENGTH, 4), 0);
    assert_int_equal(smdiff_sampler_set_int(s, SMDIFF_SAMPLER_STEPS, 8), 0);
    assert_int_equal(smdiff_sampler_set_strategy(s, "bad_remasker"), 0);
    int32_t prompt[] = {2, 3}, out[8];
    size_t n;
    for (bad_remask_kind = 0; bad_remask_kind < 4; bad_remask_kind++) {
        assert_int_equal(sd_generate(s, &gm, prompt, 2, out, 8, &n), SMDIFF_E_INVAL);
        assert_non_null(strstr(smdiff_sampler_last_error(s), "remask"));
    }
    bad_remask_kind = -1; /* no bad request: the run succeeds */
    assert_int_equal(sd_generate(s, &gm, prompt, 2, out, 8, &n), 0);
    smdiff_sampler_free(s);
    assert_int_equal(smdiff_decoder_unregister("bad_remasker"), 0);
}

/* Bad canvases: each a clear code, the canvas unchanged. */
static void test_canvas_bad_input(void **state) {
    (void)state;
    smdiff_model *dream = load("dream"), *llada = load("llada");
    smdiff_sampler *s;
    assert_int_equal(smdiff_sampler_create(&s), 0);
    assert_int_equal(smdiff_sampler_set_int(s, SMDIFF_SAMPLER_STEPS, 2), 0);
    const int32_t M = 126;
    int32_t c[70] = {4, M, M, 5}, keep[70];
    memcpy(keep, c, sizeof c);
#define CANVAS_FAILS(model, n, code, words)                                         \
    do {                                                                            \
        assert_int_equal(smdiff_generate_canvas(s, model, c, n), code);             \
        assert_non_null(strstr(smdiff_sampler_last_error(s), words));               \
        assert_memory_equal(c, keep, sizeof c);                                     \
    } while (0)
    assert_int_equal(smdiff_generate_canvas(s, llada, NULL, 4), SMDIFF_E_INVAL);
    assert_int_equal(smdiff_generate_canvas(NULL, llada, c, 4), SMDIFF_E_INVAL);
    assert_int_equal(smdiff_generate_canvas(s, NULL, c, 4), SMDIFF_E_INVAL);
    CANVAS_FAILS(llada, 0, SMDIFF_E_INVAL, "no mask");
    CANVAS_FAILS(llada, 1, SMDIFF_E_INVAL, "no mask");
    CANVAS_FAILS(llada, 70, SMDIFF_E_RANGE, "context");
    c[3] = 128, keep[3] = 128;
    CANVAS_FAILS(llada, 4, SMDIFF_E_RANGE, "vocabulary");
    c[3] = 5, keep[3] = 5;
    /* dream's mask id is 158: the llada mask 126 is plain context there */
    c[0] = 158, c[1] = 158, keep[0] = 158, keep[1] = 158;
    CANVAS_FAILS(dream, 4, SMDIFF_E_INVAL, "position 0");
    c[0] = 4, keep[0] = 4, c[1] = M, keep[1] = M;
    assert_int_equal(smdiff_sampler_set_int(s, SMDIFF_SAMPLER_STEPS, 3), 0);
    CANVAS_FAILS(llada, 4, SMDIFF_E_INVAL, "steps"); /* 3 steps for 2 masks */
    assert_int_equal(smdiff_sampler_set_int(s, SMDIFF_SAMPLER_STEPS, 2), 0);
    assert_int_equal(smdiff_sampler_set_int(s, SMDIFF_SAMPLER_BLOCK_LENGTH, 3), 0);
    CANVAS_FAILS(llada, 4, SMDIFF_E_INVAL, "block_length");
    assert_int_equal(smdiff_sampler_set_int(s, SMDIFF_SAMPLER_BLOCK_LENGTH, 0), 0);
    smdiff_model *empty;
    assert_int_equal(smdiff_model_create(&empty), 0);
    CANVAS_FAILS(empty, 4, SMDIFF_E_STATE, "not loaded");
    smdiff_model_free(empty);
#undef CANVAS_FAILS
    /* a leading mask is fine for a model without shifted logits, and a
     * valid call still works */
    c[0] = M;
    assert_int_equal(smdiff_sampler_set_int(s, SMDIFF_SAMPLER_STEPS, 3), 0);
    assert_int_equal(smdiff_generate_canvas(s, llada, c, 4), 0);
    for (int i = 0; i < 3; i++) assert_true(c[i] != M);
    assert_int_equal(c[3], 5);
    smdiff_sampler_free(s);
    smdiff_model_free(dream);
    smdiff_model_free(llada);
}

/* ----------------------------------------------- allocation per step */

typedef struct counting {
    long allocs, frees;
    long at_step[64];
    int steps;
} counting;

static counting counter;

static void *count_alloc(size_t n, void *ud) {
    ((counting *)ud)->allocs++;
    return malloc(n);
}

static void count_free(void *p, void *ud) {
    if (p) ((counting *)ud)->frees++;
    free(p);
}

static int32_t note_allocs(size_t step, size_t n_steps, const int32_t *canvas, const uint8_t *committed,
                           const float *lambda, size_t n, void *ud) {
    counting *c = ud;
    if (c->steps < 64) c->at_step[c->steps++] = c->allocs;
    return 0;
}

/* With a counting allocator: after a run's first step nothing is
 * allocated, and a second run of the same shape allocates nothing at all
 * (workspace, statistics scratch, strategy scratch, worker pool and
 * forward activations are the sampler's, kept between runs). Every
 * built-in, SM on, sampling with top-p, two threads, two blocks; and a
 * canvas with SM across blocks. */
static void test_no_allocation_per_step(void **state) {
    (void)state;
    memset(&counter, 0, sizeof counter);
    assert_int_equal(smdiff_set_allocator(count_alloc, count_free, &counter), 0);
    smdiff_model *m = load("llada");
    smdiff_sampler *s;
    assert_int_equal(smdiff_sampler_create(&s), 0);
    assert_int_equal(smdiff_sampler_set_int(s, SMDIFF_SAMPLER_GEN_LENGTH, 16), 0);
    assert_int_equal(smdiff_sampler_set_int(s, SMDIFF_SAMPLER_BLOCK_LENGTH, 8), 0);
    assert_int_equal(smdiff_sampler_set_int(s, SMDIFF_SAMPLER_STEPS, 8), 0);
    assert_int_equal(smdiff_sampler_set_int(s, SMDIFF_SAMPLER_THREADS, 2), 0);
    assert_int_equal(smdiff_sampler_set_int(s, SMDIFF_SAMPLER_STOP_AT_EOS, 0), 0);
    assert_int_equal(smdiff_sampler_set_double(s, SMDIFF_SAMPLER_TEMPERATURE, 0.8), 0);
    assert_int_equal(smdiff_sampler_set_double(s, SMDIFF_SAMPLER_TOP_P, 0.9), 0);
    assert_int_equal(smdiff_sampler_set_step_callback(s, note_allocs, &counter), 0);
    int32_t prompt[] = {4, 5, 6}, out[16], canvas[20];
    size_t n;
    /* every built-in on a prompt; then ReMDM and threshold on a canvas with
     * SM across blocks (logits for every masked position) */
    const char *strategies[16];
    int n_strat = 0;
    for (int i = 0; sd_builtin_decoders[i]; i++) strategies[n_strat++] = sd_builtin_decoders[i]->name;
    strategies[n_strat++] = "remdm_loop";
    strategies[n_strat++] = "threshold";
    for (int i = 0; i < n_strat; i++) {
        int as_canvas = i >= n_strat - 2;
        assert_int_equal(smdiff_sampler_set_strategy(s, strategies[i]), 0);
        assert_int_equal(smdiff_sampler_set_int(s, SMDIFF_SAMPLER_SM_ACROSS_BLOCKS, as_canvas), 0);
        for (int again = 0; again < 2; again++) {
            long before = counter.allocs;
            counter.steps = 0;
            for (int p = 0; p < 20; p++) canvas[p] = p % 5 == 0 ? 7 : 126; /* 16 masks */
            if (as_canvas) assert_int_equal(smdiff_generate_canvas(s, m, canvas, 20), 0);
            else assert_int_equal(smdiff_generate_tokens(s, m, prompt, 3, out, 16, &n), 0);
            assert_true(counter.steps >= 2);
            for (int k = 1; k < counter.steps; k++)
                if (counter.at_step[k] != counter.at_step[0])
                    fail_msg("%s: %ld allocations between step 0 and step %d", strategies[i],
                             counter.at_step[k] - counter.at_step[0], k);
            assert_int_equal(counter.allocs, counter.at_step[0]);
            if (again && counter.allocs != before)
                fail_msg("%s: a second run of the same shape allocated %ld times", strategies[i],
                         counter.allocs - before);
        }
    }
    smdiff_sampler_free(s);
    smdiff_model_free(m);
    assert_true(counter.allocs > 0);
    assert_int_equal(counter.allocs, counter.frees);
    assert_int_equal(smdiff_set_allocator(NULL, NULL, NULL), 0);
}

/* ---------------------------------------------------------- bad input */

static void test_bad_input(void **state) {
    (void)state;
    smdiff_model *m = load("llada");
    smdiff_sampler *s;
    assert_int_equal(smdiff_sampler_create(&s), 0);
    int32_t prompt[80] = {4, 5, 6}, out[128];
    size_t n;
    assert_int_equal(smdiff_sampler_set_int(s, SMDIFF_SAMPLER_GEN_LENGTH, 8), 0);
    assert_int_equal(smdiff_sampler_set_int(s, SMDIFF_SAMPLER_STEPS, 4), 0);
    /* empty prompt */
    assert_int_equal(smdiff_generate_tokens(s, m, prompt, 0, out, 128, &n), SMDIFF_E_INVAL);
    assert_non_null(strstr(smdiff_sampler_last_error(s), "empty"));
    /* prompt + generation longer than the context (64) */
    assert_int_equal(smdiff_generate_tokens(s, m, prompt, 60, out, 128, &n), SMDIFF_E_RANGE);
    assert_non_null(strstr(smdiff_sampler_last_error(s), "context"));
    /* ids outside the vocabulary */
    prompt[1] = 128;
    assert_int_equal(smdiff_generate_tokens(s, m, prompt, 3, out, 128, &n), SMDIFF_E_RANGE);
    prompt[1] = -1;
    assert_int_equal(smdiff_generate_tokens(s, m, prompt, 3, out, 128, &n), SMDIFF_E_RANGE);
    prompt[1] = 5;
    /* steps 0 (rejected by the setter) and more steps than tokens */
    assert_int_equal(smdiff_sampler_set_int(s, SMDIFF_SAMPLER_STEPS, 0), SMDIFF_E_RANGE);
    assert_int_equal(smdiff_sampler_set_int(s, SMDIFF_SAMPLER_STEPS, 9), 0);
    assert_int_equal(smdiff_generate_tokens(s, m, prompt, 3, out, 128, &n), SMDIFF_E_INVAL);
    assert_non_null(strstr(smdiff_sampler_last_error(s), "steps"));
    assert_int_equal(smdiff_sampler_set_int(s, SMDIFF_SAMPLER_STEPS, 4), 0);
    /* block length that does not divide, steps not a multiple of blocks */
    assert_int_equal(smdiff_sampler_set_int(s, SMDIFF_SAMPLER_BLOCK_LENGTH, 3), 0);
    assert_int_equal(smdiff_generate_tokens(s, m, prompt, 3, out, 128, &n), SMDIFF_E_INVAL);
    assert_int_equal(smdiff_sampler_set_int(s, SMDIFF_SAMPLER_BLOCK_LENGTH, 2), 0);
    assert_int_equal(smdiff_sampler_set_int(s, SMDIFF_SAMPLER_STEPS, 6), 0);
    assert_int_equal(smdiff_generate_tokens(s, m, prompt, 3, out, 128, &n), SMDIFF_E_INVAL);
    assert_int_equal(smdiff_sampler_set_int(s, SMDIFF_SAMPLER_BLOCK_LENGTH, 0), 0);
    assert_int_equal(smdiff_sampler_set_int(s, SMDIFF_SAMPLER_STEPS, 4), 0);
    /* unknown strategy: refused, the previous one kept */
    assert_int_equal(smdiff_sampler_set_strategy(s, "no_such_strategy"), SMDIFF_E_NOT_FOUND);
    const char *cur;
    assert_int_equal(smdiff_sampler_get_strategy(s, &cur), 0);
    assert_string_equal(cur, "maskgit_plus");
    /* NaN and infinite parameters are out of range */
    assert_int_equal(smdiff_sampler_set_double(s, SMDIFF_SAMPLER_TEMPERATURE, NAN), SMDIFF_E_RANGE);
    assert_int_equal(smdiff_sampler_set_double(s, SMDIFF_SAMPLER_TOP_P, NAN), SMDIFF_E_RANGE);
    assert_int_equal(smdiff_sampler_set_double(s, SMDIFF_SAMPLER_TEMPERATURE, INFINITY), SMDIFF_E_RANGE);
    smdiff_softmask *sm;
    assert_int_equal(smdiff_softmask_create(&sm), 0);
    assert_int_equal(smdiff_softmask_set_double(sm, SMDIFF_SM_SCALE, NAN), SMDIFF_E_RANGE);
    assert_int_equal(smdiff_softmask_set_double(sm, SMDIFF_SM_CENTRE, 0.5), SMDIFF_E_RANGE);
    smdiff_softmask_free(sm);
    /* output too small, NULL arguments, unloaded model */
    assert_int_equal(smdiff_generate_tokens(s, m, prompt, 3, out, 7, &n), SMDIFF_E_BUFFER);
    assert_int_equal(smdiff_generate_tokens(s, m, NULL, 3, out, 128, &n), SMDIFF_E_INVAL);
    assert_int_equal(smdiff_generate_tokens(NULL, m, prompt, 3, out, 128, &n), SMDIFF_E_INVAL);
    smdiff_model *empty;
    assert_int_equal(smdiff_model_create(&empty), 0);
    assert_int_equal(smdiff_generate_tokens(s, empty, prompt, 3, out, 128, &n), SMDIFF_E_STATE);
    smdiff_model_free(empty);
    /* and after all that, a valid call still works */
    assert_int_equal(smdiff_generate_tokens(s, m, prompt, 3, out, 128, &n), 0);
    smdiff_sampler_free(s);
    smdiff_model_free(m);
}

/* Copy tiny_dream_f32.gguf with extra smdiff.softmask.* keys to path. */
static void write_with_sm_keys(const char *path, const char *mode, int64_t k, double scale, double steep,
                               double centre) {
    sd_gguf *g;
    assert_int_equal(sd_gguf_open("tests/data/tiny_dream_f32.gguf", 1, &g, NULL), 0);
    sd_gguf_writer *w;
    assert_int_equal(sd_gguf_writer_create(&w, NULL), 0);
    for (int64_t i = 0; i < sd_gguf_n_kv(g); i++) {
        sd_gguf_str ks = sd_gguf_key(g, i);
        char key[128];
        snprintf(key, sizeof key, "%.*s", (int)ks.len, ks.ptr);
        uint32_t t = sd_gguf_kv_type(g, i);
        int64_t iv;
        double dv;
        int bv;
        sd_gguf_str sv;
        if (t == SD_GGUF_STRING) {
            assert_int_equal(sd_gguf_get_str(g, key, &sv, NULL), 0);
            assert_int_equal(sd_gguf_set_strn(w, key, sv.ptr, sv.len), 0);
        } else if (t == SD_GGUF_FLOAT32 || t == 12 /* FLOAT64 */) {
            assert_int_equal(sd_gguf_get_f64(g, key, &dv, NULL), 0);
            assert_int_equal(sd_gguf_set_f32(w, key, (float)dv), 0);
        } else if (t == SD_GGUF_BOOL) {
            assert_int_equal(sd_gguf_get_bool(g, key, &bv, NULL), 0);
            assert_int_equal(sd_gguf_set_bool(w, key, bv), 0);
        } else {
            assert_int_equal(sd_gguf_get_i64(g, key, &iv, NULL), 0);
            assert_int_equal(sd_gguf_set_u32(w, key, (uint32_t)iv), 0);
        }
    }
    for (int64_t i = 0; i < sd_gguf_n_tensors(g); i++) {
        const sd_gguf_tensor *t = sd_gguf_tensor_at(g, i);
        char name[128];
        snprintf(name, sizeof name, "%.*s", (int)t->name.len, t->name.ptr);
        assert_int_equal(sd_gguf_add_tensor(w, name, t->n_dims, t->ne, t->type, t->data, 1), 0);
    }
    if (mode) assert_int_equal(sd_gguf_set_str(w, "smdiff.softmask.mode", mode), 0);
    assert_int_equal(sd_gguf_set_u32(w, "smdiff.softmask.k", (uint32_t)k), 0);
    assert_int_equal(sd_gguf_set_f32(w, "smdiff.softmask.scale", (float)scale), 0);
    assert_int_equal(sd_gguf_set_f32(w, "smdiff.softmask.steepness", (float)steep), 0);
    assert_int_equal(sd_gguf_set_f32(w, "smdiff.softmask.centre", (float)centre), 0);
    assert_int_equal(sd_gguf_write(w, path, NULL), 0);
    sd_gguf_writer_free(w);
    sd_gguf_close(g);
}

/* Stored SM parameters are read; absent ones are the reference defaults;
 * out-of-range ones are a format error. */
static void test_softmask_from_model(void **state) {
    (void)state;
    smdiff_model *m = load("dream");
    smdiff_softmask *sm;
    assert_int_equal(smdiff_softmask_create_from_model(m, &sm), 0);
    double v;
    int64_t k;
    assert_int_equal(smdiff_softmask_get_double(sm, SMDIFF_SM_STEEPNESS, &v), 0);
    assert_true(v == 6.66);
    assert_int_equal(smdiff_softmask_get_int(sm, SMDIFF_SM_TOPK, &k), 0);
    assert_int_equal(k, 3);
    smdiff_softmask_free(sm);
    smdiff_model_free(m);

    char path[64];
    snprintf(path, sizeof path, "/tmp/smdiff_sm_%d.gguf", (int)getpid());
    write_with_sm_keys(path, "constant", 5, 0.25, 3.5, -1.5);
    assert_int_equal(smdiff_model_create(&m), 0);
    assert_int_equal(smdiff_model_load_file(m, path), 0);
    assert_int_equal(smdiff_softmask_create_from_model(m, &sm), 0);
    assert_int_equal(smdiff_softmask_get_int(sm, SMDIFF_SM_TOPK, &k), 0);
    assert_int_equal(k, 5);
    assert_int_equal(smdiff_softmask_get_int(sm, SMDIFF_SM_MODE, &k), 0);
    assert_int_equal(k, SMDIFF_SM_CONSTANT);
    assert_int_equal(smdiff_softmask_get_double(sm, SMDIFF_SM_SCALE, &v), 0);
    assert_true(fabs(v - 0.25) < 1e-7);
    assert_int_equal(smdiff_softmask_get_double(sm, SMDIFF_SM_STEEPNESS, &v), 0);
    assert_true(fabs(v - 3.5) < 1e-6);
    assert_int_equal(smdiff_softmask_get_double(sm, SMDIFF_SM_CENTRE, &v), 0);
    assert_true(fabs(v + 1.5) < 1e-6);
    smdiff_softmask_free(sm);
    smdiff_model_free(m);

    write_with_sm_keys(path, "entropy", 3, 1.5 /* outside (0,1) */, 3.5, -1.5);
    assert_int_equal(smdiff_model_create(&m), 0);
    assert_int_equal(smdiff_model_load_file(m, path), 0);
    assert_int_equal(smdiff_softmask_create_from_model(m, &sm), SMDIFF_E_FORMAT);
    assert_non_null(strstr(smdiff_last_error(), "smdiff.softmask.scale"));
    smdiff_model_free(m);
    write_with_sm_keys(path, "sometimes", 3, 0.5, 3.5, -1.5);
    assert_int_equal(smdiff_model_create(&m), 0);
    assert_int_equal(smdiff_model_load_file(m, path), 0);
    assert_int_equal(smdiff_softmask_create_from_model(m, &sm), SMDIFF_E_FORMAT);
    smdiff_model_free(m);
    remove(path);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reference_decoding),
        cmocka_unit_test(test_reference_canvas),
        cmocka_unit_test(test_canvas_equals_prompt),
        cmocka_unit_test(test_infill_every_strategy),
        cmocka_unit_test(test_infill_eos_per_span),
        cmocka_unit_test(test_sm_across_blocks),
        cmocka_unit_test(test_infill_text),
        cmocka_unit_test(test_cli_infill),
        cmocka_unit_test(test_remdm),
        cmocka_unit_test(test_remask_validation),
        cmocka_unit_test(test_canvas_bad_input),
        cmocka_unit_test(test_determinism),
        cmocka_unit_test(test_generate_text),
        cmocka_unit_test(test_abort_between_layers),
        cmocka_unit_test(test_callbacks_and_abort),
        cmocka_unit_test(test_eos),
        cmocka_unit_test(test_user_strategy),
        cmocka_unit_test(test_user_copies_of_builtins),
        cmocka_unit_test(test_no_allocation_per_step),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_softmask_from_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
