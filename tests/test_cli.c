/* test_cli.c -- the smdiff command line as docs/CLI.md promises it:
 *  - every command's --help lists every option of its getopt table, and
 *    every flag it shows is accepted (the table is read from the CLI's own
 *    objects, linked in; acceptance is checked by running the binary);
 *  - README.md's command table shows only flags the command's --help shows;
 *  - numbers are refused as not a number, not an integer, too large,
 *    negative or out of range (the bounds of the library option they set),
 *    in both --opt=value and --opt value forms, in every command;
 *  - llama.cpp's short aliases mean the same as the long options;
 *  - exit statuses: 0 done, 1 failed while running, 2 wrong command line;
 *  - progress only when stderr is a terminal (a pty here), colour only on a
 *    terminal (stderr's for --visual, stdout's for infilled text) and never
 *    with NO_COLOR or --no-color, overrides honoured;
 *  - a full disk (/dev/full) or a closed pipe on stdout: a message and
 *    status 1 from every command that prints. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "testutil.h"

extern char **environ;

#define TINY "tests/data/tiny_llada_f32.gguf"
#define BUNDLED "models/smdiff-gutenberg-18m-sm.gguf"

static char dir[256];

/* ---------------------------------------------------------- the runner */

enum { OUT_PIPE, OUT_FULL, OUT_CLOSED, OUT_TTY };

typedef struct run_opts {
    const char *in;       /* standard input's text; NULL: /dev/null */
    int out;              /* OUT_*: where standard output goes */
    int err_tty;          /* standard error to a pseudo-terminal */
    const char *env[4];   /* "NAME=value" added (NO_COLOR is removed unless given here) */
} run_opts;

typedef struct run_result {
    int status; /* exit status, or 128 + signal */
    char out[1 << 16], err[1 << 16];
} run_result;

static run_result R; /* the last run's */

/* The environment without NO_COLOR, plus o->env. */
static char **child_env(const run_opts *o) {
    size_t n = 0;
    while (environ[n]) n++;
    char **env = calloc(n + 5, sizeof *env);
    assert_non_null(env);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], "NO_COLOR=", 9)) env[k++] = environ[i];
    for (size_t i = 0; i < 4 && o->env[i]; i++) env[k++] = (char *)o->env[i];
    return env;
}

/* A pseudo-terminal: *master to read, *slave for the child. */
static void open_pty(int *master, int *slave) {
    *master = posix_openpt(O_RDWR | O_NOCTTY);
    assert_true(*master >= 0);
    assert_int_equal(grantpt(*master), 0);
    assert_int_equal(unlockpt(*master), 0);
    *slave = open(ptsname(*master), O_RDWR | O_NOCTTY);
    assert_true(*slave >= 0);
}

/* Read fds[0..2) (-1 = none) until both end; into bufs of cap bytes. */
static void drain(int fds[2], char *bufs[2], size_t cap) {
    size_t len[2] = {0, 0};
    for (;;) {
        struct pollfd p[2];
        int n = 0, which[2];
        for (int i = 0; i < 2; i++)
            if (fds[i] >= 0) p[n] = (struct pollfd){fds[i], POLLIN, 0}, which[n++] = i;
        if (!n) break;
        assert_true(poll(p, (nfds_t)n, 60000) > 0);
        for (int j = 0; j < n; j++) {
            if (!p[j].revents) continue;
            int i = which[j];
            char tmp[4096];
            ssize_t got = read(fds[i], tmp, sizeof tmp);
            if (got <= 0) { /* EOF, or EIO on a pty whose other end closed */
                close(fds[i]);
                fds[i] = -1;
                continue;
            }
            size_t keep = len[i] + (size_t)got < cap - 1 ? (size_t)got : cap - 1 - len[i];
            memcpy(bufs[i] + len[i], tmp, keep);
            len[i] += keep;
        }
    }
    bufs[0][len[0]] = bufs[1][len[1]] = '\0';
}

/* Run the CLI with args (NULL-terminated, without the program); R holds
 * the status and what it printed. */
static int run(const char *const *args, const run_opts *o) {
    const char *cli = test_cli_path();
    assert_non_null(cli);
    const char *argv[64];
    size_t n = 0;
    argv[n++] = cli;
    while (*args) argv[n++] = *args++;
    argv[n] = NULL;
    int in[2], out[2] = {-1, -1}, err[2];
    assert_int_equal(pipe(in), 0);
    if (o->out == OUT_FULL) {
        out[1] = open("/dev/full", O_WRONLY);
        assert_true(out[1] >= 0);
    } else if (o->out == OUT_TTY) {
        open_pty(&out[0], &out[1]);
    } else {
        assert_int_equal(pipe(out), 0);
        if (o->out == OUT_CLOSED) close(out[0]), out[0] = -1; /* no reader: EPIPE */
    }
    if (o->err_tty) open_pty(&err[0], &err[1]);
    else assert_int_equal(pipe(err), 0);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_adddup2(&fa, err[1], 2);
    int fds[] = {in[0], in[1], out[0], out[1], err[0], err[1]};
    for (size_t i = 0; i < 6; i++)
        if (fds[i] > 2) posix_spawn_file_actions_addclose(&fa, fds[i]);
    char **env = child_env(o);
    pid_t pid;
    assert_int_equal(posix_spawn(&pid, cli, &fa, NULL, (char *const *)argv, env), 0);
    posix_spawn_file_actions_destroy(&fa);
    free(env);
    close(in[0]), close(out[1]), close(err[1]);
    if (o->in) assert_int_equal(write(in[1], o->in, strlen(o->in)), (ssize_t)strlen(o->in));
    close(in[1]);
    int rd[2] = {out[0], err[0]};
    char *bufs[2] = {R.out, R.err};
    drain(rd, bufs, sizeof R.out);
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    R.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    return R.status;
}

