/* custom_strategy.c -- a decoder strategy written by a user, in C, through
 * the public plug-in interface (smdiff_decoder.h), registered and used.
 *
 * The strategy, "window_confident", decodes roughly left to right: at each
 * step it looks only at the `window` leftmost masked positions and commits
 * those whose confidence reaches `min_conf`, always at least the most
 * confident one of the window, so every step makes progress. It declares
 * what it reads (the confidence, nothing else) and the confidence kind it
 * wants; the sampler fills the view accordingly.
 *
 *   usage: custom_strategy MODEL.gguf      (runs it on token-id prompt 4 5 6)
 *          custom_strategy                 (only registers and lists it)
 */
#include <stdio.h>
#include <string.h>

#include <smdiff/smdiff.h>
#include <smdiff/smdiff_decoder.h>

typedef struct window_params {
    size_t window;
    float min_conf;
    int32_t steps_seen; /* counted by the strategy, reported at the end */
} window_params;

static int32_t window_select(const smdiff_step_view *v, int32_t *commit, int32_t *n_commit,
                             int32_t *remask, int32_t *n_remask, void *user_data) {
    window_params *p = user_data;
    (void)remask;
    *n_remask = 0;
    *n_commit = 0;
    p->steps_seen++;
    if (v->n_masked == 0) return SMDIFF_OK;
    /* The view's arrays are in canvas order within the block, so the
     * window is simply the first `window` entries. */
    size_t w = v->n_masked < p->window ? v->n_masked : p->window;
    size_t best = 0;
    for (size_t i = 0; i < w; i++) {
        if (v->confidence[i] > v->confidence[best]) best = i;
        if (v->confidence[i] >= p->min_conf) commit[(*n_commit)++] = (int32_t)i;
    }
    if (*n_commit == 0) commit[(*n_commit)++] = (int32_t)best;
    return SMDIFF_OK;
}

int main(int argc, char **argv) {
    static window_params params = {4, 0.5f, 0};
    smdiff_decoder dec;
    memset(&dec, 0, sizeof dec);
    dec.struct_size = sizeof dec;
    dec.abi_version = SMDIFF_DECODER_ABI_VERSION;
    dec.name = "window_confident";
    dec.description = "left-to-right window, confident positions first";
    dec.select = window_select;
    /* What it reads and how it wants to be scheduled (smdiff_decoder.h):
     * the softmax probability of each candidate at temperature 1, and
     * Dream's timestep schedule (the default; n_transfer is not used). */
    dec.needs = SMDIFF_NEED_CONFIDENCE;
    dec.confidence = SMDIFF_CONFIDENCE_RAW;
    dec.schedule = SMDIFF_SCHEDULE_TIMESTEP;
    int32_t rc = smdiff_decoder_register(&dec, &params);
    if (rc) {
        fprintf(stderr, "register: %s: %s\n", smdiff_strerror(rc), smdiff_last_error());
        return 1;
    }
    size_t n = 0;
    smdiff_decoder_count(&n);
    printf("strategies:");
    for (size_t i = 0; i < n; i++) {
        const char *name;
        smdiff_decoder_name(i, &name, NULL);
        printf(" %s", name);
    }
    printf("\n");
    if (argc < 2) return 0;

    smdiff_model *m = NULL;
    smdiff_sampler *s = NULL;
    int ret = 1;
    if ((rc = smdiff_model_create(&m)) || (rc = smdiff_model_load_file(m, argv[1]))) {
        fprintf(stderr, "%s: %s\n", argv[1], smdiff_last_error());
        goto done;
    }
    if ((rc = smdiff_sampler_create(&s))) goto done;
    smdiff_sampler_set_int(s, SMDIFF_SAMPLER_GEN_LENGTH, 12);
    smdiff_sampler_set_int(s, SMDIFF_SAMPLER_STEPS, 12);
    if ((rc = smdiff_sampler_set_strategy(s, "window_confident"))) goto done;
    int32_t prompt[] = {4, 5, 6}, out[12];
    size_t n_out = 0;
    if ((rc = smdiff_generate_tokens(s, m, prompt, 3, out, 12, &n_out))) {
        fprintf(stderr, "generate: %s: %s\n", smdiff_strerror(rc), smdiff_sampler_last_error(s));
        goto done;
    }
    printf("window_confident: %d steps, tokens:", (int)params.steps_seen);
    for (size_t i = 0; i < n_out; i++) printf(" %d", (int)out[i]);
    printf("\n");
    ret = params.steps_seen > 0 ? 0 : 1;
done:
    smdiff_sampler_free(s);
    smdiff_model_free(m);
    smdiff_decoder_unregister("window_confident");
    return ret;
}
