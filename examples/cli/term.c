/* term.c -- what goes to a terminal only (progress, colour) and the check
 * that standard output really received what a command printed (args.h,
 * docs/CLI.md). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

int cli_progress(const cli_args *a) {
    if (a->progress >= 0) return a->progress;
    return isatty(STDERR_FILENO);
}

static double monotonic_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

void cli_byte_progress_start(cli_byte_progress *p) {
    p->start = monotonic_s();
    p->shown = 0;
    p->tty = isatty(STDERR_FILENO);
}

double cli_byte_progress_elapsed(const cli_byte_progress *p) { return monotonic_s() - p->start; }

void cli_byte_progress_end(const cli_byte_progress *p) {
    if (p->shown && p->tty) fputc('\n', stderr);
}

int cli_color(const cli_args *a, FILE *stream) {
    const char *no_color = getenv("NO_COLOR");
    if (a->no_color || (no_color && *no_color)) return 0;
    return isatty(fileno(stream));
}

int cli_check_stdout(void) {
    static int reported;
    errno = 0;
    int flushed = fflush(stdout) == 0;
    if (flushed && !ferror(stdout)) return 0;
    /* fflush sets errno when it fails; an earlier failed write only leaves
     * the stream's error flag */
    int e = flushed ? 0 : errno;
    if (!reported)
        fprintf(stderr, "%s: standard output: %s\n", cli_prog(), e ? strerror(e) : "a write failed");
    reported = 1;
    return CLI_EXIT_FAIL;
}
