/* cli.h -- the smdiff command-line tool: one file per subcommand. To add a
 * command, write cmd_NAME.c with `int cmd_NAME(int argc, char **argv)` and
 * add a line to the table in main.c. */
#ifndef SMDIFF_CLI_H
#define SMDIFF_CLI_H

#include <stdint.h>

#include <smdiff/smdiff.h>

/* Print "smdiff: what: message (SMDIFF_E_X)" to stderr; returns 1. */
int cli_fail(const char *what, int32_t status, const char *detail);

int cmd_version(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_convert(int argc, char **argv);
int cmd_train(int argc, char **argv);

#endif
