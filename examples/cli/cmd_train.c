/* cmd_train.c -- `smdiff train`: train or fine-tune a dream/llada model on a
 * token file with the MDLM objective (soft-masking two-pass by default) or
 * the AR objective, with checkpoints every N steps, exact --resume, a
 * progress line, a CSV log and an SVG loss curve. */
#include <errno.h>
#include <stddef.h>
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
            "                    (--init MODEL.gguf | --arch dream|llada|mdlm --vocab N --embd D --layers N\n"
            "                     --heads H [--kv-heads K] --ff F --mask-id ID [--eos-id ID] [--tokenizer GGUF])\n"
            "                    [options]\n"
            "usage: smdiff train --corpus PATH [--corpus PATH ...] --tokens FILE.i32 ... (as above)\n"
            "\n"
            "FILE.i32 holds little-endian int32 token ids, documents separated by EOS.\n"
            "With --corpus, every text file under PATH (folders walked in name order) is\n"
            "tokenized once into FILE.i32 with the tokenizer of --init or --tokenizer, EOS\n"
            "(--eos-id, else the model's) after each document, then training starts.\n"
            "The last 1%% (at least one sequence) is held out for validation.\n"
            "\n"
            "data and model:\n"
            "  --tokens FILE      the token file to train on (written first with --corpus)\n"
            "  --corpus PATH      text to tokenize into --tokens (repeatable, at most 64)\n"
            "  --out FILE         the model to write\n"
            "  --init FILE        start from this model (continued pretraining, fine-tuning)\n"
            "  --arch NAME        or a new model: dream, llada or mdlm (MDLM's DiT), with the shape below\n"
            "  --vocab N          vocabulary rows\n"
            "  --embd D           width\n"
            "  --layers N         layers\n"
            "  --heads H          attention heads\n"
            "  --kv-heads K       key/value heads (default: --heads)\n"
            "  --ff F             feed-forward width\n"
            "  --mask-id ID       the mask token (default: the last row)\n"
            "  --eos-id ID        the end-of-text token (default: none, or the model's)\n"
            "  --tokenizer FILE   the tokenizer a new model carries (a GGUF file)\n"
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
            "                     the file's, else on for dream, off for llada. On, with\n"
            "                     --init AR.gguf, adapts an --ar model into a diffusion model\n"
            "  -s, --seed S       random seed (default 1)\n"
            "  -t, --threads T    threads (default 0: all CPUs)\n"
            "  --save-every N     checkpoint (model, training state, log, curve) every N steps (default 100)\n"
            "  --eval-every N     validation loss every N steps (default 0: at checkpoints)\n"
            "  --f16              write F16 matrices in the model file (state stays exact)\n"
            "  --resume           continue from MODEL.gguf.state (same options, data and threads)\n"
            "  --resume-force     --resume even when the state was written with other\n"
            "                     hyper-parameters (this run's are used from here on)\n"
            "  --keep-every N     also keep the model of every N-th step as MODEL.stepN.gguf\n"
            "  --iso-compute-of RUN.gguf.csv\n"
            "                     train as many steps as match the compute (plain-step\n"
            "                     equivalents, the last row's `compute`) of that run's log;\n"
            "                     replaces --steps (the binary arm of an SM run)\n"
            "  --kill-after N     (for tests) die with SIGKILL after step N, as a crash would\n"
            "  --progress         print the step lines even when stderr is not a terminal\n"
            "  --no-progress      never print them\n"
            "  -h, --help         this text\n"
            "\n"
            "Writes MODEL.gguf (loadable by smdiff generate), MODEL.gguf.state (exact resume),\n"
            "MODEL.gguf.csv and MODEL.gguf.svg. The CSV has one row per step: step, loss,\n"
            "val_loss, tokens_per_s, elapsed_s, omega_s, omega_a, omega_b (the soft-mask\n"
            "parameters after the step), grad_r_s (the gradient of the raw omega_s that AdamW\n"
            "saw), sm (1 if the step used the SM two-pass) and compute (cumulative matrix\n"
            "FLOPs of the passes run, in nominal plain steps; docs/TRAINING.md).\n");
}

