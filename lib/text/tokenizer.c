/* tokenizer.c -- byte-level BPE: construction from arrays, encode, decode,
 * token pieces, ChatML chat template, UTF-8 streaming helper.
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
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/log.h"
#include "io/gguf.h"
#include "tokenizer.h"

#define MAX_REGEX 4
#define CACHE_MAX_WORD 256      /* longer pre-tokens are not cached */
#define CACHE_MAX_ENTRIES (1u << 17) /* ~6 MB of table at most; then it starts over */

typedef struct merge_ent {
    uint64_t key;   /* (left << 32 | right) + 1; 0 = empty slot */
    int32_t rank;
    int32_t result;
} merge_ent;

/* A vocabulary slot keeps 32 bits of the hash so that probing rarely has
 * to touch the token text (two more cache misses). */
typedef struct vocab_slot {
    int32_t id;
    uint32_t tag;
} vocab_slot;

typedef struct special_ent {
    int32_t id;
    uint32_t len;
    const char *text; /* into text blob */
} special_ent;

struct sd_tokenizer {
    int32_t n_vocab;
    char *text_blob;
    uint64_t *text_off;   /* [n_vocab + 1] */
    char *piece_blob;
    uint64_t *piece_off;  /* [n_vocab + 1] */
    uint8_t *types;       /* [n_vocab] */
    vocab_slot *vocab_tab;/* id -1 = empty */
    uint64_t vocab_mask;
    merge_ent *merge_tab;
    uint64_t merge_mask;
    merge_ent *byte_pairs;  /* [256 * 256]: the merge of byte a then byte b, key 0 if none */
    int64_t n_merges_used;
    int32_t byte_id[256]; /* token of each single byte, -1 if the vocab lacks it */
    special_ent *specials;
    int32_t n_specials;
    int32_t bucket_lo[256], bucket_hi[256];
    pcre2_general_context *gctx;
    pcre2_code *re[MAX_REGEX];
    int n_re;
    int jit;
    char pre[64];
    int32_t bos, eos, pad, mask;
    int32_t add_bos, ignore_merges;
    int32_t im_start, im_end;
};

/* ------------------------------------------------------------- hashing */

static uint64_t hash_bytes(const void *p, size_t n) {
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

static uint64_t hash_u64(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x;
}

static uint64_t table_size_for(uint64_t n) {
    uint64_t s = 16;
    while (s < n * 2) s <<= 1;
    return s;
}

static const char *tok_text(const sd_tokenizer *t, int32_t id, size_t *len) {
    *len = (size_t)(t->text_off[id + 1] - t->text_off[id]);
    return t->text_blob + t->text_off[id];
}

static int32_t find_h(const sd_tokenizer *t, const char *text, size_t len, uint64_t h) {
    uint64_t i = h & t->vocab_mask;
    uint32_t tag = (uint32_t)(h >> 32);
    for (;;) {
        const vocab_slot *e = &t->vocab_tab[i];
        if (e->id < 0) return -1;
        if (e->tag == tag) {
            size_t l;
            const char *s = tok_text(t, e->id, &l);
            if (l == len && memcmp(s, text, len) == 0) return e->id;
        }
        i = (i + 1) & t->vocab_mask;
    }
}

int32_t sd_tokenizer_find(const sd_tokenizer *t, const char *text, size_t len) {
    return find_h(t, text, len, hash_bytes(text, len));
}

static const merge_ent *merge_find(const sd_tokenizer *t, int32_t left, int32_t right) {
    uint64_t key = (((uint64_t)(uint32_t)left << 32) | (uint32_t)right) + 1;
    uint64_t i = hash_u64(key) & t->merge_mask;
    for (;;) {
        const merge_ent *e = &t->merge_tab[i];
        if (e->key == 0) return NULL;
        if (e->key == key) return e;
        i = (i + 1) & t->merge_mask;
    }
}

/* --------------------------------------------------- byte-level alphabet */

/* GPT-2's bytes_to_unicode: printable Latin-1 bytes stand for themselves,
 * the other 68 bytes are moved to U+0100.. in byte order, so that every
 * byte is a visible, non-space character. */
static uint32_t byte_to_cp(int b) {
    if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255)) return (uint32_t)b;
    int k = 0;
    for (int i = 0; i < b; i++)
        if (!((i >= 33 && i <= 126) || (i >= 161 && i <= 172) || (i >= 174 && i <= 255))) k++;
    return 256u + (uint32_t)k;
}

