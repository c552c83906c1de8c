/* test_mdlm.c -- the `mdlm` architecture (MDLM's DiT, lib/nn/dit.c) against
 * the independent float64 PyTorch reference tests/ref/mdlm_ref.py: logits
 * of a token canvas and of a soft-masked embedding canvas, with the
 * conditioning constant (computed once at load) and following the noise
 * level (time conditioning), on one and two threads; the new kernels
 * (weight-only LayerNorm with adaLN modulation, tanh-GELU) against their
 * naive references. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/arena.h"
#include "nn/model.h"
#include "nn/ops.h"
#include "smdiff/smdiff.h"
#include "testutil.h"

#define DATA "tests/data/"
enum { L = 9, V = 64, D = 32, MASK = 63 }; /* tests/ref/mdlm_ref.py's C and L */
static const float SIGMA_TC = 0.7f;

static void *read_all(const char *path, size_t *size) {
    void *buf = test_read_file(path, size);
    if (!buf) fail_msg("cannot open fixture %s (run tests from the repository root)", path);
    return buf;
}

static float *fixture(const char *name, size_t floats) {
    char path[256];
    snprintf(path, sizeof path, DATA "%s", name);
    size_t n;
    float *f = read_all(path, &n);
    assert_int_equal(n, floats * sizeof(float));
    return f;
}

static smdiff_model *load(const char *file, int threads) {
    smdiff_model *m;
    assert_int_equal(smdiff_model_create(&m), 0);
    assert_int_equal(smdiff_model_set_int(m, SMDIFF_MODEL_THREADS, threads), 0);
    char path[256];
    snprintf(path, sizeof path, DATA "%s", file);
    if (smdiff_model_load_file(m, path)) fail_msg("loading %s: %s", path, smdiff_last_error());
    return m;
}

/* Logits [L, V] compared with the reference: every column but the mask's
 * within float32 rounding (max |a - b| / max |b| <= 1e-5), and the mask
 * logit pushed to about -1e6 (the "subs" output; at 1e6 a float's spacing is
 * 0.0625). Returns the relative error. */
static double compare(const float *got, const float *ref, const char *what) {
    double m = 0, e = 0;
    for (int i = 0; i < L; i++)
        for (int v = 0; v < V; v++) {
            const double a = got[i * V + v], b = ref[i * V + v];
            if (v == MASK) {
                if (!(a < -9.0e5 && fabs(a - b) <= 0.25))
                    fail_msg("%s: row %d mask logit %g, reference %g", what, i, a, b);
                continue;
            }
            if (fabs(b) > m) m = fabs(b);
            if (!(fabs(a - b) <= e)) e = fabs(a - b);
        }
    e /= m;
    printf("%s: relative error %.3g\n", what, e);
    if (!(e <= 1e-5)) fail_msg("%s: relative error %g > 1e-5", what, e);
    return e;
}

static int32_t all_rows[L] = {0, 1, 2, 3, 4, 5, 6, 7, 8};

static void test_logits_ids_and_embd(void **state) {
    (void)state;
    size_t n;
    int32_t *ids = read_all(DATA "tiny_mdlm_ids.i32", &n);
    assert_int_equal(n, L * sizeof(int32_t));
    float *ref = fixture("tiny_mdlm.logits.f32", L * V), *embd = fixture("tiny_mdlm_embd.f32", L * D);
    float *eref = fixture("tiny_mdlm_embd.logits.f32", L * V);
    float got[L * V];
    for (int threads = 1; threads <= 2; threads++) {
        smdiff_model *m = load("tiny_mdlm_f32.gguf", threads);
        int64_t p;
        assert_int_equal(smdiff_model_property(m, SMDIFF_PROP_VOCAB_SIZE, &p), 0);
        assert_int_equal(p, V);
        assert_int_equal(smdiff_model_property(m, SMDIFF_PROP_MASK_ID, &p), 0);
        assert_int_equal(p, MASK);
        assert_int_equal(smdiff_model_property(m, SMDIFF_PROP_SHIFT_LOGITS, &p), 0);
        assert_int_equal(p, 0);
        assert_string_equal(sd_model_arch_name(m), "mdlm");
        assert_non_null(m->w.cond_const); /* no time conditioning: computed at load */

        assert_int_equal(smdiff_model_logits(m, ids, L, all_rows, L, got, L * V), 0);
        compare(got, ref, threads == 1 ? "ids, 1 thread" : "ids, 2 threads");
        /* soft-masked input embeddings */
        assert_int_equal(smdiff_model_logits_embd(m, embd, L, all_rows, L, got, L * V), 0);
        compare(got, eref, "soft-masked embeddings");
        /* a subset of rows, in another order */
        int32_t rows[3] = {7, 1, 4};
        float sub[3 * V];
        assert_int_equal(smdiff_model_logits(m, ids, L, rows, 3, sub, 3 * V), 0);
        for (int r = 0; r < 3; r++)
            for (int v = 0; v < V; v++)
                if (v != MASK && fabsf(sub[r * V + v] - ref[rows[r] * V + v]) > 1e-4f)
                    fail_msg("row %d col %d: %g vs %g", rows[r], v, sub[r * V + v], ref[rows[r] * V + v]);
        smdiff_model_free(m);
    }
    free(ids);
    free(ref);
    free(embd);
    free(eref);
}

