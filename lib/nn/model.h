/* model.h -- the loaded model object (weights, tokenizer, architecture). */
#ifndef SD_NN_MODEL_H
#define SD_NN_MODEL_H

#include <stdatomic.h>

#include "core/error.h"
#include "core/options.h"
#include "smdiff/smdiff.h"

struct sd_tokenizer;

struct smdiff_model {
    atomic_int refcount;
    int loaded;
    struct sd_tokenizer *tok;  /* NULL until a tokenizer is loaded; owned */
    sd_optval opt[SMDIFF_MODEL_OPT_LAST_ + 1];
    sd_error err;
};

extern const sd_option_table sd_model_options;

/* Release everything the model owns (called when the last reference goes). */
void sd_model_destroy(struct smdiff_model *m);

#endif
