/* cmd_generate.c -- `smdiff generate`: decode text with a masked diffusion
 * model, soft-masking on or off, any registered strategy; fill spans
 * anywhere in the text ({{fill:N}} markers, --suffix: canvas.c).
 *
 * The generated text goes to stdout; when it is a terminal, the spans an
 * infill wrote are coloured. Progress goes to stderr when it is a
 * terminal (or with --progress): a bar with the time left, or with
 * --visual the canvas at every step -- masked positions as shaded blocks
 * whose shade is the soft-mask weight lambda, tokens committed at this
 * step highlighted; without colour, masks are '_' and new tokens
 * [bracketed]. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: smdiff generate [-m MODEL.gguf] (-p PROMPT | -f FILE | --ids \"ID ID ...\") [options]\n"
            "\n"
            "  -m, --model FILE       model (default: the bundled " CLI_DEFAULT_MODEL ",\n"
            "                         or $SMDIFF_MODEL)\n"
            "  -p, --prompt TEXT      the text to continue; each {{fill:N}} in it is a span of N\n"
            "                         tokens to fill (infilling; the whole text is printed)\n"
            "  -f, --file FILE        read the prompt from FILE (one final newline dropped)\n"
            "  --ids \"ID ID ...\"      the prompt as token ids, separated by spaces or commas\n"
            "  --suffix TEXT          text after the generation: fill the --gen-len tokens between\n"
            "                         the prompt and TEXT (or, with markers, append TEXT)\n"
            "  --chat                 wrap the prompt in the model's chat template\n"
            "  -n, --gen-len N        tokens to generate (default 128, at most what the\n"
            "                         context leaves after the prompt)\n"
            "  --steps N              denoising steps (default 64, at most --gen-len)\n"
            "  --block-len N          semi-autoregressive block length (default: one block)\n"
            "  --strategy NAME        origin maskgit_plus topk_margin entropy low_confidence\n"
            "                         random threshold factor remdm_cap remdm_loop, or a\n"
            "                         registered one (default maskgit_plus)\n"
            "  --remdm-eta E          ReMDM's eta (default 0.02)\n"
            "  --remdm-t-on T         remdm_loop's loop start (default 0.55)\n"
            "  --remdm-t-off T        remdm_loop's loop end (default 0.05)\n"
            "  --remdm-alpha-on A     remdm_loop's alpha (default 0.9)\n"
            "  --temp T               sampling temperature (default 0: greedy)\n"
            "  --top-p P              nucleus sampling (default 1: off)\n"
            "  --top-k K              top-k sampling (default 0: off)\n"
            "  -s, --seed S           random seed (default 0)\n"
            "  --alg-temp T           Dream's position-sampling temperature (default 0)\n"
            "  --threshold C          confidence threshold of the threshold strategy (default 0.9)\n"
            "  --factor F             f of the factor strategy, Fast-dLLM's factor rule (default 1)\n"
            "  --cache MODE           off, prefix or dual: block caches of keys and values\n"
            "                         (default off; docs/DECODING.md, \"Caches\")\n"
            "  --cache-refresh N      with a cache, also recompute everything every N steps of\n"
            "                         a block (default 0: at block starts only)\n"
            "  -t, --threads N        threads (default 0: all CPUs)\n"
            "  -c, --ctx-size N       context length (default 0: the model's)\n"
            "  --no-eos-stop          run every step even after EOS\n"
            "  --softmask MODE        off, entropy or constant (default: the model's, else entropy)\n"
            "  --sm-k K               tokens mixed into a soft-masked position\n"
            "  --sm-scale S           omega_s, the largest soft-mask weight\n"
            "  --sm-steepness A       omega_a\n"
            "  --sm-centre B          omega_b\n"
            "  --sm-lambda L          the weight of --softmask constant\n"
            "  --sm-across-blocks     soft-mask feedback for masked positions of later blocks too\n"
            "  --visual               show the canvas at each step (implies --progress)\n"
            "  --progress             show progress on stderr even when it is not a terminal\n"
            "  --no-progress          never show progress\n"
            "  --no-color             no colour (infilled spans on a terminal, --visual); also\n"
            "                         NO_COLOR set\n"
            "  -q, --quiet            no progress and no timing line\n"
            "  -h, --help             this text\n"
            "\n"
            "Numbers are checked against the library's bounds (smdiff_*_option_info).\n"
            "Exit status: 0 done, 1 failed while running, 2 wrong command line.\n");
}

enum {
    O_IDS = CLI_OPT_FIRST, O_CHAT, O_STEPS, O_BLOCK, O_STRATEGY, O_TEMP, O_TOP_P, O_TOP_K, O_ALG_TEMP,
    O_THRESHOLD, O_NO_EOS, O_SOFTMASK, O_SM_K, O_SM_SCALE, O_SM_STEEP, O_SM_CENTRE, O_SM_LAMBDA, O_VISUAL,
    O_SUFFIX, O_ACROSS, O_REMDM_ETA, O_REMDM_T_ON, O_REMDM_T_OFF, O_REMDM_ALPHA_ON, O_FACTOR, O_CACHE,
    O_CACHE_REFRESH,
};

static const struct option longopts[] = {
    {"model", required_argument, NULL, 'm'},      {"prompt", required_argument, NULL, 'p'},
    {"file", required_argument, NULL, 'f'},       {"ids", required_argument, NULL, O_IDS},
    {"chat", no_argument, NULL, O_CHAT},          {"gen-len", required_argument, NULL, 'n'},
    {"steps", required_argument, NULL, O_STEPS},  {"block-len", required_argument, NULL, O_BLOCK},
    {"strategy", required_argument, NULL, O_STRATEGY}, {"temp", required_argument, NULL, O_TEMP},
    {"top-p", required_argument, NULL, O_TOP_P},  {"top-k", required_argument, NULL, O_TOP_K},
    {"seed", required_argument, NULL, 's'},       {"alg-temp", required_argument, NULL, O_ALG_TEMP},
    {"threshold", required_argument, NULL, O_THRESHOLD}, {"threads", required_argument, NULL, 't'},
    {"ctx-size", required_argument, NULL, 'c'},   {"no-eos-stop", no_argument, NULL, O_NO_EOS},
    {"softmask", required_argument, NULL, O_SOFTMASK}, {"sm-k", required_argument, NULL, O_SM_K},
    {"sm-scale", required_argument, NULL, O_SM_SCALE}, {"sm-steepness", required_argument, NULL, O_SM_STEEP},
    {"sm-centre", required_argument, NULL, O_SM_CENTRE}, {"sm-lambda", required_argument, NULL, O_SM_LAMBDA},
    {"visual", no_argument, NULL, O_VISUAL},      {"quiet", no_argument, NULL, 'q'},
    {"suffix", required_argument, NULL, O_SUFFIX}, {"sm-across-blocks", no_argument, NULL, O_ACROSS},
    {"remdm-eta", required_argument, NULL, O_REMDM_ETA}, {"remdm-t-on", required_argument, NULL, O_REMDM_T_ON},
    {"remdm-t-off", required_argument, NULL, O_REMDM_T_OFF},
    {"remdm-alpha-on", required_argument, NULL, O_REMDM_ALPHA_ON},
    {"factor", required_argument, NULL, O_FACTOR}, {"cache", required_argument, NULL, O_CACHE},
    {"cache-refresh", required_argument, NULL, O_CACHE_REFRESH},
    CLI_PROGRESS_OPTIONS,                         CLI_COLOR_OPTION,
    CLI_HELP_OPTION,                              {0, 0, 0, 0},
};
const cli_spec cli_spec_generate = {"generate", "m:p:f:n:s:t:c:qh", longopts, usage};

/* The command line, parsed. */
typedef struct gen_args {
    const char *model, *prompt, *file, *strategy, *suffix;
    int32_t *ids;
    size_t n_ids;
    int have_ids, chat, visual, quiet;
    cli_settings model_opts, sampler, softmask;
    cli_args a;
} gen_args;

