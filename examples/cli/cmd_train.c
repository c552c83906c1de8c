/* cmd_train.c -- `smdiff train`: train or fine-tune a dream/llada model on a
 * token file with the MDLM objective (soft-masking two-pass by default) or
 * the AR objective, with checkpoints every N steps, exact --resume, a
 * progress line, a CSV log and an SVG loss curve. */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: smdiff train --tokens FILE.i32 --out MODEL.gguf\n"
            "                    (--init MODEL.gguf | --arch dream|llada --vocab N --embd D --layers N\n"
            "                     --heads H [--kv-heads K] --ff F --mask-id ID [--eos-id ID] [--tokenizer GGUF])\n"
            "                    [options]\n"
            "\n"
            "       smdiff train --corpus PATH [--corpus PATH ...] --tokens FILE.i32 ... (as above)\n"
            "\n"
            "FILE.i32 holds little-endian int32 token ids, documents separated by EOS.\n"
            "With --corpus, every text file under PATH (folders walked in name order) is\n"
            "tokenized once into FILE.i32 with the tokenizer of --init or --tokenizer, EOS\n"
            "(--eos-id, else the model's) after each document, then training starts.\n"
            "The last 1%% (at least one sequence) is held out for validation.\n"
            "\n"
            "options:\n"
            "  --steps N          total optimizer steps (default 1000)\n"
            "  --batch B          sequences per step (default 8)\n"
            "  --seq L            tokens per sequence (default 128)\n"
            "  --lr X             peak learning rate (default 3e-4)\n"
            "  --sm-lr X          learning rate of the soft-mask parameters (default 1e-2)\n"
            "  --warmup N         linear warm-up steps (default 0)\n"
            "  --cosine           cosine decay to 10%% of the peak at the last step\n"
            "  --no-sm            plain MDLM (no soft-masking two-pass training)\n"
            "  --sm-prob P        fraction of batches trained with soft-masking (default 0.8)\n"
            "  --sm-init S,A,B    start omega_s, omega_a, omega_b here instead of the file's values\n"
            "                     (new models: the paper's 1e-6,6.66,-0.75)\n"
            "  --sm-k K           top-k of the soft-mask mixture (default 3; the paper's 1 for code);\n"
            "                     give it again with --resume\n"
            "  --ar               autoregressive objective (causal reference model)\n"
            "  --shift-logits on|off  row i predicts position i+1 (on, Dream) or i (off); default:\n"
            "                     the file's, else on for dream, off for llada. --init AR.gguf\n"
            "                     --shift-logits on adapts an --ar model into a diffusion model\n"
            "  --seed S           random seed (default 1)\n"
            "  --threads T        threads (default: all CPUs)\n"
            "  --save-every N     checkpoint (model, training state, log, curve) every N steps (default 100)\n"
            "  --eval-every N     validation loss every N steps (default: at checkpoints)\n"
            "  --f16              write F16 matrices in the model file (state stays exact)\n"
            "  --resume           continue from MODEL.gguf.state (same options, data and threads)\n"
            "  --keep-every N     also keep the model of every N-th step as MODEL.stepN.gguf\n"
            "  --iso-compute-of RUN.gguf.csv\n"
            "                     train as many steps as match the compute (plain-step\n"
            "                     equivalents, the last row's `compute`) of that run's log;\n"
            "                     replaces --steps (the binary arm of an SM run)\n"
            "\n"
            "Writes MODEL.gguf (loadable by smdiff generate), MODEL.gguf.state (exact resume),\n"
            "MODEL.gguf.csv and MODEL.gguf.svg. The CSV has one row per step: step, loss,\n"
            "val_loss, tokens_per_s, elapsed_s, omega_s, omega_a, omega_b (the soft-mask\n"
            "parameters after the step), grad_r_s (the gradient of the raw omega_s that AdamW\n"
            "saw), sm (1 if the step used the SM two-pass) and compute (cumulative matrix\n"
            "FLOPs of the passes run, in nominal plain steps; docs/TRAINING.md).\n");
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static const char LOG_HEADER[] =
    "step,loss,val_loss,tokens_per_s,elapsed_s,omega_s,omega_a,omega_b,grad_r_s,sm,compute\n";

