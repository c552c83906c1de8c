/* tokenizer_gguf.c -- a tokenizer from GGUF metadata and back: the keys
 * llama.cpp's converter writes,
 *   tokenizer.ggml.model        "gpt2" (byte-level BPE; the only kind here)
 *   tokenizer.ggml.pre          pre-tokenizer name ("gpt-2", "qwen2", ...)
 *   tokenizer.ggml.tokens       [n] strings
 *   tokenizer.ggml.token_type   [n] i32 (optional; NORMAL when absent)
 *   tokenizer.ggml.merges       [m] "LEFT RIGHT"
 *   tokenizer.ggml.{bos,eos,padding,mask}_token_id, add_bos_token
 * and smdiff's one addition, which llama.cpp has no key for:
 *   smdiff.tokenizer.normalizer "NFC", "NFD", "NFKC" or "NFKD": the Unicode
 *                               normaliser the original tokenizer declares
 *                               (absent: none, llama.cpp's behaviour)
 * Strings are used in place (the mapping outlives the call) and copied by
 * sd_tokenizer_create. */
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/log.h"
#include "io/gguf.h"
#include "tokenizer_impl.h"

#define SD_GGUF_KEY_NORMALIZER "smdiff.tokenizer.normalizer"

/* The normaliser key, if present. */
static int32_t read_normalizer(const sd_gguf *g, int32_t *out, sd_error *err) {
    sd_gguf_str v = {0};
    *out = SD_NORM_NONE;
    int32_t rc = sd_gguf_get_str(g, SD_GGUF_KEY_NORMALIZER, &v, err);
    if (rc == SMDIFF_E_NOT_FOUND) return SMDIFF_OK;
    if (rc) return rc;
    int32_t form = sd_norm_parse(v.ptr, (size_t)v.len);
    if (form < 0)
        return sd_fail(err, SMDIFF_E_UNSUPPORTED, "%s \"%.*s\" is not a normaliser smdiff applies "
                       "(NFC, NFD, NFKC, NFKD)", SD_GGUF_KEY_NORMALIZER, (int)(v.len > 40 ? 40 : v.len), v.ptr);
    *out = form;
    return SMDIFF_OK;
}

static int32_t str_array(const sd_gguf *g, const char *key, const char ***ptrs, size_t **lens,
                         uint64_t *count, int required, sd_error *err) {
    uint32_t type = 0;
    *ptrs = NULL;
    *lens = NULL;
    *count = 0;
    int32_t rc = sd_gguf_get_arr(g, key, &type, count, err);
    if (rc == SMDIFF_E_NOT_FOUND && !required) return SMDIFF_OK;
    if (rc) return rc == SMDIFF_E_NOT_FOUND ? sd_fail(err, SMDIFF_E_FORMAT, "GGUF has no %s", key) : rc;
    if (type != SD_GGUF_STRING) return sd_fail(err, SMDIFF_E_FORMAT, "%s is not an array of strings", key);
    if (*count > (uint64_t)INT32_MAX) return sd_fail(err, SMDIFF_E_FORMAT, "%s has too many entries", key);
    size_t n = (size_t)*count;
    *ptrs = sd_malloc(sizeof(char *) * (n ? n : 1));
    *lens = sd_malloc(sizeof(size_t) * (n ? n : 1));
    if (!*ptrs || !*lens) return sd_fail(err, SMDIFF_E_NOMEM, "out of memory reading %s", key);
    if (n == 0) return SMDIFF_OK;
    /* GGUF stores a string array as consecutive (u64 length, bytes) pairs,
     * and the reader has validated the whole array. Walking it directly
     * saves a key lookup per element (300k of them for a Qwen2 vocabulary);
     * the walk must land exactly on the reader's last element, otherwise
     * fall back to one accessor call per element. */
    sd_gguf_str first, last;
    if (sd_gguf_arr_str(g, key, 0, &first) == SMDIFF_OK && sd_gguf_arr_str(g, key, n - 1, &last) == SMDIFF_OK) {
        const char *p = first.ptr;
        uint64_t len = first.len;
        size_t i = 0;
        for (;;) {
            (*ptrs)[i] = p;
            (*lens)[i] = (size_t)len;
            if (++i == n) break;
            p += len;
            if (p + 8 > last.ptr) break;  /* the next length field must precede the last string */
            memcpy(&len, p, 8);
            p += 8;
        }
        if (i == n && (*ptrs)[n - 1] == last.ptr && (*lens)[n - 1] == last.len) return SMDIFF_OK;
    }
    for (size_t i = 0; i < n; i++) {
        sd_gguf_str s;
        if (sd_gguf_arr_str(g, key, i, &s) != SMDIFF_OK)
            return sd_fail(err, SMDIFF_E_FORMAT, "%s[%zu] is unreadable", key, i);
        (*ptrs)[i] = s.ptr;
        (*lens)[i] = (size_t)s.len;
    }
    return SMDIFF_OK;
}

