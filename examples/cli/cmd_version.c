/* cmd_version.c -- `smdiff version`: what this build is and runs on. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

int cmd_version(int argc, char **argv) {
    if (argc > 1 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
        printf("usage: smdiff version\n\nPrints the library version, the BLAS kernel, the "
               "default thread count and the registered decoder strategies.\n");
        return 0;
    }
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
    return 0;
}
