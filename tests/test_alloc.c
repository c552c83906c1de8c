/* test_alloc.c -- allocation through the host's hooks, and failure
 * injected at every allocation point: each failing call returns
 * SMDIFF_E_NOMEM and, once the caller frees what it got, nothing leaks.
 *
 * test_every_allocation_point runs one scenario through everything and
 * fails its allocations in turn. test_each_operation does the same per
 * public operation -- loading (weights and tokenizer, from GGUF and from
 * Hugging Face files), logits, generation (tokens, text, a canvas, text
 * infilling), a training step, evaluation, save and resume, conversion,
 * tokenizer training and export, corpus tokenization -- with everything
 * set up outside a window in which allocations are counted and the k-th
 * fails: every k must give SMDIFF_E_NOMEM (never OK with a part missing,
 * never another code), leave nothing allocated, and leave the objects it
 * was given usable (the call succeeds when repeated). Jansson allocates
 * with malloc (its hook is process-wide, the host's business); this test,
 * as the host, routes it through the same counter with json_set_alloc_funcs,
 * so a Jansson failure inside smdiff is injected too. */
#include <jansson.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/arena.h"
#include "core/pool.h"
#include "smdiff/smdiff.h"
#include "smdiff/smdiff_decoder.h"
#include "testutil.h"

typedef struct {
    long allocs, frees;
    long fail_at;  /* fail the allocation with this index (0-based); -1 never */
    long tag;
} hook_state;

static void *hook_alloc(size_t n, void *ud) {
    hook_state *h = ud;
    if (h->fail_at >= 0 && h->allocs == h->fail_at) {
        h->fail_at = -2;  /* one failure per run: later calls see memory again */
        return NULL;
    }
    h->allocs++;
    return malloc(n);
}

static void hook_free(void *p, void *ud) {
    hook_state *h = ud;
    if (p) h->frees++;
    free(p);
}

static int32_t pick(const smdiff_step_view *v, int32_t *c, int32_t *nc, int32_t *r, int32_t *nr,
                    void *ud) {
    (void)v, (void)c, (void)r, (void)ud;
    *nc = 0;
    *nr = 0;
    return SMDIFF_OK;
}

/* Everything the library allocates in this version, through its public and
 * internal entry points. Returns the first failing status (or OK) and
 * frees whatever it obtained. */
static int32_t scenario(void) {
    int32_t rc;
    smdiff_model *m = NULL;
    smdiff_sampler *s = NULL;
    smdiff_softmask *sm = NULL, *copy = NULL;
    sd_pool *pool = NULL;
    sd_arena arena = {0};
    int registered = 0;
    if ((rc = smdiff_model_create(&m))) goto out;
    if ((rc = smdiff_sampler_create(&s))) goto out;
    if ((rc = smdiff_softmask_create(&sm))) goto out;
    if ((rc = smdiff_softmask_clone(sm, &copy))) goto out;
    if ((rc = smdiff_sampler_set_softmask(s, copy))) goto out;
    smdiff_decoder d;
    memset(&d, 0, sizeof d);
    d.struct_size = sizeof d;
    d.abi_version = SMDIFF_DECODER_ABI_VERSION;
    d.name = "alloc_probe";
    d.description = "a description that must be copied";
    d.select = pick;
    if ((rc = smdiff_decoder_register(&d, NULL))) goto out;
    registered = 1;
    if ((rc = smdiff_sampler_set_strategy(s, "alloc_probe"))) goto out;
    /* model loading and a forward pass (nn) */
    if ((rc = smdiff_model_set_int(m, SMDIFF_MODEL_THREADS, 2))) goto out;
    if ((rc = smdiff_model_load_file(m, "tests/data/tiny_dream_f16.gguf"))) goto out;
    int32_t ids[5] = {3, 1, 4, 1, 5}, rows[2] = {4, 0};
    float logits[2 * 160];
    if ((rc = smdiff_model_logits(m, ids, 5, rows, 2, logits, 2 * 160))) goto out;
    /* a generation: the sampler's workspace, pool and forward scratch */
    int32_t gen[4];
    size_t n_gen;
    if ((rc = smdiff_sampler_set_int(s, SMDIFF_SAMPLER_GEN_LENGTH, 4)) ||
        (rc = smdiff_sampler_set_int(s, SMDIFF_SAMPLER_STEPS, 2)) ||
        (rc = smdiff_sampler_set_int(s, SMDIFF_SAMPLER_THREADS, 2)) ||
        (rc = smdiff_sampler_set_double(s, SMDIFF_SAMPLER_TOP_P, 0.9)) ||
        (rc = smdiff_generate_tokens(s, m, ids, 3, gen, 4, &n_gen)))
        goto out;
    if ((rc = sd_pool_create(2, &pool, NULL))) goto out;
    if (sd_arena_init(&arena, 4096, 1) != 0) {
        rc = SMDIFF_E_NOMEM;
        goto out;
    }
    for (int i = 0; i < 3; i++)
        if (!sd_arena_alloc(&arena, 3000)) {
            rc = SMDIFF_E_NOMEM;
            goto out;
        }
    void *grown = sd_malloc(10);
    if (!grown) {
        rc = SMDIFF_E_NOMEM;
        goto out;
    }
    void *bigger = sd_realloc(grown, 1000);
    if (!bigger) {
        sd_free(grown);
        rc = SMDIFF_E_NOMEM;
        goto out;
    }
    sd_free(bigger);
out:
    sd_arena_destroy(&arena);
    sd_pool_free(pool);
    if (registered) smdiff_decoder_unregister("alloc_probe");
    smdiff_softmask_free(copy);
    smdiff_softmask_free(sm);
    smdiff_sampler_free(s);
    smdiff_model_free(m);
    return rc;
}

