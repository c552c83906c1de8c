/* test_convert.c -- Hugging Face -> GGUF converter against the NumPy-built
 * fixtures of tests/ref/make_hf_fixture.py: every GGUF tensor, read back and
 * dequantised, must equal the script's expected array (LLaDA Q/K permuted by
 * NumPy, not by the code under test) within the output type's rounding, and
 * the metadata must carry llama.cpp's keys with the config's values. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "convert/convert.h"
#include "io/gguf.h"
#include "io/safetensors.h"
#include "smdiff/smdiff.h"
#include "text/tokenizer.h"
#include "testutil.h"

#define DATA "tests/data/"
#define DREAM_TOK DATA "tokenizers/dream-qwen2.5"


static int str_eq(sd_gguf_str s, const char *c) { return s.len == strlen(c) && memcmp(s.ptr, c, s.len) == 0; }

static uint64_t get_u(const sd_gguf *g, const char *k) {
    uint64_t v = 0;
    sd_error err;
    if (sd_gguf_get_u64(g, k, &v, &err)) fail_msg("%s", err.msg);
    return v;
}

static double get_f(const sd_gguf *g, const char *k) {
    double v = 0;
    sd_error err;
    if (sd_gguf_get_f64(g, k, &v, &err)) fail_msg("%s", err.msg);
    return v;
}

static void expect_str(const sd_gguf *g, const char *k, const char *want) {
    sd_gguf_str s;
    sd_error err;
    if (sd_gguf_get_str(g, k, &s, &err)) fail_msg("%s", err.msg);
    if (!str_eq(s, want)) fail_msg("%s: got '%.*s', want '%s'", k, (int)s.len, s.ptr, want);
}

static void expect_tok(const sd_gguf *g, uint64_t i, const char *text, int64_t type) {
    sd_gguf_str s;
    int64_t t;
    assert_int_equal(sd_gguf_arr_str(g, "tokenizer.ggml.tokens", i, &s), 0);
    if (!str_eq(s, text)) fail_msg("token %lu: '%.*s' want '%s'", (unsigned long)i, (int)s.len, s.ptr, text);
    assert_int_equal(sd_gguf_arr_i64(g, "tokenizer.ggml.token_type", i, &t), 0);
    if (t != type) fail_msg("token %lu type %ld want %ld", (unsigned long)i, (long)t, (long)type);
}

/* Largest |error| the output type may introduce for value x in a block of
 * largest magnitude amax (the 32 elements sharing a Q8_0 scale):
 *  f32:  0 (copy);  bf16 from a bf16 source: 0; from f32: half an ulp, |x| 2^-8;
 *  f16:  half an ulp |x| 2^-11, or 2^-25 in the subnormal range;
 *  q8_0: half a quantisation step amax/254, plus the f16 rounding of the
 *        scale (relative 2^-11) multiplied by up to 127 steps: amax 2^-11. */
static float tolerance(uint32_t type, float x, float amax, int src_bf16) {
    switch (type) {
    case SD_GGML_F32: return 0.0f;
    case SD_GGML_BF16: return src_bf16 ? 0.0f : fabsf(x) * 0x1p-8f;
    case SD_GGML_F16: return fabsf(x) * 0x1p-11f + 0x1p-25f;
    default: return amax / 254.0f + amax * 0x1p-11f + 1e-7f;
    }
}