static size_t utf8_put(uint32_t cp, char *out) {
    if (cp < 0x80) { out[0] = (char)cp; return 1; }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Decode one UTF-8 character strictly (no overlongs, no surrogates);
 * returns its length or 0 if s does not start with a valid character. */
static size_t utf8_get(const uint8_t *s, size_t n, uint32_t *cp) {
    if (n == 0) return 0;
    uint8_t c = s[0];
    if (c < 0x80) { *cp = c; return 1; }
    size_t len;
    uint32_t v, min;
    if ((c & 0xE0) == 0xC0) { len = 2; v = c & 0x1F; min = 0x80; }
    else if ((c & 0xF0) == 0xE0) { len = 3; v = c & 0x0F; min = 0x800; }
    else if ((c & 0xF8) == 0xF0) { len = 4; v = c & 0x07; min = 0x10000; }
    else return 0;
    if (n < len) return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        v = (v << 6) | (s[i] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return 0;
    *cp = v;
    return len;
}

/* ------------------------------------------------------ pre-tokenizers */

/* Patterns as in the models' tokenizer.json (GPT-2's as in its encoder.py);
 * the case-insensitive contractions are spelled as explicit classes, as
 * llama.cpp does, so that Unicode case folding (e.g. U+017F) cannot widen
 * them. */
#define RE_GPT2 "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+"
#define RE_QWEN2                                                                     \
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+" \
    "|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define RE_LLAMA3                                                                    \
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+" \
    "|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
/* inclusionAI's Ling tokenizer, which LLaDA-8B shares (same 126464-token
 * vocabulary); llama.cpp names it "bailingmoe". The original uses
 * possessive quantifiers, which PCRE2 supports, so it is used verbatim. */
#define RE_BAILING                                                                   \
    "'(?i:[sdmt]|ll|ve|re)|[^\\r\\n\\p{L}\\p{N}]?+\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]++[\\r\\n]*" \
    "|\\s*[\\r\\n]|\\s+(?!\\S)|\\s+"

typedef struct pre_def {
    const char *name;
    const char *re[MAX_REGEX];
} pre_def;

static const pre_def pre_defs[] = {
    {"gpt2", {RE_GPT2}},
    {"gpt-2", {RE_GPT2}},
    {"qwen2", {RE_QWEN2}},
    {"llama-bpe", {RE_LLAMA3}},
    {"llama3", {RE_LLAMA3}},
    {"bailingmoe", {RE_BAILING}},
    {"llada", {RE_BAILING}},
};

static const pre_def *pre_lookup(const char *name) {
    for (size_t i = 0; i < sizeof pre_defs / sizeof pre_defs[0]; i++)
        if (!strcmp(pre_defs[i].name, name)) return &pre_defs[i];
    return NULL;
}

int sd_tokenizer_pre_known(const char *name) { return name && pre_lookup(name) != NULL; }

static void *pcre_alloc(size_t n, void *ud) {
    (void)ud;
    return sd_malloc(n);
}
static void pcre_free(void *p, void *ud) {
    (void)ud;
    sd_free(p);
}

static int32_t compile_regex(sd_tokenizer *t, const char *pattern, sd_error *err) {
    if (t->n_re >= MAX_REGEX) return sd_fail(err, SMDIFF_E_INTERNAL, "too many pre-tokenizer regexes");
    pcre2_compile_context *cc = pcre2_compile_context_create(t->gctx);
    if (!cc) return sd_fail(err, SMDIFF_E_NOMEM, "out of memory compiling a regex");
    int ec = 0;
    PCRE2_SIZE eoff = 0;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED,
                                   PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &ec, &eoff, cc);
    pcre2_compile_context_free(cc);
    if (!re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(ec, msg, sizeof msg);
        return sd_fail(err, SMDIFF_E_FORMAT, "pre-tokenizer regex does not compile at offset %zu: %s",
                       (size_t)eoff, (const char *)msg);
    }
    /* JIT is an optimisation only: without it pcre2_match interprets. */
    if (pcre2_jit_compile(re, PCRE2_JIT_COMPLETE) == 0) t->jit++;
    t->re[t->n_re++] = re;
    return SMDIFF_OK;
}

/* --------------------------------------------------------------- create */

static int cmp_special(const void *a, const void *b) {
    const special_ent *x = a, *y = b;
    uint8_t fx = (uint8_t)x->text[0], fy = (uint8_t)y->text[0];
    if (fx != fy) return fx < fy ? -1 : 1;
    if (x->len != y->len) return x->len > y->len ? -1 : 1;
    return x->id < y->id ? -1 : (x->id > y->id);
}

void sd_tokenizer_free(sd_tokenizer *t) {
    if (!t) return;
    for (int i = 0; i < t->n_re; i++) pcre2_code_free(t->re[i]);
    pcre2_general_context_free(t->gctx);
    sd_free(t->text_blob);
    sd_free(t->text_off);
    sd_free(t->piece_blob);
    sd_free(t->piece_off);
    sd_free(t->types);
    sd_free(t->vocab_tab);
    sd_free(t->merge_tab);
    sd_free(t->byte_pairs);
    sd_free(t->specials);
    sd_free(t);
}

static int32_t build_vocab(sd_tokenizer *t, const sd_tokenizer_spec *s, sd_error *err) {
    int32_t n = s->n_tokens;
    uint64_t total = 0;
    t->text_off = sd_malloc(sizeof(uint64_t) * ((size_t)n + 1));
    t->piece_off = sd_malloc(sizeof(uint64_t) * ((size_t)n + 1));
    t->types = sd_malloc((size_t)n);
    if (!t->text_off || !t->piece_off || !t->types) return sd_fail(err, SMDIFF_E_NOMEM, "out of memory (vocabulary)");
    for (int32_t i = 0; i < n; i++) {
        if (!s->tokens[i]) return sd_fail(err, SMDIFF_E_FORMAT, "token %d is NULL", (int)i);
        size_t len = s->token_lens ? s->token_lens[i] : strlen(s->tokens[i]);
        t->text_off[i] = total;
        total += len;
        int32_t ty = s->token_types ? s->token_types[i] : SD_TOKEN_NORMAL;
        if (ty < SD_TOKEN_NORMAL || ty > SD_TOKEN_BYTE)
            return sd_fail(err, SMDIFF_E_FORMAT, "token %d has unknown type %d", (int)i, (int)ty);
        t->types[i] = (uint8_t)ty;
    }
    t->text_off[n] = total;
    t->text_blob = sd_malloc(total ? total : 1);
    /* A decoded piece is never longer than its text. */
    t->piece_blob = sd_malloc(total ? total : 1);
    if (!t->text_blob || !t->piece_blob) return sd_fail(err, SMDIFF_E_NOMEM, "out of memory (vocabulary)");
    for (int32_t i = 0; i < n; i++)
        memcpy(t->text_blob + t->text_off[i], s->tokens[i], (size_t)(t->text_off[i + 1] - t->text_off[i]));

    /* Inverse of the byte-level alphabet, for decoding NORMAL tokens. */
    int32_t cp_to_byte[324];
    for (int i = 0; i < 324; i++) cp_to_byte[i] = -1;
    for (int b = 0; b < 256; b++) cp_to_byte[byte_to_cp(b)] = b;

    uint64_t pos = 0;
    for (int32_t i = 0; i < n; i++) {
        size_t len;
        const uint8_t *src = (const uint8_t *)tok_text(t, i, &len);
        char *dst = t->piece_blob + pos;
        size_t k = 0;
        if (t->types[i] == SD_TOKEN_NORMAL) {
            for (size_t j = 0; j < len;) {
                uint32_t cp;
                size_t cl = utf8_get(src + j, len - j, &cp);
                if (cl == 0) { dst[k++] = (char)src[j++]; continue; }  /* keep raw */
                if (cp < 324 && cp_to_byte[cp] >= 0) dst[k++] = (char)cp_to_byte[cp];
                else { memcpy(dst + k, src + j, cl); k += cl; }        /* outside the alphabet: raw */
                j += cl;
            }
        } else if (t->types[i] == SD_TOKEN_UNUSED) {
            k = 0;  /* padding rows stand for no text */
        } else {
            memcpy(dst, src, len);
            k = len;
        }
        t->piece_off[i] = pos;
        pos += k;
    }
    t->piece_off[n] = pos;

    uint64_t size = table_size_for((uint64_t)n);
    t->vocab_mask = size - 1;
    t->vocab_tab = sd_malloc(sizeof(vocab_slot) * size);
    if (!t->vocab_tab) return sd_fail(err, SMDIFF_E_NOMEM, "out of memory (vocabulary hash)");
    memset(t->vocab_tab, 0xFF, sizeof(vocab_slot) * size);
    /* Insert in batches: hash a batch and prefetch its slots first, so the
     * cache misses of the batch overlap (see build_merges). */
    uint64_t hvs[64];
    for (int32_t i0 = 0; i0 < n; i0 += 64) {
        int cnt = n - i0 < 64 ? n - i0 : 64;
        for (int k = 0; k < cnt; k++) {
            size_t len;
            const char *txt = tok_text(t, i0 + k, &len);
            hvs[k] = hash_bytes(txt, len);
            __builtin_prefetch(&t->vocab_tab[hvs[k] & t->vocab_mask], 1);
        }
        for (int k = 0; k < cnt; k++) {
            int32_t i = i0 + k;
            if (t->types[i] == SD_TOKEN_UNUSED) continue;
            size_t len;
            const char *txt = tok_text(t, i, &len);
            if (len == 0) {
                if (t->types[i] == SD_TOKEN_NORMAL)
                    return sd_fail(err, SMDIFF_E_FORMAT, "token %d is empty", (int)i);
                continue;
            }
            uint64_t hv = hvs[k], h = hv & t->vocab_mask;
            uint32_t tag = (uint32_t)(hv >> 32);
            int dup = 0;
            while (t->vocab_tab[h].id >= 0) {
                if (t->vocab_tab[h].tag == tag) {
                    size_t l2;
                    const char *s2 = tok_text(t, t->vocab_tab[h].id, &l2);
                    if (l2 == len && memcmp(s2, txt, len) == 0) { dup = 1; break; }
                }
                h = (h + 1) & t->vocab_mask;
            }
            /* The first id of a duplicated text wins. */
            if (dup) {
                SD_LOGW("tokenizer: token %d duplicates the text of token %d; lookups use the first",
                        (int)i, (int)t->vocab_tab[h].id);
                continue;
            }
            t->vocab_tab[h].id = i;
            t->vocab_tab[h].tag = tag;
        }
    }

    for (int b = 0; b < 256; b++) {
        char buf[4];
        size_t l = utf8_put(byte_to_cp(b), buf);
        t->byte_id[b] = sd_tokenizer_find(t, buf, l);
        if (t->byte_id[b] >= 0 && t->types[t->byte_id[b]] != SD_TOKEN_NORMAL) t->byte_id[b] = -1;
    }
    return SMDIFF_OK;
}

/* Merges are resolved in batches: hash all three strings of MB merges
 * (left, right, left+right), then touch the vocabulary slots, the text
 * offsets and the texts in separate passes with prefetches, so that the
 * cache misses of a batch overlap instead of coming one after another
 * (this is most of the load time of a 151k vocabulary). */
#define MB 64

static int32_t build_merges(sd_tokenizer *t, const sd_tokenizer_spec *s, sd_error *err) {
    /* Load factor up to ~0.6 rather than 0.3: half the memory (4 MB for
     * Qwen2) at no measured cost in encoding speed. */
    uint64_t size = table_size_for((uint64_t)(s->n_merges > 0 ? s->n_merges : 1) * 5 / 8 + 1);
    t->merge_mask = size - 1;
    t->merge_tab = sd_calloc(size, sizeof(merge_ent));
    if (!t->merge_tab) return sd_fail(err, SMDIFF_E_NOMEM, "out of memory (merges)");
    const char *str[3 * MB];
    size_t len[3 * MB];
    uint64_t hv[3 * MB];
    int32_t ids[3 * MB];
    char *cat = NULL;
    size_t cat_cap = 0;
    int64_t skipped = 0;
    for (int64_t r0 = 0; r0 < s->n_merges; r0 += MB) {
        int cnt = (int)(s->n_merges - r0 < MB ? s->n_merges - r0 : MB);
        size_t need = 0;
        for (int k = 0; k < cnt; k++) need += s->merge_lens ? s->merge_lens[r0 + k] : (s->merges[r0 + k] ? strlen(s->merges[r0 + k]) : 0);
        if (need > cat_cap) {
            char *nc = sd_realloc(cat, need * 2);
            if (!nc) { sd_free(cat); return sd_fail(err, SMDIFF_E_NOMEM, "out of memory (merges)"); }
            cat = nc;
            cat_cap = need * 2;
        }
        size_t cat_len = 0;
        for (int k = 0; k < cnt; k++) {
            int64_t r = r0 + k;
            const char *m = s->merges[r];
            if (!m) { sd_free(cat); return sd_fail(err, SMDIFF_E_FORMAT, "merge %lld is NULL", (long long)r); }
            size_t ml = s->merge_lens ? s->merge_lens[r] : strlen(m);
            /* Byte-level tokens never contain a space (it is U+0120), so
             * the first space separates the pair. */
            const char *sp = memchr(m, ' ', ml);
            if (!sp || sp == m || sp == m + ml - 1) {
                sd_free(cat);
                return sd_fail(err, SMDIFF_E_FORMAT, "merge %lld is not \"LEFT RIGHT\": \"%.*s\"",
                               (long long)r, (int)(ml > 80 ? 80 : ml), m);
            }
            size_t ll = (size_t)(sp - m), rl = ml - ll - 1;
            memcpy(cat + cat_len, m, ll);
            memcpy(cat + cat_len + ll, sp + 1, rl);
            str[3 * k] = m;
            len[3 * k] = ll;
            str[3 * k + 1] = sp + 1;
            len[3 * k + 1] = rl;
            str[3 * k + 2] = cat + cat_len;
            len[3 * k + 2] = ll + rl;
            cat_len += ll + rl;
        }
        int nl = 3 * cnt;
        for (int k = 0; k < nl; k++) {
            hv[k] = hash_bytes(str[k], len[k]);
            __builtin_prefetch(&t->vocab_tab[hv[k] & t->vocab_mask]);
        }
        for (int k = 0; k < nl; k++) {
            int32_t id = t->vocab_tab[hv[k] & t->vocab_mask].id;
            if (id >= 0) __builtin_prefetch(&t->text_off[id]);
        }
        for (int k = 0; k < nl; k++) {
            int32_t id = t->vocab_tab[hv[k] & t->vocab_mask].id;
            if (id >= 0) __builtin_prefetch(t->text_blob + t->text_off[id]);
        }
        for (int k = 0; k < nl; k++) ids[k] = find_h(t, str[k], len[k], hv[k]);
        uint64_t keys[MB];
        for (int k = 0; k < cnt; k++) {
            keys[k] = (((uint64_t)(uint32_t)ids[3 * k] << 32) | (uint32_t)ids[3 * k + 1]) + 1;
            __builtin_prefetch(&t->merge_tab[hash_u64(keys[k]) & t->merge_mask], 1);
        }
        for (int k = 0; k < cnt; k++) {
            int32_t a = ids[3 * k], b = ids[3 * k + 1], c = ids[3 * k + 2];
            if (a < 0 || b < 0 || c < 0) { skipped++; continue; }
            uint64_t key = keys[k];
            uint64_t i = hash_u64(key) & t->merge_mask;
            while (t->merge_tab[i].key != 0 && t->merge_tab[i].key != key) i = (i + 1) & t->merge_mask;
            if (t->merge_tab[i].key == key) continue;  /* a repeated pair keeps its first (best) rank */
            t->merge_tab[i].key = key;
            t->merge_tab[i].rank = (int32_t)(r0 + k);
            t->merge_tab[i].result = c;
            t->n_merges_used++;
        }
    }
    sd_free(cat);
    if (skipped)
        SD_LOGW("tokenizer: %lld merges name tokens that are not in the vocabulary; ignored",
                (long long)skipped);
    /* The byte-pair table, from one sequential pass over the merge table
     * (65536 random lookups would cost more). */
    t->byte_pairs = sd_calloc(256 * 256, sizeof(merge_ent));
    int16_t *byte_of = sd_malloc(sizeof(int16_t) * (size_t)t->n_vocab);
    if (!t->byte_pairs || !byte_of) {
        sd_free(byte_of);
        return sd_fail(err, SMDIFF_E_NOMEM, "out of memory (merges)");
    }
    memset(byte_of, 0xFF, sizeof(int16_t) * (size_t)t->n_vocab);
    for (int b = 0; b < 256; b++)
        if (t->byte_id[b] >= 0) byte_of[t->byte_id[b]] = (int16_t)b;
    for (uint64_t i = 0; i <= t->merge_mask; i++) {
        const merge_ent *e = &t->merge_tab[i];
        if (!e->key) continue;
        uint64_t k = e->key - 1;
        int a = byte_of[(uint32_t)(k >> 32)], b = byte_of[(uint32_t)k];
        if (a >= 0 && b >= 0) t->byte_pairs[(a << 8) | b] = *e;
    }
    sd_free(byte_of);
    return SMDIFF_OK;
}

static int32_t build_specials(sd_tokenizer *t, sd_error *err) {
    int32_t n = 0;
    for (int32_t i = 0; i < t->n_vocab; i++)
        if ((t->types[i] == SD_TOKEN_CONTROL || t->types[i] == SD_TOKEN_USER_DEFINED) &&
            t->text_off[i + 1] > t->text_off[i])
            n++;
    t->specials = sd_malloc(sizeof(special_ent) * (size_t)(n ? n : 1));
    if (!t->specials) return sd_fail(err, SMDIFF_E_NOMEM, "out of memory (special tokens)");
    n = 0;
    for (int32_t i = 0; i < t->n_vocab; i++)
        if ((t->types[i] == SD_TOKEN_CONTROL || t->types[i] == SD_TOKEN_USER_DEFINED) &&
            t->text_off[i + 1] > t->text_off[i]) {
            size_t len;
            t->specials[n].text = tok_text(t, i, &len);
            t->specials[n].len = (uint32_t)len;
            t->specials[n].id = i;
            n++;
        }
    qsort(t->specials, (size_t)n, sizeof(special_ent), cmp_special);
    t->n_specials = n;
    for (int b = 0; b < 256; b++) t->bucket_lo[b] = t->bucket_hi[b] = 0;
    for (int32_t i = 0; i < n; i++) {
        int b = (uint8_t)t->specials[i].text[0];
        if (t->bucket_hi[b] == t->bucket_lo[b]) t->bucket_lo[b] = i;
        t->bucket_hi[b] = i + 1;
    }
    return SMDIFF_OK;
}

int32_t sd_tokenizer_create(const sd_tokenizer_spec *s, sd_tokenizer **out, sd_error *err) {
    if (!s || !out) return sd_fail(err, SMDIFF_E_INVAL, "sd_tokenizer_create: NULL argument");
    *out = NULL;
    if (s->n_tokens <= 0 || !s->tokens)
        return sd_fail(err, SMDIFF_E_FORMAT, "tokenizer has no tokens");
    if (s->n_merges < 0 || (s->n_merges > 0 && !s->merges))
        return sd_fail(err, SMDIFF_E_FORMAT, "tokenizer merges are missing");
    const pre_def *pd = NULL;
    if (!s->pre_regex) {
        const char *name = s->pre ? s->pre : "gpt2";
        pd = pre_lookup(name);
        if (!pd) return sd_fail(err, SMDIFF_E_UNSUPPORTED, "pre-tokenizer \"%s\" is not supported "
                                "(supported: gpt2, qwen2, llama-bpe, bailingmoe/llada)", name);
    }
    sd_tokenizer *t = sd_calloc(1, sizeof *t);
    if (!t) return sd_fail(err, SMDIFF_E_NOMEM, "out of memory creating a tokenizer");
    t->n_vocab = s->n_tokens;
    snprintf(t->pre, sizeof t->pre, "%s", s->pre ? s->pre : (s->pre_regex ? "custom" : "gpt2"));
    int32_t rc = build_vocab(t, s, err);
    if (!rc) rc = build_merges(t, s, err);
    if (!rc) rc = build_specials(t, err);
    if (!rc) {
        t->gctx = pcre2_general_context_create(pcre_alloc, pcre_free, NULL);
        if (!t->gctx) rc = sd_fail(err, SMDIFF_E_NOMEM, "out of memory (regex context)");
    }
    if (!rc) {
        if (s->pre_regex) rc = compile_regex(t, s->pre_regex, err);
        else
            for (int i = 0; i < MAX_REGEX && pd->re[i] && !rc; i++) rc = compile_regex(t, pd->re[i], err);
    }
    if (rc) {
        sd_tokenizer_free(t);
        return rc;
    }
    int32_t ids[4] = {s->bos_id, s->eos_id, s->pad_id, s->mask_id};
    for (int i = 0; i < 4; i++)
        if (ids[i] < -1 || ids[i] >= t->n_vocab) {
            SD_LOGW("tokenizer: special id %d is outside the vocabulary; ignored", (int)ids[i]);
            ids[i] = -1;
        }
    t->bos = ids[0];
    t->eos = ids[1];
    t->pad = ids[2];
    t->mask = ids[3];
    t->add_bos = s->add_bos != 0;
    t->ignore_merges = s->ignore_merges != 0;
    t->im_start = sd_tokenizer_find(t, "<|im_start|>", 12);
    t->im_end = sd_tokenizer_find(t, "<|im_end|>", 10);
    *out = t;
    return SMDIFF_OK;
}

int32_t sd_tokenizer_n_vocab(const sd_tokenizer *t) { return t->n_vocab; }

int32_t sd_tokenizer_token_type(const sd_tokenizer *t, int32_t id) {
    return (id >= 0 && id < t->n_vocab) ? t->types[id] : 0;
}

int32_t sd_tokenizer_special_id(const sd_tokenizer *t, int which) {
    switch (which) {
    case 0: return t->bos;
    case 1: return t->eos;
    case 2: return t->pad;
    case 3: return t->mask;
    default: return -1;
    }
}

const char *sd_tokenizer_pre_name(const sd_tokenizer *t) { return t->pre; }

/* --------------------------------------------------------------- encode */

typedef struct sym {
    int32_t id;
    int32_t prev, next;  /* -1 at the ends */
    int32_t byte;        /* the byte it started as (first-pair lookups) */
} sym;

typedef struct heap_ent {
    int32_t rank;
    int32_t pos;     /* left symbol */
    int32_t lid, rid;/* ids when pushed: a stale entry no longer matches */
    int32_t result;  /* merged id */
} heap_ent;

typedef struct cache_ent {
    uint64_t hash;    /* 0 = empty */
    uint32_t key_off, key_len;
    uint32_t ids_off, n_ids;
} cache_ent;

/* Everything one encode call writes: private, so calls may run in parallel. */
typedef struct enc_state {
    const sd_tokenizer *t;
    pcre2_match_data *md[MAX_REGEX];
    int32_t *ids;
    size_t n_ids, cap_ids;
    sym *syms;
    heap_ent *heap;
    size_t cap_syms, cap_heap;
    char *bl;            /* byte-level form of a pre-token (ignore_merges) */
    size_t cap_bl;
    /* pre-token cache */
    cache_ent *ctab;
    uint64_t cmask, cused;
    char *ckeys;
    size_t ckeys_len, ckeys_cap;
    int32_t *cids;
    size_t cids_len, cids_cap;
    int32_t rc;
    sd_pretoken_fn fn;   /* sd_tokenizer_pretokenize: pre-tokens go here, not to BPE */
    void *fn_ud;
} enc_state;

static int grow(void **p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return 0;
    size_t nc = *cap ? *cap : 64;
    while (nc < need) nc *= 2;
    size_t bytes;
    if (sd_mul_size(nc, elem, &bytes)) return -1;
    void *np = sd_realloc(*p, bytes);
    if (!np) return -1;
    *p = np;
    *cap = nc;
    return 0;
}

static int push_id(enc_state *st, int32_t id) {
    if (st->n_ids == st->cap_ids && grow((void **)&st->ids, &st->cap_ids, st->n_ids + 1, sizeof(int32_t)))
        return -1;
    st->ids[st->n_ids++] = id;
    return 0;
}

static int heap_less(const heap_ent *a, const heap_ent *b) {
    return a->rank < b->rank || (a->rank == b->rank && a->pos < b->pos);
}

static void heap_push(heap_ent *h, size_t *n, heap_ent e) {
    size_t i = (*n)++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!heap_less(&e, &h[p])) break;
        h[i] = h[p];
        i = p;
    }
    h[i] = e;
}

