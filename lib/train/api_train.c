/* api_train.c -- the experimental public training API (smdiff_trainer_*,
 * include/smdiff/smdiff.h): argument checks and option handling, mapped
 * onto lib/train/trainer.h. Kept out of lib/smdiff.c so the training layer
 * can be merged without touching the other layers' API code. */
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/options.h"
#include "core/pool.h"
#include "core/rng_streams.h"
#include "diffusion/softmask.h"
#include "io/gguf.h"
#include "nn/blas.h"
#include "smdiff/smdiff.h"
#include "train/checkpoint.h"
#include "train/data.h"
#include "train/trainer.h"

static const sd_option_def defs[] = {
    {SMDIFF_TRAIN_BATCH, "batch", SMDIFF_TYPE_INT, 1, 65536, 8, 0, 0},
    {SMDIFF_TRAIN_SEQ_LEN, "seq_len", SMDIFF_TYPE_INT, 2, 1048576, 128, 0, 0},
    {SMDIFF_TRAIN_SEED, "seed", SMDIFF_TYPE_INT, 0, 9007199254740992.0, 1, 0, 0},
    {SMDIFF_TRAIN_OBJECTIVE, "objective", SMDIFF_TYPE_INT, 0, 1, SMDIFF_TRAIN_MDLM, 0, 0},
    {SMDIFF_TRAIN_SM, "sm", SMDIFF_TYPE_INT, 0, 1, 1, 0, 0},
    {SMDIFF_TRAIN_SM_PROB, "sm_prob", SMDIFF_TYPE_DOUBLE, 0, 1, 0.8, 0, 0},
    {SMDIFF_TRAIN_SM_TOPK, "sm_topk", SMDIFF_TYPE_INT, 1, 64, 3, 0, 0},
    {SMDIFF_TRAIN_LR, "lr", SMDIFF_TYPE_DOUBLE, 0, 1, 3e-4, 0, 0},
    {SMDIFF_TRAIN_SM_LR, "sm_lr", SMDIFF_TYPE_DOUBLE, 0, 1, 1e-2, 0, 0},
    {SMDIFF_TRAIN_WEIGHT_DECAY, "weight_decay", SMDIFF_TYPE_DOUBLE, 0, 1, 0.01, 0, 0},
    {SMDIFF_TRAIN_GRAD_CLIP, "grad_clip", SMDIFF_TYPE_DOUBLE, 0, 1e6, 1.0, 0, 0},
    {SMDIFF_TRAIN_WARMUP, "warmup", SMDIFF_TYPE_INT, 0, 2147483647.0, 0, 0, 0},
    {SMDIFF_TRAIN_COSINE_STEPS, "cosine_steps", SMDIFF_TYPE_INT, 0, 2147483647.0, 0, 0, 0},
    {SMDIFF_TRAIN_THREADS, "threads", SMDIFF_TYPE_INT, 0, 1024, 0, 0, 0},
    {SMDIFF_TRAIN_MIN_T, "min_t", SMDIFF_TYPE_DOUBLE, 0, 1, 1e-3, 1, 1},
};

static const sd_option_table options = {"trainer", defs, (int32_t)(sizeof defs / sizeof defs[0])};

_Static_assert(sizeof defs / sizeof defs[0] == SMDIFF_TRAIN_OPT_LAST_, "one entry per option");

struct smdiff_trainer {
    sd_optval opt[SMDIFF_TRAIN_OPT_LAST_ + 1];
    sd_error err;
    sd_trainer *t;
    sd_pool *pool;
    sd_gguf *tokenizer; /* tokenizer.* keys copied into saved models */
    int32_t *train, *val;
    int64_t n_train, n_val;
};

#define REQUIRE(cond, tr, ...)                                                     \
    do {                                                                           \
        if (!(cond)) return sd_fail((tr) ? &(tr)->err : NULL, SMDIFF_E_INVAL, __VA_ARGS__); \
    } while (0)

SMDIFF_API int32_t smdiff_trainer_create(smdiff_trainer **out) {
    REQUIRE(out, (smdiff_trainer *)NULL, "smdiff_trainer_create: out is NULL");
    smdiff_trainer *tr = sd_calloc(1, sizeof *tr);
    if (!tr) return sd_fail(NULL, SMDIFF_E_NOMEM, "out of memory creating a trainer");
    sd_options_defaults(&options, tr->opt);
    *out = tr;
    return SMDIFF_OK;
}