static void check_tensors(const sd_gguf *g, const char *expected_path, uint32_t out_type, int src_bf16,
                          int64_t n_expected) {
    sd_st *exp = NULL;
    sd_error err;
    if (sd_st_open(expected_path, &exp, &err)) fail_msg("%s", err.msg);
    assert_int_equal(sd_st_n_tensors(exp), n_expected);
    assert_int_equal(sd_gguf_n_tensors(g), n_expected);
    for (int64_t i = 0; i < sd_st_n_tensors(exp); i++) {
        const sd_st_tensor *e = sd_st_tensor_at(exp, i);
        const sd_gguf_tensor *t = sd_gguf_find_tensor(g, e->name);
        if (!t) fail_msg("GGUF lacks '%s'", e->name);
        /* Shape: HF [out, in] is GGUF ne = {in, out}. */
        if (e->n_dims == 2) {
            assert_true(t->n_dims == 2 && t->ne[0] == e->shape[1] && t->ne[1] == e->shape[0]);
        } else {
            assert_true(t->n_dims == 1 && t->ne[0] == e->shape[0]);
        }
        uint32_t want_type = out_type;
        if (e->n_dims == 1) want_type = SD_GGML_F32;                       /* norms, biases */
        else if (out_type == SD_GGML_Q8_0 && e->shape[1] % 32) want_type = SD_GGML_F16; /* 48-wide ffn_down */
        if (t->type != want_type) fail_msg("'%s': type %s, want %s", e->name, sd_ggml_type_name(t->type),
                                           sd_ggml_type_name(want_type));
        float *ref = malloc(e->n_elements * 4), *got = malloc(e->n_elements * 4);
        assert_int_equal(sd_st_to_f32(e, ref, &err), 0);
        sd_ggml_to_f32(t->type, t->data, got, (int64_t)e->n_elements);
        for (uint64_t k = 0; k < e->n_elements; k++) {
            uint64_t b0 = k / 32 * 32;
            float amax = 0;
            for (uint64_t j = b0; j < b0 + 32 && j < e->n_elements; j++) amax = fmaxf(amax, fabsf(ref[j]));
            float tol = tolerance(t->type, ref[k], amax, src_bf16);
            if (!(fabsf(got[k] - ref[k]) <= tol))
                fail_msg("'%s' [%lu] as %s: %.9g vs %.9g (tol %g)", e->name, (unsigned long)k,
                         sd_ggml_type_name(t->type), got[k], ref[k], tol);
        }
        free(ref);
        free(got);
    }
    sd_st_close(exp);
}

static const uint32_t k_types[4] = {SD_GGML_F32, SD_GGML_F16, SD_GGML_BF16, SD_GGML_Q8_0};
static const char *const k_names[4] = {"f32", "f16", "bf16", "q8_0"};
static const uint64_t k_file_types[4] = {0, 1, 32, 7};

