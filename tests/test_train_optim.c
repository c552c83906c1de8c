/* test_train_optim.c -- AdamW, clipping, schedule and EMA (lib/train/optim.c)
 * against steps computed by hand from the textbook formulas (the numbers
 * in the comments were worked out on paper; the asserted expressions spell
 * out the same arithmetic independently of optim.c's loop). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "train/optim.h"

/* Three one-element tensors, one per group, at offsets 0, 16, 32. */
static const sd_ttensor tensors[3] = {
    {"w.weight", 1, 1, 0, SD_TGROUP_DECAY},
    {"n.weight", 1, 1, 16, SD_TGROUP_NO_DECAY},
    {"smdiff.softmask.raw", 1, 1, 32, SD_TGROUP_SM},
};

static void test_two_adamw_steps(void **state) {
    (void)state;
    float p[48] = {0}, g[48] = {0};
    p[0] = 1.0f, p[16] = 2.0f, p[32] = -1.0f;
    sd_adamw_opts o;
    sd_adamw_defaults(&o);
    o.lr = 0.1, o.sm_lr = 0.5, o.weight_decay = 0.1, o.grad_clip = 0;
    sd_adamw opt;
    assert_int_equal(sd_adamw_init(&opt, &o, p, 48, NULL), 0);

    /* step 1, g = (0.5, -0.2, 0.03): m = 0.1 g, v = 0.001 g^2, so
     * m_hat = g, v_hat = g^2 and the move is lr * g / (|g| + eps):
     *   w: 1 * (1 - 0.1*0.1) - 0.1 * 0.5/(0.5 + 1e-8)  = 0.99 - 0.1 = 0.89
     *   n: 2 + 0.1 * 0.2/0.2 = 2.1   (no decay)
     *   sm: -1 - 0.5 * 0.03/0.03 = -1.5  (sm_lr, no decay) */
    g[0] = 0.5f, g[16] = -0.2f, g[32] = 0.03f;
    double norm;
    assert_int_equal(sd_adamw_step(&opt, p, g, tensors, 3, &norm, NULL), 0);
    assert_float_equal(norm, sqrt(0.25 + 0.04 + 0.0009), 1e-7);
    assert_float_equal(p[0], 0.89, 1e-6);
    assert_float_equal(p[16], 2.1, 1e-6);
    assert_float_equal(p[32], -1.5, 1e-6);

    /* step 2, g = (-0.25, -0.2, 0.06):
     *   m = 0.9 m1 + 0.1 g, v = 0.999 v1 + 0.001 g^2,
     *   bias corrections 1 - 0.9^2 = 0.19, 1 - 0.999^2 = 0.001999 */
    double g1[3] = {0.5, -0.2, 0.03}, g2[3] = {-0.25, -0.2, 0.06};
    double start[3] = {0.89, 2.1, -1.5}, lr[3] = {0.1, 0.1, 0.5}, wd[3] = {0.1, 0, 0};
    g[0] = (float)g2[0], g[16] = (float)g2[1], g[32] = (float)g2[2];
    assert_int_equal(sd_adamw_step(&opt, p, g, tensors, 3, NULL, NULL), 0);
    for (int i = 0; i < 3; i++) {
        double m = 0.9 * (0.1 * g1[i]) + 0.1 * g2[i];
        double v = 0.999 * (0.001 * g1[i] * g1[i]) + 0.001 * g2[i] * g2[i];
        double want = start[i] * (1 - lr[i] * wd[i]) - lr[i] * (m / 0.19) / (sqrt(v / 0.001999) + 1e-8);
        assert_float_equal(p[16 * i], want, 2e-6);
    }
    /* w worked by hand: m = 0.045 - 0.025 = 0.02, v = 0.00024975 + 0.0000625
     * = 0.00031225, m_hat = 0.105263, sqrt(v_hat) = 0.395225,
     * move = -0.1 * 0.266337 -> 0.89 * 0.99 - 0.0266337 */
    assert_float_equal(p[0], 0.8811 - 0.0266337, 1e-6);
    assert_int_equal(opt.step, 2);
    sd_adamw_free(&opt);
}

