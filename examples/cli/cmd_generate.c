/* cmd_generate.c -- `smdiff generate`: decode text with a masked diffusion
 * model, soft-masking on or off, any registered strategy; fill spans
 * anywhere in the text ({{fill:N}} markers, --suffix: canvas.c).
 *
 * Progress goes to stderr (a bar with the time left, or with --visual the
 * canvas redrawn at every step: masked positions as shaded blocks whose
 * shade is the soft-mask weight lambda, tokens committed at this step
 * highlighted); the generated text goes to stdout. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: smdiff generate [-m MODEL.gguf] (-p PROMPT | --ids \"ID ID ...\") [options]\n"
            "  -p PROMPT            the text to continue; each {{fill:N}} in it is a span of N\n"
            "                       tokens to fill (infilling; the whole text is printed)\n"
            "  --suffix TEXT        text after the generation: fill the gen-len tokens between\n"
            "                       the prompt and TEXT (or, with markers, append TEXT)\n"
            "  -m MODEL.gguf        model file (default: the bundled " CLI_DEFAULT_MODEL ",\n"
            "                       or $SMDIFF_MODEL)\n"
            "  --chat               wrap the prompt in the model's chat template\n"
            "  --steps N            denoising steps (default 64)\n"
            "  --gen-len N          tokens to generate (default 128)\n"
            "  --block-len N        semi-autoregressive block length (default: one block)\n"
            "  --strategy NAME      origin maskgit_plus topk_margin entropy low_confidence\n"
            "                       random threshold remdm_cap remdm_loop, or a registered one\n"
            "                       (default maskgit_plus)\n"
            "  --remdm-eta E --remdm-t-on T --remdm-t-off T --remdm-alpha-on A\n"
            "                       ReMDM's parameters (defaults 0.02, 0.55, 0.05, 0.9)\n"
            "  --temp T --top-p P --top-k K --seed S\n"
            "  --alg-temp T         Dream's position-sampling temperature (default 0)\n"
            "  --threshold C        confidence threshold of the threshold strategy (default 0.9)\n"
            "  --threads N          threads for sampling statistics (default: all)\n"
            "  --no-eos-stop        run every step even after EOS\n"
            "  --softmask off|entropy|constant   (default: the model's, else entropy)\n"
            "  --sm-k K --sm-scale S --sm-steepness A --sm-centre B --sm-lambda L\n"
            "  --sm-across-blocks   soft-mask feedback for masked positions of later blocks too\n"
            "  --visual             redraw the canvas at each step (ANSI colours)\n"
            "  -q                   no progress output\n");
}

typedef struct progress {
    const smdiff_model *m;
    int visual, quiet;
    size_t n_prompt;
    double t0;
} progress;

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* One token as printable text: control characters and newlines escaped. */
static void print_piece(const smdiff_model *m, int32_t id) {
    char buf[64];
    size_t n = 0;
    if (smdiff_model_token_piece(m, id, buf, sizeof buf, &n) != SMDIFF_OK) {
        fprintf(stderr, "[%d]", (int)id);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)buf[i];
        if (c == '\n') fputs("\\n", stderr);
        else if (c < 32 || c == 127) fprintf(stderr, "\\x%02x", c);
        else fputc(c, stderr);
    }
}

static int32_t on_step(size_t step, size_t n_steps, const int32_t *canvas, const uint8_t *committed,
                       const float *lambda, size_t n, void *ud) {
    progress *p = ud;
    if (p->quiet) return 0;
    double el = now_s() - p->t0, per = el / (double)(step + 1), left = per * ((double)n_steps - (double)step - 1);
    if (p->visual) {
        int64_t mask = -1;
        smdiff_model_property(p->m, SMDIFF_PROP_MASK_ID, &mask);
        fputs("\033[H\033[2J", stderr);
        fprintf(stderr, "step %d/%d  %.2f s/step  %.0f s left\n\n", (int)step + 1, (int)n_steps, per, left);
        for (size_t i = p->n_prompt; i < n; i++) {
            if (canvas[i] == mask) {
                /* grey ramp 236..255: brighter = larger lambda */
                int shade = 236 + (int)lrintf(fminf(fmaxf(lambda[i], 0.0f), 1.0f) * 19.0f);
                fprintf(stderr, "\033[48;5;%dm \033[0m", shade);
            } else if (committed[i]) {
                fputs("\033[1;32m", stderr);
                print_piece(p->m, canvas[i]);
                fputs("\033[0m", stderr);
            } else {
                print_piece(p->m, canvas[i]);
            }
        }
        fputs("\n", stderr);
    } else {
        int width = 30, done = (int)((double)(step + 1) / n_steps * width);
        fprintf(stderr, "\r[%.*s%*s] step %d/%d  %.2f s/step  %.0f s left ", done,
                "##############################", width - done, "", (int)step + 1, (int)n_steps, per,
                left);
        if (step + 1 == n_steps) fputs("\n", stderr);
    }
    fflush(stderr);
    return 0;
}