static void test_every_allocation_point(void **state) {
    (void)state;
    hook_state h = {0, 0, -1, 0};
    assert_int_equal(smdiff_set_allocator(hook_alloc, hook_free, &h), SMDIFF_OK);
    assert_int_equal(scenario(), SMDIFF_OK);
    long total = h.allocs;
    assert_true(total >= 10);  /* the scenario really allocates */
    assert_int_equal(h.allocs, h.frees);

    for (long k = 0; k < total; k++) {
        h.allocs = h.frees = 0;
        h.fail_at = k;
        int32_t rc = scenario();
        assert_int_equal(h.fail_at, -2);  /* the failure was injected */
        assert_int_equal(rc, SMDIFF_E_NOMEM);
        assert_int_equal(h.allocs, h.frees);  /* nothing leaked */
        assert_int_equal(sd_alloc_live(), 0);
    }
    assert_int_equal(smdiff_set_allocator(NULL, NULL, NULL), SMDIFF_OK);
}

static void test_allocator_guard(void **state) {
    (void)state;
    hook_state h = {0, 0, -1, 0};
    assert_int_equal(smdiff_set_allocator(hook_alloc, NULL, &h), SMDIFF_E_INVAL);
    assert_int_equal(smdiff_set_allocator(NULL, hook_free, &h), SMDIFF_E_INVAL);
    smdiff_sampler *s = NULL;
    assert_int_equal(smdiff_sampler_create(&s), SMDIFF_OK);
    /* Swapping hooks under live memory would free with the wrong function. */
    assert_int_equal(smdiff_set_allocator(hook_alloc, hook_free, &h), SMDIFF_E_STATE);
    assert_true(strlen(smdiff_last_error()) > 0);
    smdiff_sampler_free(s);
    assert_int_equal(smdiff_set_allocator(hook_alloc, hook_free, &h), SMDIFF_OK);
    assert_int_equal(smdiff_sampler_create(&s), SMDIFF_OK);
    assert_int_equal(h.allocs, 1);
    smdiff_sampler_free(s);
    assert_int_equal(h.frees, 1);
    assert_int_equal(smdiff_set_allocator(NULL, NULL, NULL), SMDIFF_OK);
}

static void test_alignment_and_overflow(void **state) {
    (void)state;
    for (size_t n = 1; n < 300; n += 37) {
        void *p = sd_malloc(n);
        assert_non_null(p);
        assert_int_equal((uintptr_t)p % SD_ALIGN, 0);
        sd_free(p);
    }
    assert_null(sd_malloc(SIZE_MAX - 8));
    assert_null(sd_calloc(SIZE_MAX / 2, 4));
    unsigned char *z = sd_calloc(16, 4);
    for (int i = 0; i < 64; i++) assert_int_equal(z[i], 0);
    z[3] = 9;
    z = sd_realloc(z, 4096);
    assert_int_equal(z[3], 9);
    sd_free(z);
    sd_free(NULL);
    assert_int_equal(sd_alloc_live(), 0);
}