static int32_t opt_id(const sd_gguf *g, const char *key, int32_t *out, sd_error *err) {
    int64_t v = -1;
    *out = -1;
    int32_t rc = sd_gguf_get_i64(g, key, &v, err);
    if (rc == SMDIFF_E_NOT_FOUND) return SMDIFF_OK;
    if (rc) return rc;
    if (v < 0 || v > INT32_MAX) return sd_fail(err, SMDIFF_E_FORMAT, "%s = %lld is not a token id", key, (long long)v);
    *out = (int32_t)v;
    return SMDIFF_OK;
}

int32_t sd_tokenizer_from_gguf(const sd_gguf *g, sd_tokenizer **out, sd_error *err) {
    if (!g || !out) return sd_fail(err, SMDIFF_E_INVAL, "sd_tokenizer_from_gguf: NULL argument");
    *out = NULL;
    sd_gguf_str model = {0}, pre = {0};
    int32_t rc = sd_gguf_get_str(g, "tokenizer.ggml.model", &model, err);
    if (rc == SMDIFF_E_NOT_FOUND) return sd_fail(err, SMDIFF_E_NOT_FOUND, "GGUF has no tokenizer (tokenizer.ggml.model)");
    if (rc) return rc;
    if (model.len != 4 || memcmp(model.ptr, "gpt2", 4))
        return sd_fail(err, SMDIFF_E_UNSUPPORTED, "tokenizer.ggml.model \"%.*s\" is not supported "
                       "(only byte-level BPE, \"gpt2\")", (int)(model.len > 40 ? 40 : model.len), model.ptr);
    char pre_name[64] = "gpt2";
    rc = sd_gguf_get_str(g, "tokenizer.ggml.pre", &pre, err);
    if (rc == SMDIFF_E_NOT_FOUND) {
        SD_LOGW("tokenizer: GGUF has no tokenizer.ggml.pre; using the GPT-2 pre-tokenizer");
    } else if (rc) {
        return rc;
    } else {
        if (pre.len >= sizeof pre_name) return sd_fail(err, SMDIFF_E_FORMAT, "tokenizer.ggml.pre is too long");
        memcpy(pre_name, pre.ptr, pre.len);
        pre_name[pre.len] = '\0';
    }
    const char **tokens = NULL, **merges = NULL;
    size_t *tok_lens = NULL, *merge_lens = NULL;
    int32_t *types = NULL;
    uint64_t n_tok = 0, n_merge = 0;
    sd_tokenizer_spec s;
    memset(&s, 0, sizeof s);
    rc = str_array(g, "tokenizer.ggml.tokens", &tokens, &tok_lens, &n_tok, 1, err);
    if (!rc) rc = str_array(g, "tokenizer.ggml.merges", &merges, &merge_lens, &n_merge, 0, err);
    if (!rc) {
        uint32_t type = 0;
        uint64_t n = 0;
        int32_t r2 = sd_gguf_get_arr(g, "tokenizer.ggml.token_type", &type, &n, err);
        if (r2 == SMDIFF_OK) {
            if (n != n_tok) {
                rc = sd_fail(err, SMDIFF_E_FORMAT, "tokenizer.ggml.token_type has %llu entries for %llu tokens",
                             (unsigned long long)n, (unsigned long long)n_tok);
            } else {
                types = sd_malloc(sizeof(int32_t) * (size_t)(n ? n : 1));
                if (!types) rc = sd_fail(err, SMDIFF_E_NOMEM, "out of memory reading token types");
                for (uint64_t i = 0; !rc && i < n; i++) {
                    int64_t v = 0;
                    if (sd_gguf_arr_i64(g, "tokenizer.ggml.token_type", i, &v) != SMDIFF_OK || v < 1 || v > 6)
                        rc = sd_fail(err, SMDIFF_E_FORMAT, "tokenizer.ggml.token_type[%llu] is invalid",
                                     (unsigned long long)i);
                    else types[i] = (int32_t)v;
                }
            }
        } else if (r2 != SMDIFF_E_NOT_FOUND) {
            rc = r2;
        }
    }
    if (!rc) rc = opt_id(g, "tokenizer.ggml.bos_token_id", &s.bos_id, err);
    if (!rc) rc = opt_id(g, "tokenizer.ggml.eos_token_id", &s.eos_id, err);
    if (!rc) rc = opt_id(g, "tokenizer.ggml.padding_token_id", &s.pad_id, err);
    if (!rc) rc = opt_id(g, "tokenizer.ggml.mask_token_id", &s.mask_id, err);
    if (!rc) {
        int ab = 0;
        int32_t r2 = sd_gguf_get_bool(g, "tokenizer.ggml.add_bos_token", &ab, err);
        if (r2 == SMDIFF_OK) s.add_bos = ab;
        else if (r2 != SMDIFF_E_NOT_FOUND) rc = r2;
    }
    if (!rc) rc = read_normalizer(g, &s.normalizer, err);
    if (!rc) {
        s.n_tokens = (int32_t)n_tok;
        s.tokens = tokens;
        s.token_lens = tok_lens;
        s.token_types = types;
        s.n_merges = (int64_t)n_merge;
        s.merges = merges;
        s.merge_lens = merge_lens;
        s.pre = pre_name;
        rc = sd_tokenizer_create(&s, out, err);
    }
    sd_free(tokens);
    sd_free(tok_lens);
    sd_free(merges);
    sd_free(merge_lens);
    sd_free(types);
    return rc;
}

