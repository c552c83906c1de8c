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
            "usage: smdiff eval elbo -m MODEL [-m MODEL ...] --tokens FILE.i32 [options]\n"
            "       smdiff eval samples -m MODEL --ref AR.gguf --tokens FILE.i32 [options]\n"
            "       smdiff eval gate -m MODEL --tokens FILE.i32 [--seq L] [--windows N] [--t T1,T2,..]\n"
            "       smdiff eval gonogo -m MODEL [-m MODEL ...] --tokens FILE.i32 [--omega S,A,B ...] [--k K]\n"
            "       smdiff eval infill -m MODEL --tasks TASKS.jsonl -o OUT.jsonl [options]  (see --help there)\n"
            "\n"
            "All read the held-out part of FILE.i32: its last 1%% (at least one sequence),\n"
            "the split `smdiff train` validates on.\n"
            "\n"
            "elbo: the MDLM bound in nats/token and its perplexity, on consecutive windows\n"
            "with fixed seeded t and masks (every model sees the same noise).\n"
            "  --seq L            window length (default 128)\n"
            "  --windows N        windows (default 256; 0 = all that fit)\n"
            "  --draws D          noise draws per window, stratified in t (default 4)\n"
            "  --seed S           noise seed (default 1)\n"
            "  --two-pass         the soft-masking two-pass bound (as SM models train)\n"
            "  --threads T        threads (default: all CPUs)\n"
            "  --csv FILE         append model,bound,seq,windows,draws,seed,two_pass,nll,ppl,masked\n"
            "\n"
            "gonogo: the go/no-go of soft-masking for a base model. On the same windows, noise\n"
            "and pass-1 predictions as elbo: the single-pass bound and the two-pass bound with\n"
            "each omega setting, the difference (two-pass - single-pass) with its standard error\n"
            "over windows, and a verdict from the smallest omega_s: SM helps at first order when\n"
            "the difference is below -2 SE (the optimiser opens it), hurts above +2 SE (closes it).\n"
            "  --omega S,A,B      omega_s, omega_a, omega_b of one setting (repeatable; default\n"
            "                     0.01,6.66,-0.75 0.1,6.66,-0.75 0.5,6.66,-0.75)\n"
            "  --k K              top-k of the mixture (default: the model's, else 3)\n"
            "  --seq --windows --draws --seed --threads as elbo (defaults 128, 256, 4, 1)\n"
            "  --csv FILE         append model,omega_s,omega_a,omega_b,k,windows,draws,seed,\n"
            "                     single,two_pass,diff,se per setting\n"
            "\n"
            "samples: per seed, N held-out windows of LEN+1 tokens are the human text; sample\n"
            "i is generated after the first token of window i. The AR reference model gives\n"
            "the generative perplexity exp(mean NLL) and MAUVE's features.\n"
            "  --len LEN          generated tokens per sample (default 64)\n"
            "  --budgets A,B,..   denoising steps (default LEN/8,LEN/4,LEN/2,LEN)\n"
            "  --seeds S1,S2,..   seeds (default 1,2,3)\n"
            "  --n N              samples per seed and budget (default 50)\n"
            "  --strategy NAME    decoder strategy (default origin: MDLM's ancestral order)\n"
            "  --block-len N      semi-autoregressive blocks of N tokens (default 0: one block)\n"
            "  --temp T           sampling temperature (default 1)\n"
            "  --top-p P          nucleus (default 1 = off)\n"
            "  --softmask off|entropy|constant  (default: the model's)\n"
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
            "  --threads T        threads (default: all CPUs)\n"
            "\n"
            "gate: what soft-masking would feed back. Held-out windows are masked at each rate\n"
            "t (default 0.25,0.5,0.75); over the masked positions it prints the median\n"
            "predictive entropy, how often the true token is the top-1 or in the model's top-k,\n"
            "and the mean of lambda under the model's soft-mask with the share above 0.01, 0.1.\n"
            "  --seq L --windows N (default 128, 32) --seed S --threads T\n");
}