static heap_ent heap_pop(heap_ent *h, size_t *n) {
    heap_ent top = h[0], last = h[--(*n)];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= *n) break;
        if (c + 1 < *n && heap_less(&h[c + 1], &h[c])) c++;
        if (!heap_less(&h[c], &last)) break;
        h[i] = h[c];
        i = c;
    }
    if (*n) h[i] = last;
    return top;
}

static void try_pair(const sd_tokenizer *t, const sym *s, heap_ent *h, size_t *nh, int32_t pos) {
    if (pos < 0 || s[pos].next < 0) return;
    const merge_ent *m = merge_find(t, s[pos].id, s[s[pos].next].id);
    if (m) heap_push(h, nh, (heap_ent){m->rank, pos, s[pos].id, s[s[pos].next].id, m->result});
}

/* BPE of one pre-token w[0..n): start from one symbol per byte, repeatedly
 * merge the adjacent pair of lowest rank (leftmost on ties) -- the order of
 * Hugging Face's word merge and llama.cpp's bigram queue. A heap with lazy
 * deletion makes it O(n log n). Appends the ids to st->ids.
 *
 * Naive reference (what the heap computes):
 *   while some adjacent pair has a merge: merge the lowest-rank, leftmost one. */
static int bpe_word(enc_state *st, const uint8_t *w, size_t n) {
    const sd_tokenizer *t = st->t;
    if (n == 1) return t->byte_id[w[0]] >= 0 ? push_id(st, t->byte_id[w[0]]) : 0;
    if (t->ignore_merges) {
        if (grow((void **)&st->bl, &st->cap_bl, n * 2, 1)) return -1;
        size_t k = 0;
        for (size_t i = 0; i < n; i++) k += utf8_put(byte_to_cp(w[i]), st->bl + k);
        int32_t id = sd_tokenizer_find(t, st->bl, k);
        if (id >= 0 && t->types[id] == SD_TOKEN_NORMAL) return push_id(st, id);
    }
    /* The heap holds at most the n - 1 initial pairs plus 2 per merge. */
    if (grow((void **)&st->syms, &st->cap_syms, n, sizeof(sym)) ||
        grow((void **)&st->heap, &st->cap_heap, 3 * n, sizeof(heap_ent)))
        return -1;
    sym *s = st->syms;
    int32_t m = 0;
    for (size_t i = 0; i < n; i++) {
        int32_t id = t->byte_id[w[i]];
        if (id < 0) continue;  /* a vocabulary without this byte cannot encode it */
        s[m].id = id;
        s[m].prev = m - 1;
        s[m].next = m + 1;
        s[m].byte = w[i];
        m++;
    }
    if (m == 0) return 0;
    s[m - 1].next = -1;
    heap_ent *h = st->heap;
    size_t nh = 0;
    /* Pairs of single bytes come from a 256 x 256 table that stays in
     * cache; only pairs formed by merges go to the merge hash. */
    for (int32_t i = 0; i + 1 < m; i++) {
        const merge_ent *e = &t->byte_pairs[(s[i].byte << 8) | s[i + 1].byte];
        if (e->key) heap_push(h, &nh, (heap_ent){e->rank, i, s[i].id, s[i + 1].id, e->result});
    }
    while (nh) {
        heap_ent e = heap_pop(h, &nh);
        int32_t r = s[e.pos].next;
        if (s[e.pos].id != e.lid || r < 0 || s[r].id != e.rid) continue;  /* stale */
        s[e.pos].id = e.result;
        s[e.pos].next = s[r].next;
        if (s[r].next >= 0) s[s[r].next].prev = e.pos;
        s[r].id = -1;  /* dead: no entry can match it again */
        try_pair(t, s, h, &nh, s[e.pos].prev);
        try_pair(t, s, h, &nh, e.pos);
    }
    for (int32_t i = 0; i >= 0; i = s[i].next)
        if (push_id(st, s[i].id)) return -1;
    return 0;
}

