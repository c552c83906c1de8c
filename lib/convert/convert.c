/* convert.c -- Hugging Face Dream/LLaDA checkpoint -> GGUF. See convert.h
 * and docs/FORMATS.md (name mapping, permutation, kept-F32 tensors).
 *
 * Tensors are produced while the file is written (writer fill callbacks),
 * converted row by row through one row of f32 scratch, so converting a 7B
 * model holds one output tensor (at most the embedding, ~1.1 GB in F16 for
 * Dream-7B) besides the mapped input, not a copy of the weights.
 */
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "convert/convert.h"
#include "core/alloc.h"
#include "io/file.h"
#include "io/json.h"
#include "io/safetensors.h"
#include "nn/transformer.h"
#include "text/tokenizer.h"

/* llama.cpp's LlamaFileType values for general.file_type. */
static uint32_t file_type_of(uint32_t t) {
    switch (t) {
    case SD_GGML_F32: return 0;   /* ALL_F32 */
    case SD_GGML_F16: return 1;   /* MOSTLY_F16 */
    case SD_GGML_Q8_0: return 7;  /* MOSTLY_Q8_0 */
    default: return 32;           /* MOSTLY_BF16 */
    }
}

uint64_t sd_convert_llada_perm_row(uint64_t r, uint64_t head_dim) {
    uint64_t h = r / head_dim, w = r % head_dim;
    return h * head_dim + (w % 2) * (head_dim / 2) + w / 2;
}

/* Load dir/name as JSON; *out NULL (and OK) if the file is absent and optional. */
static int32_t load_json(const char *dir, const char *name, int required, json_t **out, sd_error *err) {
    *out = NULL;
    char *p = sd_path_join(dir, name);
    if (!p) return sd_fail(err, SMDIFF_E_NOMEM, "convert: no memory");
    int32_t rc = SMDIFF_OK;
    if (access(p, F_OK) != 0) {
        if (required) rc = sd_fail(err, SMDIFF_E_IO, "convert: '%s' not found", p);
    } else {
        rc = sd_json_load(p, JSON_REJECT_DUPLICATES, out, err);
    }
    sd_free(p);
    return rc;
}

/* First present integer among keys; -1 if none (values must be >= 0). */
static int64_t cfg_int(const json_t *cfg, const char *const *keys) {
    for (; *keys; keys++) {
        const json_t *v = json_object_get(cfg, *keys);
        if (json_is_integer(v) && json_integer_value(v) >= 0) return (int64_t)json_integer_value(v);
    }
    return -1;
}

static double cfg_num(const json_t *cfg, const char *key, double dflt) {
    const json_t *v = json_object_get(cfg, key);
    return json_is_number(v) ? json_number_value(v) : dflt;
}

/* ------------------------------------------------------------ vocabulary */

int32_t sd_convert_vocab(const char *dir, uint64_t vocab_size, const char *pre, int force_add_bos, sd_gguf_writer *w,
                         sd_error *err) {
    if (!dir || !w || !pre || vocab_size == 0 || vocab_size > (1u << 24))
        return sd_fail(err, SMDIFF_E_INVAL, "convert: bad vocabulary arguments (size %" PRIu64 ")", vocab_size);
    /* The tokenizer's own loader reads the files, padded to the model's
     * rows. Its split rule plays no part here (only the vocabulary, the
     * types, merges, special ids and the Unicode normaliser, as
     * smdiff.tokenizer.normalizer, are written), so a name smdiff does not
     * implement, as llama.cpp's "default", is recorded as given while the
     * files are read with GPT-2's rule. */
    sd_hf_opts o = {sd_tokenizer_pre_known(pre) ? pre : "gpt2", (int32_t)vocab_size};
    sd_hf_extras x;
    sd_tokenizer *t = NULL;
    sd_error e = {0};
    int32_t rc = sd_tokenizer_from_hf(dir, &o, &t, &x, &e);
    if (rc) {
        sd_hf_extras_free(&x);
        return sd_fail(err, rc, "convert: tokenizer of '%s': %s", dir, e.msg);
    }
    if ((uint64_t)sd_tokenizer_n_vocab(t) > vocab_size)
        rc = sd_fail(err, SMDIFF_E_FORMAT, "convert: the tokenizer names token id %d, outside the vocabulary size %" PRIu64,
                     (int)sd_tokenizer_n_vocab(t) - 1, vocab_size);
    if (!rc) rc = sd_tokenizer_to_gguf(t, w, err);
    /* what the files say beyond the tokenizer itself */
    static const char *const keys[3] = {"tokenizer.ggml.unknown_token_id", "tokenizer.ggml.seperator_token_id",
                                        "tokenizer.ggml.cls_token_id"};
    const int32_t ids[3] = {x.unk_id, x.sep_id, x.cls_id};
    int32_t r = rc ? rc : sd_gguf_set_str(w, "tokenizer.ggml.pre", pre);
    for (int i = 0; i < 3 && !r; i++)
        if (ids[i] >= 0) r = sd_gguf_set_u32(w, keys[i], (uint32_t)ids[i]);
    if (!r && force_add_bos >= 0) r = sd_gguf_set_bool(w, "tokenizer.ggml.add_bos_token", force_add_bos);
    if (!r && x.add_eos >= 0) r = sd_gguf_set_bool(w, "tokenizer.ggml.add_eos_token", x.add_eos);
    if (!r && x.chat_template) r = sd_gguf_set_str(w, "tokenizer.chat_template", x.chat_template);
    if (r && !rc) rc = sd_error_forward(err, sd_gguf_writer_error(w));
    sd_hf_extras_free(&x);
    sd_tokenizer_free(t);
    return rc;
}

