/* test_strategies.c -- the built-in decoder strategies and their schedules
 * against traces replayed by tests/ref/strategies_ref.py (Dream, LLaDA and
 * Fast-dLLM selection rules) in tests/data/strategies_ref.txt, each
 * replayed with a view holding only the fields it declares it reads;
 * ReMDM's unmasking and re-masking probabilities at hand-worked points of
 * its schedules; the registry's handling of them and of declarations
 * (versions, defaults, appended fields, bad values). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/rng.h"
#include "diffusion/decoder.h"

static double unif(void *st) { return sd_rng_uniform(st); }

/* The registry's copy of a strategy: its declaration as the loop sees it. */
static const smdiff_decoder *declared(const char *name) {
    static smdiff_decoder d;
    void *ud;
    assert_int_equal(sd_decoder_lookup(name, &d, &ud), 0);
    return &d;
}

/* d is refused with SMDIFF_E_INVAL, the message naming word (its field). */
static void refused_field(const smdiff_decoder *d, const char *word) {
    assert_int_equal(smdiff_decoder_register(d, NULL), SMDIFF_E_INVAL);
    assert_non_null(strstr(smdiff_last_error(), word));
}

static int32_t pick_none(const smdiff_step_view *v, int32_t *commit, int32_t *n_commit, int32_t *remask,
                         int32_t *n_remask, void *ud) {
    (void)v, (void)commit, (void)remask, (void)ud;
    *n_commit = 0;
    *n_remask = 0;
    return SMDIFF_OK;
}

typedef struct vals {
    float conf, top1, top2, ent;
} vals;

static int run_scenario(FILE *f) {
    char name[64], strat[64], tag[16];
    int P, gen, block, steps, seed;
    double at, thr, eps;
    if (fscanf(f, "%15s", tag) != 1) return 0;
    assert_string_equal(tag, "scenario");
    assert_int_equal(fscanf(f, "%63s %63s %d %d %d %d %lf %lf %d %lf", name, strat, &P, &gen, &block,
                            &steps, &at, &thr, &seed, &eps),
                     10);
    int S, n = P + gen;
    assert_int_equal(fscanf(f, "%15s %d", tag, &S), 2);
    vals *v = calloc((size_t)S * n, sizeof *v);
    for (int i = 0; i < S * n; i++) {
        int g, p;
        assert_int_equal(fscanf(f, "%d %d", &g, &p), 2);
        vals *x = &v[g * n + p];
        assert_int_equal(fscanf(f, "%f %f %f %f", &x->conf, &x->top1, &x->top2, &x->ent), 4);
    }
    smdiff_decoder dec;
    void *ud;
    assert_int_equal(sd_decoder_lookup(strat, &dec, &ud), 0);
    int n_blocks = gen / block;
    size_t spb = sd_schedule_steps(dec.schedule, (size_t)(steps / n_blocks), (size_t)block);
    uint8_t *masked = calloc((size_t)n, 1);
    for (int p = P; p < n; p++) masked[p] = 1;
    float *ts = malloc(sizeof(float) * (spb + 1));
    int32_t pos[64], tok[64], commit[64], remask[64];
    float conf[64], t1[64], t2[64], ent[64];
    void *scratch = dec.scratch_per_position ? malloc(64 * dec.scratch_per_position) : NULL;
    uint32_t need = dec.needs;
    int g = 0;
    for (int b = 0; b < n_blocks; b++) {
        int lo = P + b * block, hi = lo + block;
        sd_dream_timesteps(spb, eps, ts);
        for (size_t i = 0; i < spb; i++) {
            int m = 0;
            for (int p = lo; p < hi; p++)
                if (masked[p]) {
                    pos[m] = p;
                    tok[m] = 0;
                    conf[m] = v[g * n + p].conf;
                    t1[m] = v[g * n + p].top1;
                    t2[m] = v[g * n + p].top2;
                    ent[m] = v[g * n + p].ent;
                    m++;
                }
            if (m == 0) break;
            sd_rng rng;
            sd_rng_init(&rng, (uint64_t)seed, 1000 + (uint64_t)g);
            /* only what the strategy declares; the rest NULL */
            smdiff_step_view view = {sizeof view, i, spb, (size_t)b, (size_t)n_blocks, (size_t)m, (size_t)m, 0,
                                     ts[i], ts[i + 1], at, thr,
                                     need & SMDIFF_NEED_POSITION ? pos : NULL,
                                     need & SMDIFF_NEED_TOKEN ? tok : NULL,
                                     need & SMDIFF_NEED_CONFIDENCE ? conf : NULL,
                                     need & SMDIFF_NEED_TOP2 ? t1 : NULL,
                                     need & SMDIFF_NEED_TOP2 ? t2 : NULL,
                                     need & SMDIFF_NEED_ENTROPY ? ent : NULL,
                                     need & SMDIFF_NEED_RANDOM ? unif : NULL,
                                     need & SMDIFF_NEED_RANDOM ? &rng : NULL,
                                     scratch, 0, NULL, NULL, NULL, (size_t)block, 0, 0, 0, 0,
                                     thr /* the factor scenarios' factor */};
            view.n_transfer = sd_schedule_n_transfer(dec.schedule, (size_t)m, (size_t)block, i, spb, ts);
            int32_t nc = -1, nr = -1;
            assert_int_equal(dec.select(&view, commit, &nc, remask, &nr, ud), 0);
            assert_int_equal(nr, 0);
            assert_true(nc >= 0 && nc <= m);
            uint8_t now[128] = {0};
            for (int k = 0; k < nc; k++) now[pos[commit[k]]] = 1;
            if (i + 1 == spb)
                for (int k = 0; k < m; k++) now[pos[k]] = 1;
            int rg, rk;
            assert_int_equal(fscanf(f, "%15s %d %d", tag, &rg, &rk), 3);
            assert_string_equal(tag, "step");
            assert_int_equal(rg, g);
            uint8_t want[128] = {0};
            for (int k = 0; k < rk; k++) {
                int p;
                assert_int_equal(fscanf(f, "%d", &p), 1);
                want[p] = 1;
            }
            for (int p = 0; p < n; p++)
                if (now[p] != want[p])
                    fail_msg("%s: step %d position %d committed %d, reference %d", name, g, p, now[p],
                             want[p]);
            for (int p = 0; p < n; p++)
                if (now[p]) masked[p] = 0;
            g++;
        }
    }
    assert_int_equal(fscanf(f, "%15s", tag), 1);
    assert_string_equal(tag, "end");
    for (int p = 0; p < n; p++) assert_int_equal(masked[p], 0);
    free(v);
    free(masked);
    free(ts);
    free(scratch);
    return 1;
}

