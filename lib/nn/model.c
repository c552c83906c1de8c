#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/log.h"
#include "core/quant.h"
#include "core/arena.h"
#include "io/gguf.h"
#include "nn/blas.h"
#include "nn/ops.h"
#include "model.h"
#include "text/tokenizer.h"

static const sd_option_def defs[] = {
    {SMDIFF_MODEL_USE_MMAP, "use_mmap", SMDIFF_TYPE_INT, 0, 1, 1, 0, 0},
    {SMDIFF_MODEL_THREADS, "threads", SMDIFF_TYPE_INT, 0, 1024, 0, 0, 0},
    {SMDIFF_MODEL_CONTEXT, "context", SMDIFF_TYPE_INT, 0, 1048576, 0, 0, 0},
};

const sd_option_table sd_model_options = {defs, (int32_t)(sizeof defs / sizeof defs[0])};

_Static_assert(sizeof defs / sizeof defs[0] == SMDIFF_MODEL_OPT_LAST_ - SMDIFF_MODEL_OPT_FIRST_ + 1, "one entry per option");

/* Release the nn part (weights, mapping, pool); the model becomes unloaded. */
static void unload(struct smdiff_model *m) {
    sd_pool_free(m->pool);
    m->pool = NULL;
    sd_free(m->w.layers);
    sd_free(m->owned_f32);
    sd_free(m->cond_owned);
    m->cond_owned = NULL;
    sd_gguf_close(m->gguf);
    m->gguf = NULL;
    m->owned_f32 = NULL;
    memset(&m->w, 0, sizeof m->w);
    m->loaded = 0;
}

void sd_model_destroy(struct smdiff_model *m) {
    if (!m) return;
    unload(m);
    sd_tokenizer_free(m->tok);
    sd_free(m);
}

struct smdiff_model *sd_model_hold(const struct smdiff_model *m) {
    struct smdiff_model *mm = (struct smdiff_model *)m; /* only the count changes */
    if (mm) atomic_fetch_add(&mm->refcount, 1);
    return mm;
}

void sd_model_unhold(struct smdiff_model **held) { smdiff_model_free(*held); }

const char *sd_model_arch_name(const struct smdiff_model *m) {
    switch (m->w.hp.arch) {
    case SD_ARCH_DREAM: return "dream";
    case SD_ARCH_LLADA: return "llada";
    case SD_ARCH_MDLM: return "mdlm";
    }
    return "";
}

/* ------------------------------------------------------------- metadata */

/* Re-code a reader error on key as SMDIFF_E_FORMAT, keeping its message
 * (copied first: err->msg is both source and destination). */
static int32_t bad_key(sd_error *err, const char *key) {
    char msg[SD_ERROR_MSG_MAX];
    snprintf(msg, sizeof msg, "%s", err->msg);
    return sd_fail(err, SMDIFF_E_FORMAT, "metadata key %s: %s", key, msg);
}

typedef struct {
    struct smdiff_model *m;
    char arch[16];
} loader;

/* <arch>.<suffix> as an integer in [lo, hi]; def < lo means required. */
static int32_t get_int(loader *ld, const char *suffix, int64_t lo, int64_t hi, int64_t def,
                       int64_t *out) {
    char key[96];
    snprintf(key, sizeof key, "%s%s", ld->arch, suffix);
    int64_t v;
    int32_t rc = sd_gguf_get_i64(ld->m->gguf, key, &v, &ld->m->err);
    if (rc == SMDIFF_E_NOT_FOUND && def >= lo) {
        *out = def;
        return SMDIFF_OK;
    }
    if (rc == SMDIFF_E_NOT_FOUND)
        return sd_fail(&ld->m->err, SMDIFF_E_FORMAT, "metadata key %s is missing", key);
    if (rc) return bad_key(&ld->m->err, key);
    if (v < lo || v > hi)
        return sd_fail(&ld->m->err, SMDIFF_E_FORMAT, "metadata key %s = %lld outside [%lld, %lld]", key,
                       (long long)v, (long long)lo, (long long)hi);
    *out = v;
    return SMDIFF_OK;
}

