/* cmd_eval.c -- `smdiff eval`: the measurements of docs/RESULTS.md.
 *
 *   smdiff eval elbo    validation bound (perplexity) on fixed, seeded noise
 *   smdiff eval gonogo  does soft-masking help a model at first order: its
 *                       two-pass bound with omega open against its
 *                       single-pass bound, paired over windows
 *   smdiff eval samples generative perplexity under an AR reference model,
 *                       unigram entropy and MAUVE of samples, per step
 *                       budget, mean +- sd over seeds
 *   smdiff eval infill  code infilling at several step budgets (eval_infill.c)
 *   smdiff eval gate    what soft-masking feeds back: entropy, top-k
 *                       accuracy and lambda over masked held-out positions
 *
 * Data flow of `samples`, per seed: n held-out windows of len+1 tokens
 * (the human text) -> their first token is each sample's one-token prompt
 * -> smdiff_generate_tokens fills len tokens at each step budget -> the
 * reference model scores samples and human text (smdiff_eval_ar) -> mean
 * NLL gives the generative perplexity, the final hidden states MAUVE
 * against the human windows (smdiff_eval_mauve). */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void usage(FILE *f) {
    fprintf(f,
            "usage: smdiff eval elbo|gonogo|samples|infill|gate [options]\n"
            "\n"
            "  elbo      validation bound (perplexity) of models on fixed, seeded noise\n"
            "  gonogo    does soft-masking help a model at first order (paired bounds)\n"
            "  samples   generative perplexity, unigram entropy and MAUVE of samples\n"
            "  infill    code infilling tasks at several step budgets\n"
            "  gate      what soft-masking feeds back: entropy, top-k accuracy, lambda\n"
            "\n"
            "All but infill read the held-out part of a token file: its last 1%% (at least\n"
            "one sequence), the split `smdiff train` validates on. `smdiff eval elbo --help`\n"
            "(gonogo, samples, infill, gate) describes each.\n"
            "  -h, --help   this text\n");
}

static void usage_elbo(FILE *f) {
    fprintf(f,
            "usage: smdiff eval elbo -m MODEL [-m MODEL ...] --tokens FILE.i32 [options]\n"
            "\n"
            "The MDLM bound in nats/token and its perplexity, on consecutive held-out\n"
            "windows with fixed seeded t and masks (every model sees the same noise).\n"
            "  -m, --model FILE   a model (repeatable, at most 16)\n"
            "  --tokens FILE      the token file (its last 1%% is held out)\n"
            "  --seq L            window length (default 128)\n"
            "  --windows N        windows (default 256; 0 = all that fit)\n"
            "  --draws D          noise draws per window, stratified in t (default 4)\n"
            "  -s, --seed S       noise seed (default 1)\n"
            "  --two-pass         the soft-masking two-pass bound (as SM models train)\n"
            "  -t, --threads T    threads (default 0: all CPUs)\n"
            "  --csv FILE         append model,bound,seq,windows,draws,seed,two_pass,nll,ppl,masked\n"
            "  --progress         show progress on stderr even when it is not a terminal\n"
            "  --no-progress      never show progress\n"
            "  -h, --help         this text\n");
}

static void usage_samples(FILE *f) {
    fprintf(f,
            "usage: smdiff eval samples -m MODEL --ref AR.gguf --tokens FILE.i32 [options]\n"
            "\n"
            "Per seed, N held-out windows of LEN+1 tokens are the human text; sample i is\n"
            "generated after the first token of window i. The AR reference model gives the\n"
            "generative perplexity exp(mean NLL) and MAUVE's features.\n"
            "  -m, --model FILE   the model that generates\n"
            "  --ref FILE         the autoregressive reference model (smdiff train --ar)\n"
            "  --tokens FILE      the token file (its last 1%% is held out)\n"
            "  --len LEN          generated tokens per sample (default 64)\n"
            "  --budgets A,B,..   denoising steps (default LEN/8,LEN/4,LEN/2,LEN)\n"
            "  --seeds S1,S2,..   seeds (default 1,2,3)\n"
            "  --n N              samples per seed and budget (default 50)\n"
            "  --strategy NAME    decoder strategy (default origin: MDLM's ancestral order)\n"
            "  --threshold C      confidence threshold of the threshold strategy (default 0.9)\n"
            "  --factor F         f of the factor strategy (default 1)\n"
            "  --cache MODE       off, prefix or dual: block caches (default off)\n"
            "  --cache-refresh N  with a cache, also recompute everything every N steps of a\n"
            "                     block (default 0: at block starts only)\n"
            "  --batch B          samples decoded together, one forward pass per step for all\n"
            "                     (smdiff_batch_*; default 8; the samples are those of B = 1)\n"
            "  --block-len N      semi-autoregressive blocks of N tokens (default 0: one block)\n"
            "  --temp T           sampling temperature (default 1)\n"
            "  --top-p P          nucleus (default 1 = off)\n"
            "  --softmask MODE    off, entropy or constant (default: the model's)\n"
            "  --sm-lambda X      lambda of --softmask constant\n"
            "  --label NAME       name of this configuration in the output (default MODEL)\n"
            "  --csv FILE         append label,budget,seed,n,gen_ppl,entropy,mauve per run (and\n"
            "                     a row \"human\" with budget 0 for the held-out text)\n"
            "  --show K           print the first K samples of the first seed per budget\n"
            "  --prompt-id ID     every sample's one-token prompt is ID (e.g. the EOS id: samples\n"
            "                     that start a document) instead of its window's first token\n"
            "  --dump FILE        write every sample as a JSON line: label, seed, budget, index,\n"
            "                     text (up to its first EOS), eos (whether it has one), gen_nll\n"
            "                     (examples/code/score_samples.py: parse rate of code samples)\n"
            "  -t, --threads T    threads (default 0: all CPUs)\n"
            "  --progress         show progress on stderr even when it is not a terminal\n"
            "  --no-progress      never show progress\n"
            "  -h, --help         this text\n");
}

static void usage_gonogo(FILE *f) {
    fprintf(f,
            "usage: smdiff eval gonogo -m MODEL [-m MODEL ...] --tokens FILE.i32 [--omega S,A,B ...] [--k K]\n"
            "\n"
            "The go/no-go of soft-masking for a base model. On the same windows, noise and\n"
            "pass-1 predictions as elbo: the single-pass bound and the two-pass bound with\n"
            "each omega setting, the difference (two-pass - single-pass) with its standard\n"
            "error over windows, and a verdict from the smallest omega_s: SM helps at first\n"
            "order when the difference is below -2 SE (the optimiser opens it), hurts above\n"
            "+2 SE (closes it).\n"
            "  -m, --model FILE   a model (repeatable, at most 16)\n"
            "  --tokens FILE      the token file (its last 1%% is held out)\n"
            "  --omega S,A,B      omega_s, omega_a, omega_b of one setting (repeatable, at most\n"
            "                     16; default 0.01,6.66,-0.75 0.1,6.66,-0.75 0.5,6.66,-0.75)\n"
            "  --k K              top-k of the mixture (default: the model's, else 3)\n"
            "  --seq L            window length (default 128)\n"
            "  --windows N        windows (default 256; 0 = all that fit)\n"
            "  --draws D          noise draws per window (default 4)\n"
            "  -s, --seed S       noise seed (default 1)\n"
            "  -t, --threads T    threads (default 0: all CPUs)\n"
            "  --csv FILE         append model,omega_s,omega_a,omega_b,k,windows,draws,seed,\n"
            "                     single,two_pass,diff,se per setting\n"
            "  --progress         show progress on stderr even when it is not a terminal\n"
            "  --no-progress      never show progress\n"
            "  -h, --help         this text\n");
}

