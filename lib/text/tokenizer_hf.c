/* tokenizer_hf.c -- build a tokenizer from Hugging Face files with Jansson:
 * tokenizer.json, or vocab.json + merges.txt (+ added_tokens.json,
 * tokenizer_config.json, special_tokens_map.json), or GPT-2's original
 * encoder.json + vocab.bpe.
 *
 * Added tokens get the types llama.cpp's converter gives them, so that a
 * directory and the GGUF made from it behave the same: an added token that
 * is "special" or looks special (<|...|>) is CONTROL, any other added token
 * is USER_DEFINED.
 *
 * Jansson allocates with malloc during loading (its allocator hook is
 * process-global, so smdiff cannot redirect it without affecting the host);
 * everything the tokenizer keeps goes through sd_malloc.
 */
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "core/alloc.h"
#include "core/log.h"
#include "tokenizer.h"

/* The original Qwen2 split pattern, as tokenizer.json spells it. */
static const char QWEN2_HF_PATTERN[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*"
    "|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
static const char LLAMA3_HF_PATTERN[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*"
    "|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

typedef struct builder {
    int32_t n;              /* vocabulary size (max id + 1) */
    const char **tokens;    /* borrowed from the JSON documents */
    size_t *lens;
    int32_t *types;
    const char **merges;
    size_t *merge_lens;
    int64_t n_merges;
    char *merges_buf;       /* merges.txt contents (merges point into it) */
    char *pad_names;        /* "[PAD<id>]" texts of the ids no file names */
    int32_t special[4];     /* bos eos pad mask */
    int special_set;        /* special[] already holds GPT-2's defaults: keep them unless a file names one */
    int32_t add_bos;
    int32_t ignore_merges;
    const char *pre;
    const char *pre_regex;
} builder;

static void builder_free(builder *b) {
    sd_free(b->tokens);
    sd_free(b->lens);
    sd_free(b->types);
    sd_free(b->merges);
    sd_free(b->merge_lens);
    sd_free(b->merges_buf);
    sd_free(b->pad_names);
}

static int file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static int32_t load_json(const char *path, json_t **out, sd_error *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return sd_fail(err, SMDIFF_E_IO, "cannot open %s", path);
    json_error_t je;
    *out = json_loadf(f, 0, &je);
    fclose(f);
    if (!*out)
        return sd_fail(err, SMDIFF_E_FORMAT, "%s: JSON error at line %d: %s", path, je.line, je.text);
    return SMDIFF_OK;
}

static int looks_special(const char *s, size_t len) {
    return len >= 4 && s[0] == '<' && s[1] == '|' && s[len - 2] == '|' && s[len - 1] == '>';
}

/* Allocate the token arrays for ids [0, max(n, opts' n_vocab)); ids no
 * file names become UNUSED rows called "[PAD<id>]", as llama.cpp's converter
 * names them, so a folder and the GGUF made from it hold the same list. */
static int32_t builder_alloc(builder *b, int32_t n, const sd_hf_opts *o, sd_error *err) {
    if (o && o->n_vocab > n) n = o->n_vocab;
    b->n = n;
    b->tokens = sd_malloc(sizeof(char *) * (size_t)n);
    b->lens = sd_malloc(sizeof(size_t) * (size_t)n);
    b->types = sd_malloc(sizeof(int32_t) * (size_t)n);
    b->pad_names = sd_malloc((size_t)n * 20);
    if (!b->tokens || !b->lens || !b->types || !b->pad_names)
        return sd_fail(err, SMDIFF_E_NOMEM, "out of memory (vocabulary)");
    for (int32_t i = 0; i < n; i++) {
        char *name = b->pad_names + (size_t)i * 20;
        b->lens[i] = (size_t)snprintf(name, 20, "[PAD%d]", (int)i);
        b->tokens[i] = name;
        b->types[i] = SD_TOKEN_UNUSED;
    }
    return SMDIFF_OK;
}

/* Largest id named by a vocab object, an added_tokens array (tokenizer.json),
 * an added_tokens_decoder object and an added_tokens.json object. */
static int32_t max_id(json_t *vocab, json_t *added_arr, json_t *decoder, json_t *added_map,
                      int64_t *out, const char *what, sd_error *err) {
    int64_t m = -1;
    const char *k;
    json_t *v;
    json_object_foreach(vocab, k, v) {
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) >= INT32_MAX)
            return sd_fail(err, SMDIFF_E_FORMAT, "%s: token \"%.40s\" has no valid id", what, k);
        if (json_integer_value(v) > m) m = json_integer_value(v);
    }
    size_t i;
    json_array_foreach(added_arr, i, v) {
        json_t *id = json_object_get(v, "id");
        if (!json_is_integer(id) || json_integer_value(id) < 0 || json_integer_value(id) >= INT32_MAX)
            return sd_fail(err, SMDIFF_E_FORMAT, "%s: added token %zu has no valid id", what, i);
        if (json_integer_value(id) > m) m = json_integer_value(id);
    }
    json_object_foreach(decoder, k, v) {
        char *end;
        long long id = strtoll(k, &end, 10);
        if (*end || id < 0 || id >= INT32_MAX)
            return sd_fail(err, SMDIFF_E_FORMAT, "%s: added_tokens_decoder key \"%.40s\" is not an id", what, k);
        if (id > m) m = id;
    }
    json_object_foreach(added_map, k, v) {
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) >= INT32_MAX)
            return sd_fail(err, SMDIFF_E_FORMAT, "added_tokens.json: \"%.40s\" has no valid id", k);
        if (json_integer_value(v) > m) m = json_integer_value(v);
    }
    if (m < 0) return sd_fail(err, SMDIFF_E_FORMAT, "%s: empty vocabulary", what);
    /* Ids index an array: a stray huge id must not make us allocate and
     * touch gigabytes. Real vocabularies are dense (a few padding rows). */
    int64_t named = (int64_t)json_object_size(vocab) + (int64_t)json_array_size(added_arr) +
                    (int64_t)json_object_size(decoder) + (int64_t)json_object_size(added_map);
    if (m >= 4 * named + 65536)
        return sd_fail(err, SMDIFF_E_FORMAT, "%s: token id %lld is far beyond the %lld tokens named",
                       what, (long long)m, (long long)named);
    *out = m;
    return SMDIFF_OK;
}