static const run_opts PLAIN = {NULL, OUT_PIPE, 0, {NULL}};

/* "eval elbo" -> {"eval", "elbo", extra..., NULL} into argv. */
static void command_argv(const char *name, const char *const *extra, const char **argv, char *buf, size_t cap) {
    snprintf(buf, cap, "%s", name);
    size_t n = 0;
    for (char *w = strtok(buf, " "); w; w = strtok(NULL, " ")) argv[n++] = w;
    while (extra && *extra) argv[n++] = *extra++;
    argv[n] = NULL;
}

#define SKIP_WITHOUT_CLI() \
    if (!test_cli_path()) SKIP_BECAUSE("the smdiff CLI is not built (set BUILD to its folder)")

/* -------------------------------------------------------- help's flags */

typedef struct flag_set {
    char v[256][48];
    size_t n;
} flag_set;

static int has_flag(const flag_set *f, const char *flag) {
    for (size_t i = 0; i < f->n; i++)
        if (!strcmp(f->v[i], flag)) return 1;
    return 0;
}

/* The flags written in s[0..len): "--name" or "-x" at the start or after
 * a blank, '[', '(', '|' or ','. */
static void scan_flags(const char *s, size_t len, flag_set *f) {
    for (size_t i = 0; i < len; i++) {
        if (s[i] != '-' || (i && !strchr(" [(|,`", s[i - 1]))) continue;
        size_t j = i + 1, is_long = j < len && s[j] == '-';
        j += is_long;
        if (j >= len || !((s[j] >= 'a' && s[j] <= 'z') || (s[j] >= 'A' && s[j] <= 'Z'))) continue;
        size_t k = j + 1;
        while (is_long && k < len && ((s[k] >= 'a' && s[k] <= 'z') || (s[k] >= '0' && s[k] <= '9') || s[k] == '-'))
            k++;
        if (!is_long && k < len && (s[k] == '-' || (s[k] >= '0' && s[k] <= '9') || (s[k] >= 'a' && s[k] <= 'z')))
            continue; /* a word such as -foo, not a short option */
        if (f->n < 256 && k - i < 48) {
            char flag[48];
            snprintf(flag, sizeof flag, "%.*s", (int)(k - i), s + i);
            if (!has_flag(f, flag)) snprintf(f->v[f->n++], sizeof f->v[0], "%s", flag);
        }
        i = k;
    }
}

/* The flags a --help text shows: everywhere in its synopsis (a line
 * starting "usage:" and its continuation lines, up to a blank line), and
 * in the option column of lines whose first non-blank is '-' (up to the
 * first run of two spaces). Prose elsewhere may name other commands'
 * flags and is not counted. */
static void help_flags(const char *help, flag_set *f) {
    f->n = 0;
    int synopsis = 0;
    for (const char *line = help; *line;) {
        size_t len = strcspn(line, "\n");
        const char *t = line + strspn(line, " ");
        if (!strncmp(line, "usage:", 6)) synopsis = 1;
        else if (len == 0) synopsis = 0;
        if (synopsis) {
            scan_flags(line, len, f);
        } else if (*t == '-') {
            const char *gap = strstr(t, "  ");
            size_t n = gap && gap < line + len ? (size_t)(gap - t) : (size_t)(line + len - t);
            scan_flags(t, n, f);
        }
        line += len + (line[len] == '\n');
    }
}

/* The --help text of a command (spec name), and its flags. */
static void help_of(const char *name, flag_set *f) {
    const char *argv[16], *extra[] = {"--help", NULL};
    char buf[64];
    command_argv(name, extra, argv, buf, sizeof buf);
    assert_int_equal(run(argv, &PLAIN), 0);
    assert_true(strlen(R.out) > 40);
    help_flags(R.out, f);
}

static const struct option *find_long(const cli_spec *s, const char *name) {
    for (const struct option *o = s->longopts; o->name; o++)
        if (!strcmp(o->name, name)) return o;
    return NULL;
}

/* ---------------------------------------------------------------- tests */

/* Every long option of the table is in --help, every short one too; every
 * flag --help shows is in the table and the binary accepts it. */