/* --------------------------------------------------------------- tensors */

typedef struct {
    const sd_st_tensor *src;
    uint32_t type;      /* output ggml type */
    uint64_t perm_hd;   /* LLaDA Q/K: head_dim for the row permutation, or 0 */
} conv_tensor;

static int32_t fill_tensor(void *user, const char *name, void *dst, uint64_t n_bytes, sd_error *err) {
    /* src: [rows, cols] (1-D: rows = n, cols = 1 if permuted, else one row);
     * dst: rows x cols of the output type, dst row r from src row perm(r). */
    const conv_tensor *c = user;
    const sd_st_tensor *t = c->src;
    uint64_t rows, cols;
    if (t->n_dims == 2) { rows = t->shape[0]; cols = t->shape[1]; }
    else if (c->perm_hd) { rows = t->n_elements; cols = 1; }
    else { rows = 1; cols = t->n_elements; }
    uint32_t st_type = t->dtype == SD_ST_F32 ? SD_GGML_F32 : t->dtype == SD_ST_F16 ? SD_GGML_F16 : SD_GGML_BF16;
    uint32_t esz = sd_st_dtype_size(t->dtype);
    uint64_t dst_row = sd_ggml_type_size(c->type, cols);
    if (c->perm_hd == 0 && t->n_dims != 2) dst_row = n_bytes;
    float *row = sd_malloc((size_t)cols * sizeof(float));
    if (!row) return sd_fail(err, SMDIFF_E_NOMEM, "convert: tensor '%s': no memory for a row", name);
    for (uint64_t r = 0; r < rows; r++) {
        uint64_t sr = c->perm_hd ? sd_convert_llada_perm_row(r, c->perm_hd) : r;
        sd_ggml_to_f32(st_type, (const uint8_t *)t->data + sr * cols * esz, row, (int64_t)cols);
        sd_ggml_from_f32(c->type, row, (uint8_t *)dst + r * dst_row, (int64_t)cols);
    }
    sd_free(row);
    return SMDIFF_OK;
}

typedef struct {
    sd_convert_progress_fn fn;
    void *user;
} progress_fwd;

static void on_progress(void *user, uint64_t done, uint64_t total) {
    const progress_fwd *p = user;
    p->fn(p->user, done, total);
}

/* One expected tensor: HF name -> GGUF name with HF shape [d0] or [d0, d1]. */
typedef struct {
    char hf[160], gg[96];
    uint32_t n_dims;
    uint64_t d0, d1;
    uint64_t perm_hd;
    int optional;
} want;

