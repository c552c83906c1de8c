/* bpe_train.c -- byte-level BPE training (bpe_train.h).
 *
 * 1. Every document is split into pre-tokens by the named pre-tokenizer
 *    (the encoder's own regex stage) and the distinct pre-tokens ("words")
 *    are counted in a hash table. Merges never cross a pre-token.
 * 2. Each word becomes a sequence of byte ids. A pair table counts every
 *    adjacent pair (overlapping ones included: "aaa" holds (a,a) twice),
 *    weighted by the word's frequency, and lists the words that hold it.
 * 3. Repeatedly the pair with the highest count is merged (ties: smallest
 *    left id, then smallest right id -- a total order, so the result does
 *    not depend on hash or heap order). Its words are rewritten left to
 *    right, and only the counts around each merged position change:
 *    L A B R -> L C R removes (L,A), (A,B), (B,R) and adds (L,C), (C,R),
 *    with L already rewritten and R not yet -- so the counts always equal
 *    those of a full recount of the current words.
 *    If the merged bytes already are a token (two merge paths can spell
 *    the same string), that token is reused and the vocabulary does not
 *    grow; training stops when it has vocab_size - n_specials tokens.
 * 4. A max-heap holds (count, pair) entries lazily: counts only change by
 *    a merge, every pair whose count rises is pushed again with its new
 *    count, and a popped entry whose count is stale is pushed back with the
 *    current count (if it fell) or dropped (if it rose: a newer entry
 *    exists). An entry popped with its current count is the maximum.
 *
 * Naive reference (tests/ref/bpe_train_ref.py implements this, and the
 * tests compare merges):
 *   while tokens < target:
 *     count all adjacent pairs of all words, weighted by frequency
 *     pick the max by (count desc, left asc, right asc); stop if none
 *     new token = bytes(left) + bytes(right), or the existing one
 *     rewrite every word left to right, merging each (left, right)
 *
 * Memory: the distinct words (bytes, then 4 bytes per symbol), the pair
 * table, and 8 bytes per (pair, word) list entry; the corpus itself is
 * read one document at a time.
 */
#include <string.h>

#include "bpe_train.h"
#include "core/alloc.h"
#include "io/gguf.h"
#include "io/walk.h"

/* ------------------------------------------------------------- helpers */

/* Make room for need elements of size elem in *p (capacity *cap). */
static int reserve(void *p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return 0;
    size_t nc = *cap ? *cap : 256, bytes;
    while (nc < need) nc += nc / 2 + 1;
    if (sd_mul_size(nc, elem, &bytes)) return -1;
    void *np = sd_realloc(*(void **)p, bytes);
    if (!np) return -1;
    *(void **)p = np;
    *cap = nc;
    return 0;
}

/* FNV-1a with a final avalanche: words are short, so per-byte cost is fine. */
static uint64_t hash_str(const uint8_t *s, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) h = (h ^ s[i]) * 0x100000001b3ull;
    h ^= h >> 32;
    h *= 0xd6e8feb86659fd93ull;
    h ^= h >> 32;
    return h;
}

static uint64_t hash_key(uint64_t x) {
    x ^= x >> 31;
    x *= 0x7fb5d329728ea185ull;
    x ^= x >> 27;
    x *= 0x81dadef4bc2dd44dull;
    x ^= x >> 33;
    return x;
}

/* A set of byte strings with ids 0.., stored in one arena: the distinct
 * words while counting, and the tokens' bytes while merging. */
typedef struct strset {
    uint8_t *bytes;
    size_t n_bytes, cap_bytes;
    uint64_t *off;      /* [n + 1] */
    uint64_t *hash;     /* [n] */
    size_t n, cap_off, cap_hash;
    int32_t *tab;       /* open addressing, -1 = empty */
    size_t mask;
} strset;

static void strset_free(strset *s) {
    sd_free(s->bytes);
    sd_free(s->off);
    sd_free(s->hash);
    sd_free(s->tab);
    memset(s, 0, sizeof *s);
}

