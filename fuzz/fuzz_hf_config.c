/* fuzz_hf_config.c -- libFuzzer target: a Hugging Face config.json given to
 * the converter (sd_convert_hf), with the weights and tokenizer files of
 * tests/data/hf_tiny_dream beside it (run from the repository root) in a
 * scratch folder on /dev/shm (or $TMPDIR). The conversion must refuse with
 * SMDIFF_E_FORMAT, SMDIFF_E_UNSUPPORTED or SMDIFF_E_NOMEM, or write a file
 * that the model loader accepts (a config the loader would refuse must
 * never be converted); anything else traps. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "convert/convert.h"
#include "fuzz_scratch.h"
#include "smdiff/smdiff.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[256], out[300];

static void setup(void) {
    fuzz_scratch("fuzz_hf_config", dir, sizeof dir);
    snprintf(out, sizeof out, "%s.gguf", dir);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf %s && cp -r tests/data/hf_tiny_dream %s && rm -f %s/config.json", dir, dir, dir);
    if (system(cmd)) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!dir[0]) setup();
    char p[400];
    snprintf(p, sizeof p, "%s/config.json", dir);
    FILE *f = fopen(p, "wb");
    if (!f || (size && fwrite(data, 1, size, f) != size) || fclose(f)) abort();
    unlink(out);
    sd_convert_opts o = {"f16", NULL, NULL, NULL, NULL};
    sd_error err = {0};
    int32_t rc = sd_convert_hf(dir, out, &o, &err);
    if (rc) {
        if (rc != SMDIFF_E_FORMAT && rc != SMDIFF_E_UNSUPPORTED && rc != SMDIFF_E_NOMEM) {
            fprintf(stderr, "fuzz_hf_config: %s: %s\n", smdiff_err_name(rc), err.msg);
            __builtin_trap();
        }
        return 0;
    }
    /* what was converted loads */
    smdiff_model *m = NULL;
    if (smdiff_model_create(&m) || smdiff_model_set_int(m, SMDIFF_MODEL_THREADS, 1)) abort();
    rc = smdiff_model_load_file(m, out);
    if (rc) {
        fprintf(stderr, "fuzz_hf_config: converted, then refused by the loader: %s\n", smdiff_last_error());
        __builtin_trap();
    }
    smdiff_model_free(m);
    return 0;
}
