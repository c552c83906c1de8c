/* convert.c -- Hugging Face Dream/LLaDA/MDLM checkpoint -> GGUF. See convert.h
 * and docs/FORMATS.md (name mapping, permutation, kept-F32 tensors).
 *
 * Tensors are produced while the file is written (writer fill callbacks),
 * converted row by row through one row of f32 scratch, so converting a 7B
 * model holds one output tensor (at most the embedding, ~1.1 GB in F16 for
 * Dream-7B) besides the mapped input, not a copy of the weights.
 */
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "convert/convert.h"
#include "convert/quantize.h"
#include "core/alloc.h"
#include "io/file.h"
#include "io/json.h"
#include "io/safetensors.h"
#include "nn/transformer.h"
#include "text/tokenizer.h"

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
    uint64_t row0;      /* first source row (a slice of a fused tensor), else 0 */
    uint64_t rows, cols;
    sd_pool *pool;
} conv_tensor;

/* Output row r (from source row row0 + perm(r)) as f32. */
static void source_row(const void *user, uint64_t r, float *out) {
    const conv_tensor *c = user;
    const sd_st_tensor *t = c->src;
    uint32_t st_type = t->dtype == SD_ST_F32 ? SD_GGML_F32 : t->dtype == SD_ST_F16 ? SD_GGML_F16 : SD_GGML_BF16;
    uint64_t sr = c->row0 + (c->perm_hd ? sd_convert_llada_perm_row(r, c->perm_hd) : r);
    sd_ggml_to_f32(st_type, (const uint8_t *)t->data + sr * c->cols * sd_st_dtype_size(t->dtype), out, (int64_t)c->cols);
}