static void usage_gate(FILE *f) {
    fprintf(f,
            "usage: smdiff eval gate -m MODEL --tokens FILE.i32 [--seq L] [--windows N] [--t T1,T2,..]\n"
            "\n"
            "What soft-masking would feed back. Held-out windows are masked at each rate t;\n"
            "over the masked positions it prints the median predictive entropy, how often\n"
            "the true token is the top-1 or in the model's top-k, and the mean of lambda\n"
            "under the model's soft-mask with the share above 0.01, 0.1.\n"
            "  -m, --model FILE   the model\n"
            "  --tokens FILE      the token file (its last 1%% is held out)\n"
            "  --seq L            window length (default 128)\n"
            "  --windows N        windows (default 32)\n"
            "  --t T1,T2,..       masking rates in (0, 1] (default 0.25,0.5,0.75)\n"
            "  -s, --seed S       mask seed (default 1)\n"
            "  -t, --threads T    threads (default 0: all CPUs)\n"
            "  -h, --help         this text\n");
}

enum {
    O_TOKENS = CLI_OPT_FIRST, O_CSV, O_SEQ, O_WINDOWS, O_DRAWS, O_TWO_PASS, O_REF, O_LABEL, O_STRATEGY,
    O_SOFTMASK, O_SM_LAMBDA, O_LEN, O_N, O_SHOW, O_BLOCK, O_TEMP, O_TOP_P, O_BUDGETS, O_SEEDS, O_T, O_DUMP,
    O_PROMPT_ID, O_OMEGA, O_K, O_THRESHOLD, O_FACTOR, O_CACHE, O_CACHE_REFRESH, O_BATCH,
};
#define OPT_MODEL {"model", required_argument, NULL, 'm'}
#define OPT_TOKENS {"tokens", required_argument, NULL, O_TOKENS}
#define OPT_THREADS {"threads", required_argument, NULL, 't'}
static const struct option elbo_opts[] = {
    OPT_MODEL, OPT_TOKENS, {"csv", required_argument, NULL, O_CSV}, {"seq", required_argument, NULL, O_SEQ},
    {"windows", required_argument, NULL, O_WINDOWS}, {"draws", required_argument, NULL, O_DRAWS},
    {"seed", required_argument, NULL, 's'}, {"two-pass", no_argument, NULL, O_TWO_PASS}, OPT_THREADS,
    CLI_PROGRESS_OPTIONS, CLI_HELP_OPTION, {0, 0, 0, 0},
};
static const struct option samples_opts[] = {
    OPT_MODEL, OPT_TOKENS, {"ref", required_argument, NULL, O_REF}, {"csv", required_argument, NULL, O_CSV},
    {"label", required_argument, NULL, O_LABEL}, {"strategy", required_argument, NULL, O_STRATEGY},
    {"softmask", required_argument, NULL, O_SOFTMASK}, {"sm-lambda", required_argument, NULL, O_SM_LAMBDA},
    {"len", required_argument, NULL, O_LEN}, {"n", required_argument, NULL, O_N},
    {"show", required_argument, NULL, O_SHOW}, {"block-len", required_argument, NULL, O_BLOCK},
    {"temp", required_argument, NULL, O_TEMP}, {"top-p", required_argument, NULL, O_TOP_P},
    {"budgets", required_argument, NULL, O_BUDGETS}, {"seeds", required_argument, NULL, O_SEEDS}, OPT_THREADS,
    {"dump", required_argument, NULL, O_DUMP}, {"prompt-id", required_argument, NULL, O_PROMPT_ID},
    {"threshold", required_argument, NULL, O_THRESHOLD}, {"factor", required_argument, NULL, O_FACTOR},
    {"cache", required_argument, NULL, O_CACHE}, {"cache-refresh", required_argument, NULL, O_CACHE_REFRESH},
    {"batch", required_argument, NULL, O_BATCH}, CLI_PROGRESS_OPTIONS, CLI_HELP_OPTION, {0, 0, 0, 0},
};
static const struct option gonogo_opts[] = {
    OPT_MODEL, OPT_TOKENS, {"csv", required_argument, NULL, O_CSV}, {"seq", required_argument, NULL, O_SEQ},
    {"windows", required_argument, NULL, O_WINDOWS}, {"draws", required_argument, NULL, O_DRAWS},
    {"seed", required_argument, NULL, 's'}, {"omega", required_argument, NULL, O_OMEGA},
    {"k", required_argument, NULL, O_K}, OPT_THREADS, CLI_PROGRESS_OPTIONS, CLI_HELP_OPTION, {0, 0, 0, 0},
};
static const struct option gate_opts[] = {
    OPT_MODEL, OPT_TOKENS, {"seq", required_argument, NULL, O_SEQ}, {"windows", required_argument, NULL, O_WINDOWS},
    {"seed", required_argument, NULL, 's'}, {"t", required_argument, NULL, O_T}, OPT_THREADS,
    CLI_HELP_OPTION, {0, 0, 0, 0},
};
static const struct option help_only[] = {CLI_HELP_OPTION, {0, 0, 0, 0}};
const cli_spec cli_spec_eval = {"eval", "h", help_only, usage};
const cli_spec cli_spec_eval_elbo = {"eval elbo", "m:s:t:h", elbo_opts, usage_elbo};
const cli_spec cli_spec_eval_samples = {"eval samples", "m:t:h", samples_opts, usage_samples};
const cli_spec cli_spec_eval_gate = {"eval gate", "m:s:t:h", gate_opts, usage_gate};
const cli_spec cli_spec_eval_gonogo = {"eval gonogo", "m:s:t:h", gonogo_opts, usage_gonogo};

/* Counts without an option of the library to take bounds from. */
#define MAX_COUNT ((int64_t)INT32_MAX)

/* The held-out part of a token file, the split `smdiff train` validates on:
 * returns the file's tokens (the caller frees them), *val pointing at the
 * last *n_val of them, at least one window of `win`; NULL after printing why. */
