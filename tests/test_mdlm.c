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

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "convert/convert.h"
#include "core/arena.h"
#include "diffusion/sampler.h"
#include "io/gguf.h"
#include "io/safetensors.h"
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

/* Load the model file at path and write the logits [L, V] of the
 * fixture's token canvas to got; returns the model (the caller frees). */
static smdiff_model *logits_of_file(const char *path, float *got) {
    smdiff_model *m;
    assert_int_equal(smdiff_model_create(&m), 0);
    if (smdiff_model_load_file(m, path)) fail_msg("%s: %s", path, smdiff_last_error());
    size_t n;
    int32_t *ids = read_all(DATA "tiny_mdlm_ids.i32", &n);
    assert_int_equal(n, L * sizeof(int32_t));
    assert_int_equal(smdiff_model_logits(m, ids, L, all_rows, L, got, L * V), 0);
    free(ids);
    return m;
}

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
    assert_int_equal(sd_arena_init(&arena, sd_forward_scratch_bytes(&m->w.hp, L, L, 1), 0), 0);
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

/* A sampler at temperature 1 for gen_length positions in `steps` steps,
 * no EOS stop, soft-masking off or on (entropy rule, scale 0.9 so the
 * mixtures matter), strategy NULL for the default. */
static smdiff_sampler *sampler(int sm, const char *strategy, int64_t gen, int64_t steps) {
    smdiff_sampler *s;
    smdiff_softmask *k;
    assert_int_equal(smdiff_sampler_create(&s), 0);
    assert_int_equal(smdiff_softmask_create(&k), 0);
    assert_int_equal(smdiff_softmask_set_int(k, SMDIFF_SM_MODE, sm ? SMDIFF_SM_ENTROPY : SMDIFF_SM_OFF), 0);
    if (sm) assert_int_equal(smdiff_softmask_set_double(k, SMDIFF_SM_SCALE, 0.9), 0);
    assert_int_equal(smdiff_sampler_set_softmask(s, k), 0); /* copied */
    smdiff_softmask_free(k);
    if (strategy) assert_int_equal(smdiff_sampler_set_strategy(s, strategy), 0);
    assert_int_equal(smdiff_sampler_set_int(s, SMDIFF_SAMPLER_GEN_LENGTH, gen), 0);
    assert_int_equal(smdiff_sampler_set_int(s, SMDIFF_SAMPLER_STEPS, steps), 0);
    assert_int_equal(smdiff_sampler_set_double(s, SMDIFF_SAMPLER_TEMPERATURE, 1.0), 0);
    assert_int_equal(smdiff_sampler_set_int(s, SMDIFF_SAMPLER_STOP_AT_EOS, 0), 0);
    return s;
}

/* mdlm's conditioning follows each step's noise level, so it computes
 * whole canvases: a batch of sequences (each at its own sigma, output rows
 * interleaved) equals each sequence alone; a key/value cache or a subset
 * of rows is refused at the forward pass, and a sampler's block cache at
 * generation, each with SMDIFF_E_UNSUPPORTED and a message saying why. */