static int strset_rehash(strset *s, size_t size) {
    int32_t *tab = sd_malloc(size * sizeof(int32_t));
    if (!tab) return -1;
    memset(tab, 0xFF, size * sizeof(int32_t));
    for (size_t i = 0; i < s->n; i++) {
        size_t j = s->hash[i] & (size - 1);
        while (tab[j] >= 0) j = (j + 1) & (size - 1);
        tab[j] = (int32_t)i;
    }
    sd_free(s->tab);
    s->tab = tab;
    s->mask = size - 1;
    return 0;
}

/* Id of str[0..n) in s, adding it if absent (*added = 1); -1 on NOMEM. */
static int64_t strset_put(strset *s, const uint8_t *str, size_t n, int *added) {
    if (!s->tab && strset_rehash(s, 1024)) return -1;
    uint64_t h = hash_str(str, n);
    size_t j = h & s->mask;
    for (int32_t id; (id = s->tab[j]) >= 0; j = (j + 1) & s->mask)
        if (s->hash[id] == h && s->off[id + 1] - s->off[id] == n && !memcmp(s->bytes + s->off[id], str, n)) {
            *added = 0;
            return id;
        }
    *added = 1;
    if (s->n >= INT32_MAX - 1) return -1;
    if (reserve(&s->bytes, &s->cap_bytes, s->n_bytes + n, 1) ||
        reserve(&s->off, &s->cap_off, s->n + 2, sizeof(uint64_t)) ||
        reserve(&s->hash, &s->cap_hash, s->n + 1, sizeof(uint64_t)))
        return -1;
    if (s->n == 0) s->off[0] = 0;
    memcpy(s->bytes + s->n_bytes, str, n);
    s->n_bytes += n;
    s->hash[s->n] = h;
    s->off[s->n + 1] = s->n_bytes;
    s->tab[j] = (int32_t)s->n;
    s->n++;
    if (s->n * 2 > s->mask && strset_rehash(s, (s->mask + 1) * 2)) return -1;
    return (int64_t)s->n - 1;
}

/* ------------------------------------------------------- the trainer */

typedef struct pair_ent {
    uint64_t key;     /* (left << 32 | right) + 1; 0 = empty slot */
    int64_t count;    /* weighted occurrences in the current words */
    int32_t head;     /* first node of the list of words holding it, -1 none */
    int32_t stamp;    /* merge number that last raised it (heap push once) */
} pair_ent;

typedef struct node {
    int32_t word, next;
} node;

typedef struct heap_ent {
    int64_t count;
    int32_t left, right;
} heap_ent;

typedef struct bpe {
    const sd_bpe_params *p;
    sd_error *err;
    sd_tokenizer *splitter;   /* bytes-only tokenizer: its pre-token split */
    smdiff_tokenizer_train_progress prog;
    /* words */
    strset words;
    int64_t *freq;
    size_t cap_freq;
    int32_t *sym;             /* all words' symbols, word w at sym[wo[w]] */
    uint64_t *wo;             /* [n_words + 1] */
    uint32_t *wlen;           /* current length of each word */
    int32_t *wstamp;          /* merge number that last rewrote the word */
    /* pairs */
    pair_ent *pairs;
    size_t pmask, pused;
    node *nodes;
    size_t n_nodes, cap_nodes;
    heap_ent *heap;
    size_t n_heap, cap_heap;
    uint64_t *raised_keys;    /* pairs raised by the current merge (by key:
                                 slots move when the table grows) */
    size_t n_raised, cap_raised;
    /* result */
    strset toks;              /* token bytes, id = token id */
    int32_t *merges;          /* [2 * n_merges] left, right */
    size_t n_merges, cap_merges;
} bpe;

static int32_t nomem(bpe *b) { return sd_fail(b->err, SMDIFF_E_NOMEM, "tokenizer training: out of memory"); }

/* sd_pretoken_fn: count one pre-token. */
static int count_word(void *ud, const char *piece, size_t len) {
    bpe *b = ud;
    int added;
    int64_t id = strset_put(&b->words, (const uint8_t *)piece, len, &added);
    if (id < 0 || reserve(&b->freq, &b->cap_freq, (size_t)id + 1, sizeof(int64_t))) return 1;
    if (added) b->freq[id] = 0;
    b->freq[id]++;
    return 0;
}