/* Keep the rows up to `step` of the CSV (a resumed run redoes the steps
 * after its checkpoint) under the current header (a log of an older
 * version keeps its shorter rows); *elapsed gets the last kept row's
 * elapsed_s, so a resumed run's clock continues. Returns 0 or -1. */
static int trim_log(const char *path, int64_t step, double *elapsed) {
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    char *kept = NULL;
    size_t n = 0, cap = 0;
    char line[1024];
    while (fgets(line, sizeof line, f)) {
        long long s = -1;
        double loss, tps, el;
        char val[64];
        if (!strncmp(line, "step,", 5)) snprintf(line, sizeof line, "%s", LOG_HEADER);
        else if (sscanf(line, "%lld,", &s) == 1 && s > step) continue;
        if (s >= 0 && sscanf(line, "%lld,%lf,%63[^,],%lf,%lf", &s, &loss, val, &tps, &el) == 5) *elapsed = el;
        else if (s >= 0 && sscanf(line, "%lld,%lf,,%lf,%lf", &s, &loss, &tps, &el) == 4) *elapsed = el;
        size_t len = strlen(line);
        if (n + len + 1 > cap) {
            cap = (n + len + 1) * 2;
            char *k = realloc(kept, cap);
            if (!k) {
                free(kept);
                fclose(f);
                return -1;
            }
            kept = k;
        }
        memcpy(kept + n, line, len);
        n += len;
    }
    fclose(f);
    f = fopen(path, "w");
    if (!f) {
        free(kept);
        return -1;
    }
    if (n) fwrite(kept, 1, n, f);
    fclose(f);
    free(kept);
    return 0;
}

/* Loss curve from the CSV: training loss (line) and validation loss (dots). */
static void write_svg(const char *csv, const char *svg) {
    FILE *f = fopen(csv, "r");
    if (!f) return;
    size_t cap = 1024, n = 0;
    double *st = malloc(cap * sizeof *st), *lo = malloc(cap * sizeof *lo), *va = malloc(cap * sizeof *va);
    char line[512];
    while (st && lo && va && fgets(line, sizeof line, f)) {
        long long s;
        double l, v = NAN;
        char vbuf[64] = "";
        if (sscanf(line, "%lld,%lf,%63[^,]", &s, &l, vbuf) < 2) continue;
        if (vbuf[0]) v = atof(vbuf);
        if (n == cap) {
            cap *= 2;
            double *a = realloc(st, cap * sizeof *st), *b = realloc(lo, cap * sizeof *lo),
                   *c = realloc(va, cap * sizeof *va);
            if (a) st = a;
            if (b) lo = b;
            if (c) va = c;
            if (!a || !b || !c) break;
        }
        st[n] = (double)s, lo[n] = l, va[n] = v, n++;
    }
    fclose(f);
    FILE *o = n ? fopen(svg, "w") : NULL;
    if (o) {
        double x0 = st[0], x1 = st[n - 1] > x0 ? st[n - 1] : x0 + 1, y0 = 1e300, y1 = -1e300;
        for (size_t i = 0; i < n; i++) {
            if (isfinite(lo[i])) y0 = fmin(y0, lo[i]), y1 = fmax(y1, lo[i]);
            if (isfinite(va[i])) y0 = fmin(y0, va[i]), y1 = fmax(y1, va[i]);
        }
        if (!(y1 > y0)) y1 = y0 + 1;
        const double W = 800, H = 400, M = 50;
#define PX(x) (M + ((x) - x0) / (x1 - x0) * (W - 2 * M))
#define PY(y) (H - M - ((y) - y0) / (y1 - y0) * (H - 2 * M))
        fprintf(o, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
                   "font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
                W, H);
        fprintf(o, "<text x=\"%.0f\" y=\"20\">loss (blue: training, red: validation) over steps %.0f..%.0f</text>\n", M, x0, x1);
        fprintf(o, "<text x=\"5\" y=\"%.0f\">%.3f</text><text x=\"5\" y=\"%.0f\">%.3f</text>\n", PY(y1) + 4, y1,
                PY(y0) + 4, y0);
        fprintf(o, "<polyline fill=\"none\" stroke=\"#2060c0\" stroke-width=\"1\" points=\"");
        for (size_t i = 0; i < n; i++)
            if (isfinite(lo[i])) fprintf(o, "%.1f,%.1f ", PX(st[i]), PY(lo[i]));
        fprintf(o, "\"/>\n");
        for (size_t i = 0; i < n; i++)
            if (isfinite(va[i])) fprintf(o, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"#c02020\"/>\n", PX(st[i]), PY(va[i]));
        fprintf(o, "</svg>\n");
#undef PX
#undef PY
        fclose(o);
    }
    free(st), free(lo), free(va);
}