static void set_token(builder *b, int64_t id, const char *text, size_t len, int32_t type) {
    b->tokens[id] = text;
    b->lens[id] = len;
    b->types[id] = type;
}

static void put_vocab(builder *b, json_t *vocab) {
    const char *k;
    json_t *v;
    json_object_foreach(vocab, k, v) set_token(b, json_integer_value(v), k, strlen(k), SD_TOKEN_NORMAL);
}

static int32_t added_type(int special, const char *s, size_t len) {
    return (special || looks_special(s, len)) ? SD_TOKEN_CONTROL : SD_TOKEN_USER_DEFINED;
}

/* Text of a special-token entry of tokenizer_config.json: "…" or {"content": "…"}. */
static const char *special_text(json_t *v) {
    if (json_is_string(v)) return json_string_value(v);
    if (json_is_object(v)) {
        json_t *c = json_object_get(v, "content");
        if (json_is_string(c)) return json_string_value(c);
    }
    return NULL;
}

static int32_t id_of(const builder *b, const char *s) {
    if (!s) return -1;
    size_t len = strlen(s);
    for (int32_t i = b->n - 1; i >= 0; i--)  /* added tokens sit at the end */
        if (b->lens[i] == len && memcmp(b->tokens[i], s, len) == 0) return i;
    return -1;
}

/* The JSON documents beside the vocabulary (each may be NULL). */
typedef struct hf_docs {
    json_t *config;  /* tokenizer_config.json */
    json_t *smap;    /* special_tokens_map.json */
    json_t *model;   /* config.json, the model's: special ids as a last resort */
} hf_docs;

static void docs_free(hf_docs *d) {
    json_decref(d->config);
    json_decref(d->smap);
    json_decref(d->model);
}