static void test_reference_traces(void **state) {
    (void)state;
    FILE *f = fopen("tests/data/strategies_ref.txt", "r");
    assert_non_null(f);
    int n = 0;
    while (run_scenario(f)) n++;
    fclose(f);
    assert_int_equal(n, 13);
}

/* Hand-worked schedule values. Dream, 12 masked, 6 steps, eps 1e-3:
 * t = linspace(1, 0.001, 7); step 0 gives int(12 * (1 - 0.8335/1)) = 1 and
 * the last step takes what is left. LLaDA: 10 over 4 steps is 3,3,2,2. */
static void test_schedules(void **state) {
    (void)state;
    float ts[7];
    sd_dream_timesteps(6, 1e-3, ts);
    assert_true(ts[0] == 1.0f);
    assert_true(fabsf(ts[6] - 0.001f) < 1e-7f);
    assert_true(fabsf(ts[1] - 0.8335f) < 1e-6f);
    assert_int_equal(sd_dream_n_transfer(12, 0, 6, ts), 1);
    assert_int_equal(sd_dream_n_transfer(7, 5, 6, ts), 7);
    /* step 4: t = 0.334, s = 0.1675: int(5 * (1 - 0.50150)) = 2 */
    assert_int_equal(sd_dream_n_transfer(5, 4, 6, ts), 2);
    size_t s[4];
    sd_llada_schedule(10, 4, s);
    assert_int_equal(s[0], 3);
    assert_int_equal(s[1], 3);
    assert_int_equal(s[2], 2);
    assert_int_equal(s[3], 2);
    sd_llada_schedule(2, 4, s);
    assert_int_equal(s[0] + s[1] + s[2] + s[3], 2);
    assert_int_equal(s[2], 0);
}

