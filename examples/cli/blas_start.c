/* blas_start.c -- start OpenBLAS without worker threads under a memory
 * limit.
 *
 * OpenBLAS starts its worker threads before main() (one per CPU, or
 * OPENBLAS_NUM_THREADS), and each takes a 128 MiB work buffer at once;
 * under `ulimit -v` or `ulimit -d` a worker whose buffer does not fit
 * retries for ever, so the command never ends, not even `smdiff version`.
 * When such a limit is set and OPENBLAS_NUM_THREADS is not, the CLI
 * therefore runs itself again (execv of /proc/self/exe, which ends the
 * spinning workers) with OPENBLAS_NUM_THREADS=1: OpenBLAS then starts none,
 * and the library adds workers when it needs them, after checking that
 * their buffers fit (SMDIFF_E_NOMEM otherwise). docs/RELIABILITY.md. */
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

#include "cli.h"

static int limited(int resource) {
    struct rlimit r;
    return getrlimit(resource, &r) == 0 && r.rlim_cur != RLIM_INFINITY;
}

void cli_blas_start(char **argv) {
    if (getenv("OPENBLAS_NUM_THREADS") || (!limited(RLIMIT_AS) && !limited(RLIMIT_DATA))) return;
    if (setenv("OPENBLAS_NUM_THREADS", "1", 1) != 0) return;
    execv("/proc/self/exe", argv);
    /* exec failed (no /proc, say): go on as we are */
}