static void test_no_block_caches(void **state) {
    (void)state;
    size_t n;
    int32_t *ids = read_all(DATA "tiny_mdlm_ids.i32", &n);
    smdiff_model *m = load("tiny_mdlm_tc_f32.gguf", 2);
    float embd[L * D], alone[2][L * V], hid1[2][L * D], got[L * V], hid[2 * L * D];
    for (int i = 0; i < L; i++) sd_embed_token(&m->w, ids[i], embd + i * D);
    sd_arena arena;
    assert_int_equal(sd_arena_init(&arena, sd_forward_batch_scratch_bytes(&m->w.hp, 2 * L, 2 * L, 2), 0), 0);
    sd_error err = {0};
    sd_forward_opts o = {0, m->pool, NULL, NULL};
    const float sig[2] = {SIGMA_TC, 0.1f};
    for (int q = 0; q < 2; q++)
        assert_int_equal(sd_forward_sigma(&m->w, sig[q], embd, L, all_rows, L, alone[q], hid1[q], &o, &arena, &err),
                         0);
    sd_fwd_seq seqs[2] = {{embd, L, NULL, L, NULL, sig[0]}, {embd, L, NULL, L, NULL, sig[1]}};
    const int32_t out[] = {0, L + 3, 2, L + 0, L + 8}; /* rows of both, interleaved */
    assert_int_equal(sd_forward_batch(&m->w, seqs, 2, out, 5, got, hid, &o, &arena, &err), 0);
    /* to float rounding: the output head's product has other shapes */
    for (int r = 0; r < 5; r++) {
        int q = out[r] >= L, row = out[r] - q * L;
        for (int j = 0; j < V; j++)
            if (fabsf(got[r * V + j] - alone[q][row * V + j]) > 1e-4f * (1 + fabsf(alone[q][row * V + j])))
                fail_msg("batch row %d, logit %d: %g alone, %g in the batch", r, j, alone[q][row * V + j],
                         got[r * V + j]);
    }
    assert_memory_equal(hid, hid1[0], sizeof hid1[0]);
    assert_memory_equal(hid + L * D, hid1[1], sizeof hid1[1]);
    assert_true(fabsf(alone[0][V] - alone[1][V]) > 1e-4f); /* the sigmas matter */

    float kvmem[4096];
    assert_true(sd_kv_cache_floats(&m->w.hp, L) <= sizeof kvmem / sizeof kvmem[0]);
    sd_kv_cache kv;
    sd_kv_cache_init(&kv, &m->w.hp, kvmem, L);
    const int32_t pos[] = {1, 2};
    sd_fwd_seq cached = {embd, L, NULL, L, &kv, 0.0f}, some = {embd, L, pos, 2, &kv, 0.0f};
    assert_int_equal(sd_forward_batch(&m->w, &cached, 1, out, 1, got, NULL, &o, &arena, &err), SMDIFF_E_UNSUPPORTED);
    assert_non_null(strstr(err.msg, "mdlm"));
    assert_int_equal(sd_forward_batch(&m->w, &some, 1, out, 1, got, NULL, &o, &arena, &err), SMDIFF_E_UNSUPPORTED);

    for (int cache = SMDIFF_CACHE_PREFIX; cache <= SMDIFF_CACHE_DUAL; cache++) {
        smdiff_sampler *s = sampler(0, "origin", 8, 8);
        assert_int_equal(smdiff_sampler_set_int(s, SMDIFF_SAMPLER_CACHE, cache), 0);
        int32_t toks[8];
        assert_int_equal(smdiff_generate_tokens(s, m, ids, 1, toks, 8, &n), SMDIFF_E_UNSUPPORTED);
        assert_non_null(strstr(smdiff_sampler_last_error(s), "mdlm"));
        assert_int_equal(smdiff_sampler_set_int(s, SMDIFF_SAMPLER_CACHE, SMDIFF_CACHE_OFF), 0);
        assert_int_equal(smdiff_generate_tokens(s, m, ids, 1, toks, 8, &n), 0);
        smdiff_sampler_free(s);
    }
    sd_arena_destroy(&arena);
    smdiff_model_free(m);
    free(ids);
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
                smdiff_sampler *s = sampler(sm, NULL, 12, 6);
                size_t n = 0;
                if (smdiff_generate_tokens(s, m, prompt, 3, out[rep], 12, &n))
                    fail_msg("%s: %s", files[f], smdiff_last_error());
                assert_int_equal(n, 12);
                for (int i = 0; i < 12; i++) assert_true(out[rep][i] >= 0 && out[rep][i] < V && out[rep][i] != MASK);
                smdiff_sampler_free(s);
            }
            assert_memory_equal(out[0], out[1], sizeof out[0]);
            smdiff_model_free(m);
        }
}

/* MDLM's cached ancestral sampler: "ddpm_cache" through the plug-in
 * registry, with the nucleus at 0.9. Many steps commit nothing (12 steps
 * for 12 positions: about 1 in 12 unmasks per step), and the loop then reuses the previous logits instead
 * of running the model: the tokens are exactly those of a run that runs
 * every forward pass, and with binary masking passes are skipped. */
static void test_ddpm_cache(void **state) {
    (void)state;
    const int32_t prompt[2] = {9, 33};
    for (int sm = 0; sm < 2; sm++) {
        smdiff_model *m = load("tiny_mdlm_f32.gguf", 1);
        int32_t out[2][12];
        int32_t skipped[2], steps[2];
        for (int nocache = 0; nocache < 2; nocache++) {
            smdiff_sampler *s = sampler(sm, "ddpm_cache", 12, 12);
            assert_int_equal(smdiff_sampler_set_int(s, SMDIFF_SAMPLER_SEED, 7), 0);
            assert_int_equal(smdiff_sampler_set_double(s, SMDIFF_SAMPLER_TOP_P, 0.9), 0);
            s->no_forward_cache = nocache;
            size_t n = 0;
            if (smdiff_generate_tokens(s, m, prompt, 2, out[nocache], 12, &n)) fail_msg("%s", smdiff_last_error());
            skipped[nocache] = s->forwards_skipped;
            steps[nocache] = s->steps_run;
            smdiff_sampler_free(s);
        }
        printf("ddpm_cache, SM %s: %d of %d forward passes skipped\n", sm ? "on" : "off", skipped[0], steps[0]);
        assert_memory_equal(out[0], out[1], sizeof out[0]);
        assert_int_equal(steps[0], steps[1]);
        assert_int_equal(skipped[1], 0);
        if (!sm) assert_true(skipped[0] > 0);
        smdiff_model_free(m);
    }
}

/* ReMDM's re-masking strategies run on mdlm too (soft-masked, more steps
 * than positions): every position ends with a vocabulary token. */
