/* eval_infill.c -- `smdiff eval infill`: fill the middle of code infilling
 * tasks (examples/code/make_infill_tasks.py writes them) at several step
 * budgets, seeds and one decoding configuration, through the public
 * infilling API (smdiff_generate_canvas); examples/code/score_infill.py
 * scores the output.
 *
 * Data flow, per task (a JSON line with id, prefix, middle, suffix):
 * prefix, middle and suffix are tokenized separately (no special tokens);
 * the canvas is prefix + one mask per middle token + suffix, trimmed at the
 * outer ends to the model's context (the middle is always whole); for each
 * seed and fraction f, the span is filled in ONE block with
 * max(1, round(f * span)) steps; the filled span, detokenized, goes to one
 * output JSON line. The model is loaded once. */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <utf8proc.h>

#include "cli.h"

enum { MAX_LIST = 16 };

typedef struct infill_args {
    const char *model, *tasks, *out, *strategy, *softmask, *label, *cache;
    double fracs[MAX_LIST];
    int64_t seeds[MAX_LIST], threads, limit;
    size_t n_fracs, n_seeds;
    cli_settings sampler; /* --temp, ReMDM's, the caches': the sampler's options as given */
    int progress;
} infill_args;

/* A task, tokenized. */
typedef struct task {
    char *id;
    int32_t *prefix, *middle, *suffix;
    size_t np, nm, ns;
} task;

static void usage_infill(FILE *f) {
    fprintf(f,
            "usage: smdiff eval infill -m MODEL --tasks TASKS.jsonl -o OUT.jsonl [options]\n"
            "\n"
            "Fills each task's middle (a JSON line with id, prefix, middle, suffix:\n"
            "examples/code/make_infill_tasks.py) in one block of as many masks as the middle\n"
            "has tokens, with max(1, round(F * span)) steps for each fraction F and each seed;\n"
            "writes one JSON line per (task, seed, F) with the filled text\n"
            "(examples/code/score_infill.py scores them). Canvases longer than the context\n"
            "lose prefix and suffix tokens at their outer ends (recorded).\n"
            "  -m, --model FILE   the model\n"
            "  --tasks FILE       the tasks, one JSON line each\n"
            "  -o, --out FILE     the output, one JSON line per fill\n"
            "  --steps-frac F,..  fractions of the span (default 0.125,0.25,0.5,1)\n"
            "  --seeds S,..       sampler seeds (default 1,2,3)\n"
            "  --softmask on|off  the model's soft-mask (on, default) or binary masking\n"
            "  --strategy NAME    decoder strategy (default: the sampler's)\n"
            "  --temp T           sampling temperature (default: the sampler's, 0 = greedy)\n"
            "  --remdm-eta X      ReMDM's eta (strategies remdm_cap, remdm_loop)\n"
            "  --remdm-t-on X     remdm_loop's loop start\n"
            "  --remdm-t-off X    remdm_loop's loop end\n"
            "  --remdm-alpha-on X remdm_loop's alpha\n"
            "  --threshold C      confidence threshold of the threshold strategy\n"
            "  --factor F         f of the factor strategy\n"
            "  --cache MODE       off, prefix or dual: block caches (default off)\n"
            "  --cache-refresh N  with a cache, also recompute everything every N steps\n"
            "  --label NAME       configuration name in the output (default: from the options:\n"
            "                     sm-on|off[-STRATEGY][-cache-MODE])\n"
            "  --limit N          the first N tasks only\n"
            "  -t, --threads T    threads (default 0: all CPUs)\n"
            "  --progress         show progress on stderr even when it is not a terminal\n"
            "  --no-progress      never show progress\n"
            "  -h, --help         this text\n");
}