static void test_dream_all_types(void **state) {
    (void)state;
    for (int ti = 0; ti < 4; ti++) {
        char out[256];
        snprintf(out, sizeof out, "%s/dream_%d.gguf", test_dir, ti);
        sd_convert_opts o = {k_names[ti], NULL, NULL, NULL, NULL};
        sd_error err;
        int32_t rc = sd_convert_hf(DATA "hf_dream_tiny", out, &o, &err);
        if (rc) fail_msg("convert: %s", err.msg);
        sd_gguf *g = NULL;
        if (sd_gguf_open(out, 1, &g, &err)) fail_msg("%s", err.msg);
        expect_str(g, "general.architecture", "dream");
        expect_str(g, "general.name", "hf_dream_tiny");
        assert_int_equal(get_u(g, "general.file_type"), k_file_types[ti]);
        assert_int_equal(get_u(g, "dream.block_count"), 2);
        assert_int_equal(get_u(g, "dream.context_length"), 256);
        assert_int_equal(get_u(g, "dream.embedding_length"), 32);
        assert_int_equal(get_u(g, "dream.feed_forward_length"), 48);
        assert_int_equal(get_u(g, "dream.attention.head_count"), 4);
        assert_int_equal(get_u(g, "dream.attention.head_count_kv"), 2);
        assert_true(get_f(g, "dream.rope.freq_base") == 1e6);
        assert_true((float)get_f(g, "dream.attention.layer_norm_rms_epsilon") == 1e-6f);
        int b = -1;
        assert_int_equal(sd_gguf_get_bool(g, "diffusion.shift_logits", &b, &err), 0);
        assert_int_equal(b, 1);
        assert_int_equal(sd_gguf_get_bool(g, "dream.attention.causal", &b, &err), 0);
        assert_int_equal(b, 0);
        expect_str(g, "tokenizer.ggml.model", "gpt2");
        expect_str(g, "tokenizer.ggml.pre", "qwen2");
        uint64_t n;
        assert_int_equal(sd_gguf_get_arr(g, "tokenizer.ggml.tokens", NULL, &n, &err), 0);
        assert_int_equal(n, 64);
        expect_tok(g, 0, "!", 1);
        expect_tok(g, 15, "the", 1);
        expect_tok(g, 10, "\xc4\xa0", 1);
        expect_tok(g, 40, "[PAD40]", 5);
        expect_tok(g, 59, "[PAD59]", 5);
        expect_tok(g, 60, "<|endoftext|>", 3);
        /* added, not special, but looks special (<|...|>): CONTROL, as llama.cpp's
         * convert_hf_to_gguf.py (does_token_look_special) and the tokenizer's
         * own loader type it (0.1's converter wrote 4, user-defined) */
        expect_tok(g, 61, "<|file_sep|>", 3);
        expect_tok(g, 62, "<|mask|>", 3);
        expect_tok(g, 63, "<|beginoftext|>", 3);
        assert_int_equal(sd_gguf_get_arr(g, "tokenizer.ggml.merges", NULL, &n, &err), 0);
        assert_int_equal(n, 9);
        sd_gguf_str s;
        assert_int_equal(sd_gguf_arr_str(g, "tokenizer.ggml.merges", 0, &s), 0);
        assert_true(str_eq(s, "\xc4\xa0 t"));
        assert_int_equal(sd_gguf_arr_str(g, "tokenizer.ggml.merges", 8, &s), 0);
        assert_true(str_eq(s, "hel lo"));
        /* bos from tokenizer_config.json's text (not config.json's 60). */
        assert_int_equal(get_u(g, "tokenizer.ggml.bos_token_id"), 63);
        assert_int_equal(get_u(g, "tokenizer.ggml.eos_token_id"), 60);
        assert_int_equal(get_u(g, "tokenizer.ggml.padding_token_id"), 60);
        assert_int_equal(get_u(g, "tokenizer.ggml.mask_token_id"), 62);
        assert_int_equal(sd_gguf_find_key(g, "tokenizer.ggml.unknown_token_id"), -1);
        assert_int_equal(sd_gguf_get_bool(g, "tokenizer.ggml.add_bos_token", &b, &err), 0);
        assert_int_equal(b, 0);
        assert_true(sd_gguf_find_key(g, "tokenizer.chat_template") >= 0);
        /* no tokenizer class and no tokenizer.json: no normaliser, no key */
        assert_int_equal(sd_gguf_find_key(g, "smdiff.tokenizer.normalizer"), -1);
        check_tensors(g, DATA "hf_dream_tiny_expected.safetensors", k_types[ti], 1, 27);
        sd_gguf_close(g);
        unlink(out);
    }
}

static int progress_calls;
static uint64_t progress_last, progress_total;
static void on_progress(void *user, uint64_t done, uint64_t total) {
    (void)user;
    assert_true(done >= progress_last && done <= total);
    progress_last = done;
    progress_total = total;
    progress_calls++;
}

