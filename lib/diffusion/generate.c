/* generate.c -- the denoising loop with soft-masking (docs/DECODING.md).
 *
 * The canvas holds context ids and the positions to fill: a prompt (P ids)
 * followed by gen_length masks (sd_generate), or any canvas whose mask ids
 * are the positions to fill, in spans anywhere (sd_generate_canvas:
 * infilling). The G positions to fill, in canvas order (fill[]), are cut
 * into n_blocks blocks of block_length decoded in that order (LLaDA's
 * semi-autoregressive blocks; one block when block_length is 0); context
 * anywhere in the canvas is attended to bidirectionally. One step of a
 * block is this sequence of functions over the run's arrays (sd_generate
 * at the end calls them):
 *
 *   find_masked      the block's still-masked positions -> pos[nm], then,
 *                    with SM across blocks, those of later blocks
 *                    -> pos[nm..n_rows)
 *   embed_inputs     input embeddings [L, d]: context and committed
 *                    positions use their token rows; a still-masked one
 *                    (1 - lambda) E[MASK] + lambda sum_i pi_i E[v_i] from
 *                    its previous prediction (lambda = 0 at the first step,
 *                    with SM off, and -- unless SM across blocks is on --
 *                    at a block's first step and outside the current block)
 *   forward          logits [n_rows, V] of those positions only (row p-1
 *                    for position p with shifted logits, dream)
 *   compute_stats    per-row statistics (stats.h), written straight into
 *                    the step view's arrays and each position's SM top-k
 *   select_positions the strategy reads the view and picks positions
 *   commit           they take their candidate tokens (all that remain at
 *                    a block's last step); remasks, whose SM input becomes
 *                    the token they held (a one-hot prediction)
 *   update_softmask  lambda = gate * lambda(H(p)) per still-masked position
 *                    with a prediction, for the next forward pass
 *   report           step callback, then the EOS check (per span)
 *
 * A run is a state machine over those steps (run_open, next_step,
 * prepare_step, the model's forward, finish_step), so one run (decode) and
 * a batch of runs sharing one forward pass per step (sd_gen_step_all) are
 * the same code.
 *
 * Block caches (docs/DECODING.md, "Caches"): with a prefix cache a step
 * that does not refresh computes only the rows from the block's first
 * position (or the row before it, with shifted logits) to the end of the
 * canvas against the cached keys and values of the rows before; with a
 * dual cache only the block's rows and the rows that predict its masked
 * positions. A refresh -- the first step of every block, and every N-th
 * step with SMDIFF_SAMPLER_CACHE_REFRESH = N -- computes every row and
 * rewrites the whole cache; with N = 1 every step refreshes and the run is
 * exactly the uncached one.
 *
 * What a strategy declares (smdiff_decoder.h) is all the loop knows of it:
 * its schedule (n_transfer and the steps of a block), its confidence kind,
 * the view fields it reads (the others stay NULL, and H(q) is computed
 * only when read) and whether it re-masks (the view then lists the block's
 * committed positions and a block runs all its steps). Names are never
 * compared.
 *
 * Memory: the workspace belongs to the sampler. One block holds every array
 * of a run (layout) and is replaced only when a larger canvas, block,
 * vocabulary or thread count needs more; the worker pool and the forward
 * pass's arena are kept too. A run allocates nothing after its first
 * forward pass, and a second run of the same shape allocates nothing.
 *
 * Randomness is counter-based: row statistics draw from (seed, global step,
 * canvas position), the strategy from a stream keyed by the global step,
 * so runs repeat exactly on any thread count.
 */
#include <math.h>
#include <string.h>
#include <time.h>

#include "core/alloc.h"
#include "core/arena.h"
#include "core/pool.h"
#include "core/rng.h"
#include "core/rng_streams.h"
#include "decoder.h"
#include "generate.h"
#include "nn/model.h"
#include "stats.h"

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* ------------------------------------------------------ model adapter */

static void model_embed(void *ctx, int32_t id, float *out) {
    sd_gen_model_ctx *c = ctx;
    sd_embed_token(c->w, id, out);
}

static size_t model_cache_floats(void *ctx, int64_t L) {
    sd_gen_model_ctx *c = ctx;
    return sd_kv_cache_floats(&c->w->hp, L);
}

/* The sequences' requests as the transformer core takes them, carved from
 * the arena: one sd_fwd_seq and one cache view per sequence, and the
 * stacked index of each logits row. */
static int32_t core_request(sd_gen_model_ctx *c, const sd_gen_fwd *f, size_t n, sd_fwd_seq **seqs_out,
                            int32_t **out_rows, int64_t *n_out, sd_error *err) {
    const sd_hparams *hp = &c->w->hp;
    sd_fwd_seq *seqs = sd_arena_alloc(&c->arena, n * sizeof *seqs);
    sd_kv_cache *kv = sd_arena_alloc(&c->arena, n * sizeof *kv);
    int64_t total = 0;
    for (size_t i = 0; i < n; i++) total += f[i].n_rows;
    int32_t *out = sd_arena_alloc(&c->arena, sizeof(int32_t) * (size_t)(total ? total : 1));
    if (!seqs || !kv || !out) return sd_fail(err, SMDIFF_E_NOMEM, "out of memory for a forward request");
    int64_t row0 = 0, k = 0;
    for (size_t i = 0; i < n; i++) {
        int64_t n_pos = f[i].pos ? f[i].n_pos : f[i].L;
        if (f[i].cache) sd_kv_cache_init(&kv[i], hp, f[i].cache, f[i].L);
        /* A model conditioned on the noise level (mdlm with time conditioning)
         * gets MDLM's log-linear sigma(t) = -log(1 - (1 - 1e-3) t) with t the
         * fraction of the canvas being predicted: the masked fraction when the
         * whole canvas is one block. Other models ignore it. */
        double t = (double)f[i].n_rows / (double)f[i].L;
        float sigma = (float)-log1p(-(1.0 - 1e-3) * t);
        sd_fwd_seq q = {f[i].embd, f[i].L, f[i].pos, n_pos, f[i].cache ? &kv[i] : NULL, sigma};
        seqs[i] = q;
        /* rows are canvas positions; the core wants their index among the
         * stacked rows computed (pos and rows are ascending) */
        for (int64_t r = 0, j = 0; r < f[i].n_rows; r++) {
            int32_t want = f[i].rows[r];
            if (f[i].pos) {
                while (j < n_pos && f[i].pos[j] < want) j++;
                if (j == n_pos || f[i].pos[j] != want)
                    return sd_fail(err, SMDIFF_E_INTERNAL, "logits row %d is not among the rows computed", (int)want);
                out[k++] = (int32_t)(row0 + j);
            } else {
                out[k++] = (int32_t)(row0 + want);
            }
        }
        row0 += n_pos;
    }
    *seqs_out = seqs, *out_rows = out, *n_out = k;
    return SMDIFF_OK;
}

