/* cmd_convert.c -- `smdiff convert HF_DIR OUT.gguf [--type T]`: turn a
 * Hugging Face Dream or LLaDA checkpoint into a GGUF file with llama.cpp's
 * keys and tensor names, showing progress and a time estimate on stderr
 * when it is a terminal. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: smdiff convert HF_DIR OUT.gguf [--type TYPE] [--pre NAME] [--name NAME]\n"
            "\n"
            "  HF_DIR         config.json, model.safetensors or model-*.safetensors + index,\n"
            "                 vocab.json + merges.txt (or tokenizer.json), tokenizer_config.json\n"
            "  --type TYPE    file type of the 2-D weights (default f16), as smdiff quantize:\n"
            "                 %s;\n"
            "                 norms and biases stay f32; a type whose block does not divide a\n"
            "                 row falls back (q8_0 -> f16 for rows that are not multiples of 32)\n"
            "  --pre NAME     tokenizer.ggml.pre (default qwen2 for Dream, default for LLaDA)\n"
            "  --name NAME    general.name (default: the directory name)\n"
            "  --progress     show progress on stderr even when it is not a terminal\n"
            "  --no-progress  never show progress\n"
            "  -h, --help     this text\n",
            smdiff_quantize_type_names());
}

enum { O_TYPE = CLI_OPT_FIRST, O_PRE, O_NAME };
static const struct option longopts[] = {
    {"type", required_argument, NULL, O_TYPE}, {"pre", required_argument, NULL, O_PRE},
    {"name", required_argument, NULL, O_NAME}, CLI_PROGRESS_OPTIONS,
    CLI_HELP_OPTION,                           {0, 0, 0, 0},
};
const cli_spec cli_spec_convert = {"convert", "h", longopts, usage};

static void on_progress(uint64_t done, uint64_t total, void *user) {
    cli_byte_progress *p = user;
    double el = cli_byte_progress_elapsed(p);
    double frac = total ? (double)done / (double)total : 1.0;
    double left = frac > 0 ? el / frac - el : 0;
    fprintf(stderr, "%sconverting: %5.1f%% (%.2f of %.2f GB), %.0f s elapsed, ~%.0f s left%s",
            p->tty ? "\r" : "", 100.0 * frac, (double)done / 1e9, (double)total / 1e9, el, left,
            p->tty ? "   " : "\n");
    p->shown = 1;
}

int cmd_convert(int argc, char **argv) {
    const char *pos[2] = {NULL, NULL}, *type = "f16", *pre = NULL, *name = NULL;
    int n_pos = 0, c;
    cli_args a;
    cli_begin(&a, &cli_spec_convert);
    while ((c = cli_next(&a, argc, argv)) > 0) {
        switch (c) {
        case O_TYPE: type = optarg; break;
        case O_PRE: pre = optarg; break;
        case O_NAME: name = optarg; break;
        case CLI_ARG:
            if (n_pos == 2) return cli_usage_error("unexpected argument '%s'", optarg);
            pos[n_pos++] = optarg;
            break;
        }
    }
    if (c < 0) return a.status;
    if (n_pos != 2) return cli_usage_error("give the Hugging Face folder and the output file");
    cli_byte_progress ps;
    cli_byte_progress_start(&ps);
    int32_t rc = smdiff_convert_hf(pos[0], pos[1], type, pre, name, cli_progress(&a) ? on_progress : NULL, &ps);
    cli_byte_progress_end(&ps);
    if (rc == SMDIFF_E_INVAL) /* an unknown --type: a usage error */
        return cli_usage_error("%s", smdiff_last_error());
    if (rc != SMDIFF_OK) return cli_fail("convert", rc, smdiff_last_error());
    fprintf(stderr, "wrote %s in %.1f s\n", pos[1], cli_byte_progress_elapsed(&ps));
    return CLI_EXIT_OK;
}