static void test_help_lists_every_option(void **state) {
    (void)state;
    SKIP_WITHOUT_CLI();
    static flag_set f;
    size_t checked = 0, commands = 0;
    for (const cli_spec *const *sp = cli_specs; *sp; sp++, commands++) {
        const cli_spec *s = *sp;
        help_of(s->name, &f);
        for (const struct option *o = s->longopts; o->name; o++) {
            char flag[48];
            snprintf(flag, sizeof flag, "--%s", o->name);
            if (!has_flag(&f, flag)) fail_msg("smdiff %s --help does not show %s", s->name, flag);
        }
        for (const char *c = s->shortopts; *c; c++) {
            if (*c == ':') continue;
            char flag[3] = {'-', *c, 0};
            if (!has_flag(&f, flag)) fail_msg("smdiff %s --help does not show %s", s->name, flag);
        }
        for (size_t i = 0; i < f.n; i++) {
            const char *flag = f.v[i];
            const struct option *o = flag[1] == '-' ? find_long(s, flag + 2) : NULL;
            const char *sc = flag[1] != '-' ? strchr(s->shortopts, flag[1]) : NULL;
            if (!o && !sc) fail_msg("smdiff %s --help shows %s, which its table lacks", s->name, flag);
            if (!strcmp(flag, "--help") || !strcmp(flag, "-h")) continue;
            /* the binary: an option that takes a value asks for one; one
             * that takes none lets parsing go on to the next argument */
            int takes_value = o ? o->has_arg == required_argument : sc[1] == ':';
            const char *extra[] = {flag, takes_value ? NULL : "--zz-not-an-option", NULL};
            const char *argv[16];
            char buf[64];
            command_argv(s->name, extra, argv, buf, sizeof buf);
            assert_int_equal(run(argv, &PLAIN), 2);
            if (takes_value ? !strstr(R.err, "needs a value") : !strstr(R.err, "unknown option '--zz-not-an-option'"))
                fail_msg("smdiff %s %s: %s", s->name, flag, R.err);
            checked++;
        }
    }
    printf("  %zu flags of %zu commands: in their tables, their --help and accepted\n", checked, commands);
}

/* README.md's table of commands: every flag of a row is in that command's
 * --help, and every command has a row. */
static void test_readme_table_matches_help(void **state) {
    (void)state;
    SKIP_WITHOUT_CLI();
    char *readme = test_read_file("README.md", NULL);
    assert_non_null(readme);
    const char *table = strstr(readme, "## The command-line tool");
    assert_non_null(table);
    static flag_set help, row;
    int rows = 0, seen[32] = {0};
    for (const char *line = table; (line = strstr(line, "\n| `smdiff ")); line++) {
        const char *code = line + 4, *end = strchr(code, '`');
        assert_non_null(end);
        /* the longest command name the row starts with */
        const cli_spec *best = NULL;
        for (const cli_spec *const *sp = cli_specs; *sp; sp++) {
            size_t n = strlen((*sp)->name);
            if (!strncmp(code + 7, (*sp)->name, n) && strchr(" `", code[7 + n]) &&
                (!best || n > strlen(best->name)))
                best = *sp;
        }
        if (!best) fail_msg("README row of no command: %.60s", code);
        for (size_t i = 0; i < cli_n_commands; i++) {
            size_t n = strlen(cli_commands[i].name);
            if (!strncmp(best->name, cli_commands[i].name, n) && strchr(" ", best->name[n])) seen[i] = 1;
        }
        help_of(best->name, &help);
        row.n = 0;
        scan_flags(code, (size_t)(end - code), &row);
        for (size_t i = 0; i < row.n; i++)
            if (!has_flag(&help, row.v[i]))
                fail_msg("README shows `smdiff %s ... %s`, which its --help does not list", best->name, row.v[i]);
        rows++;
    }
    for (size_t i = 0; i < cli_n_commands; i++)
        if (!seen[i]) fail_msg("README's table has no row for smdiff %s", cli_commands[i].name);
    printf("  %d README rows agree with --help\n", rows);
    free(readme);
}

/* The command line of one strict-number check. */
typedef struct number_case {
    const char *command, *opt, *text, *why;
} number_case;

static void expect_refused(const number_case *c, int equals_form) {
    const char *argv[16];
    char buf[64], joined[128];
    const char *extra[4] = {c->opt, c->text, NULL, NULL};
    if (equals_form) {
        snprintf(joined, sizeof joined, "%s=%s", c->opt, c->text);
        extra[0] = joined, extra[1] = NULL;
    }
    command_argv(c->command, extra, argv, buf, sizeof buf);
    int st = run(argv, &PLAIN);
    if (st != 2 || !strstr(R.err, c->why))
        fail_msg("smdiff %s %s%s%s: status %d, want 2 and \"%s\"; said: %s", c->command, c->opt,
                 equals_form ? "=" : " ", c->text, st, c->why, R.err);
}

/* Each command's numbers: the same refusals, in the same order, before any
 * file is opened; the bounds are the library's. */