static int32_t report(bpe *b) {
    if (b->p->progress && b->p->progress(&b->prog, b->p->progress_ud))
        return sd_fail(b->err, SMDIFF_E_ABORTED, "tokenizer training: stopped by the progress callback");
    return SMDIFF_OK;
}

/* sd_walk_fn: one document. */
static int32_t read_document(void *ud, const char *path, const char *text, size_t len, sd_error *err) {
    bpe *b = ud;
    int rc = sd_tokenizer_pretokenize(b->splitter, text, len, 0, count_word, b, err);
    if (rc > 0) return nomem(b);
    if (rc) return err->code ? err->code : SMDIFF_E_INTERNAL;
    b->prog.n_documents++;
    b->prog.n_bytes += len;
    b->prog.n_words = b->words.n;
    return report(b);
}

/* Pair slot of (l, r), created with count 0 if absent; SIZE_MAX on NOMEM. */
static size_t pair_slot(bpe *b, int32_t l, int32_t r) {
    uint64_t key = (((uint64_t)(uint32_t)l << 32) | (uint32_t)r) + 1;
    if ((b->pused + 1) * 2 > b->pmask + 1) {
        size_t size = (b->pmask + 1) * 2;
        pair_ent *t = sd_calloc(size, sizeof(pair_ent));
        if (!t) return SIZE_MAX;
        for (size_t i = 0; i <= b->pmask; i++) {
            if (!b->pairs[i].key) continue;
            size_t j = hash_key(b->pairs[i].key) & (size - 1);
            while (t[j].key) j = (j + 1) & (size - 1);
            t[j] = b->pairs[i];
        }
        sd_free(b->pairs);
        b->pairs = t;
        b->pmask = size - 1;
    }
    size_t j = hash_key(key) & b->pmask;
    while (b->pairs[j].key && b->pairs[j].key != key) j = (j + 1) & b->pmask;
    if (!b->pairs[j].key) {
        b->pairs[j] = (pair_ent){key, 0, -1, -1};
        b->pused++;
    }
    return j;
}

/* Add delta to the count of (l, r) for word w; a rise also lists w under
 * the pair and marks the pair for a heap push. 0 or -1 (NOMEM). */
static int pair_add(bpe *b, int32_t l, int32_t r, int64_t delta, int32_t w, int32_t merge_no) {
    size_t j = pair_slot(b, l, r);
    if (j == SIZE_MAX) return -1;
    pair_ent *e = &b->pairs[j];
    e->count += delta;
    if (delta <= 0) return 0;
    if (e->head < 0 || b->nodes[e->head].word != w) {
        if (b->n_nodes >= INT32_MAX || reserve(&b->nodes, &b->cap_nodes, b->n_nodes + 1, sizeof(node)))
            return -1;
        b->nodes[b->n_nodes] = (node){w, e->head};
        e->head = (int32_t)b->n_nodes++;
    }
    if (e->stamp != merge_no) {
        e->stamp = merge_no;
        if (reserve(&b->raised_keys, &b->cap_raised, b->n_raised + 1, sizeof(uint64_t))) return -1;
        b->raised_keys[b->n_raised++] = e->key;
    }
    return 0;
}

static int heap_before(const heap_ent *a, const heap_ent *c) {
    if (a->count != c->count) return a->count > c->count;
    if (a->left != c->left) return a->left < c->left;
    return a->right < c->right;
}

static int heap_push(bpe *b, heap_ent e) {
    if (reserve(&b->heap, &b->cap_heap, b->n_heap + 1, sizeof(heap_ent))) return -1;
    size_t i = b->n_heap++;
    while (i > 0 && heap_before(&e, &b->heap[(i - 1) / 2])) {
        b->heap[i] = b->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    b->heap[i] = e;
    return 0;
}

static heap_ent heap_pop(bpe *b) {
    heap_ent top = b->heap[0], last = b->heap[--b->n_heap];
    size_t i = 0, n = b->n_heap;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && heap_before(&b->heap[c + 1], &b->heap[c])) c++;
        if (!heap_before(&b->heap[c], &last)) break;
        b->heap[i] = b->heap[c];
        i = c;
    }
    if (n) b->heap[i] = last;
    return top;
}