/* Cached BPE: text repeats words, so most pre-tokens are looked up. */
static int encode_pretoken(enc_state *st, const uint8_t *w, size_t n) {
    if (n == 0) return 0;
    if (n == 1 || n > CACHE_MAX_WORD) return bpe_word(st, w, n);
    if (!st->ctab || st->cused * 2 >= st->cmask) {
        if (st->cused >= CACHE_MAX_ENTRIES || !st->ctab) {
            /* start (or restart) with an empty table */
            uint64_t size = st->ctab ? st->cmask + 1 : 4096;
            if (st->ctab && st->cused < CACHE_MAX_ENTRIES) size *= 2;
            sd_free(st->ctab);
            st->ctab = sd_calloc(size, sizeof(cache_ent));
            if (!st->ctab) return -1;
            st->cmask = size - 1;
            st->cused = 0;
            st->ckeys_len = st->cids_len = 0;
        } else {
            /* double and rehash */
            uint64_t size = (st->cmask + 1) * 2;
            cache_ent *nt = sd_calloc(size, sizeof(cache_ent));
            if (!nt) return -1;
            for (uint64_t i = 0; i <= st->cmask; i++) {
                if (!st->ctab[i].hash) continue;
                uint64_t j = st->ctab[i].hash & (size - 1);
                while (nt[j].hash) j = (j + 1) & (size - 1);
                nt[j] = st->ctab[i];
            }
            sd_free(st->ctab);
            st->ctab = nt;
            st->cmask = size - 1;
        }
    }
    uint64_t hv = hash_bytes(w, n) | 1;
    uint64_t i = hv & st->cmask;
    while (st->ctab[i].hash) {
        cache_ent *e = &st->ctab[i];
        if (e->hash == hv && e->key_len == n && memcmp(st->ckeys + e->key_off, w, n) == 0) {
            if (grow((void **)&st->ids, &st->cap_ids, st->n_ids + e->n_ids, sizeof(int32_t))) return -1;
            memcpy(st->ids + st->n_ids, st->cids + e->ids_off, sizeof(int32_t) * e->n_ids);
            st->n_ids += e->n_ids;
            return 0;
        }
        i = (i + 1) & st->cmask;
    }
    size_t first = st->n_ids;
    if (bpe_word(st, w, n)) return -1;
    size_t k = st->n_ids - first;
    if (st->ckeys_len + n > UINT32_MAX || st->cids_len + k > UINT32_MAX) return 0;
    if (grow((void **)&st->ckeys, &st->ckeys_cap, st->ckeys_len + n, 1) ||
        grow((void **)&st->cids, &st->cids_cap, st->cids_len + k, sizeof(int32_t)))
        return -1;
    memcpy(st->ckeys + st->ckeys_len, w, n);
    memcpy(st->cids + st->cids_len, st->ids + first, sizeof(int32_t) * k);
    st->ctab[i] = (cache_ent){hv, (uint32_t)st->ckeys_len, (uint32_t)n, (uint32_t)st->cids_len, (uint32_t)k};
    st->ckeys_len += n;
    st->cids_len += k;
    st->cused++;
    return 0;
}