/* ---------------------------------------------------- per-operation windows */

static struct {
    atomic_int open;     /* counting allocations */
    atomic_long count;   /* allocations in the window */
    atomic_long fail_at; /* the one to fail, -1 none */
    atomic_int injected;
} win = {0, 0, -1, 0};

static void *win_alloc(size_t n, void *ud) {
    (void)ud;
    if (atomic_load(&win.open)) {
        long k = atomic_fetch_add(&win.count, 1);
        if (k == atomic_load(&win.fail_at)) {
            atomic_store(&win.injected, 1);
            return NULL;
        }
    }
    return malloc(n);
}

static void win_free(void *p, void *ud) {
    (void)ud;
    free(p);
}

static void *json_alloc(size_t n) { return win_alloc(n, NULL); }
static void json_release(void *p) { free(p); }

static char dir[256];
static char model_path[300], tok_path[300], corpus_path[300], state_path[300];

/* One operation: set up (outside the window), run (inside), tear down. */
typedef struct op {
    const char *name;
    void (*setup)(struct op *o);
    int32_t (*run)(struct op *o);
    void (*teardown)(struct op *o);
    int stateless; /* given no object: nothing to try again after a failure */
    smdiff_model *m;
    smdiff_sampler *s;
    smdiff_trainer *t;
    char out[300];
} op;

static smdiff_model *load(const char *path, int tokenizer_only) {
    smdiff_model *m = NULL;
    assert_int_equal(smdiff_model_create(&m), SMDIFF_OK);
    assert_int_equal(smdiff_model_set_int(m, SMDIFF_MODEL_THREADS, 2), SMDIFF_OK);
    int32_t rc = tokenizer_only ? smdiff_model_load_tokenizer(m, path) : smdiff_model_load_file(m, path);
    if (rc) fail_msg("%s: %s", path, smdiff_last_error());
    return m;
}

static void su_none(op *o) { (void)o; }
static void su_model(op *o) { o->m = load(model_path, 0); }
static void su_sampler(op *o) {
    su_model(o);
    assert_int_equal(smdiff_sampler_create(&o->s), SMDIFF_OK);
    smdiff_softmask *sm = NULL;
    assert_int_equal(smdiff_softmask_create(&sm), SMDIFF_OK);
    assert_int_equal(smdiff_softmask_set_double(sm, SMDIFF_SM_SCALE, 0.5), SMDIFF_OK);
    assert_int_equal(smdiff_sampler_set_softmask(o->s, sm), SMDIFF_OK);
    smdiff_softmask_free(sm);
    assert_int_equal(smdiff_sampler_set_int(o->s, SMDIFF_SAMPLER_GEN_LENGTH, 8), SMDIFF_OK);
    assert_int_equal(smdiff_sampler_set_int(o->s, SMDIFF_SAMPLER_STEPS, 4), SMDIFF_OK);
    assert_int_equal(smdiff_sampler_set_int(o->s, SMDIFF_SAMPLER_THREADS, 2), SMDIFF_OK);
    assert_int_equal(smdiff_sampler_set_double(o->s, SMDIFF_SAMPLER_TEMPERATURE, 0.8), SMDIFF_OK);
    assert_int_equal(smdiff_sampler_set_double(o->s, SMDIFF_SAMPLER_TOP_P, 0.9), SMDIFF_OK);
}
static void su_model_out(op *o) {
    su_model(o);
    snprintf(o->out, sizeof o->out, "%s/out.bin", dir);
}
static void su_out(op *o) { snprintf(o->out, sizeof o->out, "%s/out.bin", dir); }
static void make_trainer(op *o, int init, int data) {
    assert_int_equal(smdiff_trainer_create(&o->t), SMDIFF_OK);
    assert_int_equal(smdiff_trainer_set_int(o->t, SMDIFF_TRAIN_SEQ_LEN, 16), SMDIFF_OK);
    assert_int_equal(smdiff_trainer_set_int(o->t, SMDIFF_TRAIN_BATCH, 2), SMDIFF_OK);
    assert_int_equal(smdiff_trainer_set_int(o->t, SMDIFF_TRAIN_THREADS, 2), SMDIFF_OK);
    if (init) assert_int_equal(smdiff_trainer_init_from_file(o->t, model_path), SMDIFF_OK);
    if (data) {
        static int32_t toks[600];
        for (int i = 0; i < 600; i++) toks[i] = (i * 37) % 290;
        assert_int_equal(smdiff_trainer_set_data(o->t, toks, 500, toks + 500, 100), SMDIFF_OK);
    }
}
static void su_trainer0(op *o) { make_trainer(o, 0, 0); }
static void su_trainer(op *o) { make_trainer(o, 1, 1); }
static void su_trainer_out(op *o) {
    make_trainer(o, 1, 1);
    snprintf(o->out, sizeof o->out, "%s/out.bin", dir);
}
static void td(op *o) {
    smdiff_sampler_free(o->s);
    smdiff_model_free(o->m);
    smdiff_trainer_free(o->t);
    o->s = NULL, o->m = NULL, o->t = NULL;
    if (o->out[0]) {
        unlink(o->out);
        char st[320];
        snprintf(st, sizeof st, "%s.state", o->out);
        unlink(st);
    }
}

