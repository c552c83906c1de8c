/* api_quantize.c -- the experimental public quantisation API
 * (smdiff_quantize, include/smdiff/smdiff.h) mapped onto quantize.h; errors
 * go to the thread-local message (there is no object). */
#include <string.h>

#include "convert/convert.h"
#include "convert/quantize.h"
#include "core/error.h"
#include "core/options.h"
#include "smdiff/smdiff.h"

static const sd_option_def defs[] = {
    {SMDIFF_QUANT_THREADS, "threads", SMDIFF_TYPE_INT, 0, 1024, 0, 0, 0},
    {SMDIFF_QUANT_PURE, "pure", SMDIFF_TYPE_INT, 0, 1, 0, 0, 0},
};
static const sd_option_table k_options = {defs, (int32_t)(sizeof defs / sizeof defs[0])};

_Static_assert(sizeof defs / sizeof defs[0] == SMDIFF_QUANT_OPT_LAST_ - SMDIFF_QUANT_OPT_FIRST_ + 1,
               "one entry per option");

SMDIFF_API int32_t smdiff_quantize(const char *in_path, const char *out_path, const char *type_name,
                                   const int64_t *options, smdiff_progress_fn progress, void *user_data,
                                   smdiff_quant_report *report) {
    if (!in_path || !out_path || !type_name) return sd_fail(NULL, SMDIFF_E_INVAL, "smdiff_quantize: NULL argument");
    const sd_qftype *f = sd_qftype_find(type_name);
    if (!f)
        return sd_fail(NULL, SMDIFF_E_INVAL, "smdiff_quantize: unknown file type \"%s\" (%s)", type_name,
                       sd_qftype_names());
    sd_optval vals[SMDIFF_QUANT_OPT_LAST_ - SMDIFF_QUANT_OPT_FIRST_ + 1];
    sd_options_defaults(&k_options, vals);
    for (const int64_t *o = options; o && o[0]; o += 2) {
        if (o[0] < INT32_MIN || o[0] > INT32_MAX)
            return sd_fail(NULL, SMDIFF_E_INVAL, "smdiff_quantize: option key %lld", (long long)o[0]);
        int32_t rc = sd_option_set_int(&k_options, vals, (int32_t)o[0], o[1], NULL);
        if (rc) return rc;
    }
    sd_progress_ctx pc = {progress, user_data};
    sd_quantize_opts qo = {(int)vals[SD_OPT_SLOT(SMDIFF_QUANT_THREADS)].i, (int)vals[SD_OPT_SLOT(SMDIFF_QUANT_PURE)].i,
                           progress ? sd_convert_progress_adapter : NULL, &pc};
    return sd_quantize_gguf(in_path, out_path, f, &qo, report, NULL);
}

SMDIFF_API int32_t smdiff_quantize_option_info(int32_t key, const char **name, int32_t *type, double *min,
                                               double *max, double *def) {
    return sd_option_info(&k_options, key, name, type, min, max, def, NULL);
}

SMDIFF_API int32_t smdiff_quantize_option_key(const char *name, int32_t *key) {
    return sd_option_key(&k_options, name, key, NULL);
}

SMDIFF_API const char *smdiff_quantize_type_names(void) { return sd_qftype_names(); }