/* All eight built-ins are registered, first, and cannot be removed. */
static void test_registry(void **state) {
    (void)state;
    const char *want[] = {"origin", "maskgit_plus", "topk_margin", "entropy",
                          "low_confidence", "random", "threshold", "factor"};
    size_t n;
    assert_int_equal(smdiff_decoder_count(&n), 0);
    assert_true(n >= 8);
    for (int i = 0; i < 8; i++) {
        const char *nm, *desc;
        assert_int_equal(smdiff_decoder_name(i, &nm, &desc), 0);
        assert_string_equal(nm, want[i]);
        assert_true(strlen(desc) > 0);
    }
    assert_int_equal(smdiff_decoder_unregister("entropy"), SMDIFF_E_STATE);
    /* LLaDA's and Fast-dLLM's schedules are declared; a strategy that
     * declares nothing gets Dream's. */
    assert_int_equal(declared("random")->schedule, SMDIFF_SCHEDULE_EVEN);
    assert_int_equal(declared("threshold")->schedule, SMDIFF_SCHEDULE_UNTIL_DONE);
    assert_int_equal(declared("factor")->schedule, SMDIFF_SCHEDULE_UNTIL_DONE);
    smdiff_decoder mine = {sizeof mine, SMDIFF_DECODER_ABI_VERSION, "my_own", NULL, pick_none, NULL, 0, 0, 0, 0, 0, 0};
    assert_int_equal(smdiff_decoder_register(&mine, NULL), 0);
    assert_int_equal(declared("my_own")->schedule, SMDIFF_SCHEDULE_TIMESTEP);
    assert_int_equal(smdiff_decoder_unregister("my_own"), 0);
}

/* The built-ins' declarations, as the reference algorithms define them
 * (docs/DECODING.md's table): Dream's four use the timestep schedule and
 * q[token]; LLaDA's the even schedule and softmax(logits)[token]; Fast-dLLM
 * runs a block until done. Only entropy asks for H(q). */
static void test_builtin_declarations(void **state) {
    (void)state;
    const uint32_t P = SMDIFF_NEED_POSITION, C = SMDIFF_NEED_CONFIDENCE, T2 = SMDIFF_NEED_TOP2,
                   H = SMDIFF_NEED_ENTROPY, R = SMDIFF_NEED_RANDOM;
    const struct {
        const char *name;
        int32_t schedule, confidence;
        uint32_t needs;
        int scratch;
    } want[] = {
        {"origin", SMDIFF_SCHEDULE_TIMESTEP, SMDIFF_CONFIDENCE_SAMPLED, R, 0},
        {"maskgit_plus", SMDIFF_SCHEDULE_TIMESTEP, SMDIFF_CONFIDENCE_SAMPLED, P | C | R, 1},
        {"topk_margin", SMDIFF_SCHEDULE_TIMESTEP, SMDIFF_CONFIDENCE_SAMPLED, P | T2 | R, 1},
        {"entropy", SMDIFF_SCHEDULE_TIMESTEP, SMDIFF_CONFIDENCE_SAMPLED, P | H | R, 1},
        {"low_confidence", SMDIFF_SCHEDULE_EVEN, SMDIFF_CONFIDENCE_RAW, P | C, 1},
        {"random", SMDIFF_SCHEDULE_EVEN, SMDIFF_CONFIDENCE_RAW, P | R, 1},
        {"threshold", SMDIFF_SCHEDULE_UNTIL_DONE, SMDIFF_CONFIDENCE_RAW, P | C, 0},
        {"factor", SMDIFF_SCHEDULE_UNTIL_DONE, SMDIFF_CONFIDENCE_RAW, P | C, 1},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const smdiff_decoder *d = declared(want[i].name);
        assert_int_equal(d->abi_version, SMDIFF_DECODER_ABI_VERSION);
        assert_int_equal(d->schedule, want[i].schedule);
        assert_int_equal(d->confidence, want[i].confidence);
        assert_int_equal(d->needs, want[i].needs);
        assert_int_equal(d->scratch_per_position > 0, want[i].scratch);
    }
}

/* Version-1 structs (up to `release`) are accepted with the defaults,
 * whatever lies after them; a version-2 struct's zeros are the same
 * defaults; bad declarations are refused with a message. */