SMDIFF_API void smdiff_trainer_free(smdiff_trainer *tr) {
    if (!tr) return;
    sd_trainer_free(tr->t);
    sd_pool_free(tr->pool);
    sd_gguf_close(tr->tokenizer);
    sd_free(tr->train);
    sd_free(tr->val);
    sd_free(tr);
}

SMDIFF_API int32_t smdiff_trainer_set_int(smdiff_trainer *tr, int32_t key, int64_t value) {
    REQUIRE(tr, tr, "smdiff_trainer_set_int: trainer is NULL");
    if (tr->t) return sd_fail(&tr->err, SMDIFF_E_STATE, "smdiff_trainer_set_int: the model is initialised");
    return sd_option_set_int(&options, tr->opt, key, value, &tr->err);
}

SMDIFF_API int32_t smdiff_trainer_set_double(smdiff_trainer *tr, int32_t key, double value) {
    REQUIRE(tr, tr, "smdiff_trainer_set_double: trainer is NULL");
    if (tr->t) return sd_fail(&tr->err, SMDIFF_E_STATE, "smdiff_trainer_set_double: the model is initialised");
    return sd_option_set_double(&options, tr->opt, key, value, &tr->err);
}

/* Wrap a model (owned from here on) in the trainer the options describe. */
static int32_t start(smdiff_trainer *tr, sd_tmodel *m) {
    sd_trainer_opts o;
    memset(&o, 0, sizeof o);
    o.B = tr->opt[SMDIFF_TRAIN_BATCH].i;
    o.L = tr->opt[SMDIFF_TRAIN_SEQ_LEN].i;
    o.seed = (uint64_t)tr->opt[SMDIFF_TRAIN_SEED].i;
    sd_objective_defaults(&o.obj);
    o.obj.kind = tr->opt[SMDIFF_TRAIN_OBJECTIVE].i == SMDIFF_TRAIN_AR ? SD_OBJ_AR : SD_OBJ_MDLM;
    o.obj.sm = (int)tr->opt[SMDIFF_TRAIN_SM].i && o.obj.kind == SD_OBJ_MDLM;
    o.obj.sm_prob = tr->opt[SMDIFF_TRAIN_SM_PROB].d;
    o.obj.sm_k = (int32_t)tr->opt[SMDIFF_TRAIN_SM_TOPK].i;
    o.obj.eps = tr->opt[SMDIFF_TRAIN_MIN_T].d;
    o.obj.antithetic = 1;
    sd_adamw_defaults(&o.adam);
    o.adam.lr = tr->opt[SMDIFF_TRAIN_LR].d;
    o.adam.sm_lr = tr->opt[SMDIFF_TRAIN_SM_LR].d;
    o.adam.weight_decay = tr->opt[SMDIFF_TRAIN_WEIGHT_DECAY].d;
    o.adam.grad_clip = tr->opt[SMDIFF_TRAIN_GRAD_CLIP].d;
    o.adam.warmup_steps = tr->opt[SMDIFF_TRAIN_WARMUP].i;
    if (tr->opt[SMDIFF_TRAIN_COSINE_STEPS].i > 0) {
        o.adam.schedule = SD_LR_COSINE;
        o.adam.total_steps = tr->opt[SMDIFF_TRAIN_COSINE_STEPS].i;
        o.adam.min_lr_frac = 0.1;
    }
    int threads = (int)tr->opt[SMDIFF_TRAIN_THREADS].i;
    if (threads <= 0) threads = sd_cpu_count();
    sd_blas_set_threads(threads);
    int32_t rc = SMDIFF_OK;
    if (!tr->pool) rc = sd_pool_create(threads, &tr->pool, &tr->err);
    if (rc) {
        sd_tmodel_free(m);
        return rc;
    }
    return sd_trainer_create(m, &o, tr->pool, &tr->t, &tr->err);
}

