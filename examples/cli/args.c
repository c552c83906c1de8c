/* args.c -- getopt_long with the smdiff conventions and strict numbers
 * (args.h, docs/CLI.md). The numbers are parsed here rather than with bare
 * strtoll/strtod because those accept what a command line must refuse:
 * leading blanks, trailing characters, an empty string (as 0), overflow
 * (clamped), and a negative count. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static char g_prog[64] = "smdiff";

const char *cli_prog(void) { return g_prog; }

void cli_begin(cli_args *a, const cli_spec *spec) {
    memset(a, 0, sizeof *a);
    a->spec = spec;
    a->progress = -1;
    snprintf(g_prog, sizeof g_prog, "smdiff %s", spec->name);
    /* '-': positional arguments come back in order (code 1), whatever
     * POSIXLY_CORRECT says; ':': a missing value returns ':'. */
    snprintf(a->optstring, sizeof a->optstring, "-:%s", spec->shortopts);
    optind = 0; /* glibc: 0 re-initialises getopt completely */
    opterr = 0; /* the messages are ours */
}

int cli_usage_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", g_prog);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n(`%s --help` lists the options)\n", g_prog);
    va_end(ap);
    return CLI_EXIT_USAGE;
}

/* The long options of the table that name (its first len bytes) can mean:
 * itself if it is one, else those it abbreviates. Their count, the first
 * in *first. */
static int long_matches(const struct option *o, const char *name, size_t len, const struct option **first) {
    int n = 0;
    for (const struct option *p = o; p->name; p++)
        if (strlen(p->name) == len && !strncmp(p->name, name, len)) {
            *first = p;
            return 1;
        }
    for (; o->name; o++)
        if (!strncmp(o->name, name, len) && (n++ == 0)) *first = o;
    return n;
}

/* Why getopt_long refused an argument: an unknown or ambiguous long name,
 * a value given to a long option that takes none, or an unknown short
 * option (optopt; argv[optind - 1] is then the argument before it when it
 * sits inside a cluster such as -qx). */
static int report_refused(const cli_args *a, const char *arg) {
    if (!strncmp(arg, "--", 2) && arg[2]) {
        const char *name = arg + 2, *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        const struct option *o = NULL;
        int n = long_matches(a->spec->longopts, name, len, &o);
        if (n == 1 && eq && o->has_arg == no_argument) return cli_usage_error("--%s takes no value", o->name);
        if (n == 0) return cli_usage_error("unknown option '--%.*s'", (int)len, name);
        if (n > 1) {
            fprintf(stderr, "%s: '--%.*s' is ambiguous:", g_prog, (int)len, name);
            for (o = a->spec->longopts; o->name; o++)
                if (!strncmp(o->name, name, len)) fprintf(stderr, " --%s", o->name);
            fprintf(stderr, "\n");
            return CLI_EXIT_USAGE;
        }
    }
    if (optopt > 0 && optopt < 256) return cli_usage_error("unknown option '-%c'", optopt);
    return cli_usage_error("unknown option '%s'", arg);
}

static int stop(cli_args *a, int status) {
    a->status = status;
    return CLI_STOP;
}

int cli_next(cli_args *a, int argc, char **argv) {
    for (;;) {
        a->opt = NULL;
        if (a->after_dashes) {
            if (optind >= argc) return CLI_DONE;
            optarg = argv[optind++];
            return CLI_ARG;
        }
        int idx = -1;
        int c = getopt_long(argc, argv, a->optstring, a->spec->longopts, &idx);
        if (c == -1) { /* the end, or "--" */
            a->after_dashes = 1;
            continue;
        }
        if (c == 1) return CLI_ARG;
        if (c == '?') return stop(a, report_refused(a, argv[optind - 1]));
        if (idx >= 0) snprintf(a->optbuf, sizeof a->optbuf, "--%s", a->spec->longopts[idx].name);
        else snprintf(a->optbuf, sizeof a->optbuf, "-%c", c == ':' ? optopt : c);
        a->opt = a->optbuf;
        if (c == ':') {
            /* a long option's name as typed, else -c */
            const char *arg = argv[optind - 1];
            if (!strncmp(arg, "--", 2)) snprintf(a->optbuf, sizeof a->optbuf, "%s", arg);
            return stop(a, cli_usage_error("%s needs a value", a->optbuf));
        }
        switch (c) {
        case 'h':
            a->spec->usage(stdout);
            return stop(a, CLI_EXIT_OK);
        case CLI_OPT_PROGRESS: a->progress = 1; break;
        case CLI_OPT_NO_PROGRESS: a->progress = 0; break;
        case CLI_OPT_NO_COLOR: a->no_color = 1; break;
        default: return c;
        }
    }
}