static int32_t regex_fail(enc_state *st, int rc) {
    PCRE2_UCHAR msg[200];
    pcre2_get_error_message(rc, msg, sizeof msg);
    st->rc = sd_fail(NULL, SMDIFF_E_INTERNAL, "pre-tokenizer regex failed: %s", (const char *)msg);
    return -1;
}

/* Split s[0..n) with regex `level` and hand every match and every gap
 * between matches to the next level; after the last level, BPE. */
static int split_level(enc_state *st, int level, const uint8_t *s, size_t n) {
    const sd_tokenizer *t = st->t;
    if (level == t->n_re) return st->fn ? st->fn(st->fn_ud, (const char *)s, n) : encode_pretoken(st, s, n);
    pcre2_match_data *md = st->md[level];
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
    size_t pos = 0;
    while (pos < n) {
        int rc;
        if (t->jit) rc = pcre2_jit_match(t->re[level], s, n, pos, 0, md, NULL);
        else rc = pcre2_match(t->re[level], s, n, pos, 0, md, NULL);
        if (rc == PCRE2_ERROR_JIT_STACKLIMIT)  /* the interpreter keeps its frames on the heap */
            rc = pcre2_match(t->re[level], s, n, pos, PCRE2_NO_JIT, md, NULL);
        if (rc == PCRE2_ERROR_NOMATCH) break;
        if (rc < 0) return regex_fail(st, rc);
        size_t a = ov[0], b = ov[1];
        if (a > pos && split_level(st, level + 1, s + pos, a - pos)) return -1;
        if (b == a) {
            /* An empty match (only look-around patterns can make one):
             * step over one character so the loop ends. */
            uint32_t cp;
            size_t cl = utf8_get(s + a, n - a, &cp);
            b = a + (cl ? cl : 1);
            if (split_level(st, level + 1, s + a, b - a)) return -1;
        } else if (split_level(st, level + 1, s + a, b - a)) {
            return -1;
        }
        pos = b;
    }
    if (pos < n) return split_level(st, level + 1, s + pos, n - pos);
    return 0;
}