/* Special tokens as llama.cpp's converter finds them: the text named in
 * tokenizer_config.json (else special_tokens_map.json) looked up in the
 * vocabulary, else config.json's <name>_token_id. bos/eos/pad/mask go to
 * the tokenizer, unk/sep/cls (which tokenizing does not use) to extras;
 * add_bos_token, and for extras add_eos_token and chat_template, from
 * tokenizer_config.json. */
static int32_t read_specials(builder *b, const hf_docs *d, sd_hf_extras *x, sd_error *err) {
    static const char *const names[7] = {"bos", "eos", "pad", "mask", "unk", "sep", "cls"};
    int32_t ids[7];
    for (int i = 0; i < 7; i++) {
        char key[32];
        snprintf(key, sizeof key, "%s_token", names[i]);
        const char *s = d->config ? special_text(json_object_get(d->config, key)) : NULL;
        if (!s && d->smap) s = special_text(json_object_get(d->smap, key));
        ids[i] = s ? id_of(b, s) : -1;
        snprintf(key, sizeof key, "%s_token_id", names[i]);
        json_t *j = d->model ? json_object_get(d->model, key) : NULL;
        if (ids[i] < 0 && json_is_integer(j) && json_integer_value(j) >= 0) {
            if (json_integer_value(j) >= b->n)
                return sd_fail(err, SMDIFF_E_FORMAT, "config.json: %s %lld is outside the vocabulary of %d", key,
                               (long long)json_integer_value(j), (int)b->n);
            ids[i] = (int32_t)json_integer_value(j);
        }
    }
    for (int i = 0; i < 4; i++)
        if (ids[i] >= 0 || !b->special_set) b->special[i] = ids[i];
    json_t *ab = d->config ? json_object_get(d->config, "add_bos_token") : NULL;
    if (json_is_boolean(ab)) b->add_bos = json_is_true(ab);
    if (!x) return SMDIFF_OK;
    x->unk_id = ids[4], x->sep_id = ids[5], x->cls_id = ids[6];
    json_t *ae = d->config ? json_object_get(d->config, "add_eos_token") : NULL;
    x->add_eos = json_is_boolean(ae) ? json_is_true(ae) : -1;
    json_t *ct = d->config ? json_object_get(d->config, "chat_template") : NULL;
    if (json_is_string(ct) && !(x->chat_template = sd_strdup(json_string_value(ct))))
        return sd_fail(err, SMDIFF_E_NOMEM, "out of memory (chat template)");
    return SMDIFF_OK;
}

void sd_hf_extras_free(sd_hf_extras *x) {
    if (!x) return;
    sd_free(x->chat_template);
    x->chat_template = NULL;
}

/* tokenizer_config.json, special_tokens_map.json and config.json of dir. */
static int32_t load_docs(const char *dir, hf_docs *d, sd_error *err);

/* Load dir/name if it exists (NULL document otherwise). */
static int32_t load_optional(const char *dir, const char *name, json_t **out, sd_error *err) {
    *out = NULL;
    if (!dir) return SMDIFF_OK;
    char *p = sd_path_join(dir, name);
    if (!p) return sd_fail(err, SMDIFF_E_NOMEM, "out of memory");
    int32_t rc = file_exists(p) ? load_json(p, out, err) : SMDIFF_OK;
    sd_free(p);
    return rc;
}

static int32_t load_docs(const char *dir, hf_docs *d, sd_error *err) {
    memset(d, 0, sizeof *d);
    int32_t rc = load_optional(dir, "tokenizer_config.json", &d->config, err);
    if (!rc) rc = load_optional(dir, "special_tokens_map.json", &d->smap, err);
    if (!rc) rc = load_optional(dir, "config.json", &d->model, err);
    if (!rc && d->config && !json_is_object(d->config))
        rc = sd_fail(err, SMDIFF_E_FORMAT, "%s/tokenizer_config.json is not a JSON object", dir);
    return rc;
}