static void test_llada_all_types(void **state) {
    (void)state;
    for (int ti = 0; ti < 4; ti++) {
        char out[256];
        snprintf(out, sizeof out, "%s/llada_%d.gguf", test_dir, ti);
        sd_convert_opts o = {k_names[ti], NULL, "tiny-llada", on_progress, NULL};
        sd_error err;
        progress_calls = 0;
        progress_last = 0;
        int32_t rc = sd_convert_hf(DATA "hf_llada_tiny", out, &o, &err);
        if (rc) fail_msg("convert: %s", err.msg);
        assert_int_equal(progress_calls, 21);
        assert_true(progress_last == progress_total && progress_total > 0);
        sd_gguf *g = NULL;
        if (sd_gguf_open(out, 0, &g, &err)) fail_msg("%s", err.msg);
        expect_str(g, "general.architecture", "llada");
        expect_str(g, "general.name", "tiny-llada");
        assert_int_equal(get_u(g, "general.file_type"), k_file_types[ti]);
        assert_int_equal(get_u(g, "llada.block_count"), 2);
        assert_int_equal(get_u(g, "llada.context_length"), 128);
        assert_int_equal(get_u(g, "llada.embedding_length"), 32);
        assert_int_equal(get_u(g, "llada.feed_forward_length"), 48);
        assert_int_equal(get_u(g, "llada.attention.head_count"), 4);
        assert_int_equal(get_u(g, "llada.attention.head_count_kv"), 2);
        assert_int_equal(get_u(g, "llada.vocab_size"), 64);
        assert_int_equal(get_u(g, "llada.rope.dimension_count"), 8);
        assert_true(get_f(g, "llada.rope.freq_base") == 500000.0);
        assert_true((float)get_f(g, "llada.attention.layer_norm_rms_epsilon") == 1e-5f);
        int b = -1;
        assert_int_equal(sd_gguf_get_bool(g, "diffusion.shift_logits", &b, &err), 0);
        assert_int_equal(b, 0);
        assert_int_equal(sd_gguf_get_bool(g, "tokenizer.ggml.add_bos_token", &b, &err), 0);
        assert_int_equal(b, 1);
        expect_str(g, "tokenizer.ggml.pre", "default");
        assert_int_equal(get_u(g, "tokenizer.ggml.bos_token_id"), 60);
        assert_int_equal(get_u(g, "tokenizer.ggml.eos_token_id"), 61);
        assert_int_equal(get_u(g, "tokenizer.ggml.mask_token_id"), 62);
        /* Vocabulary, added tokens and [a, b] merges all from tokenizer.json. */
        expect_tok(g, 0, "!", 1);
        expect_tok(g, 61, "<|endoftext|>", 3);
        expect_tok(g, 62, "<|mdm_mask|>", 3);
        expect_tok(g, 63, "[PAD63]", 5);
        uint64_t n;
        assert_int_equal(sd_gguf_get_arr(g, "tokenizer.ggml.merges", NULL, &n, &err), 0);
        assert_int_equal(n, 9);
        sd_gguf_str s;
        assert_int_equal(sd_gguf_arr_str(g, "tokenizer.ggml.merges", 5, &s), 0);
        assert_true(str_eq(s, "\xc4\xa0t he"));
        check_tensors(g, DATA "hf_llada_tiny_expected.safetensors", k_types[ti], 0, 21);
        sd_gguf_close(g);
        unlink(out);
    }
}

/* One parser: the tokenizer of the converted file and the one the loader
 * builds from the folder agree on every token's type and the special ids,
 * and tokenize text alike; and the public entry point writes that file. */