static void test_clipping(void **state) {
    (void)state;
    float p[48] = {0}, g[48] = {0};
    sd_adamw_opts o;
    sd_adamw_defaults(&o);
    o.lr = 0.0, o.sm_lr = 0.0, o.grad_clip = 1.0;
    sd_adamw opt;
    assert_int_equal(sd_adamw_init(&opt, &o, p, 48, NULL), 0);
    g[0] = 3.0f, g[16] = 4.0f; /* norm 5 -> scaled by 1/(5 + 1e-6) */
    double norm;
    assert_int_equal(sd_adamw_step(&opt, p, g, tensors, 3, &norm, NULL), 0);
    assert_float_equal(norm, 5.0, 1e-9);
    assert_float_equal(g[0], 0.6, 1e-6);
    assert_float_equal(g[16], 0.8, 1e-6);
    /* below the threshold: untouched */
    g[0] = 0.3f, g[16] = 0.4f;
    assert_int_equal(sd_adamw_step(&opt, p, g, tensors, 3, &norm, NULL), 0);
    assert_true(g[0] == 0.3f && g[16] == 0.4f);
    /* a NaN gradient stops with SMDIFF_E_NUMERIC and changes nothing */
    sd_error err = {0};
    p[0] = 7.0f;
    g[16] = NAN;
    assert_int_equal(sd_adamw_step(&opt, p, g, tensors, 3, NULL, &err), SMDIFF_E_NUMERIC);
    assert_non_null(strstr(err.msg, "not finite"));
    assert_true(p[0] == 7.0f);
    assert_int_equal(opt.step, 2);
    sd_adamw_free(&opt);
}

static void test_schedule(void **state) {
    (void)state;
    sd_adamw_opts o;
    sd_adamw_defaults(&o);
    o.warmup_steps = 10;
    assert_float_equal(sd_lr_at(&o, 0, 1.0), 0.1, 1e-12);
    assert_float_equal(sd_lr_at(&o, 4, 1.0), 0.5, 1e-12);
    assert_float_equal(sd_lr_at(&o, 9, 1.0), 1.0, 1e-12);
    assert_float_equal(sd_lr_at(&o, 500, 2.0), 2.0, 1e-12);
    o.schedule = SD_LR_COSINE;
    o.total_steps = 110;
    assert_float_equal(sd_lr_at(&o, 10, 1.0), 1.0, 1e-12);  /* cos(0) */
    assert_float_equal(sd_lr_at(&o, 60, 1.0), 0.5, 1e-12);  /* cos(pi/2): halfway */
    assert_float_equal(sd_lr_at(&o, 110, 1.0), 0.0, 1e-12); /* cos(pi) */
    assert_float_equal(sd_lr_at(&o, 999, 1.0), 0.0, 1e-12); /* stays at the floor */
    o.min_lr_frac = 0.1;
    assert_float_equal(sd_lr_at(&o, 60, 1.0), 0.55, 1e-12); /* 0.1 + 0.9 * 0.5 */
    assert_float_equal(sd_lr_at(&o, 35, 1.0), 0.1 + 0.45 * (1 + sqrt(0.5)), 1e-12); /* pi/4 */
}

static void test_ema_and_options(void **state) {
    (void)state;
    float p[48] = {0}, g[48] = {0};
    p[0] = 1.0f;
    sd_adamw_opts o;
    sd_adamw_defaults(&o);
    o.lr = 0.1, o.weight_decay = 0, o.grad_clip = 0, o.ema_decay = 0.9;
    sd_adamw opt;
    assert_int_equal(sd_adamw_init(&opt, &o, p, 48, NULL), 0);
    assert_float_equal(opt.ema[0], 1.0, 0);
    g[0] = 2.0f; /* first step moves by lr: p = 0.9; ema = 0.9 * 1 + 0.1 * 0.9 = 0.99 */
    assert_int_equal(sd_adamw_step(&opt, p, g, tensors, 3, NULL, NULL), 0);
    assert_float_equal(p[0], 0.9, 1e-6);
    assert_float_equal(opt.ema[0], 0.99, 1e-6);
    sd_adamw_free(&opt);

    sd_error err = {0};
    o.beta2 = 1.0;
    assert_int_equal(sd_adamw_init(&opt, &o, p, 48, &err), SMDIFF_E_INVAL);
    assert_non_null(strstr(err.msg, "bad options"));
    sd_adamw_free(&opt);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_adamw_steps),
        cmocka_unit_test(test_clipping),
        cmocka_unit_test(test_schedule),
        cmocka_unit_test(test_ema_and_options),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
