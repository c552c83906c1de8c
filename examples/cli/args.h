/* args.h -- the command line every smdiff subcommand shares (docs/CLI.md):
 * one getopt_long table per command, strict numbers, the common flags and
 * the exit statuses.
 *
 * A command declares its table in a cli_spec, then loops:
 *
 *     cli_args a;
 *     int c;
 *     cli_begin(&a, &spec);
 *     while ((c = cli_next(&a, argc, argv)) > 0) {
 *         switch (c) {
 *         case CLI_ARG: ...positional optarg...; break;
 *         case 's': if (cli_key_int(a.opt, optarg, SMDIFF_SAMPLER_SEED, &seed)) return CLI_EXIT_USAGE; break;
 *         ...
 *         }
 *     }
 *     if (c < 0) return a.status;   (--help printed: 0; a usage error: 2)
 *
 * Every number goes through cli_int / cli_count / cli_real or, where the
 * option is one of the library's, cli_key_int / cli_key_real, whose bounds
 * come from the library's *_option_info. Messages name the command and the
 * option: "smdiff generate: --steps: 'abc' is not a number". getopt_long is
 * glibc's: --opt=value and --opt value, unambiguous abbreviations of long
 * names, options and positional arguments in any order, "--" ends options. */
#ifndef SMDIFF_CLI_ARGS_H
#define SMDIFF_CLI_ARGS_H

#include <getopt.h>
#include <stdint.h>
#include <stdio.h>

/* Exit statuses, the same for every command. */
#define CLI_EXIT_OK    0 /* done */
#define CLI_EXIT_FAIL  1 /* failed while running: a file, the library, lost output */
#define CLI_EXIT_USAGE 2 /* the command line is wrong: unknown option, bad or missing value */

/* Option codes a command's table may use besides single characters:
 * command-specific long-only options count up from CLI_OPT_FIRST; the
 * common options have codes of their own and are handled by cli_next. */
enum {
    CLI_OPT_FIRST = 0x100,
    CLI_OPT_PROGRESS = 0x10000, /* --progress */
    CLI_OPT_NO_PROGRESS,        /* --no-progress */
    CLI_OPT_NO_COLOR,           /* --no-color */
};

/* The common options, to put in a command's table: -h/--help everywhere
 * (with 'h' in the short options), progress switches in commands that
 * show progress, --no-color in commands that colour their output. */
#define CLI_HELP_OPTION {"help", no_argument, NULL, 'h'}
#define CLI_PROGRESS_OPTIONS                                  \
    {"progress", no_argument, NULL, CLI_OPT_PROGRESS},        \
    {"no-progress", no_argument, NULL, CLI_OPT_NO_PROGRESS}
#define CLI_COLOR_OPTION {"no-color", no_argument, NULL, CLI_OPT_NO_COLOR}

/* One command's command line. */
typedef struct cli_spec {
    const char *name;              /* "generate", "eval elbo": messages say "smdiff NAME: ..." */
    const char *shortopts;         /* getopt's short options, e.g. "m:p:n:h" */
    const struct option *longopts; /* ends with an all-zero entry */
    void (*usage)(FILE *f);        /* the --help text: every option of the table */
} cli_spec;

/* The state of one parse. */
typedef struct cli_args {
    const cli_spec *spec;
    const char *opt;   /* the option just returned, as typed ("--steps", "-n") */
    int progress;      /* --progress 1, --no-progress 0, neither -1 */
    int no_color;      /* --no-color given */
    int status;        /* after cli_next returned CLI_STOP: the exit status */
    int after_dashes;  /* "--" seen: the rest are positional arguments */
    char optstring[96];
    char optbuf[64];
} cli_args;

#define CLI_ARG  1  /* cli_next: a positional argument, in optarg */
#define CLI_DONE 0  /* cli_next: nothing left */
#define CLI_STOP (-1) /* cli_next: --help was printed or a usage error reported; exit with a->status */

/* Start parsing with spec (resets getopt). */
void cli_begin(cli_args *a, const cli_spec *spec);

/* The next option's code (its value in optarg), CLI_ARG for a positional
 * argument (in optarg), CLI_DONE at the end, or CLI_STOP after printing the
 * help (status 0) or a usage error (status 2). The common options are
 * handled here and not returned. */
int cli_next(cli_args *a, int argc, char **argv);

/* The whole loop for a command that keeps its options in a struct: begin,
 * then fn(ud, a, code, value) for every option and positional argument
 * (code CLI_ARG) until one returns non-zero. Returns 0 when everything was
 * taken, -1 after --help was printed, or an exit status. */
typedef int (*cli_option_fn)(void *ud, const cli_args *a, int code, const char *value);
int cli_parse(cli_args *a, const cli_spec *spec, int argc, char **argv, cli_option_fn fn, void *ud);

/* A command made of subcommands ("eval elbo"): runs the one argv[1] names
 * with argv + 1; otherwise parses with parent (its --help) and reports a
 * missing or unknown subcommand. Returns the exit status. */
typedef struct cli_subcommand {
    const char *name;
    int (*fn)(int argc, char **argv);
} cli_subcommand;
int cli_dispatch(const cli_spec *parent, const cli_subcommand *subs, size_t n, int argc, char **argv);