static void test_remdm(void **state) {
    (void)state;
    const char *names[2] = {"remdm_cap", "remdm_loop"};
    const int32_t prompt[2] = {9, 33};
    smdiff_model *m = load("tiny_mdlm_f32.gguf", 1);
    for (int i = 0; i < 2; i++) {
        smdiff_sampler *s = sampler(1, names[i], 10, 24);
        assert_int_equal(smdiff_sampler_set_double(s, SMDIFF_SAMPLER_REMDM_ETA, 0.3), 0);
        int32_t out[10];
        size_t n = 0;
        if (smdiff_generate_tokens(s, m, prompt, 2, out, 10, &n)) fail_msg("%s: %s", names[i], smdiff_last_error());
        assert_int_equal(n, 10);
        for (int j = 0; j < 10; j++) assert_true(out[j] >= 0 && out[j] < V && out[j] != MASK);
        assert_int_equal(s->steps_run, 24);
        smdiff_sampler_free(s);
    }
    smdiff_model_free(m);
}

/* ----------------------------------------------------------- converter */


/* The test's own table of MDLM's Hugging Face names -> GGUF names (written
 * from docs/MODELS.md, not taken from the converter). attn_qkv is the three
 * GGUF tensors attn_q, attn_k, attn_v stacked by rows. */
static int gguf_names(const char *hf, char out[3][96]) {
    static const char *const top[][2] = {
        {"backbone.vocab_embed.embedding", "token_embd.weight"},
        {"backbone.sigma_map.mlp.0.weight", "time_embd.fc1.weight"},
        {"backbone.sigma_map.mlp.0.bias", "time_embd.fc1.bias"},
        {"backbone.sigma_map.mlp.2.weight", "time_embd.fc2.weight"},
        {"backbone.sigma_map.mlp.2.bias", "time_embd.fc2.bias"},
        {"backbone.output_layer.norm_final.weight", "output_norm.weight"},
        {"backbone.output_layer.linear.weight", "output.weight"},
        {"backbone.output_layer.linear.bias", "output.bias"},
        {"backbone.output_layer.adaLN_modulation.weight", "output_adaln.weight"},
        {"backbone.output_layer.adaLN_modulation.bias", "output_adaln.bias"}};
    static const char *const blk[][2] = {
        {"norm1.weight", "attn_norm.weight"}, {"attn_out.weight", "attn_output.weight"},
        {"norm2.weight", "ffn_norm.weight"}, {"mlp.0.weight", "ffn_up.weight"}, {"mlp.0.bias", "ffn_up.bias"},
        {"mlp.2.weight", "ffn_down.weight"}, {"mlp.2.bias", "ffn_down.bias"},
        {"adaLN_modulation.weight", "adaln.weight"}, {"adaLN_modulation.bias", "adaln.bias"}};
    for (size_t i = 0; i < sizeof top / sizeof top[0]; i++)
        if (!strcmp(hf, top[i][0])) return snprintf(out[0], 96, "%s", top[i][1]) > 0;
    int l, n = 0;
    if (sscanf(hf, "backbone.blocks.%d.%n", &l, &n) != 1 || !n) return 0;
    const char *rest = hf + n;
    if (!strcmp(rest, "attn_qkv.weight")) {
        snprintf(out[0], 96, "blk.%d.attn_q.weight", l);
        snprintf(out[1], 96, "blk.%d.attn_k.weight", l);
        snprintf(out[2], 96, "blk.%d.attn_v.weight", l);
        return 3;
    }
    for (size_t i = 0; i < sizeof blk / sizeof blk[0]; i++)
        if (!strcmp(rest, blk[i][0])) return snprintf(out[0], 96, "blk.%d.%s", l, blk[i][1]) > 0;
    return 0;
}

/* Every checkpoint tensor (the rotary buffer aside) is in the GGUF file
 * bit for bit, nothing else is, the metadata carries config.json's values,
 * and the converted model gives the reference logits. */