typedef struct args args;
static int make_tokens(const args *a);

typedef struct args {
    const char *corpus[64];
    int n_corpus;
    const char *tokens, *out, *init, *arch, *tokenizer, *sm_init, *shift, *iso_of;
    long long vocab, embd, layers, heads, kv_heads, ff, mask_id, eos_id;
    long long steps, batch, seq, warmup, seed, threads, save_every, eval_every, kill_after, keep_every, sm_k;
    double lr, sm_lr, sm_prob;
    int cosine, no_sm, ar, f16, resume;
} args;

static int parse(int argc, char **argv, args *a) {
    memset(a, 0, sizeof *a);
    a->kv_heads = -1, a->mask_id = -1, a->eos_id = -1;
    a->steps = -1, a->batch = 8, a->seq = 128, a->seed = 1, a->save_every = 100;
    a->lr = 3e-4, a->sm_lr = 1e-2, a->sm_prob = 0.8;
    for (int i = 1; i < argc; i++) {
        const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        struct { const char *name; const char **s; long long *n; double *d; } opt[] = {
            {"--tokens", &a->tokens, NULL, NULL}, {"--out", &a->out, NULL, NULL},
            {"--init", &a->init, NULL, NULL}, {"--arch", &a->arch, NULL, NULL},
            {"--tokenizer", &a->tokenizer, NULL, NULL}, {"--sm-init", &a->sm_init, NULL, NULL},
            {"--shift-logits", &a->shift, NULL, NULL}, {"--vocab", NULL, &a->vocab, NULL},
            {"--iso-compute-of", &a->iso_of, NULL, NULL}, {"--keep-every", NULL, &a->keep_every, NULL},
            {"--sm-k", NULL, &a->sm_k, NULL},
            {"--embd", NULL, &a->embd, NULL}, {"--layers", NULL, &a->layers, NULL},
            {"--heads", NULL, &a->heads, NULL}, {"--kv-heads", NULL, &a->kv_heads, NULL},
            {"--ff", NULL, &a->ff, NULL}, {"--mask-id", NULL, &a->mask_id, NULL},
            {"--eos-id", NULL, &a->eos_id, NULL}, {"--steps", NULL, &a->steps, NULL},
            {"--batch", NULL, &a->batch, NULL}, {"--seq", NULL, &a->seq, NULL},
            {"--warmup", NULL, &a->warmup, NULL}, {"--seed", NULL, &a->seed, NULL},
            {"--threads", NULL, &a->threads, NULL}, {"--save-every", NULL, &a->save_every, NULL},
            {"--eval-every", NULL, &a->eval_every, NULL}, {"--kill-after", NULL, &a->kill_after, NULL},
            {"--lr", NULL, NULL, &a->lr}, {"--sm-lr", NULL, NULL, &a->sm_lr},
            {"--sm-prob", NULL, NULL, &a->sm_prob},
        };
        struct { const char *name; int *flag; } flags[] = {
            {"--cosine", &a->cosine}, {"--no-sm", &a->no_sm}, {"--ar", &a->ar},
            {"--f16", &a->f16}, {"--resume", &a->resume},
        };
        int done = 0;
        if (!strcmp(k, "--corpus")) {
            if (!v || a->n_corpus == 64) {
                fprintf(stderr, "smdiff train: --corpus needs a path (at most 64)\n");
                return -1;
            }
            a->corpus[a->n_corpus++] = v;
            i++;
            continue;
        }
        for (size_t j = 0; !done && j < sizeof flags / sizeof flags[0]; j++)
            if (!strcmp(k, flags[j].name)) *flags[j].flag = 1, done = 1;
        for (size_t j = 0; !done && j < sizeof opt / sizeof opt[0]; j++) {
            if (strcmp(k, opt[j].name)) continue;
            if (!v) {
                fprintf(stderr, "smdiff train: %s needs a value\n", k);
                return -1;
            }
            char *end = NULL;
            if (opt[j].s) *opt[j].s = v;
            else if (opt[j].n) *opt[j].n = strtoll(v, &end, 10);
            else *opt[j].d = strtod(v, &end);
            if (end && *end) {
                fprintf(stderr, "smdiff train: %s: not a number: %s\n", k, v);
                return -1;
            }
            i++, done = 1;
        }
        if (!done) {
            fprintf(stderr, "smdiff train: unknown argument %s\n", k);
            return -1;
        }
    }
    if (a->shift && strcmp(a->shift, "on") && strcmp(a->shift, "off")) {
        fprintf(stderr, "smdiff train: --shift-logits wants on or off, not %s\n", a->shift);
        return -1;
    }
    if (!a->tokens || !a->out || (!a->init && !a->arch)) {
        fprintf(stderr, "smdiff train: --tokens, --out and --init or --arch are required\n");
        return -1;
    }
    if (a->iso_of && a->steps != -1) {
        fprintf(stderr, "smdiff train: --iso-compute-of sets the number of steps: leave out --steps\n");
        return -1;
    }
    if (a->steps == -1) a->steps = 1000;
    if (a->steps < 1 || a->save_every < 1 || a->eval_every < 0 || a->keep_every < 0) {
        fprintf(stderr, "smdiff train: --steps and --save-every must be >= 1, --keep-every >= 0\n");
        return -1;
    }
    return 0;
}

