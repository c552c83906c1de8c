#include <string.h>

#include "core/alloc.h"
#include "nn/model.h"
#include "sampler.h"

static const sd_option_def defs[] = {
    {SMDIFF_SAMPLER_STEPS, "steps", SMDIFF_TYPE_INT, 1, 1048576, 64, 0, 0},
    {SMDIFF_SAMPLER_GEN_LENGTH, "gen_length", SMDIFF_TYPE_INT, 1, 1048576, 128, 0, 0},
    {SMDIFF_SAMPLER_BLOCK_LENGTH, "block_length", SMDIFF_TYPE_INT, 0, 1048576, 0, 0, 0},
    {SMDIFF_SAMPLER_TEMPERATURE, "temperature", SMDIFF_TYPE_DOUBLE, 0, 100, 0, 0, 0},
    {SMDIFF_SAMPLER_TOP_K, "top_k", SMDIFF_TYPE_INT, 0, 1048576, 0, 0, 0},
    {SMDIFF_SAMPLER_TOP_P, "top_p", SMDIFF_TYPE_DOUBLE, 0, 1, 1, 1, 0},
    {SMDIFF_SAMPLER_SEED, "seed", SMDIFF_TYPE_INT, 0, 9223372036854775807.0, 0, 0, 0},
    {SMDIFF_SAMPLER_ALG_TEMP, "alg_temp", SMDIFF_TYPE_DOUBLE, 0, 100, 0, 0, 0},
    {SMDIFF_SAMPLER_THRESHOLD, "threshold", SMDIFF_TYPE_DOUBLE, 0, 1, 0.9, 0, 0},
    {SMDIFF_SAMPLER_EPS, "eps", SMDIFF_TYPE_DOUBLE, 0, 0.5, 1e-3, 0, 0},
    {SMDIFF_SAMPLER_THREADS, "threads", SMDIFF_TYPE_INT, 0, 1024, 0, 0, 0},
    {SMDIFF_SAMPLER_STOP_AT_EOS, "stop_at_eos", SMDIFF_TYPE_INT, 0, 1, 1, 0, 0},
    {SMDIFF_SAMPLER_SM_ACROSS_BLOCKS, "sm_across_blocks", SMDIFF_TYPE_INT, 0, 1, 0, 0, 0},
    {SMDIFF_SAMPLER_REMDM_ETA, "remdm_eta", SMDIFF_TYPE_DOUBLE, 0, 1, 0.02, 0, 0},
    {SMDIFF_SAMPLER_REMDM_T_ON, "remdm_t_on", SMDIFF_TYPE_DOUBLE, 0, 1, 0.55, 0, 0},
    {SMDIFF_SAMPLER_REMDM_T_OFF, "remdm_t_off", SMDIFF_TYPE_DOUBLE, 0, 1, 0.05, 0, 0},
    {SMDIFF_SAMPLER_REMDM_ALPHA_ON, "remdm_alpha_on", SMDIFF_TYPE_DOUBLE, 0, 1, 0.9, 1, 1},
    {SMDIFF_SAMPLER_CACHE, "cache", SMDIFF_TYPE_INT, 0, 2, 0, 0, 0},
    {SMDIFF_SAMPLER_CACHE_REFRESH, "cache_refresh", SMDIFF_TYPE_INT, 0, 1048576, 0, 0, 0},
    {SMDIFF_SAMPLER_FACTOR, "factor", SMDIFF_TYPE_DOUBLE, 0, 1000, 1, 1, 0},
};

const sd_option_table sd_sampler_options = {defs,
                                            (int32_t)(sizeof defs / sizeof defs[0])};

_Static_assert(sizeof defs / sizeof defs[0] == SMDIFF_SAMPLER_OPT_LAST_ - SMDIFF_SAMPLER_OPT_FIRST_ + 1, "one entry per option");

#define SET_BY_CALLER(s, key) (((s)->opt_set >> SD_OPT_SLOT(key)) & 1)

/* The run's schedule (the model's when the caller set none) and steps at
 * most G when the caller did not set them; gen_length G when set_gen. The
 * previous values go to saved. */