static int32_t model_forward(void *ctx, const sd_gen_fwd *f, size_t n, float *logits, int (*abort_fn)(void *),
                             void *abort_ud, sd_error *err) {
    sd_gen_model_ctx *c = ctx;
    const sd_hparams *hp = &c->w->hp;
    int64_t N = 0, n_out = 0;
    for (size_t i = 0; i < n; i++) N += f[i].pos ? f[i].n_pos : f[i].L, n_out += f[i].n_rows;
    int threads = c->pool ? sd_pool_threads(c->pool) : 1;
    size_t need = sd_forward_batch_scratch_bytes(hp, N, n_out, threads) +
                  n * (sizeof(sd_fwd_seq) + sizeof(sd_kv_cache) + 128) + sizeof(int32_t) * (size_t)n_out + 64;
    if (need > c->arena_bytes) {
        sd_arena_destroy(&c->arena);
        memset(&c->arena, 0, sizeof c->arena);
        c->arena_bytes = 0;
        if (sd_arena_init(&c->arena, need, 0))
            return sd_fail(err, SMDIFF_E_NOMEM, "out of memory for the activations of %lld rows", (long long)N);
        c->arena_bytes = need;
    }
    sd_arena_reset(&c->arena);
    sd_fwd_seq *seqs = NULL;
    int32_t *out = NULL;
    int32_t rc = core_request(c, f, n, &seqs, &out, &n_out, err);
    if (rc) return rc;
    /* A shared pool serves one caller at a time; a concurrent run does its
     * non-BLAS work inline. */
    int have_pool = !c->pool_busy || atomic_exchange(c->pool_busy, 1) == 0;
    sd_forward_opts o = {0, have_pool ? c->pool : NULL, abort_fn, abort_ud};
    rc = sd_forward_batch(c->w, seqs, (int64_t)n, out, n_out, logits, NULL, &o, &c->arena, err);
    if (have_pool && c->pool_busy) atomic_store(c->pool_busy, 0);
    return rc;
}

void sd_gen_model_of_weights(const sd_weights *w, sd_pool *pool, int32_t eos_id, sd_gen_model_ctx *ctx,
                             sd_gen_model *gm) {
    const sd_hparams *hp = &w->hp;
    ctx->w = w;
    ctx->pool = pool;
    ctx->pool_busy = NULL;
    sd_gen_model g = {hp->n_vocab,      hp->n_embd,  hp->n_ctx,    hp->mask_id,        eos_id,
                      hp->shift_logits, model_embed, model_forward,
                      /* mdlm's conditioning follows each step's noise
                       * level: its keys and values do not carry over */
                      hp->arch == SD_ARCH_MDLM ? NULL : model_cache_floats, ctx};
    *gm = g;
}

void sd_gen_model_of(const struct smdiff_model *model, sd_gen_model_ctx *ctx, sd_gen_model *gm) {
    sd_gen_model_of_weights(&model->w, model->pool, model->w.hp.eos_id, ctx, gm);
    ctx->pool_busy = (atomic_int *)&model->pool_busy; /* only the atomic flag changes */
}

void sd_gen_model_ctx_free(sd_gen_model_ctx *ctx) {
    sd_arena_destroy(&ctx->arena);
    memset(ctx, 0, sizeof *ctx);
}

/* ---------------------------------------------------------- one run */

/* What embedding row p holds. */
enum { EMBD_STALE, EMBD_TOKEN, EMBD_MASK, EMBD_MIX };

typedef struct run {
    /* the request */
    struct smdiff_sampler *s;
    const sd_gen_model *m;
    const int32_t *ids;     /* the prompt, or the whole canvas */
    int is_canvas;          /* 1: ids is a canvas whose masks are filled */
    smdiff_decoder dec;     /* the strategy: select and its declaration */
    void *dec_ud;
    int32_t P, L, d, V, k;  /* prompt (0 for a canvas), canvas, embedding width,
                               vocabulary, SM top-k (>= 1) */
    size_t G, B, R;         /* positions to fill, block length, logits rows (B, or G
                               with SM across blocks) */
    size_t n_blocks, spb;   /* blocks, steps per block (as the schedule runs them) */
    size_t passes;          /* forward passes a block may run: spb, + 1 for a strategy
                               declaring SMDIFF_FINAL_ARGMAX (the argmax pass) */
    int32_t eos;            /* -1: no EOS handling */
    int n_threads;
    double alg_temp, threshold, eps, factor;
    double remdm[4];        /* eta, t_on, t_off, alpha_on */
    sd_stats_params sp;
    int sm_on, sm_across;
    int cache, refresh;     /* SMDIFF_CACHE_*; refresh every N steps of a block (0: at
                               its start only) */
    sd_pool *pool;
    /* the canvas, [L] */
    int32_t *canvas;
    int32_t *block_of;      /* block of each position to fill, -1 for context */
    int32_t *fill;          /* [G] the positions to fill, canvas order */
    uint8_t *committed;     /* committed this step (step callback) */
    float *lambda;          /* weight each masked position uses next step */
    float *conf_at;         /* confidence of each position when committed */
    uint8_t *state;         /* EMBD_* of embd row p */
    int32_t *sm_ids;        /* [L, k] top-k of the position's last prediction */
    float *sm_probs;        /* [L, k] */
    float *embd;            /* [L, d] */
    float *e_mask;          /* [d] */
    float *mix;             /* [k + 1, d] candidate rows of one mix, then the row it replaces */
    int inputs_changed;     /* an input row or the row set changed since the last forward pass */
    int last_full;          /* the last forward pass computed every row (a refresh, or no cache) */
    float *kv;              /* the key/value cache (cache on) */
    int32_t *cpos;          /* [L] canvas positions a cached step computes */
    size_t n_cpos;
    /* the rows of a step, [R]: the block's masked positions first (the
     * view's arrays), then those of later blocks (SM across blocks) */
    float *logits;          /* [R, V]; in a batch, the batch's buffer */
    int batched;            /* a batch places the logits */
    int32_t *pos, *rows, *tok;
    uint64_t *row_id;
    float *conf, *top1, *top2, *ent_q, *ent_p;
    /* the strategy's answer and the block's committed positions, [B] */
    int32_t *commit, *remask, *c_pos, *c_tok;
    float *c_conf;
    void *dec_scratch;      /* [B * scratch_per_position] */
    void *stats_scratch;
    float *ts;              /* [spb + 1] the block's timesteps */
    sd_stats_out out;       /* where compute_stats writes */
    smdiff_step_view view;
    sd_rng rng;
    /* where the run is */
    size_t block, step, nm, n_rows;
    size_t lo, hi;          /* the current block, fill[lo..hi) */
    int32_t g, total_steps; /* global step */
    int stopped;            /* EOS reached */
} run;

/* ---------------------------------------------------------- workspace */

struct sd_gen_workspace {
    void *mem;          /* every array of a run, carved by layout() */
    size_t mem_bytes;
    sd_pool *pool;      /* the sampler's worker pool; NULL for one thread */
    int pool_threads;
    sd_gen_model_ctx model; /* a loaded model's forward scratch */
    run r;              /* the run in progress (or the last one) */
    int open;           /* r is a run that has not finished */
};

