#include <math.h>
#include <string.h>

#include "options.h"

static const sd_option_def *find(const sd_option_table *t, int32_t key) {
    if (key < 1 || key > t->n) return NULL;
    return &t->defs[key - 1];
}

void sd_options_defaults(const sd_option_table *t, sd_optval *vals) {
    vals[0].i = 0;
    for (int32_t k = 1; k <= t->n; k++) {
        const sd_option_def *d = &t->defs[k - 1];
        if (d->type == SMDIFF_TYPE_INT)
            vals[k].i = (int64_t)d->def;
        else
            vals[k].d = d->def;
    }
}

static int in_bounds(const sd_option_def *d, double v) {
    if (isnan(v)) return 0;
    if (d->min_open ? !(v > d->min) : !(v >= d->min)) return 0;
    if (d->max_open ? !(v < d->max) : !(v <= d->max)) return 0;
    return 1;
}

static int32_t range_error(const sd_option_table *t, const sd_option_def *d, double v,
                           sd_error *err) {
    return sd_fail(err, SMDIFF_E_RANGE, "%s option '%s' = %g outside %c%g, %g%c", t->object,
                   d->name, v, d->min_open ? '(' : '[', d->min, d->max, d->max_open ? ')' : ']');
}

int32_t sd_option_set_int(const sd_option_table *t, sd_optval *vals, int32_t key,
                          int64_t value, sd_error *err) {
    const sd_option_def *d = find(t, key);
    if (!d) return sd_fail(err, SMDIFF_E_INVAL, "unknown %s option key %d", t->object, (int)key);
    if (d->type != SMDIFF_TYPE_INT)
        return sd_fail(err, SMDIFF_E_INVAL, "%s option '%s' is a double; use the _double setter",
                       t->object, d->name);
    /* Compare in integers where the bound is integral, so 2^63-1 is exact. */
    int64_t lo = (int64_t)d->min;
    int ok = value >= lo + (d->min_open ? 1 : 0);
    if (d->max >= 9.2e18)
        ok = ok && !(d->max_open && value == INT64_MAX);
    else
        ok = ok && value <= (int64_t)d->max - (d->max_open ? 1 : 0);
    if (!ok) return range_error(t, d, (double)value, err);
    vals[key].i = value;
    return SMDIFF_OK;
}

int32_t sd_option_set_double(const sd_option_table *t, sd_optval *vals, int32_t key,
                             double value, sd_error *err) {
    const sd_option_def *d = find(t, key);
    if (!d) return sd_fail(err, SMDIFF_E_INVAL, "unknown %s option key %d", t->object, (int)key);
    if (d->type != SMDIFF_TYPE_DOUBLE)
        return sd_fail(err, SMDIFF_E_INVAL, "%s option '%s' is an integer; use the _int setter",
                       t->object, d->name);
    if (!in_bounds(d, value)) return range_error(t, d, value, err);
    vals[key].d = value;
    return SMDIFF_OK;
}

int32_t sd_option_get_int(const sd_option_table *t, const sd_optval *vals, int32_t key,
                          int64_t *out, sd_error *err) {
    const sd_option_def *d = find(t, key);
    if (!d) return sd_fail(err, SMDIFF_E_INVAL, "unknown %s option key %d", t->object, (int)key);
    if (d->type != SMDIFF_TYPE_INT)
        return sd_fail(err, SMDIFF_E_INVAL, "%s option '%s' is a double; use the _double getter",
                       t->object, d->name);
    *out = vals[key].i;
    return SMDIFF_OK;
}

int32_t sd_option_get_double(const sd_option_table *t, const sd_optval *vals, int32_t key,
                             double *out, sd_error *err) {
    const sd_option_def *d = find(t, key);
    if (!d) return sd_fail(err, SMDIFF_E_INVAL, "unknown %s option key %d", t->object, (int)key);
    if (d->type != SMDIFF_TYPE_DOUBLE)
        return sd_fail(err, SMDIFF_E_INVAL, "%s option '%s' is an integer; use the _int getter",
                       t->object, d->name);
    *out = vals[key].d;
    return SMDIFF_OK;
}

int32_t sd_option_info(const sd_option_table *t, int32_t key, const char **name,
                       int32_t *type, double *min, double *max, double *def) {
    const sd_option_def *d = find(t, key);
    if (!d) return sd_fail(NULL, SMDIFF_E_INVAL, "unknown %s option key %d", t->object, (int)key);
    if (name) *name = d->name;
    if (type) *type = d->type;
    if (min) *min = d->min;
    if (max) *max = d->max;
    if (def) *def = d->def;
    return SMDIFF_OK;
}

int32_t sd_option_key(const sd_option_table *t, const char *name, int32_t *key) {
    if (!name || !key) return sd_fail(NULL, SMDIFF_E_INVAL, "NULL argument");
    for (int32_t k = 0; k < t->n; k++) {
        if (strcmp(t->defs[k].name, name) == 0) {
            *key = t->defs[k].key;
            return SMDIFF_OK;
        }
    }
    return sd_fail(NULL, SMDIFF_E_NOT_FOUND, "no %s option named '%s'", t->object, name);
}
