/* generate.c -- the denoising loop with soft-masking (DECODING.md).
 *
 * Canvas = prompt (P ids) + gen_length masks, cut into n_blocks blocks of
 * block_length decoded left to right (LLaDA's semi-autoregressive blocks;
 * one block when block_length is 0). Each step of a block:
 *   1. input embeddings [L, d]: prompt and committed positions use their
 *      token rows; a still-masked position uses
 *         (1 - lambda) E[MASK] + lambda sum_i pi_i E[v_i]
 *      from the previous step's prediction (lambda = 0 at a block's first
 *      step, with SM off, and for positions outside the current block,
 *      which get no logits);
 *   2. forward, logits only for the masked positions of the block (row p-1
 *      for position p with shifted logits, dream);
 *   3. per-row statistics (stats.h), one row per masked position;
 *   4. the strategy picks positions (all that remain at a block's last
 *      step); the canvas gets their candidate tokens;
 *   5. SM inputs for the next step: top-k ids/probs and
 *      lambda = gate(step+1) * lambda(H) per still-masked position;
 *   6. step callback, EOS check.
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

typedef struct model_ctx {
    const struct smdiff_model *m;
    sd_arena arena;
    size_t arena_bytes;
} model_ctx;

static void model_embed(void *ctx, int32_t id, float *out) {
    model_ctx *c = ctx;
    sd_embed_token(&c->m->w, id, out);
}

static int32_t model_forward(void *ctx, const float *embd, int64_t L, const int32_t *rows,
                             int64_t n_rows, float *logits, int (*abort_fn)(void *),
                             void *abort_ud, sd_error *err) {
    model_ctx *c = ctx;
    size_t need = sd_forward_scratch_bytes(&c->m->w.hp, L, n_rows);
    if (need > c->arena_bytes) {
        sd_arena_destroy(&c->arena);
        memset(&c->arena, 0, sizeof c->arena);
        c->arena_bytes = 0;
        if (sd_arena_init(&c->arena, need, 0))
            return sd_fail(err, SMDIFF_E_NOMEM, "out of memory for the activations of %lld positions",
                           (long long)L);
        c->arena_bytes = need;
    }
    sd_arena_reset(&c->arena);
    /* The model's pool serves one caller at a time; a concurrent run does
     * its non-BLAS work inline. */
    struct smdiff_model *mm = (struct smdiff_model *)c->m; /* only the atomic flag changes */
    int have_pool = atomic_exchange(&mm->pool_busy, 1) == 0;
    sd_forward_opts o = {0, have_pool ? c->m->pool : NULL, abort_fn, abort_ud};
    int32_t rc = sd_forward(&c->m->w, embd, L, rows, n_rows, logits, NULL, &o, &c->arena, err);
    if (have_pool) atomic_store(&mm->pool_busy, 0);
    return rc;
}

int32_t sd_gen_model_from(const struct smdiff_model *m, sd_gen_model *gm, sd_error *err) {
    model_ctx *c = sd_calloc(1, sizeof *c);
    if (!c) return sd_fail(err, SMDIFF_E_NOMEM, "out of memory");
    c->m = m;
    const sd_hparams *hp = &m->w.hp;
    gm->n_vocab = hp->n_vocab;
    gm->n_embd = hp->n_embd;
    gm->n_ctx = hp->n_ctx;
    gm->mask_id = hp->mask_id;
    gm->eos_id = hp->eos_id;
    gm->shift_logits = hp->shift_logits;
    gm->embed = model_embed;
    gm->forward = model_forward;
    gm->ctx = c;
    return SMDIFF_OK;
}

void sd_gen_model_release(sd_gen_model *gm) {
    if (!gm || !gm->ctx) return;
    model_ctx *c = gm->ctx;
    sd_arena_destroy(&c->arena);
    sd_free(c);
    gm->ctx = NULL;
}

/* ------------------------------------------------------------- the loop */

static double view_uniform(void *st) { return sd_rng_uniform(st); }

typedef struct abort_shim {
    smdiff_abort_fn fn;
    void *ud;
} abort_shim;

static int abort_poll(void *ud) {
    abort_shim *a = ud;
    return a->fn(a->ud) != 0;
}

