/* error.h -- status codes and detailed error messages inside smdiff.
 *
 * smdiff.h's rule: every failing call records its message in the calling
 * thread's slot (smdiff_last_error), and a call on a sampler, schedule or
 * trainer also on that object. So every record goes to the thread-local
 * slot, and to the object's sd_error when one is given: a failing function
 * calls sd_fail(&obj->err, ...) (or NULL without an object) and returns
 * the code, and both places the header names hold the newest message.
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

/* Record code and message in the thread-local slot and, when err is not
 * NULL, in err too; return code, so callers can write `return sd_fail(...)`. */
int32_t sd_fail(sd_error *err, int32_t code, const char *fmt, ...) SD_PRINTF(3, 4);

/* Clear a record. */
void sd_error_clear(sd_error *err);

/* Copy src's record into the thread-local slot and into dst (may be NULL);
 * return its code. */
int32_t sd_error_forward(sd_error *dst, const sd_error *src);

/* The thread-local record used when there is no object. */
sd_error *sd_tls_error(void);

#endif
