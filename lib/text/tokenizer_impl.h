/* tokenizer_impl.h -- the layout of sd_tokenizer, shared by the files of
 * lib/text/ that build it (tokenizer_build.c), use it (tokenizer_encode.c,
 * tokenizer_chat.c) and write it (tokenizer_gguf.c). Nothing outside
 * lib/text/tokenizer_*.c includes this; everyone else uses tokenizer.h.
 *
 * Data layout (all built once in sd_tokenizer_create, read-only after):
 *   text blob   token strings as stored (byte-level alphabet for NORMAL)
 *   piece blob  the bytes each token stands for (what decode emits)
 *   vocab hash  open addressing, text -> id
 *   merge hash  open addressing, (left id, right id) -> (rank, merged id)
 *   specials    added tokens sorted by (first byte, length desc), so the
 *               first hit in a first-byte bucket is the longest match
 *   regexes     1..4 PCRE2 patterns applied in sequence; a later one splits
 *               the pieces of the earlier one (llama.cpp's semantics); text
 *               no pattern matches (only invalid UTF-8 can be such text) is
 *               kept as its own pre-token, so every byte is encoded.
 */
#ifndef SD_TEXT_TOKENIZER_IMPL_H
#define SD_TEXT_TOKENIZER_IMPL_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "tokenizer.h"

#define SD_TOK_MAX_REGEX 4

typedef struct sd_merge_ent {
    uint64_t key;   /* (left << 32 | right) + 1; 0 = empty slot */
    int32_t rank;
    int32_t result;
} sd_merge_ent;

/* A vocabulary slot keeps 32 bits of the hash so that probing rarely has
 * to touch the token text (two more cache misses). */
typedef struct sd_vocab_slot {
    int32_t id;
    uint32_t tag;
} sd_vocab_slot;

typedef struct sd_special_ent {
    int32_t id;
    uint32_t len;
    const char *text; /* into text blob */
} sd_special_ent;

struct sd_tokenizer {
    int32_t n_vocab;
    char *text_blob;
    uint64_t *text_off;   /* [n_vocab + 1] */
    char *piece_blob;
    uint64_t *piece_off;  /* [n_vocab + 1] */
    uint8_t *types;       /* [n_vocab] */
    sd_vocab_slot *vocab_tab; /* id -1 = empty */
    uint64_t vocab_mask;
    sd_merge_ent *merge_tab;
    uint64_t merge_mask;
    sd_merge_ent *byte_pairs; /* [256 * 256]: the merge of byte a then byte b, key 0 if none */
    int64_t n_merges_used;
    int32_t byte_id[256]; /* token of each single byte, -1 if the vocab lacks it */
    sd_special_ent *specials;
    int32_t n_specials;
    int32_t bucket_lo[256], bucket_hi[256];
    pcre2_general_context *gctx;
    pcre2_code *re[SD_TOK_MAX_REGEX];
    int n_re;
    int jit;
    char pre[64];
    int32_t normalizer;   /* SD_NORM_* */
    int32_t bos, eos, pad, mask;
    int32_t add_bos, ignore_merges;
    int32_t im_start, im_end;
};

/* 64-bit hash of n bytes (the vocabulary's and the encoder's cache's). */
static inline uint64_t sd_tok_hash_bytes(const void *p, size_t n) {
    const uint8_t *s = p;
    uint64_t h = 0x9E3779B97F4A7C15ull ^ (n * 0xff51afd7ed558ccdull);
    while (n >= 8) {
        uint64_t v;
        memcpy(&v, s, 8);
        h = (h ^ v) * 0xbf58476d1ce4e5b9ull;
        h ^= h >> 31;
        s += 8;
        n -= 8;
    }
    uint64_t v = 0;
    memcpy(&v, s, n);
    h = (h ^ v) * 0x94d049bb133111ebull;
    h ^= h >> 29;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 32;
    return h;
}

/* Hash of a merge key (the merge table's). */
static inline uint64_t sd_tok_hash_u64(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x;
}

/* The stored text of token id and its length. */
static inline const char *sd_tok_text(const sd_tokenizer *t, int32_t id, size_t *len) {
    *len = (size_t)(t->text_off[id + 1] - t->text_off[id]);
    return t->text_blob + t->text_off[id];
}

/* The merge of (left, right), or NULL (inline: the BPE loop's lookup). */
static inline const sd_merge_ent *sd_tok_merge_find(const sd_tokenizer *t, int32_t left, int32_t right) {
    uint64_t key = (((uint64_t)(uint32_t)left << 32) | (uint32_t)right) + 1;
    uint64_t i = sd_tok_hash_u64(key) & t->merge_mask;
    for (;;) {
        const sd_merge_ent *e = &t->merge_tab[i];
        if (e->key == 0) return NULL;
        if (e->key == key) return e;
        i = (i + 1) & t->merge_mask;
    }
}

#endif