/* Longest added token starting at s[0..n), or NULL. */
static const special_ent *match_special(const sd_tokenizer *t, const uint8_t *s, size_t n,
                                        int parse_special) {
    int b = s[0];
    for (int32_t i = t->bucket_lo[b]; i < t->bucket_hi[b]; i++) {
        const special_ent *e = &t->specials[i];
        if (e->len <= n && memcmp(e->text, s, e->len) == 0 &&
            (parse_special || t->types[e->id] == SD_TOKEN_USER_DEFINED))
            return e;
    }
    return NULL;
}

static void enc_state_free(enc_state *st) {
    for (int i = 0; i < MAX_REGEX; i++) pcre2_match_data_free(st->md[i]);
    sd_free(st->ids);
    sd_free(st->syms);
    sd_free(st->heap);
    sd_free(st->bl);
    sd_free(st->ctab);
    sd_free(st->ckeys);
    sd_free(st->cids);
}

int32_t sd_tokenizer_encode(const sd_tokenizer *t, const char *text, size_t n_bytes, int32_t flags,
                            int32_t *ids, size_t cap, size_t *n_out, sd_error *err) {
    if (!t || (!text && n_bytes) || !n_out || (!ids && cap))
        return sd_fail(err, SMDIFF_E_INVAL, "tokenize: invalid argument");
    enc_state st;
    memset(&st, 0, sizeof st);
    st.t = t;
    for (int i = 0; i < t->n_re; i++) {
        st.md[i] = pcre2_match_data_create_from_pattern(t->re[i], t->gctx);
        if (!st.md[i]) {
            enc_state_free(&st);
            return sd_fail(err, SMDIFF_E_NOMEM, "out of memory (regex match data)");
        }
    }
    int fail = 0;
    if ((flags & SD_TOK_ADD_BOS) && t->add_bos && t->bos >= 0) fail = push_id(&st, t->bos);
    const uint8_t *s = (const uint8_t *)text;
    int parse_special = (flags & SD_TOK_PARSE_SPECIAL) != 0;
    size_t seg = 0, i = 0;
    while (!fail && i < n_bytes) {
        const special_ent *e = NULL;
        if (t->bucket_hi[s[i]] > t->bucket_lo[s[i]]) e = match_special(t, s + i, n_bytes - i, parse_special);
        if (!e) { i++; continue; }
        if (i > seg) fail = split_level(&st, 0, s + seg, i - seg);
        if (!fail) fail = push_id(&st, e->id);
        i += e->len;
        seg = i;
    }
    if (!fail && n_bytes > seg) fail = split_level(&st, 0, s + seg, n_bytes - seg);
    int32_t rc = SMDIFF_OK;
    if (fail) {
        rc = st.rc ? sd_error_forward(err, sd_tls_error())
                   : sd_fail(err, SMDIFF_E_NOMEM, "out of memory while tokenizing");
    } else {
        *n_out = st.n_ids;
        if (st.n_ids > cap)
            rc = sd_fail(err, SMDIFF_E_BUFFER, "tokenize: %zu ids needed, capacity is %zu", st.n_ids, cap);
        else if (st.n_ids)
            memcpy(ids, st.ids, sizeof(int32_t) * st.n_ids);
    }
    enc_state_free(&st);
    return rc;
}

