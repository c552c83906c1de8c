#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>

#include "log.h"

/* The callback and its user data change together, so they live in one
 * heap-free record swapped under a pointer; readers see either the old or
 * the new pair, never a mix. Two static slots suffice because a setter
 * only ever overwrites the slot not currently published. */
typedef struct {
    smdiff_log_fn fn;
    void *user_data;
} log_sink;

static log_sink sinks[2];
static _Atomic(log_sink *) current_sink = NULL;
static atomic_int max_level = SMDIFF_LOG_WARN;

SMDIFF_API int32_t smdiff_set_log_callback(smdiff_log_fn fn, void *user_data,
                                           int32_t level) {
    if (level < SMDIFF_LOG_ERROR || level > SMDIFF_LOG_DEBUG)
        return sd_fail(NULL, SMDIFF_E_RANGE, "log level %d outside 0..3", (int)level);
    if (!fn) {
        atomic_store(&current_sink, NULL);
    } else {
        log_sink *cur = atomic_load(&current_sink);
        log_sink *next = (cur == &sinks[0]) ? &sinks[1] : &sinks[0];
        next->fn = fn;
        next->user_data = user_data;
        atomic_store(&current_sink, next);
    }
    atomic_store(&max_level, level);
    return SMDIFF_OK;
}

void sd_log(int32_t level, const char *fmt, ...) {
    log_sink *sink = atomic_load(&current_sink);
    if (!sink || level > atomic_load(&max_level)) return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    sink->fn(level, line, sink->user_data);
}