static int parse_ids(const char *s, int32_t **ids, int32_t *n) {
    int32_t cap = 16, k = 0;
    int32_t *v = malloc(sizeof *v * (size_t)cap);
    char *end;
    while (v) {
        while (*s == ' ' || *s == ',') s++;
        if (!*s) break;
        long x = strtol(s, &end, 10);
        if (end == s) {
            free(v);
            return -1;
        }
        if (k == cap) {
            int32_t *nv = realloc(v, sizeof *v * (size_t)(cap *= 2));
            if (!nv) break;
            v = nv;
        }
        v[k++] = (int32_t)x;
        s = end;
    }
    if (!v) return -1;
    *ids = v;
    *n = k;
    return 0;
}

int cmd_generate(int argc, char **argv) {
    const char *model_path = NULL, *prompt = NULL, *ids_text = NULL, *strategy = NULL, *sm_mode = NULL;
    const char *suffix = NULL;
    int chat = 0, visual = 0, quiet = 0, eos_stop = 1, across = -1;
    long long steps = -1, gen = -1, block = -1, top_k = -1, seed = -1, threads = -1, sm_k = -1;
    /* UNSET marks options not given; anything typed, NaN included, goes to
     * the setters, which refuse what is out of range. */
    const double UNSET = -1.5e308;
    double temp = UNSET, top_p = UNSET, alg_temp = UNSET, thr = UNSET, sm_scale = UNSET, sm_steep = UNSET,
           sm_centre = UNSET, sm_lambda = UNSET, eta = UNSET, t_on = UNSET, t_off = UNSET, alpha_on = UNSET;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define OPT(name) (!strcmp(a, name) && v && ++i)
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (OPT("-m")) model_path = v;
        else if (OPT("-p")) prompt = v;
        else if (OPT("--ids")) ids_text = v;
        else if (OPT("--suffix")) suffix = v;
        else if (!strcmp(a, "--sm-across-blocks")) across = 1;
        else if (OPT("--remdm-eta")) eta = atof(v);
        else if (OPT("--remdm-t-on")) t_on = atof(v);
        else if (OPT("--remdm-t-off")) t_off = atof(v);
        else if (OPT("--remdm-alpha-on")) alpha_on = atof(v);
        else if (!strcmp(a, "--chat")) chat = 1;
        else if (!strcmp(a, "--visual")) visual = 1;
        else if (!strcmp(a, "-q")) quiet = 1;
        else if (!strcmp(a, "--no-eos-stop")) eos_stop = 0;
        else if (OPT("--steps")) steps = atoll(v);
        else if (OPT("--gen-len")) gen = atoll(v);
        else if (OPT("--block-len")) block = atoll(v);
        else if (OPT("--strategy")) strategy = v;
        else if (OPT("--temp")) temp = atof(v);
        else if (OPT("--top-p")) top_p = atof(v);
        else if (OPT("--top-k")) top_k = atoll(v);
        else if (OPT("--seed")) seed = atoll(v);
        else if (OPT("--alg-temp")) alg_temp = atof(v);
        else if (OPT("--threshold")) thr = atof(v);
        else if (OPT("--threads")) threads = atoll(v);
        else if (OPT("--softmask")) sm_mode = v;
        else if (OPT("--sm-k")) sm_k = atoll(v);
        else if (OPT("--sm-scale")) sm_scale = atof(v);
        else if (OPT("--sm-steepness")) sm_steep = atof(v);
        else if (OPT("--sm-centre")) sm_centre = atof(v);
        else if (OPT("--sm-lambda")) sm_lambda = atof(v);
        else {
            fprintf(stderr, "smdiff generate: unknown or incomplete option '%s'\n\n", a);
            usage(stderr);
            return 2;
        }
#undef OPT
    }
    if ((!prompt && !ids_text) || (prompt && ids_text)) {
        usage(stderr);
        return 2;
    }
    if (!model_path && !(model_path = cli_default_model())) {
        fprintf(stderr, "smdiff generate: no -m given and the bundled model " CLI_DEFAULT_MODEL
                        " was not found (models/, next to the executable, or $SMDIFF_MODEL)\n");
        return 2;
    }
    smdiff_model *m = NULL;
    smdiff_sampler *s = NULL;
    smdiff_softmask *sm = NULL;
    int32_t *ids = NULL, *out = NULL;
    char *text = NULL;
    int ret = 1;
    int32_t rc = smdiff_model_create(&m);
    if (rc) return cli_fail("create model", rc, smdiff_last_error());
    if ((rc = smdiff_model_load_file(m, model_path))) {
        ret = cli_fail(model_path, rc, smdiff_last_error());
        goto done;
    }
    if ((rc = smdiff_sampler_create(&s))) {
        ret = cli_fail("create sampler", rc, smdiff_last_error());
        goto done;
    }
    /* Options: each setter checks its bounds; report the first refusal. */
