/* error.h -- status codes and detailed error messages inside smdiff.
 *
 * Every object embeds an sd_error; a failing function records a code and a
 * formatted message there and returns the code, so the public API can
 * report both. Calls without an object use the thread-local slot read by
 * smdiff_last_error().
 */
#ifndef SD_CORE_ERROR_H
#define SD_CORE_ERROR_H

#include <stdint.h>
#include <stddef.h>

#include "smdiff/smdiff.h"

#define SD_ERROR_MSG_MAX 512

typedef struct sd_error {
    int32_t code;
    char msg[SD_ERROR_MSG_MAX];
} sd_error;

#if defined(__GNUC__) || defined(__clang__)
#define SD_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define SD_PRINTF(a, b)
#endif

/* Record code and message in err (or the thread-local slot when err is
 * NULL) and return code, so callers can write `return sd_fail(...)`. */
int32_t sd_fail(sd_error *err, int32_t code, const char *fmt, ...) SD_PRINTF(3, 4);

/* Clear a record. */
void sd_error_clear(sd_error *err);

/* Copy src's record into dst (or the thread-local slot when dst is NULL). */
int32_t sd_error_forward(sd_error *dst, const sd_error *src);

/* The thread-local record used when there is no object. */
sd_error *sd_tls_error(void);

#endif
