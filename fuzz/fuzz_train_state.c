/* fuzz_train_state.c -- libFuzzer target: a training state file given to
 * smdiff_trainer_resume (through a scratch file on /dev/shm or $TMPDIR) of
 * a small trainer (dream, vocabulary 16, width 8, one layer) that accepts
 * states without a checksum (SMDIFF_TRAIN_RESUME_FORCE). An input carrying
 * smdiff.checksum gets its value recomputed first, as smdiff would write
 * it, so mutations reach the state's parser instead of the checksum (which
 * tests/test_faults.c covers). The resume must refuse with SMDIFF_E_FORMAT,
 * SMDIFF_E_INVAL or SMDIFF_E_NOMEM, or succeed; then a training step must
 * end in SMDIFF_OK or SMDIFF_E_NUMERIC. Anything else traps.
 *
 * With SMDIFF_FUZZ_WRITE_SEED=PATH set it writes that trainer's state to
 * PATH and exits (how fuzz/corpus/fuzz_train_state/ was made). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/checksum.h"
#include "fuzz_scratch.h"
#include "io/gguf.h"
#include "smdiff/smdiff.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static smdiff_trainer *tr;
static char path[300];

static smdiff_trainer *make(int force) {
    smdiff_trainer *t = NULL;
    static int32_t toks[200];
    for (int i = 0; i < 200; i++) toks[i] = (i * 7 + i / 5) % 15;
    const int32_t keys[] = {SMDIFF_TRAIN_SEQ_LEN, SMDIFF_TRAIN_BATCH, SMDIFF_TRAIN_THREADS, SMDIFF_TRAIN_RESUME_FORCE,
                            SMDIFF_TRAIN_N_VOCAB, SMDIFF_TRAIN_N_EMBD, SMDIFF_TRAIN_N_LAYER, SMDIFF_TRAIN_N_HEAD,
                            SMDIFF_TRAIN_N_HEAD_KV, SMDIFF_TRAIN_N_FF, SMDIFF_TRAIN_MASK_ID};
    const int64_t vals[] = {8, 1, 1, force, 16, 8, 1, 2, 1, 16, 15};
    if (smdiff_trainer_create(&t)) abort();
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (smdiff_trainer_set_int(t, keys[i], vals[i])) abort();
    if (smdiff_trainer_init_new(t, "dream") || smdiff_trainer_set_data(t, toks, 150, toks + 150, 50)) abort();
    return t;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    const char *seed = getenv("SMDIFF_FUZZ_WRITE_SEED");
    if (seed) {
        smdiff_trainer *t = make(0);
        double loss;
        char model[400];
        snprintf(model, sizeof model, "%s.model.gguf", seed);
        if (smdiff_trainer_step(t, &loss) || smdiff_trainer_save(t, model, 0, seed)) abort();
        unlink(model);
        smdiff_trainer_free(t);
        exit(0);
    }
    tr = make(1);
    fuzz_scratch("fuzz_train_state", path, sizeof path);
    return 0;
}

/* Recompute the value of smdiff.checksum (gguf.h's rule) in buf, if it has one. */
static void fix_checksum(uint8_t *buf, size_t n) {
    static const char key[] = SD_GGUF_CHECKSUM_KEY "\x0a\x00\x00\x00"; /* name, then type uint64 */
    uint8_t *k = memmem(buf, n, key, sizeof key - 1);
    if (!k || (size_t)(k - buf) + sizeof key - 1 + 8 > n) return;
    uint8_t *v = k + sizeof key - 1;
    memset(v, 0, 8);
    uint64_t h = sd_hash64(buf, n);
    memcpy(v, &h, 8);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf) abort();
    memcpy(buf, data, size);
    fix_checksum(buf, size);
    FILE *f = fopen(path, "wb");
    if (!f || (size && fwrite(buf, 1, size, f) != size) || fclose(f)) abort();
    free(buf);
    int32_t rc = smdiff_trainer_resume(tr, path);
    if (rc != SMDIFF_OK && rc != SMDIFF_E_FORMAT && rc != SMDIFF_E_INVAL && rc != SMDIFF_E_NOMEM) {
        fprintf(stderr, "fuzz_train_state: resume: %s: %s\n", smdiff_err_name(rc), smdiff_trainer_last_error(tr));
        __builtin_trap();
    }
    if (rc == SMDIFF_OK) {
        double loss;
        rc = smdiff_trainer_step(tr, &loss);
        if (rc != SMDIFF_OK && rc != SMDIFF_E_NUMERIC) {
            fprintf(stderr, "fuzz_train_state: step: %s: %s\n", smdiff_err_name(rc), smdiff_trainer_last_error(tr));
            __builtin_trap();
        }
        /* start the next input from a clean trainer */
        smdiff_trainer_free(tr);
        tr = make(1);
    }
    return 0;
}