#define SET_I(key, val, what)                                                   \
    if ((val) >= 0 && (rc = smdiff_sampler_set_int(s, key, val))) {             \
        ret = cli_fail(what, rc, smdiff_sampler_last_error(s));                 \
        goto done;                                                              \
    }
#define SET_D(key, val, what)                                                   \
    if ((val) != UNSET && (rc = smdiff_sampler_set_double(s, key, val))) {      \
        ret = cli_fail(what, rc, smdiff_sampler_last_error(s));                 \
        goto done;                                                              \
    }
    SET_I(SMDIFF_SAMPLER_STEPS, steps, "--steps")
    SET_I(SMDIFF_SAMPLER_GEN_LENGTH, gen, "--gen-len")
    SET_I(SMDIFF_SAMPLER_BLOCK_LENGTH, block, "--block-len")
    SET_I(SMDIFF_SAMPLER_TOP_K, top_k, "--top-k")
    SET_I(SMDIFF_SAMPLER_SEED, seed, "--seed")
    SET_I(SMDIFF_SAMPLER_THREADS, threads, "--threads")
    SET_I(SMDIFF_SAMPLER_STOP_AT_EOS, (long long)eos_stop, "--no-eos-stop")
    SET_D(SMDIFF_SAMPLER_TEMPERATURE, temp, "--temp")
    SET_D(SMDIFF_SAMPLER_TOP_P, top_p, "--top-p")
    SET_D(SMDIFF_SAMPLER_ALG_TEMP, alg_temp, "--alg-temp")
    SET_D(SMDIFF_SAMPLER_THRESHOLD, thr, "--threshold")
    SET_I(SMDIFF_SAMPLER_SM_ACROSS_BLOCKS, (long long)across, "--sm-across-blocks")
    SET_D(SMDIFF_SAMPLER_REMDM_ETA, eta, "--remdm-eta")
    SET_D(SMDIFF_SAMPLER_REMDM_T_ON, t_on, "--remdm-t-on")
    SET_D(SMDIFF_SAMPLER_REMDM_T_OFF, t_off, "--remdm-t-off")
    SET_D(SMDIFF_SAMPLER_REMDM_ALPHA_ON, alpha_on, "--remdm-alpha-on")
    if (strategy && (rc = smdiff_sampler_set_strategy(s, strategy))) {
        ret = cli_fail("--strategy", rc, smdiff_sampler_last_error(s));
        goto done;
    }
    /* Soft-masking: the sampler uses the model's own schedule unless one is
     * set; a --softmask/--sm-* flag changes that schedule. */
    int sm_flags = sm_mode || sm_k >= 0 || sm_scale != UNSET || sm_steep != UNSET || sm_centre != UNSET ||
                   sm_lambda != UNSET;
    if (sm_flags && (rc = smdiff_softmask_create_from_model(m, &sm))) {
        ret = cli_fail("soft-mask parameters", rc, smdiff_last_error());
        goto done;
    }
    if (sm_mode) {
        int64_t mode = !strcmp(sm_mode, "off") ? SMDIFF_SM_OFF
                       : !strcmp(sm_mode, "entropy") ? SMDIFF_SM_ENTROPY
                       : !strcmp(sm_mode, "constant") ? SMDIFF_SM_CONSTANT
                                                       : -1;
        if (mode < 0) {
            fprintf(stderr, "smdiff generate: --softmask must be off, entropy or constant\n");
            ret = 2;
            goto done;
        }
        smdiff_softmask_set_int(sm, SMDIFF_SM_MODE, mode);
    }
    struct {
        double v;
        int32_t key;
        const char *what;
    } smd[] = {{sm_scale, SMDIFF_SM_SCALE, "--sm-scale"},
               {sm_steep, SMDIFF_SM_STEEPNESS, "--sm-steepness"},
               {sm_centre, SMDIFF_SM_CENTRE, "--sm-centre"},
               {sm_lambda, SMDIFF_SM_CONSTANT_LAMBDA, "--sm-lambda"}};
    for (size_t i = 0; i < sizeof smd / sizeof smd[0]; i++)
        if (smd[i].v != UNSET && (rc = smdiff_softmask_set_double(sm, smd[i].key, smd[i].v))) {
            ret = cli_fail(smd[i].what, rc, smdiff_softmask_last_error(sm));
            goto done;
        }
    if (sm_k >= 0 && (rc = smdiff_softmask_set_int(sm, SMDIFF_SM_TOPK, sm_k))) {
        ret = cli_fail("--sm-k", rc, smdiff_softmask_last_error(sm));
        goto done;
    }
    if (sm) smdiff_sampler_set_softmask(s, sm);

    /* Prompt ids: given, or the text tokenized (in the chat template), its
     * {{fill:N}} markers and --suffix making it a canvas to fill. */
    int32_t n_ids = 0, *given = NULL;
    size_t n_canvas = 0;
    int infill = 0;
    if (ids_text && parse_ids(ids_text, &given, &n_ids)) {
        fprintf(stderr, "smdiff generate: --ids wants integers separated by spaces or commas\n");
        ret = 2;
        goto done;
    }
    char *rendered = NULL;
    const char *src = prompt;
    if (chat && !ids_text) {
        const char *role = "user";
        size_t need = 0;
        if (strstr(prompt, "{{fill:") || suffix) {
            fprintf(stderr, "smdiff generate: --chat cannot be combined with --suffix or {{fill:N}} markers\n");
            ret = 2;
            goto done;
        }
        rc = smdiff_chat_template(m, 1, &role, &prompt, 1, NULL, 0, &need);
        if (rc == SMDIFF_E_BUFFER && (rendered = malloc(need)))
            rc = smdiff_chat_template(m, 1, &role, &prompt, 1, rendered, need, &need);
        if (rc) {
            free(rendered);
            ret = cli_fail("--chat", rc, smdiff_last_error());
            goto done;
        }
        src = rendered;
    }
    int64_t G = 0;
    smdiff_sampler_get_int(s, SMDIFF_SAMPLER_GEN_LENGTH, &G);
    ret = cli_canvas(m, given, (size_t)n_ids, src, suffix, G, gen >= 0, &ids, &n_canvas, &infill);
    free(rendered);
    free(given);
    if (ret) goto done;
    ret = 1;
    n_ids = (int32_t)n_canvas;
    progress pr = {m, visual, quiet, infill ? 0 : n_ids, now_s()};
    smdiff_sampler_set_step_callback(s, on_step, &pr);
    size_t n_out = 0, n_filled = 0;
    if (infill) {
        /* the whole canvas, filled, is the output */
        int64_t mask = -1;
        smdiff_model_property(m, SMDIFF_PROP_MASK_ID, &mask);
        for (size_t i = 0; i < n_canvas; i++) n_filled += ids[i] == mask;
        rc = smdiff_generate_canvas(s, m, ids, n_canvas);
        out = ids, ids = NULL;
        n_out = n_canvas;
    } else if ((out = malloc(sizeof *out * (size_t)G))) {
        rc = smdiff_generate_tokens(s, m, ids, (size_t)n_ids, out, (size_t)G, &n_out);
        n_filled = n_out;
    } else {
        goto done;
    }
    if (rc) {
        if (!quiet) fputs("\n", stderr);
        ret = cli_fail("generate", rc, smdiff_sampler_last_error(s));
        goto done;
    }
    size_t nb = 0;
    rc = smdiff_model_detokenize(m, out, n_out, 0, NULL, 0, &nb);
    if ((rc == SMDIFF_OK || rc == SMDIFF_E_BUFFER) && (text = malloc(nb + 1)) &&
        smdiff_model_detokenize(m, out, n_out, 0, text, nb, &nb) == SMDIFF_OK) {
        fwrite(text, 1, nb, stdout);
        fputc('\n', stdout);
    } else {
        /* No tokenizer in the file: print the ids. */
        for (size_t i = 0; i < n_out; i++) printf("%s%d", i ? " " : "", (int)out[i]);
        printf("\n");
    }
    if (!quiet)
        fprintf(stderr, "%zu tokens in %.2f s\n", n_filled, now_s() - pr.t0);
    ret = 0;
done:
    free(text);
    free(out);
    free(ids);
    smdiff_softmask_free(sm);
    smdiff_sampler_free(s);
    smdiff_model_free(m);
    return ret;
}