static int32_t *read_heldout(const char *path, int64_t win, const int32_t **val, int64_t *n_val) {
    int64_t n = 0;
    int32_t *tok = cli_read_tokens(path, &n);
    if (!tok) return NULL;
    *n_val = cli_val_tokens(n, win);
    if (*n_val > n) {
        fprintf(stderr, "smdiff eval: %s has %lld tokens, fewer than one window of %lld\n", path,
                (long long)n, (long long)win);
        free(tok);
        return NULL;
    }
    *val = tok + (n - *n_val);
    return tok;
}

static void mean_sd(const double *x, int n, double *mean, double *sd) {
    double m = 0, v = 0;
    for (int i = 0; i < n; i++) m += x[i];
    m /= n;
    for (int i = 0; i < n; i++) v += (x[i] - m) * (x[i] - m);
    *mean = m;
    *sd = n > 1 ? sqrt(v / (n - 1)) : 0.0;
}

/* splitmix64: the CLI's own small generator for window positions */
static uint64_t splitmix(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Close a --csv (or --dump) file; 0, or 1 after saying that a write to it
 * failed. */
static int close_csv(FILE *f, const char *path) { return cli_fclose(f, path, "output"); }

/* ------------------------------------------------------------------ elbo */

static int eval_elbo(int argc, char **argv) {
    const char *models[16], *tokens = NULL, *csv = NULL;
    int n_models = 0, two_pass = 0, c, r = 0;
    int64_t seq = 128, windows = 256, draws = 4, seed = 1, threads = 0;
    cli_args a;
    cli_begin(&a, &cli_spec_eval_elbo);
    while (!r && (c = cli_next(&a, argc, argv)) > 0) {
        switch (c) {
        case 'm':
            if (n_models == 16) return cli_usage_error("at most 16 models");
            models[n_models++] = optarg;
            break;
        case O_TOKENS: tokens = optarg; break;
        case O_CSV: csv = optarg; break;
        case O_SEQ: r = cli_count(a.opt, optarg, 2, MAX_COUNT, &seq); break;
        case O_WINDOWS: r = cli_count(a.opt, optarg, 0, MAX_COUNT, &windows); break;
        case O_DRAWS: r = cli_count(a.opt, optarg, 1, MAX_COUNT, &draws); break;
        case 's': r = cli_count(a.opt, optarg, 0, INT64_MAX, &seed); break;
        case 't': r = cli_key_int(a.opt, optarg, SMDIFF_MODEL_THREADS, &threads); break;
        case O_TWO_PASS: two_pass = 1; break;
        case CLI_ARG: return cli_usage_error("unexpected argument '%s'", optarg);
        }
    }
    if (r) return r;
    if (c < 0) return a.status;
    if (!n_models || !tokens) return cli_usage_error("-m and --tokens are required");
    int show = cli_progress(&a);
    const int32_t *val = NULL;
    int64_t n_val = 0;
    int32_t *tok = read_heldout(tokens, seq, &val, &n_val);
    if (!tok) return 1;
    int64_t fit = n_val / seq;
    if (windows == 0 || windows > fit) windows = fit;
    FILE *out = NULL;
    if (csv) {
        out = cli_fopen(csv, "a", "--csv");
        if (!out) {
            free(tok);
            return CLI_EXIT_FAIL;
        }
    }
    int ret = 0;
    const int64_t chunk = 32;
    for (int k = 0; k < n_models && !ret; k++) {
        double sum = 0.0, t0 = now_s();
        int64_t masked = 0;
        smdiff_model *m = NULL;
        int32_t rc = smdiff_model_create(&m);
        if (!rc) rc = smdiff_model_load_file(m, models[k]);
        if (rc) ret = cli_fail(models[k], rc, smdiff_last_error());
        for (int64_t w = 0; !ret && w < windows; w += chunk) {
            int64_t nw = windows - w < chunk ? windows - w : chunk;
            double nll = 0.0;
            size_t nm = 0;
            rc = smdiff_eval_elbo(m, val + w * seq, (size_t)nw, (size_t)w, (size_t)seq, (size_t)draws, (uint64_t)seed,
                                  two_pass, (int32_t)threads, &nll, &nm);
            if (rc) {
                ret = cli_fail(models[k], rc, smdiff_last_error());
                break;
            }
            sum += nll * (double)nw;
            masked += (int64_t)nm;
            double el = now_s() - t0, done = (double)(w + nw);
            if (show)
                fprintf(stderr, "\relbo %s: %lld/%lld windows  %.0fs left   ", models[k], (long long)(w + nw),
                        (long long)windows, el / done * ((double)windows - done));
        }
        if (show) fprintf(stderr, "\n");
        smdiff_model_free(m);
        if (ret) break;
        double nll = sum / (double)windows;
        printf("%s: %s bound %.4f nats/token, perplexity <= %.2f  (%lld windows x %lld tokens, "
               "%lld draws, seed %lld, %lld masked positions)\n",
               models[k], two_pass ? "two-pass" : "single-pass", nll, exp(nll), (long long)windows, (long long)seq,
               (long long)draws, (long long)seed, (long long)masked);
        if (out)
            fprintf(out, "%s,%s,%lld,%lld,%lld,%lld,%d,%.6f,%.4f,%lld\n", models[k],
                    two_pass ? "two-pass" : "single-pass", (long long)seq, (long long)windows, (long long)draws,
                    (long long)seed, two_pass, nll, exp(nll), (long long)masked);
        ret = cli_check_stdout(); /* a closed pipe or a full disk: stop before the next model */
    }
    if (out && close_csv(out, csv) && !ret) ret = CLI_EXIT_FAIL;
    free(tok);
    return ret;
}

/* ---------------------------------------------------------------- gonogo */

enum { GONOGO_MAX = 16 };

typedef struct gonogo_args {
    const char *models[16], *tokens, *csv;
    int n_models, n_omega, progress;
    double omega[GONOGO_MAX][3];
    int64_t k, seq, windows, draws, seed, threads;
} gonogo_args;

/* --omega S,A,B: 0 < S < 1, A > 0, B < 0 (the schedule's bounds are
 * checked again when it is built). */
static int parse_omega(gonogo_args *a, const char *opt, const char *v) {
    size_t n = 0;
    if (a->n_omega == GONOGO_MAX) return cli_usage_error("at most %d %s settings", GONOGO_MAX, opt);
    double *w = a->omega[a->n_omega];
    int r = cli_real_list(opt, v, -1e300, 1e300, w, 3, &n);
    if (r) return r;
    if (n != 3 || !(w[0] > 0 && w[0] < 1 && w[1] > 0 && w[2] < 0))
        return cli_usage_error("%s wants S,A,B with 0 < S < 1, A > 0, B < 0, not %s", opt, v);
    a->n_omega++;
    return 0;
}

static int gonogo_option(void *ud, const cli_args *ca, int c, const char *v) {
    gonogo_args *a = ud;
    const char *opt = ca->opt;
    switch (c) {
    case 'm':
        if (a->n_models == 16) return cli_usage_error("at most 16 models");
        a->models[a->n_models++] = v;
        return 0;
    case O_OMEGA: return parse_omega(a, opt, v);
    case O_TOKENS: a->tokens = v; return 0;
    case O_CSV: a->csv = v; return 0;
    case O_K: return cli_key_int(opt, v, SMDIFF_SM_TOPK, &a->k);
    case O_SEQ: return cli_count(opt, v, 2, MAX_COUNT, &a->seq);
    case O_WINDOWS: return cli_count(opt, v, 0, MAX_COUNT, &a->windows);
    case O_DRAWS: return cli_count(opt, v, 1, MAX_COUNT, &a->draws);
    case 's': return cli_count(opt, v, 0, INT64_MAX, &a->seed);
    case 't': return cli_key_int(opt, v, SMDIFF_MODEL_THREADS, &a->threads);
    case CLI_ARG: return cli_usage_error("unexpected argument '%s'", v);
    }
    return 0;
}

/* -1 after --help, else 0 or an exit status. */
static int parse_gonogo(int argc, char **argv, gonogo_args *a) {
    memset(a, 0, sizeof *a);
    a->seq = 128, a->windows = 256, a->draws = 4, a->seed = 1;
    cli_args ca;
    int r = cli_parse(&ca, &cli_spec_eval_gonogo, argc, argv, gonogo_option, a);
    if (r) return r;
    a->progress = cli_progress(&ca);
    if (!a->n_models || !a->tokens) return cli_usage_error("-m and --tokens are required");
    if (!a->n_omega) {
        const double s_default[3] = {0.01, 0.1, 0.5};
        for (int j = 0; j < 3; j++) a->omega[j][0] = s_default[j], a->omega[j][1] = 6.66, a->omega[j][2] = -0.75;
        a->n_omega = 3;
    }
    return 0;
}

/* The settings' schedules: the model's own (for its k) with omega replaced. */
static int32_t gonogo_schedules(const gonogo_args *a, const smdiff_model *m, smdiff_softmask **sm) {
    int32_t rc = SMDIFF_OK;
    for (int j = 0; !rc && j < a->n_omega; j++) {
        rc = smdiff_softmask_create_from_model(m, &sm[j]);
        if (!rc) rc = smdiff_softmask_set_double(sm[j], SMDIFF_SM_SCALE, a->omega[j][0]);
        if (!rc) rc = smdiff_softmask_set_double(sm[j], SMDIFF_SM_STEEPNESS, a->omega[j][1]);
        if (!rc) rc = smdiff_softmask_set_double(sm[j], SMDIFF_SM_CENTRE, a->omega[j][2]);
        if (!rc && a->k) rc = smdiff_softmask_set_int(sm[j], SMDIFF_SM_TOPK, a->k);
    }
    return rc;
}

/* One model: per-window bounds in chunks (for the progress line), then the
 * paired differences. per [windows * C]. */
static int gonogo_model(const gonogo_args *a, const char *path, const int32_t *val, int64_t windows, FILE *csv) {
    const int C = 1 + a->n_omega;
    smdiff_model *m = NULL;
    smdiff_softmask *sm[GONOGO_MAX] = {0};
    double *per = malloc(sizeof(double) * (size_t)(windows * C));
    int64_t k = 0;
    int32_t rc = per ? smdiff_model_create(&m) : SMDIFF_E_NOMEM;
    if (!rc) rc = smdiff_model_load_file(m, path);
    if (!rc) rc = gonogo_schedules(a, m, sm);
    if (!rc) rc = smdiff_softmask_get_int(sm[0], SMDIFF_SM_TOPK, &k);
    size_t masked = 0;
    double t0 = now_s();
    for (int64_t w = 0; !rc && w < windows; w += 32) {
        int64_t nw = windows - w < 32 ? windows - w : 32;
        size_t nm = 0;
        rc = smdiff_eval_elbo_windows(m, val + w * a->seq, (size_t)nw, (size_t)w, (size_t)a->seq, (size_t)a->draws,
                                      (uint64_t)a->seed, (const smdiff_softmask *const *)sm, (size_t)a->n_omega,
                                      (int32_t)a->threads, per + w * C, &nm);
        masked += nm;
        double done = (double)(w + nw);
        if (a->progress)
            fprintf(stderr, "\rgonogo %s: %lld/%lld windows  %.0fs left   ", path, (long long)(w + nw),
                    (long long)windows, (now_s() - t0) / done * ((double)windows - done));
    }
    if (a->progress) fprintf(stderr, "\n");
    int ret = rc ? cli_fail(path, rc, smdiff_last_error()) : 0;
    if (!ret) {
        double single = 0;
        for (int64_t i = 0; i < windows; i++) single += per[i * C] / (double)windows;
        printf("# %s: %lld windows x %lld tokens, %lld draws, seed %lld, k %lld; %zu masked positions; "
               "differences paired over windows\n", path, (long long)windows, (long long)a->seq,
               (long long)a->draws, (long long)a->seed,
               (long long)k, masked);
        printf("%-38s bound %.5f nats/token (perplexity <= %.2f)\n", "single-pass",
               single, exp(single));
        int first = 0; /* the setting with the smallest omega_s decides */
        double dfirst = 0, sefirst = 0;
        for (int j = 0; j < a->n_omega; j++) {
            double two = 0, d = 0, v = 0;
            for (int64_t i = 0; i < windows; i++) two += per[i * C + 1 + j] / (double)windows;
            d = two - single;
            for (int64_t i = 0; i < windows; i++) {
                double e = per[i * C + 1 + j] - per[i * C] - d;
                v += e * e;
            }
            double se = windows > 1 ? sqrt(v / (double)(windows - 1) / (double)windows) : 0.0;
            char label[96];
            snprintf(label, sizeof label, "omega (%g, %g, %g)", a->omega[j][0], a->omega[j][1], a->omega[j][2]);
            printf("%-38s bound %.5f  diff %+.5f +- %.5f SE  (%+.1f SE)\n", label, two, d, se, se > 0 ? d / se : 0.0);
            if (csv)
                fprintf(csv, "%s,%g,%g,%g,%lld,%lld,%lld,%lld,%.6f,%.6f,%.6f,%.6f\n", path, a->omega[j][0],
                        a->omega[j][1], a->omega[j][2], (long long)k, (long long)windows, (long long)a->draws,
                        (long long)a->seed, single,
                        two, d, se);
            if (j == 0 || a->omega[j][0] < a->omega[first][0]) first = j, dfirst = d, sefirst = se;
        }
        const char *verdict = dfirst < -2 * sefirst && dfirst < 0   ? "yes"
                              : dfirst > 2 * sefirst && dfirst > 0 ? "no (it hurts: the optimiser will close it)"
                                                                    : "undecided (|diff| < 2 SE: more windows)";
        printf("SM helps at first order: %s  [omega_s %g: two-pass - single-pass = %+.5f +- %.5f nats/token]\n",
               verdict, a->omega[first][0], dfirst, sefirst);
        ret = cli_check_stdout(); /* a closed pipe or a full disk: stop before the next model */
    }
    for (int j = 0; j < a->n_omega; j++) smdiff_softmask_free(sm[j]);
    smdiff_model_free(m);
    free(per);
    return ret;
}

static int eval_gonogo(int argc, char **argv) {
    gonogo_args a;
    int pr = parse_gonogo(argc, argv, &a);
    if (pr) return pr < 0 ? CLI_EXIT_OK : pr;
    const int32_t *val = NULL;
    int64_t n_val = 0;
    int32_t *tok = read_heldout(a.tokens, a.seq, &val, &n_val);
    if (!tok) return 1;
    int64_t windows = a.windows, fit = n_val / a.seq;
    if (windows == 0 || windows > fit) windows = fit;
    FILE *csv = a.csv ? cli_fopen(a.csv, "a", "--csv") : NULL;
    int ret = a.csv && !csv ? CLI_EXIT_FAIL : 0;
    for (int i = 0; !ret && i < a.n_models; i++) ret = gonogo_model(&a, a.models[i], val, windows, csv);
    if (csv && close_csv(csv, a.csv) && !ret) ret = CLI_EXIT_FAIL;
    free(tok);
    return ret;
}

/* --------------------------------------------------------------- samples */

typedef struct samples_args {
    const char *model, *ref, *tokens, *csv, *label, *strategy, *sm_mode, *dump, *cache;
    int64_t len, n, show, threads, block_len, sm_mode_id, prompt_id, batch, refresh, cache_mode;
    int64_t budgets[16], seeds[16];
    size_t n_budgets, n_seeds;
    double temp, top_p, sm_lambda, threshold, factor;
    int progress;
} samples_args;

static int samples_option(void *ud, const cli_args *a, int c, const char *v) {
    samples_args *s = ud;
    const char *opt = a->opt;
    size_t n = 0;
    int r = 0;
    switch (c) {
    case 'm': s->model = v; break;
    case O_REF: s->ref = v; break;
    case O_TOKENS: s->tokens = v; break;
    case O_CSV: s->csv = v; break;
    case O_LABEL: s->label = v; break;
    case O_STRATEGY: s->strategy = v; break;
    case O_SOFTMASK:
        s->sm_mode = v;
        return cli_softmask_mode(opt, v, &s->sm_mode_id);
    case O_SM_LAMBDA: return cli_key_real(opt, v, SMDIFF_SM_CONSTANT_LAMBDA, &s->sm_lambda);
    case O_LEN: return cli_count(opt, v, 2, 1048576, &s->len);
    case O_N: return cli_count(opt, v, 2, MAX_COUNT, &s->n);
    case O_SHOW: return cli_count(opt, v, 0, MAX_COUNT, &s->show);
    case O_DUMP: s->dump = v; break;
    case O_PROMPT_ID: return cli_count(opt, v, 0, INT32_MAX, &s->prompt_id);
    case 't': return cli_key_int(opt, v, SMDIFF_SAMPLER_THREADS, &s->threads);
    case O_BLOCK: return cli_key_int(opt, v, SMDIFF_SAMPLER_BLOCK_LENGTH, &s->block_len);
    case O_TEMP: return cli_key_real(opt, v, SMDIFF_SAMPLER_TEMPERATURE, &s->temp);
    case O_TOP_P: return cli_key_real(opt, v, SMDIFF_SAMPLER_TOP_P, &s->top_p);
    case O_THRESHOLD: return cli_key_real(opt, v, SMDIFF_SAMPLER_THRESHOLD, &s->threshold);
    case O_FACTOR: return cli_key_real(opt, v, SMDIFF_SAMPLER_FACTOR, &s->factor);
    case O_CACHE:
        s->cache = v;
        return cli_cache_mode(opt, v, &s->cache_mode);
    case O_CACHE_REFRESH: return cli_key_int(opt, v, SMDIFF_SAMPLER_CACHE_REFRESH, &s->refresh);
    case O_BATCH: return cli_key_int(opt, v, SMDIFF_BATCH_CAPACITY, &s->batch);
    case O_BUDGETS:
        r = cli_count_list(opt, v, 1, 1048576, s->budgets, 16, &n);
        s->n_budgets = r ? 0 : n;
        return r;
    case O_SEEDS:
        r = cli_count_list(opt, v, 0, INT64_MAX, s->seeds, 16, &n);
        s->n_seeds = r ? 0 : n;
        return r;
    case CLI_ARG: return cli_usage_error("unexpected argument '%s'", v);
    }
    return 0;
}

/* -1 after --help, else 0 or an exit status. */
static int parse_samples(int argc, char **argv, samples_args *s) {
    memset(s, 0, sizeof *s);
    s->len = 64, s->n = 50, s->temp = 1.0, s->top_p = 1.0, s->sm_lambda = -1, s->prompt_id = -1;
    s->batch = 8, s->threshold = 0.9, s->factor = 1.0;
    s->strategy = "origin";
    s->n_seeds = 3, s->seeds[0] = 1, s->seeds[1] = 2, s->seeds[2] = 3;
    cli_args a;
    int r = cli_parse(&a, &cli_spec_eval_samples, argc, argv, samples_option, s);
    if (r) return r;
    s->progress = cli_progress(&a);
    if (!s->model || !s->ref || !s->tokens) return cli_usage_error("-m, --ref and --tokens are required");
    if (!s->n_budgets)
        for (int64_t d = 8; d >= 1; d /= 2)
            if (s->len / d >= 1) s->budgets[s->n_budgets++] = s->len / d;
    for (size_t i = 0; i < s->n_budgets; i++)
        if (s->budgets[i] > s->len)
            return cli_usage_error("--budgets: %lld is more steps than --len %lld", (long long)s->budgets[i],
                                   (long long)s->len);
    if (!s->label) s->label = s->model;
    return 0;
}

/* Sampler with the configuration's strategy, temperature, soft-mask and
 * cache. */
static int32_t make_sampler(const samples_args *a, smdiff_model *m, smdiff_sampler **s_out, const char **what) {
    smdiff_sampler *s = NULL;
    smdiff_softmask *sm = NULL;
    int32_t rc = smdiff_sampler_create(&s);
    *what = "sampler";
    if (!rc) rc = smdiff_sampler_set_int(s, SMDIFF_SAMPLER_GEN_LENGTH, a->len);
    if (!rc) rc = smdiff_sampler_set_int(s, SMDIFF_SAMPLER_STOP_AT_EOS, 0);
    if (!rc) rc = smdiff_sampler_set_int(s, SMDIFF_SAMPLER_THREADS, a->threads);
    if (!rc) *what = "--block-len", rc = smdiff_sampler_set_int(s, SMDIFF_SAMPLER_BLOCK_LENGTH, a->block_len);
    if (!rc) *what = "--temp", rc = smdiff_sampler_set_double(s, SMDIFF_SAMPLER_TEMPERATURE, a->temp);
    if (!rc) *what = "--top-p", rc = smdiff_sampler_set_double(s, SMDIFF_SAMPLER_TOP_P, a->top_p);
    if (!rc) *what = "--strategy", rc = smdiff_sampler_set_strategy(s, a->strategy);
    if (!rc) *what = "--threshold", rc = smdiff_sampler_set_double(s, SMDIFF_SAMPLER_THRESHOLD, a->threshold);
    if (!rc) *what = "--factor", rc = smdiff_sampler_set_double(s, SMDIFF_SAMPLER_FACTOR, a->factor);
    if (!rc) *what = "--cache-refresh", rc = smdiff_sampler_set_int(s, SMDIFF_SAMPLER_CACHE_REFRESH, a->refresh);
    if (!rc) *what = "--cache", rc = smdiff_sampler_set_int(s, SMDIFF_SAMPLER_CACHE, a->cache_mode);
    if (!rc) *what = "soft-mask", rc = smdiff_softmask_create_from_model(m, &sm);
    if (!rc && a->sm_mode) *what = "--softmask", rc = smdiff_softmask_set_int(sm, SMDIFF_SM_MODE, a->sm_mode_id);
    if (!rc && a->sm_lambda >= 0)
        *what = "--sm-lambda", rc = smdiff_softmask_set_double(sm, SMDIFF_SM_CONSTANT_LAMBDA, a->sm_lambda);
    if (!rc) rc = smdiff_sampler_set_softmask(s, sm);
    smdiff_softmask_free(sm);
    if (rc) {
        smdiff_sampler_free(s);
        return rc;
    }
    *s_out = s;
    return SMDIFF_OK;
}

/* Counts the denoising steps the samples take (threshold and factor
 * decoding take fewer than the budget). */
static int32_t count_step(size_t step, size_t n_steps, const int32_t *canvas, const uint8_t *committed,
                          const float *lambda, size_t n, void *ud) {
    (void)step, (void)n_steps, (void)canvas, (void)committed, (void)lambda, (void)n;
    ++*(long long *)ud;
    return 0;
}

/* The n samples of one seed and step budget, gen[i * (len + 1)] holding
 * sample i's prompt token and receiving its len tokens: a.batch at a time
 * through the batch API, one forward pass per step for the group. Sample
 * i's seed depends on (seed, i) alone, so the samples do not depend on
 * the batch size. Progress on stderr; returns the first failure. */
static int32_t generate_samples(const samples_args *a, smdiff_batch *b, smdiff_sampler **ss, uint64_t seed,
                                int64_t budget, int32_t *gen, double *work_done, double work_total, double t0,
                                long long *steps, const char **what) {
    const int64_t S = a->len + 1;
    size_t id[4096];
    for (int64_t i0 = 0; i0 < a->n; i0 += a->batch) {
        int64_t k = a->n - i0 < a->batch ? a->n - i0 : a->batch;
        int32_t rc = SMDIFF_OK;
        int64_t added = 0;
        *what = "generate";
        for (int64_t j = 0; j < k && !rc; j++) {
            uint64_t i = (uint64_t)(i0 + j);
            rc = smdiff_sampler_set_int(ss[j], SMDIFF_SAMPLER_STEPS, budget);
            if (!rc) rc = smdiff_sampler_set_int(ss[j], SMDIFF_SAMPLER_SEED, (int64_t)(seed * 1000003u + i));
            if (!rc) rc = smdiff_sampler_set_step_callback(ss[j], count_step, steps);
            if (!rc) rc = smdiff_batch_add(b, ss[j], gen + i * S, 1, 0, &id[j]);
            if (!rc) added++;
        }
        if (!rc) rc = smdiff_batch_run(b);
        for (int64_t j = 0; j < k && !rc; j++) {
            size_t n_out = 0;
            rc = smdiff_batch_result(b, id[j], gen + (i0 + j) * S + 1, (size_t)a->len, &n_out);
            if (!rc && n_out != (size_t)a->len) rc = SMDIFF_E_INTERNAL;
        }
        for (int64_t j = 0; j < added; j++) smdiff_batch_remove(b, id[j]);
        if (rc) return rc;
        *work_done += (double)(budget * k);
        double el = now_s() - t0;
        if (a->progress)
            fprintf(stderr, "\r%s seed %llu budget %lld: sample %lld/%lld  %.0fs left   ", a->label,
                    (unsigned long long)seed, (long long)budget, (long long)(i0 + k), (long long)a->n,
                    el / *work_done * (work_total - *work_done));
    }
    return SMDIFF_OK;
}

static void print_text(smdiff_model *m, const int32_t *ids, int64_t n) {
    size_t nb = 0;
    if (smdiff_model_detokenize(m, ids, (size_t)n, 0, NULL, 0, &nb) && nb == 0) return;
    char *t = malloc(nb + 1);
    if (t && smdiff_model_detokenize(m, ids, (size_t)n, 0, t, nb + 1, &nb) == SMDIFF_OK) {
        t[nb] = 0;
        for (char *c = t; *c; c++)
            if (*c == '\n') *c = ' ';
        printf("    | %s\n", t);
    }
    free(t);
}

/* --dump: one JSON line per sample of a (seed, budget): its text up to the
 * first EOS, whether it has one, and its NLL under the reference. */
static int dump_samples(FILE *f, const smdiff_model *m, const samples_args *a, uint64_t seed, int64_t budget,
                        const int32_t *gen, const double *nll) {
    const int64_t S = a->len + 1;
    int64_t eos = -1;
    smdiff_model_property(m, SMDIFF_PROP_EOS_ID, &eos);
    for (int64_t i = 0; i < a->n; i++) {
        const int32_t *g = gen + i * S + 1;
        int64_t n = 0;
        while (n < a->len && g[n] != eos) n++;
        char *text = cli_detokenize_utf8(m, g, (size_t)n);
        json_t *j = text ? json_pack("{s:s, s:I, s:I, s:I, s:s, s:b, s:f}", "label", a->label, "seed",
                                     (json_int_t)seed, "budget", (json_int_t)budget, "index", (json_int_t)i, "text",
                                     text, "eos", n < a->len, "gen_nll", nll[i])
                         : NULL;
        int bad = !j || json_dumpf(j, f, JSON_COMPACT) || fputc('\n', f) == EOF;
        json_decref(j);
        free(text);
        if (bad) return -1;
    }
    return fflush(f) ? -1 : 0;
}

static int eval_samples(int argc, char **argv) {
    samples_args a;
    int pr = parse_samples(argc, argv, &a);
    if (pr) return pr < 0 ? CLI_EXIT_OK : pr;
    const int64_t S = a.len + 1; /* prompt token + generated */
    const int32_t *val = NULL;
    int64_t n_val = 0;
    int32_t *tok = read_heldout(a.tokens, S, &val, &n_val);
    if (!tok) return 1;
    smdiff_model *m = NULL, *ref = NULL;
    smdiff_sampler **ss = calloc((size_t)a.batch, sizeof *ss);
    smdiff_batch *batch = NULL;
    FILE *csv = NULL, *dump = NULL;
    const int64_t N = a.n, nb = (int64_t)a.n_budgets, ns = (int64_t)a.n_seeds;
    int32_t *human = malloc(sizeof(int32_t) * (size_t)(N * S));
    int32_t *gen = malloc(sizeof(int32_t) * (size_t)(N * S));
    double *nll = malloc(sizeof(double) * (size_t)N);
    double *res = calloc((size_t)(4 * nb * ns), sizeof(double)); /* [metric][budget][seed] */
    float *hf = NULL, *gf = NULL;
    int ret = 1;
    const char *what = "out of memory";
    int32_t rc = (!human || !gen || !nll || !res || !ss) ? SMDIFF_E_NOMEM : smdiff_model_create(&m);
    if (!rc) {
        smdiff_model_set_int(m, SMDIFF_MODEL_THREADS, a.threads);
        what = a.model, rc = smdiff_model_load_file(m, a.model);
        if (rc) {
            ret = cli_fail(a.model, rc, smdiff_last_error());
            goto done;
        }
    }
    for (int64_t j = 0; !rc && j < a.batch; j++) rc = make_sampler(&a, m, &ss[j], &what);
    if (!rc) what = "batch", rc = smdiff_batch_create(m, &batch);
    if (!rc) what = "--batch", rc = smdiff_batch_set_int(batch, SMDIFF_BATCH_CAPACITY, a.batch);
    int64_t vocab = 0, d = 0;
    if (!rc) smdiff_model_property(m, SMDIFF_PROP_VOCAB_SIZE, &vocab);
    if (!rc && a.prompt_id >= vocab) {
        ret = cli_usage_error("--prompt-id %lld is outside the vocabulary of %lld", (long long)a.prompt_id,
                              (long long)vocab);
        goto done;
    }
    if (rc) { /* an option's value the library refuses is a usage error */
        ret = what[0] == '-' ? cli_refused(what, rc, smdiff_last_error()) : cli_fail(what, rc, smdiff_last_error());
        goto done;
    }
    /* the reference model scores every sample set; its width sizes the
     * feature buffers */
    what = a.ref;
    rc = smdiff_model_create(&ref);
    if (!rc) rc = smdiff_model_load_file(ref, a.ref);
    if (!rc) rc = smdiff_model_property(ref, SMDIFF_PROP_EMBED_DIM, &d);
    if (rc) {
        ret = cli_fail(a.ref, rc, smdiff_last_error());
        goto done;
    }
    hf = malloc(sizeof(float) * (size_t)(N * d)), gf = malloc(sizeof(float) * (size_t)(N * d));
    if (!hf || !gf) {
        ret = cli_fail("feature buffers", SMDIFF_E_NOMEM, "out of memory");
        goto done;
    }
    if (a.csv && !(csv = cli_fopen(a.csv, "a", "--csv"))) goto done;
    if (a.dump && !(dump = cli_fopen(a.dump, "w", "--dump"))) goto done;
    double t0 = now_s(), work_done = 0, work_total = 0;
    for (int64_t b = 0; b < nb; b++) work_total += (double)(a.budgets[b] * N * ns);
    printf("# %s: %lld samples of %lld tokens per seed and budget, strategy %s, block %lld, "
           "temperature %g, top-p %g, soft-mask %s, cache %s (refresh %lld), batch %lld\n",
           a.label, (long long)N, (long long)a.len, a.strategy, (long long)(a.block_len ? a.block_len : a.len),
           a.temp, a.top_p, a.sm_mode ? a.sm_mode : "(model's)", a.cache ? a.cache : "off", (long long)a.refresh,
           (long long)a.batch);
    for (int64_t si = 0; si < ns; si++) {
        uint64_t seed = (uint64_t)a.seeds[si], st = seed * 0x2545F4914F6CDD1Dull + 7;
        for (int64_t i = 0; i < N; i++) {
            uint64_t start = splitmix(&st) % (uint64_t)(n_val - S + 1);
            memcpy(human + i * S, val + start, sizeof(int32_t) * (size_t)S);
        }
        what = a.ref;
        rc = smdiff_eval_ar(ref, human, (size_t)N, (size_t)S, (int32_t)a.threads, nll, hf, NULL);
        if (rc) {
            ret = cli_fail(what, rc, smdiff_last_error());
            goto done;
        }
        double hn = 0, he = 0;
        for (int64_t i = 0; i < N; i++) {
            double e = 0;
            hn += nll[i];
            smdiff_eval_unigram_entropy(human + i * S + 1, (size_t)a.len, (size_t)vocab, &e);
            he += e;
        }
        printf("seed %llu human text: gen ppl %.2f, entropy %.3f nats (n %lld)\n", (unsigned long long)seed,
               exp(hn / N), he / N, (long long)N);
        if (csv) /* the held-out windows themselves, as the row "human", budget 0, MAUVE 1 */
            fprintf(csv, "human,0,%llu,%lld,%.4f,%.5f,1\n", (unsigned long long)seed, (long long)N,
                    exp(hn / N), he / N);
        for (int64_t b = 0; b < nb; b++) {
            for (int64_t i = 0; i < N; i++) gen[i * S] = a.prompt_id >= 0 ? (int32_t)a.prompt_id : human[i * S];
            long long steps = 0;
            rc = generate_samples(&a, batch, ss, seed, a.budgets[b], gen, &work_done, work_total, t0, &steps, &what);
            if (rc) {
                if (a.progress) fprintf(stderr, "\n");
                ret = cli_fail(what, rc, smdiff_batch_last_error(batch));
                goto done;
            }
            what = a.ref;
            rc = smdiff_eval_ar(ref, gen, (size_t)N, (size_t)S, (int32_t)a.threads, nll, gf, NULL);
            double mauve = 0, gn = 0, ge = 0;
            if (!rc) what = "MAUVE", rc = smdiff_eval_mauve(gf, (size_t)N, hf, (size_t)N, (size_t)d, seed, &mauve);
            for (int64_t i = 0; !rc && i < N; i++) {
                double e = 0;
                gn += nll[i];
                rc = smdiff_eval_unigram_entropy(gen + i * S + 1, (size_t)a.len, (size_t)vocab, &e);
                ge += e;
            }
            if (a.progress) fprintf(stderr, "\n");
            if (rc) {
                ret = cli_fail(what, rc, smdiff_last_error());
                goto done;
            }
            double *r = res + (b * ns + si);
            r[0] = exp(gn / N), r[nb * ns] = ge / N, r[2 * nb * ns] = mauve, r[3 * nb * ns] = (double)steps / N;
            printf("%s seed %llu steps %lld: gen ppl %.2f  entropy %.3f  MAUVE %.4f  (n %lld, %.1f steps/sample)\n",
                   a.label, (unsigned long long)seed, (long long)a.budgets[b], r[0], r[nb * ns], mauve, (long long)N,
                   r[3 * nb * ns]);
            if (csv)
                fprintf(csv, "%s,%lld,%llu,%lld,%.4f,%.5f,%.5f\n", a.label, (long long)a.budgets[b],
                        (unsigned long long)seed, (long long)N, r[0], r[nb * ns], mauve);
            for (int64_t i = 0; si == 0 && i < a.show && i < N; i++) print_text(m, gen + i * S, S);
            if ((ret = cli_check_stdout())) goto done; /* nobody reads the results: stop */
            if (dump && dump_samples(dump, m, &a, seed, a.budgets[b], gen, nll)) {
                fprintf(stderr, "%s: %s: a write failed\n", cli_prog(), a.dump);
                ret = CLI_EXIT_FAIL;
                goto done;
            }
        }
    }
    printf("# %s summary, mean +- sd over %lld seeds of %lld samples each\n", a.label, (long long)ns,
           (long long)N);
    for (int64_t b = 0; b < nb; b++) {
        double mu[4], sd[4];
        for (int k = 0; k < 4; k++) mean_sd(res + k * nb * ns + b * ns, (int)ns, &mu[k], &sd[k]);
        printf("%s steps %lld: gen ppl %.2f +- %.2f  entropy %.3f +- %.3f  MAUVE %.4f +- %.4f  "
               "steps/sample %.1f +- %.1f\n",
               a.label, (long long)a.budgets[b], mu[0], sd[0], mu[1], sd[1], mu[2], sd[2], mu[3], sd[3]);
    }
    ret = cli_check_stdout();
done:
    if (csv && close_csv(csv, a.csv) && !ret) ret = CLI_EXIT_FAIL;
    if (dump && close_csv(dump, a.dump) && !ret) ret = CLI_EXIT_FAIL;
    smdiff_batch_free(batch);
    for (int64_t j = 0; ss && j < a.batch; j++) smdiff_sampler_free(ss[j]);
    free(ss);
    smdiff_model_free(m);
    smdiff_model_free(ref);
    free(tok);
    free(human);
    free(gen);
    free(nll);
    free(res);
    free(hf);
    free(gf);
    return ret;
}

/* ------------------------------------------------------------------ gate */

/* What soft-masking would feed back (smdiff_eval_gate): over the masked
 * positions of held-out windows masked at rate t, the predictive entropy,
 * whether the true token is the top-1 or in the top-k, and the resulting
 * lambda. */
static int eval_gate(int argc, char **argv) {
    const char *model = NULL, *tokens = NULL;
    int64_t seq = 128, windows = 32, seed = 1, threads = 0;
    double tv[16] = {0.25, 0.5, 0.75};
    size_t nt = 3;
    int c, r = 0;
    cli_args a;
    cli_begin(&a, &cli_spec_eval_gate);
    while (!r && (c = cli_next(&a, argc, argv)) > 0) {
        switch (c) {
        case 'm': model = optarg; break;
        case O_TOKENS: tokens = optarg; break;
        case O_SEQ: r = cli_count(a.opt, optarg, 2, MAX_COUNT, &seq); break;
        case O_WINDOWS: r = cli_count(a.opt, optarg, 1, MAX_COUNT, &windows); break;
        case 's': r = cli_count(a.opt, optarg, 0, INT64_MAX, &seed); break;
        case 't': r = cli_key_int(a.opt, optarg, SMDIFF_MODEL_THREADS, &threads); break;
        case O_T:
            r = cli_real_list(a.opt, optarg, 0, 1, tv, 16, &nt);
            for (size_t i = 0; !r && i < nt; i++)
                if (!(tv[i] > 0)) r = cli_usage_error("%s: a masking rate of %g masks nothing: (0, 1]", a.opt, tv[i]);
            break;
        case CLI_ARG: return cli_usage_error("unexpected argument '%s'", optarg);
        }
    }
    if (r) return r;
    if (c < 0) return a.status;
    if (!model || !tokens) return cli_usage_error("-m and --tokens are required");
    const int32_t *val = NULL;
    int64_t n_val = 0;
    int32_t *tok = read_heldout(tokens, seq, &val, &n_val);
    if (!tok) return 1;
    if (windows > n_val / seq) windows = n_val / seq;
    smdiff_model *m = NULL;
    smdiff_softmask *sm = NULL;
    smdiff_gate_stats st[16];
    int64_t k = 3;
    double s_ = 0, a_ = 0, b_ = 0;
    int32_t rc = smdiff_model_create(&m);
    if (!rc) smdiff_model_set_int(m, SMDIFF_MODEL_THREADS, threads);
    if (!rc) rc = smdiff_model_load_file(m, model);
    if (!rc) rc = smdiff_softmask_create_from_model(m, &sm);
    if (!rc) rc = smdiff_softmask_get_int(sm, SMDIFF_SM_TOPK, &k);
    if (!rc) rc = smdiff_softmask_get_double(sm, SMDIFF_SM_SCALE, &s_);
    if (!rc) rc = smdiff_softmask_get_double(sm, SMDIFF_SM_STEEPNESS, &a_);
    if (!rc) rc = smdiff_softmask_get_double(sm, SMDIFF_SM_CENTRE, &b_);
    if (!rc) rc = smdiff_eval_gate(m, sm, val, (size_t)windows, (size_t)seq, tv, (size_t)nt, (uint64_t)seed, st);
    int ret = 0;
    if (rc) {
        ret = cli_fail(model, rc, smdiff_last_error());
    } else {
        printf("# %s: soft-mask omega_s %g, omega_a %g, omega_b %g, k %lld; %lld windows x %lld tokens\n", model,
               s_, a_, b_, (long long)k, (long long)windows, (long long)seq);
        printf("#   t  masked  median H  top-1 right  true in top-%lld  mean lambda  lambda>0.01  lambda>0.1\n",
               (long long)k);
        for (size_t ti = 0; ti < nt; ti++)
            printf("%5.2f  %6zu  %8.3f  %11.3f  %14.3f  %11.4f  %11.3f  %10.3f\n", tv[ti], st[ti].n_masked,
                   st[ti].median_entropy, st[ti].top1, st[ti].topk, st[ti].mean_lambda, st[ti].lambda_above_001,
                   st[ti].lambda_above_01);
    }
    smdiff_softmask_free(sm);
    smdiff_model_free(m);
    free(tok);
    return ret;
}

int cmd_eval(int argc, char **argv) {
    static const cli_subcommand subs[] = {{"elbo", eval_elbo},     {"gonogo", eval_gonogo}, {"samples", eval_samples},
                                          {"infill", eval_infill}, {"gate", eval_gate}};
    return cli_dispatch(&cli_spec_eval, subs, sizeof subs / sizeof subs[0], argc, argv);
}
