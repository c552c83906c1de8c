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
    static const struct {
        const char *name;
        uint32_t type;
    } types[] = {{"f32", SD_GGML_F32}, {"f16", SD_GGML_F16}, {"bf16", SD_GGML_BF16}, {"q8_0", SD_GGML_Q8_0}};
    sd_convert_opts o = {SD_GGML_F16, tokenizer_pre, name, progress ? on_progress : NULL, NULL};
    size_t i = 0, n = sizeof types / sizeof types[0];
    while (type_name && i < n && strcmp(type_name, types[i].name)) i++;
    if (i == n)
        return sd_fail(NULL, SMDIFF_E_INVAL, "smdiff_convert_hf: unknown tensor type \"%s\" (f32, f16, bf16, q8_0)",
                       type_name);
    if (type_name) o.out_type = types[i].type;
    progress_ctx pc = {progress, user_data};
    o.progress_user = &pc;
    return sd_convert_hf(hf_dir, out_path, &o, NULL);
}