int cli_parse(cli_args *a, const cli_spec *spec, int argc, char **argv, cli_option_fn fn, void *ud) {
    int c, r = 0;
    cli_begin(a, spec);
    while (!r && (c = cli_next(a, argc, argv)) > 0) r = fn(ud, a, c, optarg);
    if (r) return r;
    return c < 0 ? (a->status ? a->status : -1) : 0;
}

int cli_dispatch(const cli_spec *parent, const cli_subcommand *subs, size_t n, int argc, char **argv) {
    for (size_t i = 0; argc >= 2 && i < n; i++)
        if (!strcmp(argv[1], subs[i].name)) return subs[i].fn(argc - 1, argv + 1);
    char names[256] = "";
    for (size_t i = 0; i < n; i++)
        snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s", i ? ", " : "", subs[i].name);
    cli_args a;
    int c;
    cli_begin(&a, parent);
    if ((c = cli_next(&a, argc, argv)) > 0) return cli_usage_error("unknown subcommand '%s' (%s)", optarg, names);
    if (c < 0) return a.status;
    return cli_usage_error("which subcommand? (%s)", names);
}

/* ------------------------------------------------------------- numbers */

typedef enum { NUM_OK, NUM_NOT_A_NUMBER, NUM_NOT_AN_INTEGER, NUM_TOO_LARGE } num_status;

/* A number starts with a digit, a sign or a point: no blanks, no "inf". */
static int starts_like_number(const char *s) {
    return isdigit((unsigned char)s[0]) || s[0] == '.' ||
           ((s[0] == '+' || s[0] == '-') && (isdigit((unsigned char)s[1]) || s[1] == '.'));
}

static num_status parse_real(const char *text, double *out) {
    if (!starts_like_number(text)) return NUM_NOT_A_NUMBER;
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (end == text || *end) return NUM_NOT_A_NUMBER;
    if (errno == ERANGE && isinf(v)) return NUM_TOO_LARGE; /* an underflow to 0 is a number */
    if (!isfinite(v)) return NUM_NOT_A_NUMBER;
    *out = v;
    return NUM_OK;
}

static num_status parse_integer(const char *text, int64_t *out) {
    if (!starts_like_number(text)) return NUM_NOT_A_NUMBER;
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (end == text || *end) {
        double d;
        num_status r = parse_real(text, &d);
        return r == NUM_OK ? NUM_NOT_AN_INTEGER : r;
    }
    if (errno == ERANGE) return NUM_TOO_LARGE;
    *out = (int64_t)v;
    return NUM_OK;
}

static int report(const char *opt, const char *text, num_status st) {
    static const char *const why[] = {"", "is not a number", "is not an integer", "is too large a number"};
    fprintf(stderr, "%s: %s: '%s' %s\n", g_prog, opt, text, why[st]);
    return CLI_EXIT_USAGE;
}

static int check_int(const char *opt, const char *text, int count, int64_t min, int64_t max, int64_t *out) {
    int64_t v = 0;
    num_status st = parse_integer(text, &v);
    if (st != NUM_OK) return report(opt, text, st);
    if (count && v < 0) {
        fprintf(stderr, "%s: %s: '%s' is negative; it must be %lld or more\n", g_prog, opt, text,
                (long long)(min > 0 ? min : 0));
        return CLI_EXIT_USAGE;
    }
    if (v < min || v > max) {
        fprintf(stderr, "%s: %s: %lld is out of range [%lld, %lld]\n", g_prog, opt, (long long)v, (long long)min,
                (long long)max);
        return CLI_EXIT_USAGE;
    }
    *out = v;
    return 0;
}

int cli_int(const char *opt, const char *text, int64_t min, int64_t max, int64_t *out) {
    return check_int(opt, text, 0, min, max, out);
}

int cli_count(const char *opt, const char *text, int64_t min, int64_t max, int64_t *out) {
    return check_int(opt, text, 1, min, max, out);
}

int cli_real(const char *opt, const char *text, double min, double max, double *out) {
    double v = 0;
    num_status st = parse_real(text, &v);
    if (st != NUM_OK) return report(opt, text, st);
    if (v < min || v > max) {
        fprintf(stderr, "%s: %s: %g is out of range [%g, %g]\n", g_prog, opt, v, min, max);
        return CLI_EXIT_USAGE;
    }
    *out = v;
    return 0;
}