static int32_t get_float(loader *ld, const char *suffix, double def, float *out) {
    char key[96];
    snprintf(key, sizeof key, "%s%s", ld->arch, suffix);
    double v;
    int32_t rc = sd_gguf_get_f64(ld->m->gguf, key, &v, &ld->m->err);
    if (rc == SMDIFF_E_NOT_FOUND && def > 0) {
        *out = (float)def;
        return SMDIFF_OK;
    }
    if (rc == SMDIFF_E_NOT_FOUND)
        return sd_fail(&ld->m->err, SMDIFF_E_FORMAT, "metadata key %s is missing", key);
    if (rc) return bad_key(&ld->m->err, key);
    if (!(v > 0) || v > SD_HP_MAX_REAL || !((float)v > 0))
        return sd_fail(&ld->m->err, SMDIFF_E_FORMAT, "metadata key %s = %g must be positive", key, v);
    *out = (float)v;
    return SMDIFF_OK;
}

/* A token id key: -1 when absent. */
static int32_t get_token(loader *ld, const char *key, int32_t *out) {
    int64_t v;
    int32_t rc = sd_gguf_get_i64(ld->m->gguf, key, &v, &ld->m->err);
    if (rc == SMDIFF_E_NOT_FOUND) {
        *out = -1;
        return SMDIFF_OK;
    }
    if (rc) return bad_key(&ld->m->err, key);
    if (v < -1 || v >= ld->m->w.hp.n_vocab)
        return sd_fail(&ld->m->err, SMDIFF_E_FORMAT, "metadata key %s = %lld outside the vocabulary (%d)",
                       key, (long long)v, (int)ld->m->w.hp.n_vocab);
    *out = (int32_t)v;
    return SMDIFF_OK;
}

/* -------------------------------------------------------------- tensors */

/* Find a tensor and describe it as rows x cols (ne[0] = cols). Absent:
 * leaves *w zeroed (sd_weights_validate names required ones). */
static int32_t find_tensor(loader *ld, const char *name, sd_weight *w) {
    memset(w, 0, sizeof *w);
    const sd_gguf_tensor *t = sd_gguf_find_tensor(ld->m->gguf, name);
    if (!t) return SMDIFF_OK;
    if (t->ne[2] != 1 || t->ne[3] != 1)
        return sd_fail(&ld->m->err, SMDIFF_E_FORMAT, "tensor %s has %u dimensions, expected at most 2", name,
                       (unsigned)t->n_dims);
    if (!sd_ggml_is_supported(t->type))
        return sd_fail(&ld->m->err, SMDIFF_E_FORMAT,
                       "tensor %s has type %s (%u); smdiff computes with F32, F16, BF16, Q4_0, Q4_1, Q5_0, "
                       "Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_NL and IQ4_XS",
                       name, sd_ggml_type_name(t->type), (unsigned)t->type);
    w->data = t->data;
    w->type = t->type;
    w->rows = (int64_t)t->ne[1];
    w->cols = (int64_t)t->ne[0];
    if (w->rows > 1 && sd_ggml_row_size(w->type, w->cols) * (uint64_t)w->rows > t->n_bytes)
        return sd_fail(&ld->m->err, SMDIFF_E_FORMAT, "tensor %s is shorter than its shape", name);
    /* A non-finite block scale would turn whole rows of every product into
     * NaN or inf: refuse the file rather than compute garbage. (Any finite
     * scale gives finite weights: |w| <= 65504 * 63 * 31 for the K-quants.)
     * This reads every block header once: the pages of the mapping a
     * forward pass reads anyway. */
    if (sd_quant_is_block(w->type)) {
        int64_t n = (int64_t)(t->n_bytes / sd_ggml_block_bytes(w->type)) * (int64_t)sd_ggml_block_size(w->type);
        int64_t bad = sd_quant_find_bad_block(w->type, t->data, n);
        if (bad >= 0)
            return sd_fail(&ld->m->err, SMDIFF_E_FORMAT,
                           "tensor %s: block %lld (row %lld) of type %s has a non-finite scale", name,
                           (long long)bad, (long long)(bad / (w->cols / (int64_t)sd_ggml_block_size(w->type))),
                           sd_ggml_type_name(w->type));
    }
    return SMDIFF_OK;
}

