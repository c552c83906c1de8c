/* stats.h -- per-row statistics of a logits row, computed once per step:
 * the sampling logic of the denoising loop (the candidate token, its
 * confidence of either kind) over the per-row kernels of stats_kernels.h.
 *
 * For each logits row x[V] the denoising loop needs two families of
 * numbers:
 *   - soft-masking (docs/DECODING.md): p = softmax(x) at temperature 1,
 *     its top-k ids and probabilities (k <= 64) and its entropy (nats);
 *   - the decoder strategy: the candidate token and its confidence as
 *     Dream's sample_tokens defines them (generation_utils.py):
 *         y = x / T               (T > 0; at T = 0 x is used as is)
 *         y = top_p_filter(y)     (sorted cumulative softmax > top_p removed,
 *                                  shifted right so the first crossing stays)
 *         y = top_k_filter(y)     (logits below the k-th largest removed)
 *         q = softmax(y)
 *         token = argmax q (T = 0) or a draw from q (T > 0)
 *     and its confidence of the kind the strategy declares: q[token]
 *     (SMDIFF_CONFIDENCE_SAMPLED) or p[token] at temperature 1
 *     (SMDIFF_CONFIDENCE_RAW, LLaDA's and Fast-dLLM's); plus q's top-1 and
 *     top-2 probabilities (Dream's topk_margin) and H(q) (Dream's entropy
 *     strategy).
 *
 * Cost: one fused pass over the row (selection of the top candidates with
 * a block-max skip, and one exponential per element for the normaliser and
 * entropy), a second only when sampling at T > 0 without filters, or when
 * T != 1 and the entropy of q is wanted. When top-p keeps more than the 64
 * best candidates, a histogram pass at temperature T (it also gives the
 * normaliser and keeps every exponential) finds the bin of the cut, a
 * vector pass gathers that bin, a mass-weighted quickselect places the cut
 * exactly, and the draw walks the kept tokens in vocabulary order over the
 * stored exponentials, chunk sums first. A full sort of the row happens
 * only for top-k > 63 or ties at the k-th value.
 *
 * Randomness: row r draws from Philox(key = {seed, SD_STREAM_STATS_KEY}, counter =
 * {ctr, row_id[r], 0, 0}), a pure function of the step and the row's canvas
 * position, so results do not depend on the thread count.
 */
#ifndef SD_DIFFUSION_STATS_H
#define SD_DIFFUSION_STATS_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "core/pool.h"

#define SD_STATS_MAX_K 64

typedef struct sd_stats_params {
    double temperature;    /* >= 0; 0 = argmax */
    int32_t top_k;         /* 0 = off */
    double top_p;          /* (0,1]; 1 = off */
    int32_t sm_k;          /* 0..SD_STATS_MAX_K temperature-1 top ids/probs wanted */
    int32_t want_q_entropy;/* compute sum q log q (Dream's entropy strategy) */
    uint64_t seed;         /* sampler seed */
    uint64_t ctr;          /* counter for this step (distinct per step) */
    int32_t skip_entropy;  /* 1: H(p) not wanted (entropy = 0 then), which saves a
                              multiply-add per logit; sum q log q still follows
                              want_q_entropy */
} sd_stats_params;

/* One row's statistics, as the naive reference computes them. */
typedef struct sd_row_stats {
    int32_t token;         /* candidate token */
    float confidence;      /* q[token] */
    float p_token;         /* p[token], temperature 1, unfiltered */
    float q_top1, q_top2;  /* two largest q (q_top2 = 0 if one token kept) */
    float q_neg_entropy;   /* sum q log q (<= 0); 0 unless want_q_entropy */
    float entropy;         /* H(p) in nats, temperature 1, full vocabulary */
    int32_t sm_ids[SD_STATS_MAX_K];   /* top sm_k ids of p, descending */
    float sm_probs[SD_STATS_MAX_K];   /* their p */
} sd_row_stats;

/* Where sd_stats_rows writes: a structure of arrays, row r at index r.
 * NULL arrays are not written; so a caller points them straight at the
 * arrays it reads (the denoising loop: at its step view's). */
typedef struct sd_stats_out {
    int32_t *token;         /* [n_rows] candidate token */
    float *q_token;         /* [n_rows] q[token] */
    float *p_token;         /* [n_rows] p[token], temperature 1, unfiltered */
    float *q_top1, *q_top2; /* [n_rows] two largest q (q_top2 = 0 if one token kept) */
    float *q_entropy;       /* [n_rows] H(q) = -sum q log q; 0 unless want_q_entropy */
    float *p_entropy;       /* [n_rows] H(p); 0 when skip_entropy */
    int32_t *sm_ids;        /* [slots, sm_k] top sm_k ids of p, descending */
    float *sm_probs;        /* [slots, sm_k] their p */
    const int32_t *sm_slot; /* [n_rows] the slot of row r in sm_ids/sm_probs
                               (NULL: slot r) */
} sd_stats_out;

/* Bytes of scratch sd_stats_rows needs for rows of V on n_threads threads
 * (SIZE_MAX if that overflows). */
size_t sd_stats_scratch_bytes(int n_threads, int64_t V, const sd_stats_params *p);

/* Statistics of n_rows rows.
 *   logits [n_rows, V], row_id [n_rows] (the RNG stream of each row),
 *   scratch: 64-byte aligned, sd_stats_scratch_bytes(threads of pool, V, p)
 *   bytes (pool NULL: 1 thread).
 * Rows are spread over pool's threads (pool may be NULL). Allocates
 * nothing. Returns SMDIFF_OK, SMDIFF_E_NUMERIC if a row holds NaN or +inf
 * (err names the first such row), SMDIFF_E_INVAL for bad parameters or
 * missing scratch. */
int32_t sd_stats_rows(sd_pool *pool, const float *logits, int64_t n_rows, int64_t V,
                      const uint64_t *row_id, const sd_stats_params *p, void *scratch,
                      const sd_stats_out *out, sd_error *err);

/* The same for one row, computed the slow, obvious way (double precision,
 * full sort): the reference the fast path is tested against. */
int32_t sd_stats_row_naive(const float *x, int64_t V, uint64_t row_id,
                           const sd_stats_params *p, sd_row_stats *out);

/* The uniform in [0,1) row row_id draws at counter ctr (exposed so tests can
 * reproduce a draw). */
double sd_stats_uniform(uint64_t seed, uint64_t ctr, uint64_t row_id);

#endif