/* ------------------------------------------------------------- writing */

static int cmp_rank(const void *a, const void *b) {
    const sd_merge_ent *x = *(const sd_merge_ent *const *)a, *y = *(const sd_merge_ent *const *)b;
    return (x->rank > y->rank) - (x->rank < y->rank);
}

int32_t sd_tokenizer_to_gguf(const sd_tokenizer *t, sd_gguf_writer *w, sd_error *err) {
    if (!t || !w) return sd_fail(err, SMDIFF_E_INVAL, "sd_tokenizer_to_gguf: NULL argument");
    if (t->n_re == 1 && !sd_tokenizer_pre_known(t->pre))
        return sd_fail(err, SMDIFF_E_UNSUPPORTED, "a tokenizer with a custom split regex has no "
                       "tokenizer.ggml.pre name to write");
    size_t n = (size_t)t->n_vocab, m = (size_t)t->n_merges_used;
    const char **tok = sd_malloc(sizeof(char *) * n);
    uint64_t *tlen = sd_malloc(sizeof(uint64_t) * n);
    int32_t *types = sd_malloc(sizeof(int32_t) * n);
    const sd_merge_ent **ents = sd_malloc(sizeof(sd_merge_ent *) * (m ? m : 1));
    const char **mer = sd_malloc(sizeof(char *) * (m ? m : 1));
    uint64_t *mlen = sd_malloc(sizeof(uint64_t) * (m ? m : 1));
    char *blob = NULL;
    int32_t rc = SMDIFF_OK;
    if (!tok || !tlen || !types || !ents || !mer || !mlen) rc = sd_fail(err, SMDIFF_E_NOMEM, "out of memory");
    size_t total = 0, k = 0;
    if (!rc) {
        for (size_t i = 0; i < n; i++) {
            size_t l;
            tok[i] = sd_tok_text(t, (int32_t)i, &l);
            tlen[i] = l;
            types[i] = t->types[i];
        }
        for (uint64_t i = 0; i <= t->merge_mask; i++)
            if (t->merge_tab[i].key) ents[k++] = &t->merge_tab[i];
        qsort(ents, k, sizeof ents[0], cmp_rank);
        for (size_t i = 0; i < k; i++) {
            uint64_t key = ents[i]->key - 1;
            size_t a, b;
            sd_tok_text(t, (int32_t)(key >> 32), &a);
            sd_tok_text(t, (int32_t)(uint32_t)key, &b);
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
            const char *l = sd_tok_text(t, (int32_t)(key >> 32), &a);
            const char *r = sd_tok_text(t, (int32_t)(uint32_t)key, &b);
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
        /* llama.cpp has no key for a BPE normaliser: smdiff's own, written
         * only when there is one, so files without it stay as they were */
        if (!r && t->normalizer != SD_NORM_NONE)
            r = sd_gguf_set_str(w, SD_GGUF_KEY_NORMALIZER, sd_norm_name(t->normalizer));
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