void sd_gen_workspace_free(struct sd_gen_workspace *ws) {
    if (!ws) return;
    sd_free(ws->mem);
    sd_pool_free(ws->pool);
    sd_gen_model_ctx_free(&ws->model);
    sd_free(ws);
}

static struct sd_gen_workspace *workspace_of(struct smdiff_sampler *s) {
    if (!s->ws) s->ws = sd_calloc(1, sizeof *s->ws);
    return s->ws;
}

static double view_uniform(void *st) { return sd_rng_uniform(st); }

typedef struct abort_shim {
    smdiff_abort_fn fn;
    void *ud;
} abort_shim;

static int abort_poll(void *ud) {
    abort_shim *a = ud;
    return a->fn(a->ud) != 0;
}

/* The canvas's shape: for a prompt, P ids then gen_length masks; for a
 * canvas, its masks are the positions to fill. */
static int32_t check_canvas(run *r, size_t n_ids, size_t G_opt) {
    sd_error *err = &r->s->err;
    const sd_gen_model *m = r->m;
    if (m->mask_id < 0 || m->mask_id >= m->n_vocab)
        return sd_fail(err, SMDIFF_E_FORMAT, "the model has no valid mask token id (%d)", (int)m->mask_id);
    for (size_t i = 0; i < n_ids; i++)
        if (r->ids[i] < 0 || r->ids[i] >= m->n_vocab)
            return sd_fail(err, SMDIFF_E_RANGE, "%s[%zu] = %d outside the vocabulary [0, %d)",
                           r->is_canvas ? "canvas" : "prompt", i, (int)r->ids[i], (int)m->n_vocab);
    if (!r->is_canvas) {
        if (n_ids < 1) return sd_fail(err, SMDIFF_E_INVAL, "the prompt is empty (at least one token is needed)");
        if (n_ids > (size_t)m->n_ctx || G_opt > (size_t)m->n_ctx - n_ids)
            return sd_fail(err, SMDIFF_E_RANGE, "prompt (%zu) + gen_length (%zu) exceeds the context of %d",
                           n_ids, G_opt, (int)m->n_ctx);
        r->P = (int32_t)n_ids;
        r->G = G_opt;
        r->L = (int32_t)(n_ids + G_opt);
        return SMDIFF_OK;
    }
    if (n_ids > (size_t)m->n_ctx)
        return sd_fail(err, SMDIFF_E_RANGE, "a canvas of %zu positions exceeds the context of %d", n_ids,
                       (int)m->n_ctx);
    size_t G = 0;
    for (size_t i = 0; i < n_ids; i++) G += r->ids[i] == m->mask_id;
    if (G == 0)
        return sd_fail(err, SMDIFF_E_INVAL, "the canvas has no mask id (%d) to fill", (int)m->mask_id);
    if (m->shift_logits && r->ids[0] == m->mask_id)
        return sd_fail(err, SMDIFF_E_INVAL,
                       "canvas position 0 is a mask, but with shifted logits nothing predicts it");
    r->P = 0;
    r->G = G;
    r->L = (int32_t)n_ids;
    return SMDIFF_OK;
}

/* Blocks and steps against the positions to fill. */
static int32_t check_schedule(run *r, size_t capacity, size_t steps) {
    sd_error *err = &r->s->err;
    size_t G = r->G, B = r->B;
    const char *what = r->is_canvas ? "the canvas's masks" : "gen_length";
    if (B > G || G % B != 0)
        return sd_fail(err, SMDIFF_E_INVAL, "block_length %zu must divide %s (%zu)", B, what, G);
    if (steps > G && !r->dec.remask)
        return sd_fail(err, SMDIFF_E_INVAL, "steps %zu exceed %s (%zu): at most one step per token", steps,
                       what, G);
    if (steps % (G / B) != 0)
        return sd_fail(err, SMDIFF_E_INVAL, "steps %zu must be a multiple of the number of blocks %zu",
                       steps, G / B);
    if (!r->is_canvas && capacity < G)
        return sd_fail(err, SMDIFF_E_BUFFER, "output capacity %zu is smaller than gen_length %zu",
                       capacity, G);
    return SMDIFF_OK;
}

/* The run's shape and statistics parameters from the sampler's options (the
 * only place that reads them) and the strategy's declaration. */
static int32_t plan(run *r, size_t n_ids, size_t capacity) {
    struct smdiff_sampler *s = r->s;
    const sd_optval *o = s->opt;
    size_t steps = (size_t)o[SD_OPT_SLOT(SMDIFF_SAMPLER_STEPS)].i;
    int32_t rc = check_canvas(r, n_ids, (size_t)o[SD_OPT_SLOT(SMDIFF_SAMPLER_GEN_LENGTH)].i);
    if (rc) return rc;
    r->B = o[SD_OPT_SLOT(SMDIFF_SAMPLER_BLOCK_LENGTH)].i ? (size_t)o[SD_OPT_SLOT(SMDIFF_SAMPLER_BLOCK_LENGTH)].i : r->G;
    if (sd_decoder_lookup(s->strategy, &r->dec, &r->dec_ud))
        return sd_fail(&s->err, SMDIFF_E_NOT_FOUND, "decoder strategy '%s' is not registered", s->strategy);
    if ((rc = check_schedule(r, capacity, steps))) return rc;
    r->n_blocks = r->G / r->B;
    r->spb = sd_schedule_steps(r->dec.schedule, steps / r->n_blocks, r->B);
    r->passes = r->spb + (r->dec.final == SMDIFF_FINAL_ARGMAX);
    r->total_steps = (int32_t)(r->n_blocks * r->passes);
    r->d = r->m->n_embd;
    r->V = r->m->n_vocab;
    const struct smdiff_softmask *sm = &s->softmask;
    r->sm_on = sm->opt[SD_OPT_SLOT(SMDIFF_SM_MODE)].i != SMDIFF_SM_OFF;
    r->sm_across = r->sm_on && o[SD_OPT_SLOT(SMDIFF_SAMPLER_SM_ACROSS_BLOCKS)].i;
    r->cache = (int)o[SD_OPT_SLOT(SMDIFF_SAMPLER_CACHE)].i;
    r->refresh = (int)o[SD_OPT_SLOT(SMDIFF_SAMPLER_CACHE_REFRESH)].i;
    if (r->cache != SMDIFF_CACHE_OFF && !r->m->cache_floats)
        return sd_fail(&s->err, SMDIFF_E_UNSUPPORTED, "this model cannot cache keys and values (cache option %d; an mdlm model's "
                       "conditioning changes with every step's noise level, so its keys and values do not carry "
                       "over): set the cache option to off",
                       r->cache);
    r->R = r->sm_across ? r->G : r->B;
    /* Entropies cost a multiply-add per logit: H(p) only for the entropy
     * rule of SM, H(q) only for a strategy that reads it. */
    int want_h = r->sm_on && sm->opt[SD_OPT_SLOT(SMDIFF_SM_MODE)].i == SMDIFF_SM_ENTROPY;
    sd_stats_params sp = {o[SD_OPT_SLOT(SMDIFF_SAMPLER_TEMPERATURE)].d, (int32_t)o[SD_OPT_SLOT(SMDIFF_SAMPLER_TOP_K)].i,
                          o[SD_OPT_SLOT(SMDIFF_SAMPLER_TOP_P)].d, r->sm_on ? (int32_t)sm->opt[SD_OPT_SLOT(SMDIFF_SM_TOPK)].i : 0,
                          (r->dec.needs & SMDIFF_NEED_ENTROPY) != 0, (uint64_t)o[SD_OPT_SLOT(SMDIFF_SAMPLER_SEED)].i,
                          0, !want_h};
    if (!isfinite(sp.temperature) || !isfinite(sp.top_p))
        return sd_fail(&s->err, SMDIFF_E_RANGE, "temperature and top_p must be finite");
    r->sp = sp;
    r->k = sp.sm_k > 0 ? sp.sm_k : 1;
    r->eos = o[SD_OPT_SLOT(SMDIFF_SAMPLER_STOP_AT_EOS)].i ? r->m->eos_id : -1;
    r->n_threads = o[SD_OPT_SLOT(SMDIFF_SAMPLER_THREADS)].i ? (int)o[SD_OPT_SLOT(SMDIFF_SAMPLER_THREADS)].i : sd_cpu_count();
    r->alg_temp = o[SD_OPT_SLOT(SMDIFF_SAMPLER_ALG_TEMP)].d;
    r->threshold = o[SD_OPT_SLOT(SMDIFF_SAMPLER_THRESHOLD)].d;
    r->factor = o[SD_OPT_SLOT(SMDIFF_SAMPLER_FACTOR)].d;
    r->eps = o[SD_OPT_SLOT(SMDIFF_SAMPLER_EPS)].d;
    double remdm[4] = {o[SD_OPT_SLOT(SMDIFF_SAMPLER_REMDM_ETA)].d, o[SD_OPT_SLOT(SMDIFF_SAMPLER_REMDM_T_ON)].d,
                       o[SD_OPT_SLOT(SMDIFF_SAMPLER_REMDM_T_OFF)].d, o[SD_OPT_SLOT(SMDIFF_SAMPLER_REMDM_ALPHA_ON)].d};
    memcpy(r->remdm, remdm, sizeof remdm);
    return SMDIFF_OK;
}

