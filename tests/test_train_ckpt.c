/* test_train_ckpt.c -- trainable model <-> GGUF (lib/train/checkpoint.c).
 *
 *  - A model is written and loaded by the inference path (sd_model_load,
 *    as `smdiff generate` does): its logits equal the training forward's,
 *    for dream, llada trained with permuted RoPE, and llada trained with
 *    NEOX RoPE (written with llama.cpp's Q/K row permutation).
 *  - Written and read back as a trainable model: parameters bit-identical
 *    (F32), including the raw SM parameters; the SM metadata the decoder
 *    reads (scale, steepness, centre, k) is there.
 *  - The nn branch's tiny GGUF fixtures (made by tests/ref/tiny_models.py
 *    in PyTorch) load as trainable models whose training forward gives the
 *    PyTorch logits; a BF16 file loads as the bf16 roundings of the weights.
 *  - Bad input: missing file, a non-model file, Q8_0 with short rows. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"

#include "core/alloc.h"
#include "io/gguf.h"
#include "nn/blas.h"
#include "nn/model.h"
#include "train/checkpoint.h"
#include "train/ops.h"

static char tmp_path[256];

static sd_tmodel *make(sd_arch arch, int permuted, int64_t L) {
    sd_hparams hp = {0};
    hp.arch = arch;
    hp.n_vocab = 64, hp.n_embd = 32, hp.n_layer = 2, hp.n_head = 4, hp.n_head_kv = 2, hp.n_ff = 64;
    hp.n_ctx = 32, hp.norm_eps = 1e-6f, hp.rope_base = 10000.0f, hp.mask_id = 63;
    hp.bos_id = 1, hp.eos_id = 2, hp.pad_id = -1;
    hp.rope_permuted = permuted;
    hp.shift_logits = arch == SD_ARCH_DREAM;
    sd_tmodel *m = NULL;
    assert_int_equal(sd_tmodel_create(&hp, 1, L, 0, &m, NULL), 0);
    sd_rng r;
    sd_rng_init(&r, 5 + (uint64_t)arch + 2u * (uint64_t)permuted, 0);
    sd_tmodel_init_random(m, &r, 0.3f, 0.25, 3.5, -1.25);
    for (int32_t i = 0; i < m->n_tensors; i++)
        if (m->tensors[i].group == SD_TGROUP_NO_DECAY)
            for (int64_t j = 0; j < m->tensors[i].rows * m->tensors[i].cols; j++)
                m->params[m->tensors[i].offset + j] += 0.2f * (float)(sd_rng_uniform(&r) - 0.5);
    return m;
}

/* Training forward logits for all rows of ids [L]. */
static void train_logits(sd_tmodel *m, const int32_t *ids, int64_t L, float *out) {
    int32_t rows[64];
    for (int i = 0; i < L; i++) rows[i] = i;
    sd_tbatch b = {1, L, ids, 0, 0, 0, NULL, NULL, NULL, NULL, L, rows, NULL, NULL, NULL, 0};
    assert_int_equal(sd_tmodel_forward(m, &b, NULL), 0);
    memcpy(out, m->a.logits, sizeof(float) * (size_t)(L * m->hp.n_vocab));
}

static struct smdiff_model *load_inference(const char *path) {
    struct smdiff_model *im = sd_calloc(1, sizeof *im);
    atomic_init(&im->refcount, 1);
    sd_options_defaults(&sd_model_options, im->opt);
    im->opt[SD_OPT_SLOT(SMDIFF_MODEL_THREADS)].i = sd_blas_get_threads();
    int32_t rc = sd_model_load(im, path);
    if (rc) printf("  load %s: %s\n", path, im->err.msg);
    assert_int_equal(rc, 0);
    return im;
}