static int32_t build(builder *b, sd_tokenizer **out, sd_error *err) {
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
    s.bos_id = b->special[0];
    s.eos_id = b->special[1];
    s.pad_id = b->special[2];
    s.mask_id = b->special[3];
    s.add_bos = b->add_bos;
    s.ignore_merges = b->ignore_merges;
    return sd_tokenizer_create(&s, out, err);
}

/* ------------------------------------------------- vocab.json + merges.txt */

static int32_t read_merges_txt(builder *b, const char *path, sd_error *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return sd_fail(err, SMDIFF_E_IO, "cannot open %s", path);
    if (fseek(f, 0, SEEK_END) != 0) { fclose(f); return sd_fail(err, SMDIFF_E_IO, "cannot read %s", path); }
    long sz = ftell(f);
    if (sz < 0 || fseek(f, 0, SEEK_SET) != 0) { fclose(f); return sd_fail(err, SMDIFF_E_IO, "cannot read %s", path); }
    b->merges_buf = sd_malloc((size_t)sz + 1);
    if (!b->merges_buf) { fclose(f); return sd_fail(err, SMDIFF_E_NOMEM, "out of memory reading %s", path); }
    size_t got = fread(b->merges_buf, 1, (size_t)sz, f);
    fclose(f);
    if (got != (size_t)sz) return sd_fail(err, SMDIFF_E_IO, "short read on %s", path);
    b->merges_buf[sz] = '\0';
    int64_t lines = 1;
    for (long i = 0; i < sz; i++) lines += b->merges_buf[i] == '\n';
    b->merges = sd_malloc(sizeof(char *) * (size_t)lines);
    b->merge_lens = sd_malloc(sizeof(size_t) * (size_t)lines);
    if (!b->merges || !b->merge_lens) return sd_fail(err, SMDIFF_E_NOMEM, "out of memory reading %s", path);
    char *p = b->merges_buf, *end = b->merges_buf + sz;
    int first = 1;
    while (p < end) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        char *le = nl ? nl : end;
        size_t len = (size_t)(le - p);
        if (len && p[len - 1] == '\r') len--;
        /* "#version: 0.2" header; blank lines carry no merge. */
        if (!(first && len >= 8 && !memcmp(p, "#version", 8)) && len > 0) {
            b->merges[b->n_merges] = p;
            b->merge_lens[b->n_merges] = len;
            b->n_merges++;
        }
        first = 0;
        p = le + 1;
    }
    return SMDIFF_OK;
}

/* vocab.json + merges.txt, the other files from config_dir (may be NULL). */
static int32_t hf_files(const char *vocab_json, const char *merges_txt, const char *config_dir,
                        const sd_hf_opts *o, sd_tokenizer **out, sd_hf_extras *x, sd_error *err) {
    builder b;
    memset(&b, 0, sizeof b);
    for (int i = 0; i < 4; i++) b.special[i] = -1;
    json_t *vocab = NULL, *added = NULL;
    hf_docs d;
    int32_t rc = load_docs(config_dir, &d, err);
    json_t *config = d.config;
    if (!rc) rc = load_json(vocab_json, &vocab, err);
    if (!rc && !json_is_object(vocab)) rc = sd_fail(err, SMDIFF_E_FORMAT, "%s is not a JSON object", vocab_json);
    if (!rc) rc = load_optional(config_dir, "added_tokens.json", &added, err);
    json_t *decoder = config ? json_object_get(config, "added_tokens_decoder") : NULL;
    if (decoder && !json_is_object(decoder)) decoder = NULL;
    if (added && !json_is_object(added)) added = NULL;
    int64_t m = 0;
    if (!rc) rc = max_id(vocab, NULL, decoder, added, &m, vocab_json, err);
    if (!rc) rc = builder_alloc(&b, (int32_t)(m + 1), o, err);
    if (!rc) {
        put_vocab(&b, vocab);
        const char *k;
        json_t *v;
        json_object_foreach(added, k, v) {
            set_token(&b, json_integer_value(v), k, strlen(k), added_type(0, k, strlen(k)));
        }
        /* added_tokens_decoder carries the "special" flag: it decides. */
        json_object_foreach(decoder, k, v) {
            json_t *c = json_object_get(v, "content");
            if (!json_is_string(c)) continue;
            const char *s = json_string_value(c);
            set_token(&b, strtoll(k, NULL, 10), s, strlen(s),
                      added_type(json_is_true(json_object_get(v, "special")), s, strlen(s)));
        }
        if (!config && !added) {
            /* GPT-2's original files: <|endoftext|> is its one special
             * token (bos = eos = unk in GPT2Tokenizer). */
            int32_t e = id_of(&b, "<|endoftext|>");
            if (e >= 0) {
                b.types[e] = SD_TOKEN_CONTROL;
                b.special[0] = b.special[1] = e;
                b.special_set = 1;
            }
        }
        rc = read_specials(&b, &d, x, err);
        b.pre = o ? o->pre : NULL;
        if (!b.pre) {
            json_t *cls = config ? json_object_get(config, "tokenizer_class") : NULL;
            const char *c = json_is_string(cls) ? json_string_value(cls) : "";
            b.pre = (strstr(c, "Qwen") || strstr(c, "Dream")) ? "qwen2" : "gpt2";
        }
        if (!rc) rc = read_merges_txt(&b, merges_txt, err);
    }
    if (!rc) rc = build(&b, out, err);
    builder_free(&b);
    json_decref(vocab);
    docs_free(&d);
    json_decref(added);
    return rc;
}