/* "8,16,32" -> non-negative integers into ints, or "0.25,0.5" -> reals
 * (exactly one of the two is given); returns the count, or -1 for a
 * malformed list or more than cap values */
static int parse_list(const char *s, long long *ints, double *reals, int cap) {
    int n = 0;
    while (s && *s) {
        char *end = NULL;
        if (n == cap) return -1;
        if (ints) ints[n] = strtoll(s, &end, 10);
        else reals[n] = strtod(s, &end);
        if (end == s || (ints && ints[n] < 0) || (*end && *end != ',')) return -1;
        n++;
        s = *end == ',' ? end + 1 : end;
    }
    return n;
}

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

/* ------------------------------------------------------------------ elbo */

static int eval_elbo(int argc, char **argv) {
    const char *models[16], *tokens = NULL, *csv = NULL;
    int n_models = 0, two_pass = 0;
    long long seq = 128, windows = 256, draws = 4, seed = 1, threads = 0;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
#define OPT(name) (!strcmp(a, name) && v && ++i)
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (OPT("-m")) {
            if (n_models == 16) {
                fprintf(stderr, "smdiff eval: at most 16 models\n");
                return 2;
            }
            models[n_models++] = v;
        } else if (OPT("--tokens")) tokens = v;
        else if (OPT("--csv")) csv = v;
        else if (OPT("--seq")) seq = atoll(v);
        else if (OPT("--windows")) windows = atoll(v);
        else if (OPT("--draws")) draws = atoll(v);
        else if (OPT("--seed")) seed = atoll(v);
        else if (OPT("--threads")) threads = atoll(v);
        else if (!strcmp(a, "--two-pass")) two_pass = 1;
        else {
            fprintf(stderr, "smdiff eval elbo: unknown or incomplete option '%s'\n\n", a);
            usage(stderr);
            return 2;
        }
#undef OPT
    }
    if (!n_models || !tokens || seq < 2 || windows < 0 || draws < 1 || seed < 0 || threads < 0) {
        fprintf(stderr, "smdiff eval elbo: need -m and --tokens; --seq >= 2, --draws >= 1, "
                        "--windows, --seed, --threads >= 0\n");
        return 2;
    }
    const int32_t *val = NULL;
    int64_t n_val = 0;
    int32_t *tok = read_heldout(tokens, seq, &val, &n_val);
    if (!tok) return 1;
    int64_t fit = n_val / seq;
    if (windows == 0 || windows > fit) windows = fit;
    FILE *out = NULL;
    if (csv) {
        out = fopen(csv, "a");
        if (!out) {
            fprintf(stderr, "smdiff: %s: %s\n", csv, strerror(errno));
            free(tok);
            return 1;
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
            fprintf(stderr, "\relbo %s: %lld/%lld windows  %.0fs left   ", models[k], (long long)(w + nw),
                    (long long)windows, el / done * ((double)windows - done));
        }
        fprintf(stderr, "\n");
        smdiff_model_free(m);
        if (ret) break;
        double nll = sum / (double)windows;
        printf("%s: %s bound %.4f nats/token, perplexity <= %.2f  (%lld windows x %lld tokens, "
               "%lld draws, seed %lld, %lld masked positions)\n",
               models[k], two_pass ? "two-pass" : "single-pass", nll, exp(nll), (long long)windows, seq,
               draws, seed, (long long)masked);
        if (out)
            fprintf(out, "%s,%s,%lld,%lld,%lld,%lld,%d,%.6f,%.4f,%lld\n", models[k],
                    two_pass ? "two-pass" : "single-pass", seq, (long long)windows, draws, seed, two_pass,
                    nll, exp(nll), (long long)masked);
    }
    if (out) fclose(out);
    free(tok);
    return ret;
}