static void test_same_tokenizer_as_the_folder(void **state) {
    (void)state;
    char out[256];
    snprintf(out, sizeof out, "%s/dream_public.gguf", test_dir);
    assert_int_equal(smdiff_convert_hf(DATA "hf_dream_tiny", out, "q4_2", NULL, NULL, NULL, NULL), SMDIFF_E_INVAL);
    assert_non_null(strstr(smdiff_last_error(), "q4_2"));
    assert_int_equal(smdiff_convert_hf(NULL, out, NULL, NULL, NULL, NULL, NULL), SMDIFF_E_INVAL);
    assert_int_equal(smdiff_convert_hf(DATA "hf_dream_tiny", out, NULL, NULL, NULL, NULL, NULL), SMDIFF_OK);
    sd_tokenizer *a = NULL, *b = NULL;
    sd_error err;
    if (sd_tokenizer_load(out, &a, &err)) fail_msg("%s", err.msg);
    /* the fixture's tokenizer_config names no tokenizer_class, so the split
     * rule the converter records for Dream is given to the loader */
    sd_hf_opts qwen2 = {"qwen2", 0};
    if (sd_tokenizer_from_hf(DATA "hf_dream_tiny", &qwen2, &b, NULL, &err)) fail_msg("%s", err.msg);
    assert_int_equal(sd_tokenizer_n_vocab(a), sd_tokenizer_n_vocab(b));
    for (int32_t i = 0; i < sd_tokenizer_n_vocab(a); i++)
        assert_int_equal(sd_tokenizer_token_type(a, i), sd_tokenizer_token_type(b, i));
    for (int k = 0; k < 4; k++) assert_int_equal(sd_tokenizer_special_id(a, k), sd_tokenizer_special_id(b, k));
    assert_string_equal(sd_tokenizer_pre_name(a), sd_tokenizer_pre_name(b));
    assert_int_equal(sd_tokenizer_normalizer(a), sd_tokenizer_normalizer(b));
    const char *text = "hello the world<|file_sep|> thereafter<|mask|>";
    int32_t ia[64], ib[64];
    size_t na = 0, nb = 0;
    assert_int_equal(sd_tokenizer_encode(a, text, strlen(text), SD_TOK_PARSE_SPECIAL, ia, 64, &na, &err), 0);
    assert_int_equal(sd_tokenizer_encode(b, text, strlen(text), SD_TOK_PARSE_SPECIAL, ib, 64, &nb, &err), 0);
    assert_int_equal(na, nb);
    assert_memory_equal(ia, ib, na * sizeof ia[0]);
    sd_tokenizer_free(a);
    sd_tokenizer_free(b);
    unlink(out);
}

static void test_llada_perm_rows(void **state) {
    (void)state;
    /* head_dim 8: GGUF rows 2i, 2i+1 <- HF rows i, i + 4 (hand-derived from
     * reshape(n_head, 2, hd/2).swapaxes(1, 2)). */
    const uint64_t want[16] = {0, 4, 1, 5, 2, 6, 3, 7, 8, 12, 9, 13, 10, 14, 11, 15};
    for (uint64_t r = 0; r < 16; r++) assert_int_equal(sd_convert_llada_perm_row(r, 8), want[r]);
    assert_int_equal(sd_convert_llada_perm_row(129, 128), 192); /* head 1, row 1 = i 0 of the second half */
}

static void test_real_dream_tokenizer(void **state) {
    (void)state;
    sd_gguf_writer *w = NULL;
    sd_error err;
    assert_int_equal(sd_gguf_writer_create(&w, &err), 0);
    int32_t rc = sd_convert_vocab(DREAM_TOK, 152064, "qwen2", -1, w, &err);
    if (rc) fail_msg("%s", err.msg);
    char out[256];
    snprintf(out, sizeof out, "%s/vocab.gguf", test_dir);
    assert_int_equal(sd_gguf_write(w, out, &err), 0);
    sd_gguf_writer_free(w);
    sd_gguf *g = NULL;
    if (sd_gguf_open(out, 1, &g, &err)) fail_msg("%s", err.msg);
    uint64_t n;
    assert_int_equal(sd_gguf_get_arr(g, "tokenizer.ggml.tokens", NULL, &n, &err), 0);
    assert_int_equal(n, 152064);
    expect_tok(g, 0, "!", 1);
    expect_tok(g, 151643, "<|endoftext|>", 3);
    expect_tok(g, 151664, "<|file_sep|>", 3);  /* looks special: CONTROL, as in llama.cpp */
    expect_tok(g, 151657, "<tool_call>", 4);    /* added, not special, plain: USER_DEFINED */
    expect_tok(g, 151666, "<|mask|>", 3);
    expect_tok(g, 151667, "[PAD151667]", 5);
    expect_tok(g, 152063, "[PAD152063]", 5);
    assert_int_equal(sd_gguf_get_arr(g, "tokenizer.ggml.merges", NULL, &n, &err), 0);
    assert_int_equal(n, 151387);  /* 151388 lines minus the #version header */
    assert_int_equal(get_u(g, "tokenizer.ggml.bos_token_id"), 151665);
    assert_int_equal(get_u(g, "tokenizer.ggml.eos_token_id"), 151643);
    assert_int_equal(get_u(g, "tokenizer.ggml.padding_token_id"), 151643);
    assert_int_equal(get_u(g, "tokenizer.ggml.mask_token_id"), 151666);
    /* Dream's tokenizer class normalises to NFC: the converted file records
     * it, and the tokenizer read back from the file applies it, so a
     * decomposed e + U+0301 gives the ids of the composed U+00E9. */
    expect_str(g, "smdiff.tokenizer.normalizer", "NFC");
    sd_tokenizer *t = NULL;
    if (sd_tokenizer_from_gguf(g, &t, &err)) fail_msg("%s", err.msg);
    assert_int_equal(sd_tokenizer_normalizer(t), SD_NORM_NFC);
    size_t n_nfc = 0, n_nfd = 0;
    int32_t *nfc = test_tokenize(t, "caf\xc3\xa9 au lait", 13, 0, &n_nfc);
    int32_t *nfd = test_tokenize(t, "cafe\xcc\x81 au lait", 14, 0, &n_nfd);
    assert_int_equal(n_nfc, n_nfd);
    assert_memory_equal(nfc, nfd, n_nfc * sizeof nfc[0]);
    free(nfc);
    free(nfd);
    sd_tokenizer_free(t);
    sd_gguf_close(g);
    unlink(out);
}