/* --iso-compute-of: the last `compute` of a training log (plain-step
 * equivalents), rounded to whole steps; -1 after printing why not. */
static long long iso_compute_steps(const char *csv) {
    FILE *f = fopen(csv, "r");
    if (!f) {
        fprintf(stderr, "smdiff train: --iso-compute-of %s: %s\n", csv, strerror(errno));
        return -1;
    }
    char line[1024];
    int col = -1;
    double compute = -1;
    long long step = 0;
    while (fgets(line, sizeof line, f)) {
        if (col < 0) { /* the header names the column */
            char *save = NULL;
            int i = 0;
            for (char *fl = strtok_r(line, ",\n", &save); fl; fl = strtok_r(NULL, ",\n", &save), i++)
                if (!strcmp(fl, "compute")) col = i;
            if (col < 0) break;
            continue;
        }
        const char *p = line; /* fields may be empty (val_loss): count commas */
        for (int i = 0; i < col && p; i++) p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL;
        if (p && *p && *p != '\n') compute = atof(p), step = atoll(line);
    }
    fclose(f);
    if (col < 0 || compute < 0) {
        fprintf(stderr, "smdiff train: --iso-compute-of %s: no `compute` column with a value "
                        "(a log written by this version of smdiff train)\n", csv);
        return -1;
    }
    long long n = llround(compute);
    fprintf(stderr, "smdiff train: %s ran %lld steps costing %.2f plain steps: training %lld steps\n", csv, step,
            compute, n < 1 ? 1 : n);
    return n < 1 ? 1 : n;
}

/* MODEL.stepN.gguf beside MODEL.gguf (--keep-every) */
static void kept_path(char *buf, size_t cap, const char *out, long long step) {
    size_t n = strlen(out);
    int gguf = n >= 5 && !strcmp(out + n - 5, ".gguf");
    snprintf(buf, cap, "%.*s.step%lld.gguf", (int)(gguf ? n - 5 : n), out, step);
}

