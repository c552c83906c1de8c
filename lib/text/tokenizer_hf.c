/* tokenizer_hf.c -- build a tokenizer from Hugging Face files with Jansson:
 * tokenizer.json, or vocab.json + merges.txt (+ added_tokens.json,
 * tokenizer_config.json, special_tokens_map.json), or GPT-2's original
 * encoder.json + vocab.bpe.
 *
 * Added tokens get the types llama.cpp's converter gives them, so that a
 * directory and the GGUF made from it behave the same: an added token that
 * is "special" or looks special (<|...|>) is CONTROL, any other added token
 * is USER_DEFINED. The special tokens the config names (bos, eos, pad,
 * mask, unk, sep, cls, additional_special_tokens) are CONTROL as well:
 * Hugging Face makes each a special added token, cut out of the text whole.
 * GPT-2's classes default bos, eos and unk to <|endoftext|>. A special id
 * that no tokenizer file names comes from the model's config.json
 * (<name>_token_id) as llama.cpp's converter finds it; ids no file names
 * become UNUSED rows "[PAD<id>]", so a folder and the GGUF converted from it
 * hold the same list.
 *
 * The Unicode normaliser comes from tokenizer.json's "normalizer" or, for
 * vocab.json + merges.txt, from the tokenizer class (Qwen2's and Dream's
 * apply NFC).
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
#include "io/file.h"
#include "io/json.h"
#include "tokenizer_build.h"

/* The original Qwen2 split pattern, as tokenizer.json spells it. */
static const char QWEN2_HF_PATTERN[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*"
    "|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
static const char LLAMA3_HF_PATTERN[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*"
    "|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/* Whether anything is at path: a FIFO or folder in a file's place is then
 * read, and refused by io/file.h with a message, rather than skipped. */
static int file_exists(const char *path) { return sd_file_probe(path, NULL) != SD_FILE_ABSENT; }

static int32_t load_json(const char *path, json_t **out, sd_error *err) { return sd_json_load(path, 0, out, err); }

static int looks_special(const char *s, size_t len) {
    return len >= 4 && s[0] == '<' && s[1] == '|' && s[len - 2] == '|' && s[len - 1] == '>';
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

static void put_vocab(sd_tok_builder *b, json_t *vocab) {
    const char *k;
    json_t *v;
    json_object_foreach(vocab, k, v) sd_tok_builder_set(b, json_integer_value(v), k, strlen(k), SD_TOKEN_NORMAL);
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

/* Hugging Face makes every special token the config names (bos, eos,
 * pad, mask, unk, sep, cls, additional_special_tokens) a special added
 * token: cut out of the text whole, skipped when decoding with
 * skip_special_tokens. Here that is a CONTROL token. */
static void mark_special(sd_tok_builder *b, int32_t id) {
    if (id >= 0 && b->types[id] == SD_TOKEN_NORMAL) b->types[id] = SD_TOKEN_CONTROL;
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

/* config.json's <name>_token_id into *id when it names one (llama.cpp's
 * SpecialVocab reads it for ids the tokenizer files leave out). */
static int32_t model_special_id(const sd_tok_builder *b, json_t *model, const char *name, int32_t *id,
                                sd_error *err) {
    char key[32];
    snprintf(key, sizeof key, "%s_token_id", name);
    json_t *j = model ? json_object_get(model, key) : NULL;
    if (!json_is_integer(j) || json_integer_value(j) < 0) return SMDIFF_OK;
    if (json_integer_value(j) >= b->n)
        return sd_fail(err, SMDIFF_E_FORMAT, "config.json: %s %lld is outside the vocabulary of %d", key,
                       (long long)json_integer_value(j), (int)b->n);
    *id = (int32_t)json_integer_value(j);
    return SMDIFF_OK;
}

/* add_eos_token and chat_template of tokenizer_config.json into x. */
static int32_t read_extras(json_t *config, sd_hf_extras *x, sd_error *err) {
    json_t *ae = config ? json_object_get(config, "add_eos_token") : NULL;
    x->add_eos = json_is_boolean(ae) ? json_is_true(ae) : -1;
    json_t *ct = config ? json_object_get(config, "chat_template") : NULL;
    if (json_is_string(ct) && !(x->chat_template = sd_strdup(json_string_value(ct))))
        return sd_fail(err, SMDIFF_E_NOMEM, "out of memory (chat template)");
    return SMDIFF_OK;
}

/* The special tokens and add_bos_token. A token's text comes from
 * tokenizer_config.json, else special_tokens_map.json, else, for
 * gpt2_defaults (the tokenizer class is GPT-2's, whose constructor makes
 * <|endoftext|> bos, eos and unk unless the config names others or null),
 * <|endoftext|>; the text found in the vocabulary is marked CONTROL. An id
 * no text gives comes from config.json, unmarked: Hugging Face's tokenizer
 * never reads that file, so it does not change how text is cut.
 * bos/eos/pad/mask go to the tokenizer, unk/sep/cls (which tokenizing does
 * not use) and add_eos_token, chat_template to x (may be NULL). */
static int32_t read_specials(sd_tok_builder *b, const hf_docs *d, int gpt2_defaults, sd_hf_extras *x,
                             sd_error *err) {
    static const char *const names[7] = {"bos", "eos", "pad", "mask", "unk", "sep", "cls"};
    static const int gpt2_default[7] = {1, 1, 0, 0, 1, 0, 0};
    int32_t ids[7];
    for (int i = 0; i < 7; i++) {
        char key[32];
        snprintf(key, sizeof key, "%s_token", names[i]);
        json_t *cv = d->config ? json_object_get(d->config, key) : NULL;
        const char *s = special_text(cv);
        if (!s && d->smap) s = special_text(json_object_get(d->smap, key));
        if (!s && !json_is_null(cv) && gpt2_defaults && gpt2_default[i]) s = "<|endoftext|>";
        ids[i] = sd_tok_builder_find(b, s);
        mark_special(b, ids[i]);
        int32_t rc = ids[i] < 0 ? model_special_id(b, d->model, names[i], &ids[i], err) : SMDIFF_OK;
        if (rc) return rc;
    }
    for (int i = 0; i < 4; i++) b->special[i] = ids[i];
    json_t *extra = d->config ? json_object_get(d->config, "additional_special_tokens") : NULL;
    if (!json_is_array(extra) && d->smap) extra = json_object_get(d->smap, "additional_special_tokens");
    size_t i;
    json_t *v;
    json_array_foreach(extra, i, v) mark_special(b, sd_tok_builder_find(b, special_text(v)));
    json_t *ab = d->config ? json_object_get(d->config, "add_bos_token") : NULL;
    if (json_is_boolean(ab)) b->add_bos = json_is_true(ab);
    if (!x) return SMDIFF_OK;
    x->unk_id = ids[4], x->sep_id = ids[5], x->cls_id = ids[6];
    return read_extras(d->config, x, err);
}

void sd_hf_extras_free(sd_hf_extras *x) {
    if (!x) return;
    sd_free(x->chat_template);
    x->chat_template = NULL;
}

/* The tokenizer_class of tokenizer_config.json, "" if none. */
static const char *tokenizer_class(json_t *config) {
    json_t *cls = config ? json_object_get(config, "tokenizer_class") : NULL;
    return json_is_string(cls) ? json_string_value(cls) : "";
}

/* Qwen2's tokenizer classes (and Dream's copy of them) normalise to NFC:
 * the slow one in prepare_for_tokenization, the fast one through the NFC
 * normalizer of its tokenizer.json. */
static int qwen_class(const char *cls) { return strstr(cls, "Qwen") || strstr(cls, "Dream"); }

/* GPT-2's classes, or no class at all (GPT-2's original files). */
static int gpt2_class(const char *cls) { return !*cls || !strncmp(cls, "GPT2", 4); }

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

/* tokenizer_config.json, special_tokens_map.json and config.json of dir. */
static int32_t load_docs(const char *dir, hf_docs *d, sd_error *err) {
    memset(d, 0, sizeof *d);
    int32_t rc = load_optional(dir, "tokenizer_config.json", &d->config, err);
    if (!rc) rc = load_optional(dir, "special_tokens_map.json", &d->smap, err);
    if (!rc) rc = load_optional(dir, "config.json", &d->model, err);
    if (!rc && d->config && !json_is_object(d->config))
        rc = sd_fail(err, SMDIFF_E_FORMAT, "%s/tokenizer_config.json is not a JSON object", dir);
    return rc;
}

/* Ids [0, m] the files name, padded up to opts' n_vocab (the model's
 * embedding rows). */
static int32_t hf_alloc(sd_tok_builder *b, int64_t m, const sd_hf_opts *o, sd_error *err) {
    int32_t n = (int32_t)(m + 1);
    if (o && o->n_vocab > n) n = o->n_vocab;
    return sd_tok_builder_alloc(b, n, err);
}

/* ------------------------------------------------- vocab.json + merges.txt */

static int32_t read_merges_txt(sd_tok_builder *b, const char *path, sd_error *err) {
    size_t sz;
    int32_t rc = sd_file_read_all(path, "merges", &b->merges_buf, &sz, err);
    if (rc) return rc;
    int64_t lines = 1;
    for (size_t i = 0; i < sz; i++) lines += b->merges_buf[i] == '\n';
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
    sd_tok_builder b;
    sd_tok_builder_init(&b);
    json_t *vocab = NULL, *added = NULL;
    hf_docs d;
    int32_t rc = load_docs(config_dir, &d, err);
    json_t *config = d.config;
    if (!rc) rc = load_json(vocab_json, &vocab, err);
    if (!rc && !json_is_object(vocab)) rc = sd_fail(err, SMDIFF_E_FORMAT, "%s is not a JSON object", vocab_json);
    if (!rc) rc = load_optional(config_dir, "added_tokens.json", &added, err);
    json_t *decoder = config ? json_object_get(config, "added_tokens_decoder") : NULL;
    if (decoder && !json_is_object(decoder)) decoder = NULL;
    if (added && !json_is_object(added)) { /* not a token map: ignored, and released */
        json_decref(added);
        added = NULL;
    }
    int64_t m = 0;
    if (!rc) rc = max_id(vocab, NULL, decoder, added, &m, vocab_json, err);
    if (!rc) rc = hf_alloc(&b, m, o, err);
    if (!rc) {
        put_vocab(&b, vocab);
        const char *k;
        json_t *v;
        json_object_foreach(added, k, v) {
            sd_tok_builder_set(&b, json_integer_value(v), k, strlen(k), added_type(0, k, strlen(k)));
        }
        /* added_tokens_decoder carries the "special" flag: it decides. */
        json_object_foreach(decoder, k, v) {
            json_t *c = json_object_get(v, "content");
            if (!json_is_string(c)) continue;
            const char *s = json_string_value(c);
            sd_tok_builder_set(&b, strtoll(k, NULL, 10), s, strlen(s),
                      added_type(json_is_true(json_object_get(v, "special")), s, strlen(s)));
        }
        /* GPT-2's original files (no config): <|endoftext|> is its one
         * special token, bos = eos = unk, as GPT2Tokenizer's defaults. */
        const char *cls = tokenizer_class(config);
        rc = read_specials(&b, &d, gpt2_class(cls), x, err);
        b.pre = o && o->pre ? o->pre : qwen_class(cls) ? "qwen2" : "gpt2";
        b.normalizer = qwen_class(cls) ? SD_NORM_NFC : SD_NORM_NONE;
        if (!rc) rc = read_merges_txt(&b, merges_txt, err);
    }
    if (!rc) rc = sd_tok_builder_create(&b, out, err);
    sd_tok_builder_free(&b);
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
static int32_t hf_pre(sd_tok_builder *b, json_t *pt, const char *path, sd_error *err) {
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

/* The Unicode normaliser tokenizer.json declares: {"type": "NFC"} (or NFD,
 * NFKC, NFKD), alone or as the one member of a Sequence; null for none.
 * Other normalizers (Lowercase, Replace, BertNormalizer, ...) are not
 * applied, with a warning: text is tokenized as given. */
static int32_t hf_normalizer(json_t *norm, const char *path) {
    const char *nt = json_string_value(json_object_get(norm, "type"));
    if (!nt) return SD_NORM_NONE;
    json_t *list = json_object_get(norm, "normalizers");
    if (!strcmp(nt, "Sequence") && json_array_size(list) == 1)
        return hf_normalizer(json_array_get(list, 0), path);
    int32_t form = sd_norm_parse(nt, strlen(nt));
    if (form > 0) return form;
    SD_LOGW("tokenizer: %s asks for the %s normalizer, which is not applied; text is tokenized as given",
            path, nt);
    return SD_NORM_NONE;
}

/* tokenizer.json; the other files from its folder. */
static int32_t hf_json(const char *path, const sd_hf_opts *o, sd_tokenizer **out, sd_hf_extras *x,
                       sd_error *err) {
    sd_tok_builder b;
    sd_tok_builder_init(&b);
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
    if (!rc) rc = hf_alloc(&b, m, o, err);
    if (!rc) {
        put_vocab(&b, vocab);
        size_t i;
        json_t *v;
        json_array_foreach(added, i, v) {
            json_t *c = json_object_get(v, "content");
            if (!json_is_string(c)) continue;
            const char *s = json_string_value(c);
            sd_tok_builder_set(&b, json_integer_value(json_object_get(v, "id")), s, strlen(s),
                      added_type(json_is_true(json_object_get(v, "special")), s, strlen(s)));
        }
        b.ignore_merges = json_is_true(json_object_get(model, "ignore_merges"));
        rc = read_specials(&b, &d, gpt2_class(tokenizer_class(d.config)), x, err);
        if (!rc && o && o->pre) b.pre = o->pre;
        else if (!rc) rc = hf_pre(&b, json_object_get(root, "pre_tokenizer"), path, err);
    }
    if (!rc) {
        b.normalizer = hf_normalizer(json_object_get(root, "normalizer"), path);
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
    if (!rc) rc = sd_tok_builder_create(&b, out, err);
    sd_tok_builder_free(&b);
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
