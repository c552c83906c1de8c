/* test_tokenizer_save.c -- smdiff_model_save_tokenizer: a tokenizer built
 * from Hugging Face files (GPT-2's plus the <|mask|> token the bundled model
 * uses) survives a round trip through a vocabulary-only GGUF file. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "smdiff/smdiff.h"
#include "testutil.h"

static int copy_file(const char *from, const char *to) {
    FILE *a = fopen(from, "rb"), *b = a ? fopen(to, "wb") : NULL;
    if (!a || !b) {
        if (a) fclose(a);
        return -1;
    }
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, a)) > 0) fwrite(buf, 1, n, b);
    fclose(a);
    return fclose(b);
}

static void tokenize(smdiff_model *m, const char *text, int32_t *ids, size_t cap, size_t *n) {
    assert_int_equal(smdiff_model_tokenize(m, text, strlen(text), SMDIFF_TOKENIZE_PARSE_SPECIAL, ids, cap, n),
                     SMDIFF_OK);
}

static void test_roundtrip_gpt2_with_mask(void **state) {
    (void)state;
    char dir[] = "/tmp/smdiff_tok_save_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[512], out[600];
    snprintf(path, sizeof path, "%s/encoder.json", dir);
    assert_int_equal(copy_file(test_data_path("tokenizers/gpt2/encoder.json"), path), 0);
    snprintf(path, sizeof path, "%s/vocab.bpe", dir);
    assert_int_equal(copy_file(test_data_path("tokenizers/gpt2/vocab.bpe"), path), 0);
    snprintf(path, sizeof path, "%s/added_tokens.json", dir);
    assert_int_equal(copy_file("models/gpt2-mask/added_tokens.json", path), 0);
    snprintf(path, sizeof path, "%s/special_tokens_map.json", dir);
    assert_int_equal(copy_file("models/gpt2-mask/special_tokens_map.json", path), 0);

    smdiff_model *hf = NULL, *back = NULL, *none = NULL;
    assert_int_equal(smdiff_model_create(&hf), SMDIFF_OK);
    assert_int_equal(smdiff_model_load_tokenizer(hf, dir), SMDIFF_OK);
    snprintf(out, sizeof out, "%s/tok.gguf", dir);
    assert_int_equal(smdiff_model_save_tokenizer(hf, NULL), SMDIFF_E_INVAL);
    assert_int_equal(smdiff_model_save_tokenizer(hf, "/nonexistent-dir/x/tok.gguf"), SMDIFF_E_IO);
    assert_int_equal(smdiff_model_save_tokenizer(hf, out), SMDIFF_OK);

    assert_int_equal(smdiff_model_create(&back), SMDIFF_OK);
    assert_int_equal(smdiff_model_load_tokenizer(back, out), SMDIFF_OK);

    const char *text = "It was the best of times,<|mask|> it was the worst of times.\n\"Oh!\" said Émile 123.";
    int32_t a[128], b[128];
    size_t na = 0, nb = 0;
    tokenize(hf, text, a, 128, &na);
    tokenize(back, text, b, 128, &nb);
    assert_int_equal(na, nb);
    assert_memory_equal(a, b, na * sizeof(int32_t));
    int found_mask = 0;
    for (size_t i = 0; i < na; i++) found_mask |= a[i] == 50257;
    assert_true(found_mask);  /* the added token is matched whole, with its id */
    char piece[32];
    size_t n = 0;
    assert_int_equal(smdiff_model_token_piece(back, 50257, piece, sizeof piece, &n), SMDIFF_OK);
    assert_int_equal(n, 8);
    assert_memory_equal(piece, "<|mask|>", 8);
    assert_int_equal(smdiff_model_token_piece(back, 50258, piece, sizeof piece, &n), SMDIFF_E_RANGE);

    /* No tokenizer at all. */
    assert_int_equal(smdiff_model_create(&none), SMDIFF_OK);
    assert_int_equal(smdiff_model_save_tokenizer(none, out), SMDIFF_E_STATE);
    assert_int_equal(smdiff_model_save_tokenizer(NULL, out), SMDIFF_E_INVAL);
    smdiff_model_free(none);
    smdiff_model_free(back);
    smdiff_model_free(hf);
    const char *names[] = {"encoder.json", "vocab.bpe", "added_tokens.json", "special_tokens_map.json", "tok.gguf"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        unlink(path);
    }
    rmdir(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_gpt2_with_mask),
    };
    return cmocka_run_group_tests_name("tokenizer_save", tests, NULL, NULL);
}