/* Words to symbol sequences, initial pair counts and lists, the heap. */
static int32_t init_pairs(bpe *b) {
    size_t nw = b->words.n;
    b->wo = sd_malloc((nw + 1) * sizeof(uint64_t));
    b->wlen = sd_malloc((nw ? nw : 1) * sizeof(uint32_t));
    b->wstamp = sd_malloc((nw ? nw : 1) * sizeof(int32_t));
    b->sym = sd_malloc((b->words.n_bytes ? b->words.n_bytes : 1) * sizeof(int32_t));
    b->pairs = sd_calloc(1024, sizeof(pair_ent));
    b->pmask = 1023;
    if (!b->wo || !b->wlen || !b->wstamp || !b->sym || !b->pairs) return nomem(b);
    for (size_t w = 0; w < nw; w++) {
        uint64_t o = b->words.off[w], n = b->words.off[w + 1] - o;
        if (n > UINT32_MAX) return sd_fail(b->err, SMDIFF_E_INVAL, "tokenizer training: a pre-token of "
                                           "%llu bytes is too long", (unsigned long long)n);
        b->wo[w] = o;
        b->wlen[w] = (uint32_t)n;
        b->wstamp[w] = -1;
        for (uint64_t i = 0; i < n; i++) b->sym[o + i] = b->words.bytes[o + i];
        for (uint64_t i = 0; i + 1 < n; i++)
            if (pair_add(b, b->sym[o + i], b->sym[o + i + 1], b->freq[w], (int32_t)w, 0)) return nomem(b);
    }
    b->wo[nw] = b->words.n_bytes;
    for (size_t i = 0; i <= b->pmask; i++) {
        const pair_ent *e = &b->pairs[i];
        if (e->key && e->count > 0 &&
            heap_push(b, (heap_ent){e->count, (int32_t)((e->key - 1) >> 32), (int32_t)(uint32_t)(e->key - 1)}))
            return nomem(b);
    }
    b->n_raised = 0;
    return SMDIFF_OK;
}

/* Rewrite word w, merging every (l, r) left to right into c, with the
 * count changes of each merged position. 0 or -1 (NOMEM). */
static int merge_word(bpe *b, int32_t w, int32_t l, int32_t r, int32_t c, int32_t merge_no) {
    int32_t *s = b->sym + b->wo[w];
    uint32_t n = b->wlen[w], k = 0;
    int64_t f = b->freq[w];
    for (uint32_t i = 0; i < n;) {
        if (i + 1 < n && s[i] == l && s[i + 1] == r) {
            /* s[0..k) is rewritten, s[i + 2..n) not yet: L = s[k - 1], R = s[i + 2] */
            if (pair_add(b, l, r, -f, w, merge_no)) return -1;
            if (k > 0 && (pair_add(b, s[k - 1], l, -f, w, merge_no) || pair_add(b, s[k - 1], c, f, w, merge_no)))
                return -1;
            if (i + 2 < n && (pair_add(b, r, s[i + 2], -f, w, merge_no) || pair_add(b, c, s[i + 2], f, w, merge_no)))
                return -1;
            s[k++] = c;
            i += 2;
        } else {
            s[k++] = s[i++];
        }
    }
    b->wlen[w] = k;
    return 0;
}

/* The best pair by (count, tie rule), or count 0 if none is left. */
static int32_t best_pair(bpe *b, heap_ent *best) {
    while (b->n_heap) {
        heap_ent e = heap_pop(b);
        size_t j = pair_slot(b, e.left, e.right);
        if (j == SIZE_MAX) return nomem(b);
        int64_t now = b->pairs[j].count;
        if (now == e.count && now > 0) {
            *best = e;
            return SMDIFF_OK;
        }
        if (now > 0 && now < e.count && heap_push(b, (heap_ent){now, e.left, e.right})) return nomem(b);
    }
    best->count = 0;
    return SMDIFF_OK;
}

/* One merge: the new (or reused) token, every word holding the pair
 * rewritten, the raised pairs pushed. */
