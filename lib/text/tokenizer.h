/* tokenizer.h -- byte-level BPE exactly as GPT-2, Qwen2/Dream and LLaDA
 * tokenize, built from plain arrays so that every loader (GGUF metadata,
 * Hugging Face files) ends in the same constructor.
 *
 * Pipeline of sd_tokenizer_encode:
 *   text --(special/added tokens as whole tokens)--> segments
 *        --(the declared Unicode normaliser, utf8proc; e.g. NFC)--> segments
 *        --(pre-tokenizer regexes, PCRE2, UTF + UCP)--> pre-tokens
 *        --(bytes -> byte-level symbols, merges by rank)--> ids
 * Decoding maps each id to its bytes (the byte-level alphabet undone).
 *
 * A tokenizer is immutable after sd_tokenizer_create and may be used from
 * any number of threads at once: every call keeps its scratch state (PCRE2
 * match data, merge heap, pre-token cache) private.
 *
 * Files: tokenizer_build.c (construction; tokenizer_build.h has the
 * loaders' builder), tokenizer_encode.c (pre-tokenize, BPE,
 * decode), tokenizer_chat.c (chat template), tokenizer_hf.c and
 * tokenizer_gguf.c (loaders, GGUF writing), tokenizer_load.c (pick a
 * loader by path), utf8.c (UTF-8 and normalisation), bpe_train.c
 * (learning a vocabulary).
 */
#ifndef SD_TEXT_TOKENIZER_H
#define SD_TEXT_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "text/utf8.h" /* SD_NORM_*, sd_utf8_complete_prefix */

/* Token types (llama.cpp / GGUF numbering, tokenizer.ggml.token_type). */
enum {
    SD_TOKEN_NORMAL = 1,        /* byte-level BPE token */
    SD_TOKEN_UNKNOWN = 2,
    SD_TOKEN_CONTROL = 3,       /* special token: matched only with PARSE_SPECIAL,
                                   rendered only with DETOKENIZE_SPECIAL */
    SD_TOKEN_USER_DEFINED = 4,  /* added, non-special token: always matched as a
                                   whole token, always rendered; text stored raw */
    SD_TOKEN_UNUSED = 5,        /* padding rows ([PADn]); never produced */
    SD_TOKEN_BYTE = 6,
};

/* Flags of sd_tokenizer_encode / _decode (same values as the public API). */
#define SD_TOK_PARSE_SPECIAL 1
#define SD_TOK_ADD_BOS 2
#define SD_DETOK_SPECIAL 1

/* What a loader hands to sd_tokenizer_create. Nothing is kept: the arrays
 * may be freed once create returns. */
typedef struct sd_tokenizer_spec {
    int32_t n_tokens;
    const char *const *tokens;   /* [n_tokens] token text: byte-level alphabet for
                                    NORMAL tokens, raw UTF-8 for added ones */
    const size_t *token_lens;    /* [n_tokens] or NULL: lengths (else strlen) */
    const int32_t *token_types;  /* [n_tokens] SD_TOKEN_* or NULL: all NORMAL */
    int64_t n_merges;
    const char *const *merges;   /* [n_merges] "LEFT RIGHT", rank = index */
    const size_t *merge_lens;    /* [n_merges] or NULL */
    const char *pre;             /* pre-tokenizer name (tokenizer.ggml.pre), or NULL
                                    when pre_regex is given */
    const char *pre_regex;       /* optional: one explicit split regex (tokenizer.json) */
    int32_t normalizer;          /* SD_NORM_* (text/utf8.h) applied to the text between
                                    added tokens before pre-tokenizing; 0 = none */
    int32_t bos_id, eos_id, pad_id, mask_id;  /* -1 if none */
    int32_t add_bos;             /* the model wants BOS prepended */
    int32_t ignore_merges;       /* a pre-token that is itself a token is not merged */
} sd_tokenizer_spec;

typedef struct sd_tokenizer sd_tokenizer;

/* Build a tokenizer: hash tables for vocabulary and merges, decoded pieces,
 * compiled (JIT where available) pre-tokenizer. SMDIFF_E_FORMAT for
 * malformed input (duplicate or empty tokens, merges naming unknown tokens
 * are skipped with a log line), SMDIFF_E_UNSUPPORTED for an unknown
 * pre-tokenizer name. */
