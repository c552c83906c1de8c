/* test_numeric.c -- the numeric base in lib/core/: the tensor type table
 * (numfmt.h), CPU feature detection (cpu.h) and the shared exp (vecmath.h).
 *
 * References are independent of the code under test: the type numbers and
 * block sizes are written out here from ggml's published list (gguf-py's
 * GGML_QUANT_SIZES, ggml.h's enum ggml_type); the CPU features are compared
 * with what the Linux kernel reports in /proc/cpuinfo; exp is compared
 * with libm's double-precision exp (and the one-lane exp with a lane of the
 * 8-lane one, bit for bit).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cpu.h"
#include "core/numfmt.h"
#include "core/vecmath.h"
#include "testutil.h"

/* ------------------------------------------------------------ type table */

static void test_type_table_matches_ggml(void **state) {
    (void)state;
    /* number, name, elements per block, bytes per block */
    static const struct {
        uint32_t id;
        const char *name;
        uint32_t block, bytes;
    } want[] = {
        {0, "F32", 1, 4},         {1, "F16", 1, 2},          {2, "Q4_0", 32, 2 + 16},
        {3, "Q4_1", 32, 2 + 2 + 16}, {6, "Q5_0", 32, 2 + 4 + 16}, {7, "Q5_1", 32, 2 + 2 + 4 + 16},
        {8, "Q8_0", 32, 2 + 32},  {9, "Q8_1", 32, 4 + 32},   {10, "Q2_K", 256, 2 + 2 + 256 / 16 + 256 / 4},
        {11, "Q3_K", 256, 2 + 256 / 4 + 256 / 8 + 12},       {12, "Q4_K", 256, 2 + 2 + 256 / 2 + 12},
        {13, "Q5_K", 256, 2 + 2 + 256 / 2 + 256 / 8 + 12},   {14, "Q6_K", 256, 2 + 256 / 2 + 256 / 4 + 256 / 16},
        {15, "Q8_K", 256, 4 + 256 + 2 * 256 / 16},           {16, "IQ2_XXS", 256, 2 + 256 / 4},
        {17, "IQ2_XS", 256, 2 + 256 / 4 + 256 / 32},         {18, "IQ3_XXS", 256, 2 + 256 / 4 + 256 / 8},
        {19, "IQ1_S", 256, 2 + 256 / 8 + 256 / 16},          {20, "IQ4_NL", 32, 2 + 16},
        {21, "IQ3_S", 256, 2 + 256 / 4 + 256 / 8 + 256 / 32 + 4}, {22, "IQ2_S", 256, 2 + 256 / 4 + 256 / 16},
        {23, "IQ4_XS", 256, 2 + 2 + 256 / 2 + 256 / 64},     {24, "I8", 1, 1},
        {25, "I16", 1, 2},        {26, "I32", 1, 4},         {27, "I64", 1, 8},
        {28, "F64", 1, 8},        {29, "IQ1_M", 256, 256 / 8 + 256 / 16 + 256 / 32},
        {30, "BF16", 1, 2},       {34, "TQ1_0", 256, 2 + 4 * 13}, {35, "TQ2_0", 256, 2 + 64},
        {39, "MXFP4", 32, 1 + 16}, {40, "NVFP4", 64, 4 + 32},
    };
    size_t n = sizeof want / sizeof want[0];
    int seen[SD_GGML_TYPE_COUNT + 8] = {0};
    for (size_t i = 0; i < n; i++) {
        const sd_ggml_type_info *t = sd_ggml_type_info_of(want[i].id);
        assert_non_null(t);
        assert_string_equal(t->name, want[i].name);
        assert_string_equal(sd_ggml_type_name(want[i].id), want[i].name);
        assert_int_equal(t->block, want[i].block);
        assert_int_equal(sd_ggml_block_size(want[i].id), want[i].block);
        assert_int_equal(t->bytes, want[i].bytes);
        assert_int_equal(sd_ggml_type_size(want[i].id, 3ull * want[i].block), 3ull * want[i].bytes);
        assert_int_equal(sd_ggml_row_size(want[i].id, 2 * (int64_t)want[i].block), 2ull * want[i].bytes);
        if (want[i].block > 1) {
            assert_int_equal(sd_ggml_type_size(want[i].id, want[i].block + 1), 0);
            assert_int_equal(sd_ggml_row_size(want[i].id, want[i].block - 1), 0);
        }
        seen[want[i].id] = 1;
    }
    /* the removed numbers and everything past the end are not types */
    for (uint32_t id = 0; id < SD_GGML_TYPE_COUNT + 8; id++) {
        if (seen[id]) continue;
        assert_null(sd_ggml_type_info_of(id));
        assert_string_equal(sd_ggml_type_name(id), "unknown");
        assert_int_equal(sd_ggml_block_size(id), 0);
        assert_int_equal(sd_ggml_type_size(id, 256), 0);
        assert_false(sd_ggml_is_supported(id));
    }
    assert_null(sd_ggml_type_info_of(UINT32_MAX));
    assert_int_equal(sd_ggml_row_size(SD_GGML_F32, -1), 0);
    /* the enum's numbers are ggml's */
    assert_int_equal(SD_GGML_Q4_K, 12);
    assert_int_equal(SD_GGML_BF16, 30);
    assert_int_equal(SD_GGML_MXFP4, 39);
    /* no overflow: 2^62 blocks of 34 bytes do not fit in 64 bits */
    assert_int_equal(sd_ggml_type_size(SD_GGML_Q8_0, (1ull << 62) * 32), 0);
    /* what smdiff computes with today */
    uint32_t sup[] = {SD_GGML_F32,  SD_GGML_F16,  SD_GGML_BF16, SD_GGML_Q4_0, SD_GGML_Q4_1,
                      SD_GGML_Q5_0, SD_GGML_Q5_1, SD_GGML_Q8_0, SD_GGML_Q2_K, SD_GGML_Q3_K,
                      SD_GGML_Q4_K, SD_GGML_Q5_K, SD_GGML_Q6_K, SD_GGML_IQ4_NL, SD_GGML_IQ4_XS};
    int n_sup = 0;
    for (uint32_t id = 0; id < SD_GGML_TYPE_COUNT; id++) n_sup += sd_ggml_is_supported(id);
    for (size_t i = 0; i < sizeof sup / sizeof sup[0]; i++) assert_true(sd_ggml_is_supported(sup[i]));
    assert_int_equal(n_sup, (int)(sizeof sup / sizeof sup[0]));
}