/* The "smdiff NAME" of the command being parsed, for messages. */
const char *cli_prog(void);

/* Report a usage error: prints "smdiff NAME: <message>" and a hint to
 * --help on stderr; returns CLI_EXIT_USAGE. */
int cli_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Strict numbers. Each parses the whole of text (no leading blanks, no
 * trailing characters, not empty) and checks it against [min, max]; it
 * returns 0 with *out set, or prints why (naming opt) and returns
 * CLI_EXIT_USAGE. In this order: not a number, not an integer (cli_int,
 * cli_count), too large to represent, negative (cli_count only), out of
 * range. */
int cli_int(const char *opt, const char *text, int64_t min, int64_t max, int64_t *out);
int cli_count(const char *opt, const char *text, int64_t min, int64_t max, int64_t *out);
int cli_real(const char *opt, const char *text, double min, double max, double *out);

/* The same with the bounds of a library option (any family: model,
 * soft-mask, sampler, trainer, server, quantizer, batch), from its
 * *_option_info. An integer option whose lower bound is 0 or more is a
 * count: negatives are refused as such.
 * Doubles whose bounds are open are refused at the limit by the setter. */
int cli_key_int(const char *opt, const char *text, int32_t key, int64_t *out);
/* As cli_key_int for a count whose library option also takes a negative
 * value meaning "default" (e.g. -1 = none): the command line refuses
 * negatives, and leaving the option out gives the default. */
int cli_key_count(const char *opt, const char *text, int32_t key, int64_t *out);
int cli_key_real(const char *opt, const char *text, int32_t key, double *out);

/* Comma-separated lists ("8,16,32", "0.25,0.5"): each element as
 * cli_count / cli_real; at most cap of them (more is a usage error), their
 * number in *n. */
int cli_count_list(const char *opt, const char *text, int64_t min, int64_t max, int64_t *out, size_t cap,
                   size_t *n);
int cli_real_list(const char *opt, const char *text, double min, double max, double *out, size_t cap,
                  size_t *n);

/* Values for a library object's typed options, collected while parsing
 * and applied once the object exists; one family (model, soft-mask,
 * sampler, trainer or server) per list. A repeated option is applied in
 * order, so the last one counts. */
typedef struct cli_setting {
    int32_t key, type; /* SMDIFF_TYPE_INT or SMDIFF_TYPE_DOUBLE */
    int64_t i;
    double d;
    char opt[40]; /* as typed, for messages */
} cli_setting;
typedef struct cli_settings {
    cli_setting v[48];
    size_t n;
} cli_settings;

/* Parse text for key (cli_key_int or cli_key_real by the option's type)
 * and add it; 0 or an exit status. */
int cli_setting_parse(cli_settings *s, const char *opt, const char *text, int32_t key);
/* Add a fixed value (a flag such as --no-eos-stop); 0 or an exit status. */
int cli_setting_int(cli_settings *s, const char *opt, int32_t key, int64_t value);
/* Whether key is among the settings. */
int cli_setting_given(const cli_settings *s, int32_t key);
/* Set them on obj, an smdiff_model, smdiff_softmask, smdiff_sampler,
 * smdiff_trainer or smdiff_server as the keys' family says; the first refusal is reported
 * as cli_refused does (CLI_EXIT_USAGE). */
int cli_settings_apply(const cli_settings *s, void *obj);

/* Apply a value the command line gave to a library object and report the
 * library's refusal as a usage error: prints "smdiff NAME: OPT: detail" and
 * returns CLI_EXIT_USAGE if rc is not SMDIFF_OK, else 0. SMDIFF_E_NOT_FOUND
 * (a decoder strategy that is not registered: strategies are registered at
 * run time) is a failure while running, CLI_EXIT_FAIL, as cli_fail says. */
int cli_refused(const char *opt, int32_t rc, const char *detail);

/* ---- terminals and output (term.c) --------------------------------- */

/* Whether to show progress on stderr: --progress / --no-progress, else
 * whether stderr is a terminal. */
int cli_progress(const cli_args *a);

/* The state of a progress line over bytes (convert, quantize): when the
 * work started, whether a line was shown, whether stderr is a terminal
 * (then the line is redrawn with \r, else one line per report). */
typedef struct cli_byte_progress {
    double start;
    int shown, tty;
} cli_byte_progress;
void cli_byte_progress_start(cli_byte_progress *p);
/* Seconds since cli_byte_progress_start. */
double cli_byte_progress_elapsed(const cli_byte_progress *p);
/* End a redrawn line with a newline (if one was shown on a terminal). */
void cli_byte_progress_end(const cli_byte_progress *p);

/* Whether to colour what goes to stream: never with --no-color or a
 * non-empty NO_COLOR in the environment (https://no-color.org), else only
 * when stream is a terminal. */
int cli_color(const cli_args *a, FILE *stream);

/* Flush standard output and check that every write to it succeeded; on a
 * failure (closed pipe, full disk, I/O error) prints "smdiff NAME: standard
 * output: <reason>" once and returns CLI_EXIT_FAIL, else 0. Commands call
 * it before long work after printing, main() after every command. */
int cli_check_stdout(void);

#endif
