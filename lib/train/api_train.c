/* api_train.c -- the experimental public training API (smdiff_trainer_*,
 * include/smdiff/smdiff.h): argument checks and option handling, mapped
 * onto lib/train/trainer.h. Kept out of lib/smdiff.c so the training layer
 * can be merged without touching the other layers' API code. */
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/log.h"
#include "core/options.h"
#include "core/pool.h"
#include "core/rng_streams.h"
#include "diffusion/softmask.h"
#include "io/gguf.h"
#include "nn/blas.h"
#include "nn/model.h"
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
    {SMDIFF_TRAIN_LR, "lr", SMDIFF_TYPE_DOUBLE, 0, 1, 3e-4, 0, 0},
    {SMDIFF_TRAIN_SM_LR, "sm_lr", SMDIFF_TYPE_DOUBLE, 0, 1, 1e-2, 0, 0},
    {SMDIFF_TRAIN_WEIGHT_DECAY, "weight_decay", SMDIFF_TYPE_DOUBLE, 0, 1, 0.01, 0, 0},
    {SMDIFF_TRAIN_GRAD_CLIP, "grad_clip", SMDIFF_TYPE_DOUBLE, 0, 1e6, 1.0, 0, 0},
    {SMDIFF_TRAIN_WARMUP, "warmup", SMDIFF_TYPE_INT, 0, 2147483647.0, 0, 0, 0},
    {SMDIFF_TRAIN_COSINE_STEPS, "cosine_steps", SMDIFF_TYPE_INT, 0, 2147483647.0, 0, 0, 0},
    {SMDIFF_TRAIN_THREADS, "threads", SMDIFF_TYPE_INT, 0, 1024, 0, 0, 0},
    {SMDIFF_TRAIN_MIN_T, "min_t", SMDIFF_TYPE_DOUBLE, 0, 1, 1e-3, 1, 1},
    /* the from-scratch shape; defaults are the bundled model's */
    {SMDIFF_TRAIN_N_VOCAB, "n_vocab", SMDIFF_TYPE_INT, 2, 16777216, 50258, 0, 0},
    {SMDIFF_TRAIN_N_EMBD, "n_embd", SMDIFF_TYPE_INT, 1, 65536, 160, 0, 0},
    {SMDIFF_TRAIN_N_LAYER, "n_layer", SMDIFF_TYPE_INT, 1, 1024, 6, 0, 0},
    {SMDIFF_TRAIN_N_HEAD, "n_head", SMDIFF_TYPE_INT, 1, 4096, 5, 0, 0},
    {SMDIFF_TRAIN_N_HEAD_KV, "n_head_kv", SMDIFF_TYPE_INT, 0, 4096, 0, 0, 0},
    {SMDIFF_TRAIN_N_FF, "n_ff", SMDIFF_TYPE_INT, 1, 1048576, 512, 0, 0},
    {SMDIFF_TRAIN_CONTEXT, "context", SMDIFF_TYPE_INT, 0, 1048576, 0, 0, 0},
    {SMDIFF_TRAIN_MASK_ID, "mask_id", SMDIFF_TYPE_INT, -1, 16777215, -1, 0, 0},
    {SMDIFF_TRAIN_EOS_ID, "eos_id", SMDIFF_TYPE_INT, -1, 16777215, -1, 0, 0},
    {SMDIFF_TRAIN_SHIFT_LOGITS, "shift_logits", SMDIFF_TYPE_INT, -1, 1, -1, 0, 0},
    {SMDIFF_TRAIN_RESUME_FORCE, "resume_force", SMDIFF_TYPE_INT, 0, 1, 0, 0, 0},
};

static const sd_option_table options = {defs, (int32_t)(sizeof defs / sizeof defs[0])};

_Static_assert(sizeof defs / sizeof defs[0] == SMDIFF_TRAIN_OPT_LAST_ - SMDIFF_TRAIN_OPT_FIRST_ + 1, "one entry per option");