enum {
    O_TASKS = CLI_OPT_FIRST, O_STEPS_FRAC, O_SEEDS, O_SOFTMASK, O_STRATEGY, O_LABEL, O_TEMP, O_REMDM_ETA,
    O_REMDM_T_ON, O_REMDM_T_OFF, O_REMDM_ALPHA_ON, O_LIMIT, O_THRESHOLD, O_FACTOR, O_CACHE, O_CACHE_REFRESH,
};
static const struct option longopts[] = {
    {"model", required_argument, NULL, 'm'},          {"tasks", required_argument, NULL, O_TASKS},
    {"out", required_argument, NULL, 'o'},            {"steps-frac", required_argument, NULL, O_STEPS_FRAC},
    {"seeds", required_argument, NULL, O_SEEDS},      {"softmask", required_argument, NULL, O_SOFTMASK},
    {"strategy", required_argument, NULL, O_STRATEGY}, {"label", required_argument, NULL, O_LABEL},
    {"temp", required_argument, NULL, O_TEMP},        {"remdm-eta", required_argument, NULL, O_REMDM_ETA},
    {"remdm-t-on", required_argument, NULL, O_REMDM_T_ON}, {"remdm-t-off", required_argument, NULL, O_REMDM_T_OFF},
    {"remdm-alpha-on", required_argument, NULL, O_REMDM_ALPHA_ON}, {"limit", required_argument, NULL, O_LIMIT},
    {"threshold", required_argument, NULL, O_THRESHOLD}, {"factor", required_argument, NULL, O_FACTOR},
    {"cache", required_argument, NULL, O_CACHE},      {"cache-refresh", required_argument, NULL, O_CACHE_REFRESH},
    {"threads", required_argument, NULL, 't'},        CLI_PROGRESS_OPTIONS,
    CLI_HELP_OPTION,                                  {0, 0, 0, 0},
};
const cli_spec cli_spec_eval_infill = {"eval infill", "m:o:t:h", longopts, usage_infill};

static int infill_option(void *ud, const cli_args *ca, int c, const char *v) {
    infill_args *a = ud;
    const char *opt = ca->opt;
    int r = 0;
    switch (c) {
    case 'm': a->model = v; break;
    case O_TASKS: a->tasks = v; break;
    case 'o': a->out = v; break;
    case O_STRATEGY: a->strategy = v; break;
    case O_LABEL: a->label = v; break;
    case O_SOFTMASK:
        if (strcmp(v, "on") && strcmp(v, "off")) return cli_usage_error("%s wants on or off, not '%s'", opt, v);
        a->softmask = v;
        break;
    case O_STEPS_FRAC:
        r = cli_real_list(opt, v, 0, 1, a->fracs, MAX_LIST, &a->n_fracs);
        for (size_t i = 0; !r && i < a->n_fracs; i++)
            if (!(a->fracs[i] > 0)) r = cli_usage_error("%s: a fraction of 0 runs no step: (0, 1]", opt);
        return r;
    case O_SEEDS: return cli_count_list(opt, v, 0, INT64_MAX, a->seeds, MAX_LIST, &a->n_seeds);
    case O_LIMIT: return cli_count(opt, v, 0, INT64_MAX, &a->limit);
    case 't': return cli_key_int(opt, v, SMDIFF_SAMPLER_THREADS, &a->threads);
    case O_TEMP: return cli_setting_parse(&a->sampler, opt, v, SMDIFF_SAMPLER_TEMPERATURE);
    case O_REMDM_ETA: return cli_setting_parse(&a->sampler, opt, v, SMDIFF_SAMPLER_REMDM_ETA);
    case O_REMDM_T_ON: return cli_setting_parse(&a->sampler, opt, v, SMDIFF_SAMPLER_REMDM_T_ON);
    case O_REMDM_T_OFF: return cli_setting_parse(&a->sampler, opt, v, SMDIFF_SAMPLER_REMDM_T_OFF);
    case O_REMDM_ALPHA_ON: return cli_setting_parse(&a->sampler, opt, v, SMDIFF_SAMPLER_REMDM_ALPHA_ON);
    case O_THRESHOLD: return cli_setting_parse(&a->sampler, opt, v, SMDIFF_SAMPLER_THRESHOLD);
    case O_FACTOR: return cli_setting_parse(&a->sampler, opt, v, SMDIFF_SAMPLER_FACTOR);
    case O_CACHE: a->cache = v; return cli_cache_setting(&a->sampler, opt, v);
    case O_CACHE_REFRESH: return cli_setting_parse(&a->sampler, opt, v, SMDIFF_SAMPLER_CACHE_REFRESH);
    case CLI_ARG: return cli_usage_error("unexpected argument '%s'", v);
    }
    return 0;
}

/* -1 after --help, else 0 or an exit status. */
static int parse_infill(int argc, char **argv, infill_args *a) {
    memset(a, 0, sizeof *a);
    a->softmask = "on";
    a->fracs[0] = 0.125, a->fracs[1] = 0.25, a->fracs[2] = 0.5, a->fracs[3] = 1, a->n_fracs = 4;
    a->seeds[0] = 1, a->seeds[1] = 2, a->seeds[2] = 3, a->n_seeds = 3;
    cli_args ca;
    int r = cli_parse(&ca, &cli_spec_eval_infill, argc, argv, infill_option, a);
    if (r) return r;
    a->progress = cli_progress(&ca);
    if (!a->model || !a->tasks || !a->out) return cli_usage_error("-m, --tasks and -o are required");
    return 0;
}