static void test_convert_roundtrip(void **state) {
    (void)state;
    char out[256];
    snprintf(out, sizeof out, "%s/mdlm.gguf", test_dir);
    sd_convert_opts o = {"f32", NULL, NULL, NULL, NULL};
    sd_error err = {0};
    if (sd_convert_hf(DATA "hf_tiny_mdlm", out, &o, &err)) fail_msg("convert: %s", err.msg);
    sd_gguf *g = NULL;
    sd_st *st = NULL;
    if (sd_gguf_open(out, 1, &g, &err)) fail_msg("%s", err.msg);
    if (sd_st_open_dir(DATA "hf_tiny_mdlm", &st, &err)) fail_msg("%s", err.msg);
    int64_t mapped = 0;
    for (int64_t i = 0; i < sd_st_n_tensors(st); i++) {
        const sd_st_tensor *t = sd_st_tensor_at(st, i);
        if (!strcmp(t->name, "backbone.rotary_emb.inv_freq")) continue;
        char names[3][96];
        int n = gguf_names(t->name, names);
        if (!n) fail_msg("no GGUF name known for %s", t->name);
        const uint8_t *src = t->data;
        size_t off = 0;
        for (int j = 0; j < n; j++) {
            const sd_gguf_tensor *gt = sd_gguf_find_tensor(g, names[j]);
            if (!gt) fail_msg("%s (from %s) missing", names[j], t->name);
            assert_int_equal(gt->type, SD_GGML_F32);
            if (memcmp(src + off, gt->data, gt->n_bytes)) fail_msg("%s differs from %s", names[j], t->name);
            off += gt->n_bytes;
            mapped++;
        }
        assert_int_equal(off, t->n_elements * 4);
    }
    assert_int_equal(mapped, sd_gguf_n_tensors(g));
    sd_gguf_str a;
    assert_int_equal(sd_gguf_get_str(g, "general.architecture", &a, &err), 0);
    assert_true(a.len == 4 && !memcmp(a.ptr, "mdlm", 4));
    uint64_t v;
    assert_int_equal(sd_gguf_get_u64(g, "mdlm.conditioning_length", &v, &err), 0);
    assert_int_equal(v, 16);
    assert_int_equal(sd_gguf_get_u64(g, "mdlm.timestep_embedding_length", &v, &err), 0);
    assert_int_equal(v, 256);
    assert_int_equal(sd_gguf_get_u64(g, "tokenizer.ggml.mask_token_id", &v, &err), 0);
    assert_int_equal(v, MASK);
    int tc = 1;
    assert_int_equal(sd_gguf_get_bool(g, "mdlm.time_conditioning", &tc, &err), 0);
    assert_int_equal(tc, 0);
    sd_st_close(st);
    sd_gguf_close(g);

    /* the converted file runs: the reference logits, and a tokenizer */
    float *ref = fixture("tiny_mdlm.logits.f32", L * V), got[L * V];
    smdiff_model *m = logits_of_file(out, got);
    compare(got, ref, "converted f32");
    assert_non_null(m->tok);
    smdiff_model_free(m);
    free(ref);
    unlink(out);
}

/* A scratch checkpoint folder: config.json as given, the fixture's other
 * files linked (or, with st_json, a model.safetensors of one F32 tensor
 * described by st_json holding vals). */
static void scratch_dir(const char *name, const char *config, const char *st_json, const float *vals, size_t nv,
                        char *dir, size_t size) {
    snprintf(dir, size, "%s/%s", test_dir, name);
    mkdir(dir, 0700);
    const char *files[] = {"model.safetensors", "vocab.json", "merges.txt", "added_tokens.json", "tokenizer_config.json"};
    char cwd[512], src[900], dst[700];
    assert_non_null(getcwd(cwd, sizeof cwd));
    for (int i = st_json ? 1 : 0; i < 5; i++) {
        snprintf(src, sizeof src, "%s/" DATA "hf_tiny_mdlm/%s", cwd, files[i]);
        snprintf(dst, sizeof dst, "%s/%s", dir, files[i]);
        unlink(dst);
        assert_int_equal(symlink(src, dst), 0);
    }
    FILE *f;
    if (st_json) {
        snprintf(dst, sizeof dst, "%s/model.safetensors", dir);
        assert_non_null(f = fopen(dst, "wb"));
        uint64_t hl = strlen(st_json);
        assert_int_equal(fwrite(&hl, 8, 1, f), 1);
        assert_int_equal(fwrite(st_json, 1, hl, f), hl);
        assert_int_equal(fwrite(vals, sizeof(float), nv, f), nv);
        fclose(f);
    }
    snprintf(dst, sizeof dst, "%s/config.json", dir);
    assert_non_null(f = fopen(dst, "w"));
    fputs(config, f);
    fclose(f);
}

/* Hostile configs and checkpoints are refused with a message naming the
 * problem, and nothing is written. */