/* Carving: consecutive 64-byte aligned pieces of one block (base NULL: only
 * count). A size beyond a quarter of the address space makes the total
 * SIZE_MAX (so the sum of two never wraps). */
typedef struct carver {
    char *base;
    size_t off;
} carver;

static void *take(carver *c, size_t n, size_t size) {
    size_t bytes;
    if (c->off > SIZE_MAX / 4 || sd_mul_size(n ? n : 1, size, &bytes) || bytes > SIZE_MAX / 4) {
        c->off = SIZE_MAX;
        return NULL;
    }
    void *p = c->base ? c->base + c->off : NULL;
    c->off += (bytes + SD_ALIGN - 1) & ~(size_t)(SD_ALIGN - 1);
    return p;
}

/* Every array of the run, from base (NULL: just the size). */
static size_t layout(run *r, char *base, int n_threads) {
    carver c = {base, 0};
    size_t L = (size_t)r->L, B = r->B, R = r->R, k = (size_t)r->k, d = (size_t)r->d, V = (size_t)r->V;
    r->canvas = take(&c, L, sizeof(int32_t));
    r->block_of = take(&c, L, sizeof(int32_t));
    r->fill = take(&c, r->G, sizeof(int32_t));
    r->committed = take(&c, L, 1);
    r->lambda = take(&c, L, sizeof(float));
    r->conf_at = take(&c, L, sizeof(float));
    r->state = take(&c, L, 1);
    r->sm_ids = take(&c, L * k, sizeof(int32_t));
    r->sm_probs = take(&c, L * k, sizeof(float));
    r->embd = take(&c, L, d * sizeof(float));
    r->e_mask = take(&c, d, sizeof(float));
    r->mix = take(&c, k + 1, d * sizeof(float));
    r->logits = r->batched ? NULL : take(&c, R, V * sizeof(float));
    if (r->cache != SMDIFF_CACHE_OFF) {
        r->kv = take(&c, r->m->cache_floats(r->m->ctx, r->L), sizeof(float));
        r->cpos = take(&c, L, sizeof(int32_t));
    }
    int32_t **rows[] = {&r->pos, &r->rows, &r->tok};
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) *rows[i] = take(&c, R, sizeof(int32_t));
    int32_t **blk[] = {&r->commit, &r->remask, &r->c_pos, &r->c_tok};
    for (size_t i = 0; i < sizeof blk / sizeof blk[0]; i++) *blk[i] = take(&c, B, sizeof(int32_t));
    r->c_conf = take(&c, B, sizeof(float));
    r->row_id = take(&c, R, sizeof(uint64_t));
    float **f32[] = {&r->conf, &r->top1, &r->top2, &r->ent_q, &r->ent_p};
    for (size_t i = 0; i < sizeof f32 / sizeof f32[0]; i++) *f32[i] = take(&c, R, sizeof(float));
    r->dec_scratch = r->dec.scratch_per_position ? take(&c, B, r->dec.scratch_per_position) : NULL;
    r->stats_scratch = take(&c, sd_stats_scratch_bytes(n_threads, r->V, &r->sp), 1);
    r->ts = take(&c, r->spb + 1, sizeof(float));
    return c.off;
}

/* The sampler's pool for the thread option, and room for the run's arrays:
 * made or grown only when the last run's do not fit. */
static int32_t reserve(run *r, struct sd_gen_workspace *ws) {
    sd_error *err = &r->s->err;
    int nthreads = r->n_threads;
    if (ws->pool_threads != nthreads) {
        sd_pool_free(ws->pool);
        ws->pool = NULL;
        ws->pool_threads = 0;
        if (nthreads > 1) {
            int32_t rc = sd_pool_create(nthreads, &ws->pool, err);
            if (rc) return rc;
        }
        ws->pool_threads = nthreads;
    }
    r->pool = ws->pool;
    size_t need = layout(r, NULL, nthreads);
    if (need == SIZE_MAX)
        return sd_fail(err, SMDIFF_E_NOMEM, "a canvas of %d positions is too large to address", (int)r->L);
    if (need > ws->mem_bytes) {
        sd_free(ws->mem);
        ws->mem_bytes = 0;
        if (!(ws->mem = sd_malloc(need)))
            return sd_fail(err, SMDIFF_E_NOMEM, "out of memory for a canvas of %d positions", (int)r->L);
        ws->mem_bytes = need;
    }
    layout(r, ws->mem, nthreads);
    return SMDIFF_OK;
}

/* The canvas, and the parts of the step view and the statistics' output
 * that stay fixed for the run: the arrays the strategy declared it reads
 * (the others NULL), the confidence of its kind. */
