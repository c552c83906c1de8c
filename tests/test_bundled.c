/* test_bundled.c -- the committed models in models/ and the README's main
 * command:
 *  - `smdiff info` reads both files; the default is the AR-adapted model
 *    (shifted logits) with a learned, live soft-mask; the base is the
 *    unshifted binary MDLM that `make reproduce` starts from;
 *  - the README's main command, taken from README.md itself and run with
 *    no -m (so through the default-model lookup) for three seeds, prints
 *    64 tokens of text whose words are the novels' words: at least 40
 *    words per seed, and at least 90% of all of them found in the
 *    vocabulary of the training corpus (tests/data/gutenberg-words.txt,
 *    every word of the 68 novels, made by tests/ref/corpus_fixtures.py).
 * The word check guards the whole path (file, tokenizer, shifted decoding,
 * detokenization) rather than grading the prose: an untrained model of the
 * same shape (one training step) scores 0.52 (tried by hand with -m), and the
 * quality figures of the default model are the evaluation numbers in
 * docs/MODEL.md. */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

/* ------------------------------------------------- a set of lowercase words */

enum { SET_BITS = 20, WORD_MAX = 48 };
typedef struct {
    char (*slot)[WORD_MAX];
    size_t n;
} word_set;

static uint64_t hash(const char *s) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

/* 1 when w is in the set; inserts it when add */
static int set_find(word_set *ws, const char *w, int add) {
    size_t mask = ((size_t)1 << SET_BITS) - 1;
    for (size_t i = hash(w) & mask;; i = (i + 1) & mask) {
        if (!ws->slot[i][0]) {
            if (add) {
                assert_true(ws->n < mask / 2);
                strcpy(ws->slot[i], w), ws->n++;
            }
            return 0;
        }
        if (!strcmp(ws->slot[i], w)) return 1;
    }
}

/* Calls fn on each run of ASCII letters of text, lowercased (longer runs
 * than WORD_MAX - 1 are cut). */
static void each_word(const char *text, void (*fn)(const char *, void *), void *ctx) {
    char w[WORD_MAX];
    size_t n = 0;
    for (const char *p = text;; p++) {
        if (*p && isalpha((unsigned char)*p) && !((unsigned char)*p & 0x80)) {
            if (n < WORD_MAX - 1) w[n++] = (char)tolower((unsigned char)*p);
            continue;
        }
        if (n) w[n] = 0, fn(w, ctx), n = 0;
        if (!*p) break;
    }
}

static void add_word(const char *w, void *ctx) { set_find(ctx, w, 1); }

/* the corpus vocabulary: the words of a word list, one per line, split as
 * generated text is (the list is made with the same rule) */
static size_t load_vocab(word_set *ws, const char *path) {
    ws->slot = calloc((size_t)1 << SET_BITS, WORD_MAX);
    assert_non_null(ws->slot);
    char *text = test_read_file(path, NULL);
    if (!text) fail_msg("%s: test fixture missing", path);
    each_word(text, add_word, ws);
    free(text);
    return ws->n;
}

typedef struct {
    word_set *ws;
    int words, known;
} word_count;

static void count_word(const char *w, void *ctx) {
    word_count *c = ctx;
    c->words++;
    c->known += set_find(c->ws, w, 0);
}

/* ---------------------------------------------------------------- tests */

static void test_info(void **state) {
    (void)state;
    const char *smdiff = test_cli_path();
    if (!smdiff) SKIP_BECAUSE("the smdiff CLI is not built (set BUILD to its folder)");
    char cmd[1024], out[8192];
    snprintf(cmd, sizeof cmd, "%s info models/smdiff-gutenberg-18m-sm.gguf", smdiff);
    assert_int_equal(test_run(cmd, out, sizeof out), 0);
    assert_non_null(strstr(out, "architecture: llada"));
    assert_non_null(strstr(out, "vocab: 50258"));
    assert_non_null(strstr(out, "shift logits: 1"));
    const char *sm = strstr(out, "soft-mask: entropy, k 3, scale ");
    assert_non_null(sm);
    double scale = atof(sm + strlen("soft-mask: entropy, k 3, scale "));
    printf("  default model: soft-mask scale %.4f\n", scale);
    assert_true(scale > 0.05 && scale <= 1.0); /* learned, not the 1e-6 of an off mask */
    snprintf(cmd, sizeof cmd, "%s info models/smdiff-gutenberg-18m.gguf", smdiff);
    assert_int_equal(test_run(cmd, out, sizeof out), 0);
    assert_non_null(strstr(out, "shift logits: 0"));
}

/* The generate part of the README's first quick-start command. */
static void readme_command(char *buf, size_t cap) {
    FILE *f = fopen("README.md", "r");
    assert_non_null(f);
    char line[2048];
    buf[0] = 0;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "apt-get update", 14)) continue;
        char *g = strstr(line, "build/smdiff generate ");
        assert_non_null(g);
        g[strcspn(g, "\r\n")] = 0;
        assert_true(strlen(g) < cap);
        strcpy(buf, g + strlen("build/smdiff "));
        break;
    }
    fclose(f);
    assert_true(buf[0]);
}

static void test_readme_command(void **state) {
    (void)state;
    const char *smdiff = test_cli_path();
    if (!smdiff) SKIP_BECAUSE("the smdiff CLI is not built (set BUILD to its folder)");
    word_set ws = {0};
    assert_true(load_vocab(&ws, test_data_path("gutenberg-words.txt")) > 0);
    printf("  corpus vocabulary: %zu words\n", ws.n);
    char args[1024], cmd[2048], out[8192];
    readme_command(args, sizeof args);
    printf("  README: smdiff %s\n", args);
    int words = 0, known = 0;
    for (int seed = 1; seed <= 3; seed++) {
        /* SMDIFF_MODEL unset: the bundled default is found by the lookup */
        snprintf(cmd, sizeof cmd, "env -u SMDIFF_MODEL %s %s -q --seed %d 2>&1", smdiff, args, seed);
        assert_int_equal(test_run(cmd, out, sizeof out), 0);
        word_count c = {&ws, 0, 0};
        each_word(out, count_word, &c);
        printf("  seed %d: %d words, %d in the corpus\n", seed, c.words, c.known);
        if (seed == 1) printf("---\n%s\n---\n", out);
        assert_true(c.words >= 40);
        words += c.words, known += c.known;
    }
    printf("  %.1f%% of %d words are the corpus's\n", 100.0 * known / words, words);
    assert_true(known >= 0.9 * words);
    free(ws.slot);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_info),
        cmocka_unit_test(test_readme_command),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