enum {
    O_TOKENS = CLI_OPT_FIRST, O_OUT, O_INIT, O_ARCH, O_TOKENIZER, O_SM_INIT, O_SHIFT, O_CORPUS, O_VOCAB, O_EMBD,
    O_LAYERS, O_HEADS, O_KV_HEADS, O_FF, O_MASK_ID, O_EOS_ID, O_STEPS, O_BATCH, O_SEQ, O_WARMUP, O_SAVE_EVERY,
    O_EVAL_EVERY, O_KILL_AFTER, O_LR, O_SM_LR, O_SM_PROB, O_COSINE, O_NO_SM, O_AR, O_F16, O_RESUME, O_SM_K,
    O_KEEP_EVERY, O_ISO, O_RESUME_FORCE,
};
static const struct option longopts[] = {
    {"tokens", required_argument, NULL, O_TOKENS},   {"out", required_argument, NULL, O_OUT},
    {"init", required_argument, NULL, O_INIT},       {"arch", required_argument, NULL, O_ARCH},
    {"tokenizer", required_argument, NULL, O_TOKENIZER}, {"sm-init", required_argument, NULL, O_SM_INIT},
    {"shift-logits", required_argument, NULL, O_SHIFT}, {"corpus", required_argument, NULL, O_CORPUS},
    {"vocab", required_argument, NULL, O_VOCAB},     {"embd", required_argument, NULL, O_EMBD},
    {"layers", required_argument, NULL, O_LAYERS},   {"heads", required_argument, NULL, O_HEADS},
    {"kv-heads", required_argument, NULL, O_KV_HEADS}, {"ff", required_argument, NULL, O_FF},
    {"mask-id", required_argument, NULL, O_MASK_ID}, {"eos-id", required_argument, NULL, O_EOS_ID},
    {"steps", required_argument, NULL, O_STEPS},     {"batch", required_argument, NULL, O_BATCH},
    {"seq", required_argument, NULL, O_SEQ},         {"warmup", required_argument, NULL, O_WARMUP},
    {"seed", required_argument, NULL, 's'},          {"threads", required_argument, NULL, 't'},
    {"save-every", required_argument, NULL, O_SAVE_EVERY}, {"eval-every", required_argument, NULL, O_EVAL_EVERY},
    {"kill-after", required_argument, NULL, O_KILL_AFTER}, {"lr", required_argument, NULL, O_LR},
    {"sm-lr", required_argument, NULL, O_SM_LR},     {"sm-prob", required_argument, NULL, O_SM_PROB},
    {"cosine", no_argument, NULL, O_COSINE},         {"no-sm", no_argument, NULL, O_NO_SM},
    {"ar", no_argument, NULL, O_AR},                 {"f16", no_argument, NULL, O_F16},
    {"resume", no_argument, NULL, O_RESUME},         {"sm-k", required_argument, NULL, O_SM_K},
    {"keep-every", required_argument, NULL, O_KEEP_EVERY}, {"iso-compute-of", required_argument, NULL, O_ISO},
    {"resume-force", no_argument, NULL, O_RESUME_FORCE},
    CLI_PROGRESS_OPTIONS,
    CLI_HELP_OPTION,                                 {0, 0, 0, 0},
};
const cli_spec cli_spec_train = {"train", "s:t:h", longopts, usage};

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static const char LOG_HEADER[] =
    "step,loss,val_loss,tokens_per_s,elapsed_s,omega_s,omega_a,omega_b,grad_r_s,sm,compute\n";

/* Keep the rows up to `step` of the CSV (a resumed run redoes the steps
 * after its checkpoint) under the current header (a log of an older
 * version keeps its shorter rows), replacing the file atomically (a failed
 * write leaves it whole); *elapsed gets the last kept row's elapsed_s, so
 * a resumed run's clock continues. Returns 0, or an exit status after
 * saying why. */