/* --sm-init / --sm-k: the starting soft-mask, from --sm-init, else the
 * --init file's (or the paper's for a new model), with k from --sm-k.
 * Returns 2 for a malformed --sm-init (printed), else 0 with *rc set. */
static int starting_softmask(const args *a, smdiff_trainer *t, int32_t *rc) {
    double sm[3];
    char tail;
    if (a->sm_init && sscanf(a->sm_init, "%lf,%lf,%lf%c", &sm[0], &sm[1], &sm[2], &tail) != 3) {
        fprintf(stderr, "smdiff train: --sm-init wants SCALE,STEEPNESS,CENTRE, e.g. 0.5,6.66,-0.75\n");
        return 2;
    }
    smdiff_softmask *s = NULL;
    smdiff_model *m = NULL;
    if (a->init && !a->sm_init) { /* keep the file's omega, change k */
        *rc = smdiff_model_create(&m);
        if (!*rc) *rc = smdiff_model_load_file(m, a->init);
        if (!*rc) *rc = smdiff_softmask_create_from_model(m, &s);
        smdiff_model_free(m);
    } else {
        *rc = smdiff_softmask_create(&s);
    }
    if (!*rc && a->sm_init) *rc = smdiff_softmask_set_double(s, SMDIFF_SM_SCALE, sm[0]);
    if (!*rc && a->sm_init) *rc = smdiff_softmask_set_double(s, SMDIFF_SM_STEEPNESS, sm[1]);
    if (!*rc && a->sm_init) *rc = smdiff_softmask_set_double(s, SMDIFF_SM_CENTRE, sm[2]);
    if (!*rc && a->sm_k) *rc = smdiff_softmask_set_int(s, SMDIFF_SM_TOPK, a->sm_k);
    if (!*rc) *rc = smdiff_trainer_set_softmask(t, s);
    smdiff_softmask_free(s);
    return 0;
}

/* --corpus: tokenize once with the tokenizer of --init or --tokenizer. */
static int make_tokens(const args *a) {
    const char *src = a->init ? a->init : a->tokenizer;
    if (!src) {
        fprintf(stderr, "smdiff train: --corpus needs --init or --tokenizer for its tokenizer\n");
        return 1;
    }
    smdiff_model *m = NULL;
    int32_t rc = smdiff_model_create(&m);
    if (rc) return cli_fail("create model", rc, smdiff_last_error());
    /* --init is a whole model; --tokenizer may be a vocabulary-only GGUF or a
     * Hugging Face tokenizer folder. */
    rc = a->init ? smdiff_model_load_file(m, src) : smdiff_model_load_tokenizer(m, src);
    if (rc) {
        int r = cli_fail(src, rc, smdiff_last_error());
        smdiff_model_free(m);
        return r;
    }
    int64_t eos = a->eos_id;
    if (eos < 0 && (rc = smdiff_model_property(m, SMDIFF_PROP_EOS_ID, &eos)) == SMDIFF_OK && eos < 0) {
        fprintf(stderr, "smdiff train: %s has no EOS token: give --eos-id\n", src);
        smdiff_model_free(m);
        return 1;
    }
    size_t n = 0, docs = 0;
    if (!rc) rc = smdiff_train_tokenize_corpus(m, a->corpus, (size_t)a->n_corpus, (int32_t)eos, a->tokens, &n, &docs);
    smdiff_model_free(m);
    if (rc) return cli_fail("tokenizing the corpus", rc, smdiff_last_error());
    fprintf(stderr, "smdiff train: %lld documents, %lld tokens -> %s\n", (long long)docs, (long long)n, a->tokens);
    return 0;
}