static void start_run(run *r) {
    const sd_gen_model *m = r->m;
    memcpy(r->canvas, r->ids, sizeof(int32_t) * (size_t)(r->is_canvas ? r->L : r->P));
    size_t n = 0;
    for (int32_t p = 0; p < r->L; p++) {
        int fill = r->is_canvas ? r->canvas[p] == m->mask_id : p >= r->P;
        if (fill) r->canvas[p] = m->mask_id, r->fill[n++] = p;
        r->block_of[p] = fill ? (int32_t)((n - 1) / r->B) : -1;
    }
    memset(r->lambda, 0, sizeof(float) * (size_t)r->L);
    memset(r->conf_at, 0, sizeof(float) * (size_t)r->L);
    memset(r->state, EMBD_STALE, (size_t)r->L);
    m->embed(m->ctx, m->mask_id, r->e_mask);
    uint32_t need = r->dec.needs;
    int raw = r->dec.confidence == SMDIFF_CONFIDENCE_RAW;
    float *conf = need & SMDIFF_NEED_CONFIDENCE ? r->conf : NULL;
    sd_stats_out out = {r->tok, raw ? NULL : conf, raw ? conf : NULL,
                        need & SMDIFF_NEED_TOP2 ? r->top1 : NULL, need & SMDIFF_NEED_TOP2 ? r->top2 : NULL,
                        need & SMDIFF_NEED_ENTROPY ? r->ent_q : NULL, r->sm_on ? r->ent_p : NULL,
                        r->sp.sm_k ? r->sm_ids : NULL, r->sp.sm_k ? r->sm_probs : NULL, r->pos};
    r->out = out;
    smdiff_step_view *v = &r->view;
    memset(v, 0, sizeof *v);
    v->struct_size = sizeof *v;
    v->n_steps = r->spb;
    v->n_blocks = r->n_blocks;
    v->alg_temp = r->alg_temp;
    v->threshold = r->threshold;
    v->factor = r->factor;
    v->position = need & SMDIFF_NEED_POSITION ? r->pos : NULL;
    v->token = need & SMDIFF_NEED_TOKEN ? r->tok : NULL;
    v->confidence = conf;
    v->top1 = out.q_top1;
    v->top2 = out.q_top2;
    v->entropy = out.q_entropy;
    v->uniform = need & SMDIFF_NEED_RANDOM ? view_uniform : NULL;
    v->rng_state = need & SMDIFF_NEED_RANDOM ? &r->rng : NULL;
    v->scratch = r->dec_scratch;
    if (r->dec.remask) {
        v->committed_position = r->c_pos;
        v->committed_token = r->c_tok;
        v->committed_confidence = conf ? r->c_conf : NULL;
    }
    v->remask_capacity = r->B;
    v->remdm_eta = r->remdm[0];
    v->remdm_t_on = r->remdm[1];
    v->remdm_t_off = r->remdm[2];
    v->remdm_alpha_on = r->remdm[3];
    r->g = 0;
    r->stopped = 0;
    r->inputs_changed = 1;
}

/* Block b: its range, its timesteps; no prediction carries over into it
 * unless SM across blocks kept one. */
static void start_block(run *r, size_t b) {
    r->block = b;
    r->step = 0;
    r->lo = b * r->B;
    r->hi = r->lo + r->B;
    sd_dream_timesteps(r->spb, r->eps, r->ts);
    for (size_t j = r->lo; j < r->hi && !r->sm_across; j++) r->lambda[r->fill[j]] = 0.0f;
    r->view.block = b;
    r->inputs_changed = 1; /* other rows */
}

/* Positions fill[from..to) still masked, appended to the step's rows. */
static void add_rows(run *r, size_t from, size_t to) {
    const sd_gen_model *m = r->m;
    for (size_t j = from; j < to; j++) {
        int32_t p = r->fill[j];
        if (r->canvas[p] != m->mask_id) continue;
        r->pos[r->n_rows] = p;
        r->rows[r->n_rows] = m->shift_logits ? p - 1 : p; /* never 0 with shifted logits (plan) */
        r->row_id[r->n_rows] = (uint64_t)p;
        r->n_rows++;
    }
}

/* The block's still-masked positions, their logits rows and RNG streams;
 * with SM across blocks, then those of the later blocks (earlier blocks
 * are decided). Returns whether the block has a step to run: a mask left,
 * or a re-masking strategy (which runs every step of its budget). */
static int find_masked(run *r) {
    r->n_rows = 0;
    add_rows(r, r->lo, r->hi);
    r->nm = r->n_rows;
    if (r->sm_across) add_rows(r, r->hi, r->G);
    return r->nm > 0 || (r->dec.remask && r->step < r->spb);
}

/* Bring embedding row p up to date with the canvas and the SM inputs. */
static void embed_row(run *r, int32_t p) {
    const sd_gen_model *m = r->m;
    float *row = r->embd + (size_t)p * (size_t)r->d;
    if (r->canvas[p] != m->mask_id || r->block_of[p] < 0) {
        if (r->state[p] != EMBD_TOKEN) {
            m->embed(m->ctx, r->canvas[p], row);
            r->state[p] = EMBD_TOKEN;
            r->inputs_changed = 1;
        }
    } else if (r->lambda[p] > 0.0f) {
        const int32_t *ids = r->sm_ids + (size_t)p * (size_t)r->k;
        float *old = r->mix + (size_t)r->k * (size_t)r->d;
        memcpy(old, row, sizeof(float) * (size_t)r->d);
        int32_t local[SD_STATS_MAX_K];
        for (int32_t i = 0; i < r->k; i++) {
            m->embed(m->ctx, ids[i], r->mix + (size_t)i * (size_t)r->d);
            local[i] = i;
        }
        sd_softmask_mix(r->mix, r->d, r->e_mask, local, r->sm_probs + (size_t)p * (size_t)r->k, r->k,
                        r->lambda[p], row);
        if (r->state[p] != EMBD_MIX || memcmp(old, row, sizeof(float) * (size_t)r->d)) r->inputs_changed = 1;
        r->state[p] = EMBD_MIX;
    } else if (r->state[p] != EMBD_MASK) {
        memcpy(row, r->e_mask, sizeof(float) * (size_t)r->d);
        r->state[p] = EMBD_MASK;
        r->inputs_changed = 1;
    }
}

static void embed_inputs(run *r) {
    for (int32_t p = 0; p < r->L; p++) embed_row(r, p);
}

/* Whether this step is the argmax pass after a block's scheduled steps. */
static int argmax_pass(const run *r) { return r->step == r->spb; }

/* The step's row statistics; the argmax pass takes each row's most
 * probable token (temperature 0, no filter). */
static int32_t compute_stats(run *r) {
    sd_stats_params sp = r->sp;
    sp.ctr = (uint64_t)r->g;
    if (argmax_pass(r)) sp.temperature = 0.0, sp.top_k = 0, sp.top_p = 1.0;
    return sd_stats_rows(r->pool, r->logits, (int64_t)r->n_rows, r->V, r->row_id, &sp, r->stats_scratch, &r->out,
                         &r->s->err);
}

/* The block's positions committed at earlier steps, for a re-masking
 * strategy's view. */