static void test_numbers_are_strict(void **state) {
    (void)state;
    SKIP_WITHOUT_CLI();
    static const number_case counts[] = {
        {"generate", "--steps", NULL, NULL},          {"generate", "-n", NULL, NULL},
        {"generate", "--gen-len", NULL, NULL},        {"generate", "-c", NULL, NULL},
        {"eval gate", "--seq", NULL, NULL},           {"tokenizer train", "--vocab-size", NULL, NULL},
        {"train", "--batch", NULL, NULL},             {"train", "--mask-id", NULL, NULL},
        {"train", "--steps", NULL, NULL},             {"eval elbo", "--draws", NULL, NULL},
        {"eval elbo", "-s", NULL, NULL},              {"eval samples", "--len", NULL, NULL},
        {"eval samples", "--budgets", NULL, NULL},    {"eval gate", "--windows", NULL, NULL},
        {"eval gate", "-t", NULL, NULL},              {"eval gonogo", "--draws", NULL, NULL},
        {"eval gonogo", "--k", NULL, NULL},           {"eval infill", "--limit", NULL, NULL},
        {"eval samples", "--prompt-id", NULL, NULL},  {"train", "--sm-k", NULL, NULL},
        {"serve", "--port", NULL, NULL},              {"serve", "--slots", NULL, NULL},
        {"serve", "--queue", NULL, NULL},             {"serve", "-t", NULL, NULL},
    };
    static const struct {
        const char *text, *why;
    } bad_counts[] = {
        {"abc", "'abc' is not a number"},         {"12x", "'12x' is not a number"},
        {"", "'' is not a number"},               {" 5", "' 5' is not a number"},
        {"0x10", "'0x10' is not an integer"},     {"1.5", "'1.5' is not an integer"},
        {"99999999999999999999999", "is too large a number"},
        {"-3", "'-3' is negative"},
    };
    size_t n = 0;
    for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++)
        for (size_t j = 0; j < sizeof bad_counts / sizeof bad_counts[0]; j++)
            for (int eq = 0; eq < 2; eq++, n++) {
                number_case c = counts[i];
                c.text = bad_counts[j].text, c.why = bad_counts[j].why;
                if (c.opt[1] != '-' && eq) continue; /* -n=5 is not a form */
                expect_refused(&c, eq);
            }
    /* reals */
    static const number_case reals[] = {
        {"generate", "--temp", "abc", "'abc' is not a number"}, {"generate", "--temp", "nan", "is not a number"},
        {"generate", "--temp", "inf", "is not a number"},       {"generate", "--temp", "1e999", "too large"},
        {"generate", "--top-p", "0.5.", "is not a number"},     {"train", "--lr", "", "is not a number"},
        {"eval gate", "--t", "0.5,x", "'x' is not a number"},    {"eval gate", "--t", "0.5,,1", "'' is not"},
        {"eval samples", "--seeds", "1,-2", "'-2' is negative"}, {"eval samples", "--budgets", "4,a", "'a' is not"},
        {"generate", "--ids", "1 2 x", "'x' is not a number"},  {"train", "--sm-init", "1,2", "SCALE,STEEPNESS"},
        {"eval gonogo", "--omega", "0.5,6.66,x", "'x' is not a number"},
        {"eval infill", "--steps-frac", "0.5,x", "'x' is not a number"},
        {"eval infill", "--steps-frac", "0.5,2", "2 is out of range [0, 1]"},
        {"serve", "--timeout", "5s", "'5s' is not a number"},   {"serve", "--grace", "-1", "-1 is out of range [0, 3600]"},
        {"serve", "--port", "65536", "65536 is out of range [0, 65535]"},
    };
    for (size_t i = 0; i < sizeof reals / sizeof reals[0]; i++, n++) expect_refused(&reals[i], 0);
    /* out of range: real numbers outside the library's bounds */
    double lo, hi;
    char want[128];
    assert_int_equal(smdiff_sampler_option_info(SMDIFF_SAMPLER_STEPS, NULL, NULL, &lo, &hi, NULL), SMDIFF_OK);
    snprintf(want, sizeof want, "%lld is out of range [%lld, %lld]", (long long)hi + 1, (long long)lo,
             (long long)hi);
    char text[32];
    snprintf(text, sizeof text, "%lld", (long long)hi + 1);
    number_case c = {"generate", "--steps", text, want};
    expect_refused(&c, 1), n++;
    assert_int_equal(smdiff_trainer_option_info(SMDIFF_TRAIN_BATCH, NULL, NULL, &lo, &hi, NULL), SMDIFF_OK);
    snprintf(want, sizeof want, "0 is out of range [%lld, %lld]", (long long)lo, (long long)hi);
    c = (number_case){"train", "--batch", "0", want};
    expect_refused(&c, 0), n++;
    assert_int_equal(smdiff_model_option_info(SMDIFF_MODEL_THREADS, NULL, NULL, &lo, &hi, NULL), SMDIFF_OK);
    snprintf(want, sizeof want, "5000 is out of range [%lld, %lld]", (long long)lo, (long long)hi);
    c = (number_case){"eval elbo", "--threads", "5000", want};
    expect_refused(&c, 1), n++;
    assert_int_equal(smdiff_sampler_option_info(SMDIFF_SAMPLER_TEMPERATURE, NULL, NULL, &lo, &hi, NULL), SMDIFF_OK);
    snprintf(want, sizeof want, "101 is out of range [%g, %g]", lo, hi);
    c = (number_case){"generate", "--temp", "101", want};
    expect_refused(&c, 0), n++;
    c = (number_case){"eval gate", "--t", "0.5,2", "2 is out of range [0, 1]"};
    expect_refused(&c, 0), n++;
    /* a value the library refuses when it is set (an open bound) */
    const char *argv[] = {"generate", "-m", TINY, "--ids", "1", "--top-p", "0", NULL};
    assert_int_equal(run(argv, &PLAIN), 2);
    assert_non_null(strstr(R.err, "--top-p"));
    printf("  %zu malformed or out-of-range numbers refused with status 2\n", n + 1);
}

