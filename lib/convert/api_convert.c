/* api_convert.c -- the experimental public conversion API
 * (smdiff_convert_hf, include/smdiff/smdiff.h) mapped onto convert.h;
 * errors go to the thread-local message (there is no object). */
#include <string.h>

#include "convert/convert.h"
#include "core/error.h"
#include "smdiff/smdiff.h"

/* The caller's progress callback behind convert.h's. */
typedef struct progress_ctx {
    smdiff_progress_fn fn;
    void *user_data;
} progress_ctx;

static void on_progress(void *user, uint64_t done, uint64_t total) {
    const progress_ctx *p = user;
    p->fn(done, total, p->user_data);
}

SMDIFF_API int32_t smdiff_convert_hf(const char *hf_dir, const char *out_path, const char *type_name,
                                     const char *tokenizer_pre, const char *name, smdiff_progress_fn progress,
                                     void *user_data) {
    if (!hf_dir || !out_path) return sd_fail(NULL, SMDIFF_E_INVAL, "smdiff_convert_hf: NULL argument");
    sd_convert_opts o = {type_name, tokenizer_pre, name, progress ? on_progress : NULL, NULL};
    progress_ctx pc = {progress, user_data};
    o.progress_user = &pc;
    return sd_convert_hf(hf_dir, out_path, &o, NULL);
}