static size_t list_committed(run *r) {
    size_t n = 0;
    for (size_t j = r->lo; j < r->hi; j++) {
        int32_t p = r->fill[j];
        if (r->canvas[p] == r->m->mask_id) continue;
        r->c_pos[n] = p;
        r->c_tok[n] = r->canvas[p];
        r->c_conf[n] = r->conf_at[p];
        n++;
    }
    return n;
}

/* The step's counts and timesteps into the view, then the strategy. */
static int32_t select_positions(run *r, int32_t *nc, int32_t *nr) {
    smdiff_step_view *v = &r->view;
    *nc = *nr = 0;
    if (argmax_pass(r)) return SMDIFF_OK; /* commit() takes every masked position */
    size_t n_masked_total = 0;
    for (size_t j = 0; j < r->G; j++) n_masked_total += r->canvas[r->fill[j]] == r->m->mask_id;
    v->n_committed = r->dec.remask ? list_committed(r) : 0;
    v->step = r->step;
    v->n_masked = r->nm;
    v->n_masked_total = n_masked_total;
    v->n_transfer = sd_schedule_n_transfer(r->dec.schedule, r->nm, r->B, r->step, r->spb, r->ts);
    v->t = r->ts[r->step];
    v->s = r->ts[r->step + 1];
    if (v->uniform) sd_rng_init(&r->rng, r->sp.seed, SD_STREAM_DECODER(r->g));
    int32_t rc = r->dec.select(v, r->commit, nc, r->remask, nr, r->dec_ud);
    const char *name = r->s->strategy;
    if (rc)
        return sd_fail(&r->s->err, rc < 0 ? rc : SMDIFF_E_INVAL, "strategy '%s' failed at step %d (%d)", name,
                       (int)r->g, (int)rc);
    if (*nc < 0 || (size_t)*nc > r->nm || *nr < 0 || (size_t)*nr > v->remask_capacity)
        return sd_fail(&r->s->err, SMDIFF_E_INVAL,
                       "strategy '%s' returned %d commits and %d remasks for %zu masked positions", name,
                       (int)*nc, (int)*nr, r->nm);
    return SMDIFF_OK;
}

/* A re-masked position's prediction is the token it held: a one-hot top-k
 * (entropy 0), so its soft-mask weight is the largest the rule gives. */
static void remask_position(run *r, int32_t p) {
    int32_t *ids = r->sm_ids + (size_t)p * (size_t)r->k;
    float *probs = r->sm_probs + (size_t)p * (size_t)r->k;
    for (int32_t i = 0; i < r->k; i++) ids[i] = r->canvas[p], probs[i] = i == 0 ? 1.0f : 0.0f;
    r->canvas[p] = r->m->mask_id;
}

/* The chosen positions (every one left at the block's last pass) take
 * their candidates; the remasked ones become masks again. The block's last
 * scheduled step re-masks nothing. */
static int32_t commit(run *r, int32_t nc, int32_t nr) {
    const char *name = r->s->strategy;
    int32_t mask_id = r->m->mask_id;
    int last = r->step + 1 == r->passes, last_scheduled = r->step + 1 >= r->spb;
    memset(r->committed, 0, (size_t)r->L);
    for (int32_t c = 0; c < nc; c++) {
        int32_t j = r->commit[c];
        if (j < 0 || (size_t)j >= r->nm || r->committed[r->pos[j]])
            return sd_fail(&r->s->err, SMDIFF_E_INVAL, "strategy '%s' chose an invalid or repeated index %d",
                           name, (int)j);
        r->committed[r->pos[j]] = 1;
    }
    for (int32_t c = 0; c < nr && !last_scheduled; c++) {
        int32_t p = r->remask[c];
        if (p < 0 || p >= r->L || r->block_of[p] != (int32_t)r->block || r->canvas[p] == mask_id ||
            r->committed[p])
            return sd_fail(&r->s->err, SMDIFF_E_INVAL,
                           "strategy '%s' asked to remask position %d, not a token committed earlier in this "
                           "block (or twice)",
                           name, (int)p);
        r->committed[p] = 2; /* re-masked: for update_softmask; reported as 0 */
    }
    for (size_t j = 0; j < r->nm; j++) {
        int32_t p = r->pos[j];
        if (last) r->committed[p] = 1;
        if (!r->committed[p]) continue;
        r->canvas[p] = r->tok[j];
        if (r->view.confidence) r->conf_at[p] = r->conf[j];
    }
    for (int32_t c = 0; c < nr && !last_scheduled; c++) remask_position(r, r->remask[c]);
    return SMDIFF_OK;
}

/* Whether the next forward pass belongs to this block: its budget has
 * steps left and it has a mask left (or a re-masking strategy). */
static int block_continues(const run *r) {
    if (r->step + 1 >= r->passes) return 0;
    if (r->dec.remask && r->step + 1 < r->spb) return 1;
    for (size_t j = r->lo; j < r->hi; j++)
        if (r->canvas[r->fill[j]] == r->m->mask_id) return 1;
    return 0;
}

/* SM inputs for the next forward pass: lambda of each still-masked row
 * (its top-k ids and probabilities are already in place, from
 * compute_stats) and of each re-masked position (one-hot, entropy 0). The
 * gate is the window factor of that pass: the block's next step, or --
 * for rows of later blocks once this block is done -- the next block's
 * first step, counted as a step with a prediction. */
static void update_softmask(run *r) {
    const struct smdiff_softmask *sm = &r->s->softmask;
    int32_t step = (int32_t)r->step + 1, n_steps = (int32_t)r->passes;
    double gate = r->sm_on ? sd_softmask_gate(sm, step, n_steps) : 0.0;
    double gate_next = !r->sm_across ? 0.0 : block_continues(r) ? gate : sd_softmask_window(sm, 0.0);
    for (size_t j = 0; j < r->n_rows; j++) {
        int32_t p = r->pos[j];
        double g = j < r->nm ? gate : gate_next;
        r->lambda[p] = 0.0f;
        if (r->canvas[p] != r->m->mask_id || g <= 0) continue;
        r->lambda[p] = (float)(g * sd_softmask_lambda_from_entropy(sm, r->ent_p[j]));
    }
    for (size_t j = r->lo; j < r->hi; j++) {
        int32_t p = r->fill[j];
        if (r->committed[p] != 2) continue;
        r->committed[p] = 0;
        r->lambda[p] = gate > 0 ? (float)(gate * sd_softmask_lambda_from_entropy(sm, 0.0)) : 0.0f;
    }
}

/* Per span (a run of consecutive positions to fill): once an EOS is
 * committed and every position of the span before it is decided, the rest
 * of the span is padding, so it becomes EOS; context is never touched.
 * When that leaves nothing masked, the run stops (for a prompt, this is
 * stopping at the first EOS). */
