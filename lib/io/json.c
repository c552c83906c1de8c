/* json.c -- Jansson through io/file.h; see json.h. */
#include "io/json.h"

#include "core/alloc.h"
#include "io/file.h"

int32_t sd_json_parse(const char *text, size_t n, const char *name, size_t flags, json_t **out, sd_error *err) {
    json_error_t je;
    *out = json_loadb(text, n, flags, &je);
    if (*out) return SMDIFF_OK;
    if (json_error_code(&je) == json_error_out_of_memory)
        return sd_fail(err, SMDIFF_E_NOMEM, "%s: out of memory parsing JSON", name);
    return sd_fail(err, SMDIFF_E_FORMAT, "%s: JSON error at line %d: %s", name, je.line, je.text);
}

int32_t sd_json_load(const char *path, size_t flags, json_t **out, sd_error *err) {
    char *text;
    size_t n;
    *out = NULL;
    int32_t rc = sd_file_read_all(path, "json", &text, &n, err);
    if (rc) return rc;
    rc = sd_json_parse(text, n, path, flags, out, err);
    sd_free(text);
    return rc;
}
