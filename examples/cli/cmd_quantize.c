/* cmd_quantize.c -- `smdiff quantize IN.gguf OUT.gguf --type T`: rewrite a
 * F32/F16/BF16 model with its matrices in a block format (llama.cpp's file
 * types and mixtures), with a progress bar on a terminal and a summary of
 * the size and reconstruction error per storage type. */
#include <stdio.h>

#include "cli.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: smdiff quantize IN.gguf OUT.gguf --type TYPE [--pure] [-t N]\n"
            "\n"
            "  --type TYPE        the file type (llama.cpp's names):\n"
            "                     %s\n"
            "                     _s/_m/_l are mixtures that give some tensors more bits (attn_v,\n"
            "                     ffn_down, attn_output in chosen layers; the output head Q6_K);\n"
            "                     docs/FORMATS.md lists them\n"
            "  --pure             every matrix in TYPE: no mixture, no Q6_K head\n"
            "  -t, --threads N    threads (default 0 = all online CPUs)\n"
            "  --progress         show progress on stderr even when it is not a terminal\n"
            "  --no-progress      never show progress\n"
            "  -h, --help         this text\n"
            "Norms and biases keep their type; a type whose block does not divide a row falls\n"
            "back (Q4_K -> Q5_0, Q6_K -> Q8_0, ...). The summary goes to standard output.\n",
            smdiff_quantize_type_names());
}

enum { O_TYPE = CLI_OPT_FIRST, O_PURE };
static const struct option longopts[] = {
    {"type", required_argument, NULL, O_TYPE}, {"pure", no_argument, NULL, O_PURE},
    {"threads", required_argument, NULL, 't'}, CLI_PROGRESS_OPTIONS,
    CLI_HELP_OPTION,                           {0, 0, 0, 0},
};
const cli_spec cli_spec_quantize = {"quantize", "t:h", longopts, usage};

/* [#####.....] 45.1%  2.03 of 4.50 GB written, 12 s, ~15 s left */
static void on_progress(uint64_t done, uint64_t total, void *user) {
    cli_byte_progress *p = user;
    double el = cli_byte_progress_elapsed(p), frac = total ? (double)done / (double)total : 1.0;
    char bar[31];
    int fill = (int)(frac * 30.0 + 0.5);
    for (int i = 0; i < 30; i++) bar[i] = i < fill ? '#' : '.';
    bar[30] = '\0';
    fprintf(stderr, "%s[%s] %5.1f%%  %.2f of %.2f GB written, %.0f s, ~%.0f s left%s", p->tty ? "\r" : "", bar,
            100.0 * frac, (double)done / 1e9, (double)total / 1e9, el, frac > 0 ? el / frac - el : 0.0,
            p->tty ? "  " : "\n");
    p->shown = 1;
}

static void summary(const smdiff_quant_report *r) {
    printf("%-7s %8s %14s %10s %9s %12s %12s\n", "type", "tensors", "elements", "MB", "bits/w", "rms error",
           "rel. error");
    for (size_t i = 0; i < r->n_types; i++) {
        const smdiff_quant_stat *s = &r->types[i];
        double bpw = s->n_elements ? 8.0 * (double)s->n_bytes / (double)s->n_elements : 0;
        printf("%-7s %8llu %14llu %10.1f %9.3f %12.4g %12.4g\n", s->type, (unsigned long long)s->n_tensors,
               (unsigned long long)s->n_elements, (double)s->n_bytes / 1e6, bpw, s->rms_error,
               s->rms_value > 0 ? s->rms_error / s->rms_value : 0.0);
    }
    printf("tensor data: %.1f MB -> %.1f MB (%.1f%%)\n", (double)r->in_bytes / 1e6, (double)r->out_bytes / 1e6,
           r->in_bytes ? 100.0 * (double)r->out_bytes / (double)r->in_bytes : 0.0);
}

int cmd_quantize(int argc, char **argv) {
    const char *type = NULL, *pos[2] = {NULL, NULL};
    int64_t threads = 0, pure = 0;
    int n_pos = 0, c;
    cli_args a;
    cli_begin(&a, &cli_spec_quantize);
    while ((c = cli_next(&a, argc, argv)) > 0) {
        switch (c) {
        case O_TYPE: type = optarg; break;
        case O_PURE: pure = 1; break;
        case 't':
            if (cli_key_int(a.opt, optarg, SMDIFF_QUANT_THREADS, &threads)) return CLI_EXIT_USAGE;
            break;
        case CLI_ARG:
            if (n_pos == 2) return cli_usage_error("unexpected argument '%s'", optarg);
            pos[n_pos++] = optarg;
            break;
        }
    }
    if (c < 0) return a.status;
    if (n_pos != 2) return cli_usage_error("give the input and the output file");
    if (!type) return cli_usage_error("--type is required");
    int64_t opts[] = {SMDIFF_QUANT_THREADS, threads, SMDIFF_QUANT_PURE, pure, 0};
    cli_byte_progress ps;
    cli_byte_progress_start(&ps);
    smdiff_quant_report rep;
    int32_t rc = smdiff_quantize(pos[0], pos[1], type, opts, cli_progress(&a) ? on_progress : NULL, &ps, &rep);
    cli_byte_progress_end(&ps);
    if (rc == SMDIFF_E_INVAL) return cli_usage_error("%s", smdiff_last_error()); /* an unknown --type */
    if (rc != SMDIFF_OK) return cli_fail("quantize", rc, smdiff_last_error());
    fprintf(stderr, "wrote %s in %.1f s\n", pos[1], cli_byte_progress_elapsed(&ps));
    summary(&rep);
    return CLI_EXIT_OK; /* main() checks standard output */
}