/* ---------------------------------------------------------------- gonogo */

enum { GONOGO_MAX = 16 };

typedef struct gonogo_args {
    const char *models[16], *tokens, *csv;
    int n_models, n_omega;
    double omega[GONOGO_MAX][3];
    long long k, seq, windows, draws, seed, threads;
} gonogo_args;

static int parse_gonogo(int argc, char **argv, gonogo_args *a) {
    memset(a, 0, sizeof *a);
    a->seq = 128, a->windows = 256, a->draws = 4, a->seed = 1;
    for (int i = 2; i < argc; i++) {
        const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
#define OPT(name) (!strcmp(k, name) && v && ++i)
        if (!strcmp(k, "-h") || !strcmp(k, "--help")) {
            usage(stdout);
            return 1;
        } else if (OPT("-m")) {
            if (a->n_models == 16) {
                fprintf(stderr, "smdiff eval gonogo: at most 16 models\n");
                return -1;
            }
            a->models[a->n_models++] = v;
        } else if (OPT("--omega")) {
            char tail;
            double *w = a->omega[a->n_omega];
            if (a->n_omega == GONOGO_MAX || sscanf(v, "%lf,%lf,%lf%c", &w[0], &w[1], &w[2], &tail) != 3 ||
                !(w[0] > 0 && w[0] < 1 && w[1] > 0 && w[2] < 0)) {
                fprintf(stderr, "smdiff eval gonogo: --omega wants S,A,B with 0 < S < 1, A > 0, B < 0 "
                                "(at most %d), not %s\n", GONOGO_MAX, v);
                return -1;
            }
            a->n_omega++;
        } else if (OPT("--tokens")) a->tokens = v;
        else if (OPT("--csv")) a->csv = v;
        else if (OPT("--k")) a->k = atoll(v);
        else if (OPT("--seq")) a->seq = atoll(v);
        else if (OPT("--windows")) a->windows = atoll(v);
        else if (OPT("--draws")) a->draws = atoll(v);
        else if (OPT("--seed")) a->seed = atoll(v);
        else if (OPT("--threads")) a->threads = atoll(v);
        else {
            fprintf(stderr, "smdiff eval gonogo: unknown or incomplete option '%s'\n\n", k);
            usage(stderr);
            return -1;
        }
#undef OPT
    }
    if (!a->n_models || !a->tokens || a->seq < 2 || a->windows < 0 || a->draws < 1 || a->seed < 0 ||
        a->threads < 0 || a->k < 0 || a->k > 64) {
        fprintf(stderr, "smdiff eval gonogo: need -m and --tokens; --seq >= 2, --draws >= 1, 0 <= --k <= 64, "
                        "--windows, --seed, --threads >= 0\n");
        return -1;
    }
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
        fprintf(stderr, "\rgonogo %s: %lld/%lld windows  %.0fs left   ", path, (long long)(w + nw), (long long)windows,
                (now_s() - t0) / done * ((double)windows - done));
    }
    fprintf(stderr, "\n");
    int ret = rc ? cli_fail(path, rc, smdiff_last_error()) : 0;
    if (!ret) {
        double single = 0;
        for (int64_t i = 0; i < windows; i++) single += per[i * C] / (double)windows;
        printf("# %s: %lld windows x %lld tokens, %lld draws, seed %lld, k %lld; %zu masked positions; "
               "differences paired over windows\n", path, (long long)windows, a->seq, a->draws, a->seed,
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
                        a->omega[j][1], a->omega[j][2], (long long)k, (long long)windows, a->draws, a->seed, single,
                        two, d, se);
            if (j == 0 || a->omega[j][0] < a->omega[first][0]) first = j, dfirst = d, sefirst = se;
        }
        const char *verdict = dfirst < -2 * sefirst && dfirst < 0   ? "yes"
                              : dfirst > 2 * sefirst && dfirst > 0 ? "no (it hurts: the optimiser will close it)"
                                                                    : "undecided (|diff| < 2 SE: more windows)";
        printf("SM helps at first order: %s  [omega_s %g: two-pass - single-pass = %+.5f +- %.5f nats/token]\n",
               verdict, a->omega[first][0], dfirst, sefirst);
    }
    for (int j = 0; j < a->n_omega; j++) smdiff_softmask_free(sm[j]);
    smdiff_model_free(m);
    free(per);
    return ret;
}