/* llama.cpp's short aliases mean what the long options mean. */
static void test_aliases(void **state) {
    (void)state;
    SKIP_WITHOUT_CLI();
    static char want[sizeof R.out];
    const char *longs[] = {"generate", "--model", TINY, "--ids", "1 2 3", "--gen-len", "6", "--steps", "6",
                           "--temp", "0.8", "--seed", "5", "--threads", "1", "--no-eos-stop", "--quiet", NULL};
    assert_int_equal(run(longs, &PLAIN), 0);
    snprintf(want, sizeof want, "%s", R.out);
    int ids = 0;
    for (char *t = want; *t; t++) ids += (*t >= '0' && *t <= '9') && (t == want || t[-1] == ' ');
    assert_int_equal(ids, 6); /* --gen-len 6, no early stop */
    const char *shorts[] = {"generate", "-m", TINY, "--ids", "1 2 3", "-n", "6", "--steps", "6", "--temp", "0.8",
                            "-s", "5", "-t", "1", "--no-eos-stop", "-q", NULL};
    assert_int_equal(run(shorts, &PLAIN), 0);
    assert_string_equal(R.out, want);
    const char *equals[] = {"generate", "--model=" TINY, "--ids=1 2 3", "--gen-len=6", "--steps=6", "--temp=0.8",
                            "--seed=5", "--threads=1", "--no-eos-stop", "-q", NULL};
    assert_int_equal(run(equals, &PLAIN), 0);
    assert_string_equal(R.out, want);
    const char *other_seed[] = {"generate", "-m", TINY, "--ids", "1 2 3", "-n", "6", "--steps", "6", "--temp",
                                "0.8", "-s", "6", "-t", "1", "--no-eos-stop", "-q", NULL};
    assert_int_equal(run(other_seed, &PLAIN), 0);
    assert_string_not_equal(R.out, want); /* -s is the seed */
    /* -c: a context of 8 does not hold 3 + 6 tokens; the model's 64 does */
    const char *ctx[] = {"generate", "-m", TINY, "--ids", "1 2 3", "-n", "6", "--steps", "6", "-c", "8", "-q", NULL};
    assert_int_equal(run(ctx, &PLAIN), 1);
    assert_non_null(strstr(R.err, "context of 8"));
    ctx[10] = "0"; /* 0: the model's */
    assert_int_equal(run(ctx, &PLAIN), 0);
    /* -m in info and tokenize is the positional argument */
    const char *info_pos[] = {"info", TINY, NULL}, *info_m[] = {"info", "-m", TINY, NULL};
    assert_int_equal(run(info_pos, &PLAIN), 0);
    snprintf(want, sizeof want, "%s", R.out);
    assert_int_equal(run(info_m, &PLAIN), 0);
    assert_string_equal(R.out, want);
    /* tokenize -p TEXT, -f FILE and standard input: the same text, the same
     * ids (a file's and standard input's final newline is text too) */
    char file[300];
    snprintf(file, sizeof file, "%s/prompt.txt", dir);
    FILE *f = fopen(file, "w");
    assert_non_null(f);
    fputs("It was a dark night\n", f);
    fclose(f);
    const char *tp[] = {"tokenize", "tests/data/tokenizers/gpt2", "-p", "It was a dark night", "--ids", NULL};
    const char *tf[] = {"tokenize", "-m", "tests/data/tokenizers/gpt2", "-f", file, "--ids", NULL};
    const char *tin[] = {"tokenize", "tests/data/tokenizers/gpt2", "--ids", NULL};
    assert_int_equal(run(tp, &PLAIN), 0);
    snprintf(want, sizeof want, "%s", R.out);
    assert_true(strlen(want) > 5);
    run_opts with_stdin = PLAIN;
    with_stdin.in = "It was a dark night\n";
    assert_int_equal(run(tin, &with_stdin), 0);
    assert_int_equal(strncmp(R.out, want, strlen(want) - 1), 0); /* the same ids and the newline's */
    assert_true(strlen(R.out) > strlen(want));
    snprintf(want, sizeof want, "%s", R.out);
    assert_int_equal(run(tf, &PLAIN), 0);
    assert_string_equal(R.out, want);
    if (access(BUNDLED, R_OK) != 0) {
        printf("  (the bundled model is not in models/: generate -p/-f not compared)\n");
        return;
    }
    /* generate -f drops the file's final newline, as llama.cpp's -f does */
    const char *gp[] = {"generate", "-m", BUNDLED, "-p", "It was a dark night", "-n", "4", "--steps", "4", "-q", NULL};
    const char *gf[] = {"generate", "--model", BUNDLED, "-f", file, "-n", "4", "--steps", "4", "-q", NULL};
    assert_int_equal(run(gp, &PLAIN), 0);
    snprintf(want, sizeof want, "%s", R.out);
    assert_int_equal(run(gf, &PLAIN), 0);
    assert_string_equal(R.out, want);
    printf("  -m -p -f -n -s -t -c and --opt=value agree with the long forms\n");
}

