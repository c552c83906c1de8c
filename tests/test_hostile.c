/* test_hostile.c -- hostile numbers: models whose weights hold NaN,
 * infinities, values that overflow in a matrix product, subnormals (in
 * F32, F16, BF16 and Q8_0 files, in every kind of tensor), and absurd but
 * loadable hyper-parameters (a RoPE base or norm epsilon at the edge of
 * what the loader accepts), pushed through everything that computes:
 * logits, generation (greedy and sampled, with soft-masking), the ELBO, the
 * soft-mask gate and a training step. Each call must end in SMDIFF_OK or
 * SMDIFF_E_NUMERIC (SMDIFF_E_FORMAT where the loader refuses) and never in
 * undefined behaviour: under SAN=1 (AddressSanitizer, UndefinedBehavior-
 * Sanitizer with float-cast-overflow) any such report aborts the test.
 * The files are made here from the test fixtures by changing bytes in
 * place. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/numfmt.h"
#include "io/gguf.h"
#include "smdiff/smdiff.h"
#include "testutil.h"

static char dir[256];
static long n_files, n_calls, n_numeric;

/* ------------------------------------------------------ making the files */

typedef struct {
    uint8_t *b;
    size_t n;
} image;

static image read_image(const char *name) {
    image im;
    im.b = test_read_file(test_data_path(name), &im.n);
    assert_non_null(im.b);
    return im;
}

static const sd_gguf_tensor *tensor(const image *im, sd_gguf **g, const char *name) {
    sd_error err = {0};
    if (sd_gguf_open_memory(im->b, im->n, g, &err)) fail_msg("%s", err.msg);
    const sd_gguf_tensor *t = sd_gguf_find_tensor(*g, name);
    if (!t) fail_msg("no tensor %s", name);
    return t;
}

/* Fill (every element, or only element 0) of a tensor with v, in its own
 * storage type (Q8_0: the blocks' scales). */
static void poison(image *im, const char *name, float v, int all) {
    sd_gguf *g = NULL;
    const sd_gguf_tensor *t = tensor(im, &g, name);
    uint8_t *p = im->b + ((const uint8_t *)t->data - im->b);
    uint64_t nel = t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3], count = all ? nel : 1;
    for (uint64_t i = 0; i < count; i++) {
        switch (t->type) {
        case SD_GGML_F32: memcpy(p + 4 * i, &v, 4); break;
        case SD_GGML_F16: case SD_GGML_BF16: {
            uint8_t h[2];
            sd_ggml_from_f32(t->type, &v, h, 1);
            memcpy(p + 2 * i, h, 2);
            break;
        }
        case SD_GGML_Q8_0:
            if (i % 32 == 0) {
                uint8_t h[2];
                sd_ggml_from_f32(SD_GGML_F16, &v, h, 1);
                memcpy(p + 34 * (i / 32), h, 2);
            }
            break;
        default: fail_msg("type %u", t->type);
        }
    }
    sd_gguf_close(g);
}

/* Set a float32 metadata value in place. */
static void set_meta_f32(image *im, const char *key, float v) {
    uint8_t *k = memmem(im->b, im->n, key, strlen(key));
    assert_non_null(k);
    uint32_t type;
    memcpy(&type, k + strlen(key), 4);
    assert_int_equal(type, SD_GGUF_FLOAT32);
    memcpy(k + strlen(key) + 4, &v, 4);
}

static const char *save(const image *im) {
    static char p[400];
    snprintf(p, sizeof p, "%s/hostile%ld.gguf", dir, n_files++);
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(im->b, 1, im->n, f), im->n);
    fclose(f);
    return p;
}

/* ------------------------------------------------------- running the files */

static void expect(int32_t rc, const char *what, const char *variant) {
    n_calls++;
    n_numeric += rc == SMDIFF_E_NUMERIC;
    if (rc != SMDIFF_OK && rc != SMDIFF_E_NUMERIC)
        fail_msg("%s on %s: %s: %s", what, variant, smdiff_err_name(rc), smdiff_last_error());
}