static int32_t merge_once(bpe *b, const heap_ent *best) {
    int32_t l = best->left, r = best->right, merge_no = (int32_t)b->n_merges + 1;
    size_t ll = b->toks.off[l + 1] - b->toks.off[l], rl = b->toks.off[r + 1] - b->toks.off[r];
    uint8_t *cat = sd_malloc(ll + rl);
    if (!cat) return nomem(b);
    memcpy(cat, b->toks.bytes + b->toks.off[l], ll);
    memcpy(cat + ll, b->toks.bytes + b->toks.off[r], rl);
    int added;
    int64_t c = strset_put(&b->toks, cat, ll + rl, &added);
    sd_free(cat);
    if (c < 0 || reserve(&b->merges, &b->cap_merges, 2 * b->n_merges + 2, sizeof(int32_t))) return nomem(b);
    b->merges[2 * b->n_merges] = l;
    b->merges[2 * b->n_merges + 1] = r;
    b->n_merges++;
    size_t j = pair_slot(b, l, r);
    if (j == SIZE_MAX) return nomem(b);
    int32_t nd = b->pairs[j].head;
    b->pairs[j].head = -1;
    for (; nd >= 0; nd = b->nodes[nd].next) {
        int32_t w = b->nodes[nd].word;
        if (b->wstamp[w] == merge_no) continue;  /* listed twice */
        b->wstamp[w] = merge_no;
        if (merge_word(b, w, l, r, (int32_t)c, merge_no)) return nomem(b);
    }
    for (size_t i = 0; i < b->n_raised; i++) {
        uint64_t key = b->raised_keys[i] - 1;
        int32_t pl = (int32_t)(key >> 32), pr = (int32_t)(uint32_t)key;
        size_t s = pair_slot(b, pl, pr);
        if (s == SIZE_MAX) return nomem(b);
        if (b->pairs[s].count > 0 && heap_push(b, (heap_ent){b->pairs[s].count, pl, pr})) return nomem(b);
    }
    b->n_raised = 0;
    return SMDIFF_OK;
}

/* --------------------------------------------------------- assembling */

static int is_one_of(const char *s, const char *const *names) {
    for (; *names; names++)
        if (!strcmp(s, *names)) return 1;
    return 0;
}

/* Byte-level text of token bytes s[0..n) into out (room for 2 n). */
static size_t byte_level(const uint8_t *s, size_t n, char *out) {
    size_t k = 0;
    for (size_t i = 0; i < n; i++) k += sd_byte_level_char(s[i], out + k);
    return k;
}

