/* cmd_info.c -- `smdiff info MODEL.gguf`: describe a model file. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"

static void usage(FILE *f) {
    fprintf(f, "usage: smdiff info [-m] MODEL.gguf\n\n"
               "Describes a model file: its size, architecture and shape, tokenizer and\n"
               "pre-tokenizer, the storage types of its tensors with their counts, and the\n"
               "soft-mask parameters generation uses.\n"
               "  -m, --model FILE   the model file (or give it as the argument)\n"
               "  -h, --help         this text\n");
}

static const struct option longopts[] = {{"model", required_argument, NULL, 'm'}, CLI_HELP_OPTION, {0, 0, 0, 0}};
const cli_spec cli_spec_info = {"info", "m:h", longopts, usage};

/* A metadata value as text into buf ("" when the file has no such key). */
static const char *meta(const smdiff_model *m, const char *key, char *buf, size_t cap) {
    size_t need = 0;
    if (smdiff_model_meta(m, key, buf, cap, &need) != SMDIFF_OK) buf[0] = '\0';
    return buf;
}

static void print_tensor_types(const smdiff_model *m) {
    const char *names[64];
    size_t counts[64], n = 0;
    int32_t rc = smdiff_model_tensor_types(m, names, counts, 64, &n);
    printf("tensor types:");
    if (rc != SMDIFF_OK) printf(" ? (%s)", smdiff_last_error());
    for (size_t i = 0; rc == SMDIFF_OK && i < n; i++) printf("%s %s %zu", i ? "," : "", names[i], counts[i]);
    printf("\n");
}

static void print_softmask(const smdiff_model *m) {
    /* the file's smdiff.softmask.* keys, else the defaults */
    smdiff_softmask *sm = NULL;
    if (smdiff_softmask_create_from_model(m, &sm) != SMDIFF_OK) {
        printf("soft-mask: stored parameters are invalid: %s\n", smdiff_last_error());
        return;
    }
    static const char *modes[] = {"off", "entropy", "constant"};
    static const char *keys[] = {"smdiff.softmask.mode", "smdiff.softmask.k", "smdiff.softmask.scale",
                                 "smdiff.softmask.steepness", "smdiff.softmask.centre"};
    int64_t mode = 0, k = 0;
    double scale = 0, steep = 0, centre = 0;
    size_t need = 0;
    int stored = 0;
    for (int i = 0; i < 5; i++) stored |= smdiff_model_meta(m, keys[i], NULL, 0, &need) != SMDIFF_E_NOT_FOUND;
    smdiff_softmask_get_int(sm, SMDIFF_SM_MODE, &mode);
    smdiff_softmask_get_int(sm, SMDIFF_SM_TOPK, &k);
    smdiff_softmask_get_double(sm, SMDIFF_SM_SCALE, &scale);
    smdiff_softmask_get_double(sm, SMDIFF_SM_STEEPNESS, &steep);
    smdiff_softmask_get_double(sm, SMDIFF_SM_CENTRE, &centre);
    printf("soft-mask: %s, k %lld, scale %g, steepness %g, centre %g (%s)\n",
           mode >= 0 && mode <= 2 ? modes[mode] : "?", (long long)k, scale, steep, centre,
           stored ? "stored in the file" : "reference defaults");
    smdiff_softmask_free(sm);
}

static void describe(const smdiff_model *m, const char *path, long long size) {
    const char *arch = "?";
    smdiff_model_arch(m, &arch);
    printf("file: %s\nfile size: %lld bytes (%.1f MiB)\narchitecture: %s\n", path, size,
           (double)size / (1024.0 * 1024.0), arch);
    static const struct {
        int32_t prop;
        const char *label;
    } props[] = {
        {SMDIFF_PROP_N_PARAMS, "parameters"}, {SMDIFF_PROP_LAYERS, "layers"},
        {SMDIFF_PROP_EMBED_DIM, "embedding dim"}, {SMDIFF_PROP_HEADS, "heads"},
        {SMDIFF_PROP_KV_HEADS, "kv heads"}, {SMDIFF_PROP_FFN_DIM, "ffn dim"},
        {SMDIFF_PROP_VOCAB_SIZE, "vocab"}, {SMDIFF_PROP_CONTEXT, "context"},
        {SMDIFF_PROP_MASK_ID, "mask id"}, {SMDIFF_PROP_BOS_ID, "bos id"},
        {SMDIFF_PROP_EOS_ID, "eos id"}, {SMDIFF_PROP_SHIFT_LOGITS, "shift logits"},
    };
    for (size_t i = 0; i < sizeof props / sizeof props[0]; i++) {
        int64_t v = 0;
        if (smdiff_model_property(m, props[i].prop, &v) == SMDIFF_OK)
            printf("%s: %lld\n", props[i].label, (long long)v);
    }
    char model[256], pre[256];
    meta(m, "tokenizer.ggml.model", model, sizeof model);
    meta(m, "tokenizer.ggml.pre", pre, sizeof pre);
    printf("tokenizer: %s, pre-tokenizer %s\n", *model ? model : "none", *pre ? pre : "none");
    print_tensor_types(m);
    print_softmask(m);
}

int cmd_info(int argc, char **argv) {
    const char *path = NULL;
    cli_args a;
    int c;
    cli_begin(&a, &cli_spec_info);
    while ((c = cli_next(&a, argc, argv)) > 0) {
        if (path) return cli_usage_error("one model file, not '%s' too", optarg);
        path = optarg; /* -m FILE or FILE */
    }
    if (c < 0) return a.status;
    if (!path) return cli_usage_error("which model file? (smdiff info MODEL.gguf)");
    struct stat st;
    if (stat(path, &st) != 0) {
        fprintf(stderr, "%s: %s: %s\n", cli_prog(), path, strerror(errno));
        return CLI_EXIT_FAIL;
    }
    smdiff_model *m = NULL;
    int32_t rc = smdiff_model_create(&m);
    if (rc != SMDIFF_OK) return cli_fail("create model", rc, smdiff_last_error());
    rc = smdiff_model_load_file(m, path);
    if (rc != SMDIFF_OK) {
        int r = cli_fail(path, rc, smdiff_last_error());
        smdiff_model_free(m);
        return r;
    }
    describe(m, path, (long long)st.st_size);
    smdiff_model_free(m);
    return CLI_EXIT_OK;
}