/* 0 done, 1 failed while running, 2 wrong command line, for every command. */
static void test_exit_statuses(void **state) {
    (void)state;
    SKIP_WITHOUT_CLI();
    for (const cli_spec *const *sp = cli_specs; *sp; sp++) {
        const char *argv[16], *bogus[] = {"--zz-bogus", NULL};
        char buf[64];
        command_argv((*sp)->name, bogus, argv, buf, sizeof buf);
        assert_int_equal(run(argv, &PLAIN), 2);
        assert_non_null(strstr(R.err, "unknown option '--zz-bogus'"));
    }
    static const char *const usage_errors[][8] = {
        {"bogus-command", NULL}, {"eval", NULL}, {"eval", "frobnicate", NULL}, {"tokenizer", NULL},
        {"info", NULL}, {"info", "a", "b", NULL}, {"version", "extra", NULL}, {"convert", "only-one", NULL},
        {"generate", "-m", TINY, NULL}, {"generate", "-m", TINY, "-p", "x", "--ids", "1", NULL},
        {"train", "--tokens", "x.i32", NULL}, {"generate", "-m", TINY, "--ids", "1", "--softmask", "on", NULL},
        {"tokenize", NULL}, {"serve", "stray", NULL}, {NULL},
    };
    for (size_t i = 0; usage_errors[i][0]; i++)
        if (run(usage_errors[i], &PLAIN) != 2) fail_msg("smdiff %s ...: status %d, want 2", usage_errors[i][0], R.status);
    /* what getopt_long refused, said precisely */
    static const struct {
        const char *arg, *why;
    } refused[] = {
        {"--quiet=1", "--quiet takes no value"}, {"-qx", "unknown option '-x'"},
        {"--st", "'--st' is ambiguous: --steps --strategy"}, {"--zz=3", "unknown option '--zz'"},
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        const char *argv[] = {"generate", "-m", TINY, "--ids", "1", "--chat", refused[i].arg, NULL};
        assert_int_equal(run(argv, &PLAIN), 2);
        if (!strstr(R.err, refused[i].why)) fail_msg("%s: %s", refused[i].arg, R.err);
    }
    static const char *const failures[][12] = {
        {"info", "no/such.gguf", NULL},
        {"generate", "-m", "no/such.gguf", "--ids", "1", NULL},
        {"generate", "-m", TINY, "-f", "no/such.txt", NULL},
        {"tokenize", "no/such", NULL},
        {"convert", "no/such", "out.gguf", NULL},
        {"train", "--tokens", "no/such.i32", "--out", "x.gguf", "--arch", "llada", NULL},
        {"eval", "elbo", "-m", TINY, "--tokens", "no/such.i32", NULL},
        {"eval", "gate", "-m", TINY, "--tokens", "no/such.i32", NULL},
        {"serve", "-m", "no/such.gguf", "--port", "0", NULL},
        {"tokenizer", "corpus", "-t", "no/such", "-o", "x.i32", "y", NULL},
        {"tokenizer", "train", "--vocab-size", "300", "-o", "x.gguf", "no/such", NULL},
        {NULL},
    };
    for (size_t i = 0; failures[i][0]; i++)
        if (run(failures[i], &PLAIN) != 1) fail_msg("smdiff %s ...: status %d, want 1", failures[i][0], R.status);
    for (const cli_spec *const *sp = cli_specs; *sp; sp++) {
        static flag_set f;
        help_of((*sp)->name, &f); /* status 0 */
    }
    const char *help[] = {"--help", NULL};
    assert_int_equal(run(help, &PLAIN), 0);
    assert_non_null(strstr(R.out, "Exit status"));
}

/* A token file of n ids below 128 (the tiny models' vocabulary). */
static void write_tokens(const char *path, size_t n) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    for (size_t i = 0; i < n; i++) {
        int32_t id = (int32_t)(2 + (i * 7919) % 120);
        assert_int_equal(fwrite(&id, 4, 1, f), 1);
    }
    fclose(f);
}

/* Progress: on a terminal by default, never in a pipe, --progress and
 * --no-progress (and -q) as said. */
