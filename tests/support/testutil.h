/* testutil.h -- shared helpers for the cmocka test programs. */
#ifndef SMDIFF_TESTUTIL_H
#define SMDIFF_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

/* Path of a file under tests/data/ (tests run from the repository root).
 * Every file a test reads is there (tests/data/SOURCES.md): a test needs
 * nothing from outside the repository. */
const char *test_data_path(const char *name);

/* Path of the smdiff CLI of the build variant under test ($BUILD/smdiff,
 * default build/cc/smdiff), or NULL if it is not built. */
const char *test_cli_path(void);

/* The whole file, NUL-terminated (malloc'd; the caller frees), its length
 * in *size when size is not NULL; NULL when the file cannot be opened. A
 * short read fails the test. */
void *test_read_file(const char *path, size_t *size);

/* Runs a shell command, its standard output into out (at most cap - 1
 * bytes, NUL-terminated); returns its exit status, -1 if it did not exit. */
int test_run(const char *cmd, char *out, size_t cap);

/* Set a trainer's from-scratch shape (SMDIFF_TRAIN_N_VOCAB, _N_EMBD,
 * _N_LAYER, _N_HEAD, _N_HEAD_KV, _N_FF, _MASK_ID, _EOS_ID, in this order);
 * returns the first failing status. */
struct smdiff_trainer;
int32_t test_trainer_shape(struct smdiff_trainer *t, int64_t vocab, int64_t embd, int64_t layers,
                           int64_t heads, int64_t kv_heads, int64_t ff, int64_t mask_id, int64_t eos_id);

/* The ids of s[0..n) under tokenizer t (malloc'd; the caller frees), their
 * count in *n_ids, by the two-call pattern (size query, then fill), which
 * must agree; flags as sd_tokenizer_encode's. */
struct sd_tokenizer;
int32_t *test_tokenize(const struct sd_tokenizer *t, const char *s, size_t n, int32_t flags, size_t *n_ids);

/* A new empty folder for a test's files, uniquely named (mkdtemp;
 * malloc'd path, NULL with the reason printed if it cannot be made; the
 * caller removes it), on /dev/shm when that is writable (tmpfs: fsync costs
 * nothing there, and the fault tests sync thousands of files), else /tmp. */
char *test_scratch_dir(const char *name);

/* Remove the folder dir and everything under it (without following links);
 * 0 on success. */
int test_remove_dir(const char *dir);

/* cmocka group fixtures for a test program's scratch folder: setup makes
 * one with test_scratch_dir (named after the program) into test_dir,
 * teardown removes it; cmocka_run_group_tests(tests, test_dir_setup,
 * test_dir_teardown). */
extern char *test_dir;
int test_dir_setup(void **state);
int test_dir_teardown(void **state);

/* The tiny random model tests/data/tiny_<arch>_f32.gguf ("dream" or
 * "llada", tests/ref/tiny_models.py), loaded with `threads` threads; a
 * failure fails the test. */
struct smdiff_model;
struct smdiff_model *test_load_tiny(const char *arch, int threads);

/* Skip the current test with a printed reason. */
#define SKIP_BECAUSE(...)                 \
    do {                                  \
        print_message("SKIP: " __VA_ARGS__); \
        print_message("\n");              \
        skip();                           \
    } while (0)

#endif