/* 1-D tensors (norms, biases) are read as F32 by the forward pass: count
 * the floats needed to convert the others. */
static int64_t vector_floats(const sd_weight *w) {
    return w->data && w->type != SD_GGML_F32 ? w->rows * w->cols : 0;
}

static void to_f32(sd_weight *w, float **cursor) {
    if (!w->data || w->type == SD_GGML_F32) return;
    sd_ggml_to_f32(w->type, w->data, *cursor, w->rows * w->cols);
    w->data = *cursor;
    w->type = SD_GGML_F32;
    *cursor += w->rows * w->cols;
}

static int32_t load_tensors(loader *ld) {
    struct smdiff_model *m = ld->m;
    sd_weights *w = &m->w;
    int32_t rc;
    char name[96];
    if ((rc = find_tensor(ld, "token_embd.weight", &w->token_embd))) return rc;
    if (!w->token_embd.data) return sd_fail(&m->err, SMDIFF_E_FORMAT, "tensor token_embd.weight is missing");
    w->hp.n_vocab = (int32_t)w->token_embd.rows;
    if (w->token_embd.rows > INT32_MAX / 2)
        return sd_fail(&m->err, SMDIFF_E_FORMAT, "tensor token_embd.weight has too many rows");
    if ((rc = find_tensor(ld, "output_norm.weight", &w->output_norm))) return rc;
    if ((rc = find_tensor(ld, "output.weight", &w->output))) return rc;
    /* llama.cpp's convention: no output.weight means a head tied to the embeddings. */
    if (!w->output.data) w->output = w->token_embd;
    w->layers = sd_calloc((size_t)w->hp.n_layer, sizeof *w->layers);
    if (!w->layers) return sd_fail(&m->err, SMDIFF_E_NOMEM, "out of memory for %d layers", (int)w->hp.n_layer);
    static const char *const names[12] = {"attn_norm.weight", "attn_q.weight", "attn_k.weight",
                                          "attn_v.weight", "attn_q.bias", "attn_k.bias",
                                          "attn_v.bias", "attn_output.weight", "ffn_norm.weight",
                                          "ffn_gate.weight", "ffn_up.weight", "ffn_down.weight"};
    int64_t extra = vector_floats(&w->output_norm);
    for (int32_t i = 0; i < w->hp.n_layer; i++) {
        sd_layer_weights *l = &w->layers[i];
        sd_weight *slots[12] = {&l->attn_norm, &l->wq, &l->wk, &l->wv, &l->bq, &l->bk,
                                &l->bv, &l->wo, &l->ffn_norm, &l->w_gate, &l->w_up, &l->w_down};
        for (int j = 0; j < 12; j++) {
            snprintf(name, sizeof name, "blk.%d.%s", (int)i, names[j]);
            if ((rc = find_tensor(ld, name, slots[j]))) return rc;
        }
        if (w->hp.arch == SD_ARCH_DREAM)
            for (int j = 4; j < 7; j++)
                if (!slots[j]->data) {
                    snprintf(name, sizeof name, "blk.%d.%s", (int)i, names[j]);
                    return sd_fail(&m->err, SMDIFF_E_FORMAT, "tensor %s is missing (dream has q/k/v biases)", name);
                }
        extra += vector_floats(&l->attn_norm) + vector_floats(&l->ffn_norm) + vector_floats(&l->bq) +
                 vector_floats(&l->bk) + vector_floats(&l->bv);
        if (w->hp.arch == SD_ARCH_MDLM) {
            static const char *const dn[4] = {"adaln.weight", "adaln.bias", "ffn_up.bias", "ffn_down.bias"};
            sd_weight *ds[4] = {&l->adaln, &l->adaln_b, &l->b_up, &l->b_down};
            for (int j = 0; j < 4; j++) {
                snprintf(name, sizeof name, "blk.%d.%s", (int)i, dn[j]);
                if ((rc = find_tensor(ld, name, ds[j]))) return rc;
            }
            extra += vector_floats(&l->adaln_b) + vector_floats(&l->b_up) + vector_floats(&l->b_down);
        }
    }
    sd_weight *dit_top[7] = {&w->time_fc1, &w->time_fc1_b, &w->time_fc2, &w->time_fc2_b,
                             &w->output_adaln, &w->output_adaln_b, &w->output_b};
    if (w->hp.arch == SD_ARCH_MDLM) {
        static const char *const tn[7] = {"time_embd.fc1.weight", "time_embd.fc1.bias", "time_embd.fc2.weight",
                                          "time_embd.fc2.bias", "output_adaln.weight", "output_adaln.bias",
                                          "output.bias"};
        for (int j = 0; j < 7; j++) {
            if ((rc = find_tensor(ld, tn[j], dit_top[j]))) return rc;
            if (j % 2) extra += vector_floats(dit_top[j]);
        }
    }
    /* A 1-D tensor has ne[1] = 1: rows 1, cols = its length, as the
     * forward pass expects for norms and biases. Their byte sizes were
     * checked by the reader, so converting them is safe before the shape
     * validation below. */
    if (extra > 0) {
        m->owned_f32 = sd_malloc((size_t)extra * sizeof(float));
        if (!m->owned_f32) return sd_fail(&m->err, SMDIFF_E_NOMEM, "out of memory converting norms");
        float *cur = m->owned_f32;
        to_f32(&w->output_norm, &cur);
        for (int32_t i = 0; i < w->hp.n_layer; i++) {
            sd_layer_weights *l = &w->layers[i];
            to_f32(&l->attn_norm, &cur);
            to_f32(&l->ffn_norm, &cur);
            to_f32(&l->bq, &cur);
            to_f32(&l->bk, &cur);
            to_f32(&l->bv, &cur);
            to_f32(&l->adaln_b, &cur);
            to_f32(&l->b_up, &cur);
            to_f32(&l->b_down, &cur);
        }
        for (int j = 1; j < 7; j += 2) to_f32(dit_top[j], &cur);
    }
    return sd_weights_validate(w, &m->err);
}