SMDIFF_API int32_t smdiff_trainer_init_from_file(smdiff_trainer *tr, const char *path) {
    REQUIRE(tr && path, tr, "smdiff_trainer_init_from_file: NULL argument");
    if (tr->t) return sd_fail(&tr->err, SMDIFF_E_STATE, "smdiff_trainer_init_from_file: already initialised");
    int64_t B = tr->opt[SMDIFF_TRAIN_BATCH].i, L = tr->opt[SMDIFF_TRAIN_SEQ_LEN].i;
    sd_tmodel *m = NULL;
    int32_t rc = sd_tmodel_load_gguf(path, B, L, 0, &m, &tr->err);
    if (rc) return rc;
    if (!tr->tokenizer && (rc = sd_gguf_open(path, 1, &tr->tokenizer, &tr->err))) {
        sd_tmodel_free(m);
        return rc;
    }
    return start(tr, m);
}

SMDIFF_API int32_t smdiff_trainer_init_new(smdiff_trainer *tr, const char *arch, int32_t n_vocab,
                                           int32_t n_embd, int32_t n_layer, int32_t n_head,
                                           int32_t n_head_kv, int32_t n_ff, int32_t mask_id,
                                           int32_t eos_id) {
    REQUIRE(tr && arch, tr, "smdiff_trainer_init_new: NULL argument");
    if (tr->t) return sd_fail(&tr->err, SMDIFF_E_STATE, "smdiff_trainer_init_new: already initialised");
    sd_hparams hp;
    memset(&hp, 0, sizeof hp);
    if (!strcmp(arch, "dream"))
        hp.arch = SD_ARCH_DREAM;
    else if (!strcmp(arch, "llada"))
        hp.arch = SD_ARCH_LLADA;
    else
        return sd_fail(&tr->err, SMDIFF_E_INVAL, "smdiff_trainer_init_new: unknown architecture \"%s\" "
                       "(dream, llada)", arch);
    hp.n_vocab = n_vocab, hp.n_embd = n_embd, hp.n_layer = n_layer, hp.n_head = n_head;
    hp.n_head_kv = n_head_kv, hp.n_ff = n_ff;
    hp.n_ctx = (int32_t)tr->opt[SMDIFF_TRAIN_SEQ_LEN].i;
    hp.norm_eps = 1e-5f, hp.rope_base = 10000.0f;
    hp.shift_logits = hp.arch == SD_ARCH_DREAM;
    /* llada files are read with adjacent-pair RoPE: train in that layout */
    hp.rope_permuted = hp.arch == SD_ARCH_LLADA;
    hp.mask_id = mask_id, hp.eos_id = eos_id, hp.bos_id = -1, hp.pad_id = -1;
    if (eos_id < -1 || eos_id >= n_vocab)
        return sd_fail(&tr->err, SMDIFF_E_INVAL, "smdiff_trainer_init_new: eos id %d outside vocabulary %d",
                       eos_id, n_vocab);
    sd_tmodel *m = NULL;
    int32_t rc = sd_tmodel_create(&hp, tr->opt[SMDIFF_TRAIN_BATCH].i, tr->opt[SMDIFF_TRAIN_SEQ_LEN].i, 0,
                                  &m, &tr->err);
    if (rc) return rc;
    sd_rng r;
    sd_rng_init(&r, (uint64_t)tr->opt[SMDIFF_TRAIN_SEED].i, SD_STREAM_TRAIN_INIT);
    sd_tmodel_init_random(m, &r, 0.02f, 1e-6, 6.66, -0.75);
    return start(tr, m);
}

SMDIFF_API int32_t smdiff_trainer_set_softmask(smdiff_trainer *tr, double omega_s, double omega_a,
                                               double omega_b) {
    REQUIRE(tr, tr, "smdiff_trainer_set_softmask: trainer is NULL");
    if (!tr->t) return sd_fail(&tr->err, SMDIFF_E_STATE, "smdiff_trainer_set_softmask: no model yet");
    if (tr->t->step > 0)
        return sd_fail(&tr->err, SMDIFF_E_STATE, "smdiff_trainer_set_softmask: training has started");
    REQUIRE(omega_s > 0 && omega_s < 1 && omega_a > 0 && omega_a <= 1e4 && omega_b < 0 && omega_b >= -1e4, tr,
            "smdiff_trainer_set_softmask: need 0 < omega_s < 1, 0 < omega_a <= 1e4, -1e4 <= omega_b < 0 "
            "(got %g, %g, %g)", omega_s, omega_a, omega_b);
    float *raw = tr->t->m->p.sm_raw;
    raw[0] = (float)sd_logit(omega_s);
    raw[1] = (float)sd_softplus_inv(omega_a);
    raw[2] = (float)sd_softplus_inv(-omega_b);
    return SMDIFF_OK;
}

