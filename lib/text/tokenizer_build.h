/* tokenizer_build.h -- building a tokenizer: sd_tok_builder, a
 * vocabulary under construction (token texts by id, borrowed; types,
 * merges, special ids, the pre-tokenizer and normaliser) that every loader
 * (Hugging Face files, GGUF metadata) fills and that ends in
 * sd_tok_builder_create -> sd_tokenizer_create. What trainers need from
 * the encoder (sd_tokenizer_pretokenize, sd_byte_level_char) is in
 * tokenizer.h.
 */
#ifndef SD_TEXT_TOKENIZER_BUILD_H
#define SD_TEXT_TOKENIZER_BUILD_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "tokenizer.h"

/* ------------------------------------------------------------- builder */

typedef struct sd_tok_builder {
    int32_t n;              /* vocabulary size (max id + 1) */
    const char **tokens;    /* [n] borrowed texts (byte-level for NORMAL tokens) */
    size_t *lens;           /* [n] */
    int32_t *types;         /* [n] SD_TOKEN_* */
    const char **merges;    /* [n_merges] "LEFT RIGHT", rank = index; borrowed or
                               into merges_buf; the caller allocates the arrays
                               (sd_malloc), the builder frees them */
    size_t *merge_lens;     /* [n_merges] */
    int64_t n_merges;
    char *merges_buf;       /* optional text the merges point into (sd_malloc; freed) */
    char *pad_names;        /* the "[PAD<id>]" texts sd_tok_builder_alloc gives (freed) */
    int32_t special[4];     /* bos eos pad mask, -1 if none */
    int32_t add_bos;
    int32_t ignore_merges;
    int32_t normalizer;     /* SD_NORM_* (text/utf8.h) */
    const char *pre;        /* pre-tokenizer name, or NULL with pre_regex */
    const char *pre_regex;
} sd_tok_builder;

/* An empty builder: no tokens, no merges, special ids -1. */
void sd_tok_builder_init(sd_tok_builder *b);
/* Token arrays for ids [0, n); every id starts as an UNUSED token named
 * "[PAD<id>]", as llama.cpp's converter names the rows no file names, so
 * a folder and the GGUF made from it hold the same list. SMDIFF_E_NOMEM. */
int32_t sd_tok_builder_alloc(sd_tok_builder *b, int32_t n, sd_error *err);
/* Set token id (0 <= id < n); text is borrowed until create returns. */
void sd_tok_builder_set(sd_tok_builder *b, int64_t id, const char *text, size_t len, int32_t type);
/* The highest id whose text is s (added tokens sit at the end), or -1. */
int32_t sd_tok_builder_find(const sd_tok_builder *b, const char *s);
/* sd_tokenizer_create on the builder's arrays. */
int32_t sd_tok_builder_create(const sd_tok_builder *b, sd_tokenizer **out, sd_error *err);
/* Free the arrays the builder owns (never the borrowed texts). */
void sd_tok_builder_free(sd_tok_builder *b);

#endif