static int trim_log(const char *path, int64_t step, double *elapsed) {
    if (access(path, F_OK) != 0) return 0;
    FILE *f = cli_fopen(path, "r", "training log");
    if (!f) return CLI_EXIT_FAIL;
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
                return cli_fail(path, SMDIFF_E_NOMEM, "out of memory");
            }
            kept = k;
        }
        memcpy(kept + n, line, len);
        n += len;
    }
    fclose(f);
    int r = cli_write_file(path, "training log", kept, n);
    free(kept);
    return r;
}

/* A write to the training log failed: say so; CLI_EXIT_FAIL. */
static int log_failed(const char *csv) {
    fprintf(stderr, "%s: training log '%s': a write failed: %s\n", cli_prog(), csv, strerror(errno));
    return CLI_EXIT_FAIL;
}

/* Loss curve from the CSV: training loss (line) and validation loss (dots),
 * written atomically; 0, or an exit status after saying why. */
static int write_svg(const char *csv, const char *svg) {
    FILE *f = cli_fopen(csv, "r", "training log");
    if (!f) return CLI_EXIT_FAIL;
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
    char *text = NULL;
    size_t len = 0;
    FILE *o = n ? open_memstream(&text, &len) : NULL;
    int r = n && !o ? cli_fail(svg, SMDIFF_E_NOMEM, "out of memory") : 0;
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
        r = (ferror(o) | fclose(o)) ? cli_fail(svg, SMDIFF_E_NOMEM, "out of memory")
                                    : cli_write_file(svg, "loss plot", text, len);
        free(text);
    }
    free(st), free(lo), free(va);
    return r;
}

typedef struct args args;
static int make_tokens(const args *a);

typedef struct args {
    const char *corpus[64];
    int n_corpus;
    const char *tokens, *out, *init, *arch, *tokenizer, *shift, *iso_of;
    int64_t vocab, embd, layers, heads, kv_heads, ff, mask_id, eos_id;
    int64_t steps, batch, seq, warmup, seed, threads, save_every, eval_every, kill_after, keep_every, sm_k;
    double lr, sm_lr, sm_prob, sm_init[3];
    int cosine, no_sm, ar, f16, resume, resume_force, has_sm_init, steps_given, progress;
} args;

/* The trainer option behind each numeric option (bounds from the library),
 * or 0 for the command's own counts. */
static const struct {
    int code;
    int32_t key;
    size_t field;
} k_numbers[] = {
    {O_VOCAB, SMDIFF_TRAIN_N_VOCAB, offsetof(args, vocab)},     {O_EMBD, SMDIFF_TRAIN_N_EMBD, offsetof(args, embd)},
    {O_LAYERS, SMDIFF_TRAIN_N_LAYER, offsetof(args, layers)},   {O_HEADS, SMDIFF_TRAIN_N_HEAD, offsetof(args, heads)},
    {O_KV_HEADS, SMDIFF_TRAIN_N_HEAD_KV, offsetof(args, kv_heads)}, {O_FF, SMDIFF_TRAIN_N_FF, offsetof(args, ff)},
    {O_MASK_ID, SMDIFF_TRAIN_MASK_ID, offsetof(args, mask_id)}, {O_EOS_ID, SMDIFF_TRAIN_EOS_ID, offsetof(args, eos_id)},
    {O_BATCH, SMDIFF_TRAIN_BATCH, offsetof(args, batch)},      {O_SEQ, SMDIFF_TRAIN_SEQ_LEN, offsetof(args, seq)},
    {O_WARMUP, SMDIFF_TRAIN_WARMUP, offsetof(args, warmup)},   {'s', SMDIFF_TRAIN_SEED, offsetof(args, seed)},
    {'t', SMDIFF_TRAIN_THREADS, offsetof(args, threads)},      {O_LR, SMDIFF_TRAIN_LR, offsetof(args, lr)},
    {O_SM_LR, SMDIFF_TRAIN_SM_LR, offsetof(args, sm_lr)},      {O_SM_PROB, SMDIFF_TRAIN_SM_PROB, offsetof(args, sm_prob)},
    {O_STEPS, 0, offsetof(args, steps)},                       {O_SAVE_EVERY, 0, offsetof(args, save_every)},
    {O_EVAL_EVERY, 0, offsetof(args, eval_every)},             {O_KILL_AFTER, 0, offsetof(args, kill_after)},
    {O_KEEP_EVERY, 0, offsetof(args, keep_every)},             {O_SM_K, SMDIFF_SM_TOPK, offsetof(args, sm_k)},
};

