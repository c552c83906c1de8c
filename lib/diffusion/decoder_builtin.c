/* decoder_builtin.c -- the strategies smdiff ships, registered through the
 * same public interface (smdiff_decoder.h) users have.
 *
 * Reference algorithms (read in their published sources; see DECODING.md):
 *   Dream diffusion_generate (generation_utils.py, _sample):
 *     origin        each masked position commits with probability 1 - s/t
 *                   (1 at the last step), independently
 *     maskgit_plus  confidence = q[token]
 *     topk_margin   confidence = q_top1 - q_top2
 *     entropy       confidence = sum q log q  (= -H(q))
 *     then the n_transfer most confident positions (torch.topk), or with
 *     alg_temp > 0, n_transfer positions drawn without replacement from
 *     softmax(confidence / alg_temp) (torch.multinomial).
 *   LLaDA generate (generate.py): low_confidence (softmax probability of
 *     the Gumbel-max token) or random (uniform scores), the n_transfer best.
 *   Fast-dLLM (get_transfer_index with threshold): the most confident
 *     position always, plus every other one with confidence >= threshold;
 *     (get_transfer_index_dynamic, the factor rule): the n most confident,
 *     n the longest leading run of the ranking with (k + 1)(1 - c_(k)) <=
 *     factor for its k-th confidence c_(k) (k = 1 always).
 * Ties in confidence go to the lower canvas position (torch.topk leaves
 * tie order unspecified). ReMDM's re-masking strategies are in
 * decoder_remdm.c.
 *
 * Each declares what it reads and how the sampler schedules it (the table
 * at the end; docs/DECODING.md has it too); nothing else tells the loop
 * which strategy runs. The ranked ones sort in the scratch memory they
 * declare, so no step allocates.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "decoder.h"

typedef struct scored {
    double score;
    int32_t pos; /* canvas position, for tie-breaking */
    int32_t idx; /* index into the view's arrays */
} scored;

static int scored_cmp(const void *a, const void *b) {
    const scored *x = a, *y = b;
    if (x->score > y->score) return -1;
    if (x->score < y->score) return 1;
    return (x->pos > y->pos) - (x->pos < y->pos);
}

/* Write the n best of sc[0..m) (by score, then position) to commit. */
static void take_best(scored *sc, size_t m, size_t n, int32_t *commit, int32_t *n_commit) {
    qsort(sc, m, sizeof *sc, scored_cmp);
    if (n > m) n = m;
    for (size_t i = 0; i < n; i++) commit[i] = sc[i].idx;
    *n_commit = (int32_t)n;
}

/* n draws without replacement from softmax(score / temp), as
 * torch.multinomial(..., replacement=False): each draw picks among the
 * remaining items in proportion to their weight. */
static void draw_without_replacement(const smdiff_step_view *v, scored *sc, size_t m, size_t n,
                                     double temp, int32_t *commit, int32_t *n_commit) {
    double mx = -INFINITY;
    for (size_t i = 0; i < m; i++) mx = sc[i].score > mx ? sc[i].score : mx;
    for (size_t i = 0; i < m; i++) sc[i].score = exp((sc[i].score - mx) / temp);
    if (n > m) n = m;
    for (size_t k = 0; k < n; k++) {
        double total = 0;
        for (size_t i = k; i < m; i++) total += sc[i].score;
        double u = v->uniform(v->rng_state) * total, acc = 0;
        size_t pick = m - 1;
        for (size_t i = k; i < m; i++) {
            acc += sc[i].score;
            if (acc > u) {
                pick = i;
                break;
            }
        }
        if (total <= 0) pick = k; /* every remaining weight underflowed */
        scored t = sc[k];
        sc[k] = sc[pick];
        sc[pick] = t;
        commit[k] = sc[k].idx;
    }
    *n_commit = (int32_t)n;
}

enum { CONF_PROB, CONF_MARGIN, CONF_NEG_ENTROPY, CONF_RANDOM };

/* Rank the masked positions by a confidence and take the n_transfer best
 * (or, with alg_temp > 0 when use_alg_temp, draw them). Sorts in the
 * view's scratch: the declarations below ask for sizeof(scored) a
 * position. */
static int32_t select_ranked(const smdiff_step_view *v, int kind, int use_alg_temp, int32_t *commit,
                             int32_t *n_commit) {
    size_t m = v->n_masked, n = v->n_transfer;
    *n_commit = 0;
    if (m == 0 || n == 0) return SMDIFF_OK;
    scored *sc = v->scratch;
    for (size_t i = 0; i < m; i++) {
        double c;
        switch (kind) {
        case CONF_MARGIN: c = (double)v->top1[i] - (double)v->top2[i]; break;
        case CONF_NEG_ENTROPY: c = -(double)v->entropy[i]; break;
        case CONF_RANDOM: c = v->uniform(v->rng_state); break;
        default: c = v->confidence[i]; break;
        }
        sc[i].score = c;
        sc[i].pos = v->position[i];
        sc[i].idx = (int32_t)i;
    }
    if (use_alg_temp && v->alg_temp > 0)
        draw_without_replacement(v, sc, m, n, v->alg_temp, commit, n_commit);
    else
        take_best(sc, m, n, commit, n_commit);
    return SMDIFF_OK;
}

