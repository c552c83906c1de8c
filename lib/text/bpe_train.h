/* bpe_train.h -- learn a byte-level BPE vocabulary from a corpus.
 *
 * The trainer builds the same kind of tokenizer the loaders build (GPT-2's
 * byte-level alphabet, a named pre-tokenizer, merges in rank order) and
 * hands it to sd_tokenizer_create, so what it learns is encoded by exactly
 * the code that encodes every other vocabulary. docs/TOKENIZER.md
 * ("Training a vocabulary") states the algorithm and the tie rule.
 */
#ifndef SD_TEXT_BPE_TRAIN_H
#define SD_TEXT_BPE_TRAIN_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "tokenizer.h"

/* Called after every document read and every merge; a nonzero return stops
 * training with SMDIFF_E_ABORTED. */
typedef int32_t (*sd_bpe_progress_fn)(const smdiff_tokenizer_train_progress *p, void *ud);

typedef struct sd_bpe_params {
    size_t vocab_size;             /* 256 bytes + learned tokens + specials */
    const char *pre;               /* pre-tokenizer name (sd_tokenizer_pre_known) */
    const char *const *specials;   /* [n_specials] control tokens, appended last */
    size_t n_specials;
    sd_bpe_progress_fn progress;   /* may be NULL */
    void *progress_ud;
} sd_bpe_params;

/* Train on every document under paths (sd_walk_documents' order) and build
 * the tokenizer. Token ids: 0..255 the bytes in byte order, then learned
 * tokens in the order of their first merge, then the specials in the
 * given order. A special named <|endoftext|>, </s> or <|eos|> becomes the
 * EOS id; <|mask|>, <mask> or [MASK] the mask id; <s>, <|bos|> or
 * <|startoftext|> the BOS id (not added by encode); <pad>, <|pad|> or
 * [PAD] the padding id.
 * SMDIFF_E_INVAL for bad parameters, an empty corpus, or a corpus with too
 * few distinct pairs to reach vocab_size (the message says how far it got);
 * SMDIFF_E_UNSUPPORTED for an unknown pre-tokenizer; SMDIFF_E_IO from the
 * walk; SMDIFF_E_NOMEM; SMDIFF_E_ABORTED from the progress callback. */
int32_t sd_bpe_train(const char *const *paths, size_t n_paths, const sd_bpe_params *p,
                     sd_tokenizer **out, sd_error *err);

/* Write t as a vocabulary-only GGUF file (general.architecture
 * "tokenizer" and the tokenizer.ggml.* keys), atomically. */
int32_t sd_tokenizer_save_file(const sd_tokenizer *t, const char *path, sd_error *err);

#endif