static int eval_gonogo(int argc, char **argv) {
    gonogo_args a;
    int pr = parse_gonogo(argc, argv, &a);
    if (pr) return pr > 0 ? 0 : 2;
    const int32_t *val = NULL;
    int64_t n_val = 0;
    int32_t *tok = read_heldout(a.tokens, a.seq, &val, &n_val);
    if (!tok) return 1;
    int64_t windows = a.windows, fit = n_val / a.seq;
    if (windows == 0 || windows > fit) windows = fit;
    FILE *csv = a.csv ? fopen(a.csv, "a") : NULL;
    int ret = 0;
    if (a.csv && !csv) {
        fprintf(stderr, "smdiff: %s: %s\n", a.csv, strerror(errno));
        ret = 1;
    }
    for (int i = 0; !ret && i < a.n_models; i++) ret = gonogo_model(&a, a.models[i], val, windows, csv);
    if (csv && fclose(csv) && !ret) {
        fprintf(stderr, "smdiff: %s: %s\n", a.csv, strerror(errno));
        ret = 1;
    }
    free(tok);
    return ret;
}

/* --------------------------------------------------------------- samples */

typedef struct samples_args {
    const char *model, *ref, *tokens, *csv, *label, *strategy, *sm_mode, *dump;
    long long len, n, show, threads, block_len, prompt_id;
    long long budgets[16], seeds[16];
    int n_budgets, n_seeds;
    double temp, top_p, sm_lambda;
} samples_args;

static int parse_samples(int argc, char **argv, samples_args *a) {
    memset(a, 0, sizeof *a);
    a->len = 64, a->n = 50, a->temp = 1.0, a->top_p = 1.0, a->sm_lambda = -1, a->prompt_id = -1;
    a->strategy = "origin";
    a->n_seeds = 3, a->seeds[0] = 1, a->seeds[1] = 2, a->seeds[2] = 3;
    const char *budgets = NULL, *seeds = NULL;
    for (int i = 2; i < argc; i++) {
        const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
#define OPT(name) (!strcmp(k, name) && v && ++i)
        if (!strcmp(k, "-h") || !strcmp(k, "--help")) {
            usage(stdout);
            return 1;
        } else if (OPT("-m")) a->model = v;
        else if (OPT("--ref")) a->ref = v;
        else if (OPT("--tokens")) a->tokens = v;
        else if (OPT("--csv")) a->csv = v;
        else if (OPT("--label")) a->label = v;
        else if (OPT("--strategy")) a->strategy = v;
        else if (OPT("--softmask")) a->sm_mode = v;
        else if (OPT("--sm-lambda")) a->sm_lambda = atof(v);
        else if (OPT("--len")) a->len = atoll(v);
        else if (OPT("--n")) a->n = atoll(v);
        else if (OPT("--show")) a->show = atoll(v);
        else if (OPT("--threads")) a->threads = atoll(v);
        else if (OPT("--block-len")) a->block_len = atoll(v);
        else if (OPT("--dump")) a->dump = v;
        else if (OPT("--prompt-id")) a->prompt_id = atoll(v);
        else if (OPT("--temp")) a->temp = atof(v);
        else if (OPT("--top-p")) a->top_p = atof(v);
        else if (OPT("--budgets")) budgets = v;
        else if (OPT("--seeds")) seeds = v;
        else {
            fprintf(stderr, "smdiff eval samples: unknown or incomplete option '%s'\n\n", k);
            usage(stderr);
            return -1;
        }
#undef OPT
    }
    if (!a->model || !a->ref || !a->tokens) {
        fprintf(stderr, "smdiff eval samples: -m, --ref and --tokens are required\n");
        return -1;
    }
    if (a->len < 2 || a->n < 2 || a->show < 0 || a->threads < 0) {
        fprintf(stderr, "smdiff eval samples: need --len >= 2, --n >= 2, --show and --threads >= 0\n");
        return -1;
    }
    if (budgets) {
        a->n_budgets = parse_list(budgets, a->budgets, NULL, 16);
    } else {
        a->n_budgets = 0;
        for (long long d = 8; d >= 1; d /= 2)
            if (a->len / d >= 1) a->budgets[a->n_budgets++] = a->len / d;
    }
    if (seeds) a->n_seeds = parse_list(seeds, a->seeds, NULL, 16);
    if (a->n_budgets < 1 || a->n_seeds < 1) {
        fprintf(stderr, "smdiff eval samples: --budgets and --seeds want comma-separated numbers "
                        "(at most 16)\n");
        return -1;
    }
    for (int i = 0; i < a->n_budgets; i++)
        if (a->budgets[i] < 1 || a->budgets[i] > a->len) {
            fprintf(stderr, "smdiff eval samples: budget %lld outside 1..%lld\n", a->budgets[i], a->len);
            return -1;
        }
    if (!a->label) a->label = a->model;
    return 0;
}

