/* test_softmask.c -- the soft-masking weight lambda and the embedding mix
 * against values computed independently by tests/ref/softmask_ref.py. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "diffusion/softmask.h"
#include "smdiff/smdiff.h"
#include "testutil.h"

static void test_lambda_matches_reference(void **state) {
    (void)state;
    FILE *f = fopen(test_data_path("softmask_lambda.txt"), "r");
    assert_non_null(f);
    int n_rows = 0;
    assert_int_equal(fscanf(f, "rows %d", &n_rows), 1);
    float *rows[16] = {0};
    int len[16] = {0};
    assert_true(n_rows > 0 && n_rows <= 16);
    for (int r = 0; r < n_rows; r++) {
        assert_int_equal(fscanf(f, "%d", &len[r]), 1);
        rows[r] = malloc(sizeof(float) * (size_t)len[r]);
        for (int i = 0; i < len[r]; i++) {
            double v;
            assert_int_equal(fscanf(f, "%lf", &v), 1);
            rows[r][i] = (float)v;
        }
    }
    smdiff_softmask *sm = NULL;
    assert_int_equal(smdiff_softmask_create(&sm), SMDIFF_OK);
    int r, mode, fade, step, n_steps, checked = 0, nonzero = 0;
    double scale, steep, centre, cst, ws, we, want;
    while (fscanf(f, "%d %d %lf %lf %lf %lf %lf %lf %d %d %d %lf", &r, &mode, &scale, &steep,
                  &centre, &cst, &ws, &we, &fade, &step, &n_steps, &want) == 12) {
        /* Reset the window first so the ordering check never trips. */
        assert_int_equal(smdiff_softmask_set_double(sm, SMDIFF_SM_WINDOW_START, 0), SMDIFF_OK);
        assert_int_equal(smdiff_softmask_set_double(sm, SMDIFF_SM_WINDOW_END, we), SMDIFF_OK);
        assert_int_equal(smdiff_softmask_set_double(sm, SMDIFF_SM_WINDOW_START, ws), SMDIFF_OK);
        assert_int_equal(smdiff_softmask_set_int(sm, SMDIFF_SM_MODE, mode), SMDIFF_OK);
        assert_int_equal(smdiff_softmask_set_int(sm, SMDIFF_SM_FADE, fade), SMDIFF_OK);
        assert_int_equal(smdiff_softmask_set_double(sm, SMDIFF_SM_SCALE, scale), SMDIFF_OK);
        assert_int_equal(smdiff_softmask_set_double(sm, SMDIFF_SM_STEEPNESS, steep), SMDIFF_OK);
        assert_int_equal(smdiff_softmask_set_double(sm, SMDIFF_SM_CENTRE, centre), SMDIFF_OK);
        assert_int_equal(smdiff_softmask_set_double(sm, SMDIFF_SM_CONSTANT_LAMBDA, cst), SMDIFF_OK);
        double got = -1;
        assert_int_equal(smdiff_softmask_lambda(sm, rows[r], len[r], step, n_steps, &got), SMDIFF_OK);
        /* Both sides compute in double from the same float32 probabilities;
         * only summation order differs. */
        if (fabs(got - want) > 1e-12 + 1e-9 * fabs(want)) {
            print_error("row %d mode %d step %d/%d: got %.17g want %.17g\n", r, mode, step, n_steps,
                        got, want);
            fail();
        }
        checked++;
        nonzero += want != 0;
    }
    fclose(f);
    assert_int_equal(checked, n_rows * 72);
    assert_true(nonzero > checked / 3);  /* the fixture is not all zeros */
    smdiff_softmask_free(sm);
    for (int i = 0; i < n_rows; i++) free(rows[i]);
}

static void test_constraint_maps(void **state) {
    (void)state;
    /* Round trips hold to ~1e-9 where the maps are well conditioned. */
    for (double x = -15; x <= 15; x += 0.37) {
        double s = sd_sigmoid(x);
        assert_true(s > 0 && s < 1);
        assert_true(fabs(sd_logit(s) - x) < 1e-6);
        double sp = sd_softplus(x);
        assert_true(sp > 0);
        if (x > -10) assert_true(fabs(sd_softplus_inv(sp) - x) < 1e-6);
    }
    assert_true(fabs(sd_softplus(0) - log(2.0)) < 1e-15);
    assert_true(fabs(sd_sigmoid(0) - 0.5) < 1e-15);
    assert_true(sd_softplus(1000) == 1000);  /* no overflow */
    assert_true(sd_sigmoid(-1000) >= 0);
}

/* e = (1-l) E[mask] + l * sum_i (p_i / sum p) E[v_i], worked by hand. */
static void test_embedding_mix(void **state) {
    (void)state;
    const float embd[4 * 3] = {1, 0, 0, 0, 1, 0, 0, 0, 1, 2, 2, 2};
    const float *mask = embd + 9;
    int32_t ids[2] = {0, 2};
    float probs[2] = {0.3f, 0.1f};  /* renormalised: 0.75, 0.25 */
    float out[3];
    sd_softmask_mix(embd, 3, mask, ids, probs, 2, 0.4f, out);
    float want[3] = {0.6f * 2 + 0.4f * 0.75f, 0.6f * 2, 0.6f * 2 + 0.4f * 0.25f};
    for (int j = 0; j < 3; j++) assert_true(fabsf(out[j] - want[j]) < 1e-6f);
    sd_softmask_mix(embd, 3, mask, ids, probs, 2, 0.0f, out);
    for (int j = 0; j < 3; j++) assert_true(out[j] == 2.0f);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lambda_matches_reference),
        cmocka_unit_test(test_constraint_maps),
        cmocka_unit_test(test_embedding_mix),
    };
    return cmocka_run_group_tests_name("softmask", tests, NULL, NULL);
}