/* "1 2, 3" -> ids; 0 or an exit status. */
static int parse_ids(const char *opt, const char *text, gen_args *g) {
    size_t cap = 16;
    const char *s = text;
    free(g->ids);
    g->ids = malloc(sizeof *g->ids * cap), g->n_ids = 0;
    while (g->ids) {
        s += strspn(s, " ,");
        if (!*s) break;
        size_t len = strcspn(s, " ,");
        char elem[64];
        snprintf(elem, sizeof elem, "%.*s", (int)(len < 63 ? len : 63), s);
        int64_t v = 0;
        int r = cli_count(opt, elem, 0, INT32_MAX, &v);
        if (r) return r;
        if (g->n_ids == cap) {
            int32_t *nv = g->ids ? realloc(g->ids, sizeof *nv * (cap *= 2)) : NULL;
            if (!nv) free(g->ids);
            g->ids = nv;
        }
        if (!g->ids) break;
        g->ids[g->n_ids++] = (int32_t)v;
        s += len;
    }
    if (!g->ids) return cli_fail(opt, SMDIFF_E_NOMEM, "out of memory");
    if (!g->n_ids) return cli_usage_error("%s: no token ids in '%s'", opt, text);
    g->have_ids = 1;
    return 0;
}

static int parse_softmask_mode(const char *opt, const char *v, cli_settings *sm) {
    int64_t mode = 0;
    int r = cli_softmask_mode(opt, v, &mode);
    return r ? r : cli_setting_int(sm, opt, SMDIFF_SM_MODE, mode);
}

