/* test_code_eval.c -- the evaluation tooling of the code experiment:
 *  - `smdiff eval infill` on the bundled model and a task file written
 *    here: one record per (task, seed, fraction); the span is the middle's
 *    token count, steps max(1, round(f * span)), the canvas the prefix,
 *    the masks and the suffix, cut at the outer ends to the context (the
 *    cut computed here); a record's fill equals smdiff_generate_canvas on
 *    the same canvas and sampler options; --softmask off is recorded; bad
 *    command lines exit 2, bad task files 1 with the line named;
 *  - `smdiff eval samples --dump --prompt-id`: one JSON line per sample;
 *    the same samples whatever --batch, with and without a cache;
 *    an id outside the vocabulary is refused;
 *  - the Python scripts (make_infill_tasks, score_infill, score_samples,
 *    gate_through_training) through tests/test_code_scripts.py. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"

#include "smdiff/smdiff.h"

#define BUNDLED "models/smdiff-gutenberg-18m-sm.gguf"

static char dir[256];

static int setup(void **state) {
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/smdiff_test_code_%d", (int)getpid());
    return mkdir(dir, 0700) ? -1 : 0;
}

static int teardown(void **state) {
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
}

static size_t n_tokens(const smdiff_model *m, const char *text) {
    size_t n = 0;
    int32_t rc = smdiff_model_tokenize(m, text, strlen(text), 0, NULL, 0, &n);
    assert_true(rc == SMDIFF_OK || rc == SMDIFF_E_BUFFER);
    return n;
}

static int32_t *tokens_of(const smdiff_model *m, const char *text, size_t *n) {
    *n = n_tokens(m, text);
    int32_t *ids = malloc(sizeof(int32_t) * (*n + 1));
    assert_int_equal(smdiff_model_tokenize(m, text, strlen(text), 0, ids, *n + 1, n), SMDIFF_OK);
    return ids;
}

/* the three tasks: two short ones (prose, which the bundled model knows)
 * and one whose prefix is longer than its context of 128 */
static const char *PRE[3] = {"It was the best of times, it was the", "The old man looked at the sea and\n", NULL};
static const char *MID[3] = {" worst of times, it was the age of wisdom,", "said nothing for a long while.\n",
                             "    return z\n"};
static const char *SUF[3] = {" it was the age of foolishness.", "Then he went home.\n", ""};

static void write_tasks(const char *path, char *long_prefix) {
    strcpy(long_prefix, "def h():\n");
    for (int i = 0; i < 80; i++) strcat(long_prefix, "    z = z + 1\n");
    PRE[2] = long_prefix;
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    for (int i = 0; i < 3; i++) {
        json_t *j = json_pack("{s:s, s:s, s:s, s:s}", "id", i == 0 ? "f" : i == 1 ? "g" : "h", "prefix", PRE[i],
                              "middle", MID[i], "suffix", SUF[i]);
        assert_non_null(j);
        assert_int_equal(json_dumpf(j, f, JSON_COMPACT), 0);
        fputc('\n', f);
        json_decref(j);
    }
    assert_int_equal(fclose(f), 0);
}