static int32_t load(struct smdiff_model *m, const char *path) {
    int32_t rc = sd_gguf_open(path, (int)m->opt[SD_OPT_SLOT(SMDIFF_MODEL_USE_MMAP)].i, &m->gguf, &m->err);
    if (rc) return rc;
    loader ld = {m, {0}};
    sd_gguf_str a;
    rc = sd_gguf_get_str(m->gguf, "general.architecture", &a, &m->err);
    if (rc == SMDIFF_E_NOT_FOUND)
        return sd_fail(&m->err, SMDIFF_E_FORMAT, "metadata key general.architecture is missing");
    if (rc) return bad_key(&m->err, "general.architecture");
    sd_hparams *hp = &m->w.hp;
    if (a.len == 5 && !memcmp(a.ptr, "dream", 5))
        hp->arch = SD_ARCH_DREAM;
    else if (a.len == 5 && !memcmp(a.ptr, "llada", 5))
        hp->arch = SD_ARCH_LLADA;
    else if (a.len == 4 && !memcmp(a.ptr, "mdlm", 4))
        hp->arch = SD_ARCH_MDLM;
    else
        return sd_fail(&m->err, SMDIFF_E_FORMAT, "unknown architecture \"%.*s\" (supported: dream, llada, mdlm)",
                       (int)(a.len > 64 ? 64 : a.len), a.ptr);
    memcpy(ld.arch, a.ptr, a.len);
    const int dit = hp->arch == SD_ARCH_MDLM;

    int64_t v;
    if ((rc = get_int(&ld, ".block_count", 1, SD_HP_MAX_LAYERS, -1, &v))) return rc;
    hp->n_layer = (int32_t)v;
    if ((rc = get_int(&ld, ".embedding_length", 2, SD_HP_MAX_EMBD, -1, &v))) return rc;
    hp->n_embd = (int32_t)v;
    if ((rc = get_int(&ld, ".feed_forward_length", 1, SD_HP_MAX_FF, -1, &v))) return rc;
    hp->n_ff = (int32_t)v;
    if ((rc = get_int(&ld, ".attention.head_count", 1, SD_HP_MAX_HEADS, -1, &v))) return rc;
    hp->n_head = (int32_t)v;
    if ((rc = get_int(&ld, ".attention.head_count_kv", 1, SD_HP_MAX_HEADS, hp->n_head, &v))) return rc;
    hp->n_head_kv = (int32_t)v;
    if ((rc = get_int(&ld, ".context_length", 1, SD_HP_MAX_CTX, -1, &v))) return rc;
    hp->n_ctx = (int32_t)v;
    if (m->opt[SD_OPT_SLOT(SMDIFF_MODEL_CONTEXT)].i > 0) hp->n_ctx = (int32_t)m->opt[SD_OPT_SLOT(SMDIFF_MODEL_CONTEXT)].i;
    if ((rc = get_float(&ld, ".rope.freq_base", 10000.0, &hp->rope_base))) return rc;
    if (dit) {
        /* MDLM's DiT: LayerNorm (llama.cpp's key for it), the conditioning
         * widths and whether it follows the noise level. */
        if ((rc = get_float(&ld, ".attention.layer_norm_epsilon", 1e-5, &hp->norm_eps))) return rc;
        if ((rc = get_int(&ld, ".conditioning_length", 1, SD_HP_MAX_EMBD, -1, &v))) return rc;
        hp->n_cond = (int32_t)v;
        if ((rc = get_int(&ld, ".timestep_embedding_length", 2, 1 << 16, 256, &v))) return rc;
        hp->n_freq = (int32_t)v;
        int tc = 0;
        rc = sd_gguf_get_bool(m->gguf, "mdlm.time_conditioning", &tc, &m->err);
        if (rc && rc != SMDIFF_E_NOT_FOUND) return bad_key(&m->err, "mdlm.time_conditioning");
        hp->time_cond = tc;
    } else if ((rc = get_float(&ld, ".attention.layer_norm_rms_epsilon", -1, &hp->norm_eps))) {
        return rc;
    }
    /* Every llada file from llama.cpp's converter has Q/K rows permuted
     * for its "normal" (adjacent-pair) RoPE; dream (Qwen2) is NeoX. */
    hp->rope_permuted = hp->arch == SD_ARCH_LLADA;
    int shift = hp->arch == SD_ARCH_DREAM;
    rc = sd_gguf_get_bool(m->gguf, "diffusion.shift_logits", &shift, &m->err);
    if (rc && rc != SMDIFF_E_NOT_FOUND)
        return bad_key(&m->err, "diffusion.shift_logits");
    hp->shift_logits = shift;

    if ((rc = load_tensors(&ld))) return rc;
    if ((rc = get_token(&ld, "tokenizer.ggml.mask_token_id", &hp->mask_id))) return rc;
    if ((rc = get_token(&ld, "tokenizer.ggml.bos_token_id", &hp->bos_id))) return rc;
    if ((rc = get_token(&ld, "tokenizer.ggml.eos_token_id", &hp->eos_id))) return rc;
    if ((rc = get_token(&ld, "tokenizer.ggml.padding_token_id", &hp->pad_id))) return rc;
    if (hp->mask_id < 0) {
        /* The released checkpoints' ids (docs/METHOD.md section 2) when the file does not say. */
        int32_t def = hp->arch == SD_ARCH_DREAM ? 151666 : dit ? hp->n_vocab - 1 : 126336;
        hp->mask_id = def < hp->n_vocab ? def : -1;
    }
    if (dit && !hp->time_cond) {
        /* The conditioning is constant: every adaLN output once, here. */
        size_t nc = sd_dit_cond_floats(hp), ns = sd_dit_cond_scratch(hp);
        m->cond_owned = sd_malloc((nc + ns) * sizeof(float));
        if (!m->cond_owned) return sd_fail(&m->err, SMDIFF_E_NOMEM, "out of memory for the conditioning");
        sd_dit_conditioning(&m->w, 0.0f, m->cond_owned, m->cond_owned + nc);
        m->w.cond_const = m->cond_owned;
    }

    int threads = (int)m->opt[SD_OPT_SLOT(SMDIFF_MODEL_THREADS)].i;
    if (threads <= 0) threads = sd_cpu_count();
    m->threads = threads;
    if ((rc = sd_pool_create(threads, &m->pool, &m->err))) return rc;
    if ((rc = sd_blas_reserve_threads(threads, &m->err))) return rc;
    return SMDIFF_OK;
}