/* Everything that computes, on the model at path. */
static void run_all(const char *path, const char *variant) {
    smdiff_model *m = NULL;
    assert_int_equal(smdiff_model_create(&m), SMDIFF_OK);
    assert_int_equal(smdiff_model_set_int(m, SMDIFF_MODEL_THREADS, 2), SMDIFF_OK);
    int32_t rc = smdiff_model_load_file(m, path);
    if (rc == SMDIFF_E_FORMAT) { /* refused with a reason: fine */
        assert_true(strlen(smdiff_last_error()) > 0);
        smdiff_model_free(m);
        n_calls++;
        return;
    }
    expect(rc, "load", variant);
    int64_t V, mask;
    assert_int_equal(smdiff_model_property(m, SMDIFF_PROP_VOCAB_SIZE, &V), SMDIFF_OK);
    assert_int_equal(smdiff_model_property(m, SMDIFF_PROP_MASK_ID, &mask), SMDIFF_OK);
    int32_t ids[12], rows[12];
    for (int i = 0; i < 12; i++) ids[i] = i < 6 ? (int32_t)((i * 7 + 3) % (V - 2)) : (int32_t)mask, rows[i] = i;
    float *logits = malloc(sizeof(float) * 12 * (size_t)V);
    expect(smdiff_model_logits(m, ids, 12, rows, 12, logits, 12 * (size_t)V), "logits", variant);
    free(logits);
    /* generation: greedy and sampled, binary and soft-masked, three strategies */
    static const char *const strategies[3] = {"maskgit_plus", "topk_margin", "entropy"};
    for (int v = 0; v < 6; v++) {
        smdiff_sampler *s = NULL;
        assert_int_equal(smdiff_sampler_create(&s), SMDIFF_OK);
        assert_int_equal(smdiff_sampler_set_int(s, SMDIFF_SAMPLER_GEN_LENGTH, 8), SMDIFF_OK);
        assert_int_equal(smdiff_sampler_set_int(s, SMDIFF_SAMPLER_STEPS, 4), SMDIFF_OK);
        assert_int_equal(smdiff_sampler_set_int(s, SMDIFF_SAMPLER_STOP_AT_EOS, 0), SMDIFF_OK);
        assert_int_equal(smdiff_sampler_set_strategy(s, strategies[v % 3]), SMDIFF_OK);
        if (v >= 3) {
            assert_int_equal(smdiff_sampler_set_double(s, SMDIFF_SAMPLER_TEMPERATURE, 0.7), SMDIFF_OK);
            assert_int_equal(smdiff_sampler_set_double(s, SMDIFF_SAMPLER_TOP_P, 0.9), SMDIFF_OK);
            assert_int_equal(smdiff_sampler_set_int(s, SMDIFF_SAMPLER_TOP_K, 5), SMDIFF_OK);
            assert_int_equal(smdiff_sampler_set_double(s, SMDIFF_SAMPLER_ALG_TEMP, 0.5), SMDIFF_OK);
        }
        smdiff_softmask *sm = NULL;
        assert_int_equal(smdiff_softmask_create(&sm), SMDIFF_OK);
        assert_int_equal(smdiff_softmask_set_int(sm, SMDIFF_SM_MODE, v % 2 ? SMDIFF_SM_ENTROPY : SMDIFF_SM_CONSTANT),
                         SMDIFF_OK);
        assert_int_equal(smdiff_softmask_set_double(sm, SMDIFF_SM_SCALE, 0.9), SMDIFF_OK);
        assert_int_equal(smdiff_sampler_set_softmask(s, sm), SMDIFF_OK);
        smdiff_softmask_free(sm);
        int32_t out[8];
        size_t n;
        expect(smdiff_generate_tokens(s, m, ids, 4, out, 8, &n), "generate", variant);
        int32_t canvas[12];
        memcpy(canvas, ids, sizeof canvas);
        expect(smdiff_generate_canvas(s, m, canvas, 12), "canvas", variant);
        smdiff_sampler_free(s);
    }
    double nll;
    expect(smdiff_eval_elbo(m, ids, 1, 0, 6, 2, 1, 1, 2, &nll, NULL), "elbo", variant);
    double rates[2] = {0.3, 1.0};
    smdiff_gate_stats gs[2];
    expect(smdiff_eval_gate(m, NULL, ids, 1, 6, rates, 2, 1, gs), "gate", variant);
    smdiff_model_free(m);
    /* a training step from the file */
    smdiff_trainer *t = NULL;
    assert_int_equal(smdiff_trainer_create(&t), SMDIFF_OK);
    assert_int_equal(smdiff_trainer_set_int(t, SMDIFF_TRAIN_SEQ_LEN, 8), SMDIFF_OK);
    assert_int_equal(smdiff_trainer_set_int(t, SMDIFF_TRAIN_BATCH, 2), SMDIFF_OK);
    assert_int_equal(smdiff_trainer_set_int(t, SMDIFF_TRAIN_THREADS, 1), SMDIFF_OK);
    rc = smdiff_trainer_init_from_file(t, path);
    if (rc == SMDIFF_OK) {
        int32_t data[64];
        for (int i = 0; i < 64; i++) data[i] = (int32_t)((i * 5 + 1) % (V - 2));
        assert_int_equal(smdiff_trainer_set_data(t, data, 48, data + 48, 16), SMDIFF_OK);
        double loss;
        expect(smdiff_trainer_step(t, &loss), "training step", variant);
        expect(smdiff_trainer_eval(t, 1, &loss), "training eval", variant);
    } else {
        expect(rc == SMDIFF_E_FORMAT ? SMDIFF_OK : rc, "trainer init", variant);
    }
    smdiff_trainer_free(t);
}