static void test_declaration_versions(void **state) {
    (void)state;
    size_t v1 = offsetof(smdiff_decoder, release) + sizeof(void (*)(void *));
    unsigned char buf[sizeof(smdiff_decoder)];
    memset(buf, 0xA5, sizeof buf); /* garbage where version 2 has its fields */
    smdiff_decoder d = {(uint32_t)v1, 1, "old_style", "a version-1 strategy", pick_none, NULL, 0, 0, 0, 0, 0, 0};
    memcpy(buf, &d, v1);
    assert_int_equal(smdiff_decoder_register((const smdiff_decoder *)buf, NULL), 0);
    const smdiff_decoder *got = declared("old_style");
    assert_int_equal(got->schedule, SMDIFF_SCHEDULE_TIMESTEP);
    assert_int_equal(got->confidence, SMDIFF_CONFIDENCE_SAMPLED);
    assert_int_equal(got->needs, SMDIFF_NEED_ALL);
    assert_int_equal(got->scratch_per_position, 0);
    assert_int_equal(smdiff_decoder_unregister("old_style"), 0);

    smdiff_decoder z = {sizeof z, SMDIFF_DECODER_ABI_VERSION, "zeros", NULL, pick_none, NULL, 0, 0, 0, 0, 0, 0};
    assert_int_equal(smdiff_decoder_register(&z, NULL), 0);
    assert_int_equal(declared("zeros")->needs, SMDIFF_NEED_ALL);
    assert_int_equal(smdiff_decoder_unregister("zeros"), 0);

    smdiff_decoder bad = z;
    bad.name = "bad";
    bad.schedule = 3;
    assert_int_equal(smdiff_decoder_register(&bad, NULL), SMDIFF_E_INVAL);
    assert_non_null(strstr(smdiff_last_error(), "schedule"));
    bad.schedule = -1;
    assert_int_equal(smdiff_decoder_register(&bad, NULL), SMDIFF_E_INVAL);
    bad.schedule = SMDIFF_SCHEDULE_EVEN;
    bad.confidence = 2;
    assert_int_equal(smdiff_decoder_register(&bad, NULL), SMDIFF_E_INVAL);
    assert_non_null(strstr(smdiff_last_error(), "confidence"));
    bad.confidence = SMDIFF_CONFIDENCE_RAW;
    bad.needs = SMDIFF_NEED_ALL + 1;
    assert_int_equal(smdiff_decoder_register(&bad, NULL), SMDIFF_E_INVAL);
    assert_non_null(strstr(smdiff_last_error(), "needs"));
    bad.needs = SMDIFF_NEED_TOKEN;
    bad.scratch_per_position = SMDIFF_DECODER_MAX_SCRATCH + 1;
    assert_int_equal(smdiff_decoder_register(&bad, NULL), SMDIFF_E_INVAL);
    assert_non_null(strstr(smdiff_last_error(), "scratch"));
    bad.scratch_per_position = SMDIFF_DECODER_MAX_SCRATCH;
    bad.struct_size = (uint32_t)v1; /* version 2 needs its whole layout */
    assert_int_equal(smdiff_decoder_register(&bad, NULL), SMDIFF_E_INVAL);
    bad.struct_size = sizeof bad;
    bad.abi_version = 3;
    assert_int_equal(smdiff_decoder_register(&bad, NULL), SMDIFF_E_UNSUPPORTED);
    bad.abi_version = SMDIFF_DECODER_ABI_VERSION;
    assert_int_equal(smdiff_decoder_register(&bad, NULL), 0);
    got = declared("bad");
    assert_int_equal(got->schedule, SMDIFF_SCHEDULE_EVEN);
    assert_int_equal(got->confidence, SMDIFF_CONFIDENCE_RAW);
    assert_int_equal(got->needs, SMDIFF_NEED_TOKEN);
    assert_int_equal(got->scratch_per_position, SMDIFF_DECODER_MAX_SCRATCH);
    assert_int_equal(smdiff_decoder_unregister("bad"), 0);
}

/* ------------------------------------------------------------- ReMDM */

/* Uniforms from a list, so each decision sits just below or above the
 * probability worked out by hand. */
typedef struct canned {
    const double *u;
    int n, at;
} canned;

static double next_canned(void *st) {
    canned *c = st;
    assert_true(c->at < c->n);
    return c->u[c->at++];
}

/* One ReMDM step on 2 masked and 2 committed positions at time t -> s,
 * with uniforms u[4] (2 for unmasking, then 2 for re-masking); checks the
 * commits and remasks expected and that all four uniforms were drawn. */
