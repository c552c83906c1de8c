#include "core/alloc.h"
#include "model.h"
#include "text/tokenizer.h"

static const sd_option_def defs[] = {
    {SMDIFF_MODEL_USE_MMAP, "use_mmap", SMDIFF_TYPE_INT, 0, 1, 1, 0, 0},
    {SMDIFF_MODEL_THREADS, "threads", SMDIFF_TYPE_INT, 0, 1024, 0, 0, 0},
    {SMDIFF_MODEL_CONTEXT, "context", SMDIFF_TYPE_INT, 0, 1048576, 0, 0, 0},
};

const sd_option_table sd_model_options = {"model", defs, (int32_t)(sizeof defs / sizeof defs[0])};

_Static_assert(sizeof defs / sizeof defs[0] == SMDIFF_MODEL_OPT_LAST_, "one entry per option");

void sd_model_destroy(struct smdiff_model *m) {
    sd_tokenizer_free(m->tok);
    sd_free(m);
}