int32_t sd_model_load(struct smdiff_model *m, const char *path) {
    int32_t rc = load(m, path);
    if (rc) {
        unload(m);
        return rc;
    }
    /* The file's own tokenizer (tokenizer.ggml.*), unless one was loaded
     * separately before. One smdiff cannot read (an unsupported
     * pre-tokenizer, say) does not stop the weights from loading: the
     * model then has no tokenizer (text calls return SMDIFF_E_STATE) and
     * the reason goes to the log. Running out of memory is not such a
     * reason: the load fails, rather than succeed without a tokenizer. */
    if (!m->tok && sd_gguf_find_key(m->gguf, "tokenizer.ggml.model") >= 0) {
        sd_error terr = {0};
        int32_t trc = sd_tokenizer_from_gguf(m->gguf, &m->tok, &terr);
        if (trc) m->tok = NULL;
        if (trc == SMDIFF_E_NOMEM) {
            unload(m);
            return sd_fail(&m->err, trc, "%s: %s", path, terr.msg);
        }
        if (trc) SD_LOGW("%s: tokenizer not loaded: %s", path, terr.msg);
    }
    atomic_store(&m->pool_busy, 0);
    m->loaded = 1;
    return SMDIFF_OK;
}

/* ------------------------------------------------------------- forward */

