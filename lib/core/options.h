/* options.h -- enum-keyed option tables shared by the public objects.
 *
 * Each object describes its options once (key, name, type, bounds,
 * default) and stores values in an array indexed by the key's slot in its
 * family. The generic setters here check the family, the type and the
 * bounds; objects add cross-field checks on a copy before committing, so a
 * rejected set leaves the object unchanged.
 *
 * Key families (smdiff.h): each family owns the keys [base, base + 100),
 * base a multiple of 100 from 100 up; keys 0..99 belong to none. A key
 * handed to another family's function is refused with SMDIFF_E_INVAL and a
 * message naming both families.
 */
#ifndef SD_CORE_OPTIONS_H
#define SD_CORE_OPTIONS_H

#include <stdint.h>

#include "error.h"

#define SD_OPT_FAMILY_SPAN 100

/* Index of a key in its family's value array (the family's first key is 0). */
#define SD_OPT_SLOT(key) ((key) % SD_OPT_FAMILY_SPAN)

typedef struct sd_option_def {
    int32_t key;        /* the family's first key + its index in the table */
    const char *name;
    int32_t type;       /* SMDIFF_TYPE_INT or SMDIFF_TYPE_DOUBLE */
    double min, max, def;
    uint8_t min_open;   /* 1: min itself is excluded */
    uint8_t max_open;
} sd_option_def;

typedef struct sd_option_table {
    const sd_option_def *defs;   /* defs[i].key == defs[0].key + i, defs[0].key
                                    the family's base */
    int32_t n;
} sd_option_table;

typedef union sd_optval {
    int64_t i;
    double d;
} sd_optval;

/* What a family's keys are, for messages: "sampler option", "model
 * property"; NULL for a key of no family. */
const char *sd_option_family(int32_t key);

/* SMDIFF_OK if key lies in [first, last], else SMDIFF_E_INVAL with a message
 * naming the key's family and the expected one ("key 300 is a sampler
 * option, not a soft-mask option"). */
int32_t sd_option_check_family(int32_t first, int32_t last, int32_t key, sd_error *err);

/* vals must hold table->n entries, indexed by SD_OPT_SLOT(key). */
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
                       int32_t *type, double *min, double *max, double *def, sd_error *err);
int32_t sd_option_key(const sd_option_table *t, const char *name, int32_t *key, sd_error *err);

/* The error slot of a public handle with an `err` member, NULL for a NULL
 * handle. smdiff.h's rule records a failure there and in the thread's slot
 * (sd_fail does both), const getters included: the slot is not part of the
 * object's value. */
#define SD_ERR_OF(obj) ((obj) ? (sd_error *)&(obj)->err : NULL)

/* The four read accessors that every public object of type T holding `opt`
 * (values of table) and `err` exports, one definition for all:
 * smdiff_<name>_get_int, _get_double, _option_info and _option_key (each
 * documented in smdiff.h). A NULL argument is SMDIFF_E_INVAL. */
#define SD_OPTION_READERS(name, T, table)                                                              \
    SMDIFF_API int32_t smdiff_##name##_get_int(const T *o, int32_t key, int64_t *out) {                \
        if (!o || !out) return sd_fail(SD_ERR_OF(o), SMDIFF_E_INVAL, "smdiff_" #name "_get_int: NULL argument"); \
        return sd_option_get_int(&(table), o->opt, key, out, SD_ERR_OF(o));                            \
    }                                                                                                  \
    SMDIFF_API int32_t smdiff_##name##_get_double(const T *o, int32_t key, double *out) {              \
        if (!o || !out)                                                                                \
            return sd_fail(SD_ERR_OF(o), SMDIFF_E_INVAL, "smdiff_" #name "_get_double: NULL argument"); \
        return sd_option_get_double(&(table), o->opt, key, out, SD_ERR_OF(o));                         \
    }                                                                                                  \
    SMDIFF_API int32_t smdiff_##name##_option_info(int32_t key, const char **oname, int32_t *type,     \
                                                   double *min, double *max, double *def) {            \
        return sd_option_info(&(table), key, oname, type, min, max, def, NULL);                        \
    }                                                                                                  \
    SMDIFF_API int32_t smdiff_##name##_option_key(const char *oname, int32_t *key) {                   \
        return sd_option_key(&(table), oname, key, NULL);                                              \
    }

#endif