static void test_convert_refusals(void **state) {
    (void)state;
    static const struct {
        const char *cfg, *msg;
    } cases[] = {
        /* heads do not divide the width */
        {"{\"model_type\": \"mdlm\", \"vocab_size\": 64, \"model_length\": 64, \"hidden_dim\": 32, \"cond_dim\": 16, "
         "\"n_blocks\": 2, \"n_heads\": 5}", "n_heads 5"},
        /* a missing width */
        {"{\"model_type\": \"mdlm\", \"vocab_size\": 64, \"model_length\": 64, \"cond_dim\": 16, \"n_blocks\": 2, "
         "\"n_heads\": 4}", "hidden_dim -1"},
        /* an absurd vocabulary, refused before anything is allocated */
        {"{\"model_type\": \"mdlm\", \"vocab_size\": 9000000000, \"model_length\": 64, \"hidden_dim\": 32, "
         "\"cond_dim\": 16, \"n_blocks\": 2, \"n_heads\": 4}", "vocab_size 9000000000"},
        /* time_conditioning of the wrong type */
        {"{\"model_type\": \"mdlm\", \"vocab_size\": 64, \"model_length\": 64, \"hidden_dim\": 32, \"cond_dim\": 16, "
         "\"n_blocks\": 2, \"n_heads\": 4, \"time_conditioning\": \"yes\"}", "time_conditioning must be"},
        /* a conditioning width the tensors do not have */
        {"{\"model_type\": \"mdlm\", \"vocab_size\": 64, \"model_length\": 64, \"hidden_dim\": 32, \"cond_dim\": 8, "
         "\"n_blocks\": 2, \"n_heads\": 4}", "sigma_map.mlp.0.weight' is not of the shape [8, 256]"},
        /* one block more than the checkpoint has */
        {"{\"model_type\": \"mdlm\", \"vocab_size\": 64, \"model_length\": 64, \"hidden_dim\": 32, \"cond_dim\": 16, "
         "\"n_blocks\": 3, \"n_heads\": 4}", "lacks tensor 'backbone.blocks.2.norm1.weight'"},
        /* one fewer: blocks.1 is unknown */
        {"{\"model_type\": \"mdlm\", \"vocab_size\": 64, \"model_length\": 64, \"hidden_dim\": 32, \"cond_dim\": 16, "
         "\"n_blocks\": 1, \"n_heads\": 4}", "'backbone.blocks.1."},
        /* a mask id outside the vocabulary */
        {"{\"model_type\": \"mdlm\", \"vocab_size\": 64, \"model_length\": 64, \"hidden_dim\": 32, \"cond_dim\": 16, "
         "\"n_blocks\": 2, \"n_heads\": 4, \"mask_token_id\": 99}", "mask token id 99"},
    };
    sd_convert_opts o = {"f32", NULL, NULL, NULL, NULL};
    char dir[300], out[400], nm[8];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(nm, sizeof nm, "r%zu", i);
        scratch_dir(nm, cases[i].cfg, NULL, NULL, 0, dir, sizeof dir);
        snprintf(out, sizeof out, "%s/out.gguf", dir);
        sd_error err = {0};
        assert_int_equal(sd_convert_hf(dir, out, &o, &err), SMDIFF_E_FORMAT);
        if (!strstr(err.msg, cases[i].msg)) fail_msg("case %zu: '%s' lacks '%s'", i, err.msg, cases[i].msg);
        assert_int_equal(access(out, F_OK), -1);
    }
    /* a rotary buffer of another base (1e6) */
    float inv[4];
    for (int i = 0; i < 4; i++) inv[i] = (float)pow(1e6, -2.0 * i / 8.0);
    scratch_dir("rot", cases[0].cfg, "{\"backbone.rotary_emb.inv_freq\":{\"dtype\":\"F32\",\"shape\":[4],"
                "\"data_offsets\":[0,16]}}", inv, 4, dir, sizeof dir);
    /* (heads 4 so the buffer is checked: rewrite the config) */
    char cfg[512];
    snprintf(cfg, sizeof cfg, "{\"model_type\": \"mdlm\", \"vocab_size\": 64, \"model_length\": 64, \"hidden_dim\": 32, "
             "\"cond_dim\": 16, \"n_blocks\": 2, \"n_heads\": 4}");
    snprintf(out, sizeof out, "%s/config.json", dir);
    FILE *f = fopen(out, "w");
    fputs(cfg, f);
    fclose(f);
    snprintf(out, sizeof out, "%s/out.gguf", dir);
    sd_error err = {0};
    assert_int_equal(sd_convert_hf(dir, out, &o, &err), SMDIFF_E_FORMAT);
    if (!strstr(err.msg, "another rotary base")) fail_msg("%s", err.msg);
    assert_int_equal(access(out, F_OK), -1);
}

/* `smdiff convert` from the build under test (run.sh exports BUILD). */
static void test_convert_cli(void **state) {
    (void)state;
    const char *cli = test_cli_path();
    char cmd[1024], out[256];
    if (!cli) SKIP_BECAUSE("the smdiff CLI is not built (BUILD=%s); run through make check", getenv("BUILD"));
    snprintf(out, sizeof out, "%s/cli.gguf", test_dir);
    snprintf(cmd, sizeof cmd, "%s convert " DATA "hf_tiny_mdlm %s --type f16 2>/dev/null", cli, out);
    assert_int_equal(system(cmd), 0);
    float *ref = fixture("tiny_mdlm.logits.f32", L * V), got[L * V];
    smdiff_model *m = logits_of_file(out, got);
    /* f16 weights: 11 significant bits per weight through 2 blocks */
    double mx = 0, e = 0;
    for (int i = 0; i < L * V; i++)
        if (i % V != MASK) {
            if (fabs(ref[i]) > mx) mx = fabs(ref[i]);
            if (fabs(got[i] - ref[i]) > e) e = fabs(got[i] - ref[i]);
        }
    printf("converted f16: relative error %.3g\n", e / mx);
    assert_true(e / mx < 5e-3);
    smdiff_model_free(m);
    free(ref);
    unlink(out);
}