static int32_t settle(struct smdiff_sampler *s, const struct smdiff_model *m, int64_t G, int set_gen,
                      sd_sampler_saved *saved) {
    struct smdiff_softmask sm = s->softmask;
    if (!s->softmask_set) {
        int32_t rc = sd_softmask_from_model(m, &sm, &s->err);
        if (rc) return rc;
    }
    sd_optval *o = s->opt;
    memcpy(saved->opt, s->opt, sizeof saved->opt);
    saved->softmask = s->softmask;
    if (set_gen) o[SD_OPT_SLOT(SMDIFF_SAMPLER_GEN_LENGTH)].i = G;
    if (!SET_BY_CALLER(s, SMDIFF_SAMPLER_STEPS) && o[SD_OPT_SLOT(SMDIFF_SAMPLER_STEPS)].i > G)
        o[SD_OPT_SLOT(SMDIFF_SAMPLER_STEPS)].i = G;
    memcpy(s->softmask.opt, sm.opt, sizeof sm.opt);
    return SMDIFF_OK;
}

int32_t sd_sampler_resolve(struct smdiff_sampler *s, const struct smdiff_model *m, int64_t n_prompt,
                           sd_sampler_saved *saved) {
    const int64_t ctx = m->w.hp.n_ctx, room = ctx - n_prompt;
    int64_t G = s->opt[SD_OPT_SLOT(SMDIFF_SAMPLER_GEN_LENGTH)].i;
    if (SET_BY_CALLER(s, SMDIFF_SAMPLER_GEN_LENGTH) && G > room)
        return sd_fail(&s->err, SMDIFF_E_RANGE, "prompt (%lld) + gen_length (%lld) exceeds the context of %lld: "
                       "at most %lld tokens fit after this prompt", (long long)n_prompt, (long long)G, (long long)ctx,
                       (long long)(room > 0 ? room : 0));
    if (room < 1)
        return sd_fail(&s->err, SMDIFF_E_RANGE, "the prompt (%lld tokens) fills the context of %lld: no room to "
                       "generate", (long long)n_prompt, (long long)ctx);
    return settle(s, m, G > room ? room : G, 1, saved); /* not set by the caller: the default, clamped */
}

int32_t sd_sampler_resolve_canvas(struct smdiff_sampler *s, const struct smdiff_model *m, int64_t n_masks,
                                  sd_sampler_saved *saved) {
    return settle(s, m, n_masks, 0, saved);
}

void sd_sampler_restore(struct smdiff_sampler *s, const sd_sampler_saved *saved) {
    memcpy(s->opt, saved->opt, sizeof s->opt);
    memcpy(s->softmask.opt, saved->softmask.opt, sizeof s->softmask.opt);
}

/* ------------------------------------------------- text result cache */

static uint64_t fnv(uint64_t h, const void *data, size_t n) {
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

uint64_t sd_sampler_request_key(const struct smdiff_sampler *s, const void *model, const char *const *parts,
                                size_t n_parts, int32_t flag) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n_parts; i++) {
        size_t n = strlen(parts[i]);
        h = fnv(fnv(h, parts[i], n), &n, sizeof n);
    }
    /* the model's serial, not its address: a model freed and another
     * loaded at the same address must not get the first one's result */
    uint64_t m = ((const struct smdiff_model *)model)->serial;
    h = fnv(fnv(h, &m, sizeof m), &flag, sizeof flag);
    h = fnv(fnv(h, &s->opt_set, sizeof s->opt_set), &s->softmask_set, sizeof s->softmask_set);
    h = fnv(h, s->opt, sizeof s->opt);
    h = fnv(h, s->softmask.opt, sizeof s->softmask.opt);
    return fnv(h, s->strategy, strlen(s->strategy));
}

int sd_sampler_has_text(const struct smdiff_sampler *s, uint64_t key) {
    return s->text_cache && s->text_cache_key == key;
}

void sd_sampler_keep_text(struct smdiff_sampler *s, uint64_t key, char *text, size_t len) {
    sd_free(s->text_cache);
    s->text_cache = text;
    s->text_cache_len = len;
    s->text_cache_key = key;
}

int32_t sd_sampler_deliver_text(struct smdiff_sampler *s, const char *fn, char *text, size_t capacity,
                                size_t *n_out) {
    *n_out = s->text_cache_len;
    if (capacity < s->text_cache_len)
        return sd_fail(&s->err, SMDIFF_E_BUFFER, "%s: %zu bytes needed, buffer has %zu", fn, s->text_cache_len,
                       capacity);
    if (s->text_cache_len) memcpy(text, s->text_cache, s->text_cache_len);
    /* The cache only serves the retry after SMDIFF_E_BUFFER. */
    sd_free(s->text_cache);
    s->text_cache = NULL;
    s->text_cache_len = 0;
    return SMDIFF_OK;
}