static void remdm_step(const char *name, double t, double s, double eta, const double *u, int want_c0,
                       int want_c1, int want_r0, int want_r1) {
    smdiff_decoder dec;
    void *ud;
    assert_int_equal(sd_decoder_lookup(name, &dec, &ud), 0);
    const int32_t pos[2] = {10, 12}, cpos[2] = {11, 13}, ctok[2] = {5, 6};
    canned c = {u, 4, 0};
    smdiff_step_view v;
    memset(&v, 0, sizeof v);
    v.struct_size = sizeof v;
    v.step = 1;
    v.n_steps = 8;
    v.n_masked = 2;
    v.t = t;
    v.s = s;
    v.position = pos;
    v.uniform = next_canned;
    v.rng_state = &c;
    v.n_committed = 2;
    v.committed_position = cpos;
    v.committed_token = ctok;
    v.remask_capacity = 4;
    v.remdm_eta = eta;
    v.remdm_t_on = 0.55;
    v.remdm_t_off = 0.05;
    v.remdm_alpha_on = 0.9;
    int32_t commit[4], remask[4], nc = -1, nr = -1;
    assert_int_equal(dec.select(&v, commit, &nc, remask, &nr, ud), 0);
    assert_int_equal(c.at, 4);
    assert_int_equal(nc, want_c0 + want_c1);
    if (want_c0) assert_int_equal(commit[0], 0);
    if (want_c1) assert_int_equal(commit[nc - 1], 1);
    assert_int_equal(nr, want_r0 + want_r1);
    if (want_r0) assert_int_equal(remask[0], 11);
    if (want_r1) assert_int_equal(remask[nr - 1], 13);
}

/* The posterior's probabilities, worked out by hand from the paper's
 * formulas (alpha_t = 1 - t; unmask (alpha_s - (1 - sigma) alpha_t) /
 * (1 - alpha_t); re-mask sigma), at each schedule's phases. */
static void test_remdm_probabilities(void **state) {
    (void)state;
    const double e = 1e-9;
    /* cap, t 0.5 -> s 0.4, eta 0.1: sigma = min(0.1, 0.4 / 0.5) = 0.1;
     * unmask (0.6 - 0.9 * 0.5) / 0.5 = 0.3 */
    remdm_step("remdm_cap", 0.5, 0.4, 0.1, (const double[]){0.3 - e, 0.3 + e, 0.1 - e, 0.1 + e}, 1, 0, 1, 0);
    /* cap, t 0.9 -> s 0.05, eta 0.5: sigma = min(0.5, 0.05 / 0.1) = 0.5;
     * unmask (0.95 - 0.5 * 0.1) / 0.9 = 1 */
    remdm_step("remdm_cap", 0.9, 0.05, 0.5, (const double[]){0.999999, 0.5, 0.5 - e, 0.5 + e}, 1, 1, 1, 0);
    /* cap, eta 0: MDLM, unmask 1 - s/t = 0.2, nothing re-masked */
    remdm_step("remdm_cap", 0.5, 0.4, 0.0, (const double[]){0.2 + e, 0.2 - e, 0.0, 0.0}, 0, 1, 0, 0);
    /* loop phase 1 (t 0.8 > t_on 0.55): alpha_t = 0.2 * 0.9 / 0.45 = 0.4,
     * alpha_s = 0.3 * 0.9 / 0.45 = 0.6: unmask 0.2 / 0.6 = 1/3; sigma 0 */
    remdm_step("remdm_loop", 0.8, 0.7, 0.02, (const double[]){1.0 / 3 - e, 1.0 / 3 + e, 0.0, 0.0}, 1, 0, 0, 0);
    /* loop phase 2 (t_off < t 0.3 <= t_on): alpha held at 0.9, sigma = eta
     * 0.02: unmask 0.9 * 0.02 / 0.1 = 0.18 */
    remdm_step("remdm_loop", 0.3, 0.2, 0.02, (const double[]){0.18 + e, 0.18 - e, 0.02 + e, 0.02 - e}, 0, 1, 0, 1);
    /* loop phase 3 (t 0.04 <= t_off 0.05): alpha_t = 1 - 0.04 * 0.1 / 0.05
     * = 0.92, alpha_s (s 0.01) = 0.98: unmask 0.06 / 0.08 = 0.75 */
    remdm_step("remdm_loop", 0.04, 0.01, 0.02, (const double[]){0.75 - e, 0.75 + e, 0.0, 0.0}, 1, 0, 0, 0);
    /* loop phase 2 with eta above (1 - alpha_on) / alpha_on: unmasking
     * saturates at 1 */
    remdm_step("remdm_loop", 0.3, 0.2, 0.5, (const double[]){0.999999, 0.999999, 0.5 - e, 0.5 + e}, 1, 1, 1, 0);
}