int32_t sd_tokenizer_from_hf_files(const char *vocab_json, const char *merges_txt,
                                   const char *config_dir, const char *pre, sd_tokenizer **out,
                                   sd_error *err) {
    if (!vocab_json || !merges_txt || !out) return sd_fail(err, SMDIFF_E_INVAL, "NULL argument");
    sd_hf_opts o = {pre, 0};
    return hf_files(vocab_json, merges_txt, config_dir, &o, out, NULL, err);
}

/* --------------------------------------------------------- tokenizer.json */

/* Decide the pre-tokenizer from tokenizer.json's "pre_tokenizer". */
static int32_t hf_pre(builder *b, json_t *pt, const char *path, sd_error *err) {
    const char *type = json_string_value(json_object_get(pt, "type"));
    if (type && !strcmp(type, "ByteLevel")) {
        if (json_is_false(json_object_get(pt, "use_regex")))
            return sd_fail(err, SMDIFF_E_UNSUPPORTED, "%s: ByteLevel without a split regex", path);
        b->pre = "gpt2";
        return SMDIFF_OK;
    }
    if (type && !strcmp(type, "Sequence")) {
        json_t *list = json_object_get(pt, "pretokenizers");
        const char *regex = NULL;
        size_t i;
        json_t *p;
        json_array_foreach(list, i, p) {
            const char *ty = json_string_value(json_object_get(p, "type"));
            if (ty && !strcmp(ty, "Split")) {
                const char *beh = json_string_value(json_object_get(p, "behavior"));
                json_t *pat = json_object_get(json_object_get(p, "pattern"), "Regex");
                if (regex || !json_is_string(pat) || !beh || strcmp(beh, "Isolated") ||
                    json_is_true(json_object_get(p, "invert")))
                    return sd_fail(err, SMDIFF_E_UNSUPPORTED,
                                   "%s: only one isolating Split regex is supported", path);
                regex = json_string_value(pat);
            } else if (ty && !strcmp(ty, "ByteLevel")) {
                if (json_is_true(json_object_get(p, "use_regex"))) {
                    if (regex) return sd_fail(err, SMDIFF_E_UNSUPPORTED, "%s: two split regexes", path);
                    regex = NULL;
                    b->pre = "gpt2";
                }
            } else {
                return sd_fail(err, SMDIFF_E_UNSUPPORTED, "%s: pre-tokenizer %s is not supported",
                               path, ty ? ty : "?");
            }
        }
        if (regex) {
            if (!strcmp(regex, QWEN2_HF_PATTERN)) b->pre = "qwen2";
            else if (!strcmp(regex, LLAMA3_HF_PATTERN)) b->pre = "llama-bpe";
            else b->pre_regex = regex;  /* used verbatim: PCRE2 reads HF's regex syntax */
        }
        if (!b->pre && !b->pre_regex)
            return sd_fail(err, SMDIFF_E_UNSUPPORTED, "%s: no split regex found", path);
        return SMDIFF_OK;
    }
    return sd_fail(err, SMDIFF_E_UNSUPPORTED, "%s: pre-tokenizer %s is not supported", path,
                   type ? type : "(none)");
}