/* scripts/mdlm_ckpt_to_hf.py on Lightning-style checkpoints made by
 * tests/ref/mdlm_ckpt_fixture.py: the EMA copy (the reference weights) is
 * what gets imported, not the training copy (every weight + 0.5); the
 * transparency head's scalars arrive in the GGUF as the soft-mask schedule
 * (sigmoid / softplus / -softplus of the raw values 0.4, 1.5, -0.3); an
 * EMA list that does not fit the backbone is refused. Needs PyTorch. */
static void test_ckpt_import(void **state) {
    (void)state;
    const char *py = getenv("PYTHON");
    char cmd[2048], dir[256], out[300];
    if (!py) py = "/usr/bin/python3";
    snprintf(cmd, sizeof cmd, "%s -c 'import torch' >/dev/null 2>&1", py);
    if (system(cmd) != 0) {
        print_message("skip: %s has no PyTorch (Debian python3-torch), which the .ckpt importer needs\n", py);
        skip();
    }
    snprintf(dir, sizeof dir, "%s/ckpt", test_dir);
    snprintf(cmd, sizeof cmd, "%s tests/ref/mdlm_ckpt_fixture.py %s", py, dir);
    assert_int_equal(system(cmd), 0);
    for (int ema = 1; ema >= 0; ema--) {
        snprintf(cmd, sizeof cmd,
                 "%s scripts/mdlm_ckpt_to_hf.py %s/tiny.ckpt %s/hf --n-heads 4 --length 64 %s "
                 "--tokenizer " DATA "hf_tiny_mdlm 2>/dev/null", py, dir, dir, ema ? "" : "--no-ema");
        assert_int_equal(system(cmd), 0);
        snprintf(cmd, sizeof cmd, "%s/hf", dir);
        snprintf(out, sizeof out, "%s/ckpt.gguf", dir);
        sd_convert_opts o = {"f32", NULL, NULL, NULL, NULL};
        sd_error err = {0};
        if (sd_convert_hf(cmd, out, &o, &err)) fail_msg("convert: %s", err.msg);
        float *ref = fixture("tiny_mdlm.logits.f32", L * V), got[L * V];
        smdiff_model *m = logits_of_file(out, got);
        if (ema) {
            compare(got, ref, "imported EMA weights");
            smdiff_softmask *k;
            if (smdiff_softmask_create_from_model(m, &k)) fail_msg("%s", smdiff_last_error());
            double v;
            assert_int_equal(smdiff_softmask_get_double(k, SMDIFF_SM_SCALE, &v), 0);
            assert_true(fabs(v - 0.598687660112452) < 1e-6);
            assert_int_equal(smdiff_softmask_get_double(k, SMDIFF_SM_STEEPNESS, &v), 0);
            assert_true(fabs(v - 1.7014132779827524) < 1e-6);
            assert_int_equal(smdiff_softmask_get_double(k, SMDIFF_SM_CENTRE, &v), 0);
            assert_true(fabs(v + 0.5543552444685271) < 1e-6);
            smdiff_softmask_free(k);
        } else {
            double e = 0;
            for (int i = 0; i < L * V; i++)
                if (i % V != MASK && fabs(got[i] - ref[i]) > e) e = fabs(got[i] - ref[i]);
            assert_true(e > 0.1); /* the training copy is another model */
        }
        smdiff_model_free(m);
        free(ref);
    }
    snprintf(cmd, sizeof cmd, "%s scripts/mdlm_ckpt_to_hf.py %s/bad.ckpt %s/hf2 --n-heads 4 2>%s/bad.err", py, dir, dir,
             dir);
    int rc = system(cmd);
    assert_true(WIFEXITED(rc) && WEXITSTATUS(rc) == 1);
    snprintf(cmd, sizeof cmd, "%s/bad.err", dir);
    char *msg = read_all(cmd, &(size_t){0});
    if (!strstr(msg, "ema.shadow_params[3]")) fail_msg("%s", msg);
    free(msg);
}

