/* decoder_remdm.c -- ReMDM sampling (Wang, Schiff, Sahoo, Kuleshov 2025,
 * "Remasking Discrete Diffusion Models with Inference-Time Scaling") as two
 * strategies of the public plug-in interface, "remdm_cap" and "remdm_loop".
 *
 * ReMDM replaces MDLM's reverse step by a posterior in which a committed
 * token may return to the mask. With alpha_t the fraction of a block's
 * positions unmasked at time t (MDLM's log-linear schedule: alpha_t = 1 - t)
 * and a remasking probability sigma_t, one step from t to s < t:
 *   a committed position is re-masked with probability sigma_t;
 *   a masked position is unmasked with probability
 *       (alpha_s - (1 - sigma_t) alpha_t) / (1 - alpha_t)
 *   taking a token drawn from the model's distribution (here the sampler's
 *   candidate, drawn from q: temperature, top-p, top-k).
 * sigma_t = 0 is MDLM, i.e. Dream's "origin" (1 - s/t). The schedules:
 *   cap:  sigma_t = min(eta, (1 - alpha_s) / alpha_t)   (eta when alpha_t = 0)
 *   loop: three phases of the same time grid. For t > t_on, MDLM with
 *         alpha_t = (1 - t) alpha_on / (1 - t_on) (from 0 up to alpha_on);
 *         for t_off < t <= t_on, alpha held at alpha_on and sigma_t = eta:
 *         re-masking and unmasking balance (alpha_on eta / (1 - alpha_on)
 *         per masked position), so the sample is revised at a constant
 *         noise level; for t <= t_off, MDLM with
 *         alpha_t = 1 - t (1 - alpha_on) / t_off (from alpha_on up to 1).
 * t and s are the view's timesteps (Dream's linspace(1, eps, n_steps + 1)
 * for the block), so the schedules run per block. Probabilities are
 * clamped to [0, 1] (ReMDM's bounds on sigma_t make that a no-op for cap;
 * for loop, eta > (1 - alpha_on) / alpha_on saturates the unmasking).
 *
 * Random draws, in this order (tests/ref/decode_ref.py replays them): one
 * uniform per masked position in canvas order (unmask when u < p), then one
 * per committed position in canvas order (re-mask when u < sigma_t).
 *
 * Both declare remask = 1: the view lists the block's committed positions,
 * a block runs all its steps even when nothing in it is masked, and a run
 * may take more steps than it has positions (ReMDM's inference-time
 * scaling). They read no confidence, only the random stream.
 */
#include <math.h>

#include "decoder.h"

/* One step's unmasking and re-masking probabilities. */
typedef struct remdm_step {
    double p_unmask, sigma;
} remdm_step;

static double clamp01(double x) { return x < 0 ? 0 : x > 1 ? 1 : x; }

/* The posterior's probabilities for alpha_t, alpha_s and sigma_t. */
static remdm_step posterior(double alpha_t, double alpha_s, double sigma) {
    remdm_step r;
    r.sigma = clamp01(sigma);
    r.p_unmask = alpha_t < 1 ? clamp01((alpha_s - (1 - r.sigma) * alpha_t) / (1 - alpha_t)) : 1.0;
    return r;
}

static remdm_step cap_step(const smdiff_step_view *v) {
    double alpha_t = 1 - v->t, alpha_s = 1 - v->s, eta = v->remdm_eta;
    double sigma = alpha_t > 0 ? fmin(eta, (1 - alpha_s) / alpha_t) : eta;
    return posterior(alpha_t, alpha_s, sigma);
}

static remdm_step loop_step(const smdiff_step_view *v) {
    double t = v->t, s = v->s, on = v->remdm_t_on, off = v->remdm_t_off, a = v->remdm_alpha_on;
    if (t > on) /* phase 1: MDLM up to alpha_on (t > t_on implies t_on < 1) */
        return posterior((1 - t) * a / (1 - on), (1 - s) * a / (1 - on), 0.0);
    if (t <= off) /* phase 3: MDLM from alpha_on to 1 (t <= t_off implies t_off > 0) */
        return posterior(1 - t * (1 - a) / off, 1 - s * (1 - a) / off, 0.0);
    return posterior(a, a, v->remdm_eta); /* phase 2: the loop */
}

/* Unmask each masked position with p_unmask, then re-mask each committed
 * one with sigma, one uniform each in that order. */
static int32_t apply(const smdiff_step_view *v, remdm_step st, int32_t *commit, int32_t *n_commit,
                     int32_t *remask, int32_t *n_remask) {
    int32_t n = 0;
    for (size_t i = 0; i < v->n_masked; i++)
        if (v->uniform(v->rng_state) < st.p_unmask) commit[n++] = (int32_t)i;
    *n_commit = n;
    n = 0;
    for (size_t i = 0; i < v->n_committed; i++)
        if (v->uniform(v->rng_state) < st.sigma && (size_t)n < v->remask_capacity)
            remask[n++] = v->committed_position[i];
    *n_remask = n;
    return SMDIFF_OK;
}

static int32_t sel_remdm_cap(const smdiff_step_view *v, int32_t *commit, int32_t *n_commit, int32_t *remask,
                             int32_t *n_remask, void *ud) {
    (void)ud;
    return apply(v, cap_step(v), commit, n_commit, remask, n_remask);
}

static int32_t sel_remdm_loop(const smdiff_step_view *v, int32_t *commit, int32_t *n_commit,
                              int32_t *remask, int32_t *n_remask, void *ud) {
    (void)ud;
    return apply(v, loop_step(v), commit, n_commit, remask, n_remask);
}

const smdiff_decoder sd_decoder_remdm_cap = {
    sizeof(smdiff_decoder), SMDIFF_DECODER_ABI_VERSION, "remdm_cap",
    "ReMDM-cap: MDLM steps that also re-mask committed tokens with probability min(eta, sigma_max)",
    sel_remdm_cap, NULL, SMDIFF_SCHEDULE_TIMESTEP, SMDIFF_CONFIDENCE_SAMPLED, SMDIFF_NEED_RANDOM, 0, 1, SMDIFF_FINAL_COMMIT_ALL};

const smdiff_decoder sd_decoder_remdm_loop = {
    sizeof(smdiff_decoder), SMDIFF_DECODER_ABI_VERSION, "remdm_loop",
    "ReMDM-loop: MDLM to alpha_on, a re-masking loop at alpha_on over (t_off, t_on], then MDLM",
    sel_remdm_loop, NULL, SMDIFF_SCHEDULE_TIMESTEP, SMDIFF_CONFIDENCE_SAMPLED, SMDIFF_NEED_RANDOM, 0, 1, SMDIFF_FINAL_COMMIT_ALL};