/* tokenizer.json; the other files from its folder. */
static int32_t hf_json(const char *path, const sd_hf_opts *o, sd_tokenizer **out, sd_hf_extras *x,
                       sd_error *err) {
    builder b;
    memset(&b, 0, sizeof b);
    for (int i = 0; i < 4; i++) b.special[i] = -1;
    json_t *root = NULL;
    hf_docs d;
    memset(&d, 0, sizeof d);
    int32_t rc = load_json(path, &root, err);
    json_t *model = root ? json_object_get(root, "model") : NULL;
    json_t *vocab = model ? json_object_get(model, "vocab") : NULL;
    json_t *merges = model ? json_object_get(model, "merges") : NULL;
    json_t *added = root ? json_object_get(root, "added_tokens") : NULL;
    if (!rc) {
        const char *mt = json_string_value(json_object_get(model, "type"));
        if (!json_is_object(vocab) || !json_is_array(merges) || (mt && strcmp(mt, "BPE")))
            rc = sd_fail(err, SMDIFF_E_UNSUPPORTED, "%s: not a BPE model with vocab and merges", path);
    }
    /* tokenizer_config.json beside it names the special tokens and add_bos. */
    char *dir = NULL;
    if (!rc) {
        dir = sd_strdup(path);
        if (!dir) rc = sd_fail(err, SMDIFF_E_NOMEM, "out of memory");
        else {
            char *slash = strrchr(dir, '/');
            if (slash) *slash = '\0';
            else strcpy(dir, ".");
        }
    }
    if (!rc) rc = load_docs(dir, &d, err);
    sd_free(dir);
    int64_t m = 0;
    if (!rc) rc = max_id(vocab, json_is_array(added) ? added : NULL, NULL, NULL, &m, path, err);
    if (!rc) rc = builder_alloc(&b, (int32_t)(m + 1), o, err);
    if (!rc) {
        put_vocab(&b, vocab);
        size_t i;
        json_t *v;
        json_array_foreach(added, i, v) {
            json_t *c = json_object_get(v, "content");
            if (!json_is_string(c)) continue;
            const char *s = json_string_value(c);
            set_token(&b, json_integer_value(json_object_get(v, "id")), s, strlen(s),
                      added_type(json_is_true(json_object_get(v, "special")), s, strlen(s)));
        }
        b.ignore_merges = json_is_true(json_object_get(model, "ignore_merges"));
        rc = read_specials(&b, &d, x, err);
        if (!rc && o && o->pre) b.pre = o->pre;
        else if (!rc) rc = hf_pre(&b, json_object_get(root, "pre_tokenizer"), path, err);
    }
    if (!rc) {
        json_t *norm = json_object_get(root, "normalizer");
        const char *nt = json_string_value(json_object_get(norm, "type"));
        if (nt) SD_LOGW("tokenizer: %s asks for the %s normalizer, which is not applied "
                        "(as in llama.cpp); text is tokenized as given", path, nt);
        size_t n = json_array_size(merges);
        b.merges = sd_malloc(sizeof(char *) * (n ? n : 1));
        b.merge_lens = sd_malloc(sizeof(size_t) * (n ? n : 1));
        /* Newer files store a merge as ["left", "right"]; join them into
         * one buffer as "left right". */
        size_t joined = 0;
        for (size_t i = 0; i < n; i++) {
            json_t *e = json_array_get(merges, i);
            if (json_is_array(e))
                joined += strlen(json_string_value(json_array_get(e, 0)) ? json_string_value(json_array_get(e, 0)) : "") +
                          strlen(json_string_value(json_array_get(e, 1)) ? json_string_value(json_array_get(e, 1)) : "") + 2;
        }
        b.merges_buf = sd_malloc(joined ? joined : 1);
        if (!b.merges || !b.merge_lens || !b.merges_buf) rc = sd_fail(err, SMDIFF_E_NOMEM, "out of memory (merges)");
        size_t off = 0;
        for (size_t i = 0; !rc && i < n; i++) {
            json_t *e = json_array_get(merges, i);
            if (json_is_string(e)) {
                b.merges[i] = json_string_value(e);
                b.merge_lens[i] = json_string_length(e);
            } else if (json_is_array(e) && json_array_size(e) == 2 && json_is_string(json_array_get(e, 0)) &&
                       json_is_string(json_array_get(e, 1))) {
                const char *l = json_string_value(json_array_get(e, 0));
                const char *r = json_string_value(json_array_get(e, 1));
                size_t ll = strlen(l), rl = strlen(r);
                char *p = b.merges_buf + off;
                memcpy(p, l, ll);
                p[ll] = ' ';
                memcpy(p + ll + 1, r, rl);
                p[ll + 1 + rl] = '\0';
                b.merges[i] = p;
                b.merge_lens[i] = ll + 1 + rl;
                off += ll + rl + 2;
            } else {
                rc = sd_fail(err, SMDIFF_E_FORMAT, "%s: merge %zu is neither \"a b\" nor [a, b]", path, i);
            }
        }
        b.n_merges = (int64_t)n;
    }
    if (!rc) rc = build(&b, out, err);
    builder_free(&b);
    json_decref(root);
    docs_free(&d);
    return rc;
}