int32_t sd_convert_hf(const char *hf_dir, const char *out_path, const sd_convert_opts *opts, sd_error *err) {
    if (!hf_dir || !out_path || !opts) return sd_fail(err, SMDIFF_E_INVAL, "convert: NULL argument");
    uint32_t ot = opts->out_type;
    if (ot != SD_GGML_F32 && ot != SD_GGML_F16 && ot != SD_GGML_BF16 && ot != SD_GGML_Q8_0)
        return sd_fail(err, SMDIFF_E_INVAL, "convert: output type %u is not f32, f16, bf16 or q8_0", ot);
    const char *what = NULL;
    sd_file_kind kind = sd_file_probe(hf_dir, &what);
    if (kind == SD_FILE_REGULAR || (kind == SD_FILE_OTHER && strcmp(what, "unreadable path"))) /* else config.json's message */
        return sd_fail(err, SMDIFF_E_IO, "convert: '%s' is a %s, not a Hugging Face checkpoint folder", hf_dir, what);
    json_t *cfg = NULL;
    sd_st *st = NULL;
    sd_gguf_writer *w = NULL;
    want *wants = NULL;
    conv_tensor *ct = NULL;
    char *name = NULL;
    int32_t rc = load_json(hf_dir, "config.json", 1, &cfg, err);
    if (rc) return rc;

    /* Architecture. */
    const char *hf_arch = json_string_value(json_array_get(json_object_get(cfg, "architectures"), 0));
    int llada;
    if (hf_arch && strcmp(hf_arch, "DreamModel") == 0) llada = 0;
    else if (hf_arch && strcmp(hf_arch, "LLaDAModelLM") == 0) llada = 1;
    else {
        rc = sd_fail(err, SMDIFF_E_UNSUPPORTED, "convert: architecture '%s' is not supported (DreamModel, LLaDAModelLM)",
                     hf_arch ? hf_arch : "(none)");
        goto done;
    }
    const char *arch = llada ? "llada" : "dream";
    static const char *const k_layers[] = {"num_hidden_layers", "n_layers", NULL};
    static const char *const k_embd_d[] = {"hidden_size", NULL};
    static const char *const k_embd_l[] = {"d_model", NULL};
    static const char *const k_ff_d[] = {"intermediate_size", NULL};
    static const char *const k_ff_l[] = {"mlp_hidden_size", NULL};
    static const char *const k_heads[] = {"num_attention_heads", "n_heads", NULL};
    static const char *const k_kv[] = {"num_key_value_heads", "n_kv_heads", NULL};
    static const char *const k_ctx_d[] = {"max_position_embeddings", NULL};
    static const char *const k_ctx_l[] = {"max_sequence_length", NULL};
    static const char *const k_vocab[] = {"vocab_size", "embedding_size", NULL};
    static const char *const k_mask[] = {"mask_token_id", NULL};
    int64_t n_layer = cfg_int(cfg, k_layers);
    int64_t n_embd = cfg_int(cfg, llada ? k_embd_l : k_embd_d);
    int64_t n_ff = cfg_int(cfg, llada ? k_ff_l : k_ff_d);
    int64_t n_head = cfg_int(cfg, k_heads);
    int64_t n_kv = cfg_int(cfg, k_kv);
    int64_t n_ctx = cfg_int(cfg, llada ? k_ctx_l : k_ctx_d);
    int64_t n_vocab = cfg_int(cfg, k_vocab);
    int64_t mask_id = cfg_int(cfg, k_mask);
    if (n_kv < 0) n_kv = n_head;
    if (n_ctx < 0 && llada) n_ctx = 4096;  /* llama.cpp's default for LLaDA */
    if (llada && mask_id < 0 && n_vocab > 126336) mask_id = 126336;  /* LLaDA-8B's mask id */
    double theta = cfg_num(cfg, "rope_theta", 10000.0);
    double eps = cfg_num(cfg, "rms_norm_eps", 1e-6);
    if (n_layer <= 0 || n_embd <= 0 || n_ff <= 0 || n_head <= 0 || n_kv <= 0 || n_ctx <= 0 || n_vocab <= 0 ||
        n_layer > SD_HP_MAX_LAYERS || n_embd > SD_HP_MAX_EMBD || n_ff > SD_HP_MAX_FF || n_head > SD_HP_MAX_HEADS ||
        n_kv > SD_HP_MAX_HEADS || n_ctx > SD_HP_MAX_CTX || n_vocab > SD_HP_MAX_VOCAB) {
        rc = sd_fail(err, SMDIFF_E_FORMAT,
                     "convert: config.json: bad or missing hyperparameters (layers %" PRId64 ", embd %" PRId64 ", ff %" PRId64
                     ", heads %" PRId64 "/%" PRId64 ", ctx %" PRId64 ", vocab %" PRId64 ")",
                     n_layer, n_embd, n_ff, n_head, n_kv, n_ctx, n_vocab);
        goto done;
    }
    /* Refuse here what the loader would refuse in the written file. */
    sd_hparams chp;
    memset(&chp, 0, sizeof chp);
    chp.arch = llada ? SD_ARCH_LLADA : SD_ARCH_DREAM;
    const int64_t big = (int64_t)INT32_MAX;
    chp.n_vocab = (int32_t)(n_vocab < big ? n_vocab : big), chp.n_embd = (int32_t)(n_embd < big ? n_embd : big);
    chp.n_layer = (int32_t)(n_layer < big ? n_layer : big), chp.n_head = (int32_t)(n_head < big ? n_head : big);
    chp.n_head_kv = (int32_t)(n_kv < big ? n_kv : big), chp.n_ff = (int32_t)(n_ff < big ? n_ff : big);
    chp.n_ctx = (int32_t)(n_ctx < big ? n_ctx : big);
    chp.rope_base = (float)(theta < 1e300 ? theta : 1e300), chp.norm_eps = (float)(eps < 1e300 ? eps : 1e300);
    chp.mask_id = (int32_t)(mask_id < big ? mask_id : big), chp.bos_id = chp.eos_id = chp.pad_id = -1;
    sd_error why = {0};
    if ((rc = sd_hparams_check(&chp, &why))) {
        sd_fail(err, rc, "convert: config.json: %s (the file would not load)", why.msg);
        goto done;
    }
    uint64_t hd = (uint64_t)(n_embd / n_head);
    if ((rc = sd_st_open_dir(hf_dir, &st, err))) goto done;

    /* Expected tensors, in llama.cpp's output order. */
    uint64_t n_want = 3 + (uint64_t)n_layer * 12, k = 0;
    wants = sd_calloc((size_t)n_want, sizeof *wants);
    if (!wants) {
        rc = sd_fail(err, SMDIFF_E_NOMEM, "convert: no memory");
        goto done;
    }
#define WANT(HF, GG, ND, D0, D1, PERM, OPT)                                                          \
    do {                                                                                             \
        want *x_ = &wants[k++];                                                                      \
        snprintf(x_->hf, sizeof x_->hf, "%s", HF);                                                   \
        snprintf(x_->gg, sizeof x_->gg, "%s", GG);                                                   \
        x_->n_dims = ND; x_->d0 = D0; x_->d1 = D1; x_->perm_hd = PERM; x_->optional = OPT;          \
    } while (0)
    uint64_t E = (uint64_t)n_embd, Q = (uint64_t)n_head * hd, KV = (uint64_t)n_kv * hd, F = (uint64_t)n_ff;
    uint64_t V = (uint64_t)n_vocab;
    WANT(llada ? "model.transformer.wte.weight" : "model.embed_tokens.weight", "token_embd.weight", 2, V, E, 0, 0);
    for (int64_t l = 0; l < n_layer; l++) {
        char hp[64], gp[32], a[160], b[96];
        snprintf(hp, sizeof hp, llada ? "model.transformer.blocks.%" PRId64 "." : "model.layers.%" PRId64 ".", l);
        snprintf(gp, sizeof gp, "blk.%" PRId64 ".", l);
#define W2(HS, GS, ND, D0, D1, PERM, OPT)                                \
        snprintf(a, sizeof a, "%s%s", hp, HS);                           \
        snprintf(b, sizeof b, "%s%s", gp, GS);                           \
        WANT(a, b, ND, D0, D1, PERM, OPT)
        if (llada) {
            W2("attn_norm.weight", "attn_norm.weight", 1, E, 0, 0, 0);
            W2("q_proj.weight", "attn_q.weight", 2, Q, E, hd, 0);
            W2("q_proj.bias", "attn_q.bias", 1, Q, 0, hd, 1);
            W2("k_proj.weight", "attn_k.weight", 2, KV, E, hd, 0);
            W2("k_proj.bias", "attn_k.bias", 1, KV, 0, hd, 1);
            W2("v_proj.weight", "attn_v.weight", 2, KV, E, 0, 0);
            W2("v_proj.bias", "attn_v.bias", 1, KV, 0, 0, 1);
            W2("attn_out.weight", "attn_output.weight", 2, E, Q, 0, 0);
            W2("ff_norm.weight", "ffn_norm.weight", 1, E, 0, 0, 0);
            W2("ff_proj.weight", "ffn_gate.weight", 2, F, E, 0, 0);
            W2("up_proj.weight", "ffn_up.weight", 2, F, E, 0, 0);
            W2("ff_out.weight", "ffn_down.weight", 2, E, F, 0, 0);
        } else {
            W2("input_layernorm.weight", "attn_norm.weight", 1, E, 0, 0, 0);
            W2("self_attn.q_proj.weight", "attn_q.weight", 2, Q, E, 0, 0);
            W2("self_attn.q_proj.bias", "attn_q.bias", 1, Q, 0, 0, 1);
            W2("self_attn.k_proj.weight", "attn_k.weight", 2, KV, E, 0, 0);
            W2("self_attn.k_proj.bias", "attn_k.bias", 1, KV, 0, 0, 1);
            W2("self_attn.v_proj.weight", "attn_v.weight", 2, KV, E, 0, 0);
            W2("self_attn.v_proj.bias", "attn_v.bias", 1, KV, 0, 0, 1);
            W2("self_attn.o_proj.weight", "attn_output.weight", 2, E, Q, 0, 0);
            W2("post_attention_layernorm.weight", "ffn_norm.weight", 1, E, 0, 0, 0);
            W2("mlp.gate_proj.weight", "ffn_gate.weight", 2, F, E, 0, 0);
            W2("mlp.up_proj.weight", "ffn_up.weight", 2, F, E, 0, 0);
            W2("mlp.down_proj.weight", "ffn_down.weight", 2, E, F, 0, 0);
        }
#undef W2
    }
    WANT(llada ? "model.transformer.ln_f.weight" : "model.norm.weight", "output_norm.weight", 1, E, 0, 0, 0);
    WANT(llada ? "model.transformer.ff_out.weight" : "lm_head.weight", "output.weight", 2, V, E, 0, 1);  /* absent if tied */
#undef WANT

    /* Every checkpoint tensor must be expected (rotary caches aside), so a
     * checkpoint of another layout is refused instead of half-converted. */
    for (int64_t i = 0; i < sd_st_n_tensors(st); i++) {
        const sd_st_tensor *t = sd_st_tensor_at(st, i);
        size_t nl = strlen(t->name);
        if (nl >= 20 && strcmp(t->name + nl - 20, ".rotary_emb.inv_freq") == 0) continue;
        int found = 0;
        for (uint64_t j = 0; j < k && !found; j++) found = strcmp(wants[j].hf, t->name) == 0;
        if (!found) {
            rc = sd_fail(err, SMDIFF_E_FORMAT, "convert: tensor '%s' has no %s GGUF name (not a %s checkpoint?)", t->name,
                         arch, hf_arch);
            goto done;
        }
    }
    ct = sd_calloc((size_t)k, sizeof *ct);
    if (!ct || (rc = sd_gguf_writer_create(&w, err))) {
        if (!rc) rc = sd_fail(err, SMDIFF_E_NOMEM, "convert: no memory");
        goto done;
    }

    /* Metadata, in llama.cpp's order. */
    char key[96];
    if (opts->name) {
        name = sd_strdup(opts->name);
    } else {
        size_t n = strlen(hf_dir);
        while (n > 1 && hf_dir[n - 1] == '/') n--;
        size_t s = n;
        while (s && hf_dir[s - 1] != '/') s--;
        name = sd_malloc(n - s + 1);
        if (name) {
            memcpy(name, hf_dir + s, n - s);
            name[n - s] = '\0';
        }
    }
    if (!name) {
        rc = sd_fail(err, SMDIFF_E_NOMEM, "convert: no memory");
        goto done;
    }
#define SETK(CALL)                                                   \
    do {                                                             \
        if ((rc = (CALL))) {                                         \
            sd_error_forward(err, sd_gguf_writer_error(w));          \
            goto done;                                               \
        }                                                            \
    } while (0)
#define AK(SUFFIX) (snprintf(key, sizeof key, "%s.%s", arch, SUFFIX), key)
    SETK(sd_gguf_set_str(w, "general.architecture", arch));
    SETK(sd_gguf_set_str(w, "general.type", "model"));
    SETK(sd_gguf_set_str(w, "general.name", name));
    SETK(sd_gguf_set_u32(w, AK("block_count"), (uint32_t)n_layer));
    SETK(sd_gguf_set_u32(w, AK("context_length"), (uint32_t)n_ctx));
    SETK(sd_gguf_set_u32(w, AK("embedding_length"), (uint32_t)n_embd));
    SETK(sd_gguf_set_u32(w, AK("feed_forward_length"), (uint32_t)n_ff));
    SETK(sd_gguf_set_u32(w, AK("attention.head_count"), (uint32_t)n_head));
    SETK(sd_gguf_set_u32(w, AK("attention.head_count_kv"), (uint32_t)n_kv));
    SETK(sd_gguf_set_f32(w, AK("rope.freq_base"), (float)theta));
    SETK(sd_gguf_set_f32(w, AK("attention.layer_norm_rms_epsilon"), (float)eps));
    SETK(sd_gguf_set_u32(w, "general.file_type", file_type_of(ot)));
    if (llada) {
        SETK(sd_gguf_set_u32(w, AK("vocab_size"), (uint32_t)n_vocab));
        SETK(sd_gguf_set_u32(w, AK("rope.dimension_count"), (uint32_t)hd));
    }
    SETK(sd_gguf_set_bool(w, AK("attention.causal"), 0));
    SETK(sd_gguf_set_bool(w, "diffusion.shift_logits", !llada));
    SETK(sd_gguf_set_u32(w, "general.quantization_version", 2));
#undef AK
    const char *pre = opts->tokenizer_pre ? opts->tokenizer_pre : llada ? "default" : "qwen2";
    if ((rc = sd_convert_vocab(hf_dir, (uint64_t)n_vocab, pre, llada ? 1 : -1, w, err))) goto done;
    if (mask_id >= 0) {
        if (mask_id >= n_vocab) {
            rc = sd_fail(err, SMDIFF_E_FORMAT, "convert: mask_token_id %" PRId64 " outside the vocabulary (%" PRId64 ")",
                         mask_id, n_vocab);
            goto done;
        }
        SETK(sd_gguf_set_u32(w, "tokenizer.ggml.mask_token_id", (uint32_t)mask_id));
    }
#undef SETK

    /* Tensors: 1-D stay F32 (as llama.cpp keeps norms and biases); Q8_0
     * falls back to F16 for rows that are not whole 32-element blocks. */
    for (uint64_t j = 0; j < k; j++) {
        const want *x = &wants[j];
        const sd_st_tensor *t = sd_st_find(st, x->hf);
        if (!t) {
            if (x->optional) continue;
            rc = sd_fail(err, SMDIFF_E_FORMAT, "convert: %s checkpoint lacks tensor '%s'", hf_arch, x->hf);
            goto done;
        }
        if (t->n_dims != x->n_dims || t->shape[0] != x->d0 || (x->n_dims == 2 && t->shape[1] != x->d1)) {
            if (x->n_dims == 1)
                rc = sd_fail(err, SMDIFF_E_FORMAT, "convert: tensor '%s' is not of the shape [%" PRIu64 "] config.json implies",
                             x->hf, x->d0);
            else
                rc = sd_fail(err, SMDIFF_E_FORMAT,
                             "convert: tensor '%s' is not of the shape [%" PRIu64 ", %" PRIu64 "] config.json implies",
                             x->hf, x->d0, x->d1);
            goto done;
        }
        if (t->dtype != SD_ST_F32 && t->dtype != SD_ST_F16 && t->dtype != SD_ST_BF16) {
            rc = sd_fail(err, SMDIFF_E_FORMAT, "convert: tensor '%s' has dtype %s (only F32, F16, BF16)", x->hf,
                         sd_st_dtype_name(t->dtype));
            goto done;
        }
        uint32_t type = ot;
        if (x->n_dims == 1) type = SD_GGML_F32;
        else if (type == SD_GGML_Q8_0 && x->d1 % 32) type = SD_GGML_F16;
        ct[j] = (conv_tensor){t, type, x->perm_hd};
        uint64_t ne[2] = {x->n_dims == 2 ? x->d1 : x->d0, x->d0};
        if ((rc = sd_gguf_add_tensor_fill(w, x->gg, x->n_dims, ne, type, fill_tensor, &ct[j]))) {
            sd_error_forward(err, sd_gguf_writer_error(w));
            goto done;
        }
    }
    progress_fwd pf = {opts->progress, opts->progress_user};
    if (opts->progress) sd_gguf_writer_set_progress(w, on_progress, &pf);
    rc = sd_gguf_write(w, out_path, err);
done:
    sd_free(name);
    sd_free(ct);
    sd_free(wants);
    sd_gguf_writer_free(w);
    sd_st_close(st);
    json_decref(cfg);
    return rc;
}