static void test_progress_only_on_a_terminal(void **state) {
    (void)state;
    SKIP_WITHOUT_CLI();
    run_opts tty = PLAIN;
    tty.err_tty = 1;
    const char *gen[] = {"generate", "-m", TINY, "--ids", "1 2 3", "-n", "8", "--steps", "8", NULL, NULL};
    assert_int_equal(run(gen, &tty), 0);
    assert_non_null(strstr(R.err, "step 8/8"));
    assert_non_null(strstr(R.err, "\r["));
    assert_int_equal(run(gen, &PLAIN), 0);
    assert_null(strstr(R.err, "step "));
    gen[9] = "--progress";
    assert_int_equal(run(gen, &PLAIN), 0);
    assert_non_null(strstr(R.err, "step 1/8"));
    assert_null(strstr(R.err, "\r")); /* lines, not a bar, where nobody redraws */
    gen[9] = "--no-progress";
    assert_int_equal(run(gen, &tty), 0);
    assert_null(strstr(R.err, "step "));
    gen[9] = "-q";
    assert_int_equal(run(gen, &tty), 0);
    assert_null(strstr(R.err, "step "));
    /* eval elbo, train and convert the same way */
    char tok[300], model[300], conv[300];
    snprintf(tok, sizeof tok, "%s/tok.i32", dir);
    snprintf(model, sizeof model, "%s/trained.gguf", dir);
    snprintf(conv, sizeof conv, "%s/conv.gguf", dir);
    write_tokens(tok, 3000);
    const char *elbo[] = {"eval", "elbo", "-m", TINY, "--tokens", tok, "--seq", "16", "--windows", "2", "-t", "1",
                          NULL, NULL};
    const char *train[] = {"train", "--tokens", tok, "--out", model, "--arch", "llada", "--vocab", "128",
                           "--embd", "16", "--layers", "1", "--heads", "2", "--ff", "32", "--mask-id", "127",
                           "--steps", "10", "--batch", "2", "--seq", "16", "--save-every", "10", "-t", "1",
                           NULL, NULL};
    const char *convert[] = {"convert", "tests/data/hf_dream_tiny", conv, NULL, NULL};
    struct {
        const char **argv;
        size_t flag_at;
        const char *shows;
    } cmds[] = {{elbo, 12, "elbo "}, {train, 29, "step 10/10"}, {convert, 3, "converting:"}};
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        const char **argv = cmds[i].argv;
        argv[cmds[i].flag_at] = NULL;
        assert_int_equal(run(argv, &tty), 0);
        if (!strstr(R.err, cmds[i].shows)) fail_msg("smdiff %s on a terminal: no progress: %s", argv[0], R.err);
        assert_int_equal(run(argv, &PLAIN), 0);
        if (strstr(R.err, cmds[i].shows)) fail_msg("smdiff %s in a pipe shows progress: %s", argv[0], R.err);
        argv[cmds[i].flag_at] = "--progress";
        assert_int_equal(run(argv, &PLAIN), 0);
        assert_non_null(strstr(R.err, cmds[i].shows));
        argv[cmds[i].flag_at] = "--no-progress";
        assert_int_equal(run(argv, &tty), 0);
        assert_null(strstr(R.err, cmds[i].shows));
    }
}

/* Colour (--visual's canvas, on stderr): on a terminal only, never with
 * NO_COLOR or --no-color; the canvas still shows, in plain characters. */
static void test_colour_only_on_a_terminal(void **state) {
    (void)state;
    SKIP_WITHOUT_CLI();
    const char *vis[] = {"generate", "-m", TINY, "--ids", "1 2 3", "-n", "8", "--steps", "4", "--visual", NULL, NULL};
    run_opts tty = PLAIN;
    tty.err_tty = 1;
    assert_int_equal(run(vis, &tty), 0);
    assert_non_null(strstr(R.err, "\033[48;5;")); /* the masks' shades */
    assert_non_null(strstr(R.err, "\033[1;32m")); /* this step's tokens */
    run_opts no_color = tty;
    no_color.env[0] = "NO_COLOR=1";
    assert_int_equal(run(vis, &no_color), 0);
    assert_null(strstr(R.err, "\033[48;5;"));
    assert_null(strstr(R.err, "\033[1;"));
    assert_non_null(strstr(R.err, "step 4/4"));
    assert_non_null(strstr(R.err, "["));
    no_color.env[0] = "NO_COLOR="; /* empty: no effect (no-color.org) */
    assert_int_equal(run(vis, &no_color), 0);
    assert_non_null(strstr(R.err, "\033[48;5;"));
    vis[10] = "--no-color";
    assert_int_equal(run(vis, &tty), 0);
    assert_null(strstr(R.err, "\033[48;5;"));
    assert_null(strstr(R.err, "\033[1;"));
    vis[10] = NULL;
    assert_int_equal(run(vis, &PLAIN), 0); /* a pipe: the canvas, no escape at all */
    assert_null(strchr(R.err, '\033'));
    assert_non_null(strstr(R.err, "step 1/4"));
    assert_non_null(strstr(R.err, "_"));
    assert_null(strchr(R.out, '\033')); /* and the text itself never has any */
}

/* R.out without "\033[...m" and "\r" (a pty writes "\r\n"), into dst. */
static void strip_escapes(char *dst, size_t cap, const char *src) {
    size_t n = 0;
    for (const char *p = src; *p && n + 1 < cap; p++) {
        if (*p == '\r') continue;
        if (*p == '\033') {
            p += strcspn(p, "m");
            if (!*p) break;
            continue;
        }
        dst[n++] = *p;
    }
    dst[n] = '\0';
}

