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
 *     position always, plus every other one with confidence >= threshold.
 * Ties in confidence go to the lower canvas position (torch.topk leaves
 * tie order unspecified).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
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
static void take_best(scored *sc, int32_t m, int32_t n, int32_t *commit, int32_t *n_commit) {
    qsort(sc, (size_t)m, sizeof *sc, scored_cmp);
    if (n > m) n = m;
    for (int32_t i = 0; i < n; i++) commit[i] = sc[i].idx;
    *n_commit = n;
}

/* n draws without replacement from softmax(score / temp), as
 * torch.multinomial(..., replacement=False): each draw picks among the
 * remaining items in proportion to their weight. */
static void draw_without_replacement(const smdiff_step_view *v, scored *sc, int32_t m, int32_t n,
                                     double temp, int32_t *commit, int32_t *n_commit) {
    double mx = -INFINITY;
    for (int32_t i = 0; i < m; i++) mx = sc[i].score > mx ? sc[i].score : mx;
    for (int32_t i = 0; i < m; i++) sc[i].score = exp((sc[i].score - mx) / temp);
    if (n > m) n = m;
    for (int32_t k = 0; k < n; k++) {
        double total = 0;
        for (int32_t i = k; i < m; i++) total += sc[i].score;
        double u = v->uniform(v->rng_state) * total, acc = 0;
        int32_t pick = m - 1;
        for (int32_t i = k; i < m; i++) {
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
    *n_commit = n;
}

enum { CONF_PROB, CONF_MARGIN, CONF_NEG_ENTROPY, CONF_RANDOM };

static int32_t select_ranked(const smdiff_step_view *v, int kind, int use_alg_temp, int32_t *commit,
                             int32_t *n_commit) {
    int32_t m = v->n_masked, n = v->n_transfer;
    *n_commit = 0;
    if (m == 0 || n <= 0) return SMDIFF_OK;
    scored *sc = sd_malloc((size_t)m * sizeof *sc);
    if (!sc) return SMDIFF_E_NOMEM;
    for (int32_t i = 0; i < m; i++) {
        double c;
        switch (kind) {
        case CONF_MARGIN: c = (double)v->top1[i] - (double)v->top2[i]; break;
        case CONF_NEG_ENTROPY: c = -(double)v->entropy[i]; break;
        case CONF_RANDOM: c = v->uniform(v->rng_state); break;
        default: c = v->confidence[i]; break;
        }
        sc[i].score = c;
        sc[i].pos = v->position[i];
        sc[i].idx = i;
    }
    if (use_alg_temp && v->alg_temp > 0)
        draw_without_replacement(v, sc, m, n, v->alg_temp, commit, n_commit);
    else
        take_best(sc, m, n, commit, n_commit);
    sd_free(sc);
    return SMDIFF_OK;
}

static int32_t sel_origin(const smdiff_step_view *v, int32_t *commit, int32_t *n_commit,
                          int32_t *remask, int32_t *n_remask, void *ud) {
    (void)remask;
    (void)ud;
    *n_remask = 0;
    /* Dream: p_transfer = 1 - s/t (a float32 tensor), 1 at the last step;
     * one uniform per masked position, in position order. */
    float p = v->step < v->n_steps - 1 ? 1.0f - (float)v->s / (float)v->t : 1.0f;
    int32_t n = 0;
    for (int32_t i = 0; i < v->n_masked; i++)
        if (v->uniform(v->rng_state) < p) commit[n++] = i;
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
    int32_t m = v->n_masked;
    if (m == 0) return SMDIFF_OK;
    /* The single most confident position always commits (ties: lower
     * position), then every other one at or above the threshold. */
    int32_t best = 0;
    for (int32_t i = 1; i < m; i++)
        if (v->confidence[i] > v->confidence[best] ||
            (v->confidence[i] == v->confidence[best] && v->position[i] < v->position[best]))
            best = i;
    int32_t n = 0;
    for (int32_t i = 0; i < m; i++)
        if (i == best || v->confidence[i] >= v->threshold) commit[n++] = i;
    *n_commit = n;
    return SMDIFF_OK;
}

#define DEC(var, nm, fn, desc)                                                                  \
    static const smdiff_decoder var = {sizeof(smdiff_decoder), SMDIFF_DECODER_ABI_VERSION, nm, \
                                       desc, fn, NULL}

DEC(d_origin, "origin", sel_origin, "Dream: each masked position commits with probability 1 - s/t");
DEC(d_maskgit, "maskgit_plus", sel_maskgit_plus, "Dream: most probable sampled tokens first");
DEC(d_margin, "topk_margin", sel_topk_margin, "Dream: largest top-1 minus top-2 margin first");
DEC(d_entropy, "entropy", sel_entropy, "Dream: lowest entropy first");
DEC(d_lowconf, "low_confidence", sel_low_confidence,
    "LLaDA: highest softmax probability first, even per-step budget");
DEC(d_random, "random", sel_random, "LLaDA: random positions, even per-step budget");
DEC(d_threshold, "threshold", sel_threshold,
    "Fast-dLLM: every position above the confidence threshold (at least one)");

const smdiff_decoder *const sd_builtin_decoders[] = {
    &d_origin, &d_maskgit, &d_margin, &d_entropy, &d_lowconf, &d_random, &d_threshold, NULL};

int sd_decoder_family(const char *name) {
    if (!strcmp(name, "low_confidence") || !strcmp(name, "random")) return SD_FAMILY_LLADA;
    if (!strcmp(name, "threshold")) return SD_FAMILY_THRESHOLD;
    return SD_FAMILY_DREAM;
}

int sd_decoder_is_builtin(const char *name) {
    for (int i = 0; sd_builtin_decoders[i]; i++)
        if (!strcmp(sd_builtin_decoders[i]->name, name)) return 1;
    return 0;
}

/* ------------------------------------------------------------ schedules */

void sd_dream_timesteps(int32_t n_steps, double eps, float *ts) {
    int64_t steps = (int64_t)n_steps + 1;
    float start = 1.0f, end = (float)eps;
    float step = (end - start) / (float)(steps - 1);
    int64_t halfway = steps / 2;
    for (int64_t i = 0; i < steps; i++)
        ts[i] = i < halfway ? start + step * (float)i : end - step * (float)(steps - i - 1);
}

int32_t sd_dream_n_transfer(int32_t n_masked, int32_t step, int32_t n_steps, const float *ts) {
    if (step >= n_steps - 1) return n_masked;
    volatile float ratio = ts[step + 1] / ts[step]; /* float32 as torch; no contraction */
    volatile float frac = 1.0f - ratio;
    float prod = (float)n_masked * frac;
    return (int32_t)prod;
}

void sd_llada_schedule(int32_t n_masked, int32_t n_steps, int32_t *out) {
    int32_t base = n_masked / n_steps, rem = n_masked % n_steps;
    for (int32_t i = 0; i < n_steps; i++) out[i] = base + (i < rem ? 1 : 0);
}