/* One record's fill redone through the public API. */
static void check_fill(smdiff_model *m, int t, json_t *rec) {
    size_t np, nm, ns;
    int32_t *p = tokens_of(m, PRE[t], &np), *mid = tokens_of(m, MID[t], &nm), *s = tokens_of(m, SUF[t], &ns);
    int64_t mask = 0;
    assert_int_equal(smdiff_model_property(m, SMDIFF_PROP_MASK_ID, &mask), SMDIFF_OK);
    int32_t canvas[128];
    size_t n = 0;
    for (size_t i = 0; i < np; i++) canvas[n++] = p[i];
    for (size_t i = 0; i < nm; i++) canvas[n++] = (int32_t)mask;
    for (size_t i = 0; i < ns; i++) canvas[n++] = s[i];
    smdiff_sampler *sm = NULL;
    smdiff_softmask *sched = NULL;
    assert_int_equal(smdiff_sampler_create(&sm), SMDIFF_OK);
    assert_int_equal(smdiff_sampler_set_int(sm, SMDIFF_SAMPLER_THREADS, 1), SMDIFF_OK);
    assert_int_equal(smdiff_sampler_set_int(sm, SMDIFF_SAMPLER_STOP_AT_EOS, 0), SMDIFF_OK);
    assert_int_equal(smdiff_sampler_set_double(sm, SMDIFF_SAMPLER_TEMPERATURE, 1.0), SMDIFF_OK);
    assert_int_equal(smdiff_softmask_create_from_model(m, &sched), SMDIFF_OK);
    assert_int_equal(smdiff_sampler_set_softmask(sm, sched), SMDIFF_OK);
    assert_int_equal(smdiff_sampler_set_int(sm, SMDIFF_SAMPLER_SEED, json_integer_value(json_object_get(rec, "seed"))),
                     SMDIFF_OK);
    assert_int_equal(smdiff_sampler_set_int(sm, SMDIFF_SAMPLER_STEPS, json_integer_value(json_object_get(rec, "steps"))),
                     SMDIFF_OK);
    assert_int_equal(smdiff_sampler_set_int(sm, SMDIFF_SAMPLER_BLOCK_LENGTH, (int64_t)nm), SMDIFF_OK);
    assert_int_equal(smdiff_generate_canvas(sm, m, canvas, n), SMDIFF_OK);
    char text[1024];
    size_t len = 0;
    assert_int_equal(smdiff_model_detokenize(m, canvas + np, nm, 0, text, sizeof text - 1, &len), SMDIFF_OK);
    text[len] = 0;
    int ascii = 1;
    for (size_t i = 0; i < len; i++) ascii &= (unsigned char)text[i] < 0x80;
    const char *filled = json_string_value(json_object_get(rec, "filled"));
    assert_non_null(filled);
    printf("  task %d seed %lld steps %lld: \"%s\"\n", t, (long long)json_integer_value(json_object_get(rec, "seed")),
           (long long)json_integer_value(json_object_get(rec, "steps")), filled);
    if (ascii) assert_string_equal(filled, text);
    else printf("  (not ASCII: its invalid UTF-8 is replaced in the record; not compared)\n");
    smdiff_softmask_free(sched);
    smdiff_sampler_free(sm);
    free(p), free(mid), free(s);
}