/* A scratch HF dir: the llada fixture's files linked in, config.json replaced. */
static void scratch_dir(const char *name, const char *config, char *dir, size_t size) {
    snprintf(dir, size, "%s/%s", test_dir, name);
    mkdir(dir, 0700);
    const char *files[] = {"model.safetensors", "tokenizer.json", "tokenizer_config.json"};
    char cwd[512], src[900], dst[700];
    assert_non_null(getcwd(cwd, sizeof cwd));
    for (int i = 0; i < 3; i++) {
        snprintf(src, sizeof src, "%s/" DATA "hf_llada_tiny/%s", cwd, files[i]);
        snprintf(dst, sizeof dst, "%s/%s", dir, files[i]);
        unlink(dst);
        assert_int_equal(symlink(src, dst), 0);
    }
    snprintf(dst, sizeof dst, "%s/config.json", dir);
    FILE *f = fopen(dst, "w");
    fputs(config, f);
    fclose(f);
}

static void test_refusals(void **state) {
    (void)state;
    char dir[300], out[400];
    sd_error err;
    sd_convert_opts o = {"f32", NULL, NULL, NULL, NULL};
    const char *base = "\"d_model\": 32, \"n_heads\": 4, \"n_kv_heads\": 2, \"mlp_hidden_size\": 48, \"vocab_size\": 64";
    char cfg[512];
    snprintf(cfg, sizeof cfg, "{\"architectures\": [\"GPT2LMHeadModel\"], \"n_layers\": 2, %s}", base);
    scratch_dir("a", cfg, dir, sizeof dir);
    snprintf(out, sizeof out, "%s/out.gguf", dir);
    assert_int_equal(sd_convert_hf(dir, out, &o, &err), SMDIFF_E_UNSUPPORTED);
    assert_non_null(strstr(err.msg, "GPT2LMHeadModel"));
    /* One layer more than the checkpoint has. */
    snprintf(cfg, sizeof cfg, "{\"architectures\": [\"LLaDAModelLM\"], \"n_layers\": 3, %s}", base);
    scratch_dir("b", cfg, dir, sizeof dir);
    assert_int_equal(sd_convert_hf(dir, out, &o, &err), SMDIFF_E_FORMAT);
    if (!strstr(err.msg, "lacks tensor")) fail_msg("%s", err.msg);
    assert_non_null(strstr(err.msg, "lacks tensor 'model.transformer.blocks.2.attn_norm.weight'"));
    /* One layer fewer: blocks.1 tensors are unknown. */
    snprintf(cfg, sizeof cfg, "{\"architectures\": [\"LLaDAModelLM\"], \"n_layers\": 1, %s}", base);
    scratch_dir("c", cfg, dir, sizeof dir);
    assert_int_equal(sd_convert_hf(dir, out, &o, &err), SMDIFF_E_FORMAT);
    assert_non_null(strstr(err.msg, "model.transformer.blocks.1."));
    /* Wrong FFN width: mis-shaped tensor. */
    snprintf(cfg, sizeof cfg,
             "{\"architectures\": [\"LLaDAModelLM\"], \"n_layers\": 2, \"d_model\": 32, \"n_heads\": 4, "
             "\"n_kv_heads\": 2, \"mlp_hidden_size\": 64, \"vocab_size\": 64}");
    scratch_dir("d", cfg, dir, sizeof dir);
    assert_int_equal(sd_convert_hf(dir, out, &o, &err), SMDIFF_E_FORMAT);
    assert_non_null(strstr(err.msg, "ff_proj.weight' is not of the shape [64, 32]"));
    /* Missing hyperparameter. */
    snprintf(cfg, sizeof cfg, "{\"architectures\": [\"LLaDAModelLM\"], \"n_layers\": 2, \"d_model\": 32}");
    scratch_dir("e", cfg, dir, sizeof dir);
    assert_int_equal(sd_convert_hf(dir, out, &o, &err), SMDIFF_E_FORMAT);
    assert_non_null(strstr(err.msg, "hyperparameters"));
    /* Absurd sizes are refused before anything is allocated for them. */
    snprintf(cfg, sizeof cfg, "{\"architectures\": [\"LLaDAModelLM\"], \"n_layers\": 2, \"d_model\": 32, "
                              "\"n_heads\": 4, \"n_kv_heads\": 2, \"mlp_hidden_size\": 48, \"vocab_size\": 9000000000}");
    scratch_dir("g", cfg, dir, sizeof dir);
    assert_int_equal(sd_convert_hf(dir, out, &o, &err), SMDIFF_E_FORMAT);
    assert_non_null(strstr(err.msg, "vocab 9000000000"));
    /* Token id beyond the vocabulary size. */
    snprintf(cfg, sizeof cfg, "{\"architectures\": [\"LLaDAModelLM\"], \"n_layers\": 2, \"d_model\": 32, "
                              "\"n_heads\": 4, \"n_kv_heads\": 2, \"mlp_hidden_size\": 48, \"vocab_size\": 50}");
    scratch_dir("f", cfg, dir, sizeof dir);
    assert_int_equal(sd_convert_hf(dir, out, &o, &err), SMDIFF_E_FORMAT);
    assert_int_equal(access(out, F_OK), -1);  /* nothing written on failure */
    /* Values the loader would refuse are refused before writing (each
     * config otherwise matches hf_llada_tiny's tensors). */
    {
        struct { const char *extra, *says; } bad[] = {
            {"\"rope_theta\": 0", "RoPE base"},
            {"\"rope_theta\": -10000", "RoPE base"},
            {"\"rope_theta\": 1e40", "RoPE base"},
            {"\"rms_norm_eps\": 0", "norm epsilon"},
            {"\"rms_norm_eps\": 1e-60", "norm epsilon"}, /* 0 once a float32 */
            {"\"mask_token_id\": 64", "mask token id 64"},
            {"\"max_sequence_length\": 20000000", "ctx 20000000"},
        };
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
            char cfg2[600], full[800];
            snprintf(cfg2, sizeof cfg2, "{\"architectures\": [\"LLaDAModelLM\"], \"n_layers\": 2, %s, %s}", base,
                     bad[i].extra);
            snprintf(full, sizeof full, "h%zu", i);
            scratch_dir(full, cfg2, dir, sizeof dir);
            snprintf(out, sizeof out, "%s/out.gguf", dir);
            assert_int_equal(sd_convert_hf(dir, out, &o, &err), SMDIFF_E_FORMAT);
            if (!strstr(err.msg, bad[i].says)) fail_msg("%s: %s", bad[i].extra, err.msg);
            assert_int_equal(access(out, F_OK), -1);
        }
    }
    o.type_name = "q4_2"; /* a type ggml removed */
    assert_int_equal(sd_convert_hf(DATA "hf_llada_tiny", out, &o, &err), SMDIFF_E_INVAL);
    assert_non_null(strstr(err.msg, "q4_k_m"));  /* the message lists the names */
    o.type_name = "f32";
    assert_int_equal(sd_convert_hf("/nonexistent_smdiff", out, &o, &err), SMDIFF_E_IO);
}