/* One option; 0 or an exit status. */
static int parse_option(void *ud, const cli_args *a, int c, const char *v) {
    gen_args *g = ud;
    const char *opt = a->opt;
    switch (c) {
    case 'm': g->model = v; return 0;
    case 'p': g->prompt = v; return 0;
    case 'f': g->file = v; return 0;
    case O_IDS: return parse_ids(opt, v, g);
    case O_CHAT: g->chat = 1; return 0;
    case O_VISUAL: g->visual = 1; return 0;
    case 'q': g->quiet = 1; return 0;
    case O_STRATEGY: g->strategy = v; return 0;
    case O_SUFFIX: g->suffix = v; return 0;
    case O_ACROSS: return cli_setting_int(&g->sampler, opt, SMDIFF_SAMPLER_SM_ACROSS_BLOCKS, 1);
    case O_REMDM_ETA: return cli_setting_parse(&g->sampler, opt, v, SMDIFF_SAMPLER_REMDM_ETA);
    case O_REMDM_T_ON: return cli_setting_parse(&g->sampler, opt, v, SMDIFF_SAMPLER_REMDM_T_ON);
    case O_REMDM_T_OFF: return cli_setting_parse(&g->sampler, opt, v, SMDIFF_SAMPLER_REMDM_T_OFF);
    case O_REMDM_ALPHA_ON: return cli_setting_parse(&g->sampler, opt, v, SMDIFF_SAMPLER_REMDM_ALPHA_ON);
    case O_NO_EOS: return cli_setting_int(&g->sampler, opt, SMDIFF_SAMPLER_STOP_AT_EOS, 0);
    case 'n': return cli_setting_parse(&g->sampler, opt, v, SMDIFF_SAMPLER_GEN_LENGTH);
    case O_STEPS: return cli_setting_parse(&g->sampler, opt, v, SMDIFF_SAMPLER_STEPS);
    case O_BLOCK: return cli_setting_parse(&g->sampler, opt, v, SMDIFF_SAMPLER_BLOCK_LENGTH);
    case O_TEMP: return cli_setting_parse(&g->sampler, opt, v, SMDIFF_SAMPLER_TEMPERATURE);
    case O_TOP_P: return cli_setting_parse(&g->sampler, opt, v, SMDIFF_SAMPLER_TOP_P);
    case O_TOP_K: return cli_setting_parse(&g->sampler, opt, v, SMDIFF_SAMPLER_TOP_K);
    case 's': return cli_setting_parse(&g->sampler, opt, v, SMDIFF_SAMPLER_SEED);
    case O_ALG_TEMP: return cli_setting_parse(&g->sampler, opt, v, SMDIFF_SAMPLER_ALG_TEMP);
    case O_THRESHOLD: return cli_setting_parse(&g->sampler, opt, v, SMDIFF_SAMPLER_THRESHOLD);
    case O_FACTOR: return cli_setting_parse(&g->sampler, opt, v, SMDIFF_SAMPLER_FACTOR);
    case O_CACHE: return cli_cache_setting(&g->sampler, opt, v);
    case O_CACHE_REFRESH: return cli_setting_parse(&g->sampler, opt, v, SMDIFF_SAMPLER_CACHE_REFRESH);
    case 't': return cli_setting_parse(&g->sampler, opt, v, SMDIFF_SAMPLER_THREADS);
    case 'c': return cli_setting_parse(&g->model_opts, opt, v, SMDIFF_MODEL_CONTEXT);
    case O_SOFTMASK: return parse_softmask_mode(opt, v, &g->softmask);
    case O_SM_K: return cli_setting_parse(&g->softmask, opt, v, SMDIFF_SM_TOPK);
    case O_SM_SCALE: return cli_setting_parse(&g->softmask, opt, v, SMDIFF_SM_SCALE);
    case O_SM_STEEP: return cli_setting_parse(&g->softmask, opt, v, SMDIFF_SM_STEEPNESS);
    case O_SM_CENTRE: return cli_setting_parse(&g->softmask, opt, v, SMDIFF_SM_CENTRE);
    case O_SM_LAMBDA: return cli_setting_parse(&g->softmask, opt, v, SMDIFF_SM_CONSTANT_LAMBDA);
    case CLI_ARG: return cli_usage_error("unexpected argument '%s' (the prompt goes after -p)", v);
    default: return CLI_EXIT_USAGE;
    }
}

