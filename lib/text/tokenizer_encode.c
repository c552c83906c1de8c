/* tokenizer_encode.c -- text to ids and back: added tokens, the declared
 * normaliser, the pre-tokenizer regexes, BPE with a per-call cache, and
 * decoding. See tokenizer.h for the pipeline, tokenizer_impl.h for the
 * tables it reads.
 */
#include <string.h>

#include "core/alloc.h"
#include "tokenizer_impl.h"
#include "utf8.h"

#define CACHE_MAX_WORD 256      /* longer pre-tokens are not cached */
#define CACHE_MAX_ENTRIES (1u << 17) /* ~6 MB of table at most; then it starts over */

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
    pcre2_match_data *md[SD_TOK_MAX_REGEX];
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
    sd_norm_buf norm;    /* the normalised text of the current segment */
    sd_pretoken_fn visit;/* pretokenize: called per piece instead of encoding */
    void *user;
    int stopped;         /* visit's nonzero answer, which stopped the run */
    int32_t rc;          /* a failure with its message in the thread's slot */
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
    const sd_merge_ent *m = sd_tok_merge_find(t, s[pos].id, s[s[pos].next].id);
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
        for (size_t i = 0; i < n; i++) k += sd_byte_level_char(w[i], st->bl + k);
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
        const sd_merge_ent *e = &t->byte_pairs[(s[i].byte << 8) | s[i + 1].byte];
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
    uint64_t hv = sd_tok_hash_bytes(w, n) | 1;
    uint64_t i = hv & st->cmask;
    while (st->ctab[i].hash) {
        cache_ent *e = &st->ctab[i];
        if (e->hash == hv && e->key_len == n && memcmp(st->ckeys + e->key_off, w, n) == 0) {
            if (grow((void **)&st->ids, &st->cap_ids, st->n_ids + e->n_ids, sizeof(int32_t))) return -1;
            if (e->n_ids) memcpy(st->ids + st->n_ids, st->cids + e->ids_off, sizeof(int32_t) * e->n_ids);
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
    /* a word may encode to no id (bytes outside a small vocabulary): no
     * arithmetic on the still-NULL buffers then */
    if (n) memcpy(st->ckeys + st->ckeys_len, w, n);
    if (k) memcpy(st->cids + st->cids_len, st->ids + first, sizeof(int32_t) * k);
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

/* A piece of text: a pre-token (id -1) to encode, or an added token. */
static int emit(enc_state *st, const uint8_t *s, size_t n, int32_t id) {
    if (st->visit) {
        st->stopped = st->visit(st->user, (const char *)s, n);
        return st->stopped ? -1 : 0;
    }
    return id >= 0 ? push_id(st, id) : encode_pretoken(st, s, n);
}

/* Split s[0..n) with regex `level` and hand every match and every gap
 * between matches to the next level; after the last level, BPE. */
static int split_level(enc_state *st, int level, const uint8_t *s, size_t n) {
    const sd_tokenizer *t = st->t;
    if (level == t->n_re) return emit(st, s, n, -1);
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
            size_t cl = sd_utf8_get(s + a, n - a, &cp);
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
static const sd_special_ent *match_special(const sd_tokenizer *t, const uint8_t *s, size_t n,
                                        int parse_special) {
    int b = s[0];
    for (int32_t i = t->bucket_lo[b]; i < t->bucket_hi[b]; i++) {
        const sd_special_ent *e = &t->specials[i];
        if (e->len <= n && memcmp(e->text, s, e->len) == 0 &&
            (parse_special || t->types[e->id] == SD_TOKEN_USER_DEFINED))
            return e;
    }
    return NULL;
}

static void enc_state_free(enc_state *st) {
    for (int i = 0; i < SD_TOK_MAX_REGEX; i++) pcre2_match_data_free(st->md[i]);
    sd_free(st->ids);
    sd_free(st->syms);
    sd_free(st->heap);
    sd_free(st->bl);
    sd_free(st->ctab);
    sd_free(st->ckeys);
    sd_free(st->cids);
    sd_norm_buf_free(&st->norm);
}

static int32_t enc_state_init(enc_state *st, const sd_tokenizer *t, sd_error *err) {
    memset(st, 0, sizeof *st);
    st->t = t;
    for (int i = 0; i < t->n_re; i++) {
        st->md[i] = pcre2_match_data_create_from_pattern(t->re[i], t->gctx);
        if (!st->md[i]) {
            enc_state_free(st);
            return sd_fail(err, SMDIFF_E_NOMEM, "out of memory (regex match data)");
        }
    }
    return SMDIFF_OK;
}

/* Text between two added tokens: the normaliser (as Hugging Face
 * tokenizers applies it, to the pieces between added tokens), then the
 * pre-tokenizer. */
static int encode_segment(enc_state *st, const uint8_t *s, size_t n) {
    const uint8_t *ns;
    size_t nn;
    if (sd_utf8_normalize(st->t->normalizer, s, n, &st->norm, &ns, &nn)) return -1;
    return split_level(st, 0, ns, nn);
}

/* Cut s[0..n) at added tokens (leftmost, longest) and pass the pieces on. */
static int encode_text(enc_state *st, const uint8_t *s, size_t n, int parse_special) {
    const sd_tokenizer *t = st->t;
    size_t seg = 0, i = 0;
    while (i < n) {
        const sd_special_ent *e = NULL;
        if (t->bucket_hi[s[i]] > t->bucket_lo[s[i]]) e = match_special(t, s + i, n - i, parse_special);
        if (!e) {
            i++;
            continue;
        }
        if (i > seg && encode_segment(st, s + seg, i - seg)) return -1;
        if (emit(st, s + i, e->len, e->id)) return -1;
        i += e->len;
        seg = i;
    }
    return n > seg ? encode_segment(st, s + seg, n - seg) : 0;
}

/* The code and message of a failed run. */
static int32_t enc_failure(const enc_state *st, sd_error *err) {
    if (st->rc) return sd_error_forward(err, sd_tls_error());
    return sd_fail(err, SMDIFF_E_NOMEM, "out of memory while tokenizing");
}

int32_t sd_tokenizer_encode(const sd_tokenizer *t, const char *text, size_t n_bytes, int32_t flags,
                            int32_t *ids, size_t cap, size_t *n_out, sd_error *err) {
    if (!t || (!text && n_bytes) || !n_out || (!ids && cap))
        return sd_fail(err, SMDIFF_E_INVAL, "tokenize: invalid argument");
    enc_state st;
    int32_t rc = enc_state_init(&st, t, err);
    if (rc) return rc;
    int fail = 0;
    if ((flags & SD_TOK_ADD_BOS) && t->add_bos && t->bos >= 0) fail = push_id(&st, t->bos);
    if (!fail) fail = encode_text(&st, (const uint8_t *)text, n_bytes, (flags & SD_TOK_PARSE_SPECIAL) != 0);
    if (fail) {
        rc = enc_failure(&st, err);
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

int sd_tokenizer_pretokenize(const sd_tokenizer *t, const char *text, size_t n, int32_t flags,
                             sd_pretoken_fn fn, void *ud, sd_error *err) {
    if (!t || (!text && n) || !fn) {
        sd_fail(err, SMDIFF_E_INVAL, "pretokenize: invalid argument");
        return -1;
    }
    enc_state st;
    if (enc_state_init(&st, t, err)) return -1;
    st.visit = fn;
    st.user = ud;
    int ret = 0;
    if (encode_text(&st, (const uint8_t *)text, n, (flags & SD_TOK_PARSE_SPECIAL) != 0))
        ret = st.stopped ? st.stopped : (enc_failure(&st, err), -1);
    enc_state_free(&st);
    return ret;
}

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