/* The text on stdout: the spans an infill wrote are coloured when stdout
 * is a terminal, never otherwise, never with NO_COLOR or --no-color, and
 * the characters are the same either way. */
static void test_colour_of_infilled_text(void **state) {
    (void)state;
    SKIP_WITHOUT_CLI();
    if (access(BUNDLED, R_OK) != 0) SKIP_BECAUSE("the bundled model (a tokenizer for the prompt) is not in models/");
    static char plain[sizeof R.out], shown[sizeof R.out];
    const char *fill[] = {"generate", "-m", BUNDLED, "-p", "It was a {{fill:4}} night, and the {{fill:3}} was",
                          "--steps", "7", "--temp", "0.8", "-s", "3", "-q", NULL, NULL};
    assert_int_equal(run(fill, &PLAIN), 0);
    assert_null(strchr(R.out, '\033'));
    snprintf(plain, sizeof plain, "%s", R.out);
    run_opts tty = PLAIN;
    tty.out = OUT_TTY;
    assert_int_equal(run(fill, &tty), 0);
    assert_non_null(strstr(R.out, "\033[1;32m"));
    strip_escapes(shown, sizeof shown, R.out);
    assert_string_equal(shown, plain);
    run_opts no_color = tty;
    no_color.env[0] = "NO_COLOR=1";
    assert_int_equal(run(fill, &no_color), 0);
    assert_null(strchr(R.out, '\033'));
    fill[12] = "--no-color";
    assert_int_equal(run(fill, &tty), 0);
    assert_null(strchr(R.out, '\033'));
    /* a plain continuation is all generated: nothing to set apart */
    const char *cont[] = {"generate", "-m", BUNDLED, "-p", "It was a dark night", "-n", "4", "--steps", "4", "-q", NULL};
    assert_int_equal(run(cont, &tty), 0);
    assert_null(strchr(R.out, '\033'));
}

/* Standard output to a full disk or a closed pipe: every command that
 * prints says so and exits 1. */
static void test_lost_output_is_an_error(void **state) {
    (void)state;
    SKIP_WITHOUT_CLI();
    if (access("/dev/full", W_OK) != 0) SKIP_BECAUSE("no writable /dev/full on this machine");
    char tok[300];
    snprintf(tok, sizeof tok, "%s/tok2.i32", dir);
    write_tokens(tok, 3000);
    const char *const cmds[][16] = {
        {"version", NULL},
        {"--help", NULL},
        {"info", TINY, NULL},
        {"generate", "-m", TINY, "--ids", "1 2 3", "-n", "4", "--steps", "4", NULL},
        {"tokenize", "tests/data/tokenizers/gpt2", "-p", "hello world", NULL},
        {"tokenize", "tests/data/tokenizers/gpt2", "-p", "hello world", "--ids", NULL},
        {"eval", "elbo", "-m", TINY, "--tokens", tok, "--seq", "16", "--windows", "1", "-t", "1", NULL},
        {"eval", "gate", "-m", TINY, "--tokens", tok, "--seq", "16", "--windows", "1", "-t", "1", NULL},
        {"eval", "gonogo", "-m", TINY, "--tokens", tok, "--seq", "16", "--windows", "2", "--omega", "0.5,6.66,-0.75",
         "-t", "1", NULL},
        {"generate", "--help", NULL},
        {"eval", "samples", "--help", NULL},
        {NULL},
    };
    static const struct {
        int out;
        const char *why;
    } faults[] = {{OUT_FULL, "standard output: No space left on device"}, {OUT_CLOSED, "standard output: Broken pipe"}};
    int n = 0;
    for (size_t i = 0; cmds[i][0]; i++) {
        assert_int_equal(run(cmds[i], &PLAIN), 0); /* fine with a reader */
        for (size_t k = 0; k < 2; k++, n++) {
            run_opts o = PLAIN;
            o.out = faults[k].out;
            int st = run(cmds[i], &o);
            if (st != 1 || !strstr(R.err, faults[k].why))
                fail_msg("smdiff %s %s with stdout %s: status %d; said: %s", cmds[i][0], cmds[i][1] ? cmds[i][1] : "",
                         k ? "a closed pipe" : "/dev/full", st, R.err);
        }
    }
    printf("  %d lost outputs reported with status 1\n", n);
}

static int setup(void **state) {
    (void)state;
    snprintf(dir, sizeof dir, "%s/smdiff-test-cli-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_help_lists_every_option),   cmocka_unit_test(test_readme_table_matches_help),
        cmocka_unit_test(test_numbers_are_strict),        cmocka_unit_test(test_aliases),
        cmocka_unit_test(test_exit_statuses),             cmocka_unit_test(test_progress_only_on_a_terminal),
        cmocka_unit_test(test_colour_only_on_a_terminal), cmocka_unit_test(test_colour_of_infilled_text),
        cmocka_unit_test(test_lost_output_is_an_error),
    };
    return cmocka_run_group_tests_name("cli", tests, setup, teardown);
}