static void test_hostile_weights(void **state) {
    (void)state;
    static const char *const files[] = {"tiny_dream_f32.gguf", "tiny_llada_f32.gguf", "tiny_dream_f16.gguf",
                                        "tiny_llada_bf16.gguf", "tiny_dream_q8_0.gguf"};
    static const char *const tensors[] = {"token_embd.weight", "blk.0.attn_norm.weight", "blk.0.attn_q.weight",
                                          "blk.0.attn_k.weight", "blk.0.ffn_down.weight", "blk.1.ffn_gate.weight",
                                          "output_norm.weight", "output.weight"};
    const float values[] = {NAN, INFINITY, -INFINITY, 3e38f, 1e-45f};
    const char *names[] = {"NaN", "+inf", "-inf", "3e38", "1e-45"};
    long before = n_calls, numeric = n_numeric;
    for (size_t f = 0; f < sizeof files / sizeof files[0]; f++)
        for (size_t t = 0; t < sizeof tensors / sizeof tensors[0]; t++)
            for (size_t v = 0; v < sizeof values / sizeof values[0]; v++)
                for (int all = 0; all < 2; all++) {
                    image im = read_image(files[f]);
                    sd_gguf *g = NULL;
                    sd_error err = {0};
                    assert_int_equal(sd_gguf_open_memory(im.b, im.n, &g, &err), 0);
                    int has = sd_gguf_find_tensor(g, tensors[t]) != NULL;
                    sd_gguf_close(g);
                    if (!has || (!all && v >= 3)) { /* one huge or tiny element is harmless */
                        free(im.b);
                        continue;
                    }
                    poison(&im, tensors[t], values[v], all);
                    char variant[200];
                    snprintf(variant, sizeof variant, "%s with %s %s in %s", files[f], all ? "every element" : "one element",
                             names[v], tensors[t]);
                    run_all(save(&im), variant);
                    free(im.b);
                }
    printf("  hostile weights: %ld files, %ld calls, each OK or SMDIFF_E_NUMERIC (%ld)\n", n_files, n_calls - before,
           n_numeric - numeric);
    assert_true(n_numeric - numeric > 1000); /* NaN reaches the checks, not just the end */
}

static void test_hostile_hparams(void **state) {
    (void)state;
    struct {
        const char *file, *key;
        float v;
    } cases[] = {
        {"tiny_dream_f32.gguf", "dream.rope.freq_base", 1e-38f},
        {"tiny_dream_f32.gguf", "dream.rope.freq_base", 1e30f},
        {"tiny_llada_f32.gguf", "llada.rope.freq_base", 1e-38f},
        {"tiny_dream_f32.gguf", "dream.attention.layer_norm_rms_epsilon", 1e-45f},
        {"tiny_dream_f32.gguf", "dream.attention.layer_norm_rms_epsilon", 1e30f},
        {"tiny_llada_f32.gguf", "llada.attention.layer_norm_rms_epsilon", 1e30f},
        /* what the loader refuses */
        {"tiny_dream_f32.gguf", "dream.rope.freq_base", NAN},
        {"tiny_dream_f32.gguf", "dream.rope.freq_base", INFINITY},
        {"tiny_dream_f32.gguf", "dream.rope.freq_base", -1.0f},
        {"tiny_dream_f32.gguf", "dream.attention.layer_norm_rms_epsilon", 0.0f},
        {"tiny_llada_f32.gguf", "llada.attention.layer_norm_rms_epsilon", -INFINITY},
    };
    long before = n_calls;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        image im = read_image(cases[i].file);
        set_meta_f32(&im, cases[i].key, cases[i].v);
        char variant[200];
        snprintf(variant, sizeof variant, "%s with %s = %g", cases[i].file, cases[i].key, (double)cases[i].v);
        const char *p = save(&im);
        run_all(p, variant);
        if (!(cases[i].v > 0) || isinf(cases[i].v)) { /* these must have been refused */
            smdiff_model *m = NULL;
            assert_int_equal(smdiff_model_create(&m), SMDIFF_OK);
            assert_int_equal(smdiff_model_load_file(m, p), SMDIFF_E_FORMAT);
            assert_non_null(strstr(smdiff_last_error(), cases[i].key));
            smdiff_model_free(m);
        }
        free(im.b);
    }
    printf("  hostile hyper-parameters: %zu files, %ld calls\n", sizeof cases / sizeof cases[0], n_calls - before);
}

int main(void) {
    char *d = test_scratch_dir("test_hostile");
    if (!d) return 1;
    snprintf(dir, sizeof dir, "%s", d);
    free(d);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hostile_weights),
        cmocka_unit_test(test_hostile_hparams),
    };
    int rc = cmocka_run_group_tests_name("hostile", tests, NULL, NULL);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd)) rc = 1;
    return rc;
}