static int32_t sel_origin(const smdiff_step_view *v, int32_t *commit, int32_t *n_commit,
                          int32_t *remask, int32_t *n_remask, void *ud) {
    (void)remask;
    (void)ud;
    *n_remask = 0;
    /* Dream: p_transfer = 1 - s/t (a float32 tensor), 1 at the last step;
     * one uniform per masked position, in position order. */
    float p = v->step + 1 < v->n_steps ? 1.0f - (float)v->s / (float)v->t : 1.0f;
    int32_t n = 0;
    for (size_t i = 0; i < v->n_masked; i++)
        if (v->uniform(v->rng_state) < p) commit[n++] = (int32_t)i;
    *n_commit = n;
    return SMDIFF_OK;
}

/* MDLM's ancestral step (_ddpm_caching_update with the log-linear
 * schedule, move chance t): a masked position unmasks with probability
 * (t - s)/t at every step, the last included -- what is still masked then
 * is filled by the argmax pass the strategy declares (noise removal). One
 * uniform per masked position, in position order; the token is the
 * sampled candidate (MDLM draws both from one categorical over the
 * vocabulary and the mask, which is the same distribution). */
static int32_t sel_ancestral(const smdiff_step_view *v, int32_t *commit, int32_t *n_commit,
                             int32_t *remask, int32_t *n_remask, void *ud) {
    (void)remask;
    (void)ud;
    *n_remask = 0;
    double p = (v->t - v->s) / v->t;
    int32_t n = 0;
    for (size_t i = 0; i < v->n_masked; i++)
        if (v->uniform(v->rng_state) < p) commit[n++] = (int32_t)i;
    *n_commit = n;
    return SMDIFF_OK;
}

#define RANKED(fn, kind, alg)                                                                   \
    static int32_t fn(const smdiff_step_view *v, int32_t *commit, int32_t *n_commit,            \
                      int32_t *remask, int32_t *n_remask, void *ud) {                           \
        (void)remask;                                                                          \
        (void)ud;                                                                              \
        *n_remask = 0;                                                                         \
        return select_ranked(v, kind, alg, commit, n_commit);                                  \
    }

RANKED(sel_maskgit_plus, CONF_PROB, 1)
RANKED(sel_topk_margin, CONF_MARGIN, 1)
RANKED(sel_entropy, CONF_NEG_ENTROPY, 1)
RANKED(sel_low_confidence, CONF_PROB, 0)
RANKED(sel_random, CONF_RANDOM, 0)

static int32_t sel_threshold(const smdiff_step_view *v, int32_t *commit, int32_t *n_commit,
                             int32_t *remask, int32_t *n_remask, void *ud) {
    (void)remask;
    (void)ud;
    *n_remask = 0;
    *n_commit = 0;
    size_t m = v->n_masked;
    if (m == 0) return SMDIFF_OK;
    /* The single most confident position always commits (ties: lower
     * position), then every other one at or above the threshold. */
    size_t best = 0;
    for (size_t i = 1; i < m; i++)
        if (v->confidence[i] > v->confidence[best] ||
            (v->confidence[i] == v->confidence[best] && v->position[i] < v->position[best]))
            best = i;
    int32_t n = 0;
    for (size_t i = 0; i < m; i++)
        if (i == best || v->confidence[i] >= v->threshold) commit[n++] = (int32_t)i;
    *n_commit = n;
    return SMDIFF_OK;
}

/* Fast-dLLM's factor rule. Its reference commits every position when only
 * the last-ranked one fails the bound (its loop index stops there and is
 * then incremented); here that position stays masked. */
static int32_t sel_factor(const smdiff_step_view *v, int32_t *commit, int32_t *n_commit, int32_t *remask,
                          int32_t *n_remask, void *ud) {
    (void)remask;
    (void)ud;
    *n_remask = 0;
    *n_commit = 0;
    size_t m = v->n_masked;
    if (m == 0) return SMDIFF_OK;
    scored *sc = v->scratch;
    for (size_t i = 0; i < m; i++) sc[i].score = v->confidence[i], sc[i].pos = v->position[i], sc[i].idx = (int32_t)i;
    qsort(sc, m, sizeof *sc, scored_cmp);
    size_t n = 1;
    while (n < m && (double)(n + 2) * (1.0 - sc[n].score) <= v->factor) n++;
    for (size_t i = 0; i < n; i++) commit[i] = sc[i].idx;
    *n_commit = (int32_t)n;
    return SMDIFF_OK;
}

/* ---------------------------------------------------- the declarations */

#define DEC(var, nm, fn, desc, sched, conf, needs, scratch)                                      \
    static const smdiff_decoder var = {sizeof(smdiff_decoder), SMDIFF_DECODER_ABI_VERSION, nm,  \
                                       desc, fn, NULL, sched, conf, needs, scratch, 0, 0}

