/* cmd_version.c -- `smdiff version`: what this build is and runs on. */
#include <stdio.h>

#include "cli.h"

static void usage(FILE *f) {
    fprintf(f, "usage: smdiff version [-h]\n\n"
               "Prints the library version, the BLAS kernel, the default thread count and the\n"
               "registered decoder strategies.\n"
               "  -h, --help   this text\n");
}

static const struct option longopts[] = {CLI_HELP_OPTION, {0, 0, 0, 0}};
const cli_spec cli_spec_version = {"version", "h", longopts, usage};

int cmd_version(int argc, char **argv) {
    cli_args a;
    int c;
    cli_begin(&a, &cli_spec_version);
    while ((c = cli_next(&a, argc, argv)) > 0)
        if (c == CLI_ARG) return cli_usage_error("unexpected argument '%s'", optarg);
    if (c < 0) return a.status;
    int32_t threads = 0;
    size_t n = 0;
    smdiff_resolve_threads(0, &threads);
    printf("smdiff %s (library %s)\n", SMDIFF_VERSION_STRING, smdiff_version_string());
    printf("blas: OpenBLAS %s\n", smdiff_blas_info());
    printf("threads: %d\n", (int)threads);
    int32_t rc = smdiff_decoder_count(&n);
    if (rc != SMDIFF_OK) return cli_fail("decoder registry", rc, smdiff_last_error());
    printf("decoder strategies: %zu", n);
    for (size_t i = 0; i < n; i++) {
        const char *name = NULL;
        if (smdiff_decoder_name(i, &name, NULL) == SMDIFF_OK) printf("%s%s", i ? ", " : " (", name);
    }
    printf("%s\n", n ? ")" : "");
    return CLI_EXIT_OK;
}
