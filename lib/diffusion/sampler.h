/* sampler.h -- the per-request object that runs the denoising loop. */
#ifndef SD_DIFFUSION_SAMPLER_H
#define SD_DIFFUSION_SAMPLER_H

#include "core/error.h"
#include "core/options.h"
#include "smdiff/smdiff.h"
#include "softmask.h"

struct smdiff_sampler {
    sd_optval opt[SMDIFF_SAMPLER_OPT_LAST_ - SMDIFF_SAMPLER_OPT_FIRST_ + 1];
    char strategy[64];
    struct smdiff_softmask softmask;
    smdiff_step_fn step_fn;
    void *step_ud;
    smdiff_abort_fn abort_fn;
    void *abort_ud;
    sd_error err;
    /* Figures of the last run (bench, CLI): seconds in the forward pass,
     * in statistics + strategy, in building input embeddings (SM mixing),
     * and the number of steps run. */
    double time_forward, time_stats, time_embed;
    int32_t steps_run;
    /* smdiff_generate_text's cached result for the two-call pattern. */
    char *text_cache;
    size_t text_cache_len;
    uint64_t text_cache_key;
    /* The denoising loop's arrays, worker pool and forward scratch, kept
     * between runs (generate.c); NULL until the first run. */
    struct sd_gen_workspace *ws;
};

extern const sd_option_table sd_sampler_options;

#endif
