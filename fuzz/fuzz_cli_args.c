/* fuzz_cli_args.c -- libFuzzer target: the smdiff command line's parser
 * (examples/cli/args.c), every command's getopt table.
 *
 * The first byte of an input picks a command's spec (cli_specs), the rest,
 * cut at NUL bytes, is its arguments (at most 30). The parse runs as the
 * command would run it (cli_begin, cli_next until the end or a stop), and
 * every option value and positional argument also goes through each strict
 * number parser -- cli_int, cli_count, cli_real, cli_count_list,
 * cli_real_list -- with bounds taken from the input. It traps when a value
 * is accepted that is not wholly a number in its bounds (strtoll / strtod
 * read the whole text, the value is finite and inside [min, max], a count
 * is not negative), when a stop has a status other than 0 or 2, or when a
 * positional argument or option value is not one of the arguments given.
 * The commands themselves are not run (they read and write files).
 * Build and run: make fuzz (docs/FUZZING.md); stdout and stderr are closed
 * by -close_fd_mask=3 (usage messages), sanitizer reports still reach
 * libFuzzer's output. */
#include <getopt.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t n_specs(void) {
    size_t n = 0;
    while (cli_specs[n]) n++;
    return n;
}

/* Whether an accepted integer is wholly what strtoll reads, in bounds. */
static void check_int(const char *text, int64_t v, int64_t min, int64_t max, int count) {
    char *end;
    long long w = strtoll(text, &end, 10);
    if (!*text || *end || w != v || v < min || v > max || (count && v < 0)) __builtin_trap();
}

static void check_real(const char *text, double v, double min, double max) {
    char *end;
    double w = strtod(text, &end);
    if (!*text || *end || w != v || !isfinite(v) || v < min || v > max) __builtin_trap();
}

/* Every number parser on text, with bounds from seed. */
static void numbers(const char *text, uint8_t seed) {
    static const int64_t ibounds[][2] = {{0, INT32_MAX}, {1, 100}, {-5, 5}, {INT64_MIN, INT64_MAX}};
    static const double rbounds[][2] = {{0, 1}, {-1e300, 1e300}, {1e-6, 100}, {-1, 0}};
    const int64_t *ib = ibounds[seed % 4];
    const double *rb = rbounds[(seed >> 2) % 4];
    int64_t v = 0;
    if (cli_int("--fuzz", text, ib[0], ib[1], &v) == 0) check_int(text, v, ib[0], ib[1], 0);
    if (cli_count("--fuzz", text, ib[0], ib[1], &v) == 0) check_int(text, v, ib[0], ib[1], 1);
    double d = 0;
    if (cli_real("--fuzz", text, rb[0], rb[1], &d) == 0) check_real(text, d, rb[0], rb[1]);
    int64_t il[8];
    double rl[8];
    size_t n = 99;
    if (cli_count_list("--fuzz", text, ib[0], ib[1], il, 8, &n) == 0) {
        if (n > 8) __builtin_trap();
        for (size_t i = 0; i < n; i++)
            if (il[i] < ib[0] || il[i] > ib[1] || il[i] < 0) __builtin_trap();
    }
    n = 99;
    if (cli_real_list("--fuzz", text, rb[0], rb[1], rl, 8, &n) == 0) {
        if (n > 8) __builtin_trap();
        for (size_t i = 0; i < n; i++)
            if (!isfinite(rl[i]) || rl[i] < rb[0] || rl[i] > rb[1]) __builtin_trap();
    }
}

/* Whether p points into one of the argument strings copy[0..size). */
static int inside(const char *p, const char *copy, size_t size) { return p >= copy && p < copy + size; }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1 || size > 4096) return 0;
    const cli_spec *spec = cli_specs[data[0] % n_specs()];
    char *copy = malloc(size); /* the arguments, each NUL-terminated */
    if (!copy) return 0;
    memcpy(copy, data + 1, size - 1);
    copy[size - 1] = '\0';
    char *argv[32];
    int argc = 0;
    argv[argc++] = (char *)spec->name;
    for (size_t i = 0; i < size - 1 && argc < 31; i += strlen(copy + i) + 1) argv[argc++] = copy + i;
    argv[argc] = NULL;
    cli_args a;
    cli_begin(&a, spec);
    int c;
    uint8_t seed = size > 1 ? data[1] : 0;
    while ((c = cli_next(&a, argc, argv)) > 0) {
        if (!optarg) continue; /* a flag */
        if (!inside(optarg, copy, size)) __builtin_trap();
        numbers(optarg, seed++);
    }
    if (c == CLI_STOP && a.status != 0 && a.status != CLI_EXIT_USAGE) __builtin_trap();
    free(copy);
    return 0;
}