static void check_eos(run *r) {
    if (r->eos < 0) return;
    const int32_t mask_id = r->m->mask_id, *fill = r->fill;
    int padded = 0;
    size_t masked = 0;
    for (size_t j = 0, end; j < r->G; j = end) {
        for (end = j + 1; end < r->G && fill[end] == fill[end - 1] + 1; end++) {}
        size_t q = j;
        while (q < end && r->canvas[fill[q]] != mask_id && r->canvas[fill[q]] != r->eos) q++;
        if (q < end && r->canvas[fill[q]] == r->eos) {
            for (; q < end; q++) r->canvas[fill[q]] = r->eos;
            padded = 1;
        }
        for (; q < end; q++) masked += r->canvas[fill[q]] == mask_id;
    }
    if (padded && masked == 0) r->stopped = 1;
}
static int32_t report(run *r) {
    struct smdiff_sampler *s = r->s;
    if (s->step_fn &&
        s->step_fn(r->g, r->total_steps, r->canvas, r->committed, r->lambda, r->L, s->step_ud))
        return sd_fail(&s->err, SMDIFF_E_ABORTED, "stopped by the step callback after step %d", (int)r->g);
    r->g++;
    check_eos(r);
    return SMDIFF_OK;
}

/* ------------------------------------------------- a step, in three parts */

/* Whether this step recomputes every row and the whole cache: always
 * without a cache, else at a block's first step and every `refresh`-th. */
static int refreshes(const run *r) {
    return r->cache == SMDIFF_CACHE_OFF || r->step == 0 || (r->refresh > 0 && r->step % (size_t)r->refresh == 0);
}

/* The rows a cached step computes, into cpos (ascending): with a prefix
 * cache, every row from the block's first position (or the first logits
 * row, one before it with shifted logits) to the end of the canvas; with a
 * dual cache, the block's positions and the rows predicting its masked
 * ones -- the later blocks' rows then keep the logits, soft-mask inputs
 * and keys of the last refresh, so they get no logits now. */
static void cached_rows(run *r) {
    size_t n = 0;
    if (r->cache == SMDIFF_CACHE_PREFIX) {
        int32_t first = r->fill[r->lo];
        for (size_t j = 0; j < r->n_rows; j++) first = r->rows[j] < first ? r->rows[j] : first;
        for (int32_t p = first; p < r->L; p++) r->cpos[n++] = p;
    } else {
        r->n_rows = r->nm;
        for (size_t i = r->lo, j = 0; i < r->hi || j < r->n_rows;) { /* two ascending lists, merged */
            int32_t a = i < r->hi ? r->fill[i] : INT32_MAX, b = j < r->n_rows ? r->rows[j] : INT32_MAX;
            int32_t p = a < b ? a : b;
            i += a == p, j += b == p;
            r->cpos[n++] = p;
        }
    }
    r->n_cpos = n;
}

/* Moves to the next step to run -- the block's next one, or the first of
 * the next block that has one -- and finds its masked positions; 0 when
 * the run is over. */
static int next_step(run *r) {
    while (!r->stopped && r->block < r->n_blocks) {
        if (r->step < r->passes && find_masked(r)) return 1;
        if (r->block + 1 < r->n_blocks) start_block(r, r->block + 1);
        else r->block = r->n_blocks;
    }
    return 0;
}

/* Whether the step's forward pass is skipped: no input row and no row of
 * the step changed since the last pass (a step that committed nothing, as
 * MDLM's cached ancestral sampler relies on), so the logits in r->logits
 * are still those of these inputs -- the forward pass is a pure function of
 * them -- and only the statistics are drawn anew. Never in a batch (its
 * logits buffer is refilled every step) and never at a cache refresh
 * after a cached step: the refresh rewrites the whole cache and its logits
 * differ from the cached step's. A refresh after a full pass, or a cached
 * step after any pass, of the same inputs computes what it already has. */
static int skips_forward(const run *r) {
    return !r->inputs_changed && !r->s->no_forward_cache && !r->batched &&
           !(r->cache != SMDIFF_CACHE_OFF && refreshes(r) && !r->last_full);
}

/* Before the step's forward pass: the abort poll, the inputs and the
 * request f (f->n_rows 0: a step without a forward pass -- a re-masking
 * strategy's block with nothing masked). */
static int32_t prepare_step(run *r, sd_gen_fwd *f) {
    struct smdiff_sampler *s = r->s;
    if (s->abort_fn && s->abort_fn(s->abort_ud))
        return sd_fail(&s->err, SMDIFF_E_ABORTED, "aborted by the host before step %d", (int)r->g);
    memset(f, 0, sizeof *f);
    if (!r->n_rows) return SMDIFF_OK;
    double t0 = now_s();
    embed_inputs(r);
    f->embd = r->embd;
    f->L = r->L;
    if (r->cache != SMDIFF_CACHE_OFF) {
        f->cache = r->kv;
        if (!refreshes(r)) {
            cached_rows(r);
            f->pos = r->cpos;
            f->n_pos = (int64_t)r->n_cpos;
        }
    }
    f->rows = r->rows;
    f->n_rows = (int64_t)r->n_rows;
    if (skips_forward(r)) {
        s->forwards_skipped++;
        f->n_rows = 0; /* r->logits still hold this step's rows */
    } else {
        r->last_full = !f->pos;
    }
    r->inputs_changed = 0;
    s->time_embed += now_s() - t0;
    return SMDIFF_OK;
}

/* After it: statistics, the strategy, commits, the soft-mask inputs of the
 * next step, the report; then the step is done. */
static int32_t finish_step(run *r) {
    struct smdiff_sampler *s = r->s;
    int32_t rc, nc, nr;
    double t0 = now_s();
    if ((r->n_rows && (rc = compute_stats(r))) || (rc = select_positions(r, &nc, &nr)) ||
        (rc = commit(r, nc, nr)))
        return rc;
    update_softmask(r);
    s->time_stats += now_s() - t0;
    s->steps_run++;
    if ((rc = report(r))) return rc;
    r->step++;
    return SMDIFF_OK;
}

/* The forward pass of one run's step. */
static int32_t forward_one(run *r, const sd_gen_fwd *f) {
    struct smdiff_sampler *s = r->s;
    abort_shim shim = {s->abort_fn, s->abort_ud};
    double t0 = now_s();
    int32_t rc = r->m->forward(r->m->ctx, f, 1, r->logits, s->abort_fn ? abort_poll : NULL, &shim, &s->err);
    s->time_forward += now_s() - t0;
    if (rc == SMDIFF_E_ABORTED) sd_fail(&s->err, rc, "aborted by the host during step %d", (int)r->g);
    return rc;
}

/* The request (ids: a prompt, or a canvas) checked and planned, the
 * workspace reserved, the first block started. */
static int32_t run_open(run *r, struct smdiff_sampler *s, struct sd_gen_workspace *ws, const sd_gen_model *m,
                        const int32_t *ids, int is_canvas, size_t n_ids, size_t capacity, int batched) {
    memset(r, 0, sizeof *r);
    r->s = s;
    r->m = m;
    r->ids = ids;
    r->is_canvas = is_canvas;
    r->batched = batched;
    s->time_forward = s->time_stats = s->time_embed = 0;
    s->steps_run = s->forwards_skipped = 0;
    int32_t rc = plan(r, n_ids, capacity);
    if (rc || (rc = reserve(r, ws))) return rc;
    start_run(r);
    start_block(r, 0);
    return SMDIFF_OK;
}