typedef int32_t (*info_fn)(int32_t key, const char **name, int32_t *type, double *min, double *max,
                           double *def);

/* The *_option_info of the family that owns key (args.h: the families'
 * ranges are disjoint, [base, base + 100)). */
static info_fn family_info(int32_t key) {
    switch (key / 100) {
    case SMDIFF_MODEL_OPT_FIRST_ / 100: return smdiff_model_option_info;
    case SMDIFF_SM_OPT_FIRST_ / 100: return smdiff_softmask_option_info;
    case SMDIFF_SAMPLER_OPT_FIRST_ / 100: return smdiff_sampler_option_info;
    case SMDIFF_TRAIN_OPT_FIRST_ / 100: return smdiff_trainer_option_info;
    case SMDIFF_SERVER_OPT_FIRST_ / 100: return smdiff_server_option_info;
    case SMDIFF_QUANT_OPT_FIRST_ / 100: return smdiff_quantize_option_info;
    case SMDIFF_BATCH_OPT_FIRST_ / 100: return smdiff_batch_option_info;
    default: return NULL;
    }
}

static int key_info(const char *opt, int32_t key, int32_t want_type, double *min, double *max) {
    info_fn info = family_info(key);
    int32_t type = 0;
    if (!info || info(key, NULL, &type, min, max, NULL) != SMDIFF_OK || type != want_type) {
        fprintf(stderr, "%s: %s: internal error: key %d is not a %s option\n", g_prog, opt, (int)key,
                want_type == SMDIFF_TYPE_INT ? "integer" : "real");
        return CLI_EXIT_FAIL;
    }
    return 0;
}

/* An integer option's bounds, saturated to int64_t (2^63 - 1 is no double). */
static int key_bounds(const char *opt, int32_t key, int64_t *lo, int64_t *hi) {
    double min = 0, max = 0;
    int r = key_info(opt, key, SMDIFF_TYPE_INT, &min, &max);
    *lo = min <= -9.2e18 ? INT64_MIN : (int64_t)min;
    *hi = max >= 9.2e18 ? INT64_MAX : (int64_t)max;
    return r;
}

int cli_key_int(const char *opt, const char *text, int32_t key, int64_t *out) {
    int64_t lo, hi;
    int r = key_bounds(opt, key, &lo, &hi);
    return r ? r : check_int(opt, text, lo >= 0, lo, hi, out);
}

int cli_key_count(const char *opt, const char *text, int32_t key, int64_t *out) {
    int64_t lo, hi;
    int r = key_bounds(opt, key, &lo, &hi);
    return r ? r : check_int(opt, text, 1, lo > 0 ? lo : 0, hi, out);
}

int cli_key_real(const char *opt, const char *text, int32_t key, double *out) {
    double min = 0, max = 0;
    int r = key_info(opt, key, SMDIFF_TYPE_DOUBLE, &min, &max);
    return r ? r : cli_real(opt, text, min, max, out);
}

/* Each element of a comma-separated list through one of the checks. */
static int each_element(const char *opt, const char *text, size_t cap, size_t *n,
                        int (*check)(const char *opt, const char *elem, size_t i, void *ud), void *ud) {
    size_t k = 0;
    for (const char *s = text;; k++) {
        size_t len = strcspn(s, ",");
        if (k == cap) {
            fprintf(stderr, "%s: %s: more than %zu values in '%s'\n", g_prog, opt, cap, text);
            return CLI_EXIT_USAGE;
        }
        char *elem = malloc(len + 1);
        if (!elem) {
            fprintf(stderr, "%s: %s: out of memory\n", g_prog, opt);
            return CLI_EXIT_FAIL;
        }
        memcpy(elem, s, len);
        elem[len] = '\0';
        int r = check(opt, elem, k, ud);
        free(elem);
        if (r) return r;
        if (!s[len]) break;
        s += len + 1;
    }
    *n = k + 1;
    return 0;
}

typedef struct list_ctx {
    int64_t imin, imax, *ints;
    double rmin, rmax, *reals;
} list_ctx;

static int check_count_elem(const char *opt, const char *elem, size_t i, void *ud) {
    list_ctx *c = ud;
    return cli_count(opt, elem, c->imin, c->imax, &c->ints[i]);
}

static int check_real_elem(const char *opt, const char *elem, size_t i, void *ud) {
    list_ctx *c = ud;
    return cli_real(opt, elem, c->rmin, c->rmax, &c->reals[i]);
}

