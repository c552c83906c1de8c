#include <math.h>
#include <string.h>

#include "options.h"

/* Indexed by key / SD_OPT_FAMILY_SPAN; smdiff.h lists the bases. */
static const char *const k_families[] = {
    NULL,             "model option",     "soft-mask option", "sampler option", "trainer option",
    "model property", "server option",    "quantizer option", "batch option",
};

#define N_FAMILIES ((int32_t)(sizeof k_families / sizeof k_families[0]))

const char *sd_option_family(int32_t key) {
    if (key < 0) return NULL;
    int32_t f = key / SD_OPT_FAMILY_SPAN;
    return f < N_FAMILIES ? k_families[f] : NULL;
}

int32_t sd_option_check_family(int32_t first, int32_t last, int32_t key, sd_error *err) {
    if (key >= first && key <= last) return SMDIFF_OK;
    const char *want = sd_option_family(first), *got = sd_option_family(key);
    if (!got)
        return sd_fail(err, SMDIFF_E_INVAL, "key %d belongs to no option family (keys start at 100), "
                       "not a %s", (int)key, want);
    if (got == want) return sd_fail(err, SMDIFF_E_INVAL, "unknown %s key %d", want, (int)key);
    return sd_fail(err, SMDIFF_E_INVAL, "key %d is a %s, not a %s", (int)key, got, want);
}

static int32_t first_key(const sd_option_table *t) { return t->defs[0].key; }

static const sd_option_def *find(const sd_option_table *t, int32_t key, sd_error *err) {
    if (sd_option_check_family(first_key(t), first_key(t) + t->n - 1, key, err)) return NULL;
    return &t->defs[key - first_key(t)];
}

void sd_options_defaults(const sd_option_table *t, sd_optval *vals) {
    for (int32_t k = 0; k < t->n; k++) {
        const sd_option_def *d = &t->defs[k];
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

static int32_t range_error(const sd_option_def *d, double v, sd_error *err) {
    return sd_fail(err, SMDIFF_E_RANGE, "%s '%s' = %g outside %c%g, %g%c", sd_option_family(d->key),
                   d->name, v, d->min_open ? '(' : '[', d->min, d->max, d->max_open ? ')' : ']');
}

/* The def of key if it has type `type`; NULL after recording why. */
static const sd_option_def *find_typed(const sd_option_table *t, int32_t key, int32_t type,
                                       const char *what, sd_error *err) {
    const sd_option_def *d = find(t, key, err);
    if (d && d->type != type) {
        int is_int = d->type == SMDIFF_TYPE_INT;
        sd_fail(err, SMDIFF_E_INVAL, "%s '%s' is %s; use the %s %s", sd_option_family(key), d->name,
                is_int ? "an integer" : "a double", is_int ? "_int" : "_double", what);
        return NULL;
    }
    return d;
}

int32_t sd_option_set_int(const sd_option_table *t, sd_optval *vals, int32_t key,
                          int64_t value, sd_error *err) {
    const sd_option_def *d = find_typed(t, key, SMDIFF_TYPE_INT, "setter", err);
    if (!d) return SMDIFF_E_INVAL;
    /* Compare in integers where the bound is integral, so 2^63-1 is exact. */
    int64_t lo = (int64_t)d->min;
    int ok = value >= lo + (d->min_open ? 1 : 0);
    if (d->max >= 9.2e18)
        ok = ok && !(d->max_open && value == INT64_MAX);
    else
        ok = ok && value <= (int64_t)d->max - (d->max_open ? 1 : 0);
    if (!ok) return range_error(d, (double)value, err);
    vals[key - first_key(t)].i = value;
    return SMDIFF_OK;
}

int32_t sd_option_set_double(const sd_option_table *t, sd_optval *vals, int32_t key,
                             double value, sd_error *err) {
    const sd_option_def *d = find_typed(t, key, SMDIFF_TYPE_DOUBLE, "setter", err);
    if (!d) return SMDIFF_E_INVAL;
    if (!in_bounds(d, value)) return range_error(d, value, err);
    vals[key - first_key(t)].d = value;
    return SMDIFF_OK;
}

int32_t sd_option_get_int(const sd_option_table *t, const sd_optval *vals, int32_t key,
                          int64_t *out, sd_error *err) {
    if (!find_typed(t, key, SMDIFF_TYPE_INT, "getter", err)) return SMDIFF_E_INVAL;
    *out = vals[key - first_key(t)].i;
    return SMDIFF_OK;
}

int32_t sd_option_get_double(const sd_option_table *t, const sd_optval *vals, int32_t key,
                             double *out, sd_error *err) {
    if (!find_typed(t, key, SMDIFF_TYPE_DOUBLE, "getter", err)) return SMDIFF_E_INVAL;
    *out = vals[key - first_key(t)].d;
    return SMDIFF_OK;
}

int32_t sd_option_info(const sd_option_table *t, int32_t key, const char **name,
                       int32_t *type, double *min, double *max, double *def, sd_error *err) {
    const sd_option_def *d = find(t, key, err);
    if (!d) return SMDIFF_E_INVAL;
    if (name) *name = d->name;
    if (type) *type = d->type;
    if (min) *min = d->min;
    if (max) *max = d->max;
    if (def) *def = d->def;
    return SMDIFF_OK;
}

int32_t sd_option_key(const sd_option_table *t, const char *name, int32_t *key, sd_error *err) {
    if (!name || !key) return sd_fail(err, SMDIFF_E_INVAL, "NULL argument looking up a %s",
                                      sd_option_family(first_key(t)));
    for (int32_t k = 0; k < t->n; k++) {
        if (strcmp(t->defs[k].name, name) == 0) {
            *key = t->defs[k].key;
            return SMDIFF_OK;
        }
    }
    return sd_fail(err, SMDIFF_E_NOT_FOUND, "no %s named '%s'", sd_option_family(first_key(t)), name);
}