int32_t sd_tokenizer_create(const sd_tokenizer_spec *spec, sd_tokenizer **out, sd_error *err);
void sd_tokenizer_free(sd_tokenizer *t); /* accepts NULL */

/* Whether a pre-tokenizer name is known ("gpt2", "qwen2", "bailingmoe", ...). */
int sd_tokenizer_pre_known(const char *name);

/* ---------------------------------------------------------------- loaders */

/* Hugging Face files. dir may hold tokenizer.json, or vocab.json + merges.txt
 * (+ added_tokens.json, tokenizer_config.json, special_tokens_map.json), or
 * GPT-2's encoder.json + vocab.bpe. tokenizer.json wins when present.
 * Special tokens are the texts tokenizer_config.json (else
 * special_tokens_map.json, else for GPT-2's classes <|endoftext|> as bos,
 * eos and unk) names, each made a CONTROL token as Hugging Face makes it a
 * special added token; else config.json's <name>_token_id, as llama.cpp's
 * converter finds them. Ids no file names become UNUSED rows "[PAD<id>]".
 * The normaliser is tokenizer.json's, or NFC for Qwen2's classes. */
int32_t sd_tokenizer_from_hf_dir(const char *dir, sd_tokenizer **out, sd_error *err);

/* The same with options, for a converter that writes the vocabulary into a
 * GGUF file: opts (may be NULL) chooses the split rule instead of the one
 * the files declare (pre, a name sd_tokenizer_pre_known accepts) and pads
 * the vocabulary with UNUSED rows up to n_vocab ids (the model's embedding
 * rows); extras (may be NULL) receives what the files say beyond what
 * tokenizing needs. Release extras with sd_hf_extras_free. */
typedef struct sd_hf_opts {
    const char *pre;       /* NULL: from the files */
    int32_t n_vocab;       /* 0: the largest id named + 1 */
} sd_hf_opts;
typedef struct sd_hf_extras {
    int32_t unk_id, sep_id, cls_id;  /* -1 if none */
    int32_t add_eos;                 /* tokenizer_config.json's add_eos_token; -1 if absent */
    char *chat_template;             /* its chat_template, or NULL */
} sd_hf_extras;
int32_t sd_tokenizer_from_hf(const char *dir, const sd_hf_opts *opts, sd_tokenizer **out,
                             sd_hf_extras *extras, sd_error *err);
void sd_hf_extras_free(sd_hf_extras *extras);
/* One tokenizer.json file (its directory is searched for tokenizer_config.json). */
int32_t sd_tokenizer_from_hf_json(const char *path, sd_tokenizer **out, sd_error *err);
/* vocab.json + merges.txt; config_dir (may be NULL) is searched for
 * added_tokens.json / tokenizer_config.json / special_tokens_map.json.
 * pre (may be NULL) overrides the pre-tokenizer guessed from the config. */
int32_t sd_tokenizer_from_hf_files(const char *vocab_json, const char *merges_txt,
                                   const char *config_dir, const char *pre,
                                   sd_tokenizer **out, sd_error *err);

/* GGUF metadata (tokenizer.ggml.*, and smdiff.tokenizer.normalizer when a
 * normaliser applies); the file may be closed afterwards.
 * SMDIFF_E_NOT_FOUND if the file has no tokenizer, SMDIFF_E_UNSUPPORTED
 * for a tokenizer.ggml.model other than "gpt2" or an unknown normaliser. */
struct sd_gguf;
int32_t sd_tokenizer_from_gguf(const struct sd_gguf *g, sd_tokenizer **out, sd_error *err);

/* Write the tokenizer.ggml.* keys (model "gpt2", pre, tokens, token_type,
 * merges in rank order, special ids, add_bos_token), and
 * smdiff.tokenizer.normalizer ("NFC", ...) when a normaliser applies, that
 * sd_tokenizer_from_gguf reads back, for converters and trainers that write
 * GGUF files. SMDIFF_E_UNSUPPORTED for a custom (unnamed) split regex. */
struct sd_gguf_writer;
int32_t sd_tokenizer_to_gguf(const sd_tokenizer *t, struct sd_gguf_writer *w, sd_error *err);

