/* sampler.h -- the per-request object that runs the denoising loop. */
#ifndef SD_DIFFUSION_SAMPLER_H
#define SD_DIFFUSION_SAMPLER_H

#include "core/error.h"
#include "core/options.h"
#include "smdiff/smdiff.h"
#include "softmask.h"

#define SD_SAMPLER_N_OPT (SMDIFF_SAMPLER_OPT_LAST_ - SMDIFF_SAMPLER_OPT_FIRST_ + 1)

struct smdiff_sampler {
    sd_optval opt[SD_SAMPLER_N_OPT];
    uint64_t opt_set;        /* bit SD_OPT_SLOT(key): the caller set that option */
    char strategy[64];
    struct smdiff_softmask softmask;
    int32_t softmask_set;    /* the caller chose the schedule (else the model's is used) */
    smdiff_step_fn step_fn;
    void *step_ud;
    smdiff_abort_fn abort_fn;
    void *abort_ud;
    sd_error err;
    /* Figures of the last run (bench, CLI): seconds in the forward pass,
     * in statistics + strategy, in building input embeddings (SM mixing),
     * and the number of steps run, of which forwards_skipped reused the
     * previous step's logits (nothing had changed). */
    double time_forward, time_stats, time_embed;
    int32_t steps_run, forwards_skipped;
    int32_t no_forward_cache; /* tests: run every forward pass (results must not change) */
    /* smdiff_generate_text's cached result for the two-call pattern. */
    char *text_cache;
    size_t text_cache_len;
    uint64_t text_cache_key;
    /* The denoising loop's arrays, worker pool and forward scratch, kept
     * between runs (generate.c); NULL until the first run. */
    struct sd_gen_workspace *ws;
};

extern const sd_option_table sd_sampler_options;

/* What sd_sampler_resolve replaced, to put back after the run. */
typedef struct sd_sampler_saved {
    sd_optval opt[SD_SAMPLER_N_OPT];
    struct smdiff_softmask softmask;
} sd_sampler_saved;

/* Settle the defaults the caller left for a run on model m after a prompt
 * of n_prompt tokens, in s->opt and s->softmask (the previous values go to
 * saved; sd_sampler_restore puts them back):
 *  - no schedule set: the model's stored one (sd_softmask_from_model);
 *  - gen_length not set: the default, clamped to the context left after the
 *    prompt; set, it must fit (SMDIFF_E_RANGE naming the limit otherwise);
 *  - steps not set: the default, at most gen_length.
 * Errors are recorded on s->err; nothing is changed then. */
struct smdiff_model;
int32_t sd_sampler_resolve(struct smdiff_sampler *s, const struct smdiff_model *m, int64_t n_prompt,
                           sd_sampler_saved *saved);
/* The same for a canvas with n_masks positions to fill (infilling): the
 * schedule, and steps at most n_masks; gen_length is not used. */
int32_t sd_sampler_resolve_canvas(struct smdiff_sampler *s, const struct smdiff_model *m, int64_t n_masks,
                                  sd_sampler_saved *saved);
void sd_sampler_restore(struct smdiff_sampler *s, const sd_sampler_saved *saved);

/* The two-call pattern of the text functions: a key of the request (FNV-1a
 * over the model handle, the text parts with their lengths, a flag, the
 * sampler's options (and which the caller set), schedule and strategy),
 * the result kept under it,
 * and its delivery -- *n_out the size, SMDIFF_E_BUFFER while capacity is
 * smaller (the result stays cached), else the bytes copied and the cache
 * dropped. */
uint64_t sd_sampler_request_key(const struct smdiff_sampler *s, const void *model, const char *const *parts,
                                size_t n_parts, int32_t flag);
int sd_sampler_has_text(const struct smdiff_sampler *s, uint64_t key);
void sd_sampler_keep_text(struct smdiff_sampler *s, uint64_t key, char *text, size_t len);
int32_t sd_sampler_deliver_text(struct smdiff_sampler *s, const char *fn, char *text, size_t capacity,
                                size_t *n_out);

#endif