static int32_t r_load(op *o) { return smdiff_model_load_file(o->m, model_path); }
static int32_t r_load_hf(op *o) { return smdiff_model_load_tokenizer(o->m, test_data_path("hf_tiny_dream")); }
static int32_t r_load_tok(op *o) { return smdiff_model_load_tokenizer(o->m, tok_path); }
static void su_empty_model(op *o) { assert_int_equal(smdiff_model_create(&o->m), SMDIFF_OK); }
static int32_t r_logits(op *o) {
    int32_t ids[6] = {5, 9, 299, 299, 17, 3}, rows[2] = {2, 3};
    static float logits[2 * 300];
    return smdiff_model_logits(o->m, ids, 6, rows, 2, logits, 2 * 300);
}
static int32_t r_generate(op *o) {
    int32_t prompt[3] = {5, 9, 17}, out[8];
    size_t n;
    return smdiff_generate_tokens(o->s, o->m, prompt, 3, out, 8, &n);
}
static int32_t r_text(op *o) {
    char text[256];
    size_t n;
    return smdiff_generate_text(o->s, o->m, "The quick brown", 0, text, sizeof text, &n);
}
static int32_t r_canvas(op *o) {
    int32_t canvas[8] = {5, 9, 299, 299, 299, 299, 17, 3};
    return smdiff_generate_canvas(o->s, o->m, canvas, 8);
}
static int32_t r_infill(op *o) {
    char text[256];
    size_t n;
    return smdiff_generate_infill_text(o->s, o->m, "The quick", " the lazy dog", text, sizeof text, &n);
}
static int32_t r_init(op *o) { return smdiff_trainer_init_from_file(o->t, model_path); }
static int32_t r_init_new(op *o) {
    int32_t rc = test_trainer_shape(o->t, 300, 16, 1, 2, 1, 32, 299, 298);
    return rc ? rc : smdiff_trainer_init_new(o->t, "dream");
}
static int32_t r_step(op *o) {
    double l;
    return smdiff_trainer_step(o->t, &l);
}
static int32_t r_train_eval(op *o) {
    double l;
    return smdiff_trainer_eval(o->t, 2, &l);
}
static int32_t r_save(op *o) {
    char st[320];
    snprintf(st, sizeof st, "%s.state", o->out);
    return smdiff_trainer_save(o->t, o->out, 1, st);
}
static int32_t r_resume(op *o) { return smdiff_trainer_resume(o->t, state_path); }
static int32_t r_elbo(op *o) {
    int32_t w[32];
    for (int i = 0; i < 32; i++) w[i] = (i * 13) % 290;
    double nll;
    return smdiff_eval_elbo(o->m, w, 2, 0, 16, 2, 1, 1, 2, &nll, NULL);
}
static int32_t r_ar(op *o) {
    int32_t w[32];
    for (int i = 0; i < 32; i++) w[i] = (i * 13) % 290;
    double nll[2];
    float f[2 * 64];
    size_t d;
    return smdiff_eval_ar(o->m, w, 2, 16, 2, nll, f, &d);
}
static int32_t r_gate(op *o) {
    int32_t w[32];
    for (int i = 0; i < 32; i++) w[i] = (i * 13) % 290;
    double rates[2] = {0.3, 0.8};
    smdiff_gate_stats st[2];
    return smdiff_eval_gate(o->m, NULL, w, 2, 16, rates, 2, 1, st);
}
static int32_t r_mauve(op *o) {
    (void)o;
    float p[40 * 4], q[40 * 4];
    for (int i = 0; i < 160; i++) p[i] = (float)((i * 7) % 11), q[i] = (float)((i * 5) % 13);
    double score;
    return smdiff_eval_mauve(p, 40, q, 40, 4, 1, &score);
}
static int32_t r_convert(op *o) {
    return smdiff_convert_hf(test_data_path("hf_dream_tiny"), o->out, "q8_0", NULL, NULL, NULL, NULL);
}
static int32_t r_tok_train(op *o) {
    const char *paths[1] = {corpus_path}, *sp[2] = {"<|endoftext|>", "<|mask|>"};
    return smdiff_tokenizer_train(paths, 1, 300, "gpt2", sp, 2, o->out, NULL, NULL);
}
static int32_t r_tok_save(op *o) { return smdiff_model_save_tokenizer(o->m, o->out); }
static int32_t r_tok_corpus(op *o) {
    const char *paths[1] = {corpus_path};
    return smdiff_train_tokenize_corpus(o->m, paths, 1, 298, o->out, NULL, NULL);
}