/* With time conditioning the adaLN outputs follow sigma: the model keeps no
 * precomputed copy, sd_forward_sigma at sigma = 0.7 matches the reference
 * there, the public calls (sigma 0) match the sigma-0 reference, and the
 * two differ (so the match is not independent of sigma). */
static void test_time_conditioning(void **state) {
    (void)state;
    size_t n;
    int32_t *ids = read_all(DATA "tiny_mdlm_ids.i32", &n);
    float *ref = fixture("tiny_mdlm_tc.logits.f32", L * V), *ref0 = fixture("tiny_mdlm_tc0.logits.f32", L * V);
    smdiff_model *m = load("tiny_mdlm_tc_f32.gguf", 2);
    assert_null(m->w.cond_const);
    assert_int_equal(m->w.hp.time_cond, 1);
    float embd[L * D], got[L * V];
    for (int i = 0; i < L; i++) sd_embed_token(&m->w, ids[i], embd + i * D);
    sd_arena arena;
    assert_int_equal(sd_arena_init(&arena, sd_forward_scratch_bytes(&m->w.hp, L, L), 0), 0);
    sd_error err = {0};
    sd_forward_opts o = {0, NULL, NULL, NULL};
    assert_int_equal(sd_forward_sigma(&m->w, SIGMA_TC, embd, L, all_rows, L, got, NULL, &o, &arena, &err), 0);
    compare(got, ref, "time conditioning, sigma 0.7");
    assert_int_equal(smdiff_model_logits(m, ids, L, all_rows, L, got, L * V), 0);
    compare(got, ref0, "time conditioning, sigma 0");
    double diff = 0;
    for (int i = 0; i < L * V; i++)
        if (i % V != MASK && fabs(ref[i] - ref0[i]) > diff) diff = fabs(ref[i] - ref0[i]);
    assert_true(diff > 1e-2);
    sd_arena_destroy(&arena);
    smdiff_model_free(m);
    free(ids);
    free(ref);
    free(ref0);
}

/* The parameter count follows from the shapes of tests/ref/mdlm_ref.py. */
static void test_n_params(void **state) {
    (void)state;
    smdiff_model *m = load("tiny_mdlm_f32.gguf", 1);
    const int64_t d = D, C = 16, T = 256, F = 4 * D, layers = 2;
    const int64_t block = d + 3 * d * d + d * d + d + F * d + F + d * F + d + 6 * d * C + 6 * d;
    const int64_t want = V * d + T * C + C + C * C + C + layers * block + d + 2 * d * C + 2 * d + V * d + V;
    int64_t p;
    assert_int_equal(smdiff_model_property(m, SMDIFF_PROP_N_PARAMS, &p), 0);
    assert_int_equal(p, want);
    smdiff_model_free(m);
}

/* The denoising loop runs on mdlm as on the others: every generated id is
 * a vocabulary token, never the mask (its logit is pushed to -1e6), with
 * soft-masking on (a lambda large enough to change the inputs) and off, on
 * both conditioning variants; the same seed repeats exactly. */