struct smdiff_trainer {
    sd_optval opt[SMDIFF_TRAIN_OPT_LAST_ - SMDIFF_TRAIN_OPT_FIRST_ + 1];
    sd_error err;
    /* smdiff_trainer_set_softmask's starting point (applied at init) */
    int32_t sm_set;
    double sm_omega[3]; /* omega_s, omega_a, omega_b */
    int32_t sm_k;
    sd_trainer *t;
    sd_pool *pool;
    sd_gguf *tokenizer; /* tokenizer.* keys copied into saved models */
    int32_t *train, *val;
    int64_t n_train, n_val;
};

#define ERR_OF SD_ERR_OF /* core/options.h */

#define REQUIRE(cond, tr, ...)                                                \
    do {                                                                      \
        if (!(cond)) return sd_fail(ERR_OF(tr), SMDIFF_E_INVAL, __VA_ARGS__); \
    } while (0)

SMDIFF_API int32_t smdiff_trainer_create(smdiff_trainer **out) {
    REQUIRE(out, (smdiff_trainer *)NULL, "smdiff_trainer_create: out is NULL");
    smdiff_trainer *tr = sd_calloc(1, sizeof *tr);
    if (!tr) return sd_fail(NULL, SMDIFF_E_NOMEM, "out of memory creating a trainer");
    sd_options_defaults(&options, tr->opt);
    tr->sm_k = 3; /* the paper's k for language modelling */
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

SD_OPTION_READERS(trainer, smdiff_trainer, options)

SMDIFF_API int32_t smdiff_trainer_set_softmask(smdiff_trainer *tr, const smdiff_softmask *sm) {
    REQUIRE(tr && sm, tr, "smdiff_trainer_set_softmask: NULL argument");
    if (tr->t)
        return sd_fail(&tr->err, SMDIFF_E_STATE, "smdiff_trainer_set_softmask: the model is initialised "
                       "(set the starting soft-mask parameters before)");
    /* the schedule's bounds are the constraints: omega_s in (0,1), omega_a > 0, omega_b < 0 */
    tr->sm_omega[0] = sm->opt[SD_OPT_SLOT(SMDIFF_SM_SCALE)].d;
    tr->sm_omega[1] = sm->opt[SD_OPT_SLOT(SMDIFF_SM_STEEPNESS)].d;
    tr->sm_omega[2] = sm->opt[SD_OPT_SLOT(SMDIFF_SM_CENTRE)].d;
    tr->sm_k = (int32_t)sm->opt[SD_OPT_SLOT(SMDIFF_SM_TOPK)].i;
    tr->sm_set = 1;
    return SMDIFF_OK;
}

#define OPT_I(tr, key) ((tr)->opt[SD_OPT_SLOT(key)].i)

/* Options that apply to a model however it was made: the starting SM
 * parameters and the shifted-logits choice. */
static void apply_to_model(const smdiff_trainer *tr, sd_tmodel *m) {
    if (tr->sm_set) {
        float *raw = m->p.sm_raw;
        raw[0] = (float)sd_logit(tr->sm_omega[0]);
        raw[1] = (float)sd_softplus_inv(tr->sm_omega[1]);
        raw[2] = (float)sd_softplus_inv(-tr->sm_omega[2]);
    }
    if (OPT_I(tr, SMDIFF_TRAIN_SHIFT_LOGITS) >= 0) m->hp.shift_logits = (int32_t)OPT_I(tr, SMDIFF_TRAIN_SHIFT_LOGITS);
}

/* Wrap a model (owned from here on) in the trainer the options describe. */
static int32_t start(smdiff_trainer *tr, sd_tmodel *m) {
    sd_trainer_opts o;
    memset(&o, 0, sizeof o);
    o.B = tr->opt[SD_OPT_SLOT(SMDIFF_TRAIN_BATCH)].i;
    o.L = tr->opt[SD_OPT_SLOT(SMDIFF_TRAIN_SEQ_LEN)].i;
    o.seed = (uint64_t)tr->opt[SD_OPT_SLOT(SMDIFF_TRAIN_SEED)].i;
    sd_objective_defaults(&o.obj);
    o.obj.kind = tr->opt[SD_OPT_SLOT(SMDIFF_TRAIN_OBJECTIVE)].i == SMDIFF_TRAIN_AR ? SD_OBJ_AR : SD_OBJ_MDLM;
    o.obj.sm = (int)tr->opt[SD_OPT_SLOT(SMDIFF_TRAIN_SM)].i && o.obj.kind == SD_OBJ_MDLM;
    o.obj.sm_prob = tr->opt[SD_OPT_SLOT(SMDIFF_TRAIN_SM_PROB)].d;
    o.obj.sm_k = tr->sm_k;
    o.obj.eps = tr->opt[SD_OPT_SLOT(SMDIFF_TRAIN_MIN_T)].d;
    o.obj.antithetic = 1;
    sd_adamw_defaults(&o.adam);
    o.adam.lr = tr->opt[SD_OPT_SLOT(SMDIFF_TRAIN_LR)].d;
    o.adam.sm_lr = tr->opt[SD_OPT_SLOT(SMDIFF_TRAIN_SM_LR)].d;
    o.adam.weight_decay = tr->opt[SD_OPT_SLOT(SMDIFF_TRAIN_WEIGHT_DECAY)].d;
    o.adam.grad_clip = tr->opt[SD_OPT_SLOT(SMDIFF_TRAIN_GRAD_CLIP)].d;
    o.adam.warmup_steps = tr->opt[SD_OPT_SLOT(SMDIFF_TRAIN_WARMUP)].i;
    if (tr->opt[SD_OPT_SLOT(SMDIFF_TRAIN_COSINE_STEPS)].i > 0) {
        o.adam.schedule = SD_LR_COSINE;
        o.adam.total_steps = tr->opt[SD_OPT_SLOT(SMDIFF_TRAIN_COSINE_STEPS)].i;
        o.adam.min_lr_frac = 0.1;
    }
    apply_to_model(tr, m);
    int threads = (int)tr->opt[SD_OPT_SLOT(SMDIFF_TRAIN_THREADS)].i;
    if (threads <= 0) threads = sd_cpu_count();
    int32_t rc = sd_blas_reserve_threads(threads, &tr->err);
    if (!rc && !tr->pool) rc = sd_pool_create(threads, &tr->pool, &tr->err);
    if (rc) {
        sd_tmodel_free(m);
        return rc;
    }
    return sd_trainer_create(m, &o, tr->pool, &tr->t, &tr->err);
}

SMDIFF_API int32_t smdiff_trainer_init_from_file(smdiff_trainer *tr, const char *path) {
    REQUIRE(tr && path, tr, "smdiff_trainer_init_from_file: NULL argument");
    if (tr->t) return sd_fail(&tr->err, SMDIFF_E_STATE, "smdiff_trainer_init_from_file: already initialised");
    int64_t B = tr->opt[SD_OPT_SLOT(SMDIFF_TRAIN_BATCH)].i, L = tr->opt[SD_OPT_SLOT(SMDIFF_TRAIN_SEQ_LEN)].i;
    sd_tmodel *m = NULL;
    int32_t rc = sd_tmodel_load_gguf(path, B, L, 0, &m, &tr->err);
    if (rc) return rc;
    if (!tr->tokenizer && (rc = sd_gguf_open(path, 1, &tr->tokenizer, &tr->err))) {
        sd_tmodel_free(m);
        return rc;
    }
    return start(tr, m);
}

/* The from-scratch shape of the SMDIFF_TRAIN_N_* options; SMDIFF_E_INVAL
 * naming the option that does not fit. */
static int32_t shape_from_options(smdiff_trainer *tr, sd_hparams *hp) {
    hp->n_vocab = (int32_t)OPT_I(tr, SMDIFF_TRAIN_N_VOCAB);
    hp->n_embd = (int32_t)OPT_I(tr, SMDIFF_TRAIN_N_EMBD);
    hp->n_layer = (int32_t)OPT_I(tr, SMDIFF_TRAIN_N_LAYER);
    hp->n_head = (int32_t)OPT_I(tr, SMDIFF_TRAIN_N_HEAD);
    hp->n_head_kv = (int32_t)OPT_I(tr, SMDIFF_TRAIN_N_HEAD_KV);
    if (hp->n_head_kv == 0) hp->n_head_kv = hp->n_head;
    hp->n_ff = (int32_t)OPT_I(tr, SMDIFF_TRAIN_N_FF);
    int64_t L = OPT_I(tr, SMDIFF_TRAIN_SEQ_LEN), ctx = OPT_I(tr, SMDIFF_TRAIN_CONTEXT);
    hp->n_ctx = (int32_t)(ctx ? ctx : L);
    int64_t mask = OPT_I(tr, SMDIFF_TRAIN_MASK_ID), eos = OPT_I(tr, SMDIFF_TRAIN_EOS_ID);
    hp->mask_id = (int32_t)(mask < 0 ? hp->n_vocab - 1 : mask);
    hp->eos_id = (int32_t)eos, hp->bos_id = -1, hp->pad_id = -1;
    const char *fn = "smdiff_trainer_init_new";
    if (hp->n_embd % hp->n_head)
        return sd_fail(&tr->err, SMDIFF_E_INVAL, "%s: n_embd %d is not a multiple of n_head %d", fn, hp->n_embd,
                       hp->n_head);
    if (hp->n_head % hp->n_head_kv)
        return sd_fail(&tr->err, SMDIFF_E_INVAL, "%s: n_head_kv %d does not divide n_head %d", fn, hp->n_head_kv,
                       hp->n_head);
    if (ctx && ctx < L)
        return sd_fail(&tr->err, SMDIFF_E_INVAL, "%s: context %lld is shorter than seq_len %lld", fn,
                       (long long)ctx, (long long)L);
    if (hp->mask_id >= hp->n_vocab || eos >= hp->n_vocab)
        return sd_fail(&tr->err, SMDIFF_E_INVAL, "%s: mask_id %d or eos_id %d outside the vocabulary of n_vocab %d",
                       fn, hp->mask_id, hp->eos_id, hp->n_vocab);
    return SMDIFF_OK;
}

SMDIFF_API int32_t smdiff_trainer_init_new(smdiff_trainer *tr, const char *arch) {
    REQUIRE(tr && arch, tr, "smdiff_trainer_init_new: NULL argument");
    if (tr->t) return sd_fail(&tr->err, SMDIFF_E_STATE, "smdiff_trainer_init_new: already initialised");
    sd_hparams hp;
    memset(&hp, 0, sizeof hp);
    if (!strcmp(arch, "dream"))
        hp.arch = SD_ARCH_DREAM;
    else if (!strcmp(arch, "llada"))
        hp.arch = SD_ARCH_LLADA;
    else if (!strcmp(arch, "mdlm"))
        hp.arch = SD_ARCH_MDLM;
    else
        return sd_fail(&tr->err, SMDIFF_E_INVAL, "smdiff_trainer_init_new: unknown architecture \"%s\" "
                       "(dream, llada, mdlm)", arch);
    int32_t rc = shape_from_options(tr, &hp);
    if (rc) return rc;
    hp.norm_eps = 1e-5f, hp.rope_base = 10000.0f;
    /* MDLM's DiT: its conditioning width and timestep features (cond_dim 128,
     * 256 features), no time conditioning; every head its own K/V */
    if (hp.arch == SD_ARCH_MDLM) {
        hp.n_cond = 128, hp.n_freq = 256;
        if (hp.n_head_kv != hp.n_head)
            return sd_fail(&tr->err, SMDIFF_E_INVAL, "smdiff_trainer_init_new: mdlm has as many kv heads as heads "
                           "(n_head_kv %d, n_head %d)", hp.n_head_kv, hp.n_head);
    }
    hp.shift_logits = hp.arch == SD_ARCH_DREAM;
    /* llada files are read with adjacent-pair RoPE: train in that layout */
    hp.rope_permuted = hp.arch == SD_ARCH_LLADA;
    sd_tmodel *m = NULL;
    rc = sd_tmodel_create(&hp, OPT_I(tr, SMDIFF_TRAIN_BATCH), OPT_I(tr, SMDIFF_TRAIN_SEQ_LEN), 0, &m, &tr->err);
    if (rc) return rc;
    sd_rng r;
    sd_rng_init(&r, (uint64_t)OPT_I(tr, SMDIFF_TRAIN_SEED), SD_STREAM_TRAIN_INIT);
    sd_tmodel_init_random(m, &r, 0.02f, 1e-6, 6.66, -0.75);
    return start(tr, m);
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

SMDIFF_API int32_t smdiff_trainer_set_data(smdiff_trainer *tr, const int32_t *train, size_t n_train,
                                           const int32_t *val, size_t n_val) {
    REQUIRE(tr && train && val, tr, "smdiff_trainer_set_data: NULL argument");
    if (!tr->t) return sd_fail(&tr->err, SMDIFF_E_STATE, "smdiff_trainer_set_data: no model yet");
    if (n_train > (size_t)INT64_MAX / sizeof(int32_t) || n_val > (size_t)INT64_MAX / sizeof(int32_t))
        return sd_fail(&tr->err, SMDIFF_E_INVAL, "smdiff_trainer_set_data: %zu or %zu tokens is not a size", n_train,
                       n_val);
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
    if ((int64_t)n_val < tr->t->o.L)
        rc = sd_fail(&tr->err, SMDIFF_E_INVAL, "validation data has %zu tokens, fewer than one sequence "
                     "of %lld (corpus too small)", n_val, (long long)tr->t->o.L);
    for (size_t i = 0; !rc && i < n_val; i++)
        if (b[i] < 0 || b[i] >= tr->t->m->hp.n_vocab)
            rc = sd_fail(&tr->err, SMDIFF_E_INVAL, "validation token %zu is %d, outside vocabulary %d", i, b[i],
                         tr->t->m->hp.n_vocab);
    if (!rc && (rc = sd_trainer_set_data(tr->t, a, (int64_t)n_train))) sd_error_forward(&tr->err, &tr->t->err);
    if (rc) {
        sd_free(a);
        sd_free(b);
        return rc;
    }
    sd_free(tr->train);
    sd_free(tr->val);
    tr->train = a, tr->n_train = (int64_t)n_train, tr->val = b, tr->n_val = (int64_t)n_val;
    return SMDIFF_OK;
}

SMDIFF_API int32_t smdiff_trainer_step(smdiff_trainer *tr, double *loss) {
    REQUIRE(tr, tr, "smdiff_trainer_step: trainer is NULL");
    if (!tr->t || !tr->train) return sd_fail(&tr->err, SMDIFF_E_STATE, "smdiff_trainer_step: no model or no data");
    int32_t rc = sd_trainer_step(tr->t, loss, NULL);
    return rc ? sd_error_forward(&tr->err, &tr->t->err) : SMDIFF_OK;
}

SMDIFF_API int32_t smdiff_trainer_eval(smdiff_trainer *tr, size_t n_batches, double *loss) {
    REQUIRE(tr && loss, tr, "smdiff_trainer_eval: NULL argument");
    if (!tr->t || !tr->val) return sd_fail(&tr->err, SMDIFF_E_STATE, "smdiff_trainer_eval: no model or no data");
    if (n_batches < 1 || n_batches > (size_t)INT32_MAX)
        return sd_fail(&tr->err, SMDIFF_E_INVAL, "smdiff_trainer_eval: n_batches %zu outside 1..2^31-1", n_batches);
    int32_t rc = sd_trainer_eval(tr->t, tr->val, tr->n_val, (int32_t)n_batches, loss);
    return rc ? sd_error_forward(&tr->err, &tr->t->err) : SMDIFF_OK;
}

SMDIFF_API int32_t smdiff_trainer_steps(const smdiff_trainer *tr, int64_t *steps) {
    REQUIRE(tr && steps, tr, "smdiff_trainer_steps: NULL argument");
    *steps = tr->t ? tr->t->step : 0;
    return SMDIFF_OK;
}

SMDIFF_API int32_t smdiff_trainer_stats(const smdiff_trainer *tr, smdiff_train_stats *out) {
    REQUIRE(tr && out, tr, "smdiff_trainer_stats: NULL argument");
    if (!tr->t) return sd_fail(ERR_OF(tr), SMDIFF_E_STATE, "smdiff_trainer_stats: no model yet");
    const sd_trainer *t = tr->t;
    const float *raw = t->m->p.sm_raw;
    memset(out, 0, sizeof *out);
    out->steps = t->step;
    out->omega_s = sd_sigmoid(raw[0]);
    out->omega_a = sd_softplus(raw[1]);
    out->omega_b = -sd_softplus(raw[2]);
    out->grad_r_s = t->last_grad_sm[0];
    out->last_step_sm = t->last_sm;
    out->flops = t->flops;
    out->plain_step_flops = t->plain_flops;
    out->compute = t->flops / t->plain_flops;
    return SMDIFF_OK;
}

/* The options a state file records and a resume compares: the training
 * hyper-parameters. Not the thread count (it changes only the rounding of
 * sums; docs/TRAINING.md), not the from-scratch shape (a model from a file
 * has its own; the state's tensors must match the model's either way),
 * and not the batch shape and objective, which the state records itself
 * and the loader requires ("shape mismatch on resume", not forceable). */
static int recorded_option(int32_t key) {
    switch (key) {
    case SMDIFF_TRAIN_SEED: case SMDIFF_TRAIN_SM: case SMDIFF_TRAIN_SM_PROB: case SMDIFF_TRAIN_LR:
    case SMDIFF_TRAIN_SM_LR: case SMDIFF_TRAIN_WEIGHT_DECAY: case SMDIFF_TRAIN_GRAD_CLIP: case SMDIFF_TRAIN_WARMUP:
    case SMDIFF_TRAIN_COSINE_STEPS: case SMDIFF_TRAIN_MIN_T: return 1;
    default: return 0;
    }
}

/* What the model and the soft-mask setup make of the options, compared
 * with the options: the mask id and the shifted logits (from the file or
 * the options) and the soft-mask k. */
typedef struct {
    const char *name;
    int64_t value;
} run_value;

static void run_values(const smdiff_trainer *tr, run_value v[3]) {
    v[0] = (run_value){"mask_id", tr->t->m->hp.mask_id};
    v[1] = (run_value){"shift_logits", tr->t->m->hp.shift_logits};
    v[2] = (run_value){"sm_k", tr->t->o.obj.sm_k};
}

#define OPT_KEY_PREFIX "smdiff.train.opt."

/* The state file: the trainer's exact state and the options of the run. */
static int32_t save_state(smdiff_trainer *tr, const char *path) {
    sd_gguf_writer *w = NULL;
    int32_t rc = sd_trainer_state_writer(tr->t, &w);
    if (rc) return sd_error_forward(&tr->err, &tr->t->err);
    char key[96];
    for (int32_t i = 0; !rc && i < options.n; i++) {
        const sd_option_def *d = &options.defs[i];
        if (!recorded_option(d->key)) continue;
        snprintf(key, sizeof key, OPT_KEY_PREFIX "%s", d->name);
        const sd_optval *v = &tr->opt[SD_OPT_SLOT(d->key)];
        rc = d->type == SMDIFF_TYPE_INT ? sd_gguf_set_scalar(w, key, SD_GGUF_INT64, &v->i)
                                        : sd_gguf_set_scalar(w, key, SD_GGUF_FLOAT64, &v->d);
    }
    run_value rv[3];
    run_values(tr, rv);
    for (int i = 0; !rc && i < 3; i++) {
        snprintf(key, sizeof key, OPT_KEY_PREFIX "%s", rv[i].name);
        rc = sd_gguf_set_scalar(w, key, SD_GGUF_INT64, &rv[i].value);
    }
    if (rc) sd_error_forward(&tr->err, sd_gguf_writer_error(w));
    else rc = sd_gguf_write(w, path, &tr->err);
    sd_gguf_writer_free(w);
    return rc;
}

SMDIFF_API int32_t smdiff_trainer_save(smdiff_trainer *tr, const char *model_path, int32_t f16,
                                       const char *state_path) {
    REQUIRE(tr && model_path, tr, "smdiff_trainer_save: NULL argument");
    if (!tr->t) return sd_fail(&tr->err, SMDIFF_E_STATE, "smdiff_trainer_save: no model");
    sd_ckpt_opts o = {NULL, f16 ? SD_GGML_F16 : SD_GGML_F32,
                      tr->t->o.obj.sm ? tr->t->o.obj.sm_k : 0, tr->tokenizer};
    sd_error e = {0}; /* the writer starts from a clean record */
    int32_t rc = sd_tmodel_save_gguf(tr->t->m, model_path, &o, &e);
    if (rc) sd_error_forward(&tr->err, &e);
    if (!rc && state_path) rc = save_state(tr, state_path);
    return rc;
}

/* Compare the options recorded in state file g with the trainer's; with
 * differences, SMDIFF_E_INVAL naming each (unless resume_force is set,
 * when they are logged and the trainer's values apply). */
static int32_t compare_options(smdiff_trainer *tr, const sd_gguf *g, const char *path) {
    char diff[SD_ERROR_MSG_MAX / 2] = "", key[96];
    size_t used = 0;
    int n_diff = 0;
    for (int32_t i = 0; i < options.n; i++) {
        const sd_option_def *d = &options.defs[i];
        if (!recorded_option(d->key)) continue;
        snprintf(key, sizeof key, OPT_KEY_PREFIX "%s", d->name);
        const sd_optval *v = &tr->opt[SD_OPT_SLOT(d->key)];
        sd_error e = {0};
        char was[64], now[64];
        if (d->type == SMDIFF_TYPE_INT) {
            int64_t x;
            if (sd_gguf_get_i64(g, key, &x, &e)) continue; /* not recorded */
            if (x == v->i) continue;
            snprintf(was, sizeof was, "%lld", (long long)x);
            snprintf(now, sizeof now, "%lld", (long long)v->i);
        } else {
            double x;
            if (sd_gguf_get_f64(g, key, &x, &e)) continue;
            if (x == v->d || (x != x && v->d != v->d)) continue;
            snprintf(was, sizeof was, "%.17g", x);
            snprintf(now, sizeof now, "%.17g", v->d);
        }
        n_diff++;
        if (used < sizeof diff)
            used += (size_t)snprintf(diff + used, sizeof diff - used, "%s%s %s (the state has %s)", n_diff > 1 ? ", " : "",
                                     d->name, now, was);
    }
    run_value rv[3];
    run_values(tr, rv);
    for (int i = 0; i < 3; i++) {
        snprintf(key, sizeof key, OPT_KEY_PREFIX "%s", rv[i].name);
        int64_t x;
        sd_error e = {0};
        if (sd_gguf_get_i64(g, key, &x, &e) || x == rv[i].value) continue;
        n_diff++;
        if (used < sizeof diff)
            used += (size_t)snprintf(diff + used, sizeof diff - used, "%s%s %lld (the state has %lld)",
                                     n_diff > 1 ? ", " : "", rv[i].name, (long long)rv[i].value, (long long)x);
    }
    if (!n_diff) return SMDIFF_OK;
    if (tr->opt[SD_OPT_SLOT(SMDIFF_TRAIN_RESUME_FORCE)].i) {
        SD_LOGW("resuming %s with different hyper-parameters, as forced: %s", path, diff);
        return SMDIFF_OK;
    }
    return sd_fail(&tr->err, SMDIFF_E_INVAL, "smdiff_trainer_resume: %s was written by a run with other "
                   "hyper-parameters: %s (set resume_force to continue with this run's)", path, diff);
}

SMDIFF_API int32_t smdiff_trainer_resume(smdiff_trainer *tr, const char *state_path) {
    REQUIRE(tr && state_path, tr, "smdiff_trainer_resume: NULL argument");
    if (!tr->t) return sd_fail(&tr->err, SMDIFF_E_STATE, "smdiff_trainer_resume: initialise the model first");
    sd_gguf *g = NULL;
    int32_t rc = sd_gguf_open(state_path, 1, &g, &tr->err);
    if (rc) return rc;
    if (!sd_gguf_has_checksum(g) && !tr->opt[SD_OPT_SLOT(SMDIFF_TRAIN_RESUME_FORCE)].i)
        rc = sd_fail(&tr->err, SMDIFF_E_FORMAT, "smdiff_trainer_resume: %s has no checksum, so its integrity "
                     "cannot be checked (not a training state, or one written before smdiff 0.2; set "
                     "resume_force to load it anyway)", state_path);
    if (!rc && (rc = sd_trainer_check_state(tr->t, g, state_path))) sd_error_forward(&tr->err, &tr->t->err);
    if (!rc) rc = compare_options(tr, g, state_path);
    if (!rc && (rc = sd_trainer_load_state_from(tr->t, g, state_path))) sd_error_forward(&tr->err, &tr->t->err);
    sd_gguf_close(g);
    return rc;
}

SMDIFF_API const char *smdiff_trainer_last_error(const smdiff_trainer *tr) {
    return tr ? tr->err.msg : "trainer is NULL";
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
                                                size_t n_paths, int32_t eos_id, const char *out_path,
                                                size_t *n_tokens, size_t *n_documents) {
    SD_MODEL_HOLD(model);
    REQUIRE(model && paths && n_paths > 0 && n_paths <= (size_t)INT32_MAX && out_path && eos_id >= 0,
            (smdiff_trainer *)NULL, "smdiff_train_tokenize_corpus: NULL argument, no paths or negative EOS id");
    for (size_t i = 0; i < n_paths; i++)
        REQUIRE(paths[i], (smdiff_trainer *)NULL, "smdiff_train_tokenize_corpus: path %zu is NULL", i);
    int32_t *tok = NULL;
    int64_t n = 0, docs = 0;
    sd_error err = {0};
    tok_ctx c = {model, ""};
    int32_t rc = sd_data_tokenize_paths(paths, (int32_t)n_paths, tokenize_with_model, &c, eos_id, &tok, &n, &docs,
                                        &err);
    if (!rc) rc = sd_data_write_tokens(out_path, tok, n, &err);
    sd_free(tok);
    if (rc) return sd_fail(NULL, rc, "%s%s%s", err.msg, c.msg[0] ? ": " : "", c.msg);
    if (n_tokens) *n_tokens = (size_t)n;
    if (n_documents) *n_documents = (size_t)docs;
    return SMDIFF_OK;
}