SMDIFF_API int32_t smdiff_trainer_set_shift_logits(smdiff_trainer *tr, int32_t on) {
    REQUIRE(tr, tr, "smdiff_trainer_set_shift_logits: trainer is NULL");
    REQUIRE(on == 0 || on == 1, tr, "smdiff_trainer_set_shift_logits: on must be 0 or 1 (got %d)", on);
    if (!tr->t) return sd_fail(&tr->err, SMDIFF_E_STATE, "smdiff_trainer_set_shift_logits: no model yet");
    if (tr->t->step > 0)
        return sd_fail(&tr->err, SMDIFF_E_STATE, "smdiff_trainer_set_shift_logits: training has started");
    tr->t->m->hp.shift_logits = on;
    return SMDIFF_OK;
}

SMDIFF_API int32_t smdiff_trainer_set_tokenizer_file(smdiff_trainer *tr, const char *path) {
    REQUIRE(tr && path, tr, "smdiff_trainer_set_tokenizer_file: NULL argument");
    sd_gguf *g = NULL;
    int32_t rc = sd_gguf_open(path, 1, &g, &tr->err);
    if (rc) return rc;
    sd_gguf_close(tr->tokenizer);
    tr->tokenizer = g;
    return SMDIFF_OK;
}

SMDIFF_API int32_t smdiff_trainer_set_data(smdiff_trainer *tr, const int32_t *train, int64_t n_train,
                                           const int32_t *val, int64_t n_val) {
    REQUIRE(tr && train && val, tr, "smdiff_trainer_set_data: NULL argument");
    if (!tr->t) return sd_fail(&tr->err, SMDIFF_E_STATE, "smdiff_trainer_set_data: no model yet");
    if (n_train < 0 || n_val < 0) return sd_fail(&tr->err, SMDIFF_E_INVAL, "smdiff_trainer_set_data: negative size");
    int32_t *a = sd_malloc((size_t)(n_train ? n_train : 1) * sizeof(int32_t));
    int32_t *b = sd_malloc((size_t)(n_val ? n_val : 1) * sizeof(int32_t));
    if (!a || !b) {
        sd_free(a);
        sd_free(b);
        return sd_fail(&tr->err, SMDIFF_E_NOMEM, "smdiff_trainer_set_data: out of memory");
    }
    memcpy(a, train, (size_t)n_train * sizeof(int32_t));
    memcpy(b, val, (size_t)n_val * sizeof(int32_t));
    /* validate both before switching, so a refused call changes nothing */
    int32_t rc = SMDIFF_OK;
    if (n_val < tr->t->o.L)
        rc = sd_fail(&tr->err, SMDIFF_E_INVAL, "validation data has %lld tokens, fewer than one sequence "
                     "of %lld (corpus too small)", (long long)n_val, (long long)tr->t->o.L);
    for (int64_t i = 0; !rc && i < n_val; i++)
        if (b[i] < 0 || b[i] >= tr->t->m->hp.n_vocab)
            rc = sd_fail(&tr->err, SMDIFF_E_INVAL, "validation token %lld is %d, outside vocabulary %d",
                         (long long)i, b[i], tr->t->m->hp.n_vocab);
    if (!rc && (rc = sd_trainer_set_data(tr->t, a, n_train))) sd_error_forward(&tr->err, &tr->t->err);
    if (rc) {
        sd_free(a);
        sd_free(b);
        return rc;
    }
    sd_free(tr->train);
    sd_free(tr->val);
    tr->train = a, tr->n_train = n_train, tr->val = b, tr->n_val = n_val;
    return SMDIFF_OK;
}

SMDIFF_API int32_t smdiff_trainer_step(smdiff_trainer *tr, double *loss) {
    REQUIRE(tr, tr, "smdiff_trainer_step: trainer is NULL");
    if (!tr->t || !tr->train) return sd_fail(&tr->err, SMDIFF_E_STATE, "smdiff_trainer_step: no model or no data");
    int32_t rc = sd_trainer_step(tr->t, loss, NULL);
    return rc ? sd_error_forward(&tr->err, &tr->t->err) : SMDIFF_OK;
}