/* ------------------------------------------------------------------- cpu */

/* The kernel's flag list for the first CPU as " f1 f2 ... fn ", or NULL
 * (not Linux, or no flags line). /proc files have no size, so read lines. */
static char *cpuinfo_flags(void) {
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return NULL;
    char *line = NULL, *flags = NULL;
    size_t cap = 0;
    while (!flags && getline(&line, &cap, f) > 0) {
        char *colon = strchr(line, ':');
        if (strncmp(line, "flags", 5) || !colon) continue;
        colon[strcspn(colon, "\n")] = '\0';
        size_t len = strlen(colon + 1) + 3;
        flags = malloc(len);
        assert_non_null(flags);
        snprintf(flags, len, "%s ", colon + 1);
    }
    free(line);
    fclose(f);
    return flags;
}

static void test_cpu_features_match_kernel(void **state) {
    (void)state;
    char desc[256];
    size_t need = sd_cpu_describe(desc, sizeof desc);
    print_message("  cpu features: %s\n", desc[0] ? desc : "(none)");
    assert_int_equal(need, strlen(desc) + 1);
    if (getenv("SMDIFF_CPU_MASK")) SKIP_BECAUSE("SMDIFF_CPU_MASK is set: detection is masked on purpose");
    char *flags = cpuinfo_flags();
#if !defined(__x86_64__)
    assert_int_equal(sd_cpu_features(), 0);
    free(flags);
    return;
#endif
    if (!flags) SKIP_BECAUSE("/proc/cpuinfo has no flags line");
    for (int i = 0; i < SD_CPU_N_FEATURES; i++) {
        uint32_t bit = 1u << i;
        const char *name = sd_cpu_feature_name(bit);
        assert_non_null(name);
        char pat[64];
        snprintf(pat, sizeof pat, " %s ", name);
        int kernel = strstr(flags, pat) != NULL;
        if (kernel != sd_cpu_has(bit))
            fail_msg("feature %s: kernel says %d, sd_cpu_has says %d", name, kernel, sd_cpu_has(bit));
    }
    free(flags);
    assert_null(sd_cpu_feature_name(0));
    assert_null(sd_cpu_feature_name(3));
    assert_null(sd_cpu_feature_name(1u << SD_CPU_N_FEATURES));
    /* sets are all-or-nothing */
    assert_int_equal(sd_cpu_has(SD_CPU_SET_AVX2),
                     sd_cpu_has(SD_CPU_AVX2) && sd_cpu_has(SD_CPU_FMA) && sd_cpu_has(SD_CPU_F16C));
    /* truncation keeps the buffer terminated and reports the full length */
    char small[4];
    assert_int_equal(sd_cpu_describe(small, sizeof small), need);
    assert_true(strlen(small) < sizeof small);
    assert_int_equal(sd_cpu_describe(NULL, 0), need);
}

/* ------------------------------------------------------------------- exp */

/* |got - want| in units of the float spacing at want. */
static double ulps(float got, double want) {
    float w = (float)want;
    double ulp = (double)nextafterf(fabsf(w), INFINITY) - fabsf(w);
    return fabs((double)got - want) / ulp;
}