/* A numeric option into its field; 1 if c is not one. */
static int parse_number(args *a, const char *opt, int c, const char *v, int *r) {
    for (size_t i = 0; i < sizeof k_numbers / sizeof k_numbers[0]; i++) {
        if (k_numbers[i].code != c) continue;
        void *field = (char *)a + k_numbers[i].field;
        int32_t key = k_numbers[i].key;
        if (key == SMDIFF_TRAIN_LR || key == SMDIFF_TRAIN_SM_LR || key == SMDIFF_TRAIN_SM_PROB)
            *r = cli_key_real(opt, v, key, field);
        else if (key)
            *r = cli_key_count(opt, v, key, field); /* -1 "default" values only by leaving the option out */
        else
            *r = cli_count(opt, v, c == O_STEPS || c == O_SAVE_EVERY ? 1 : 0, INT32_MAX, field);
        return 0;
    }
    return 1;
}

static int parse_option(void *ud, const cli_args *ca, int c, const char *v) {
    args *a = ud;
    const char *opt = ca->opt;
    int r = 0;
    size_t n = 0;
    a->steps_given |= c == O_STEPS;
    if (!parse_number(a, opt, c, v, &r)) return r;
    switch (c) {
    case O_ISO: a->iso_of = v; break;
    case O_TOKENS: a->tokens = v; break;
    case O_OUT: a->out = v; break;
    case O_INIT: a->init = v; break;
    case O_ARCH: a->arch = v; break;
    case O_TOKENIZER: a->tokenizer = v; break;
    case O_SHIFT:
        if (strcmp(v, "on") && strcmp(v, "off")) return cli_usage_error("%s wants on or off, not '%s'", opt, v);
        a->shift = v;
        break;
    case O_CORPUS:
        if (a->n_corpus == 64) return cli_usage_error("at most 64 --corpus paths");
        a->corpus[a->n_corpus++] = v;
        break;
    case O_SM_INIT:
        /* each bound is checked by the soft-mask schedule when applied */
        if ((r = cli_real_list(opt, v, -1e300, 1e300, a->sm_init, 3, &n))) return r;
        if (n != 3) return cli_usage_error("%s wants SCALE,STEEPNESS,CENTRE, e.g. 0.5,6.66,-0.75", opt);
        a->has_sm_init = 1;
        break;
    case O_COSINE: a->cosine = 1; break;
    case O_NO_SM: a->no_sm = 1; break;
    case O_AR: a->ar = 1; break;
    case O_F16: a->f16 = 1; break;
    case O_RESUME: a->resume = 1; break;
    case O_RESUME_FORCE: a->resume = a->resume_force = 1; break;
    case CLI_ARG: return cli_usage_error("unexpected argument '%s'", v);
    }
    return 0;
}