SMDIFF_API int32_t smdiff_trainer_eval(smdiff_trainer *tr, int32_t n_batches, double *loss) {
    REQUIRE(tr && loss, tr, "smdiff_trainer_eval: NULL argument");
    if (!tr->t || !tr->val) return sd_fail(&tr->err, SMDIFF_E_STATE, "smdiff_trainer_eval: no model or no data");
    int32_t rc = sd_trainer_eval(tr->t, tr->val, tr->n_val, n_batches, loss);
    return rc ? sd_error_forward(&tr->err, &tr->t->err) : SMDIFF_OK;
}

SMDIFF_API int32_t smdiff_trainer_steps(const smdiff_trainer *tr, int64_t *steps) {
    REQUIRE(tr && steps, (smdiff_trainer *)NULL, "smdiff_trainer_steps: NULL argument");
    *steps = tr->t ? tr->t->step : 0;
    return SMDIFF_OK;
}

SMDIFF_API int32_t smdiff_trainer_save(smdiff_trainer *tr, const char *model_path, int32_t f16,
                                       const char *state_path) {
    REQUIRE(tr && model_path, tr, "smdiff_trainer_save: NULL argument");
    if (!tr->t) return sd_fail(&tr->err, SMDIFF_E_STATE, "smdiff_trainer_save: no model");
    sd_ckpt_opts o = {NULL, f16 ? SD_GGML_F16 : SD_GGML_F32,
                      tr->t->o.obj.sm ? tr->t->o.obj.sm_k : 0, tr->tokenizer};
    int32_t rc = sd_tmodel_save_gguf(tr->t->m, model_path, &o, &tr->err);
    if (!rc && state_path) {
        rc = sd_trainer_save_state(tr->t, state_path);
        if (rc) sd_error_forward(&tr->err, &tr->t->err);
    }
    return rc;
}

SMDIFF_API int32_t smdiff_trainer_resume(smdiff_trainer *tr, const char *state_path) {
    REQUIRE(tr && state_path, tr, "smdiff_trainer_resume: NULL argument");
    if (!tr->t) return sd_fail(&tr->err, SMDIFF_E_STATE, "smdiff_trainer_resume: initialise the model first");
    int32_t rc = sd_trainer_load_state(tr->t, state_path);
    return rc ? sd_error_forward(&tr->err, &tr->t->err) : SMDIFF_OK;
}

SMDIFF_API const char *smdiff_trainer_last_error(const smdiff_trainer *tr) {
    if (!tr) return sd_tls_error()->msg;
    return tr->err.msg;
}

/* the model's tokenizer behind the corpus walker's callback; keeps the
 * tokenizer's own message for the error report */
typedef struct tok_ctx {
    const smdiff_model *model;
    char msg[256];
} tok_ctx;

static int32_t tokenize_with_model(void *ud, const char *text, size_t n, int32_t *out, size_t cap,
                                   size_t *n_out) {
    tok_ctx *c = ud;
    int32_t rc = smdiff_model_tokenize(c->model, text, n, 0, out, cap, n_out);
    if (rc && rc != SMDIFF_E_BUFFER) snprintf(c->msg, sizeof c->msg, "%s", smdiff_last_error());
    return rc;
}

SMDIFF_API int32_t smdiff_train_tokenize_corpus(const smdiff_model *model, const char *const *paths,
                                                int32_t n_paths, int32_t eos_id, const char *out_path,
                                                int64_t *n_tokens, int64_t *n_documents) {
    REQUIRE(model && paths && n_paths > 0 && out_path && eos_id >= 0, (smdiff_trainer *)NULL,
            "smdiff_train_tokenize_corpus: NULL argument, no paths or negative EOS id");
    for (int32_t i = 0; i < n_paths; i++)
        REQUIRE(paths[i], (smdiff_trainer *)NULL, "smdiff_train_tokenize_corpus: path %d is NULL", (int)i);
    int32_t *tok = NULL;
    int64_t n = 0, docs = 0;
    sd_error err = {0};
    tok_ctx c = {model, ""};
    int32_t rc = sd_data_tokenize_paths(paths, n_paths, tokenize_with_model, &c, eos_id, &tok, &n, &docs, &err);
    if (!rc) rc = sd_data_write_tokens(out_path, tok, n, &err);
    sd_free(tok);
    if (rc) return sd_fail(NULL, rc, "%s%s%s", err.msg, c.msg[0] ? ": " : "", c.msg);
    if (n_tokens) *n_tokens = n;
    if (n_documents) *n_documents = docs;
    return SMDIFF_OK;
}