static void roundtrip(sd_arch arch, int permuted) {
    enum { L = 10 };
    sd_tmodel *m = make(arch, permuted, L);
    int32_t ids[L];
    for (int i = 0; i < L; i++) ids[i] = (i * 11 + 3) % 64;
    float *want = malloc(sizeof(float) * L * 64), *got = malloc(sizeof(float) * L * 64);
    train_logits(m, ids, L, want);

    sd_ckpt_opts o = {"test-model", SD_GGML_F32, 3, NULL};
    sd_error err = {0};
    assert_int_equal(sd_tmodel_save_gguf(m, tmp_path, &o, &err), 0);

    /* the inference path */
    struct smdiff_model *im = load_inference(tmp_path);
    assert_int_equal(im->w.hp.shift_logits, arch == SD_ARCH_DREAM);
    assert_int_equal(im->w.hp.mask_id, 63);
    assert_int_equal(im->w.hp.bos_id, 1);
    float embd[L * 32];
    for (int i = 0; i < L; i++) sd_embed_token(&im->w, ids[i], embd + i * 32);
    int32_t rows[L];
    for (int i = 0; i < L; i++) rows[i] = i;
    assert_int_equal(sd_model_forward(im, embd, L, rows, L, got), 0);
    double worst = 0;
    for (int i = 0; i < L * 64; i++) worst = fmax(worst, fabs(got[i] - want[i]));
    printf("  %s%s: inference logits vs training logits: max diff %.3g\n",
           arch == SD_ARCH_DREAM ? "dream" : "llada", permuted ? " (permuted)" : " (neox)", worst);
    assert_true(worst < 1e-4);
    double v;
    assert_int_equal(sd_gguf_get_f64(im->gguf, "smdiff.softmask.scale", &v, &err), 0);
    assert_float_equal(v, 0.25, 1e-6);
    assert_int_equal(sd_gguf_get_f64(im->gguf, "smdiff.softmask.steepness", &v, &err), 0);
    assert_float_equal(v, 3.5, 1e-5);
    assert_int_equal(sd_gguf_get_f64(im->gguf, "smdiff.softmask.centre", &v, &err), 0);
    assert_float_equal(v, -1.25, 1e-5);
    int64_t k;
    assert_int_equal(sd_gguf_get_i64(im->gguf, "smdiff.softmask.k", &k, &err), 0);
    assert_int_equal(k, 3);
    sd_model_destroy(im);

    /* back as a trainable model */
    sd_tmodel *m2 = NULL;
    assert_int_equal(sd_tmodel_load_gguf(tmp_path, 1, L, 0, &m2, &err), 0);
    assert_int_equal(m2->n_params, m->n_params);
    assert_memory_equal(m2->p.sm_raw, m->p.sm_raw, 3 * sizeof(float));
    if (arch == SD_ARCH_LLADA && !permuted) {
        /* reloaded in llama.cpp's layout: other Q/K order, same function */
        assert_int_equal(m2->rope_mode, SD_ROPE_ADJACENT);
        train_logits(m2, ids, L, got);
        for (int i = 0; i < L * 64; i++) assert_float_equal(got[i], want[i], 1e-5);
    } else {
        assert_memory_equal(m2->params, m->params, m->n_params * sizeof(float));
    }
    sd_tmodel_free(m2);

    /* a BF16 file: matrices come back as their bf16 roundings, vectors exact */
    o.matrix_type = SD_GGML_BF16;
    assert_int_equal(sd_tmodel_save_gguf(m, tmp_path, &o, &err), 0);
    assert_int_equal(sd_tmodel_load_gguf(tmp_path, 1, L, 0, &m2, &err), 0);
    for (int32_t i = 0; i < m->n_tensors; i++) {
        const sd_ttensor *t = &m->tensors[i];
        if (arch == SD_ARCH_LLADA && !permuted && strstr(t->name, "attn_q")) continue;
        if (arch == SD_ARCH_LLADA && !permuted && strstr(t->name, "attn_k")) continue;
        for (int64_t j = 0; j < t->rows * t->cols; j++) {
            float x = m->params[t->offset + j];
            float want_x = t->rows > 1 ? sd_bf16_to_f32(sd_f32_to_bf16(x)) : x;
            if (m2->params[t->offset + j] != want_x) fail_msg("%s[%lld]", t->name, (long long)j);
        }
    }
    sd_tmodel_free(m2);
    unlink(tmp_path);
    free(want);
    free(got);
    sd_tmodel_free(m);
}