/* -1 after --help, else 0 or an exit status. */
static int parse(int argc, char **argv, gen_args *g) {
    int r = cli_parse(&g->a, &cli_spec_generate, argc, argv, parse_option, g);
    if (r) return r;
    if ((g->prompt != NULL) + (g->file != NULL) + g->have_ids != 1)
        return cli_usage_error("give the prompt once: -p TEXT, -f FILE or --ids \"ID ...\"");
    if (g->chat && g->have_ids) return cli_usage_error("--chat wraps a text prompt, not --ids");
    if (!g->model && !(g->model = cli_default_model())) {
        fprintf(stderr, "%s: no -m given and the bundled model " CLI_DEFAULT_MODEL
                        " was not found (models/, next to the executable, or $SMDIFF_MODEL)\n",
                cli_prog());
        return CLI_EXIT_USAGE;
    }
    return 0;
}

/* The whole of a prompt file, one final newline dropped (as llama.cpp's
 * -f); NULL after saying why. */
static char *read_prompt_file(const char *path) {
    FILE *f = cli_fopen(path, "rb", "prompt file");
    if (!f) return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    for (size_t got = 1; buf && got;) {
        if (n + 1 == cap) {
            char *nb = realloc(buf, cap *= 2);
            if (!nb) free(buf);
            buf = nb;
            if (!buf) break;
        }
        n += got = fread(buf + n, 1, cap - 1 - n, f);
    }
    int bad = ferror(f);
    fclose(f);
    if (!buf || bad) {
        fprintf(stderr, "%s: %s: %s\n", cli_prog(), path, buf ? "read failed" : "out of memory");
        free(buf);
        return NULL;
    }
    if (n && buf[n - 1] == '\n') n--;
    buf[n] = '\0';
    return buf;
}

/* ------------------------------------------------------------- progress */