static int32_t in_window(op *o, long fail_at) {
    atomic_store(&win.count, 0);
    atomic_store(&win.fail_at, fail_at);
    atomic_store(&win.injected, 0);
    atomic_store(&win.open, 1);
    int32_t rc = o->run(o);
    atomic_store(&win.open, 0);
    return rc;
}

static long n_alloc_faults;
static volatile int current_op; /* for a debugger's breakpoint condition */

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void inject(op *o) {
    double t0 = now_s();
    o->setup(o);
    int64_t live = sd_alloc_live();
    int32_t rc = in_window(o, -1);
    if (rc) fail_msg("%s: %s", o->name, smdiff_last_error());
    long n = atomic_load(&win.count);
    o->teardown(o);
    if (n == 0) { /* all its memory was allocated before (the trainer's at init) */
        printf("  %-28s     0 allocations: cannot run out of memory\n", o->name);
        return;
    }
    for (long k = 0; k < n; k++) {
        o->setup(o);
        assert_int_equal(sd_alloc_live(), live);
        rc = in_window(o, k);
        if (!atomic_load(&win.injected)) fail_msg("%s: allocation %ld of %ld was not reached", o->name, k, n);
        if (rc != SMDIFF_E_NOMEM)
            fail_msg("%s: allocation %ld of %ld failed, and the call gave %s: %s", o->name, k, n, smdiff_err_name(rc),
                     rc ? smdiff_last_error() : "(success)");
        assert_true(strlen(smdiff_last_error()) > 0);
        /* the objects it was given still work */
        if (!o->stateless && (rc = in_window(o, -1)))
            fail_msg("%s: after a failure at allocation %ld: %s", o->name, k, smdiff_last_error());
        o->teardown(o);
        if (sd_alloc_live() != 0) fail_msg("%s: %lld blocks leaked after a failure at %ld", o->name,
                                           (long long)sd_alloc_live(), k);
        n_alloc_faults++;
    }
    printf("  %-28s %5ld allocations, each failure SMDIFF_E_NOMEM (%.1f s)\n", o->name, n, now_s() - t0);
}