#define TIMESTEP SMDIFF_SCHEDULE_TIMESTEP
#define EVEN SMDIFF_SCHEDULE_EVEN
#define UNTIL_DONE SMDIFF_SCHEDULE_UNTIL_DONE
#define SAMPLED SMDIFF_CONFIDENCE_SAMPLED
#define RAW SMDIFF_CONFIDENCE_RAW
#define POS SMDIFF_NEED_POSITION
#define RNG SMDIFF_NEED_RANDOM

DEC(d_origin, "origin", sel_origin, "Dream: each masked position commits with probability 1 - s/t",
    TIMESTEP, SAMPLED, RNG, 0);
/* MDLM's ancestral sampler (ddpm_cache): sel_ancestral on the same
 * linspace(1, eps) grid, then the argmax pass. Its cache (no forward pass
 * when nothing changed) is the loop's, for every strategy; its nucleus is
 * the sampler's top_p (0.9 in the paper). */
static const smdiff_decoder d_ddpm_cache = {
    sizeof(smdiff_decoder), SMDIFF_DECODER_ABI_VERSION, "ddpm_cache",
    "MDLM: ancestral step, each masked position unmasks with probability (t - s)/t; then an argmax pass",
    sel_ancestral, NULL, TIMESTEP, SAMPLED, RNG, 0, 0, SMDIFF_FINAL_ARGMAX};
DEC(d_maskgit, "maskgit_plus", sel_maskgit_plus, "Dream: most probable sampled tokens first",
    TIMESTEP, SAMPLED, POS | SMDIFF_NEED_CONFIDENCE | RNG, sizeof(scored));
DEC(d_margin, "topk_margin", sel_topk_margin, "Dream: largest top-1 minus top-2 margin first",
    TIMESTEP, SAMPLED, POS | SMDIFF_NEED_TOP2 | RNG, sizeof(scored));
DEC(d_entropy, "entropy", sel_entropy, "Dream: lowest entropy first",
    TIMESTEP, SAMPLED, POS | SMDIFF_NEED_ENTROPY | RNG, sizeof(scored));
DEC(d_lowconf, "low_confidence", sel_low_confidence,
    "LLaDA: highest softmax probability first, even per-step budget",
    EVEN, RAW, POS | SMDIFF_NEED_CONFIDENCE, sizeof(scored));
DEC(d_random, "random", sel_random, "LLaDA: random positions, even per-step budget",
    EVEN, RAW, POS | RNG, sizeof(scored));
DEC(d_threshold, "threshold", sel_threshold,
    "Fast-dLLM: every position above the confidence threshold (at least one)",
    UNTIL_DONE, RAW, POS | SMDIFF_NEED_CONFIDENCE, 0);
DEC(d_factor, "factor", sel_factor,
    "Fast-dLLM: the n most confident, n the longest run with (k+1)(1 - c_k) <= factor",
    UNTIL_DONE, RAW, POS | SMDIFF_NEED_CONFIDENCE, sizeof(scored));

const smdiff_decoder *const sd_builtin_decoders[] = {
    &d_origin, &d_maskgit, &d_margin, &d_entropy, &d_lowconf, &d_random, &d_threshold, &d_factor,
    &sd_decoder_remdm_cap, &sd_decoder_remdm_loop, &d_ddpm_cache, NULL};

/* ------------------------------------------------------------ schedules */

size_t sd_schedule_steps(int32_t schedule, size_t steps_per_block, size_t block_length) {
    return schedule == SMDIFF_SCHEDULE_UNTIL_DONE ? block_length : steps_per_block;
}

size_t sd_schedule_n_transfer(int32_t schedule, size_t n_masked, size_t block_length, size_t step,
                              size_t n_steps, const float *ts) {
    switch (schedule) {
    case SMDIFF_SCHEDULE_EVEN: return sd_llada_n_transfer(block_length, step, n_steps);
    case SMDIFF_SCHEDULE_UNTIL_DONE: return n_masked;
    default: return sd_dream_n_transfer(n_masked, step, n_steps, ts);
    }
}

void sd_dream_timesteps(size_t n_steps, double eps, float *ts) {
    size_t steps = n_steps + 1, halfway = steps / 2;
    float start = 1.0f, end = (float)eps;
    float step = (end - start) / (float)(steps - 1);
    for (size_t i = 0; i < steps; i++)
        ts[i] = i < halfway ? start + step * (float)i : end - step * (float)(steps - i - 1);
}

size_t sd_dream_n_transfer(size_t n_masked, size_t step, size_t n_steps, const float *ts) {
    if (step + 1 >= n_steps) return n_masked;
    volatile float ratio = ts[step + 1] / ts[step]; /* float32 as torch; no contraction */
    volatile float frac = 1.0f - ratio;
    float prod = (float)n_masked * frac;
    return prod > 0 ? (size_t)prod : 0;
}

size_t sd_llada_n_transfer(size_t n_masked, size_t step, size_t n_steps) {
    return n_masked / n_steps + (step < n_masked % n_steps ? 1 : 0);
}

void sd_llada_schedule(size_t n_masked, size_t n_steps, size_t *out) {
    for (size_t i = 0; i < n_steps; i++) out[i] = sd_llada_n_transfer(n_masked, i, n_steps);
}