typedef struct progress {
    const smdiff_model *m;
    int visual, tty, color;
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

static void draw_canvas(const progress *p, const int32_t *canvas, const uint8_t *committed, const float *lambda,
                        size_t n) {
    int64_t mask = -1;
    smdiff_model_property(p->m, SMDIFF_PROP_MASK_ID, &mask);
    for (size_t i = p->n_prompt; i < n; i++) {
        if (canvas[i] == mask && p->color) {
            /* grey ramp 236..255: brighter = larger lambda */
            int shade = 236 + (int)lrintf(fminf(fmaxf(lambda[i], 0.0f), 1.0f) * 19.0f);
            fprintf(stderr, "\033[48;5;%dm \033[0m", shade);
        } else if (canvas[i] == mask) {
            fputc('_', stderr);
        } else if (committed[i]) {
            fputs(p->color ? "\033[1;32m" : "[", stderr);
            print_piece(p->m, canvas[i]);
            fputs(p->color ? "\033[0m" : "]", stderr);
        } else {
            print_piece(p->m, canvas[i]);
        }
    }
    fputs("\n", stderr);
}

static int32_t on_step(size_t step, size_t n_steps, const int32_t *canvas, const uint8_t *committed,
                       const float *lambda, size_t n, void *ud) {
    progress *p = ud;
    double el = now_s() - p->t0, per = el / (double)(step + 1), left = per * ((double)n_steps - (double)step - 1);
    if (p->visual) {
        if (p->tty) fputs("\033[H\033[2J", stderr); /* redraw in place */
        fprintf(stderr, "step %zu/%zu  %.2f s/step  %.0f s left\n%s", step + 1, n_steps, per, left,
                p->tty ? "\n" : "");
        draw_canvas(p, canvas, committed, lambda, n);
    } else if (p->tty) {
        int width = 30, done = (int)((double)(step + 1) / (double)n_steps * width);
        fprintf(stderr, "\r[%.*s%*s] step %zu/%zu  %.2f s/step  %.0f s left ", done,
                "##############################", width - done, "", step + 1, n_steps, per, left);
        if (step + 1 == n_steps) fputs("\n", stderr);
    } else {
        fprintf(stderr, "step %zu/%zu  %.2f s/step  %.0f s left\n", step + 1, n_steps, per, left);
    }
    fflush(stderr);
    return 0;
}

/* ------------------------------------------------------------------ run */

/* The canvas: the prompt's ids, given or the text tokenized (in the chat
 * template), its {{fill:N}} markers and --suffix making it a canvas to
 * fill (canvas.c). Replaces g->ids; *infill as cli_canvas says. */
static int build_canvas(gen_args *g, const smdiff_model *m, int64_t gen_length, int *infill) {
    char *text = g->file ? read_prompt_file(g->file) : NULL, *rendered = NULL;
    if (g->file && !text) return CLI_EXIT_FAIL;
    const char *src = g->have_ids ? NULL : g->file ? text : g->prompt;
    int32_t rc = SMDIFF_OK;
    if (g->chat && (g->suffix || strstr(src, "{{fill:"))) {
        free(text);
        return cli_usage_error("--chat cannot be combined with --suffix or {{fill:N}} markers");
    }
    if (g->chat) {
        const char *role = "user";
        size_t need = 0;
        rc = smdiff_chat_template(m, 1, &role, &src, 1, NULL, 0, &need);
        if (rc == SMDIFF_E_BUFFER) rc = (rendered = malloc(need)) ? SMDIFF_OK : SMDIFF_E_NOMEM;
        if (!rc) rc = smdiff_chat_template(m, 1, &role, &src, 1, rendered, need, &need);
        src = rendered;
    }
    int32_t *canvas = NULL;
    size_t n = 0;
    int ret = rc ? cli_fail("--chat", rc, smdiff_last_error())
                 : cli_canvas(m, g->ids, g->n_ids, src, g->suffix, gen_length,
                              cli_setting_given(&g->sampler, SMDIFF_SAMPLER_GEN_LENGTH), &canvas, &n, infill);
    free(rendered);
    free(text);
    if (ret) return ret;
    free(g->ids);
    g->ids = canvas, g->n_ids = n;
    return 0;
}

/* ids[0..n) as text on stdout, spans where filled[i] is 1 in colour. The
 * given spans are text the user wrote, whole characters; a filled span may
 * end inside a UTF-8 character (a byte token), whose bytes then go after
 * the colour's end, never between an escape and its character. 0, or an
 * exit status. */
static int print_spans(const smdiff_model *m, const int32_t *ids, size_t n, const uint8_t *filled) {
    for (size_t i = 0, j; i < n; i = j) {
        for (j = i + 1; j < n && filled[j] == filled[i];) j++;
        size_t nb = 0, whole = 0;
        char *text = NULL;
        int32_t rc = smdiff_model_detokenize(m, ids + i, j - i, 0, NULL, 0, &nb);
        if (rc == SMDIFF_E_BUFFER || rc == SMDIFF_OK) rc = (text = malloc(nb + 1)) ? SMDIFF_OK : SMDIFF_E_NOMEM;
        if (!rc) rc = smdiff_model_detokenize(m, ids + i, j - i, 0, text, nb, &nb);
        if (!rc) rc = smdiff_utf8_complete(text, nb, &whole);
        if (rc) {
            free(text);
            return cli_fail("detokenize", rc, smdiff_last_error());
        }
        if (filled[i]) fputs("\033[1;32m", stdout);
        fwrite(text, 1, whole, stdout);
        if (filled[i]) fputs("\033[0m", stdout);
        fwrite(text + whole, 1, nb - whole, stdout);
        free(text);
    }
    fputc('\n', stdout);
    return cli_check_stdout();
}

/* The generated tokens as text on stdout (their ids when the file has no
 * tokenizer); with filled (an infill on a colour terminal), the filled
 * spans coloured. 0, or CLI_EXIT_FAIL when stdout did not take them. */
static int print_output(const smdiff_model *m, const int32_t *out, size_t n_out, const uint8_t *filled) {
    size_t nb = 0;
    char *text = NULL;
    int32_t rc = smdiff_model_detokenize(m, out, n_out, 0, NULL, 0, &nb);
    if ((rc == SMDIFF_OK || rc == SMDIFF_E_BUFFER) && filled) return print_spans(m, out, n_out, filled);
    if ((rc == SMDIFF_OK || rc == SMDIFF_E_BUFFER) && (text = malloc(nb + 1)) &&
        smdiff_model_detokenize(m, out, n_out, 0, text, nb, &nb) == SMDIFF_OK) {
        fwrite(text, 1, nb, stdout);
        fputc('\n', stdout);
    } else {
        for (size_t i = 0; i < n_out; i++) printf("%s%d", i ? " " : "", (int)out[i]);
        printf("\n");
    }
    free(text);
    return cli_check_stdout();
}

static int run(gen_args *g) {
    smdiff_model *m = NULL;
    smdiff_sampler *s = NULL;
    smdiff_softmask *sm = NULL;
    int32_t *out = NULL;
    uint8_t *filled = NULL;
    int ret = CLI_EXIT_FAIL;
    int32_t rc = smdiff_sampler_create(&s);
    if (rc) return cli_fail("create sampler", rc, smdiff_last_error());
    /* options first: a refused value is a usage error, found before loading */
    if ((ret = cli_settings_apply(&g->sampler, s))) goto done;
    if (g->strategy && (rc = smdiff_sampler_set_strategy(s, g->strategy))) {
        ret = cli_refused("--strategy", rc, smdiff_sampler_last_error(s));
        goto done;
    }
    if ((rc = smdiff_model_create(&m))) {
        ret = cli_fail("create model", rc, smdiff_last_error());
        goto done;
    }
    if ((ret = cli_settings_apply(&g->model_opts, m))) goto done;
    if ((rc = smdiff_model_load_file(m, g->model))) {
        ret = cli_fail(g->model, rc, smdiff_last_error());
        goto done;
    }
    /* Soft-masking: the sampler uses the model's own schedule unless one is
     * set; --softmask/--sm-* change that schedule. */
    if (g->softmask.n) {
        if ((rc = smdiff_softmask_create_from_model(m, &sm))) {
            ret = cli_fail("soft-mask parameters", rc, smdiff_last_error());
            goto done;
        }
        if ((ret = cli_settings_apply(&g->softmask, sm))) goto done;
        smdiff_sampler_set_softmask(s, sm);
    }
    int64_t G = 0, mask = -1;
    int infill = 0;
    smdiff_sampler_get_int(s, SMDIFF_SAMPLER_GEN_LENGTH, &G);
    smdiff_model_property(m, SMDIFF_PROP_MASK_ID, &mask);
    if ((ret = build_canvas(g, m, G, &infill))) goto done;
    ret = CLI_EXIT_FAIL;
    int show = !g->quiet && (g->visual ? g->a.progress != 0 : cli_progress(&g->a));
    progress pr = {m, g->visual, isatty(STDERR_FILENO), cli_color(&g->a, stderr), infill ? 0 : g->n_ids, now_s()};
    if (show) smdiff_sampler_set_step_callback(s, on_step, &pr);
    size_t n_out = 0, n_filled = 0;
    if (infill) {
        /* the whole canvas, filled in place, is the output; on a colour
         * terminal the spans that were masks are coloured */
        if (cli_color(&g->a, stdout) && !(filled = malloc(g->n_ids))) {
            ret = cli_fail("generate", SMDIFF_E_NOMEM, "out of memory");
            goto done;
        }
        for (size_t i = 0; i < g->n_ids; i++) {
            n_filled += g->ids[i] == mask;
            if (filled) filled[i] = g->ids[i] == mask;
        }
        rc = smdiff_generate_canvas(s, m, g->ids, g->n_ids);
        out = g->ids, g->ids = NULL;
        n_out = g->n_ids;
    } else if ((out = malloc(sizeof *out * (size_t)G))) {
        rc = smdiff_generate_tokens(s, m, g->ids, g->n_ids, out, (size_t)G, &n_out);
        n_filled = n_out;
    } else {
        ret = cli_fail("generate", SMDIFF_E_NOMEM, "out of memory");
        goto done;
    }
    if (rc) {
        if (show && pr.tty) fputs("\n", stderr);
        ret = cli_fail("generate", rc, smdiff_sampler_last_error(s));
        goto done;
    }
    ret = print_output(m, out, n_out, filled);
    if (!ret && !g->quiet) fprintf(stderr, "%zu tokens in %.2f s\n", n_filled, now_s() - pr.t0);
done:
    free(filled);
    free(out);
    smdiff_softmask_free(sm);
    smdiff_sampler_free(s);
    smdiff_model_free(m);
    return ret;
}

int cmd_generate(int argc, char **argv) {
    gen_args g;
    memset(&g, 0, sizeof g);
    int r = parse(argc, argv, &g);
    if (!r) r = run(&g);
    free(g.ids);
    return r < 0 ? CLI_EXIT_OK : r;
}