int sd_tokenizer_pretokenize(const sd_tokenizer *t, const char *text, size_t n, sd_pretoken_fn fn,
                             void *ud, sd_error *err) {
    enc_state st;
    memset(&st, 0, sizeof st);
    st.t = t;
    st.fn = fn;
    st.fn_ud = ud;
    int rc = 0;
    for (int i = 0; i < t->n_re && !rc; i++)
        if (!(st.md[i] = pcre2_match_data_create_from_pattern(t->re[i], t->gctx)))
            rc = -1, sd_fail(err, SMDIFF_E_NOMEM, "out of memory (regex match data)");
    if (!rc && n) rc = split_level(&st, 0, (const uint8_t *)text, n);
    if (rc == -1 && st.rc) sd_error_forward(err, sd_tls_error());
    enc_state_free(&st);
    return rc;
}

size_t sd_byte_level_char(uint8_t b, char out[4]) { return utf8_put(byte_to_cp(b), out); }

/* --------------------------------------------------------------- decode */

static int rendered(const sd_tokenizer *t, int32_t id, int32_t flags) {
    return t->types[id] != SD_TOKEN_CONTROL || (flags & SD_DETOK_SPECIAL);
}

int32_t sd_tokenizer_decode(const sd_tokenizer *t, const int32_t *ids, size_t n_ids, int32_t flags,
                            char *out, size_t cap, size_t *n_out, sd_error *err) {
    if (!t || (!ids && n_ids) || !n_out || (!out && cap))
        return sd_fail(err, SMDIFF_E_INVAL, "detokenize: invalid argument");
    size_t need = 0;
    for (size_t i = 0; i < n_ids; i++) {
        int32_t id = ids[i];
        if (id < 0 || id >= t->n_vocab)
            return sd_fail(err, SMDIFF_E_RANGE, "detokenize: id %d at position %zu is outside the "
                           "vocabulary [0, %d)", (int)id, i, (int)t->n_vocab);
        if (rendered(t, id, flags)) need += (size_t)(t->piece_off[id + 1] - t->piece_off[id]);
    }
    *n_out = need;
    if (need > cap)
        return sd_fail(err, SMDIFF_E_BUFFER, "detokenize: %zu bytes needed, capacity is %zu", need, cap);
    size_t k = 0;
    for (size_t i = 0; i < n_ids; i++) {
        int32_t id = ids[i];
        if (!rendered(t, id, flags)) continue;
        size_t l = (size_t)(t->piece_off[id + 1] - t->piece_off[id]);
        memcpy(out + k, t->piece_blob + t->piece_off[id], l);
        k += l;
    }
    return SMDIFF_OK;
}

int32_t sd_tokenizer_piece(const sd_tokenizer *t, int32_t id, char *out, size_t cap, size_t *n_out,
                           sd_error *err) {
    return sd_tokenizer_decode(t, &id, 1, SD_DETOK_SPECIAL, out, cap, n_out, err);
}

/* ------------------------------------------------------- chat template */

typedef struct sbuf {
    char *out;
    size_t cap, len;
} sbuf;

static void sb_put(sbuf *b, const char *s) {
    size_t l = strlen(s);
    if (b->len < b->cap) memcpy(b->out + b->len, s, b->len + l <= b->cap ? l : b->cap - b->len);
    b->len += l;
}

/* The non-tool branch of Dream-Instruct's (Qwen2.5's) template:
 *   [system block: messages[0] if it is a system message, else the default]
 *   for each message:
 *     user, assistant, or system other than the first:
 *         <|im_start|>ROLE\nCONTENT<|im_end|>\n
 *     tool: consecutive tool messages share one user block, each as
 *         \n<tool_response>\nCONTENT\n</tool_response>
 *     anything else: nothing (the template emits nothing for it)
 *   add_generation_prompt: <|im_start|>assistant\n */
int32_t sd_tokenizer_chat(const sd_tokenizer *t, int32_t n, const char *const *roles,
                          const char *const *contents, int32_t add_gen, char *out, size_t cap,
                          size_t *needed, sd_error *err) {
    if (!t || n < 0 || (n > 0 && (!roles || !contents)) || !needed || (!out && cap))
        return sd_fail(err, SMDIFF_E_INVAL, "chat template: invalid argument");
    for (int32_t i = 0; i < n; i++)
        if (!roles[i] || !contents[i])
            return sd_fail(err, SMDIFF_E_INVAL, "chat template: message %d has a NULL role or content", (int)i);
    if (t->im_start < 0 || t->im_end < 0)
        return sd_fail(err, SMDIFF_E_UNSUPPORTED, "this tokenizer has no ChatML tokens "
                       "(<|im_start|>, <|im_end|>); no chat template is known for it");
    sbuf b = {out, cap, 0};
    if (n > 0 && !strcmp(roles[0], "system")) {
        sb_put(&b, "<|im_start|>system\n");
        sb_put(&b, contents[0]);
        sb_put(&b, "<|im_end|>\n");
    } else {
        sb_put(&b, "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n");
    }
    for (int32_t i = 0; i < n; i++) {
        const char *r = roles[i];
        if (!strcmp(r, "user") || (!strcmp(r, "system") && i > 0) || !strcmp(r, "assistant")) {
            sb_put(&b, "<|im_start|>");
            sb_put(&b, r);
            sb_put(&b, "\n");
            sb_put(&b, contents[i]);
            sb_put(&b, "<|im_end|>\n");
        } else if (!strcmp(r, "tool")) {
            if (i == 0 || strcmp(roles[i - 1], "tool")) sb_put(&b, "<|im_start|>user");
            sb_put(&b, "\n<tool_response>\n");
            sb_put(&b, contents[i]);
            sb_put(&b, "\n</tool_response>");
            if (i == n - 1 || strcmp(roles[i + 1], "tool")) sb_put(&b, "<|im_end|>\n");
        }
    }
    if (add_gen) sb_put(&b, "<|im_start|>assistant\n");
    *needed = b.len + 1;
    if (b.len + 1 > cap)
        return sd_fail(err, SMDIFF_E_BUFFER, "chat template: %zu bytes needed, capacity is %zu",
                       b.len + 1, cap);
    out[b.len] = '\0';
    return SMDIFF_OK;
}