static int32_t build(bpe *b, sd_tokenizer **out) {
    const sd_bpe_params *p = b->p;
    size_t nt = b->toks.n, n = nt + p->n_specials, m = b->n_merges;
    char **tok = sd_calloc(n, sizeof(char *));
    size_t *tlen = sd_malloc(n * sizeof(size_t));
    int32_t *types = sd_malloc(n * sizeof(int32_t));
    char **mer = sd_calloc(m ? m : 1, sizeof(char *));
    int32_t rc = (!tok || !tlen || !types || !mer) ? nomem(b) : SMDIFF_OK;
    for (size_t i = 0; !rc && i < nt; i++) {
        size_t len = b->toks.off[i + 1] - b->toks.off[i];
        if (!(tok[i] = sd_malloc(2 * len + 1))) rc = nomem(b);
        else tlen[i] = byte_level(b->toks.bytes + b->toks.off[i], len, tok[i]);
        types[i] = SD_TOKEN_NORMAL;
    }
    static const char *const eos[] = {"<|endoftext|>", "</s>", "<|eos|>", NULL};
    static const char *const mask[] = {"<|mask|>", "<mask>", "[MASK]", NULL};
    static const char *const bos[] = {"<s>", "<|bos|>", "<|startoftext|>", NULL};
    static const char *const pad[] = {"<pad>", "<|pad|>", "[PAD]", NULL};
    sd_tokenizer_spec spec = {0};
    spec.bos_id = spec.eos_id = spec.pad_id = spec.mask_id = -1;
    for (size_t i = 0; !rc && i < p->n_specials; i++) {
        const char *s = p->specials[i];
        int32_t id = (int32_t)(nt + i);
        tok[nt + i] = (char *)s;  /* not freed: see below */
        tlen[nt + i] = strlen(s);
        types[nt + i] = SD_TOKEN_CONTROL;
        if (is_one_of(s, eos) && spec.eos_id < 0) spec.eos_id = id;
        if (is_one_of(s, mask) && spec.mask_id < 0) spec.mask_id = id;
        if (is_one_of(s, bos) && spec.bos_id < 0) spec.bos_id = id;
        if (is_one_of(s, pad) && spec.pad_id < 0) spec.pad_id = id;
    }
    for (size_t i = 0; !rc && i < m; i++) {
        int32_t l = b->merges[2 * i], r = b->merges[2 * i + 1];
        if (!(mer[i] = sd_malloc(tlen[l] + tlen[r] + 2))) {
            rc = nomem(b);
            break;
        }
        memcpy(mer[i], tok[l], tlen[l]);
        mer[i][tlen[l]] = ' ';
        memcpy(mer[i] + tlen[l] + 1, tok[r], tlen[r]);
        mer[i][tlen[l] + tlen[r] + 1] = '\0';
    }
    if (!rc) {
        spec.n_tokens = (int32_t)n;
        spec.tokens = (const char *const *)tok;
        spec.token_lens = tlen;
        spec.token_types = types;
        spec.n_merges = (int64_t)m;
        spec.merges = (const char *const *)mer;
        spec.pre = p->pre;
        rc = sd_tokenizer_create(&spec, out, b->err);
    }
    /* A special that spells a byte or a learned token would be shadowed. */
    for (size_t i = 0; !rc && i < p->n_specials; i++)
        if (sd_tokenizer_find(*out, tok[nt + i], tlen[nt + i]) != (int32_t)(nt + i)) {
            rc = sd_fail(b->err, SMDIFF_E_INVAL, "tokenizer training: special token \"%s\" has the text "
                         "of another token", p->specials[i]);
            sd_tokenizer_free(*out);
            *out = NULL;
        }
    for (size_t i = 0; tok && i < nt; i++) sd_free(tok[i]);
    for (size_t i = 0; mer && i < m; i++) sd_free(mer[i]);
    sd_free(tok);
    sd_free(tlen);
    sd_free(types);
    sd_free(mer);
    return rc;
}

/* --------------------------------------------------------------- entry */

static int32_t check_params(const char *const *paths, size_t n_paths, const sd_bpe_params *p, sd_error *err) {
    if (!paths || n_paths == 0 || !p)
        return sd_fail(err, SMDIFF_E_INVAL, "tokenizer training: no corpus paths");
    if (p->n_specials && !p->specials)
        return sd_fail(err, SMDIFF_E_INVAL, "tokenizer training: specials is NULL");
    for (size_t i = 0; i < p->n_specials; i++) {
        if (!p->specials[i] || !p->specials[i][0])
            return sd_fail(err, SMDIFF_E_INVAL, "tokenizer training: special token %zu is NULL or empty", i);
        for (size_t j = 0; j < i; j++)
            if (!strcmp(p->specials[i], p->specials[j]))
                return sd_fail(err, SMDIFF_E_INVAL, "tokenizer training: special token \"%s\" is given twice",
                               p->specials[i]);
    }
    if (p->n_specials > INT32_MAX - 256 || p->vocab_size < 256 + p->n_specials)
        return sd_fail(err, SMDIFF_E_INVAL, "tokenizer training: vocabulary size %zu is smaller than the "
                       "256 byte tokens plus %zu special tokens", p->vocab_size, p->n_specials);
    if (p->vocab_size > (size_t)1 << 24)
        return sd_fail(err, SMDIFF_E_INVAL, "tokenizer training: vocabulary size %zu is above the limit "
                       "of %d", p->vocab_size, 1 << 24);
    if (!p->pre || !sd_tokenizer_pre_known(p->pre))
        return sd_fail(err, SMDIFF_E_UNSUPPORTED, "tokenizer training: pre-tokenizer \"%s\" is not known "
                       "(gpt2, qwen2, llama-bpe, bailingmoe)", p->pre ? p->pre : "(null)");
    return SMDIFF_OK;
}