/* The CLI end to end: `smdiff convert` from the build being tested (run.sh
 * exports BUILD), exit codes and the file it writes. */
static void test_cli(void **state) {
    (void)state;
    const char *cli = test_cli_path();
    char cmd[1024], out[256];
    if (!cli) SKIP_BECAUSE("the smdiff CLI is not built (BUILD=%s); run through make check", getenv("BUILD"));
    snprintf(out, sizeof out, "%s/cli.gguf", test_dir);
    snprintf(cmd, sizeof cmd, "%s convert " DATA "hf_llada_tiny %s --type q8_0 --name cli-test 2>/dev/null", cli, out);
    assert_int_equal(system(cmd), 0);
    sd_gguf *g = NULL;
    sd_error err;
    if (sd_gguf_open(out, 1, &g, &err)) fail_msg("%s", err.msg);
    expect_str(g, "general.name", "cli-test");
    assert_int_equal(get_u(g, "general.file_type"), 7);
    assert_int_equal(sd_gguf_find_tensor(g, "blk.0.attn_q.weight")->type, SD_GGML_Q8_0);
    sd_gguf_close(g);
    unlink(out);
    /* the quantiser's names and recipes: llada's d = 32 rows fall back from
     * Q4_K to Q5_0 and the head from Q6_K to Q8_0; ffn_down (48 columns)
     * to F16 */
    snprintf(cmd, sizeof cmd, "%s convert " DATA "hf_llada_tiny %s --type q4_k_m 2>/dev/null", cli, out);
    assert_int_equal(system(cmd), 0);
    if (sd_gguf_open(out, 1, &g, &err)) fail_msg("%s", err.msg);
    assert_int_equal(get_u(g, "general.file_type"), 15);
    assert_int_equal(sd_gguf_find_tensor(g, "blk.0.attn_q.weight")->type, SD_GGML_Q5_0);
    assert_int_equal(sd_gguf_find_tensor(g, "output.weight")->type, SD_GGML_Q8_0);
    assert_int_equal(sd_gguf_find_tensor(g, "blk.1.ffn_down.weight")->type, SD_GGML_F16);
    sd_gguf_close(g);
    unlink(out);
    snprintf(cmd, sizeof cmd, "%s convert " DATA "hf_llada_tiny %s --type q4_2 2>/dev/null", cli, out);
    assert_int_equal(WEXITSTATUS(system(cmd)), 2);  /* usage error */
    snprintf(cmd, sizeof cmd, "%s convert /nonexistent_smdiff %s 2>/dev/null", cli, out);
    assert_int_equal(WEXITSTATUS(system(cmd)), 1);  /* conversion error */
    assert_int_equal(access(out, F_OK), -1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_llada_perm_rows),
        cmocka_unit_test(test_dream_all_types),
        cmocka_unit_test(test_llada_all_types),
        cmocka_unit_test(test_real_dream_tokenizer),
        cmocka_unit_test(test_same_tokenizer_as_the_folder),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_cli),
    };
    return cmocka_run_group_tests(tests, test_dir_setup, test_dir_teardown);
}
