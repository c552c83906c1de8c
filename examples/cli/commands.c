/* commands.c -- the table of subcommands main() dispatches to, and the
 * command lines (cli_spec) of all of them for tests/test_cli.c. */
#include "cli.h"

const cli_command cli_commands[] = {
    {"version", cmd_version, "library version, BLAS backend, threads, decoder strategies"},
    {"info", cmd_info, "describe a model file: architecture, sizes, tokenizer, tensor types, soft-mask"},
    {"generate", cmd_generate, "decode text with soft-masking and any decoder strategy"},
    {"tokenize", cmd_tokenize, "tokenize text with a model's or tokenizer directory's tokenizer"},
    {"tokenizer", cmd_tokenizer, "train a byte-level BPE tokenizer on a corpus; tokenize a corpus to a token file"},
    {"convert", cmd_convert, "convert a Hugging Face Dream/LLaDA/MDLM checkpoint to GGUF"},
    {"quantize", cmd_quantize, "rewrite a GGUF model with quantised weights (Q4_K_M, Q8_0, ...)"},
    {"train", cmd_train, "train or fine-tune a model (MDLM with soft-masking, or AR)"},
    {"eval", cmd_eval, "validation bound, SM go/no-go, perplexity, entropy and MAUVE of samples, infilling"},
    {"serve", cmd_serve, "OpenAI-compatible HTTP server with streamed denoising and a playground"},
};
const size_t cli_n_commands = sizeof cli_commands / sizeof cli_commands[0];

const cli_spec *const cli_specs[] = {
    &cli_spec_version,         &cli_spec_info,           &cli_spec_generate,  &cli_spec_tokenize,
    &cli_spec_tokenizer,       &cli_spec_tokenizer_train, &cli_spec_tokenizer_corpus,
    &cli_spec_convert,         &cli_spec_quantize,       &cli_spec_train,     &cli_spec_eval,
    &cli_spec_eval_elbo,       &cli_spec_eval_gonogo,    &cli_spec_eval_samples, &cli_spec_eval_infill,
    &cli_spec_eval_gate,       &cli_spec_serve,          NULL,
};