/* Any of the above, chosen by what path is: a directory (Hugging Face
 * files), a GGUF file (by its magic), or a .json file (tokenizer.json). */
int32_t sd_tokenizer_load(const char *path, sd_tokenizer **out, sd_error *err);

/* ------------------------------------------------------------------- use */

/* Text to ids. *n_out receives the number of ids; if it exceeds cap,
 * SMDIFF_E_BUFFER (ids untouched, may be NULL when cap is 0). */
int32_t sd_tokenizer_encode(const sd_tokenizer *t, const char *text, size_t n_bytes,
                            int32_t flags, int32_t *ids, size_t cap, size_t *n_out,
                            sd_error *err);

/* Ids to bytes (not NUL-terminated). *n_out receives the bytes needed;
 * SMDIFF_E_BUFFER if cap is smaller, SMDIFF_E_RANGE for an id outside
 * [0, n_vocab). Control tokens are skipped unless SD_DETOK_SPECIAL. */
int32_t sd_tokenizer_decode(const sd_tokenizer *t, const int32_t *ids, size_t n_ids,
                            int32_t flags, char *out, size_t cap, size_t *n_out,
                            sd_error *err);

/* The bytes of one token (control tokens as their text). Same contract as
 * decode for one id. */
int32_t sd_tokenizer_piece(const sd_tokenizer *t, int32_t id, char *out, size_t cap,
                           size_t *n_out, sd_error *err);

/* Render a conversation with the tokenizer's chat template (ChatML as in
 * Dream-Instruct's tokenizer_config.json; the default system message is
 * inserted when the first message is not a system one). Output is
 * NUL-terminated; *needed counts the NUL. SMDIFF_E_UNSUPPORTED if the
 * vocabulary has no <|im_start|>/<|im_end|>. */
int32_t sd_tokenizer_chat(const sd_tokenizer *t, int32_t n_messages,
                          const char *const *roles, const char *const *contents,
                          int32_t add_generation_prompt, char *out, size_t cap,
                          size_t *needed, sd_error *err);

int32_t sd_tokenizer_n_vocab(const sd_tokenizer *t);
int32_t sd_tokenizer_token_type(const sd_tokenizer *t, int32_t id); /* 0 if out of range */
/* Special ids: which = 0 bos, 1 eos, 2 pad, 3 mask; -1 if none. */
int32_t sd_tokenizer_special_id(const sd_tokenizer *t, int which);
const char *sd_tokenizer_pre_name(const sd_tokenizer *t);
/* The normaliser applied before pre-tokenizing (SD_NORM_*). */
int32_t sd_tokenizer_normalizer(const sd_tokenizer *t);
/* Id of a token given by its stored text (byte-level form), -1 if absent. */
int32_t sd_tokenizer_find(const sd_tokenizer *t, const char *text, size_t len);

/* ------------------------------------------------------ for trainers */

/* Cut text[0..n) as sd_tokenizer_encode(flags) does before BPE and call fn
 * for each piece, in order: added tokens whole (user-defined ones always,
 * control ones with SD_TOK_PARSE_SPECIAL; a tokenizer without added tokens
 * has none), the text between them normalised with the tokenizer's
 * normaliser and split by its pre-tokenizer regexes. piece points into
 * text or a normalised copy, valid during the call. A nonzero return from
 * fn stops the split and is returned. Returns 0, fn's value, or -1 after
 * recording SMDIFF_E_INVAL, SMDIFF_E_NOMEM or a regex failure in err. */
typedef int (*sd_pretoken_fn)(void *ud, const char *piece, size_t len);
int sd_tokenizer_pretokenize(const sd_tokenizer *t, const char *text, size_t n, int32_t flags,
                             sd_pretoken_fn fn, void *ud, sd_error *err);

/* The byte-level alphabet's character for byte b as UTF-8 in out (1 or 2
 * bytes); returns its length. GPT-2's bytes_to_unicode: printable Latin-1
 * bytes stand for themselves, the other 68 bytes for U+0100..U+0143 in byte
 * order, so every byte is a visible, non-space character. */
size_t sd_byte_level_char(uint8_t b, char out[4]);

#endif
