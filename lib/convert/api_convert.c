/* api_convert.c -- the experimental public conversion API
 * (smdiff_convert_hf, include/smdiff/smdiff.h) mapped onto convert.h;
 * errors go to the thread-local message (there is no object). */
#include <string.h>

#include "convert/convert.h"
#include "core/error.h"
#include "smdiff/smdiff.h"

SMDIFF_API int32_t smdiff_convert_hf(const char *hf_dir, const char *out_path, const char *type_name,
                                     const char *tokenizer_pre, const char *name, smdiff_progress_fn progress,
                                     void *user_data) {
    if (!hf_dir || !out_path) return sd_fail(NULL, SMDIFF_E_INVAL, "smdiff_convert_hf: NULL argument");
    sd_convert_opts o = {type_name, tokenizer_pre, name, progress ? sd_convert_progress_adapter : NULL, NULL};
    sd_progress_ctx pc = {progress, user_data};
    o.progress_user = &pc;
    return sd_convert_hf(hf_dir, out_path, &o, NULL);
}