/* The 256 byte tokens and a tokenizer of them: its split is the corpus's. */
static int32_t init_bytes(bpe *b) {
    char *text[256];
    char buf[256 * 2];
    size_t len[256], k = 0;
    for (int i = 0; i < 256; i++) {
        int added;
        uint8_t c = (uint8_t)i;
        if (strset_put(&b->toks, &c, 1, &added) != i) return nomem(b);
        text[i] = buf + k;
        len[i] = sd_byte_level_char(c, buf + k);
        k += len[i];
    }
    sd_tokenizer_spec spec = {0};
    spec.n_tokens = 256;
    spec.tokens = (const char *const *)text;
    spec.token_lens = len;
    spec.pre = b->p->pre;
    spec.bos_id = spec.eos_id = spec.pad_id = spec.mask_id = -1;
    return sd_tokenizer_create(&spec, &b->splitter, b->err);
}

static void bpe_free(bpe *b) {
    sd_tokenizer_free(b->splitter);
    strset_free(&b->words);
    strset_free(&b->toks);
    sd_free(b->freq);
    sd_free(b->sym);
    sd_free(b->wo);
    sd_free(b->wlen);
    sd_free(b->wstamp);
    sd_free(b->pairs);
    sd_free(b->nodes);
    sd_free(b->heap);
    sd_free(b->raised_keys);
    sd_free(b->merges);
}

int32_t sd_bpe_train(const char *const *paths, size_t n_paths, const sd_bpe_params *p,
                     sd_tokenizer **out, sd_error *err) {
    if (!err) err = sd_tls_error();
    if (!out) return sd_fail(err, SMDIFF_E_INVAL, "tokenizer training: out is NULL");
    *out = NULL;
    int32_t rc = check_params(paths, n_paths, p, err);
    if (rc) return rc;
    bpe b;
    memset(&b, 0, sizeof b);
    b.p = p;
    b.err = err;
    size_t target = p->vocab_size - p->n_specials;
    b.prog.n_tokens_target = target;
    rc = init_bytes(&b);
    if (!rc) rc = sd_walk_documents(paths, n_paths, read_document, &b, err);
    if (!rc && b.words.n == 0)
        rc = sd_fail(err, SMDIFF_E_INVAL, "tokenizer training: empty corpus (no text in %zu path(s))", n_paths);
    if (!rc) {
        /* the words' bytes become symbols; the frequency table stays */
        rc = init_pairs(&b);
        b.prog.phase = SMDIFF_TOKENIZER_TRAIN_MERGING;
        b.prog.n_tokens = b.toks.n;
    }
    while (!rc && b.toks.n < target) {
        heap_ent best = {0, 0, 0};
        rc = best_pair(&b, &best);
        if (!rc && best.count == 0)
            rc = sd_fail(err, SMDIFF_E_INVAL, "tokenizer training: the corpus has no pair left to merge after "
                         "%zu merges; at most %zu tokens (vocabulary size %zu with the specials) can be "
                         "learned from it", b.n_merges, b.toks.n, b.toks.n + p->n_specials);
        if (!rc) rc = merge_once(&b, &best);
        b.prog.n_merges = b.n_merges;
        b.prog.n_tokens = b.toks.n;
        if (!rc) rc = report(&b);
    }
    if (!rc) rc = build(&b, out);
    bpe_free(&b);
    return rc;
}

int32_t sd_tokenizer_save_file(const sd_tokenizer *t, const char *path, sd_error *err) {
    sd_gguf_writer *w = NULL;
    int32_t rc = sd_gguf_writer_create(&w, err);
    if (rc) return rc;
    if (sd_gguf_set_str(w, "general.architecture", "tokenizer"))
        rc = sd_fail(err, SMDIFF_E_NOMEM, "writing a tokenizer: out of memory");
    if (!rc) rc = sd_tokenizer_to_gguf(t, w, err);
    if (!rc) rc = sd_gguf_write(w, path, err);
    sd_gguf_writer_free(w);
    return rc;
}
