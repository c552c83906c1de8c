#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "error.h"

/* Indexed by -code. Pinned: append only. */
static const struct {
    const char *name;
    const char *message;
} k_status[] = {
    {"SMDIFF_OK", "success"},
    {"SMDIFF_E_INVAL", "invalid argument"},
    {"SMDIFF_E_NOMEM", "out of memory"},
    {"SMDIFF_E_RANGE", "value out of range"},
    {"SMDIFF_E_UNSUPPORTED", "not supported"},
    {"SMDIFF_E_IO", "input/output error"},
    {"SMDIFF_E_FORMAT", "malformed or unsupported file format"},
    {"SMDIFF_E_STATE", "operation not valid in the current state"},
    {"SMDIFF_E_NOT_FOUND", "not found"},
    {"SMDIFF_E_BUFFER", "output buffer too small"},
    {"SMDIFF_E_ABORTED", "aborted by callback"},
    {"SMDIFF_E_NUMERIC", "numerical error (NaN or infinity)"},
    {"SMDIFF_E_THREAD", "thread or synchronisation failure"},
    {"SMDIFF_E_INTERNAL", "internal error"},
};

#define N_STATUS ((int32_t)(sizeof k_status / sizeof k_status[0]))

_Static_assert(N_STATUS == 1 - SMDIFF_E_LAST_, "status table must cover every code");

SMDIFF_API const char *smdiff_strerror(int32_t status) {
    if (status > 0 || status <= -N_STATUS) return "unknown error";
    return k_status[-status].message;
}

SMDIFF_API const char *smdiff_err_name(int32_t status) {
    if (status > 0 || status <= -N_STATUS) return "SMDIFF_E_UNKNOWN";
    return k_status[-status].name;
}

static _Thread_local sd_error tls_error;

sd_error *sd_tls_error(void) { return &tls_error; }

SMDIFF_API const char *smdiff_last_error(void) { return tls_error.msg; }

int32_t sd_fail(sd_error *err, int32_t code, const char *fmt, ...) {
    tls_error.code = code;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tls_error.msg, sizeof tls_error.msg, fmt, ap);
    va_end(ap);
    if (n < 0) tls_error.msg[0] = '\0';
    if (err && err != &tls_error) memcpy(err, &tls_error, sizeof *err);
    return code;
}

void sd_error_clear(sd_error *err) {
    if (!err) err = &tls_error;
    err->code = SMDIFF_OK;
    err->msg[0] = '\0';
}

int32_t sd_error_forward(sd_error *dst, const sd_error *src) {
    if (src != &tls_error) memcpy(&tls_error, src, sizeof tls_error);
    if (dst && dst != &tls_error && dst != src) memcpy(dst, src, sizeof *dst);
    return src->code;
}