int cmd_train(int argc, char **argv) {
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage(stdout);
            return 0;
        }
    args a;
    if (parse(argc, argv, &a)) {
        usage(stderr);
        return 2;
    }
    if (a.iso_of && (a.steps = iso_compute_steps(a.iso_of)) < 0) return 1;
    if (a.n_corpus && !a.resume && make_tokens(&a)) return 1;
    int64_t n = 0;
    int32_t *tok = cli_read_tokens(a.tokens, &n);
    if (!tok) return 1;
    int64_t n_val = cli_val_tokens(n, a.seq);
    if (n - n_val < a.seq) {
        fprintf(stderr, "smdiff train: %s has %lld tokens: too few for a training and a validation "
                        "sequence of %lld (corpus too small)\n", a.tokens, (long long)n, a.seq);
        free(tok);
        return 1;
    }
    char state[1024], csv[1024], svg[1024];
    snprintf(state, sizeof state, "%s.state", a.out);
    snprintf(csv, sizeof csv, "%s.csv", a.out);
    snprintf(svg, sizeof svg, "%s.svg", a.out);

    smdiff_trainer *t = NULL;
    int32_t rc = smdiff_trainer_create(&t);
    if (rc) {
        free(tok);
        return cli_fail("create trainer", rc, smdiff_last_error());
    }
    const struct { int32_t key; long long v; } ints[] = {
        {SMDIFF_TRAIN_BATCH, a.batch}, {SMDIFF_TRAIN_SEQ_LEN, a.seq}, {SMDIFF_TRAIN_SEED, a.seed},
        {SMDIFF_TRAIN_OBJECTIVE, a.ar ? SMDIFF_TRAIN_AR : SMDIFF_TRAIN_MDLM},
        {SMDIFF_TRAIN_SM, !a.no_sm && !a.ar}, {SMDIFF_TRAIN_WARMUP, a.warmup},
        {SMDIFF_TRAIN_COSINE_STEPS, a.cosine ? a.steps : 0}, {SMDIFF_TRAIN_THREADS, a.threads},
        {SMDIFF_TRAIN_SHIFT_LOGITS, a.shift ? !strcmp(a.shift, "on") : -1}};
    /* the shape of a new model (an --init file has its own) */
    const struct { int32_t key; long long v; const char *flag; } shape[] = {
        {SMDIFF_TRAIN_N_VOCAB, a.vocab, "--vocab"}, {SMDIFF_TRAIN_N_EMBD, a.embd, "--embd"},
        {SMDIFF_TRAIN_N_LAYER, a.layers, "--layers"}, {SMDIFF_TRAIN_N_HEAD, a.heads, "--heads"},
        {SMDIFF_TRAIN_N_HEAD_KV, a.kv_heads > 0 ? a.kv_heads : a.heads, "--kv-heads"},
        {SMDIFF_TRAIN_N_FF, a.ff, "--ff"}, {SMDIFF_TRAIN_MASK_ID, a.mask_id, "--mask-id"},
        {SMDIFF_TRAIN_EOS_ID, a.eos_id, "--eos-id"}};
    const struct { int32_t key; double v; } dbls[] = {
        {SMDIFF_TRAIN_LR, a.lr}, {SMDIFF_TRAIN_SM_LR, a.sm_lr}, {SMDIFF_TRAIN_SM_PROB, a.sm_prob}};
    const char *what = "options";
    for (size_t i = 0; !rc && i < sizeof ints / sizeof ints[0]; i++) rc = smdiff_trainer_set_int(t, ints[i].key, ints[i].v);
    for (size_t i = 0; !rc && i < sizeof dbls / sizeof dbls[0]; i++) rc = smdiff_trainer_set_double(t, dbls[i].key, dbls[i].v);
    for (size_t i = 0; !rc && !a.init && i < sizeof shape / sizeof shape[0]; i++)
        what = shape[i].flag, rc = smdiff_trainer_set_int(t, shape[i].key, shape[i].v);
    if (!rc && (a.sm_init || a.sm_k)) {
        what = a.sm_init ? "--sm-init" : "--sm-k";
        int r = starting_softmask(&a, t, &rc);
        if (r == 2) {
            smdiff_trainer_free(t);
            free(tok);
            return 2;
        }
    }
    if (!rc && a.init) {
        what = a.init;
        rc = smdiff_trainer_init_from_file(t, a.init);
    } else if (!rc) {
        what = "new model";
        rc = smdiff_trainer_init_new(t, a.arch);
    }
    if (!rc && a.tokenizer) what = a.tokenizer, rc = smdiff_trainer_set_tokenizer_file(t, a.tokenizer);
    if (!rc) what = a.tokens, rc = smdiff_trainer_set_data(t, tok, n - n_val, tok + (n - n_val), n_val);
    int64_t step = 0;
    double elapsed0 = 0;
    if (!rc && a.resume) {
        what = state;
        rc = smdiff_trainer_resume(t, state);
        if (!rc) smdiff_trainer_steps(t, &step);
        if (!rc && trim_log(csv, step, &elapsed0)) rc = SMDIFF_E_IO, what = csv;
    }
    if (rc) {
        int r = cli_fail(what, rc, smdiff_last_error());
        smdiff_trainer_free(t);
        free(tok);
        return r;
    }
    FILE *log = fopen(csv, a.resume ? "a" : "w");
    if (!log) {
        fprintf(stderr, "smdiff: %s: %s\n", csv, strerror(errno));
        smdiff_trainer_free(t);
        free(tok);
        return 1;
    }
    if (!a.resume) fputs(LOG_HEADER, log);
    fflush(log);
    if (a.resume) fprintf(stderr, "smdiff train: resumed at step %lld from %s\n", (long long)step, state);
    double t0 = now() - elapsed0, last = now();
    int64_t start = step, last_good = step, eval_every = a.eval_every ? a.eval_every : a.save_every;
    int ret = 0;
    while (step < a.steps) {
        double loss;
        rc = smdiff_trainer_step(t, &loss);
        if (rc) {
            cli_fail("training step", rc, smdiff_trainer_last_error(t));
            fprintf(stderr, "smdiff train: stopped; the last good checkpoint (step %lld) is kept in %s\n",
                    (long long)last_good, a.out);
            ret = 1;
            break;
        }
        step++;
        double tnow = now(), tps = (double)a.batch * a.seq / (tnow - last);
        last = tnow;
        double val = NAN;
        if (step % eval_every == 0 || step == a.steps) {
            rc = smdiff_trainer_eval(t, 4, &val);
            if (rc) val = NAN;
        }
        smdiff_train_stats st;
        smdiff_trainer_stats(t, &st);
        char vcol[32] = "";
        if (!isnan(val)) snprintf(vcol, sizeof vcol, "%.17g", val);
        fprintf(log, "%lld,%.17g,%s,%.1f,%.3f,%.9g,%.9g,%.9g,%.9g,%d,%.6f\n", (long long)step, loss, vcol, tps,
                tnow - t0, st.omega_s, st.omega_a, st.omega_b, st.grad_r_s, st.last_step_sm, st.compute);
        fflush(log);
        double eta = (tnow - t0 - elapsed0) / (double)(step - start) * (double)(a.steps - step);
        if (step % 10 == 0 || step == a.steps || !isnan(val)) {
            char vs[32] = "";
            if (!isnan(val)) snprintf(vs, sizeof vs, "  val %.4f", val);
            fprintf(stderr, "step %lld/%lld  loss %.4f%s  %.0f tok/s  %.0fs left\n", (long long)step,
                    (long long)a.steps, loss, vs, tps, eta);
        }
        if (step % a.save_every == 0 || step == a.steps) {
            rc = smdiff_trainer_save(t, a.out, a.f16, state);
            if (rc) {
                cli_fail(a.out, rc, smdiff_trainer_last_error(t));
                ret = 1;
                break;
            }
            write_svg(csv, svg);
            last_good = step;
        }
        if (a.keep_every > 0 && step % a.keep_every == 0) {
            char kp[1100];
            kept_path(kp, sizeof kp, a.out, (long long)step);
            rc = smdiff_trainer_save(t, kp, a.f16, NULL);
            if (rc) {
                cli_fail(kp, rc, smdiff_trainer_last_error(t));
                ret = 1;
                break;
            }
        }
        if (a.kill_after > 0 && step == a.kill_after) {
            /* testing aid: die as abruptly as a crash or an OOM kill would */
            fflush(NULL);
            raise(SIGKILL);
        }
    }
    fclose(log);
    smdiff_trainer_free(t);
    free(tok);
    return ret;
}