/* Sampler with the configuration's strategy, temperature and soft-mask. */
static int32_t make_sampler(const samples_args *a, smdiff_model *m, smdiff_sampler **s_out,
                            smdiff_softmask **sm_out, const char **what) {
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
    if (!rc) *what = "soft-mask", rc = smdiff_softmask_create_from_model(m, &sm);
    if (!rc && a->sm_mode) {
        int64_t mode = !strcmp(a->sm_mode, "off")       ? SMDIFF_SM_OFF
                       : !strcmp(a->sm_mode, "entropy")  ? SMDIFF_SM_ENTROPY
                       : !strcmp(a->sm_mode, "constant") ? SMDIFF_SM_CONSTANT
                                                         : -1;
        *what = "--softmask (off, entropy or constant)";
        rc = mode < 0 ? SMDIFF_E_INVAL : smdiff_softmask_set_int(sm, SMDIFF_SM_MODE, mode);
    }
    if (!rc && a->sm_lambda >= 0)
        *what = "--sm-lambda", rc = smdiff_softmask_set_double(sm, SMDIFF_SM_CONSTANT_LAMBDA, a->sm_lambda);
    if (!rc) rc = smdiff_sampler_set_softmask(s, sm);
    if (rc) {
        smdiff_sampler_free(s);
        smdiff_softmask_free(sm);
        return rc;
    }
    *s_out = s, *sm_out = sm;
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
static int dump_samples(FILE *f, const smdiff_model *m, const samples_args *a, uint64_t seed, long long budget,
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
    if (pr) return pr > 0 ? 0 : 2;
    const int64_t S = a.len + 1; /* prompt token + generated */
    const int32_t *val = NULL;
    int64_t n_val = 0;
    int32_t *tok = read_heldout(a.tokens, S, &val, &n_val);
    if (!tok) return 1;
    smdiff_model *m = NULL, *ref = NULL;
    smdiff_sampler *s = NULL;
    smdiff_softmask *sm = NULL;
    FILE *csv = NULL, *dump = NULL;
    const int64_t N = a.n, nb = a.n_budgets, ns = a.n_seeds;
    int32_t *human = malloc(sizeof(int32_t) * (size_t)(N * S));
    int32_t *gen = malloc(sizeof(int32_t) * (size_t)(N * S));
    double *nll = malloc(sizeof(double) * (size_t)N);
    double *res = calloc((size_t)(3 * nb * ns), sizeof(double)); /* [metric][budget][seed] */
    float *hf = NULL, *gf = NULL;
    int ret = 1;
    const char *what = "out of memory";
    int32_t rc = (!human || !gen || !nll || !res) ? SMDIFF_E_NOMEM : smdiff_model_create(&m);
    if (!rc) {
        smdiff_model_set_int(m, SMDIFF_MODEL_THREADS, a.threads);
        what = a.model, rc = smdiff_model_load_file(m, a.model);
        if (rc) {
            ret = cli_fail(a.model, rc, smdiff_last_error());
            goto done;
        }
    }
    if (!rc) rc = make_sampler(&a, m, &s, &sm, &what);
    int64_t vocab = 0, d = 0;
    if (!rc) smdiff_model_property(m, SMDIFF_PROP_VOCAB_SIZE, &vocab);
    if (!rc && a.prompt_id >= vocab) {
        fprintf(stderr, "smdiff eval samples: --prompt-id %lld is outside the vocabulary of %lld\n", a.prompt_id,
                (long long)vocab);
        ret = 2;
        goto done;
    }
    if (rc) {
        ret = cli_fail(what, rc, smdiff_last_error());
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
    if (a.csv && !(csv = fopen(a.csv, "a"))) {
        fprintf(stderr, "smdiff: %s: %s\n", a.csv, strerror(errno));
        goto done;
    }
    if (a.dump && !(dump = fopen(a.dump, "w"))) {
        fprintf(stderr, "smdiff: %s: %s\n", a.dump, strerror(errno));
        goto done;
    }
    double t0 = now_s(), work_done = 0, work_total = 0;
    for (int64_t b = 0; b < nb; b++) work_total += (double)(a.budgets[b] * N * ns);
    printf("# %s: %lld samples of %lld tokens per seed and budget, strategy %s, block %lld, "
           "temperature %g, top-p %g, soft-mask %s\n",
           a.label, (long long)N, a.len, a.strategy, a.block_len ? a.block_len : a.len, a.temp, a.top_p,
           a.sm_mode ? a.sm_mode : "(model's)");
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
            what = "--budgets";
            rc = smdiff_sampler_set_int(s, SMDIFF_SAMPLER_STEPS, a.budgets[b]);
            for (int64_t i = 0; !rc && i < N; i++) {
                size_t n_out = 0;
                what = "generate";
                rc = smdiff_sampler_set_int(s, SMDIFF_SAMPLER_SEED, (int64_t)(seed * 1000003u + (uint64_t)i));
                gen[i * S] = a.prompt_id >= 0 ? (int32_t)a.prompt_id : human[i * S];
                if (!rc) rc = smdiff_generate_tokens(s, m, gen + i * S, 1, gen + i * S + 1, (size_t)a.len, &n_out);
                if (!rc && n_out != (size_t)a.len) rc = SMDIFF_E_INTERNAL;
                work_done += (double)a.budgets[b];
                double el = now_s() - t0;
                fprintf(stderr, "\r%s seed %llu budget %lld: sample %lld/%lld  %.0fs left   ", a.label,
                        (unsigned long long)seed, a.budgets[b], (long long)(i + 1), (long long)N,
                        el / work_done * (work_total - work_done));
            }
            if (rc) {
                fprintf(stderr, "\n");
                ret = cli_fail(what, rc, smdiff_sampler_last_error(s));
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
            if (rc) {
                fprintf(stderr, "\n");
                ret = cli_fail(what, rc, smdiff_last_error());
                goto done;
            }
            double *r = res + (b * ns + si);
            r[0] = exp(gn / N), r[nb * ns] = ge / N, r[2 * nb * ns] = mauve;
            fprintf(stderr, "\n");
            printf("%s seed %llu steps %lld: gen ppl %.2f  entropy %.3f  MAUVE %.4f  (n %lld)\n", a.label,
                   (unsigned long long)seed, a.budgets[b], r[0], r[nb * ns], mauve, (long long)N);
            if (csv)
                fprintf(csv, "%s,%lld,%llu,%lld,%.4f,%.5f,%.5f\n", a.label, a.budgets[b],
                        (unsigned long long)seed, (long long)N, r[0], r[nb * ns], mauve);
            for (int64_t i = 0; si == 0 && i < a.show && i < N; i++) print_text(m, gen + i * S, S);
            fflush(stdout);
            if (dump && dump_samples(dump, m, &a, seed, a.budgets[b], gen, nll)) {
                fprintf(stderr, "smdiff: %s: write error\n", a.dump);
                goto done;
            }
        }
    }
    printf("# %s summary, mean +- sd over %lld seeds of %lld samples each\n", a.label, (long long)ns,
           (long long)N);
    for (int64_t b = 0; b < nb; b++) {
        double mu[3], sd[3];
        for (int k = 0; k < 3; k++) mean_sd(res + k * nb * ns + b * ns, (int)ns, &mu[k], &sd[k]);
        printf("%s steps %lld: gen ppl %.2f +- %.2f  entropy %.3f +- %.3f  MAUVE %.4f +- %.4f\n", a.label,
               a.budgets[b], mu[0], sd[0], mu[1], sd[1], mu[2], sd[2]);
    }
    ret = 0;
done:
    if (csv) fclose(csv);
    if (dump && fclose(dump) && !ret) {
        fprintf(stderr, "smdiff: %s: %s\n", a.dump, strerror(errno));
        ret = 1;
    }
    smdiff_sampler_free(s);
    smdiff_softmask_free(sm);
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
    const char *model = NULL, *tokens = NULL, *ts = "0.25,0.5,0.75";
    long long seq = 128, windows = 32, seed = 1, threads = 0;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
#define OPT(name) (!strcmp(a, name) && v && ++i)
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (OPT("-m")) model = v;
        else if (OPT("--tokens")) tokens = v;
        else if (OPT("--seq")) seq = atoll(v);
        else if (OPT("--windows")) windows = atoll(v);
        else if (OPT("--seed")) seed = atoll(v);
        else if (OPT("--threads")) threads = atoll(v);
        else if (OPT("--t")) ts = v;
        else {
            fprintf(stderr, "smdiff eval gate: unknown or incomplete option '%s'\n\n", a);
            usage(stderr);
            return 2;
        }
#undef OPT
    }
    double tv[16];
    int nt = parse_list(ts, NULL, tv, 16);
    for (int i = 0; i < nt; i++)
        if (!(tv[i] > 0 && tv[i] <= 1)) nt = -1;
    if (!model || !tokens || seq < 2 || windows < 1 || seed < 0 || threads < 0 || nt < 1) {
        fprintf(stderr, "smdiff eval gate: need -m, --tokens, --seq >= 2, --windows >= 1, --t in (0,1] list\n");
        return 2;
    }
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
               s_, a_, b_, (long long)k, windows, seq);
        printf("#   t  masked  median H  top-1 right  true in top-%lld  mean lambda  lambda>0.01  lambda>0.1\n",
               (long long)k);
        for (int ti = 0; ti < nt; ti++)
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
    if (argc >= 2 && !strcmp(argv[1], "elbo")) return eval_elbo(argc, argv);
    if (argc >= 2 && !strcmp(argv[1], "samples")) return eval_samples(argc, argv);
    if (argc >= 2 && !strcmp(argv[1], "gate")) return eval_gate(argc, argv);
    if (argc >= 2 && !strcmp(argv[1], "gonogo")) return eval_gonogo(argc, argv);
    if (argc >= 2 && !strcmp(argv[1], "infill")) return eval_infill(argc, argv);
    if (argc >= 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
        usage(stdout);
        return 0;
    }
    usage(stderr);
    return 2;
}