int cli_count_list(const char *opt, const char *text, int64_t min, int64_t max, int64_t *out, size_t cap,
                   size_t *n) {
    list_ctx c = {min, max, out, 0, 0, NULL};
    return each_element(opt, text, cap, n, check_count_elem, &c);
}

int cli_real_list(const char *opt, const char *text, double min, double max, double *out, size_t cap,
                  size_t *n) {
    list_ctx c = {0, 0, NULL, min, max, out};
    return each_element(opt, text, cap, n, check_real_elem, &c);
}

int cli_refused(const char *opt, int32_t rc, const char *detail) {
    if (rc == SMDIFF_OK) return 0;
    if (rc == SMDIFF_E_NOT_FOUND) return cli_fail(opt, rc, detail); /* a name registered (or not) at run time */
    fprintf(stderr, "%s: %s: %s (%s)\n", g_prog, opt, detail && *detail ? detail : smdiff_strerror(rc),
            smdiff_err_name(rc));
    return CLI_EXIT_USAGE;
}

/* ------------------------------------------------------------ settings */

/* A new setting for key, or NULL after saying the list is full. */
static cli_setting *setting_slot(cli_settings *s, const char *opt, int32_t key, int32_t type) {
    if (s->n == sizeof s->v / sizeof s->v[0]) {
        fprintf(stderr, "%s: %s: too many options\n", g_prog, opt);
        return NULL;
    }
    cli_setting *v = &s->v[s->n++];
    memset(v, 0, sizeof *v);
    v->key = key, v->type = type;
    snprintf(v->opt, sizeof v->opt, "%s", opt);
    return v;
}

int cli_setting_parse(cli_settings *s, const char *opt, const char *text, int32_t key) {
    info_fn info = family_info(key);
    int32_t type = 0;
    if (info) info(key, NULL, &type, NULL, NULL, NULL);
    int64_t i = 0;
    double d = 0;
    int r = type == SMDIFF_TYPE_INT ? cli_key_int(opt, text, key, &i) : cli_key_real(opt, text, key, &d);
    if (r) return r;
    cli_setting *v = setting_slot(s, opt, key, type);
    if (!v) return CLI_EXIT_USAGE;
    v->i = i, v->d = d;
    return 0;
}

int cli_setting_int(cli_settings *s, const char *opt, int32_t key, int64_t value) {
    cli_setting *v = setting_slot(s, opt, key, SMDIFF_TYPE_INT);
    if (!v) return CLI_EXIT_USAGE;
    v->i = value;
    return 0;
}

int cli_setting_given(const cli_settings *s, int32_t key) {
    for (size_t i = 0; i < s->n; i++)
        if (s->v[i].key == key) return 1;
    return 0;
}

int cli_settings_apply(const cli_settings *s, void *obj) {
    for (size_t k = 0; k < s->n; k++) {
        const cli_setting *v = &s->v[k];
        int is_int = v->type == SMDIFF_TYPE_INT;
        int32_t rc = SMDIFF_E_INVAL;
        const char *detail = NULL;
        switch (v->key / 100) {
        case SMDIFF_MODEL_OPT_FIRST_ / 100:
            if (is_int) rc = smdiff_model_set_int(obj, v->key, v->i);
            detail = smdiff_last_error();
            break;
        case SMDIFF_SM_OPT_FIRST_ / 100:
            rc = is_int ? smdiff_softmask_set_int(obj, v->key, v->i) : smdiff_softmask_set_double(obj, v->key, v->d);
            detail = smdiff_softmask_last_error(obj);
            break;
        case SMDIFF_SAMPLER_OPT_FIRST_ / 100:
            rc = is_int ? smdiff_sampler_set_int(obj, v->key, v->i) : smdiff_sampler_set_double(obj, v->key, v->d);
            detail = smdiff_sampler_last_error(obj);
            break;
        case SMDIFF_TRAIN_OPT_FIRST_ / 100:
            rc = is_int ? smdiff_trainer_set_int(obj, v->key, v->i) : smdiff_trainer_set_double(obj, v->key, v->d);
            detail = smdiff_trainer_last_error(obj);
            break;
        case SMDIFF_SERVER_OPT_FIRST_ / 100:
            rc = is_int ? smdiff_server_set_int(obj, v->key, v->i) : smdiff_server_set_double(obj, v->key, v->d);
            detail = smdiff_server_last_error(obj);
            break;
        }
        if (rc) return cli_refused(v->opt, rc, detail);
    }
    return 0;
}