static void test_infill_cli(void **state) {
    (void)state;
    const char *smdiff = test_cli_path();
    if (!smdiff) SKIP_BECAUSE("the smdiff CLI is not built (set BUILD to its folder)");
    char tasks[300], out[300], cmd[1400], long_prefix[2048];
    static char buf[65536];
    snprintf(tasks, sizeof tasks, "%s/tasks.jsonl", dir);
    snprintf(out, sizeof out, "%s/out.jsonl", dir);
    write_tasks(tasks, long_prefix);
    snprintf(cmd, sizeof cmd, "%s eval infill -m " BUNDLED " --tasks %s -o %s --steps-frac 0.25,1 --seeds 1,2 "
             "--temp 1 --threads 1 2>&1", smdiff, tasks, out);
    assert_int_equal(test_run(cmd, buf, sizeof buf), 0);
    assert_non_null(strstr(buf, "3 tasks x 2 seeds x 2 budgets = 12 fills (0 failed)"));
    smdiff_model *m = NULL;
    assert_int_equal(smdiff_model_create(&m), SMDIFF_OK);
    assert_int_equal(smdiff_model_load_file(m, BUNDLED), SMDIFF_OK);
    FILE *f = fopen(out, "r");
    assert_non_null(f);
    json_error_t je;
    int n = 0, checked = 0;
    char line[4096];
    const double fr[2] = {0.25, 1};
    while (fgets(line, sizeof line, f)) {
        json_t *r = json_loads(line, 0, &je);
        assert_non_null(r);
        /* order: task, seed, fraction */
        int t = n / 4, seed = 1 + (n / 2) % 2;
        double frac = fr[n % 2];
        size_t np = n_tokens(m, PRE[t]), nm = n_tokens(m, MID[t]), ns = n_tokens(m, SUF[t]);
        size_t want_steps = (size_t)llround(frac * (double)nm);
        if (want_steps < 1) want_steps = 1;
        /* the context keeps the middle and as much of the rest as fits: the
         * suffix of task h is empty, so its prefix keeps 128 - nm tokens */
        size_t cut_p = np + nm + ns > 128 ? np + nm + ns - 128 : 0;
        assert_string_equal(json_string_value(json_object_get(r, "id")), t == 0 ? "f" : t == 1 ? "g" : "h");
        assert_int_equal(json_integer_value(json_object_get(r, "seed")), seed);
        assert_true(json_real_value(json_object_get(r, "steps_frac")) == frac);
        assert_int_equal(json_integer_value(json_object_get(r, "span_tokens")), nm);
        assert_int_equal(json_integer_value(json_object_get(r, "steps")), want_steps);
        assert_int_equal(json_integer_value(json_object_get(r, "canvas_tokens")), np + nm + ns - cut_p);
        assert_int_equal(json_integer_value(json_object_get(r, "cut_prefix_tokens")), cut_p);
        assert_int_equal(json_integer_value(json_object_get(r, "cut_suffix_tokens")), 0);
        assert_string_equal(json_string_value(json_object_get(r, "softmask")), "on");
        assert_string_equal(json_string_value(json_object_get(r, "label")), "sm-on");
        assert_null(json_object_get(r, "error"));
        if (t == 2) assert_true(cut_p > 0);
        if (t < 2 && seed == 2) check_fill(m, t, r), checked++;
        json_decref(r);
        n++;
    }
    fclose(f);
    assert_int_equal(n, 12);
    assert_int_equal(checked, 4);
    /* a dual cache recomputed every step fills exactly what the uncached
     * run filled (the cache options reach the sampler: with a refresh only
     * at the block's start the run is the approximate one, and bad values
     * are refused below) */
    char cached[300];
    snprintf(cached, sizeof cached, "%s/cached.jsonl", dir);
    snprintf(cmd, sizeof cmd, "%s eval infill -m " BUNDLED " --tasks %s -o %s --steps-frac 0.25,1 --seeds 1,2 "
             "--temp 1 --threads 1 --cache dual --cache-refresh 1 --label sm-on 2>/dev/null", smdiff, tasks, cached);
    assert_int_equal(test_run(cmd, buf, sizeof buf), 0);
    char *plain = test_read_file(out, NULL), *dual = test_read_file(cached, NULL);
    assert_string_equal(dual, plain);
    free(plain), free(dual);
    snprintf(cmd, sizeof cmd, "%s eval infill -m " BUNDLED " --tasks %s -o %s --steps-frac 1 --seeds 1 --limit 1 "
             "--strategy threshold --threshold 0.5 --cache prefix --threads 1 2>/dev/null", smdiff, tasks, cached);
    assert_int_equal(test_run(cmd, buf, sizeof buf), 0);
    char *rec = test_read_file(cached, NULL);
    assert_non_null(strstr(rec, "\"label\":\"sm-on-threshold-cache-prefix\""));
    free(rec);
    /* binary masking is recorded; --limit */
    snprintf(cmd, sizeof cmd, "%s eval infill -m " BUNDLED " --tasks %s -o %s --steps-frac 1 --seeds 3 --limit 1 "
             "--softmask off --label bin --threads 1 2>/dev/null", smdiff, tasks, out);
    assert_int_equal(test_run(cmd, buf, sizeof buf), 0);
    char *o = test_read_file(out, NULL);
    assert_non_null(strstr(o, "\"softmask\":\"off\"") && strstr(o, "\"label\":\"bin\""));
    assert_int_equal(strchr(o, '\n') - o + 1, (long)strlen(o)); /* one line */
    free(o);
    /* bad command lines: 2 */
    const char *bad[] = {"--tasks T -o O", "-m M -o O", "-m M --tasks T", "-m M --tasks T -o O --steps-frac 0",
                         "-m M --tasks T -o O --steps-frac 1.5", "-m M --tasks T -o O --steps-frac a",
                         "-m M --tasks T -o O --softmask maybe", "-m M --tasks T -o O --seeds -1",
                         "-m M --tasks T -o O --bogus", "-m M --tasks T -o O --cache maybe",
                         "-m M --tasks T -o O --cache-refresh -1", "-m M --tasks T -o O --threshold 2"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(cmd, sizeof cmd, "%s eval infill %s 2>/dev/null", smdiff, bad[i]);
        assert_int_equal(test_run(cmd, buf, sizeof buf), 2);
    }
    /* bad task files and models: 1, the line named */
    char bad_tasks[300];
    snprintf(bad_tasks, sizeof bad_tasks, "%s/bad.jsonl", dir);
    const char *contents[] = {
        "{\"id\":\"a\",\"prefix\":\"x\",\"middle\":\"y\",\"suffix\":\"\"}\n{not json\n",
        "{\"id\":\"a\",\"prefix\":\"x\",\"middle\":\"y\",\"suffix\":\"\"}\n{\"id\":\"b\",\"prefix\":\"x\"}\n",
        "{\"id\":\"a\",\"prefix\":\"x\",\"middle\":\"\",\"suffix\":\"\"}\n",
        "",
    };
    const char *says[] = {"line 2", "line 2", "empty middle", "no tasks"};
    for (int i = 0; i < 4; i++) {
        write_text(bad_tasks, contents[i]);
        snprintf(cmd, sizeof cmd, "%s eval infill -m " BUNDLED " --tasks %s -o %s 2>&1", smdiff, bad_tasks, out);
        assert_int_equal(test_run(cmd, buf, sizeof buf), 1);
        assert_non_null(strstr(buf, says[i]));
    }
    snprintf(cmd, sizeof cmd, "%s eval infill -m " BUNDLED " --tasks no/such.jsonl -o %s 2>/dev/null", smdiff, out);
    assert_int_equal(test_run(cmd, buf, sizeof buf), 1);
    snprintf(cmd, sizeof cmd, "%s eval infill -m no/such.gguf --tasks %s -o %s 2>/dev/null", smdiff, tasks, out);
    assert_int_equal(test_run(cmd, buf, sizeof buf), 1);
    snprintf(cmd, sizeof cmd, "%s eval infill -m " BUNDLED " --tasks %s -o %s --strategy nope 2>/dev/null", smdiff,
             tasks, out);
    assert_int_equal(test_run(cmd, buf, sizeof buf), 1);
    smdiff_model_free(m);
}

