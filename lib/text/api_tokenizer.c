/* api_tokenizer.c -- the public tokenizer-training entry point: argument
 * checks, training (bpe_train.c), the GGUF file. */
#include "bpe_train.h"

SMDIFF_API int32_t smdiff_tokenizer_train(const char *const *paths, size_t n_paths, size_t vocab_size,
                                          const char *pre_tokenizer, const char *const *specials,
                                          size_t n_specials, const char *out_path,
                                          smdiff_tokenizer_train_fn progress, void *user_data) {
    if (!out_path || !*out_path) return sd_fail(NULL, SMDIFF_E_INVAL, "smdiff_tokenizer_train: no output path");
    sd_bpe_params p = {vocab_size, pre_tokenizer, specials, n_specials, progress, user_data};
    sd_tokenizer *t = NULL;
    int32_t rc = sd_bpe_train(paths, n_paths, &p, &t, NULL);
    if (!rc) rc = sd_tokenizer_save_file(t, out_path, NULL);
    sd_tokenizer_free(t);
    return rc;
}