/* ReMDM's two strategies declare re-masking, Dream's timestep schedule and
 * only the random stream; the appended remask field is read only when the
 * struct is large enough, and unknown trailing fields must be zero. */
static void test_remask_declaration(void **state) {
    (void)state;
    const char *names[] = {"remdm_cap", "remdm_loop"};
    for (int i = 0; i < 2; i++) {
        const smdiff_decoder *d = declared(names[i]);
        assert_int_equal(d->remask, 1);
        assert_int_equal(d->schedule, SMDIFF_SCHEDULE_TIMESTEP);
        assert_int_equal(d->needs, SMDIFF_NEED_RANDOM);
    }
    assert_int_equal(declared("maskgit_plus")->remask, 0);
    /* a version-2 struct that ends before `remask` (built against the
     * header before it was appended): garbage after it is not read */
    size_t v2 = offsetof(smdiff_decoder, scratch_per_position) + sizeof(size_t);
    unsigned char buf[sizeof(smdiff_decoder) + 16];
    memset(buf, 0xA5, sizeof buf);
    smdiff_decoder d = {(uint32_t)v2, SMDIFF_DECODER_ABI_VERSION, "short_v2", NULL, pick_none, NULL, 0, 0, 0, 0, 0, 0};
    memcpy(buf, &d, v2);
    assert_int_equal(smdiff_decoder_register((const smdiff_decoder *)buf, NULL), 0);
    assert_int_equal(declared("short_v2")->remask, 0);
    assert_int_equal(smdiff_decoder_unregister("short_v2"), 0);
    /* one that ends before `final` (built against 0.2's first header):
     * the 0xA5 bytes where final would be are not read */
    size_t before_final = offsetof(smdiff_decoder, final);
    memset(buf, 0xA5, sizeof buf);
    d.remask = 1;
    memcpy(buf, &d, before_final);
    ((smdiff_decoder *)buf)->struct_size = (uint32_t)before_final;
    assert_int_equal(smdiff_decoder_register((const smdiff_decoder *)buf, NULL), 0);
    assert_int_equal(declared("short_v2")->remask, 1);
    assert_int_equal(declared("short_v2")->final, SMDIFF_FINAL_COMMIT_ALL);
    assert_int_equal(smdiff_decoder_unregister("short_v2"), 0);
    d.remask = 0;
    /* final must be a SMDIFF_FINAL_* value, remask 0 or 1 */
    d.struct_size = sizeof d;
    d.name = "bad_final";
    d.final = 2;
    refused_field(&d, "final");
    d.final = SMDIFF_FINAL_ARGMAX;
    assert_int_equal(smdiff_decoder_register(&d, NULL), 0);
    assert_int_equal(declared("bad_final")->final, SMDIFF_FINAL_ARGMAX);
    assert_int_equal(smdiff_decoder_unregister("bad_final"), 0);
    d.final = 0;
    d.name = "bad_remask";
    d.remask = 2;
    refused_field(&d, "remask");
    /* a larger struct (a later header): zeros beyond are fine, anything
     * else is a declaration this library cannot honour */
    d.remask = 1;
    memset(buf, 0, sizeof buf);
    memcpy(buf, &d, sizeof d);
    ((smdiff_decoder *)buf)->struct_size = (uint32_t)sizeof buf;
    assert_int_equal(smdiff_decoder_register((const smdiff_decoder *)buf, NULL), 0);
    assert_int_equal(declared("bad_remask")->remask, 1);
    assert_int_equal(smdiff_decoder_unregister("bad_remask"), 0);
    buf[sizeof d + 3] = 1;
    assert_int_equal(smdiff_decoder_register((const smdiff_decoder *)buf, NULL), SMDIFF_E_UNSUPPORTED);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_remdm_probabilities),
        cmocka_unit_test(test_remask_declaration),
        cmocka_unit_test(test_reference_traces),
        cmocka_unit_test(test_schedules),
        cmocka_unit_test(test_registry),
        cmocka_unit_test(test_builtin_declarations),
        cmocka_unit_test(test_declaration_versions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