int32_t sd_model_forward(const struct smdiff_model *m, const float *embd, int64_t n_pos,
                         const int32_t *rows, int64_t n_rows, float *logits) {
    sd_arena arena;
    if (sd_arena_init(&arena, sd_forward_scratch_bytes(&m->w.hp, n_pos, n_rows, m->pool ? sd_pool_threads(m->pool) : 1), 0))
        return sd_fail(NULL, SMDIFF_E_NOMEM, "out of memory for the activations of %lld positions",
                       (long long)n_pos);
    /* The pool serves one caller at a time; a concurrent caller runs its
     * non-BLAS work inline instead of waiting. */
    struct smdiff_model *mm = (struct smdiff_model *)m; /* only the atomic flag changes */
    int have_pool = atomic_exchange(&mm->pool_busy, 1) == 0;
    sd_forward_opts o = {0, have_pool ? m->pool : NULL, NULL, NULL};
    sd_error err = {0};
    int32_t rc = sd_forward(&m->w, embd, n_pos, rows, n_rows, logits, NULL, &o, &arena, &err);
    if (have_pool) atomic_store(&mm->pool_busy, 0);
    sd_arena_destroy(&arena);
    if (rc) return sd_fail(NULL, rc, "%s", err.msg);
    return SMDIFF_OK;
}