int32_t sd_tokenizer_from_hf_json(const char *path, sd_tokenizer **out, sd_error *err) {
    if (!path || !out) return sd_fail(err, SMDIFF_E_INVAL, "NULL argument");
    return hf_json(path, NULL, out, NULL, err);
}

int32_t sd_tokenizer_from_hf_dir(const char *dir, sd_tokenizer **out, sd_error *err) {
    return sd_tokenizer_from_hf(dir, NULL, out, NULL, err);
}

int32_t sd_tokenizer_from_hf(const char *dir, const sd_hf_opts *opts, sd_tokenizer **out, sd_hf_extras *extras,
                             sd_error *err) {
    if (!dir || !out) return sd_fail(err, SMDIFF_E_INVAL, "NULL argument");
    if (extras) {
        memset(extras, 0, sizeof *extras);
        extras->unk_id = extras->sep_id = extras->cls_id = extras->add_eos = -1;
    }
    static const char *const layouts[][2] = {
        {"vocab.json", "merges.txt"},
        {"encoder.json", "vocab.bpe"},
    };
    char *p = sd_path_join(dir, "tokenizer.json");
    if (!p) return sd_fail(err, SMDIFF_E_NOMEM, "out of memory");
    if (file_exists(p)) {
        int32_t rc = hf_json(p, opts, out, extras, err);
        sd_free(p);
        return rc;
    }
    sd_free(p);
    for (size_t i = 0; i < sizeof layouts / sizeof layouts[0]; i++) {
        char *v = sd_path_join(dir, layouts[i][0]), *m = sd_path_join(dir, layouts[i][1]);
        int32_t rc = SMDIFF_E_NOT_FOUND;
        if (!v || !m) rc = sd_fail(err, SMDIFF_E_NOMEM, "out of memory");
        else if (file_exists(v) && file_exists(m))
            rc = hf_files(v, m, dir, opts, out, extras, err);
        sd_free(v);
        sd_free(m);
        if (rc != SMDIFF_E_NOT_FOUND) return rc;
    }
    return sd_fail(err, SMDIFF_E_NOT_FOUND, "%s holds no tokenizer.json, vocab.json + merges.txt "
                   "or encoder.json + vocab.bpe", dir);
}