static void test_each_operation(void **state) {
    (void)state;
    assert_int_equal(smdiff_set_allocator(win_alloc, win_free, NULL), SMDIFF_OK);
    op ops[] = {
        {"load a model + tokenizer", su_empty_model, r_load, td, 0, NULL, NULL, NULL, ""},
        {"load a GGUF tokenizer", su_empty_model, r_load_tok, td, 0, NULL, NULL, NULL, ""},
        {"load a Hugging Face tokenizer", su_empty_model, r_load_hf, td, 0, NULL, NULL, NULL, ""},
        {"logits", su_model, r_logits, td, 0, NULL, NULL, NULL, ""},
        {"generate tokens", su_sampler, r_generate, td, 0, NULL, NULL, NULL, ""},
        {"generate text", su_sampler, r_text, td, 0, NULL, NULL, NULL, ""},
        {"generate a canvas", su_sampler, r_canvas, td, 0, NULL, NULL, NULL, ""},
        {"infill text", su_sampler, r_infill, td, 0, NULL, NULL, NULL, ""},
        {"trainer from a file", su_trainer0, r_init, td, 0, NULL, NULL, NULL, ""},
        {"trainer from scratch", su_trainer0, r_init_new, td, 0, NULL, NULL, NULL, ""},
        {"training step", su_trainer, r_step, td, 0, NULL, NULL, NULL, ""},
        {"training evaluation", su_trainer, r_train_eval, td, 0, NULL, NULL, NULL, ""},
        {"checkpoint save", su_trainer_out, r_save, td, 0, NULL, NULL, NULL, ""},
        {"resume", su_trainer, r_resume, td, 0, NULL, NULL, NULL, ""},
        {"ELBO", su_model, r_elbo, td, 0, NULL, NULL, NULL, ""},
        {"AR perplexity", su_model, r_ar, td, 0, NULL, NULL, NULL, ""},
        {"soft-mask gate", su_model, r_gate, td, 0, NULL, NULL, NULL, ""},
        {"MAUVE", su_none, r_mauve, td, 1, NULL, NULL, NULL, ""},
        {"convert", su_out, r_convert, td, 1, NULL, NULL, NULL, ""},
        {"tokenizer training", su_out, r_tok_train, td, 1, NULL, NULL, NULL, ""},
        {"tokenizer export", su_model_out, r_tok_save, td, 0, NULL, NULL, NULL, ""},
        {"corpus tokenization", su_model_out, r_tok_corpus, td, 0, NULL, NULL, NULL, ""},
    };
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) current_op = (int)i, inject(&ops[i]);
    printf("  allocation failures: %ld injected, %ld ended as SMDIFF_E_NOMEM\n", n_alloc_faults, n_alloc_faults);
    assert_int_equal(smdiff_set_allocator(NULL, NULL, NULL), SMDIFF_OK);
}

/* The files the operations use, made before the hooks go in: a corpus, a
 * byte-level BPE tokenizer trained on it, a small dream model carrying that
 * tokenizer, and a training state of it. */
static int make_fixtures(void) {
    char *d = test_scratch_dir("test_alloc");
    if (!d) return -1;
    snprintf(dir, sizeof dir, "%s", d);
    free(d);
    snprintf(corpus_path, sizeof corpus_path, "%s/corpus.txt", dir);
    snprintf(tok_path, sizeof tok_path, "%s/tok.gguf", dir);
    snprintf(model_path, sizeof model_path, "%s/model.gguf", dir);
    snprintf(state_path, sizeof state_path, "%s/model.gguf.state", dir);
    FILE *f = fopen(corpus_path, "w");
    if (!f) return -1;
    for (int i = 0; i < 40; i++)
        fprintf(f, "The quick brown fox %d jumps over the lazy dog, and the dog naps.\n", i % 9);
    fclose(f);
    const char *paths[1] = {corpus_path}, *sp[2] = {"<|endoftext|>", "<|mask|>"};
    if (smdiff_tokenizer_train(paths, 1, 300, "gpt2", sp, 2, tok_path, NULL, NULL)) return -1;
    smdiff_trainer *t = NULL;
    int32_t toks[600];
    for (int i = 0; i < 600; i++) toks[i] = (i * 37) % 290;
    if (smdiff_trainer_create(&t) || smdiff_trainer_set_int(t, SMDIFF_TRAIN_SEQ_LEN, 16) ||
        smdiff_trainer_set_int(t, SMDIFF_TRAIN_BATCH, 2) || smdiff_trainer_set_int(t, SMDIFF_TRAIN_THREADS, 2) ||
        smdiff_trainer_set_int(t, SMDIFF_TRAIN_CONTEXT, 64) ||
        test_trainer_shape(t, 300, 16, 1, 2, 1, 32, 299, 298) || smdiff_trainer_init_new(t, "dream") ||
        smdiff_trainer_set_tokenizer_file(t, tok_path) || smdiff_trainer_set_data(t, toks, 500, toks + 500, 100) ||
        smdiff_trainer_save(t, model_path, 0, state_path)) {
        printf("fixtures: %s\n", smdiff_trainer_last_error(t));
        return -1;
    }
    smdiff_trainer_free(t);
    return 0;
}

int main(void) {
    if (make_fixtures()) return 1;
    json_set_alloc_funcs(json_alloc, json_release);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_allocation_point),
        cmocka_unit_test(test_each_operation),
        cmocka_unit_test(test_allocator_guard),
        cmocka_unit_test(test_alignment_and_overflow),
    };
    int rc = cmocka_run_group_tests_name("alloc", tests, NULL, NULL);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd)) rc = 1;
    return rc;
}
