/* main.c -- dispatch `smdiff COMMAND ...` to its cmd_* function
 * (commands.c), then make sure standard output received everything. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

static void usage(FILE *f) {
    fprintf(f, "usage: smdiff COMMAND [ARGS...]\n\ncommands:\n");
    for (size_t i = 0; i < cli_n_commands; i++) fprintf(f, "  %-10s %s\n", cli_commands[i].name, cli_commands[i].summary);
    fprintf(f, "\n`smdiff COMMAND --help` describes a command. Exit status: 0 done, 1 failed while\n"
               "running, 2 wrong command line (docs/CLI.md).\n");
}

static int run(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return CLI_EXIT_USAGE;
    }
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return CLI_EXIT_OK;
    }
    if (!strcmp(argv[1], "--version")) return cmd_version(1, argv + 1);
    for (size_t i = 0; i < cli_n_commands; i++)
        if (!strcmp(argv[1], cli_commands[i].name)) return cli_commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "smdiff: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return CLI_EXIT_USAGE;
}

/* Before any shared library's constructor (blas_start.c says why). */
__attribute__((section(".preinit_array"), used)) static void (*const blas_preinit)(int, char **,
                                                                                    char **) = cli_blas_preinit;

int main(int argc, char **argv) {
    cli_blas_start(argv);
    /* A closed pipe is an error to report (EPIPE), not a silent death. */
    signal(SIGPIPE, SIG_IGN);
    int status = run(argc, argv);
    int out = cli_check_stdout();
    return status ? status : out;
}
