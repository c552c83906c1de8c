#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "smdiff/smdiff.h"
#include "testutil.h"
#include "text/tokenizer.h"

const char *test_data_path(const char *name) {
    static _Thread_local char buf[4096];
    snprintf(buf, sizeof buf, "tests/data/%s", name);
    return buf;
}

char *test_scratch_dir(const char *name) {
    const char *root = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    char *p = malloc(512);
    if (!p) return NULL;
    /* mkdtemp: a unique name even where an earlier, killed run left its
     * folder under a process id that is now this one's */
    snprintf(p, 512, "%s/smdiff_%s_%d_XXXXXX", root, name, (int)getpid());
    if (!mkdtemp(p)) {
        fprintf(stderr, "test_scratch_dir: cannot make %s: %s\n", p, strerror(errno));
        free(p);
        return NULL;
    }
    return p;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

int test_remove_dir(const char *dir) {
    return dir ? nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS) : -1;
}

char *test_dir;

int test_dir_setup(void **state) {
    (void)state;
    test_dir = test_scratch_dir(program_invocation_short_name); /* glibc's */
    return test_dir ? 0 : -1;
}

int test_dir_teardown(void **state) {
    (void)state;
    int rc = test_remove_dir(test_dir);
    free(test_dir);
    test_dir = NULL;
    return rc ? -1 : 0;
}

const char *test_cli_path(void) {
    static char p[512];
    const char *b = getenv("BUILD");
    snprintf(p, sizeof p, "%s/smdiff", b && *b ? b : "build/cc");
    return access(p, X_OK) == 0 ? p : NULL;
}

void *test_read_file(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    assert_true(n >= 0);
    char *buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    buf[n] = 0;
    if (size) *size = (size_t)n;
    return buf;
}

int test_run(const char *cmd, char *out, size_t cap) {
    FILE *f = popen(cmd, "r");
    assert_non_null(f);
    size_t n = fread(out, 1, cap - 1, f);
    out[n] = 0;
    int st = pclose(f);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

int32_t test_trainer_shape(struct smdiff_trainer *t, int64_t vocab, int64_t embd, int64_t layers,
                           int64_t heads, int64_t kv_heads, int64_t ff, int64_t mask_id, int64_t eos_id) {
    const int32_t keys[8] = {SMDIFF_TRAIN_N_VOCAB, SMDIFF_TRAIN_N_EMBD, SMDIFF_TRAIN_N_LAYER,
                             SMDIFF_TRAIN_N_HEAD,  SMDIFF_TRAIN_N_HEAD_KV, SMDIFF_TRAIN_N_FF,
                             SMDIFF_TRAIN_MASK_ID, SMDIFF_TRAIN_EOS_ID};
    const int64_t vals[8] = {vocab, embd, layers, heads, kv_heads, ff, mask_id, eos_id};
    int32_t rc = SMDIFF_OK;
    for (int i = 0; i < 8 && !rc; i++) rc = smdiff_trainer_set_int(t, keys[i], vals[i]);
    return rc;
}

int32_t *test_tokenize(const struct sd_tokenizer *t, const char *s, size_t n, int32_t flags, size_t *n_ids) {
    sd_error err = {0};
    size_t need = 0;
    int32_t rc = sd_tokenizer_encode(t, s, n, flags, NULL, 0, &need, &err);
    assert_true(rc == SMDIFF_OK || rc == SMDIFF_E_BUFFER);
    int32_t *ids = malloc(sizeof(int32_t) * (need + 1));
    assert_non_null(ids);
    assert_int_equal(sd_tokenizer_encode(t, s, n, flags, ids, need, n_ids, &err), SMDIFF_OK);
    assert_int_equal(*n_ids, need);
    return ids;
}

struct smdiff_model *test_load_tiny(const char *arch, int threads) {
    char name[64];
    snprintf(name, sizeof name, "tiny_%s_f32.gguf", arch);
    const char *path = test_data_path(name);
    smdiff_model *m;
    assert_int_equal(smdiff_model_create(&m), 0);
    assert_int_equal(smdiff_model_set_int(m, SMDIFF_MODEL_THREADS, threads), 0);
    int32_t rc = smdiff_model_load_file(m, path);
    if (rc) fail_msg("load %s: %s", path, smdiff_last_error());
    return m;
}