static void test_samples_dump(void **state) {
    (void)state;
    const char *smdiff = test_cli_path();
    if (!smdiff) SKIP_BECAUSE("the smdiff CLI is not built (set BUILD to its folder)");
    char tok[300], dump[300], cmd[1400];
    static char buf[16384];
    snprintf(tok, sizeof tok, "%s/tok.i32", dir);
    snprintf(dump, sizeof dump, "%s/dump.jsonl", dir);
    FILE *f = fopen(tok, "wb");
    assert_non_null(f);
    for (int32_t i = 0; i < 3000; i++) {
        int32_t id = 262 + (i * 7919) % 20000;
        assert_int_equal(fwrite(&id, 4, 1, f), 1);
    }
    fclose(f);
    snprintf(cmd, sizeof cmd, "%s eval samples -m " BUNDLED " --ref " BUNDLED " --tokens %s --len 8 --n 3 "
             "--seeds 4 --budgets 8 --threads 1 --softmask off --label d --prompt-id 50256 --dump %s 2>/dev/null",
             smdiff, tok, dump);
    assert_int_equal(test_run(cmd, buf, sizeof buf), 0);
    FILE *d = fopen(dump, "r");
    assert_non_null(d);
    char line[4096];
    int n = 0;
    while (fgets(line, sizeof line, d)) {
        json_error_t je;
        json_t *r = json_loads(line, 0, &je);
        assert_non_null(r);
        assert_string_equal(json_string_value(json_object_get(r, "label")), "d");
        assert_int_equal(json_integer_value(json_object_get(r, "seed")), 4);
        assert_int_equal(json_integer_value(json_object_get(r, "budget")), 8);
        assert_int_equal(json_integer_value(json_object_get(r, "index")), n);
        assert_true(json_is_string(json_object_get(r, "text")) && json_is_boolean(json_object_get(r, "eos")));
        double nll = json_real_value(json_object_get(r, "gen_nll"));
        assert_true(isfinite(nll) && nll > 0);
        json_decref(r);
        n++;
    }
    fclose(d);
    assert_int_equal(n, 3);
    snprintf(cmd, sizeof cmd, "%s eval samples -m " BUNDLED " --ref " BUNDLED " --tokens %s --len 8 --n 2 "
             "--prompt-id 50258 2>/dev/null", smdiff, tok);
    assert_int_equal(test_run(cmd, buf, sizeof buf), 2);
    /* samples decoded in batches (one forward pass per step for a group)
     * are those decoded one at a time; with caches and blocks too */
    const char *cfg[] = {"--temp 1", "--temp 0.8 --block-len 4 --strategy threshold --cache dual"};
    for (int c = 0; c < 2; c++) {
        char *dumps[2];
        for (int batch = 1, k = 0; batch <= 3; batch += 2, k++) {
            snprintf(cmd, sizeof cmd, "%s eval samples -m " BUNDLED " --ref " BUNDLED " --tokens %s --len 8 --n 5 "
                     "--seeds 2 --budgets 8 --threads 1 --label d --batch %d %s --dump %s 2>/dev/null",
                     smdiff, tok, batch, cfg[c], dump);
            assert_int_equal(test_run(cmd, buf, sizeof buf), 0);
            assert_non_null(strstr(buf, c ? "cache dual (refresh 0)" : "cache off"));
            dumps[k] = test_read_file(dump, NULL);
            assert_non_null(dumps[k]);
        }
        assert_string_equal(dumps[0], dumps[1]);
        free(dumps[0]), free(dumps[1]);
    }
    snprintf(cmd, sizeof cmd, "%s eval samples -m " BUNDLED " --ref " BUNDLED " --tokens %s --len 8 --n 2 "
             "--batch 0 2>/dev/null", smdiff, tok);
    assert_int_equal(test_run(cmd, buf, sizeof buf), 2);
    snprintf(cmd, sizeof cmd, "%s eval samples -m " BUNDLED " --ref " BUNDLED " --tokens %s --len 8 --n 2 "
             "--cache all 2>/dev/null", smdiff, tok);
    assert_int_equal(test_run(cmd, buf, sizeof buf), 2);
}

static void test_python_scripts(void **state) {
    (void)state;
    /* the interpreter make check names (PYTHON: Debian's, whose packages
     * include matplotlib for plot_infill.py), else the one on PATH */
    const char *py = getenv("PYTHON") && *getenv("PYTHON") ? getenv("PYTHON") : "python3";
    char cmd[512];
    snprintf(cmd, sizeof cmd, "'%s' -c 'import ast, json' 2>/dev/null", py);
    if (system(cmd) != 0) SKIP_BECAUSE("python3 is not installed");
    static char out[65536];
    snprintf(cmd, sizeof cmd, "'%s' tests/test_code_scripts.py 2>&1", py);
    int rc = test_run(cmd, out, sizeof out);
    printf("%s", out);
    assert_int_equal(rc, 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_infill_cli),
        cmocka_unit_test(test_samples_dump),
        cmocka_unit_test(test_python_scripts),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
