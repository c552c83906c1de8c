/* stats_kernels.h -- per-row kernels over one vocabulary row of logits.
 *
 * What a row x[V] is reduced to before anything is sampled from it:
 *   - the K best (value, id) pairs, descending, ties by lower id (torch.max
 *     and torch.topk return the first occurrence on CPU), with the softmax
 *     sums s = sum exp(x - m), t = sum exp(x - m) (x - m), m = max, in one
 *     fused pass: p = softmax(x), H(p) = log s - t / s, p's top-k;
 *   - the support of Dream's sampling distribution q (top-p, then top-k, at
 *     temperature T): all of the row, a sorted candidate list, or, when
 *     top-p keeps more than the 64 best, everything above a cut (tau,
 *     tau_id) found with a histogram of the row's mass; and q's normaliser
 *     and sum of exp(y) y over that support.
 * The sampling logic built on this (the candidate's draw, the confidence
 * kinds, rows spread over a pool) is stats.c.
 *
 * The vector code is written with GCC/clang vector extensions, compiled for
 * the baseline ISA and once more for AVX2+FMA on x86-64, picked at run time.
 */
#ifndef SD_DIFFUSION_STATS_KERNELS_H
#define SD_DIFFUSION_STATS_KERNELS_H

#include <stdint.h>
#include <string.h>

#include "core/vecmath.h" /* sd_v1_exp: the kernels' exp, one lane at a time */
#include "stats.h"

typedef struct sd_cand {
    float v;
    int32_t id;
} sd_cand;

/* Sort order of a row: value descending, then id ascending (qsort). */
int sd_cand_cmp(const void *a, const void *b);

/* The kept set of the sampling distribution q. Dream's filters always keep
 * a prefix of the row sorted by (value descending, id ascending), so the
 * set is "everything up to and including (tau, tau_id)" in that order:
 *   SD_KEEP_ALL    nothing filtered
 *   SD_KEEP_LIST   the first n entries of a sorted list c
 *   SD_KEEP_ABOVE  x > tau, or x == tau and id <= tau_id; Z and TZ are the
 *                  sums of exp(y) and exp(y) y over it, y = beta (x - m),
 *                  and e[V] every exp(y) of the row (the histogram's) */
enum { SD_KEEP_ALL, SD_KEEP_LIST, SD_KEEP_ABOVE };
typedef struct sd_kept {
    int mode;
    const sd_cand *c;
    int64_t n;
    float tau;
    int32_t tau_id;
    double Z, TZ;
    const float *e;
} sd_kept;

/* A row reduced by the kernels. */
typedef struct sd_row_summary {
    sd_cand top[SD_STATS_MAX_K]; /* the ntop best entries, in sort order */
    int32_t ntop;
    float m;                     /* the row's maximum */
    double s, t;                 /* softmax sums at temperature 1 (t only
                                    when H(p) or sum q log q needs it) */
    sd_kept kept;                /* q's support */
} sd_row_summary;

/* One thread's scratch for the filters' slow paths: a sorted copy of the
 * row, the histogram's exponentials, the histogram. Empty (all NULL) when
 * neither top-p nor top-k is on. */
struct sd_hist;
typedef struct sd_row_scratch {
    sd_cand *sorted;     /* [V] */
    float *ebuf;         /* [V], top-p only */
    struct sd_hist *hist;/* top-p only */
} sd_row_scratch;

/* Bytes of one thread's scratch (a multiple of 64), and its layout in mem
 * (64-byte aligned, that many bytes). */
size_t sd_row_scratch_bytes(int64_t V, const sd_stats_params *p);
void sd_row_scratch_carve(void *mem, int64_t V, const sd_stats_params *p, sd_row_scratch *out);

/* Reduce row x[V] (p's top_k, top_p, temperature, sm_k and entropy flags).
 * *out must stay where it is while out->kept is used (it may point at
 * out->top). Returns SMDIFF_OK, SMDIFF_E_NUMERIC for NaN or +inf in the
 * row, SMDIFF_E_NOMEM when a slow path found no scratch. */
int32_t sd_row_summarize(const float *x, int64_t V, const sd_stats_params *p,
                         const sd_row_scratch *scratch, sd_row_summary *out);

/* H(p) in nats, p = softmax(x) (needs r->t). */
double sd_row_entropy(const sd_row_summary *r);

/* p's k best ids and probabilities (k <= SD_STATS_MAX_K; past the list's
 * end, the best id with probability 0). */
void sd_row_softmax_topk(const sd_row_summary *r, int32_t k, int32_t *ids, float *probs);

/* Over q's support at inverse temperature beta: Z = sum exp(y) and
 * tz = sum exp(y) y, y = beta (x - m); *n_kept is the support's size, or
 * more than the candidate list when it is only known to be larger.
 * want_tz: tz is needed (sum q log q), which may cost a pass at T != 1. */
void sd_row_q_sums(const float *x, int64_t V, const sd_row_summary *r, double beta, int want_tz,
                   int sampling, double *Z, double *tz, int64_t *n_kept);

/* sum exp(beta (x - m)) over x[0..n), n a multiple of 8. */
float sd_row_exp_chunk(const float *x, int64_t n, float m, float beta);

/* sum e[i] over the kept entries of x[0..n) (n a multiple of 8, ids from
 * base): x > tau, or x == tau and id <= tau_id. */
float sd_row_kept_chunk(const float *x, const float *e, int64_t n, int32_t base, float tau,
                        int32_t tau_id);

#endif