/* ------------------------------------------------------------ streaming */

/* Whether p[0..k) (k < the length its lead byte announces) can still be
 * completed into a valid character: the lead is C2..F4 and the second byte,
 * if present, lies in the range the lead allows (no overlong, surrogate or
 * > U+10FFFF forms). */
static int utf8_prefix_possible(const uint8_t *p, size_t k) {
    uint8_t c = p[0];
    if (c < 0xC2 || c > 0xF4) return 0;
    if (k >= 2) {
        uint8_t lo = 0x80, hi = 0xBF;
        if (c == 0xE0) lo = 0xA0;
        else if (c == 0xED) hi = 0x9F;
        else if (c == 0xF0) lo = 0x90;
        else if (c == 0xF4) hi = 0x8F;
        if (p[1] < lo || p[1] > hi) return 0;
    }
    for (size_t j = 2; j < k; j++)
        if ((p[j] & 0xC0) != 0x80) return 0;
    return 1;
}

size_t sd_utf8_complete_prefix(const char *buf, size_t n) {
    const uint8_t *s = (const uint8_t *)buf;
    /* The last sequence starts at most 3 bytes back (a 4-byte one missing
     * its last byte). */
    for (size_t back = 1; back <= 3 && back <= n; back++) {
        uint8_t c = s[n - back];
        if ((c & 0xC0) == 0x80) continue;
        size_t need = (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 1;
        if (need <= back) return n;
        return utf8_prefix_possible(s + n - back, back) ? n - back : n;
    }
    return n;
}

/* -------------------------------------------------------- GGUF writing */

static int cmp_rank(const void *a, const void *b) {
    const merge_ent *x = *(const merge_ent *const *)a, *y = *(const merge_ent *const *)b;
    return (x->rank > y->rank) - (x->rank < y->rank);
}

int32_t sd_tokenizer_to_gguf(const sd_tokenizer *t, sd_gguf_writer *w, sd_error *err) {
    if (!t || !w) return sd_fail(err, SMDIFF_E_INVAL, "sd_tokenizer_to_gguf: NULL argument");
    if (t->n_re == 1 && !pre_lookup(t->pre))
        return sd_fail(err, SMDIFF_E_UNSUPPORTED, "a tokenizer with a custom split regex has no "
                       "tokenizer.ggml.pre name to write");
    size_t n = (size_t)t->n_vocab, m = (size_t)t->n_merges_used;
    const char **tok = sd_malloc(sizeof(char *) * n);
    uint64_t *tlen = sd_malloc(sizeof(uint64_t) * n);
    int32_t *types = sd_malloc(sizeof(int32_t) * n);
    const merge_ent **ents = sd_malloc(sizeof(merge_ent *) * (m ? m : 1));
    const char **mer = sd_malloc(sizeof(char *) * (m ? m : 1));
    uint64_t *mlen = sd_malloc(sizeof(uint64_t) * (m ? m : 1));
    char *blob = NULL;
    int32_t rc = SMDIFF_OK;
    if (!tok || !tlen || !types || !ents || !mer || !mlen) rc = sd_fail(err, SMDIFF_E_NOMEM, "out of memory");
    size_t total = 0, k = 0;
    if (!rc) {
        for (size_t i = 0; i < n; i++) {
            size_t l;
            tok[i] = tok_text(t, (int32_t)i, &l);
            tlen[i] = l;
            types[i] = t->types[i];
        }
        for (uint64_t i = 0; i <= t->merge_mask; i++)
            if (t->merge_tab[i].key) ents[k++] = &t->merge_tab[i];
        qsort(ents, k, sizeof ents[0], cmp_rank);
        for (size_t i = 0; i < k; i++) {
            uint64_t key = ents[i]->key - 1;
            size_t a, b;
            tok_text(t, (int32_t)(key >> 32), &a);
            tok_text(t, (int32_t)(uint32_t)key, &b);
            total += a + b + 1;
        }
        blob = sd_malloc(total ? total : 1);
        if (!blob) rc = sd_fail(err, SMDIFF_E_NOMEM, "out of memory");
    }
    if (!rc) {
        size_t off = 0;
        for (size_t i = 0; i < k; i++) {
            uint64_t key = ents[i]->key - 1;
            size_t a, b;
            const char *l = tok_text(t, (int32_t)(key >> 32), &a);
            const char *r = tok_text(t, (int32_t)(uint32_t)key, &b);
            mer[i] = blob + off;
            memcpy(blob + off, l, a);
            blob[off + a] = ' ';
            memcpy(blob + off + a + 1, r, b);
            mlen[i] = a + b + 1;
            off += a + b + 1;
        }
        static const char *const id_keys[4] = {"tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id",
                                               "tokenizer.ggml.padding_token_id", "tokenizer.ggml.mask_token_id"};
        int32_t ids[4] = {t->bos, t->eos, t->pad, t->mask};
        int32_t r = sd_gguf_set_str(w, "tokenizer.ggml.model", "gpt2");
        if (!r) r = sd_gguf_set_str(w, "tokenizer.ggml.pre", t->pre);
        if (!r) r = sd_gguf_set_arr_strn(w, "tokenizer.ggml.tokens", tok, tlen, n);
        if (!r) r = sd_gguf_set_arr_i32(w, "tokenizer.ggml.token_type", types, n);
        if (!r) r = sd_gguf_set_arr_strn(w, "tokenizer.ggml.merges", mer, mlen, k);
        for (int i = 0; i < 4 && !r; i++)
            if (ids[i] >= 0) r = sd_gguf_set_u32(w, id_keys[i], (uint32_t)ids[i]);
        if (!r) r = sd_gguf_set_bool(w, "tokenizer.ggml.add_bos_token", t->add_bos);
        if (r) rc = sd_fail(err, r, "writing tokenizer metadata failed");
    }
    sd_free(tok);
    sd_free(tlen);
    sd_free(types);
    sd_free(ents);
    sd_free(mer);
    sd_free(mlen);
    sd_free(blob);
    return rc;
}