static struct sd_gen_workspace *open_workspace(struct smdiff_sampler *s) {
    struct sd_gen_workspace *ws = workspace_of(s);
    if (!ws) sd_fail(&s->err, SMDIFF_E_NOMEM, "out of memory for the sampler's workspace");
    else if (ws->open) {
        sd_fail(&s->err, SMDIFF_E_STATE, "the sampler is running a sequence of a batch");
        ws = NULL;
    }
    return ws;
}

/* Every step of one run; the canvas is then in (*out)->canvas. */
static int32_t decode(struct smdiff_sampler *s, const sd_gen_model *m, const int32_t *ids, int is_canvas,
                      size_t n_ids, size_t capacity, run **out) {
    struct sd_gen_workspace *ws = open_workspace(s);
    if (!ws) return s->err.code;
    run *r = &ws->r;
    int32_t rc = run_open(r, s, ws, m, ids, is_canvas, n_ids, capacity, 0);
    sd_gen_fwd f;
    while (!rc && next_step(r))
        if (!(rc = prepare_step(r, &f)) && !(f.n_rows && (rc = forward_one(r, &f)))) rc = finish_step(r);
    *out = r;
    return rc;
}

/* A finished run's result: for a prompt, the generated ids and how many
 * precede the first EOS; for a canvas, the canvas. */
static int32_t result(run *r, int32_t *out, size_t capacity, size_t *n_out) {
    if (r->is_canvas) {
        if (capacity < (size_t)r->L)
            return sd_fail(&r->s->err, SMDIFF_E_BUFFER, "capacity %zu is smaller than the canvas (%d)", capacity,
                           (int)r->L);
        memcpy(out, r->canvas, sizeof(int32_t) * (size_t)r->L);
        *n_out = (size_t)r->L;
        return SMDIFF_OK;
    }
    if (capacity < r->G)
        return sd_fail(&r->s->err, SMDIFF_E_BUFFER, "output capacity %zu is smaller than gen_length %zu", capacity,
                       r->G);
    size_t n = r->G;
    for (size_t p = 0; r->eos >= 0 && p < r->G; p++)
        if (r->canvas[(size_t)r->P + p] == r->eos) {
            n = p;
            break;
        }
    memcpy(out, r->canvas + r->P, sizeof(int32_t) * r->G);
    *n_out = n;
    return SMDIFF_OK;
}

int32_t sd_generate(struct smdiff_sampler *s, const sd_gen_model *m, const int32_t *prompt,
                    size_t n_prompt, int32_t *out, size_t capacity, size_t *n_out) {
    run *r;
    int32_t rc = decode(s, m, prompt, 0, n_prompt, capacity, &r);
    return rc ? rc : result(r, out, capacity, n_out);
}

int32_t sd_generate_canvas(struct smdiff_sampler *s, const sd_gen_model *m, int32_t *canvas,
                           size_t n_canvas) {
    run *r;
    size_t n;
    int32_t rc = decode(s, m, canvas, 1, n_canvas, 0, &r);
    return rc ? rc : result(r, canvas, n_canvas, &n);
}

/* ------------------------------------------------------------- batches */

int32_t sd_gen_batch_open(struct smdiff_sampler *s, const sd_gen_model *m, const int32_t *ids, int is_canvas,
                          size_t n_ids, size_t capacity, int *has_step) {
    struct sd_gen_workspace *ws = open_workspace(s);
    if (!ws) return s->err.code;
    int32_t rc = run_open(&ws->r, s, ws, m, ids, is_canvas, n_ids, capacity, 1);
    if (rc) return rc;
    ws->open = 1;
    *has_step = next_step(&ws->r);
    return SMDIFF_OK;
}

void sd_gen_batch_close(struct smdiff_sampler *s) {
    if (s && s->ws) s->ws->open = 0;
}

int32_t sd_gen_batch_step(struct smdiff_sampler *const *s, size_t n, const sd_gen_model *m, sd_gen_fwd *fwd,
                          float **logits, size_t *logits_cap, int32_t *status, sd_error *err) {
    size_t rows = 0, k = 0;
    for (size_t i = 0; i < n; i++) {
        run *r = &s[i]->ws->r;
        status[i] = prepare_step(r, &fwd[i]);
        if (status[i]) fwd[i].n_rows = 0; /* that run stops; the others go on */
        else status[i] = 1;
        rows += (size_t)fwd[i].n_rows;
    }
    size_t need = rows * (size_t)m->n_vocab;
    if (need > *logits_cap) {
        float *grown = sd_malloc(sizeof(float) * need);
        if (!grown) return sd_fail(err, SMDIFF_E_NOMEM, "out of memory for the logits of %zu rows", rows);
        sd_free(*logits);
        *logits = grown, *logits_cap = need;
    }
    /* each run's logits follow the previous run's, in the order of the
     * requests handed to the model */
    for (size_t i = 0, off = 0; i < n; i++) {
        if (status[i] != 1) continue;
        s[i]->ws->r.logits = *logits + off * (size_t)m->n_vocab;
        off += (size_t)fwd[i].n_rows;
        if (fwd[i].n_rows) fwd[k++] = fwd[i];
    }
    double t0 = now_s();
    int32_t rc = k ? m->forward(m->ctx, fwd, k, *logits, NULL, NULL, err) : SMDIFF_OK;
    if (rc) return rc;
    double dt = now_s() - t0;
    for (size_t i = 0; i < n; i++) {
        if (status[i] != 1) continue;
        run *r = &s[i]->ws->r;
        s[i]->time_forward += dt;
        status[i] = finish_step(r);
        if (!status[i]) status[i] = next_step(r) ? 1 : 0;
    }
    return SMDIFF_OK;
}

int32_t sd_gen_result(struct smdiff_sampler *s, int32_t *out, size_t capacity, size_t *n_out) {
    return result(&s->ws->r, out, capacity, n_out);
}

/* The loop's view of a loaded model, its forward scratch in the sampler's
 * workspace. */
static int32_t gen_model(struct smdiff_sampler *s, const struct smdiff_model *model, sd_gen_model *gm) {
    struct sd_gen_workspace *ws = workspace_of(s);
    if (!ws) return sd_fail(&s->err, SMDIFF_E_NOMEM, "out of memory for the sampler's workspace");
    sd_gen_model_of(model, &ws->model, gm);
    return SMDIFF_OK;
}

int32_t sd_generate_model(struct smdiff_sampler *s, const struct smdiff_model *model,
                          const int32_t *prompt, size_t n_prompt, int32_t *out, size_t capacity,
                          size_t *n_out) {
    sd_gen_model gm;
    int32_t rc = gen_model(s, model, &gm);
    return rc ? rc : sd_generate(s, &gm, prompt, n_prompt, out, capacity, n_out);
}

int32_t sd_generate_canvas_model(struct smdiff_sampler *s, const struct smdiff_model *model,
                                 int32_t *canvas, size_t n_canvas) {
    sd_gen_model gm;
    int32_t rc = gen_model(s, model, &gm);
    return rc ? rc : sd_generate_canvas(s, &gm, canvas, n_canvas);
}
