/* options.h -- enum-keyed option tables shared by the public objects.
 *
 * Each object describes its options once (key, name, type, bounds,
 * default) and stores values in an array indexed by key. The generic
 * setters here check type and bounds; objects add cross-field checks on a
 * copy before committing, so a rejected set leaves the object unchanged.
 */
#ifndef SD_CORE_OPTIONS_H
#define SD_CORE_OPTIONS_H

#include <stdint.h>

#include "error.h"

typedef struct sd_option_def {
    int32_t key;        /* 1..n, equal to its index + 1 in the table */
    const char *name;
    int32_t type;       /* SMDIFF_TYPE_INT or SMDIFF_TYPE_DOUBLE */
    double min, max, def;
    uint8_t min_open;   /* 1: min itself is excluded */
    uint8_t max_open;
} sd_option_def;

typedef struct sd_option_table {
    const char *object;          /* "sampler", for messages */
    const sd_option_def *defs;
    int32_t n;
} sd_option_table;

typedef union sd_optval {
    int64_t i;
    double d;
} sd_optval;

/* vals must hold table->n + 1 entries (index 0 unused). */
void sd_options_defaults(const sd_option_table *t, sd_optval *vals);
int32_t sd_option_set_int(const sd_option_table *t, sd_optval *vals, int32_t key,
                          int64_t value, sd_error *err);
int32_t sd_option_set_double(const sd_option_table *t, sd_optval *vals, int32_t key,
                             double value, sd_error *err);
int32_t sd_option_get_int(const sd_option_table *t, const sd_optval *vals, int32_t key,
                          int64_t *out, sd_error *err);
int32_t sd_option_get_double(const sd_option_table *t, const sd_optval *vals, int32_t key,
                             double *out, sd_error *err);
int32_t sd_option_info(const sd_option_table *t, int32_t key, const char **name,
                       int32_t *type, double *min, double *max, double *def);
int32_t sd_option_key(const sd_option_table *t, const char *name, int32_t *key);

#endif