static int32_t fill_tensor(void *user, const char *name, void *dst, uint64_t n_bytes, sd_error *err) {
    /* src: [rows, cols] (1-D: rows = n, cols = 1 if permuted, else one row);
     * dst: rows x cols of the output type, dst row r from src row
     * row0 + perm(r), quantised as smdiff quantize quantises. */
    const conv_tensor *c = user;
    if (n_bytes != c->rows * sd_ggml_row_size(c->type, (int64_t)c->cols))
        return sd_fail(err, SMDIFF_E_INTERNAL, "convert: size of tensor '%s'", name);
    int32_t rc = sd_quantize_rows(c->type, c->rows, c->cols, source_row, c, dst, c->pool, NULL, err);
    if (rc) {
        char msg[SD_ERROR_MSG_MAX];
        snprintf(msg, sizeof msg, "%s", sd_tls_error()->msg);
        return sd_fail(err, rc, "convert: tensor '%s': %s", name, msg);
    }
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

/* One expected tensor: HF name -> GGUF name with HF shape [d0] or [d0, d1];
 * a slice of rows [row0, row0 + d0) of a fused HF tensor of src_d0 rows
 * when src_d0 is not 0. */
typedef struct {
    char hf[160], gg[96];
    uint32_t n_dims;
    uint64_t d0, d1;
    uint64_t perm_hd;
    int optional;
    uint64_t row0, src_d0;
} want;

/* What config.json says, and the tensors it implies. */
typedef struct {
    const char *hf_arch, *arch;
    int llada, dit;
    int64_t n_layer, n_embd, n_ff, n_head, n_kv, n_ctx, n_vocab, mask_id, n_cond;
    double theta, eps;
    int time_cond;
    want *wants;
    uint64_t k, cap;
} plan;

static want *add_want(plan *p, const char *hf, const char *gg, uint32_t nd, uint64_t d0, uint64_t d1, uint64_t perm,
                      int opt) {
    want *x = &p->wants[p->k++];
    snprintf(x->hf, sizeof x->hf, "%s", hf);
    snprintf(x->gg, sizeof x->gg, "%s", gg);
    x->n_dims = nd; x->d0 = d0; x->d1 = d1; x->perm_hd = perm; x->optional = opt;
    return x;
}

static int32_t alloc_wants(plan *p, uint64_t n, sd_error *err) {
    p->wants = sd_calloc((size_t)n, sizeof *p->wants);
    p->cap = n;
    return p->wants ? SMDIFF_OK : sd_fail(err, SMDIFF_E_NOMEM, "convert: no memory");
}

/* Dream (Qwen2 names) and LLaDA: the tensors in llama.cpp's output order. */
static int32_t plan_llama(const json_t *cfg, plan *p, sd_error *err) {
    const int llada = p->llada;
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
    p->n_layer = cfg_int(cfg, k_layers);
    p->n_embd = cfg_int(cfg, llada ? k_embd_l : k_embd_d);
    p->n_ff = cfg_int(cfg, llada ? k_ff_l : k_ff_d);
    p->n_head = cfg_int(cfg, k_heads);
    p->n_kv = cfg_int(cfg, k_kv);
    p->n_ctx = cfg_int(cfg, llada ? k_ctx_l : k_ctx_d);
    p->n_vocab = cfg_int(cfg, k_vocab);
    p->mask_id = cfg_int(cfg, k_mask);
    if (p->n_kv < 0) p->n_kv = p->n_head;
    if (p->n_ctx < 0 && llada) p->n_ctx = 4096;  /* llama.cpp's default for LLaDA */
    if (llada && p->mask_id < 0 && p->n_vocab > 126336) p->mask_id = 126336;  /* LLaDA-8B's mask id */
    p->theta = cfg_num(cfg, "rope_theta", 10000.0);
    p->eps = cfg_num(cfg, "rms_norm_eps", 1e-6);
    if (p->n_layer <= 0 || p->n_embd <= 0 || p->n_ff <= 0 || p->n_head <= 0 || p->n_kv <= 0 || p->n_ctx <= 0 ||
        p->n_vocab <= 0 || p->n_layer > SD_HP_MAX_LAYERS || p->n_embd > SD_HP_MAX_EMBD || p->n_ff > SD_HP_MAX_FF ||
        p->n_head > SD_HP_MAX_HEADS || p->n_kv > SD_HP_MAX_HEADS || p->n_ctx > SD_HP_MAX_CTX ||
        p->n_vocab > SD_HP_MAX_VOCAB || p->n_embd % p->n_head || p->n_head % p->n_kv || (p->n_embd / p->n_head) % 2)
        return sd_fail(err, SMDIFF_E_FORMAT,
                       "convert: config.json: bad or missing hyperparameters (layers %" PRId64 ", embd %" PRId64
                       ", ff %" PRId64 ", heads %" PRId64 "/%" PRId64 ", ctx %" PRId64 ", vocab %" PRId64 ")",
                       p->n_layer, p->n_embd, p->n_ff, p->n_head, p->n_kv, p->n_ctx, p->n_vocab);
    int32_t rc = alloc_wants(p, 3 + (uint64_t)p->n_layer * 12, err);
    if (rc) return rc;
    const uint64_t hd = (uint64_t)(p->n_embd / p->n_head);
    const uint64_t E = (uint64_t)p->n_embd, Q = (uint64_t)p->n_head * hd, KV = (uint64_t)p->n_kv * hd;
    const uint64_t F = (uint64_t)p->n_ff, V = (uint64_t)p->n_vocab;
    add_want(p, llada ? "model.transformer.wte.weight" : "model.embed_tokens.weight", "token_embd.weight", 2, V, E, 0, 0);
    for (int64_t l = 0; l < p->n_layer; l++) {
        char hp[64], gp[32], a[160], b[96];
        snprintf(hp, sizeof hp, llada ? "model.transformer.blocks.%" PRId64 "." : "model.layers.%" PRId64 ".", l);
        snprintf(gp, sizeof gp, "blk.%" PRId64 ".", l);
#define W2(HS, GS, ND, D0, D1, PERM, OPT)                                \
        snprintf(a, sizeof a, "%s%s", hp, HS);                           \
        snprintf(b, sizeof b, "%s%s", gp, GS);                           \
        add_want(p, a, b, ND, D0, D1, PERM, OPT)
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
    add_want(p, llada ? "model.transformer.ln_f.weight" : "model.norm.weight", "output_norm.weight", 1, E, 0, 0, 0);
    add_want(p, llada ? "model.transformer.ff_out.weight" : "lm_head.weight", "output.weight", 2, V, E, 0, 1);  /* absent if tied */
    return SMDIFF_OK;
}

/* MDLM's Hugging Face layout (its DiT under `backbone.`, docs/MODELS.md):
 * config keys vocab_size, model_length, hidden_dim, cond_dim, n_blocks,
 * n_heads, time_conditioning; MLP width 4 * hidden_dim; the fused
 * attn_qkv [3d, d] split into attn_q/k/v (its rows are q, k, v in order). */
static int32_t plan_mdlm(const json_t *cfg, plan *p, sd_error *err) {
    static const char *const k_layers[] = {"n_blocks", NULL}, *const k_embd[] = {"hidden_dim", NULL};
    static const char *const k_heads[] = {"n_heads", NULL}, *const k_ctx[] = {"model_length", NULL};
    static const char *const k_vocab[] = {"vocab_size", NULL}, *const k_cond[] = {"cond_dim", NULL};
    static const char *const k_mask[] = {"mask_token_id", NULL};
    p->n_layer = cfg_int(cfg, k_layers);
    p->n_embd = cfg_int(cfg, k_embd);
    p->n_head = p->n_kv = cfg_int(cfg, k_heads);
    p->n_ctx = cfg_int(cfg, k_ctx);
    p->n_vocab = cfg_int(cfg, k_vocab);
    p->n_cond = cfg_int(cfg, k_cond);
    p->mask_id = cfg_int(cfg, k_mask);
    if (p->mask_id < 0 && p->n_vocab > 0) p->mask_id = p->n_vocab - 1;  /* MDLM appends its mask token */
    p->theta = 10000.0;
    p->eps = 1e-5;
    const json_t *tc = json_object_get(cfg, "time_conditioning");
    if (tc && !json_is_boolean(tc))
        return sd_fail(err, SMDIFF_E_FORMAT, "convert: config.json: time_conditioning must be true or false");
    p->time_cond = json_is_true(tc);
    if (p->n_layer <= 0 || p->n_embd <= 0 || p->n_head <= 0 || p->n_ctx <= 0 || p->n_vocab <= 0 || p->n_cond <= 0 ||
        p->n_layer > 1024 || p->n_embd > (1 << 18) || p->n_head > 4096 || p->n_ctx > (1 << 24) ||
        p->n_vocab > (1 << 24) || p->n_cond > (1 << 18) || p->n_embd % p->n_head || (p->n_embd / p->n_head) % 2)
        return sd_fail(err, SMDIFF_E_FORMAT,
                       "convert: config.json: bad or missing MDLM hyperparameters (n_blocks %" PRId64
                       ", hidden_dim %" PRId64 ", n_heads %" PRId64 ", cond_dim %" PRId64 ", model_length %" PRId64
                       ", vocab_size %" PRId64 "; the head size must be even)",
                       p->n_layer, p->n_embd, p->n_head, p->n_cond, p->n_ctx, p->n_vocab);
    p->n_ff = 4 * p->n_embd;
    int32_t rc = alloc_wants(p, 10 + (uint64_t)p->n_layer * 12, err);
    if (rc) return rc;
    const uint64_t E = (uint64_t)p->n_embd, F = (uint64_t)p->n_ff, V = (uint64_t)p->n_vocab, C = (uint64_t)p->n_cond;
    add_want(p, "backbone.vocab_embed.embedding", "token_embd.weight", 2, V, E, 0, 0);
    add_want(p, "backbone.sigma_map.mlp.0.weight", "time_embd.fc1.weight", 2, C, SD_CONVERT_MDLM_FREQ, 0, 0);
    add_want(p, "backbone.sigma_map.mlp.0.bias", "time_embd.fc1.bias", 1, C, 0, 0, 0);
    add_want(p, "backbone.sigma_map.mlp.2.weight", "time_embd.fc2.weight", 2, C, C, 0, 0);
    add_want(p, "backbone.sigma_map.mlp.2.bias", "time_embd.fc2.bias", 1, C, 0, 0, 0);
    for (int64_t l = 0; l < p->n_layer; l++) {
        char hp[64], gp[32], a[160], b[96];
        snprintf(hp, sizeof hp, "backbone.blocks.%" PRId64 ".", l);
        snprintf(gp, sizeof gp, "blk.%" PRId64 ".", l);
#define W2(HS, GS, ND, D0, D1)                                           \
        snprintf(a, sizeof a, "%s%s", hp, HS);                           \
        snprintf(b, sizeof b, "%s%s", gp, GS);                           \
        want *w_ = add_want(p, a, b, ND, D0, D1, 0, 0)
        { W2("norm1.weight", "attn_norm.weight", 1, E, 0); (void)w_; }
        static const char *const qkv[3] = {"attn_q.weight", "attn_k.weight", "attn_v.weight"};
        for (uint64_t j = 0; j < 3; j++) {
            W2("attn_qkv.weight", qkv[j], 2, E, E);
            w_->row0 = j * E;
            w_->src_d0 = 3 * E;
        }
        { W2("attn_out.weight", "attn_output.weight", 2, E, E); (void)w_; }
        { W2("norm2.weight", "ffn_norm.weight", 1, E, 0); (void)w_; }
        { W2("mlp.0.weight", "ffn_up.weight", 2, F, E); (void)w_; }
        { W2("mlp.0.bias", "ffn_up.bias", 1, F, 0); (void)w_; }
        { W2("mlp.2.weight", "ffn_down.weight", 2, E, F); (void)w_; }
        { W2("mlp.2.bias", "ffn_down.bias", 1, E, 0); (void)w_; }
        { W2("adaLN_modulation.weight", "adaln.weight", 2, 6 * E, C); (void)w_; }
        { W2("adaLN_modulation.bias", "adaln.bias", 1, 6 * E, 0); (void)w_; }
#undef W2
    }
    add_want(p, "backbone.output_layer.norm_final.weight", "output_norm.weight", 1, E, 0, 0, 0);
    add_want(p, "backbone.output_layer.adaLN_modulation.weight", "output_adaln.weight", 2, 2 * E, C, 0, 0);
    add_want(p, "backbone.output_layer.adaLN_modulation.bias", "output_adaln.bias", 1, 2 * E, 0, 0, 0);
    add_want(p, "backbone.output_layer.linear.weight", "output.weight", 2, V, E, 0, 0);
    add_want(p, "backbone.output_layer.linear.bias", "output.bias", 1, V, 0, 0, 0);
    return SMDIFF_OK;
}

/* MDLM's rotary buffer, when the checkpoint has one, must be base 10000
 * over the full head (what the loader assumes). */
/* Refuse here what the loader would refuse in the written file. */
static int32_t check_plan(const plan *p, sd_error *err) {
    sd_hparams hp;
    memset(&hp, 0, sizeof hp);
    hp.arch = p->dit ? SD_ARCH_MDLM : p->llada ? SD_ARCH_LLADA : SD_ARCH_DREAM;
    const int64_t big = (int64_t)INT32_MAX;
#define CLAMP32(v) ((int32_t)((v) < big ? (v) : big))
    hp.n_vocab = CLAMP32(p->n_vocab), hp.n_embd = CLAMP32(p->n_embd), hp.n_layer = CLAMP32(p->n_layer);
    hp.n_head = CLAMP32(p->n_head), hp.n_head_kv = CLAMP32(p->n_kv), hp.n_ctx = CLAMP32(p->n_ctx);
    hp.n_ff = CLAMP32(p->n_ff);
    hp.mask_id = CLAMP32(p->mask_id), hp.bos_id = hp.eos_id = hp.pad_id = -1;
#undef CLAMP32
    hp.rope_base = (float)(p->theta < 1e300 ? p->theta : 1e300);
    hp.norm_eps = (float)(p->eps < 1e300 ? p->eps : 1e300);
    sd_error why = {0};
    int32_t rc = sd_hparams_check(&hp, &why);
    return rc ? sd_fail(err, rc, "convert: config.json: %s (the file would not load)", why.msg) : SMDIFF_OK;
}

static int32_t check_inv_freq(const sd_st *st, const plan *p, sd_error *err) {
    const sd_st_tensor *t = sd_st_find(st, "backbone.rotary_emb.inv_freq");
    if (!t) return SMDIFF_OK;
    const uint64_t hd = (uint64_t)(p->n_embd / p->n_head);
    if (t->n_dims != 1 || t->n_elements != hd / 2 || t->dtype != SD_ST_F32)
        return sd_fail(err, SMDIFF_E_FORMAT, "convert: backbone.rotary_emb.inv_freq is not F32 [%" PRIu64 "]", hd / 2);
    for (uint64_t i = 0; i < hd / 2; i++) {
        float f; /* the data need not be 4-byte aligned */
        memcpy(&f, (const uint8_t *)t->data + i * sizeof f, sizeof f);
        double ref = pow(10000.0, -2.0 * (double)i / (double)hd);
        if (!(fabs(f - ref) <= 1e-6 * ref + 1e-12))
            return sd_fail(err, SMDIFF_E_FORMAT, "convert: backbone.rotary_emb.inv_freq[%" PRIu64 "] = %g is not "
                           "base 10000's %g (another rotary base is not supported)", i, (double)f, ref);
    }
    return SMDIFF_OK;
}

/* The architecture from config.json: "architectures"[0], or model_type
 * "mdlm" (MDLM's own files name no architectures list in older copies). */
static int32_t pick_arch(const json_t *cfg, plan *p, sd_error *err) {
    const char *a = json_string_value(json_array_get(json_object_get(cfg, "architectures"), 0));
    const char *mt = json_string_value(json_object_get(cfg, "model_type"));
    p->hf_arch = a ? a : mt;
    if (a && strcmp(a, "DreamModel") == 0) p->arch = "dream";
    else if (a && strcmp(a, "LLaDAModelLM") == 0) p->arch = "llada", p->llada = 1;
    else if ((a && strcmp(a, "MDLM") == 0) || (!a && mt && strcmp(mt, "mdlm") == 0)) p->arch = "mdlm", p->dit = 1;
    else
        return sd_fail(err, SMDIFF_E_UNSUPPORTED,
                       "convert: architecture '%s' is not supported (DreamModel, LLaDAModelLM, MDLM)",
                       p->hf_arch ? p->hf_arch : "(none)");
    return SMDIFF_OK;
}

#define SETK(CALL)                                                   \
    do {                                                             \
        if ((rc = (CALL))) return sd_error_forward(err, sd_gguf_writer_error(w)); \
    } while (0)

/* The architecture's metadata, in llama.cpp's order. */
static int32_t write_meta(sd_gguf_writer *w, const plan *p, const char *name, uint32_t file_type, sd_error *err) {
    char key[96];
    int32_t rc;
    const uint64_t hd = (uint64_t)(p->n_embd / p->n_head);
#define AK(SUFFIX) (snprintf(key, sizeof key, "%s.%s", p->arch, SUFFIX), key)
    SETK(sd_gguf_set_str(w, "general.architecture", p->arch));
    SETK(sd_gguf_set_str(w, "general.type", "model"));
    SETK(sd_gguf_set_str(w, "general.name", name));
    SETK(sd_gguf_set_u32(w, AK("block_count"), (uint32_t)p->n_layer));
    SETK(sd_gguf_set_u32(w, AK("context_length"), (uint32_t)p->n_ctx));
    SETK(sd_gguf_set_u32(w, AK("embedding_length"), (uint32_t)p->n_embd));
    SETK(sd_gguf_set_u32(w, AK("feed_forward_length"), (uint32_t)p->n_ff));
    SETK(sd_gguf_set_u32(w, AK("attention.head_count"), (uint32_t)p->n_head));
    SETK(sd_gguf_set_u32(w, AK("attention.head_count_kv"), (uint32_t)p->n_kv));
    SETK(sd_gguf_set_f32(w, AK("rope.freq_base"), (float)p->theta));
    if (p->dit) {
        SETK(sd_gguf_set_f32(w, AK("attention.layer_norm_epsilon"), (float)p->eps));
        SETK(sd_gguf_set_u32(w, AK("conditioning_length"), (uint32_t)p->n_cond));
        SETK(sd_gguf_set_u32(w, AK("timestep_embedding_length"), SD_CONVERT_MDLM_FREQ));
        SETK(sd_gguf_set_bool(w, AK("time_conditioning"), p->time_cond));
    } else {
        SETK(sd_gguf_set_f32(w, AK("attention.layer_norm_rms_epsilon"), (float)p->eps));
    }
    SETK(sd_gguf_set_u32(w, "general.file_type", file_type));
    if (p->llada) {
        SETK(sd_gguf_set_u32(w, AK("vocab_size"), (uint32_t)p->n_vocab));
        SETK(sd_gguf_set_u32(w, AK("rope.dimension_count"), (uint32_t)hd));
    }
    SETK(sd_gguf_set_bool(w, AK("attention.causal"), 0));
    SETK(sd_gguf_set_bool(w, "diffusion.shift_logits", !p->llada && !p->dit));
    SETK(sd_gguf_set_u32(w, "general.quantization_version", 2));
#undef AK
    return SMDIFF_OK;
}

/* config.json's optional "smdiff_softmask" object (written by
 * scripts/mdlm_ckpt_to_hf.py from a soft-masking checkpoint's
 * transparency head): scale in (0, 1), steepness > 0, centre < 0 and an
 * optional temperature > 0, as smdiff.softmask.* keys. */
static int32_t write_softmask(sd_gguf_writer *w, const json_t *cfg, sd_error *err) {
    const json_t *sm = json_object_get(cfg, "smdiff_softmask");
    if (!sm) return SMDIFF_OK;
    static const struct {
        const char *name, *key;
        double lo, hi;
        int optional;
    } f[4] = {{"scale", "smdiff.softmask.scale", 0, 1, 0},
              {"steepness", "smdiff.softmask.steepness", 0, 1e4, 0},
              {"centre", "smdiff.softmask.centre", -1e4, 0, 0},
              {"temperature", "smdiff.softmask.temperature", 0, 1e4, 1}};
    if (!json_is_object(sm)) return sd_fail(err, SMDIFF_E_FORMAT, "convert: config.json: smdiff_softmask is not an object");
    int32_t rc = sd_gguf_set_str(w, "smdiff.softmask.mode", "entropy");
    for (int i = 0; i < 4 && !rc; i++) {
        const json_t *v = json_object_get(sm, f[i].name);
        if (!v && f[i].optional) continue;
        double x = json_is_number(v) ? json_number_value(v) : NAN;
        if (!(x > f[i].lo && x < f[i].hi) && !(i == 1 && x == f[i].hi))
            return sd_fail(err, SMDIFF_E_FORMAT, "convert: config.json: smdiff_softmask.%s must be a number in (%g, %g)",
                           f[i].name, f[i].lo, f[i].hi);
        rc = sd_gguf_set_f32(w, f[i].key, (float)x);
    }
    return rc ? sd_error_forward(err, sd_gguf_writer_error(w)) : SMDIFF_OK;
}

/* Every checkpoint tensor must be expected (rotary caches aside), so a
 * checkpoint of another layout is refused instead of half-converted; then
 * every expected tensor is checked and queued for writing. */
static int32_t add_tensors(sd_gguf_writer *w, const plan *p, const sd_st *st, conv_tensor *ct,
                           const sd_qftype *ft, sd_pool *pool, sd_error *err) {
    int32_t rc;
    for (int64_t i = 0; i < sd_st_n_tensors(st); i++) {
        const sd_st_tensor *t = sd_st_tensor_at(st, i);
        size_t nl = strlen(t->name);
        if (nl >= 20 && strcmp(t->name + nl - 20, ".rotary_emb.inv_freq") == 0) continue;
        int found = 0;
        for (uint64_t j = 0; j < p->k && !found; j++) found = strcmp(p->wants[j].hf, t->name) == 0;
        if (!found)
            return sd_fail(err, SMDIFF_E_FORMAT, "convert: tensor '%s' has no %s GGUF name (not a %s checkpoint?)",
                           t->name, p->arch, p->hf_arch);
    }
    /* 1-D stay F32 (as llama.cpp keeps norms and biases), the matrices
     * get the file type's recipe (quantize.h), with its fallback for rows
     * that are not whole blocks. */
    sd_qmodel_info info = {(int32_t)p->n_layer, (int32_t)(p->n_head / p->n_kv), 1};
    for (uint64_t j = 0; j < p->k; j++)
        if (!strcmp(p->wants[j].gg, "output.weight") && sd_st_find(st, p->wants[j].hf)) info.tied = 0;
    for (uint64_t j = 0; j < p->k; j++) {
        const want *x = &p->wants[j];
        const sd_st_tensor *t = sd_st_find(st, x->hf);
        if (!t) {
            if (x->optional) continue;
            return sd_fail(err, SMDIFF_E_FORMAT, "convert: %s checkpoint lacks tensor '%s'", p->hf_arch, x->hf);
        }
        const uint64_t d0 = x->src_d0 ? x->src_d0 : x->d0;
        if (t->n_dims != x->n_dims || t->shape[0] != d0 || (x->n_dims == 2 && t->shape[1] != x->d1)) {
            if (x->n_dims == 1)
                return sd_fail(err, SMDIFF_E_FORMAT,
                               "convert: tensor '%s' is not of the shape [%" PRIu64 "] config.json implies", x->hf, d0);
            return sd_fail(err, SMDIFF_E_FORMAT,
                           "convert: tensor '%s' is not of the shape [%" PRIu64 ", %" PRIu64 "] config.json implies",
                           x->hf, d0, x->d1);
        }
        if (t->dtype != SD_ST_F32 && t->dtype != SD_ST_F16 && t->dtype != SD_ST_BF16)
            return sd_fail(err, SMDIFF_E_FORMAT, "convert: tensor '%s' has dtype %s (only F32, F16, BF16)", x->hf,
                           sd_st_dtype_name(t->dtype));
        uint64_t rows = x->n_dims == 2 ? x->d0 : x->perm_hd ? x->d0 : 1;
        uint64_t cols = x->n_dims == 2 ? x->d1 : x->perm_hd ? 1 : x->d0;
        uint32_t type = sd_qftype_tensor_type(ft, 0, x->gg, x->n_dims, x->n_dims == 2 ? x->d1 : x->d0, SD_GGML_F32,
                                              &info);
        ct[j] = (conv_tensor){t, type, x->perm_hd, x->row0, rows, cols, pool};
        uint64_t ne[2] = {x->n_dims == 2 ? x->d1 : x->d0, x->d0};
        if ((rc = sd_gguf_add_tensor_fill(w, x->gg, x->n_dims, ne, type, fill_tensor, &ct[j])))
            return sd_error_forward(err, sd_gguf_writer_error(w));
    }
    return SMDIFF_OK;
}
#undef SETK

/* general.name: the option, else the directory's base name. */
static char *model_name(const char *hf_dir, const char *opt) {
    if (opt) return sd_strdup(opt);
    size_t n = strlen(hf_dir);
    while (n > 1 && hf_dir[n - 1] == '/') n--;
    size_t s = n;
    while (s && hf_dir[s - 1] != '/') s--;
    char *name = sd_malloc(n - s + 1);
    if (name) {
        memcpy(name, hf_dir + s, n - s);
        name[n - s] = '\0';
    }
    return name;
}

int32_t sd_convert_hf(const char *hf_dir, const char *out_path, const sd_convert_opts *opts, sd_error *err) {
    if (!hf_dir || !out_path || !opts) return sd_fail(err, SMDIFF_E_INVAL, "convert: NULL argument");
    const sd_qftype *ft = sd_qftype_find(opts->type_name ? opts->type_name : "f16");
    if (!ft)
        return sd_fail(err, SMDIFF_E_INVAL, "convert: unknown file type \"%s\" (%s)", opts->type_name,
                       sd_qftype_names());
    const char *what = NULL;
    sd_file_kind kind = sd_file_probe(hf_dir, &what);
    if (kind == SD_FILE_REGULAR || (kind == SD_FILE_OTHER && strcmp(what, "unreadable path"))) /* else config.json's message */
        return sd_fail(err, SMDIFF_E_IO, "convert: '%s' is a %s, not a Hugging Face checkpoint folder", hf_dir, what);
    json_t *cfg = NULL;
    sd_pool *pool = NULL;
    sd_st *st = NULL;
    sd_gguf_writer *w = NULL;
    conv_tensor *ct = NULL;
    char *name = NULL;
    plan p;
    memset(&p, 0, sizeof p);
    int32_t rc = load_json(hf_dir, "config.json", 1, &cfg, err);
    if (rc) return rc;
    if ((rc = pick_arch(cfg, &p, err))) goto done;
    if ((rc = p.dit ? plan_mdlm(cfg, &p, err) : plan_llama(cfg, &p, err))) goto done;
    if ((rc = check_plan(&p, err))) goto done;
    if ((rc = sd_st_open_dir(hf_dir, &st, err))) goto done;
    if (p.dit && (rc = check_inv_freq(st, &p, err))) goto done;
    ct = sd_calloc((size_t)p.k, sizeof *ct);
    name = model_name(hf_dir, opts->name);
    if (!ct || !name) {
        rc = sd_fail(err, SMDIFF_E_NOMEM, "convert: no memory");
        goto done;
    }
    if ((rc = sd_gguf_writer_create(&w, err))) goto done;
    if ((rc = write_meta(w, &p, name, ft->file_type, err)) || (rc = write_softmask(w, cfg, err))) goto done;
    /* MDLM's released checkpoints use GPT-2's tokenizer with the mask token
     * appended (models/gpt2-mask/ and docs/MODELS.md say how to supply it). */
    const char *pre = opts->tokenizer_pre ? opts->tokenizer_pre : p.llada ? "default" : p.dit ? "gpt2" : "qwen2";
    if ((rc = sd_convert_vocab(hf_dir, (uint64_t)p.n_vocab, pre, p.llada ? 1 : -1, w, err))) goto done;
    if (p.mask_id >= 0) {
        if (p.mask_id >= p.n_vocab) {
            rc = sd_fail(err, SMDIFF_E_FORMAT, "convert: mask_token_id %" PRId64 " outside the vocabulary (%" PRId64 ")",
                         p.mask_id, p.n_vocab);
            goto done;
        }
        if ((rc = sd_gguf_set_u32(w, "tokenizer.ggml.mask_token_id", (uint32_t)p.mask_id))) {
            sd_error_forward(err, sd_gguf_writer_error(w));
            goto done;
        }
    }
    if ((rc = sd_pool_create(sd_cpu_count(), &pool, err))) goto done;
    if ((rc = add_tensors(w, &p, st, ct, ft, pool, err))) goto done;
    progress_fwd pf = {opts->progress, opts->progress_user};
    if (opts->progress) sd_gguf_writer_set_progress(w, on_progress, &pf);
    rc = sd_gguf_write(w, out_path, err);
done:
    sd_pool_free(pool);
    sd_free(name);
    sd_free(ct);
    sd_free(p.wants);
    sd_gguf_writer_free(w);
    sd_st_close(st);
    json_decref(cfg);
    return rc;
}