static void test_roundtrip_dream(void **state) {
    (void)state;
    roundtrip(SD_ARCH_DREAM, 0);
}
static void test_roundtrip_llada_permuted(void **state) {
    (void)state;
    roundtrip(SD_ARCH_LLADA, 1);
}
static void test_roundtrip_llada_neox(void **state) {
    (void)state;
    roundtrip(SD_ARCH_LLADA, 0);
}

/* nn's PyTorch-made fixtures: the training forward on a loaded file gives
 * the reference logits (L = 9 ids, all rows). */
static void test_pytorch_fixtures(void **state) {
    (void)state;
    const char *archs[2] = {"dream", "llada"};
    for (int a = 0; a < 2; a++) {
        char name[64];
        snprintf(name, sizeof name, "tiny_%s_f32.gguf", archs[a]);
        sd_tmodel *m = NULL;
        sd_error err = {0};
        int32_t rc = sd_tmodel_load_gguf(test_data_path(name), 1, 9, 0, &m, &err);
        if (rc) printf("  %s: %s\n", name, err.msg);
        assert_int_equal(rc, 0);
        int64_t V = m->hp.n_vocab;
        int32_t ids[9];
        float *ref = malloc(sizeof(float) * 9 * (size_t)V), *got = malloc(sizeof(float) * 9 * (size_t)V);
        snprintf(name, sizeof name, "tiny_%s_ids.i32", archs[a]);
        FILE *f = fopen(test_data_path(name), "rb");
        assert_non_null(f);
        assert_int_equal(fread(ids, 4, 9, f), 9);
        fclose(f);
        snprintf(name, sizeof name, "tiny_%s_f32.logits.f32", archs[a]);
        f = fopen(test_data_path(name), "rb");
        assert_non_null(f);
        assert_int_equal(fread(ref, 4, 9 * (size_t)V, f), 9 * (size_t)V);
        fclose(f);
        train_logits(m, ids, 9, got);
        double worst = 0;
        for (int i = 0; i < 9 * V; i++) worst = fmax(worst, fabs(got[i] - ref[i]));
        printf("  %s fixture: training forward vs PyTorch logits: max diff %.3g\n", archs[a], worst);
        assert_true(worst < 1e-4);
        free(ref);
        free(got);
        sd_tmodel_free(m);
    }
}

static void test_bad_input(void **state) {
    (void)state;
    sd_tmodel *m = NULL;
    sd_error err = {0};
    assert_int_equal(sd_tmodel_load_gguf("no/such/file.gguf", 1, 4, 0, &m, &err), SMDIFF_E_IO);
    assert_null(m);
    assert_int_equal(sd_tmodel_load_gguf(test_data_path("rng_philox.txt"), 1, 4, 0, &m, &err), SMDIFF_E_FORMAT);
    assert_null(m);
    sd_hparams hp = {0};
    hp.arch = SD_ARCH_LLADA;
    hp.n_vocab = 10, hp.n_embd = 16, hp.n_layer = 1, hp.n_head = 2, hp.n_head_kv = 2, hp.n_ff = 24;
    hp.norm_eps = 1e-5f, hp.rope_base = 1e4f, hp.mask_id = 9;
    assert_int_equal(sd_tmodel_create(&hp, 1, 4, 0, &m, &err), 0);
    sd_ckpt_opts o = {NULL, SD_GGML_Q8_0, 0, NULL};
    assert_int_equal(sd_tmodel_save_gguf(m, tmp_path, &o, &err), SMDIFF_E_INVAL);
    assert_non_null(strstr(err.msg, "Q8_0"));
    o.matrix_type = 7;
    assert_int_equal(sd_tmodel_save_gguf(m, tmp_path, &o, &err), SMDIFF_E_INVAL);
    assert_int_equal(sd_tmodel_save_gguf(m, "no/such/dir/x.gguf", NULL, &err), SMDIFF_E_IO);
    assert_int_equal(access(tmp_path, F_OK), -1);
    sd_tmodel_free(m);
}

int main(void) {
    snprintf(tmp_path, sizeof tmp_path, "/tmp/smdiff_test_ckpt_%d.gguf", (int)getpid());
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_dream),
        cmocka_unit_test(test_roundtrip_llada_permuted),
        cmocka_unit_test(test_roundtrip_llada_neox),
        cmocka_unit_test(test_pytorch_fixtures),
        cmocka_unit_test(test_bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