static void test_generate(void **state) {
    (void)state;
    const char *files[2] = {"tiny_mdlm_f32.gguf", "tiny_mdlm_tc_f32.gguf"};
    const int32_t prompt[3] = {5, 17, 40};
    for (int f = 0; f < 2; f++)
        for (int sm = 0; sm < 2; sm++) {
            smdiff_model *m = load(files[f], 1);
            int32_t out[2][12];
            for (int rep = 0; rep < 2; rep++) {
                smdiff_sampler *s;
                smdiff_softmask *k;
                assert_int_equal(smdiff_sampler_create(&s), 0);
                assert_int_equal(smdiff_softmask_create(&k), 0);
                assert_int_equal(smdiff_softmask_set_int(k, SMDIFF_SM_MODE, sm ? SMDIFF_SM_ENTROPY : SMDIFF_SM_OFF), 0);
                if (sm) assert_int_equal(smdiff_softmask_set_double(k, SMDIFF_SM_SCALE, 0.9), 0);
                assert_int_equal(smdiff_sampler_set_softmask(s, k), 0);
                assert_int_equal(smdiff_sampler_set_int(s, SMDIFF_SAMPLER_GEN_LENGTH, 12), 0);
                assert_int_equal(smdiff_sampler_set_int(s, SMDIFF_SAMPLER_STEPS, 6), 0);
                assert_int_equal(smdiff_sampler_set_double(s, SMDIFF_SAMPLER_TEMPERATURE, 1.0), 0);
                assert_int_equal(smdiff_sampler_set_int(s, SMDIFF_SAMPLER_STOP_AT_EOS, 0), 0);
                size_t n = 0;
                if (smdiff_generate_tokens(s, m, prompt, 3, out[rep], 12, &n))
                    fail_msg("%s: %s", files[f], smdiff_last_error());
                assert_int_equal(n, 12);
                for (int i = 0; i < 12; i++) assert_true(out[rep][i] >= 0 && out[rep][i] < V && out[rep][i] != MASK);
                smdiff_softmask_free(k);
                smdiff_sampler_free(s);
            }
            assert_memory_equal(out[0], out[1], sizeof out[0]);
            smdiff_model_free(m);
        }
}

static uint64_t lcg = 0x9E3779B97F4A7C15ull;
static float frand(void) {
    lcg = lcg * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((lcg >> 40) * (1.0 / 16777216.0)) * 2.0f - 1.0f;
}

static void test_kernels(void **state) {
    (void)state;
    enum { R = 5, C = 67 };
    float x[R * C], w[C], sh[C], sc[C], a[R * C], b[R * C];
    for (int i = 0; i < R * C; i++) x[i] = 3.0f * frand() + 1.5f; /* a mean far from 0 */
    for (int j = 0; j < C; j++) w[j] = 1.0f + 0.2f * frand(), sh[j] = 0.3f * frand(), sc[j] = 0.3f * frand();
    for (int mod = 0; mod < 2; mod++) {
        sd_layernorm_mod(a, x, w, mod ? sh : NULL, mod ? sc : NULL, R, C, 1e-5f, NULL);
        sd_layernorm_mod_ref(b, x, w, mod ? sh : NULL, mod ? sc : NULL, R, C, 1e-5f);
        for (int i = 0; i < R * C; i++)
            if (fabsf(a[i] - b[i]) > 1e-5f * (1.0f + fabsf(b[i]))) fail_msg("layernorm %d: %g vs %g", i, a[i], b[i]);
    }
    /* in place, and the row really is normalised */
    memcpy(a, x, sizeof x);
    float ones[C];
    for (int j = 0; j < C; j++) ones[j] = 1.0f;
    sd_layernorm_mod(a, a, ones, NULL, NULL, R, C, 0.0f, NULL);
    for (int i = 0; i < R; i++) {
        double s = 0, s2 = 0;
        for (int j = 0; j < C; j++) s += a[i * C + j], s2 += (double)a[i * C + j] * a[i * C + j];
        assert_true(fabs(s / C) < 1e-5 && fabs(s2 / C - 1.0) < 1e-4);
    }
    for (int i = 0; i < R * C; i++) a[i] = b[i] = 6.0f * frand();
    sd_gelu_tanh(a, R * C, NULL);
    sd_gelu_tanh_ref(b, R * C);
    for (int i = 0; i < R * C; i++)
        if (fabsf(a[i] - b[i]) > 1e-6f * (1.0f + fabsf(b[i]))) fail_msg("gelu %d: %g vs %g", i, a[i], b[i]);
    /* known values: gelu_tanh(1) = 0.841191990, gelu_tanh(-2) = -0.045402306 */
    float k[2] = {1.0f, -2.0f};
    sd_gelu_tanh(k, 2, NULL);
    assert_true(fabsf(k[0] - 0.841191990f) < 1e-6f && fabsf(k[1] + 0.045402306f) < 1e-6f);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kernels),
        cmocka_unit_test(test_logits_ids_and_embd),
        cmocka_unit_test(test_time_conditioning),
        cmocka_unit_test(test_n_params),
        cmocka_unit_test(test_generate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