/* -1 after --help, else 0 or an exit status. */
static int parse(int argc, char **argv, args *a) {
    memset(a, 0, sizeof *a);
    a->kv_heads = -1, a->mask_id = -1, a->eos_id = -1;
    a->steps = 1000, a->batch = 8, a->seq = 128, a->seed = 1, a->save_every = 100;
    a->lr = 3e-4, a->sm_lr = 1e-2, a->sm_prob = 0.8;
    cli_args ca;
    int r = cli_parse(&ca, &cli_spec_train, argc, argv, parse_option, a);
    if (r) return r;
    a->progress = cli_progress(&ca);
    if (!a->tokens || !a->out || (!a->init && !a->arch))
        return cli_usage_error("--tokens, --out and --init or --arch are required");
    if (a->n_corpus && !a->init && a->eos_id < 0) /* a tokenizer file alone names no EOS to end documents with */
        return cli_usage_error("--corpus with --tokenizer needs --eos-id (the token that ends each document)");
    if (a->iso_of && a->steps_given)
        return cli_usage_error("--iso-compute-of sets the number of steps: leave out --steps");
    return 0;
}

/* --iso-compute-of: the last `compute` of a training log (plain-step
 * equivalents), rounded to whole steps; -1 after printing why not. */
static long long iso_compute_steps(const char *csv) {
    FILE *f = cli_fopen(csv, "r", "--iso-compute-of");
    if (!f) return -1;
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
        fprintf(stderr, "%s: --iso-compute-of %s: no `compute` column with a value "
                        "(a log written by this version of smdiff train)\n", cli_prog(), csv);
        return -1;
    }
    long long n = llround(compute);
    fprintf(stderr, "%s: %s ran %lld steps costing %.2f plain steps: training %lld steps\n", cli_prog(), csv, step,
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
 * Returns 0, or an exit status after saying why (2 for a value the
 * schedule refuses). */
static int starting_softmask(const args *a, smdiff_trainer *t) {
    smdiff_softmask *s = NULL;
    smdiff_model *m = NULL;
    int32_t rc;
    if (a->init && !a->has_sm_init) { /* keep the file's omega, change k */
        rc = smdiff_model_create(&m);
        if (!rc) rc = smdiff_model_load_file(m, a->init);
        if (!rc) rc = smdiff_softmask_create_from_model(m, &s);
        smdiff_model_free(m);
    } else {
        rc = smdiff_softmask_create(&s);
    }
    if (rc) return cli_fail(a->init ? a->init : "soft-mask", rc, smdiff_last_error());
    const int32_t keys[3] = {SMDIFF_SM_SCALE, SMDIFF_SM_STEEPNESS, SMDIFF_SM_CENTRE};
    const char *opt = "--sm-init";
    for (int i = 0; !rc && a->has_sm_init && i < 3; i++) rc = smdiff_softmask_set_double(s, keys[i], a->sm_init[i]);
    if (!rc && a->sm_k) opt = "--sm-k", rc = smdiff_softmask_set_int(s, SMDIFF_SM_TOPK, a->sm_k);
    int r = rc ? cli_refused(opt, rc, smdiff_softmask_last_error(s)) : 0;
    if (!r && (rc = smdiff_trainer_set_softmask(t, s))) r = cli_fail(opt, rc, smdiff_trainer_last_error(t));
    smdiff_softmask_free(s);
    return r;
}

/* --corpus: tokenize once with the tokenizer of --init or --tokenizer. */
static int make_tokens(const args *a) {
    const char *src = a->init ? a->init : a->tokenizer;
    if (!src) {
        fprintf(stderr, "%s: --corpus needs --init or --tokenizer for its tokenizer\n", cli_prog());
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
        fprintf(stderr, "%s: %s has no EOS token: give --eos-id\n", cli_prog(), src);
        smdiff_model_free(m);
        return 1;
    }
    size_t n = 0, docs = 0;
    if (!rc) rc = smdiff_train_tokenize_corpus(m, a->corpus, (size_t)a->n_corpus, (int32_t)eos, a->tokens, &n, &docs);
    smdiff_model_free(m);
    if (rc) return cli_fail("tokenizing the corpus", rc, smdiff_last_error());
    fprintf(stderr, "%s: %lld documents, %lld tokens -> %s\n", cli_prog(), (long long)docs, (long long)n, a->tokens);
    return 0;
}

int cmd_train(int argc, char **argv) {
    args a;
    int r = parse(argc, argv, &a);
    if (r) return r < 0 ? CLI_EXIT_OK : r;
    if (a.iso_of && (a.steps = iso_compute_steps(a.iso_of)) < 0) return 1;
    if (a.n_corpus && !a.resume && make_tokens(&a)) return 1;
    int64_t n = 0;
    int32_t *tok = cli_read_tokens(a.tokens, &n);
    if (!tok) return 1;
    int64_t n_val = cli_val_tokens(n, a.seq);
    if (n - n_val < a.seq) {
        fprintf(stderr, "%s: %s has %lld tokens: too few for a training and a validation "
                        "sequence of %lld (corpus too small)\n", cli_prog(), a.tokens, (long long)n, (long long)a.seq);
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
    const struct { int32_t key; int64_t v; } ints[] = {
        {SMDIFF_TRAIN_BATCH, a.batch}, {SMDIFF_TRAIN_SEQ_LEN, a.seq}, {SMDIFF_TRAIN_SEED, a.seed},
        {SMDIFF_TRAIN_OBJECTIVE, a.ar ? SMDIFF_TRAIN_AR : SMDIFF_TRAIN_MDLM},
        {SMDIFF_TRAIN_SM, !a.no_sm && !a.ar}, {SMDIFF_TRAIN_WARMUP, a.warmup},
        {SMDIFF_TRAIN_COSINE_STEPS, a.cosine ? a.steps : 0}, {SMDIFF_TRAIN_THREADS, a.threads},
        {SMDIFF_TRAIN_SHIFT_LOGITS, a.shift ? !strcmp(a.shift, "on") : -1},
        {SMDIFF_TRAIN_RESUME_FORCE, a.resume_force}};
    /* the shape of a new model (an --init file has its own) */
    const struct { int32_t key; int64_t v; const char *flag; } shape[] = {
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
    if (!rc && (a.has_sm_init || a.sm_k) && (r = starting_softmask(&a, t))) {
        smdiff_trainer_free(t);
        free(tok);
        return r;
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
    }
    int r_log = rc ? 0 : a.resume ? trim_log(csv, step, &elapsed0) : 0;
    FILE *log = rc || r_log ? NULL : cli_fopen(csv, a.resume ? "a" : "w", "training log");
    if (!log) {
        r = rc ? cli_fail(what, rc, smdiff_last_error()) : CLI_EXIT_FAIL;
        smdiff_trainer_free(t);
        free(tok);
        return r;
    }
    if (!a.resume) fputs(LOG_HEADER, log);
    int ret = fflush(log) ? log_failed(csv) : 0;
    if (a.resume) fprintf(stderr, "%s: resumed at step %lld from %s\n", cli_prog(), (long long)step, state);
    double t0 = now() - elapsed0, last = now();
    int64_t start = step, last_good = step, eval_every = a.eval_every ? a.eval_every : a.save_every;
    while (!ret && step < a.steps) {
        double loss;
        rc = smdiff_trainer_step(t, &loss);
        if (rc) {
            cli_fail("training step", rc, smdiff_trainer_last_error(t));
            fprintf(stderr, "%s: stopped; the last good checkpoint (step %lld) is kept in %s\n", cli_prog(),
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
        if (fflush(log)) { /* the log is the run's record: a lost line stops the run */
            ret = log_failed(csv);
            break;
        }
        double eta = (tnow - t0 - elapsed0) / (double)(step - start) * (double)(a.steps - step);
        if (a.progress && (step % 10 == 0 || step == a.steps || !isnan(val))) {
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
            if ((ret = write_svg(csv, svg))) break;
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
    if (cli_fclose(log, csv, "training log") && !ret) ret = CLI_EXIT_FAIL;
    smdiff_trainer_free(t);
    free(tok);
    return ret;
}
