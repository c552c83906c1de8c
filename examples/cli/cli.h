/* cli.h -- the smdiff command-line tool: one file per subcommand. To add a
 * command, write cmd_NAME.c with `int cmd_NAME(int argc, char **argv)` that
 * parses its arguments with a cli_spec (args.h), and add a line to each
 * table in commands.c. Conventions (docs/CLI.md): exit 0 when done, 1 for a
 * failure while running, 2 for a wrong command line; progress on stderr
 * only when it is a terminal, colour only where it lands on a terminal. */
#ifndef SMDIFF_CLI_H
#define SMDIFF_CLI_H

#include <stdint.h>
#include <stdio.h>

/* The CLI uses the experimental section too (training, evaluation,
 * conversion): opt in before the first smdiff header. It includes only the
 * public headers. */
#ifndef SMDIFF_EXPERIMENTAL
#define SMDIFF_EXPERIMENTAL
#endif
#include <smdiff/smdiff.h>
#include <smdiff/smdiff_decoder.h>

#include "args.h"

/* Print "smdiff NAME: what: message (SMDIFF_E_X)" to stderr; returns
 * CLI_EXIT_FAIL. */
int cli_fail(const char *what, int32_t status, const char *detail);

/* Path of the bundled default model, or NULL if none is found. Looked for,
 * in order: $SMDIFF_MODEL; models/DEFAULT in the current folder; next to
 * the executable (../../models/ from build/VARIANT/, ../share/smdiff/ from
 * an installed bin/). */
#define CLI_DEFAULT_MODEL "smdiff-gutenberg-18m-sm.gguf"
const char *cli_default_model(void);

/* Files the CLI opens itself (files.c, docs/RELIABILITY.md). cli_fopen
 * opens path with an fopen mode ("r", "rb", "w", "a"): an input that is
 * not a regular file is refused at once (never waited on), an output path
 * that exists and is not a regular file is refused; NULL after saying why
 * ("smdiff: WHAT 'PATH': ..."). cli_fclose closes an output: 0, or
 * CLI_EXIT_FAIL after saying that a write failed. cli_write_file replaces
 * path whole, atomically (smdiff_write_file): 0 or CLI_EXIT_FAIL. */
FILE *cli_fopen(const char *path, const char *mode, const char *what);
int cli_fclose(FILE *f, const char *path, const char *what);
int cli_write_file(const char *path, const char *what, const void *data, size_t n);

/* Read a token file (little-endian int32 ids); NULL after printing why.
 * The caller frees the result with free(). */
int32_t *cli_read_tokens(const char *path, int64_t *n);
/* Tokens held out for validation at the end of a token file of n tokens
 * (`smdiff train` and `smdiff eval` agree): 1%, at least one sequence. */
int64_t cli_val_tokens(int64_t n, int64_t seq);

/* --softmask off|entropy|constant as SMDIFF_SM_OFF/_ENTROPY/_CONSTANT in
 * *mode; 0, or a usage error reported. */
int cli_softmask_mode(const char *opt, const char *text, int64_t *mode);

/* --cache off|prefix|dual as SMDIFF_CACHE_OFF/_PREFIX/_DUAL in *mode; 0, or
 * a usage error reported. */
int cli_cache_mode(const char *opt, const char *text, int64_t *mode);

/* --cache off|prefix|dual into settings as SMDIFF_SAMPLER_CACHE; 0, or a
 * usage error reported. */
int cli_cache_setting(cli_settings *sampler, const char *opt, const char *text);

/* The token canvas of `smdiff generate` (canvas.c): ids_in (may be NULL)
 * and/or the prompt text with its {{fill:N}} markers expanded to N mask
 * ids; with a suffix, gen_length masks (when there is no marker; when
 * gen_set is 0, at most what the context leaves) and the suffix's tokens.
 * *infill is 1 when the canvas has masks to fill (a marker or a suffix), 0
 * for a plain prompt. Returns 0, or an exit status after printing why. The
 * caller frees *ids with free(). */
int cli_canvas(const smdiff_model *m, const int32_t *ids_in, size_t n_in, const char *prompt,
               const char *suffix, int64_t gen_length, int gen_set, int32_t **ids, size_t *n, int *infill);

/* The subcommands, in the order `smdiff --help` lists them. */
typedef struct cli_command {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *summary;
} cli_command;
extern const cli_command cli_commands[];
extern const size_t cli_n_commands;

/* The command line of every command and subcommand ("eval", "eval elbo",
 * ...), NULL-terminated: what tests/test_cli.c checks each --help against. */
extern const cli_spec *const cli_specs[];
extern const cli_spec cli_spec_version, cli_spec_info, cli_spec_generate, cli_spec_tokenize,
    cli_spec_tokenizer, cli_spec_tokenizer_train, cli_spec_tokenizer_corpus, cli_spec_convert, cli_spec_quantize,
    cli_spec_train,
    cli_spec_eval, cli_spec_eval_elbo, cli_spec_eval_gonogo, cli_spec_eval_samples, cli_spec_eval_infill,
    cli_spec_eval_gate, cli_spec_serve;

/* Under a memory limit, run the CLI again with OPENBLAS_NUM_THREADS=1
 * (blas_start.c); returns only when that is not needed or not possible.
 * Called first thing in main(). */
void cli_blas_start(char **argv);
/* The same, from the executable's .preinit_array (main.c): before
 * OpenBLAS's load-time constructor, which a lower limit makes fail. */
void cli_blas_preinit(int argc, char **argv, char **envp);

int cmd_version(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_tokenizer(int argc, char **argv);
int cmd_convert(int argc, char **argv);
int cmd_quantize(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_serve(int argc, char **argv);
/* ids[n] as text, special tokens skipped, invalid UTF-8 (a character split
 * between tokens) replaced by U+FFFD, NUL-terminated; NULL on failure.
 * The caller frees it. (eval_infill.c) */
char *cli_detokenize_utf8(const smdiff_model *m, const int32_t *ids, size_t n);
/* `smdiff eval infill` (eval_infill.c), dispatched by cmd_eval */
int eval_infill(int argc, char **argv);

#endif
