/* cmd_info.c -- `smdiff info MODEL.gguf`: describe a model file. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

int cmd_info(int argc, char **argv) {
    if (argc != 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        fprintf(argc == 2 ? stdout : stderr, "usage: smdiff info MODEL.gguf\n");
        return argc == 2 ? 0 : 2;
    }
    smdiff_model *m = NULL;
    int32_t rc = smdiff_model_create(&m);
    if (rc != SMDIFF_OK) return cli_fail("create model", rc, smdiff_last_error());
    rc = smdiff_model_load_file(m, argv[1]);
    if (rc != SMDIFF_OK) {
        int r = cli_fail(argv[1], rc, smdiff_last_error());
        smdiff_model_free(m);
        return r;
    }
    const char *arch = "?";
    smdiff_model_arch(m, &arch);
    printf("file: %s\narchitecture: %s\n", argv[1], arch);
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
    /* Soft-mask parameters: the file's smdiff.softmask.* keys, else the defaults. */
    smdiff_softmask *sm = NULL;
    if (smdiff_softmask_create_from_model(m, &sm) == SMDIFF_OK) {
        static const char *modes[] = {"off", "entropy", "constant"};
        int64_t mode = 0, k = 0;
        double scale = 0, steep = 0, centre = 0;
        size_t need = 0;
        static const char *keys[] = {"smdiff.softmask.mode", "smdiff.softmask.k", "smdiff.softmask.scale",
                                     "smdiff.softmask.steepness", "smdiff.softmask.centre"};
        int stored = 0;
        for (int i = 0; i < 5; i++)
            stored |= smdiff_model_meta(m, keys[i], NULL, 0, &need) != SMDIFF_E_NOT_FOUND;
        smdiff_softmask_get_int(sm, SMDIFF_SM_MODE, &mode);
        smdiff_softmask_get_int(sm, SMDIFF_SM_TOPK, &k);
        smdiff_softmask_get_double(sm, SMDIFF_SM_SCALE, &scale);
        smdiff_softmask_get_double(sm, SMDIFF_SM_STEEPNESS, &steep);
        smdiff_softmask_get_double(sm, SMDIFF_SM_CENTRE, &centre);
        printf("soft-mask: %s, k %lld, scale %g, steepness %g, centre %g (%s)\n",
               mode >= 0 && mode <= 2 ? modes[mode] : "?", (long long)k, scale, steep, centre,
               stored ? "stored in the file" : "reference defaults");
        smdiff_softmask_free(sm);
    } else {
        printf("soft-mask: stored parameters are invalid: %s\n", smdiff_last_error());
    }
    smdiff_model_free(m);
    return 0;
}