typedef struct run {
    int32_t P, G, L, d, V, k;
    int32_t *canvas;        /* [L] */
    uint8_t *committed;     /* [L] committed this step (callback) */
    float *lambda;          /* [L] lambda each masked position uses next step */
    int32_t *sm_ids;        /* [L, k] previous prediction's top-k */
    float *sm_probs;        /* [L, k] */
    uint8_t *state;         /* [L] what embd row p holds: 0 stale, 1 token, 2 mask, 3 mix */
    float *embd;            /* [L, d] */
    float *e_mask;          /* [d] */
    float *tmp;             /* [k, d] candidate rows for the mix */
    float *logits;          /* [B, V] */
    int32_t *pos, *rows, *tok, *commit, *remask; /* [B] */
    uint64_t *row_id;       /* [B] */
    float *conf, *top1, *top2, *ent; /* [B] */
    sd_row_stats *st;       /* [B] */
    float *ts;              /* [max steps per block + 1] */
    int32_t *sched;         /* [max steps per block] */
} run;

static void run_free(run *r) {
    void *ptrs[] = {r->canvas, r->committed, r->lambda, r->sm_ids, r->sm_probs, r->state,
                    r->embd, r->e_mask, r->tmp, r->logits, r->pos, r->rows, r->tok,
                    r->commit, r->remask, r->row_id, r->conf, r->top1, r->top2, r->ent,
                    r->st, r->ts, r->sched};
    for (size_t i = 0; i < sizeof ptrs / sizeof ptrs[0]; i++) sd_free(ptrs[i]);
}

static void *alloc_n(size_t n, size_t size, int *fail) {
    size_t bytes;
    void *p = NULL;
    if (sd_mul_size(n ? n : 1, size, &bytes) == 0) p = sd_calloc(1, bytes);
    if (!p) *fail = 1;
    return p;
}

/* Bring embedding row p up to date with the canvas and the SM inputs. */
static void update_embd(run *r, const sd_gen_model *m, int32_t p, int32_t mask_id) {
    float *row = r->embd + (size_t)p * (size_t)r->d;
    if (r->canvas[p] != mask_id || p < r->P) {
        if (r->state[p] != 1) {
            m->embed(m->ctx, r->canvas[p], row);
            r->state[p] = 1;
        }
    } else if (r->lambda[p] > 0.0f) {
        const int32_t *ids = r->sm_ids + (size_t)p * (size_t)r->k;
        int32_t local[SD_STATS_MAX_K];
        for (int32_t i = 0; i < r->k; i++) {
            m->embed(m->ctx, ids[i], r->tmp + (size_t)i * (size_t)r->d);
            local[i] = i;
        }
        sd_softmask_mix(r->tmp, r->d, r->e_mask, local, r->sm_probs + (size_t)p * (size_t)r->k,
                        r->k, r->lambda[p], row);
        r->state[p] = 3;
    } else if (r->state[p] != 2) {
        memcpy(row, r->e_mask, sizeof(float) * (size_t)r->d);
        r->state[p] = 2;
    }
}