/* Tokenize text (no special tokens) into a new array. */
static int32_t tokenize(const smdiff_model *m, const char *text, int32_t **ids, size_t *n) {
    size_t need = 0, len = strlen(text);
    int32_t rc = smdiff_model_tokenize(m, text, len, 0, NULL, 0, &need);
    if (rc != SMDIFF_OK && rc != SMDIFF_E_BUFFER) return rc;
    *ids = malloc(sizeof(int32_t) * (need ? need : 1));
    if (!*ids) return SMDIFF_E_NOMEM;
    rc = smdiff_model_tokenize(m, text, len, 0, *ids, need, n);
    return rc;
}

static void free_tasks(task *t, size_t n) {
    for (size_t i = 0; t && i < n; i++) free(t[i].id), free(t[i].prefix), free(t[i].middle), free(t[i].suffix);
    free(t);
}

/* Read and tokenize the task file; NULL after printing why. */
static task *read_tasks(const smdiff_model *m, const char *path, long long limit, size_t *n_out) {
    FILE *f = cli_fopen(path, "r", "task file");
    if (!f) return NULL;
    task *t = NULL;
    size_t n = 0, cap = 0, lineno = 0, len = 0;
    char *line = NULL;
    int bad = 0;
    while (!bad && (limit == 0 || (long long)n < limit) && getline(&line, &len, f) > 0) {
        lineno++;
        if (line[strspn(line, " \t\r\n")] == 0) continue;
        json_error_t je;
        json_t *j = json_loads(line, 0, &je);
        const char *id = NULL, *pre = NULL, *mid = NULL, *suf = NULL;
        if (!j || json_unpack(j, "{s:s, s:s, s:s, s:s}", "id", &id, "prefix", &pre, "middle", &mid, "suffix", &suf)) {
            fprintf(stderr, "%s: %s line %zu: %s\n", cli_prog(), path, lineno,
                    j ? "want an object with string fields id, prefix, middle, suffix" : je.text);
            bad = 1;
        } else if (n == cap) {
            task *nt = realloc(t, sizeof *t * (cap = cap ? cap * 2 : 64));
            if (!nt) bad = 1;
            else t = nt;
        }
        if (!bad) {
            task *k = &t[n];
            memset(k, 0, sizeof *k);
            n++;
            k->id = strdup(id);
            int32_t rc = k->id ? SMDIFF_OK : SMDIFF_E_NOMEM;
            if (!rc) rc = tokenize(m, pre, &k->prefix, &k->np);
            if (!rc) rc = tokenize(m, mid, &k->middle, &k->nm);
            if (!rc) rc = tokenize(m, suf, &k->suffix, &k->ns);
            if (!rc && k->nm == 0) {
                fprintf(stderr, "%s: %s line %zu: task %s has an empty middle\n", cli_prog(), path, lineno, id);
                bad = 1;
            } else if (rc) {
                cli_fail(path, rc, smdiff_last_error());
                bad = 1;
            }
        }
        json_decref(j);
    }
    if (!bad && ferror(f)) fprintf(stderr, "%s: %s: read error\n", cli_prog(), path), bad = 1;
    free(line);
    fclose(f);
    if (!bad && n == 0) fprintf(stderr, "%s: %s has no tasks\n", cli_prog(), path), bad = 1;
    if (bad) {
        free_tasks(t, n);
        return NULL;
    }
    *n_out = n;
    return t;
}

/* Valid UTF-8 of bytes (a byte-level tokenizer can split a character
 * between tokens): invalid sequences become U+FFFD. malloc'd. */
static char *valid_utf8(const char *s, size_t n) {
    char *out = malloc(3 * n + 1), *o = out;
    if (!out) return NULL;
    for (size_t i = 0; i < n;) {
        utf8proc_int32_t c;
        utf8proc_ssize_t k = utf8proc_iterate((const utf8proc_uint8_t *)s + i, (utf8proc_ssize_t)(n - i), &c);
        if (k < 1) {
            memcpy(o, "\xEF\xBF\xBD", 3), o += 3, i++;
        } else {
            memcpy(o, s + i, (size_t)k), o += k, i += (size_t)k;
        }
    }
    *o = 0;
    return out;
}

char *cli_detokenize_utf8(const smdiff_model *m, const int32_t *ids, size_t n) {
    size_t need = 0;
    int32_t rc = smdiff_model_detokenize(m, ids, n, 0, NULL, 0, &need);
    if (rc != SMDIFF_OK && rc != SMDIFF_E_BUFFER) return NULL;
    char *raw = malloc(need + 1), *text = NULL;
    if (raw && smdiff_model_detokenize(m, ids, n, 0, raw, need + 1, &need) == SMDIFF_OK) text = valid_utf8(raw, need);
    free(raw);
    return text;
}

