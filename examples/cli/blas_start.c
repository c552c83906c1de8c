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
 * their buffers fit (SMDIFF_E_NOMEM otherwise). docs/RELIABILITY.md.
 *
 * Under a lower limit (44-50 MiB on 2 CPUs) OpenBLAS cannot even create
 * its first worker and ends the process from its load-time constructor,
 * before main() could run itself again. cli_blas_preinit runs earlier
 * still: main.c puts it in the executable's .preinit_array, which the
 * dynamic loader calls before any shared library's constructor. It reads
 * only its arguments (libc's own state may not be set up yet) and makes
 * the same exec with OPENBLAS_NUM_THREADS=1 added to the environment. */
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "cli.h"

static int limited(int resource) {
    struct rlimit r;
    return getrlimit(resource, &r) == 0 && r.rlim_cur != RLIM_INFINITY;
}

/* A limit on the address space or the data segment: OpenBLAS's workers'
 * buffers may not fit (both entry points below decide on it). */
static int memory_limited(void) { return limited(RLIMIT_AS) || limited(RLIMIT_DATA); }

void cli_blas_preinit(int argc, char **argv, char **envp) {
    (void)argc;
    static const char var[] = "OPENBLAS_NUM_THREADS=";
    static char *env[1024];
    size_t n = 0;
    for (; envp && envp[n]; n++)
        if (!strncmp(envp[n], var, sizeof var - 1)) return; /* set by the user (or by this exec) */
    if (n + 2 > sizeof env / sizeof env[0] || !memory_limited()) return;
    for (size_t i = 0; i < n; i++) env[i] = envp[i];
    env[n] = (char *)"OPENBLAS_NUM_THREADS=1";
    env[n + 1] = NULL;
    execve("/proc/self/exe", argv, env);
    /* exec failed: main's cli_blas_start tries once more */
}

void cli_blas_start(char **argv) {
    if (getenv("OPENBLAS_NUM_THREADS") || !memory_limited()) return;
    if (setenv("OPENBLAS_NUM_THREADS", "1", 1) != 0) return;
    execv("/proc/self/exe", argv);
    /* exec failed (no /proc, say): go on as we are */
}