int32_t sd_generate(struct smdiff_sampler *s, const sd_gen_model *m, const int32_t *prompt,
                    int32_t n_prompt, int32_t *out, int32_t capacity, int32_t *n_out) {
    sd_error *err = &s->err;
    const sd_optval *o = s->opt;
    int32_t steps = (int32_t)o[SMDIFF_SAMPLER_STEPS].i;
    int32_t G = (int32_t)o[SMDIFF_SAMPLER_GEN_LENGTH].i;
    int32_t B = (int32_t)o[SMDIFF_SAMPLER_BLOCK_LENGTH].i;
    if (B == 0) B = G;
    s->time_forward = s->time_stats = s->time_embed = 0;
    s->steps_run = 0;

    /* ---- arguments */
    if (n_prompt < 1) return sd_fail(err, SMDIFF_E_INVAL, "the prompt is empty (at least one token is needed)");
    if ((int64_t)n_prompt + G > m->n_ctx)
        return sd_fail(err, SMDIFF_E_RANGE, "prompt (%d) + gen_length (%d) exceeds the context of %d",
                       (int)n_prompt, (int)G, (int)m->n_ctx);
    for (int32_t i = 0; i < n_prompt; i++)
        if (prompt[i] < 0 || prompt[i] >= m->n_vocab)
            return sd_fail(err, SMDIFF_E_RANGE, "prompt[%d] = %d outside the vocabulary [0, %d)", (int)i,
                           (int)prompt[i], (int)m->n_vocab);
    if (m->mask_id < 0 || m->mask_id >= m->n_vocab)
        return sd_fail(err, SMDIFF_E_FORMAT, "the model has no valid mask token id (%d)", (int)m->mask_id);
    if (B > G || G % B != 0)
        return sd_fail(err, SMDIFF_E_INVAL, "block_length %d must divide gen_length %d", (int)B, (int)G);
    int32_t n_blocks = G / B;
    if (steps > G)
        return sd_fail(err, SMDIFF_E_INVAL, "steps %d exceed gen_length %d (at most one step per token)",
                       (int)steps, (int)G);
    if (steps % n_blocks != 0)
        return sd_fail(err, SMDIFF_E_INVAL, "steps %d must be a multiple of the number of blocks %d",
                       (int)steps, (int)n_blocks);
    if (capacity < G)
        return sd_fail(err, SMDIFF_E_BUFFER, "output capacity %d is smaller than gen_length %d",
                       (int)capacity, (int)G);
    smdiff_decoder dec;
    void *dec_ud;
    if (sd_decoder_lookup(s->strategy, &dec, &dec_ud))
        return sd_fail(err, SMDIFF_E_NOT_FOUND, "decoder strategy '%s' is not registered", s->strategy);
    int family = sd_decoder_family(s->strategy);
    int32_t spb = family == SD_FAMILY_THRESHOLD ? B : steps / n_blocks;

    const struct smdiff_softmask *sm = &s->softmask;
    int sm_on = sm->opt[SMDIFF_SM_MODE].i != SMDIFF_SM_OFF;
    /* Entropies cost a multiply-add per logit: H(p) only for the entropy
     * rule of SM, H(q) only for Dream's entropy strategy and user
     * strategies (which get every field of the view). */
    int want_q_entropy = !strcmp(s->strategy, "entropy") || !sd_decoder_is_builtin(s->strategy);
    int want_h = sm_on && sm->opt[SMDIFF_SM_MODE].i == SMDIFF_SM_ENTROPY;
    sd_stats_params sp = {o[SMDIFF_SAMPLER_TEMPERATURE].d, (int32_t)o[SMDIFF_SAMPLER_TOP_K].i,
                          o[SMDIFF_SAMPLER_TOP_P].d, sm_on ? (int32_t)sm->opt[SMDIFF_SM_TOPK].i : 0,
                          want_q_entropy, (uint64_t)o[SMDIFF_SAMPLER_SEED].i, 0, !want_h};
    if (!isfinite(sp.temperature) || !isfinite(sp.top_p))
        return sd_fail(err, SMDIFF_E_RANGE, "temperature and top_p must be finite");

    /* ---- workspace */
    run r;
    memset(&r, 0, sizeof r);
    r.P = n_prompt;
    r.G = G;
    r.L = n_prompt + G;
    r.d = m->n_embd;
    r.V = m->n_vocab;
    r.k = sp.sm_k > 0 ? sp.sm_k : 1;
    int fail = 0;
    size_t L = (size_t)r.L, Bz = (size_t)B;
    r.canvas = alloc_n(L, sizeof(int32_t), &fail);
    r.committed = alloc_n(L, 1, &fail);
    r.lambda = alloc_n(L, sizeof(float), &fail);
    r.sm_ids = alloc_n(L * (size_t)r.k, sizeof(int32_t), &fail);
    r.sm_probs = alloc_n(L * (size_t)r.k, sizeof(float), &fail);
    r.state = alloc_n(L, 1, &fail);
    r.embd = alloc_n(L * (size_t)r.d, sizeof(float), &fail);
    r.e_mask = alloc_n((size_t)r.d, sizeof(float), &fail);
    r.tmp = alloc_n((size_t)r.k * (size_t)r.d, sizeof(float), &fail);
    r.logits = alloc_n(Bz * (size_t)r.V, sizeof(float), &fail);
    r.pos = alloc_n(Bz, sizeof(int32_t), &fail);
    r.rows = alloc_n(Bz, sizeof(int32_t), &fail);
    r.tok = alloc_n(Bz, sizeof(int32_t), &fail);
    r.commit = alloc_n(Bz, sizeof(int32_t), &fail);
    r.remask = alloc_n(Bz, sizeof(int32_t), &fail);
    r.row_id = alloc_n(Bz, sizeof(uint64_t), &fail);
    r.conf = alloc_n(Bz, sizeof(float), &fail);
    r.top1 = alloc_n(Bz, sizeof(float), &fail);
    r.top2 = alloc_n(Bz, sizeof(float), &fail);
    r.ent = alloc_n(Bz, sizeof(float), &fail);
    r.st = alloc_n(Bz, sizeof(sd_row_stats), &fail);
    r.ts = alloc_n((size_t)spb + 1, sizeof(float), &fail);
    r.sched = alloc_n((size_t)spb, sizeof(int32_t), &fail);
    sd_pool *pool = NULL;
    int32_t rc = SMDIFF_OK;
    if (fail) {
        rc = sd_fail(err, SMDIFF_E_NOMEM, "out of memory for a canvas of %d positions", (int)r.L);
        goto done;
    }
    int32_t nthreads = (int32_t)o[SMDIFF_SAMPLER_THREADS].i;
    if (nthreads == 0) nthreads = sd_cpu_count();
    if (nthreads > 1 && (rc = sd_pool_create(nthreads, &pool, err))) goto done;

    memcpy(r.canvas, prompt, sizeof(int32_t) * (size_t)n_prompt);
    for (int32_t p = n_prompt; p < r.L; p++) r.canvas[p] = m->mask_id;
    m->embed(m->ctx, m->mask_id, r.e_mask);

    abort_shim shim = {s->abort_fn, s->abort_ud};
    int32_t eos = o[SMDIFF_SAMPLER_STOP_AT_EOS].i ? m->eos_id : -1;
    int32_t g = 0, total_steps = n_blocks * spb;
    int stopped = 0;
    double eps = o[SMDIFF_SAMPLER_EPS].d;

    for (int32_t b = 0; b < n_blocks && !stopped; b++) {
        int32_t lo = n_prompt + b * B, hi = lo + B;
        sd_dream_timesteps(spb, eps, r.ts);
        if (family == SD_FAMILY_LLADA) sd_llada_schedule(B, spb, r.sched);
        /* No prediction carries over into a new block. */
        for (int32_t p = lo; p < hi; p++) r.lambda[p] = 0.0f;
        for (int32_t i = 0; i < spb && !stopped; i++) {
            int32_t nm = 0;
            for (int32_t p = lo; p < hi; p++)
                if (r.canvas[p] == m->mask_id) r.pos[nm++] = p;
            if (nm == 0) break;
            if (s->abort_fn && s->abort_fn(s->abort_ud)) {
                rc = sd_fail(err, SMDIFF_E_ABORTED, "aborted by the host before step %d", (int)g);
                goto done;
            }
            /* 1. input embeddings */
            double t0 = now_s();
            for (int32_t p = 0; p < r.L; p++) update_embd(&r, m, p, m->mask_id);
            double t1 = now_s();
            /* 2. forward, logits of the masked positions only */
            for (int32_t j = 0; j < nm; j++) {
                r.rows[j] = m->shift_logits ? (r.pos[j] > 0 ? r.pos[j] - 1 : 0) : r.pos[j];
                r.row_id[j] = (uint64_t)r.pos[j];
            }
            rc = m->forward(m->ctx, r.embd, r.L, r.rows, nm, r.logits, s->abort_fn ? abort_poll : NULL,
                            &shim, err);
            if (rc) {
                if (rc == SMDIFF_E_ABORTED) sd_fail(err, rc, "aborted by the host during step %d", (int)g);
                goto done;
            }
            double t2 = now_s();
            /* 3. statistics */
            sp.ctr = (uint64_t)g;
            if ((rc = sd_stats_rows(pool, r.logits, nm, r.V, r.row_id, &sp, r.st, err))) goto done;
            int32_t n_masked_total = 0;
            for (int32_t p = n_prompt; p < r.L; p++) n_masked_total += r.canvas[p] == m->mask_id;
            for (int32_t j = 0; j < nm; j++) {
                const sd_row_stats *q = &r.st[j];
                r.tok[j] = q->token;
                r.conf[j] = family == SD_FAMILY_DREAM ? q->confidence : q->p_token;
                r.top1[j] = q->q_top1;
                r.top2[j] = q->q_top2;
                r.ent[j] = -q->q_neg_entropy;
            }
            /* 4. the strategy */
            sd_rng rng;
            sd_rng_init(&rng, (uint64_t)o[SMDIFF_SAMPLER_SEED].i, (1ull << 40) + (uint64_t)g);
            smdiff_step_view view;
            memset(&view, 0, sizeof view);
            view.struct_size = sizeof view;
            view.step = i;
            view.n_steps = spb;
            view.block = b;
            view.n_blocks = n_blocks;
            view.n_masked = nm;
            view.n_masked_total = n_masked_total;
            view.n_transfer = family == SD_FAMILY_DREAM   ? sd_dream_n_transfer(nm, i, spb, r.ts)
                              : family == SD_FAMILY_LLADA ? r.sched[i]
                                                          : nm;
            view.t = r.ts[i];
            view.s = r.ts[i + 1];
            view.alg_temp = o[SMDIFF_SAMPLER_ALG_TEMP].d;
            view.threshold = o[SMDIFF_SAMPLER_THRESHOLD].d;
            view.position = r.pos;
            view.token = r.tok;
            view.confidence = r.conf;
            view.top1 = r.top1;
            view.top2 = r.top2;
            view.entropy = r.ent;
            view.uniform = view_uniform;
            view.rng_state = &rng;
            int32_t nc = 0, nr = 0;
            rc = dec.select(&view, r.commit, &nc, r.remask, &nr, dec_ud);
            if (rc) {
                rc = sd_fail(err, rc < 0 ? rc : SMDIFF_E_INVAL, "strategy '%s' failed at step %d (%d)",
                             s->strategy, (int)g, (int)rc);
                goto done;
            }
            if (nc < 0 || nc > nm || nr < 0 || nr > nm) {
                rc = sd_fail(err, SMDIFF_E_INVAL, "strategy '%s' returned %d commits and %d remasks for %d masked positions",
                             s->strategy, (int)nc, (int)nr, (int)nm);
                goto done;
            }
            memset(r.committed, 0, L);
            for (int32_t c = 0; c < nc; c++) {
                int32_t j = r.commit[c];
                if (j < 0 || j >= nm || r.committed[r.pos[j]]) {
                    rc = sd_fail(err, SMDIFF_E_INVAL, "strategy '%s' chose an invalid or repeated index %d",
                                 s->strategy, (int)j);
                    goto done;
                }
                r.committed[r.pos[j]] = 1;
            }
            if (i == spb - 1)
                for (int32_t j = 0; j < nm; j++) r.committed[r.pos[j]] = 1;
            for (int32_t j = 0; j < nm; j++)
                if (r.committed[r.pos[j]]) r.canvas[r.pos[j]] = r.tok[j];
            for (int32_t c = 0; c < nr && i < spb - 1; c++) {
                int32_t p = r.remask[c];
                if (p < lo || p >= hi || r.canvas[p] == m->mask_id || r.committed[p]) {
                    rc = sd_fail(err, SMDIFF_E_INVAL, "strategy '%s' asked to remask position %d, not a token committed earlier in this block",
                                 s->strategy, (int)p);
                    goto done;
                }
                r.canvas[p] = m->mask_id;
                r.lambda[p] = 0.0f;
            }
            /* 5. SM inputs for the next step */
            double gate = sm_on ? sd_softmask_gate(sm, i + 1, spb) : 0.0;
            for (int32_t j = 0; j < nm; j++) {
                int32_t p = r.pos[j];
                r.lambda[p] = 0.0f;
                if (r.canvas[p] != m->mask_id || gate <= 0) continue;
                r.lambda[p] = (float)(gate * sd_softmask_lambda_from_entropy(sm, r.st[j].entropy));
                memcpy(r.sm_ids + (size_t)p * (size_t)r.k, r.st[j].sm_ids, sizeof(int32_t) * (size_t)r.k);
                memcpy(r.sm_probs + (size_t)p * (size_t)r.k, r.st[j].sm_probs, sizeof(float) * (size_t)r.k);
            }
            double t3 = now_s();
            s->time_embed += t1 - t0;
            s->time_forward += t2 - t1;
            s->time_stats += t3 - t2;
            s->steps_run++;
            /* 6. callback and EOS */
            if (s->step_fn &&
                s->step_fn(g, total_steps, r.canvas, r.committed, r.lambda, r.L, s->step_ud)) {
                rc = sd_fail(err, SMDIFF_E_ABORTED, "stopped by the step callback after step %d", (int)g);
                goto done;
            }
            g++;
            if (eos >= 0) {
                /* Done once an EOS is committed and every position before it
                 * is decided: what follows would be cut anyway. */
                int32_t p = n_prompt;
                while (p < r.L && r.canvas[p] != m->mask_id && r.canvas[p] != eos) p++;
                if (p < r.L && r.canvas[p] == eos) {
                    for (int32_t q = p; q < r.L; q++) r.canvas[q] = eos;
                    stopped = 1;
                }
            }
        }
    }
    int32_t n = G;
    if (eos >= 0)
        for (int32_t p = 0; p < G; p++)
            if (r.canvas[n_prompt + p] == eos) {
                n = p;
                break;
            }
    memcpy(out, r.canvas + n_prompt, sizeof(int32_t) * (size_t)G);
    *n_out = n;
done:
    sd_pool_free(pool);
    run_free(&r);
    return rc;
}
