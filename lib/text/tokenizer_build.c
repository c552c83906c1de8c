/* tokenizer_build.c -- building a byte-level BPE tokenizer: the
 * pre-tokenizer table and regex compilation, the vocabulary and merge
 * hash tables, the added-token index (sd_tokenizer_create), the
 * byte-level alphabet and the loaders' builder. See tokenizer_build.h and,
 * for the layout, tokenizer_impl.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/log.h"
#include "tokenizer_build.h"
#include "tokenizer_impl.h"
#include "utf8.h"

/* --------------------------------------------------- byte-level alphabet */

/* Printable bytes (33..126, 161..172, 174..255) stand for themselves; the
 * others, 0..32, 127..160 and 173, take U+0100.. in that order. */
static uint32_t byte_to_cp(uint8_t b) {
    if (b <= 32) return 256u + b;
    if (b >= 127 && b <= 160) return 256u + 33u + (uint32_t)(b - 127);
    if (b == 173) return 256u + 33u + 34u;
    return b;
}

size_t sd_byte_level_char(uint8_t b, char out[4]) { return sd_utf8_put(byte_to_cp(b), out); }

/* ------------------------------------------------------------- hashing */

static uint64_t table_size_for(uint64_t n) {
    uint64_t s = 16;
    while (s < n * 2) s <<= 1;
    return s;
}

static int32_t find_h(const sd_tokenizer *t, const char *text, size_t len, uint64_t h) {
    uint64_t i = h & t->vocab_mask;
    uint32_t tag = (uint32_t)(h >> 32);
    for (;;) {
        const sd_vocab_slot *e = &t->vocab_tab[i];
        if (e->id < 0) return -1;
        if (e->tag == tag) {
            size_t l;
            const char *s = sd_tok_text(t, e->id, &l);
            if (l == len && memcmp(s, text, len) == 0) return e->id;
        }
        i = (i + 1) & t->vocab_mask;
    }
}

int32_t sd_tokenizer_find(const sd_tokenizer *t, const char *text, size_t len) {
    return find_h(t, text, len, sd_tok_hash_bytes(text, len));
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
    const char *re[SD_TOK_MAX_REGEX];
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
    if (t->n_re >= SD_TOK_MAX_REGEX) return sd_fail(err, SMDIFF_E_INTERNAL, "too many pre-tokenizer regexes");
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
        return sd_fail(err, ec == PCRE2_ERROR_HEAP_FAILED ? SMDIFF_E_NOMEM : SMDIFF_E_FORMAT,
                       "pre-tokenizer regex does not compile at offset %zu: %s", (size_t)eoff, (const char *)msg);
    }
    /* JIT is an optimisation only: without it pcre2_match interprets. But
     * an allocation that fails is reported, as everywhere. */
    int jrc = pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
    if (jrc == PCRE2_ERROR_NOMEMORY) {
        pcre2_code_free(re);
        return sd_fail(err, SMDIFF_E_NOMEM, "out of memory compiling a regex");
    }
    if (jrc == 0) t->jit++;
    t->re[t->n_re++] = re;
    return SMDIFF_OK;
}

/* --------------------------------------------------------------- create */