/* The sampler of the configuration (everything but seed, steps and the
 * options of a.sampler, applied after). */
static int32_t make_sampler(const infill_args *a, const smdiff_model *m, smdiff_sampler **out, const char **what) {
    smdiff_sampler *s = NULL;
    smdiff_softmask *sm = NULL;
    int32_t rc = smdiff_sampler_create(&s);
    *what = "sampler";
    if (!rc) rc = smdiff_sampler_set_int(s, SMDIFF_SAMPLER_THREADS, a->threads);
    if (!rc) rc = smdiff_sampler_set_int(s, SMDIFF_SAMPLER_STOP_AT_EOS, 0);
    if (!rc && a->strategy) *what = "--strategy", rc = smdiff_sampler_set_strategy(s, a->strategy);
    /* the model's own soft-mask, switched off for --softmask off */
    if (!rc) *what = "soft-mask", rc = smdiff_softmask_create_from_model(m, &sm);
    if (!rc && !strcmp(a->softmask, "off")) rc = smdiff_softmask_set_int(sm, SMDIFF_SM_MODE, SMDIFF_SM_OFF);
    if (!rc) rc = smdiff_sampler_set_softmask(s, sm);
    smdiff_softmask_free(sm);
    if (rc) {
        smdiff_sampler_free(s);
        return rc;
    }
    *out = s;
    return SMDIFF_OK;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static size_t steps_of(double frac, size_t span) {
    long long s = llround(frac * (double)span);
    return s < 1 ? 1 : (size_t)s;
}

/* The canvas of a task in *canvas (capacity ctx): the middle whole, the
 * prefix's tail and the suffix's head as the context allows (half the room
 * each, the rest to the other side); *cut_p / *cut_s get the tokens left
 * out. 0 when even the middle does not fit. */
static size_t build_canvas(const task *k, int32_t mask, size_t ctx, int32_t *canvas, size_t *cut_p, size_t *cut_s) {
    if (k->nm >= ctx) return 0;
    size_t room = ctx - k->nm, kp = k->np, ks = k->ns;
    if (kp + ks > room) {
        size_t half = room / 2;
        kp = k->np < half ? k->np : (k->ns < room - half ? room - k->ns : half);
        ks = room - kp < k->ns ? room - kp : k->ns;
    }
    *cut_p = k->np - kp, *cut_s = k->ns - ks;
    size_t n = 0;
    memcpy(canvas, k->prefix + (k->np - kp), sizeof(int32_t) * kp), n += kp;
    for (size_t i = 0; i < k->nm; i++) canvas[n++] = mask;
    memcpy(canvas + n, k->suffix, sizeof(int32_t) * ks), n += ks;
    return n;
}

/* One output line; 0 or -1 on a write error. */
static int write_record(FILE *o, const infill_args *a, const char *label, const task *k, long long seed, double frac,
                        size_t steps, size_t n_canvas, size_t cut_p, size_t cut_s, const char *filled,
                        const char *error) {
    json_t *j = json_pack("{s:s, s:s, s:I, s:f, s:I, s:I, s:I, s:I, s:I, s:s, s:s}", "id", k->id, "label", label,
                          "seed", (json_int_t)seed, "steps_frac", frac, "steps", (json_int_t)steps, "span_tokens",
                          (json_int_t)k->nm, "canvas_tokens", (json_int_t)n_canvas, "cut_prefix_tokens",
                          (json_int_t)cut_p, "cut_suffix_tokens", (json_int_t)cut_s, "softmask", a->softmask,
                          "strategy", a->strategy ? a->strategy : "(default)");
    if (!j) return -1;
    if (filled) json_object_set_new(j, "filled", json_string(filled));
    if (error) json_object_set_new(j, "error", json_string(error));
    int rc = json_dumpf(j, o, JSON_COMPACT) || fputc('\n', o) == EOF || fflush(o) ? -1 : 0;
    json_decref(j);
    return rc;
}

int eval_infill(int argc, char **argv) {
    infill_args a;
    int pr = parse_infill(argc, argv, &a);
    if (pr) return pr < 0 ? CLI_EXIT_OK : pr;
    smdiff_model *m = NULL;
    smdiff_sampler *s = NULL;
    task *tasks = NULL;
    size_t n_tasks = 0;
    int32_t *canvas = NULL;
    FILE *o = NULL;
    int ret = 1;
    const char *what = a.model;
    int64_t ctx = 0, mask = 0;
    int32_t rc = smdiff_model_create(&m);
    if (!rc) smdiff_model_set_int(m, SMDIFF_MODEL_THREADS, a.threads);
    if (!rc) rc = smdiff_model_load_file(m, a.model);
    if (!rc) rc = smdiff_model_property(m, SMDIFF_PROP_CONTEXT, &ctx);
    if (!rc) rc = smdiff_model_property(m, SMDIFF_PROP_MASK_ID, &mask);
    if (rc) {
        ret = cli_fail(what, rc, smdiff_last_error());
        goto done;
    }
    if ((rc = make_sampler(&a, m, &s, &what))) {
        ret = cli_fail(what, rc, smdiff_last_error());
        goto done;
    }
    if ((ret = cli_settings_apply(&a.sampler, s))) goto done; /* a refused --temp, --remdm-*: 2 */
    ret = CLI_EXIT_FAIL;
    if (!(tasks = read_tasks(m, a.tasks, a.limit, &n_tasks))) goto done;
    canvas = malloc(sizeof(int32_t) * (size_t)ctx);
    if (!canvas) {
        fprintf(stderr, "%s: out of memory\n", cli_prog());
        goto done;
    }
    if (!(o = cli_fopen(a.out, "w", "output"))) goto done;
    char label[256];
    if (a.label) snprintf(label, sizeof label, "%s", a.label);
    else snprintf(label, sizeof label, "sm-%s%s%s%s%s", a.softmask, a.strategy ? "-" : "", a.strategy ? a.strategy : "",
                  a.cache ? "-cache-" : "", a.cache ? a.cache : "");
    double total = 0, work = 0, t0 = now_s();
    for (size_t i = 0; i < n_tasks; i++)
        for (size_t f = 0; f < a.n_fracs; f++) total += (double)(steps_of(a.fracs[f], tasks[i].nm) * (size_t)a.n_seeds);
    int tty = isatty(fileno(stderr)), show = a.progress;
    size_t n_done = 0, n_skipped = 0;
    for (size_t i = 0; i < n_tasks; i++) {
        const task *k = &tasks[i];
        size_t cut_p = 0, cut_s = 0, n = build_canvas(k, (int32_t)mask, (size_t)ctx, canvas, &cut_p, &cut_s);
        for (size_t si = 0; si < a.n_seeds; si++)
            for (size_t f = 0; f < a.n_fracs; f++) {
                size_t steps = steps_of(a.fracs[f], k->nm);
                char *filled = NULL;
                const char *err = NULL;
                if (!n) {
                    err = "the middle does not fit the context";
                } else {
                    build_canvas(k, (int32_t)mask, (size_t)ctx, canvas, &cut_p, &cut_s);
                    rc = smdiff_sampler_set_int(s, SMDIFF_SAMPLER_SEED, a.seeds[si]);
                    if (!rc) rc = smdiff_sampler_set_int(s, SMDIFF_SAMPLER_STEPS, (int64_t)steps);
                    if (!rc) rc = smdiff_sampler_set_int(s, SMDIFF_SAMPLER_BLOCK_LENGTH, (int64_t)k->nm);
                    if (!rc) rc = smdiff_generate_canvas(s, m, canvas, n);
                    if (rc) err = smdiff_sampler_last_error(s);
                    else if (!(filled = cli_detokenize_utf8(m, canvas + (k->np - cut_p), k->nm))) err = "detokenize failed";
                }
                n_skipped += err != NULL;
                if (write_record(o, &a, label, k, a.seeds[si], a.fracs[f], steps, n, cut_p, cut_s, filled, err)) {
                    fprintf(stderr, "\n%s: %s: a write failed\n", cli_prog(), a.out);
                    free(filled);
                    goto done;
                }
                free(filled);
                work += (double)steps, n_done++;
                if (show)
                    fprintf(stderr, "%sinfill %s: task %zu/%zu, seed %lld, %zu steps  %.0fs left%s", tty ? "\r" : "",
                            label, i + 1, n_tasks, (long long)a.seeds[si], steps, (now_s() - t0) / work * (total - work),
                            tty ? "   " : "\n");
            }
    }
    if (show && tty) fprintf(stderr, "\n");
    fprintf(stderr, "%s: %zu tasks x %zu seeds x %zu budgets = %zu fills (%zu failed) in %.0fs -> %s\n", cli_prog(),
            n_tasks, a.n_seeds, a.n_fracs, n_done, n_skipped, now_s() - t0, a.out);
    ret = 0;
done:
    if (o && cli_fclose(o, a.out, "output") && !ret) ret = CLI_EXIT_FAIL;
    free(canvas);
    free_tasks(tasks, n_tasks);
    smdiff_sampler_free(s);
    smdiff_model_free(m);
    return ret;
}