static void test_expf_against_libm(void **state) {
    (void)state;
    double worst = 0, worst_v = 0;
    int wrong_rounding = 0, n = 0;
    /* every 1009th float bit pattern in [-103, 88.7]: ~2.2 million values */
    for (uint32_t b = 0; b < 0xFFFFFFFFu - 1009; b += 1009) {
        float x;
        memcpy(&x, &b, 4);
        if (!(x >= -103.0f && x <= 88.7f)) continue;
        double want = exp((double)x);
        float got = sd_expf(x);
        double e = ulps(got, want);
        if (e > worst) worst = e;
        wrong_rounding += got != (float)want;
        n++;
        if (x >= SD_EXP_LO && x <= SD_EXP_HI && want > 1e-37) {
            /* the 8-lane form, lane by lane (all lanes equal x) */
            sd_v8f v = sd_v8_exp(sd_v8_splat(x));
            for (int j = 0; j < 8; j++) {
                double ev = ulps(v[j], want);
                if (ev > worst_v) worst_v = ev;
            }
            /* the one-lane form is the same steps: the same bits */
            float one = sd_v1_exp(x), lane = v[0];
            if (memcmp(&one, &lane, 4)) fail_msg("sd_v1_exp(%a) = %a, a lane of sd_v8_exp %a", x, one, lane);
        }
    }
    print_message("  sd_expf: worst %.3f ulp, %d of %d not the correctly rounded value; "
                  "sd_v8_exp: worst %.3f ulp\n", worst, wrong_rounding, n, worst_v);
    assert_true(worst < 0.51);
    assert_true(wrong_rounding * 1000 < n); /* correctly rounded in > 99.9% of cases */
    assert_true(worst_v < 2.0);
    /* the ends */
    assert_true(sd_expf(-INFINITY) == 0.0f);
    assert_true(sd_expf(-200.0f) == 0.0f);
    assert_true(isinf(sd_expf(89.0f)) && sd_expf(89.0f) > 0);
    assert_true(isinf(sd_expf(INFINITY)));
    assert_true(isnan(sd_expf(NAN)));
    assert_true(sd_expf(0.0f) == 1.0f);
    assert_true(sd_expf(88.72283f) < INFINITY);
    float sub = sd_expf(-100.0f); /* subnormal, still right */
    assert_true(sub > 0 && fabs(sub - exp(-100.0)) <= 1.5e-45);
    /* the vector form clamps and keeps NaN */
    /* (volatile: computed at run time, as in the kernels; a compiler may
     * fold constant calls with fused multiply-adds the target lacks) */
    static volatile float ends[8] = {-INFINITY, -1000.0f, 1000.0f, INFINITY, NAN, 0.0f, 1.0f, -1.0f};
    float xs[8];
    for (int j = 0; j < 8; j++) xs[j] = ends[j];
    sd_v8f v = sd_v8_exp(sd_v8_load(xs));
    assert_true(v[0] == v[1] && v[0] > 0 && v[0] < 2e-38f);
    assert_true(v[2] == v[3] && isfinite(v[2]) && v[2] > 1e38f);
    assert_true(isnan(v[4]));
    for (int j = 0; j < 8; j++) {
        float one = sd_v1_exp(xs[j]), lane = v[j];
        assert_true(j == 4 ? isnan(one) : !memcmp(&one, &lane, 4));
    }
    assert_true(v[5] == 1.0f);
    assert_true(fabs(v[6] - M_E) < 3e-7 && fabs(v[7] - 1 / M_E) < 1e-7);
    /* friends */
    assert_true(fabsf(sd_sigmoidf(0.0f) - 0.5f) == 0.0f);
    assert_true(fabs(sd_sigmoidf(2.0f) - 1 / (1 + exp(-2.0))) < 1e-7);
    assert_true(sd_sigmoidf(-200.0f) == 0.0f && sd_sigmoidf(200.0f) == 1.0f);
    assert_true(fabs(sd_siluf(-3.0f) - (-3.0 / (1 + exp(3.0)))) < 1e-7);
    assert_true(sd_siluf(-200.0f) == 0.0f);
    float s[8] = {1, 2, 3, 4, 5, 6, 7, 8.5f};
    assert_true(sd_v8_hsum(sd_v8_load(s)) == 36.5f);
    assert_true(sd_v8_max(sd_v8_splat(1.0f), sd_v8_splat(NAN))[0] != sd_v8_max(sd_v8_splat(1.0f), sd_v8_splat(NAN))[0]);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_type_table_matches_ggml),
        cmocka_unit_test(test_cpu_features_match_kernel),
        cmocka_unit_test(test_expf_against_libm),
    };
    return cmocka_run_group_tests_name("numeric", tests, NULL, NULL);
}