/* A stored soft-mask temperature other than 1 is refused, not ignored. */
static void test_softmask_temperature(void **state) {
    (void)state;
    char dir[300], out[400];
    scratch_dir("tau", "{\"model_type\": \"mdlm\", \"vocab_size\": 64, \"model_length\": 64, \"hidden_dim\": 32, "
                "\"cond_dim\": 16, \"n_blocks\": 2, \"n_heads\": 4, \"smdiff_softmask\": {\"scale\": 0.5, "
                "\"steepness\": 2.0, \"centre\": -1.0, \"temperature\": 0.5}}", NULL, NULL, 0, dir, sizeof dir);
    snprintf(out, sizeof out, "%s/out.gguf", dir);
    sd_convert_opts o = {"f32", NULL, NULL, NULL, NULL};
    sd_error err = {0};
    if (sd_convert_hf(dir, out, &o, &err)) fail_msg("%s", err.msg);
    smdiff_model *m;
    assert_int_equal(smdiff_model_create(&m), 0);
    if (smdiff_model_load_file(m, out)) fail_msg("%s", smdiff_last_error());
    smdiff_softmask *k = NULL;
    assert_int_equal(smdiff_softmask_create_from_model(m, &k), SMDIFF_E_UNSUPPORTED);
    assert_non_null(strstr(smdiff_last_error(), "smdiff.softmask.temperature = 0.5"));
    smdiff_model_free(m);
    /* and a malformed head is refused by the converter */
    scratch_dir("tau2", "{\"model_type\": \"mdlm\", \"vocab_size\": 64, \"model_length\": 64, \"hidden_dim\": 32, "
                "\"cond_dim\": 16, \"n_blocks\": 2, \"n_heads\": 4, \"smdiff_softmask\": {\"scale\": 1.5, "
                "\"steepness\": 2.0, \"centre\": -1.0}}", NULL, NULL, 0, dir, sizeof dir);
    snprintf(out, sizeof out, "%s/out.gguf", dir);
    assert_int_equal(sd_convert_hf(dir, out, &o, &err), SMDIFF_E_FORMAT);
    assert_non_null(strstr(err.msg, "smdiff_softmask.scale"));
}

/* Training and evaluation on mdlm, end to end through the public API: the
 * ELBO bound (plain and two-pass) is finite; soft-masked training steps on a
 * repeated sequence lower the validation loss; the saved model loads and
 * runs with the trained weights; a time-conditioned model trains and
 * evaluates too; a new model from scratch. The gradients themselves are
 * checked by finite differences in test_train_grad. */
