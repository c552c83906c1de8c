/* api_infill.c -- the experimental infilling API (include/smdiff/smdiff.h,
 * "Infilling"): smdiff_generate_canvas maps onto the denoising loop's
 * canvas entry (generate.c), smdiff_generate_infill_text builds the canvas
 * prefix + gen_length masks + suffix from text and renders the span. */
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "generate.h"
#include "nn/model.h"
#include "sampler.h"
#include "smdiff/smdiff.h"

SMDIFF_API int32_t smdiff_generate_canvas(smdiff_sampler *s, const smdiff_model *m, int32_t *canvas,
                                          size_t n_canvas) {
    SD_MODEL_HOLD(m);
    if (!s) return sd_fail(NULL, SMDIFF_E_INVAL, "smdiff_generate_canvas: sampler is NULL");
    if (!m || !canvas || n_canvas > (size_t)INT32_MAX)
        return sd_fail(&s->err, SMDIFF_E_INVAL, "smdiff_generate_canvas: invalid argument");
    if (!m->loaded) return sd_fail(&s->err, SMDIFF_E_STATE, "smdiff_generate_canvas: model is not loaded");
    int64_t n_masks = 0;
    for (size_t i = 0; i < n_canvas; i++) n_masks += canvas[i] == m->w.hp.mask_id;
    sd_sampler_saved saved;
    int32_t rc = sd_sampler_resolve_canvas(s, m, n_masks, &saved);
    if (rc) return rc;
    rc = sd_generate_canvas_model(s, m, canvas, n_canvas);
    sd_sampler_restore(s, &saved);
    return rc;
}

/* text (n bytes) tokenized onto the end of ids[*n] (capacity cap). */
static int32_t tokenize_onto(const smdiff_model *m, const char *text, int32_t *ids, size_t cap, size_t *n) {
    size_t got = 0;
    int32_t rc = smdiff_model_tokenize(m, text, strlen(text), SMDIFF_TOKENIZE_PARSE_SPECIAL, ids + *n, cap - *n,
                                       &got);
    if (rc == SMDIFF_OK) *n += got;
    return rc;
}

/* The canvas prefix + G masks + suffix, filled; *span points at the span,
 * *G is its length: gen_length, or, left at its default, what the context
 * leaves beside the prefix and the suffix. */
static int32_t fill_text_canvas(smdiff_sampler *s, const smdiff_model *m, const char *prefix, const char *suffix,
                                int32_t **canvas, size_t *span, size_t *G_out) {
    size_t np = 0, ns = 0;
    int32_t rc = smdiff_model_tokenize(m, prefix, strlen(prefix), SMDIFF_TOKENIZE_PARSE_SPECIAL, NULL, 0, &np);
    if (rc == SMDIFF_OK || rc == SMDIFF_E_BUFFER)
        rc = smdiff_model_tokenize(m, suffix, strlen(suffix), SMDIFF_TOKENIZE_PARSE_SPECIAL, NULL, 0, &ns);
    if (rc != SMDIFF_OK && rc != SMDIFF_E_BUFFER) return sd_error_forward(&s->err, sd_tls_error());
    sd_sampler_saved saved;
    if ((rc = sd_sampler_resolve(s, m, (int64_t)(np + ns), &saved))) return rc;
    size_t G = (size_t)s->opt[SD_OPT_SLOT(SMDIFF_SAMPLER_GEN_LENGTH)].i;
    sd_sampler_restore(s, &saved);
    size_t cap = np + G + ns + 1;
    int32_t *ids = sd_malloc(sizeof(int32_t) * cap);
    if (!ids) return sd_fail(&s->err, SMDIFF_E_NOMEM, "smdiff_generate_infill_text: out of memory");
    size_t n = 0;
    if ((rc = tokenize_onto(m, prefix, ids, cap, &n))) goto fail;
    for (size_t i = 0; i < G; i++) ids[n++] = m->w.hp.mask_id;
    if ((rc = tokenize_onto(m, suffix, ids, cap, &n))) goto fail;
    if ((rc = smdiff_generate_canvas(s, m, ids, n))) {
        sd_free(ids);
        return rc;
    }
    *canvas = ids;
    *span = np;
    *G_out = G;
    return SMDIFF_OK;
fail:
    sd_free(ids);
    return sd_error_forward(&s->err, sd_tls_error());
}

/* The span's text (up to its first EOS when EOS handling is on). */
static int32_t render_span(smdiff_sampler *s, const smdiff_model *m, const int32_t *span, size_t G, char **text,
                           size_t *len) {
    size_t n = G;
    int32_t eos = s->opt[SD_OPT_SLOT(SMDIFF_SAMPLER_STOP_AT_EOS)].i ? m->w.hp.eos_id : -1;
    for (size_t i = 0; eos >= 0 && i < G; i++)
        if (span[i] == eos) {
            n = i;
            break;
        }
    int32_t rc = smdiff_model_detokenize(m, span, n, 0, NULL, 0, len);
    if (rc != SMDIFF_OK && rc != SMDIFF_E_BUFFER) return sd_error_forward(&s->err, sd_tls_error());
    if (!(*text = sd_malloc(*len + 1)))
        return sd_fail(&s->err, SMDIFF_E_NOMEM, "smdiff_generate_infill_text: out of memory");
    if ((rc = smdiff_model_detokenize(m, span, n, 0, *text, *len, len))) {
        sd_free(*text);
        return sd_error_forward(&s->err, sd_tls_error());
    }
    return SMDIFF_OK;
}

SMDIFF_API int32_t smdiff_generate_infill_text(smdiff_sampler *s, const smdiff_model *m, const char *prefix,
                                               const char *suffix, char *text, size_t capacity, size_t *n_out) {
    SD_MODEL_HOLD(m);
    if (!s) return sd_fail(NULL, SMDIFF_E_INVAL, "smdiff_generate_infill_text: sampler is NULL");
    if (!m || !prefix || !suffix || !n_out || (!text && capacity))
        return sd_fail(&s->err, SMDIFF_E_INVAL, "smdiff_generate_infill_text: invalid argument");
    if (!m->loaded) return sd_fail(&s->err, SMDIFF_E_STATE, "smdiff_generate_infill_text: model is not loaded");
    const char *parts[] = {prefix, suffix};
    uint64_t key = sd_sampler_request_key(s, m, parts, 2, 2);
    if (!sd_sampler_has_text(s, key)) {
        int32_t *canvas = NULL;
        size_t span = 0, G = 0, len = 0;
        char *out = NULL;
        int32_t rc = fill_text_canvas(s, m, prefix, suffix, &canvas, &span, &G);
        if (rc) return rc;
        rc = render_span(s, m, canvas + span, G, &out, &len);
        sd_free(canvas);
        if (rc) return rc;
        sd_sampler_keep_text(s, key, out, len);
    }
    return sd_sampler_deliver_text(s, "smdiff_generate_infill_text", text, capacity, n_out);
}
