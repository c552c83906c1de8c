/* test_strategies.c -- the built-in decoder strategies and their schedules
 * against traces replayed by tests/ref/strategies_ref.py (Dream, LLaDA and
 * Fast-dLLM selection rules) in tests/data/strategies_ref.txt, plus the
 * registry's handling of them. */
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
    int family = sd_decoder_family(strat);
    int n_blocks = gen / block, spb = family == SD_FAMILY_THRESHOLD ? block : steps / n_blocks;
    uint8_t *masked = calloc((size_t)n, 1);
    for (int p = P; p < n; p++) masked[p] = 1;
    float *ts = malloc(sizeof(float) * (size_t)(spb + 1));
    int32_t *sched = malloc(sizeof(int32_t) * (size_t)spb);
    int32_t pos[64], tok[64], commit[64], remask[64];
    float conf[64], t1[64], t2[64], ent[64];
    int g = 0;
    for (int b = 0; b < n_blocks; b++) {
        int lo = P + b * block, hi = lo + block;
        sd_dream_timesteps(spb, eps, ts);
        if (family == SD_FAMILY_LLADA) sd_llada_schedule(block, spb, sched);
        for (int i = 0; i < spb; i++) {
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
            smdiff_step_view view = {sizeof view, i, spb, b, n_blocks, m, m, 0, ts[i], ts[i + 1], at,
                                     thr, pos, tok, conf, t1, t2, ent, unif, &rng};
            view.n_transfer = family == SD_FAMILY_DREAM ? sd_dream_n_transfer(m, i, spb, ts)
                              : family == SD_FAMILY_LLADA ? sched[i]
                                                          : m;
            int32_t nc = -1, nr = -1;
            assert_int_equal(dec.select(&view, commit, &nc, remask, &nr, ud), 0);
            assert_int_equal(nr, 0);
            assert_true(nc >= 0 && nc <= m);
            uint8_t now[128] = {0};
            for (int k = 0; k < nc; k++) now[pos[commit[k]]] = 1;
            if (i == spb - 1)
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
    free(sched);
    return 1;
}

static void test_reference_traces(void **state) {
    (void)state;
    FILE *f = fopen("tests/data/strategies_ref.txt", "r");
    assert_non_null(f);
    int n = 0;
    while (run_scenario(f)) n++;
    fclose(f);
    assert_int_equal(n, 11);
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
    int32_t s[4];
    sd_llada_schedule(10, 4, s);
    assert_int_equal(s[0], 3);
    assert_int_equal(s[1], 3);
    assert_int_equal(s[2], 2);
    assert_int_equal(s[3], 2);
    sd_llada_schedule(2, 4, s);
    assert_int_equal(s[0] + s[1] + s[2] + s[3], 2);
    assert_int_equal(s[2], 0);
}

/* All seven built-ins are registered, first, and cannot be removed. */
static void test_registry(void **state) {
    (void)state;
    const char *want[] = {"origin", "maskgit_plus", "topk_margin", "entropy",
                          "low_confidence", "random", "threshold"};
    int32_t n;
    assert_int_equal(smdiff_decoder_count(&n), 0);
    assert_true(n >= 7);
    for (int i = 0; i < 7; i++) {
        const char *nm, *desc;
        assert_int_equal(smdiff_decoder_name(i, &nm, &desc), 0);
        assert_string_equal(nm, want[i]);
        assert_true(strlen(desc) > 0);
    }
    assert_int_equal(smdiff_decoder_unregister("entropy"), SMDIFF_E_STATE);
    assert_int_equal(sd_decoder_family("random"), SD_FAMILY_LLADA);
    assert_int_equal(sd_decoder_family("threshold"), SD_FAMILY_THRESHOLD);
    assert_int_equal(sd_decoder_family("my_own"), SD_FAMILY_DREAM);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reference_traces),
        cmocka_unit_test(test_schedules),
        cmocka_unit_test(test_registry),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