static void test_train_eval(void **state) {
    (void)state;
    smdiff_model *m = load("tiny_mdlm_f32.gguf", 1);
    enum { W = 4, S = 16 };
    int32_t win[W * S];
    for (int i = 0; i < W * S; i++) win[i] = (i * 7 + i / S) % 60;
    double nll[2];
    for (int tp = 0; tp < 2; tp++) {
        if (smdiff_eval_elbo(m, win, W, 0, S, 2, 5, tp, 1, &nll[tp], NULL)) fail_msg("%s", smdiff_last_error());
        assert_true(isfinite(nll[tp]) && nll[tp] > 0);
    }
    printf("tiny mdlm ELBO: %.4f nats/token (two-pass %.4f)\n", nll[0], nll[1]);

    smdiff_trainer *t;
    assert_int_equal(smdiff_trainer_create(&t), 0);
    assert_int_equal(smdiff_trainer_set_int(t, SMDIFF_TRAIN_BATCH, 2), 0);
    assert_int_equal(smdiff_trainer_set_int(t, SMDIFF_TRAIN_SEQ_LEN, S), 0);
    assert_int_equal(smdiff_trainer_set_int(t, SMDIFF_TRAIN_THREADS, 1), 0);
    assert_int_equal(smdiff_trainer_set_double(t, SMDIFF_TRAIN_LR, 3e-3), 0);
    if (smdiff_trainer_init_from_file(t, DATA "tiny_mdlm_f32.gguf")) fail_msg("%s", smdiff_trainer_last_error(t));
    int32_t data[64 * S];
    for (int i = 0; i < 64 * S; i++) data[i] = win[i % (W * S)];
    assert_int_equal(smdiff_trainer_set_data(t, data, 64 * S, data, 8 * S), 0);
    double before, after, loss;
    assert_int_equal(smdiff_trainer_eval(t, 4, &before), 0);
    for (int k = 0; k < 30; k++)
        if (smdiff_trainer_step(t, &loss)) fail_msg("step %d: %s", k, smdiff_trainer_last_error(t));
    assert_int_equal(smdiff_trainer_eval(t, 4, &after), 0);
    printf("tiny mdlm training: validation loss %.4f -> %.4f\n", before, after);
    assert_true(after < before);
    char out[300];
    snprintf(out, sizeof out, "%s/trained.gguf", test_dir);
    if (smdiff_trainer_save(t, out, 0, NULL)) fail_msg("save: %s", smdiff_trainer_last_error(t));
    smdiff_model *m2;
    assert_int_equal(smdiff_model_create(&m2), 0);
    if (smdiff_model_load_file(m2, out)) fail_msg("%s", smdiff_last_error());
    assert_string_equal(sd_model_arch_name(m2), "mdlm");
    assert_non_null(m2->w.cond_const);
    double again;
    assert_int_equal(smdiff_eval_elbo(m2, win, W, 0, S, 2, 5, 0, 1, &again, NULL), 0);
    assert_true(isfinite(again) && fabs(again - nll[0]) > 1e-6); /* the trained weights, not the file's */
    smdiff_model_free(m2);
    smdiff_trainer_free(t);
    smdiff_model_free(m);

    /* time conditioning: each sequence's conditioning follows its t */
    smdiff_trainer *t2;
    assert_int_equal(smdiff_trainer_create(&t2), 0);
    assert_int_equal(smdiff_trainer_set_int(t2, SMDIFF_TRAIN_BATCH, 2), 0);
    assert_int_equal(smdiff_trainer_set_int(t2, SMDIFF_TRAIN_SEQ_LEN, S), 0);
    assert_int_equal(smdiff_trainer_set_int(t2, SMDIFF_TRAIN_THREADS, 1), 0);
    assert_int_equal(smdiff_trainer_set_double(t2, SMDIFF_TRAIN_LR, 3e-3), 0);
    if (smdiff_trainer_init_from_file(t2, DATA "tiny_mdlm_tc_f32.gguf")) fail_msg("%s", smdiff_trainer_last_error(t2));
    assert_int_equal(smdiff_trainer_set_data(t2, data, 64 * S, data, 8 * S), 0);
    assert_int_equal(smdiff_trainer_eval(t2, 4, &before), 0);
    for (int k = 0; k < 30; k++) assert_int_equal(smdiff_trainer_step(t2, &loss), 0);
    assert_int_equal(smdiff_trainer_eval(t2, 4, &after), 0);
    printf("tiny time-conditioned mdlm training: validation loss %.4f -> %.4f\n", before, after);
    assert_true(after < before);
    smdiff_trainer_free(t2);
    smdiff_model *mt = load("tiny_mdlm_tc_f32.gguf", 1);
    if (smdiff_eval_elbo(mt, win, W, 0, S, 2, 5, 1, 1, &again, NULL)) fail_msg("%s", smdiff_last_error());
    assert_true(isfinite(again));
    smdiff_model_free(mt);

    /* from scratch: MDLM's conditioning width, a few steps, a loadable file */
    assert_int_equal(smdiff_trainer_create(&t2), 0);
    assert_int_equal(test_trainer_shape(t2, 64, 32, 2, 4, 0, 128, MASK, -1), 0);
    assert_int_equal(smdiff_trainer_set_int(t2, SMDIFF_TRAIN_BATCH, 2), 0);
    assert_int_equal(smdiff_trainer_set_int(t2, SMDIFF_TRAIN_SEQ_LEN, S), 0);
    assert_int_equal(smdiff_trainer_set_int(t2, SMDIFF_TRAIN_THREADS, 1), 0);
    if (smdiff_trainer_init_new(t2, "mdlm")) fail_msg("%s", smdiff_trainer_last_error(t2));
    assert_int_equal(smdiff_trainer_set_data(t2, data, 64 * S, data, 8 * S), 0);
    for (int k = 0; k < 3; k++) assert_int_equal(smdiff_trainer_step(t2, &loss), 0);
    assert_true(isfinite(loss));
    assert_int_equal(smdiff_trainer_save(t2, out, 0, NULL), 0);
    assert_int_equal(smdiff_model_create(&m2), 0);
    if (smdiff_model_load_file(m2, out)) fail_msg("%s", smdiff_last_error());
    int64_t p;
    assert_int_equal(smdiff_model_property(m2, SMDIFF_PROP_N_PARAMS, &p), 0);
    assert_int_equal(m2->w.hp.n_cond, 128);
    smdiff_model_free(m2);
    smdiff_trainer_free(t2);
    /* kv heads other than heads are refused */
    assert_int_equal(smdiff_trainer_create(&t2), 0);
    assert_int_equal(test_trainer_shape(t2, 64, 32, 2, 4, 2, 128, MASK, -1), 0);
    assert_int_equal(smdiff_trainer_init_new(t2, "mdlm"), SMDIFF_E_INVAL);
    assert_non_null(strstr(smdiff_last_error(), "kv heads"));
    smdiff_trainer_free(t2);
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
    /* GELU on both paths (8 lanes with a scalar tail: R * C - 3 is not a
     * multiple of 8, and the scalar path), wide inputs included */
    for (int path = 0; path < 2; path++) {
        sd_ops_force_scalar(path);
        for (int i = 0; i < R * C; i++) a[i] = b[i] = (i % 7 == 0 ? 40.0f : 6.0f) * frand();
        sd_gelu_tanh(a, R * C - 3, NULL);
        sd_gelu_tanh_ref(b, R * C - 3);
        for (int i = 0; i < R * C - 3; i++)
            if (fabsf(a[i] - b[i]) > 1e-6f * (1.0f + fabsf(b[i]))) fail_msg("gelu %d: %g vs %g", i, a[i], b[i]);
    }
    sd_ops_force_scalar(0);
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
        cmocka_unit_test(test_no_block_caches),
        cmocka_unit_test(test_n_params),
        cmocka_unit_test(test_generate),
        cmocka_unit_test(test_ddpm_cache),
        cmocka_unit_test(test_remdm),
        cmocka_unit_test(test_convert_roundtrip),
        cmocka_unit_test(test_convert_refusals),
        cmocka_unit_test(test_convert_cli),
        cmocka_unit_test(test_ckpt_import),
        cmocka_unit_test(test_softmask_temperature),
        cmocka_unit_test(test_train_eval),
    };
    return cmocka_run_group_tests(tests, test_dir_setup, test_dir_teardown);
}