static int cmp_special(const void *a, const void *b) {
    const sd_special_ent *x = a, *y = b;
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
        const uint8_t *src = (const uint8_t *)sd_tok_text(t, i, &len);
        char *dst = t->piece_blob + pos;
        size_t k = 0;
        if (t->types[i] == SD_TOKEN_NORMAL) {
            for (size_t j = 0; j < len;) {
                uint32_t cp;
                size_t cl = sd_utf8_get(src + j, len - j, &cp);
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
    t->vocab_tab = sd_malloc(sizeof(sd_vocab_slot) * size);
    if (!t->vocab_tab) return sd_fail(err, SMDIFF_E_NOMEM, "out of memory (vocabulary hash)");
    memset(t->vocab_tab, 0xFF, sizeof(sd_vocab_slot) * size);
    /* Insert in batches: hash a batch and prefetch its slots first, so the
     * cache misses of the batch overlap (see build_merges). */
    uint64_t hvs[64];
    for (int32_t i0 = 0; i0 < n; i0 += 64) {
        int cnt = n - i0 < 64 ? n - i0 : 64;
        for (int k = 0; k < cnt; k++) {
            size_t len;
            const char *txt = sd_tok_text(t, i0 + k, &len);
            hvs[k] = sd_tok_hash_bytes(txt, len);
            __builtin_prefetch(&t->vocab_tab[hvs[k] & t->vocab_mask], 1);
        }
        for (int k = 0; k < cnt; k++) {
            int32_t i = i0 + k;
            if (t->types[i] == SD_TOKEN_UNUSED) continue;
            size_t len;
            const char *txt = sd_tok_text(t, i, &len);
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
                    const char *s2 = sd_tok_text(t, t->vocab_tab[h].id, &l2);
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
        size_t l = sd_utf8_put(byte_to_cp(b), buf);
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
    t->merge_tab = sd_calloc(size, sizeof(sd_merge_ent));
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
            hv[k] = sd_tok_hash_bytes(str[k], len[k]);
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
            __builtin_prefetch(&t->merge_tab[sd_tok_hash_u64(keys[k]) & t->merge_mask], 1);
        }
        for (int k = 0; k < cnt; k++) {
            int32_t a = ids[3 * k], b = ids[3 * k + 1], c = ids[3 * k + 2];
            if (a < 0 || b < 0 || c < 0) { skipped++; continue; }
            uint64_t key = keys[k];
            uint64_t i = sd_tok_hash_u64(key) & t->merge_mask;
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
    t->byte_pairs = sd_calloc(256 * 256, sizeof(sd_merge_ent));
    int16_t *byte_of = sd_malloc(sizeof(int16_t) * (size_t)t->n_vocab);
    if (!t->byte_pairs || !byte_of) {
        sd_free(byte_of);
        return sd_fail(err, SMDIFF_E_NOMEM, "out of memory (merges)");
    }
    memset(byte_of, 0xFF, sizeof(int16_t) * (size_t)t->n_vocab);
    for (int b = 0; b < 256; b++)
        if (t->byte_id[b] >= 0) byte_of[t->byte_id[b]] = (int16_t)b;
    for (uint64_t i = 0; i <= t->merge_mask; i++) {
        const sd_merge_ent *e = &t->merge_tab[i];
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
    t->specials = sd_malloc(sizeof(sd_special_ent) * (size_t)(n ? n : 1));
    if (!t->specials) return sd_fail(err, SMDIFF_E_NOMEM, "out of memory (special tokens)");
    n = 0;
    for (int32_t i = 0; i < t->n_vocab; i++)
        if ((t->types[i] == SD_TOKEN_CONTROL || t->types[i] == SD_TOKEN_USER_DEFINED) &&
            t->text_off[i + 1] > t->text_off[i]) {
            size_t len;
            t->specials[n].text = sd_tok_text(t, i, &len);
            t->specials[n].len = (uint32_t)len;
            t->specials[n].id = i;
            n++;
        }
    qsort(t->specials, (size_t)n, sizeof(sd_special_ent), cmp_special);
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
    if (!sd_norm_name(s->normalizer))
        return sd_fail(err, SMDIFF_E_UNSUPPORTED, "tokenizer normaliser %d is not supported", (int)s->normalizer);
    sd_tokenizer *t = sd_calloc(1, sizeof *t);
    if (!t) return sd_fail(err, SMDIFF_E_NOMEM, "out of memory creating a tokenizer");
    t->n_vocab = s->n_tokens;
    t->normalizer = s->normalizer;
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
            for (int i = 0; i < SD_TOK_MAX_REGEX && pd->re[i] && !rc; i++) rc = compile_regex(t, pd->re[i], err);
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

int32_t sd_tokenizer_normalizer(const sd_tokenizer *t) { return t->normalizer; }


/* ------------------------------------------------------------- builder */

void sd_tok_builder_init(sd_tok_builder *b) {
    memset(b, 0, sizeof *b);
    for (int i = 0; i < 4; i++) b->special[i] = -1;
}

void sd_tok_builder_free(sd_tok_builder *b) {
    sd_free(b->tokens);
    sd_free(b->lens);
    sd_free(b->types);
    sd_free(b->merges);
    sd_free(b->merge_lens);
    sd_free(b->merges_buf);
    sd_free(b->pad_names);
    b->tokens = NULL, b->lens = NULL, b->types = NULL;
    b->merges = NULL, b->merge_lens = NULL, b->merges_buf = NULL, b->pad_names = NULL;
}

/* Room for "[PAD2147483647]" and its terminator. */
#define PAD_NAME_SIZE 20

int32_t sd_tok_builder_alloc(sd_tok_builder *b, int32_t n, sd_error *err) {
    b->n = n;
    b->tokens = sd_malloc(sizeof(char *) * (size_t)n);
    b->lens = sd_malloc(sizeof(size_t) * (size_t)n);
    b->types = sd_malloc(sizeof(int32_t) * (size_t)n);
    b->pad_names = sd_malloc((size_t)n * PAD_NAME_SIZE);
    if (!b->tokens || !b->lens || !b->types || !b->pad_names)
        return sd_fail(err, SMDIFF_E_NOMEM, "out of memory (vocabulary)");
    for (int32_t i = 0; i < n; i++) {
        char *name = b->pad_names + (size_t)i * PAD_NAME_SIZE;
        b->lens[i] = (size_t)snprintf(name, PAD_NAME_SIZE, "[PAD%d]", (int)i);
        b->tokens[i] = name;
        b->types[i] = SD_TOKEN_UNUSED;
    }
    return SMDIFF_OK;
}

void sd_tok_builder_set(sd_tok_builder *b, int64_t id, const char *text, size_t len, int32_t type) {
    b->tokens[id] = text;
    b->lens[id] = len;
    b->types[id] = type;
}

int32_t sd_tok_builder_find(const sd_tok_builder *b, const char *s) {
    if (!s) return -1;
    size_t len = strlen(s);
    for (int32_t i = b->n - 1; i >= 0; i--) /* added tokens sit at the end */
        if (b->lens[i] == len && memcmp(b->tokens[i], s, len) == 0) return i;
    return -1;
}

int32_t sd_tok_builder_create(const sd_tok_builder *b, sd_tokenizer **out, sd_error *err) {
    sd_tokenizer_spec s;
    memset(&s, 0, sizeof s);
    s.n_tokens = b->n;
    s.tokens = b->tokens;
    s.token_lens = b->lens;
    s.token_types = b->types;
    s.n_merges = b->n_merges;
    s.merges = b->merges;
    s.merge_lens = b->merge_lens;
    s.pre = b->pre;
    s.pre_regex = b->pre_regex;
    s.normalizer = b->normalizer;
    s.bos_id = b->special[0];
    s.eos_id = b->special[1];
    s.pad_id = b->special[2];
    s.mask_id = b->special[3];
    s.add_bos = b->add_bos;
    s.ignore_merges = b->ignore_merges;
    return sd_tokenizer_create(&s, out, err);
}
