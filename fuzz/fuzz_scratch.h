/* fuzz_scratch.h -- the scratch path of a fuzz target that must go through
 * files: $TMPDIR, else /dev/shm (tmpfs: no disk writes per input), else
 * /tmp, named after the target and the process. The path (a file or a
 * folder, and "<path>.gguf" and the like beside it) is removed when the
 * fuzzer exits normally (libFuzzer's -max_total_time and -runs end in
 * exit()); after a crash it stays, for the post-mortem. Header-only: each
 * target is its own program. */
#ifndef SMDIFF_FUZZ_SCRATCH_H
#define SMDIFF_FUZZ_SCRATCH_H

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static char fuzz_scratch_path[256];

static void fuzz_scratch_remove(void) {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' '%s'.*", fuzz_scratch_path, fuzz_scratch_path);
    if (system(cmd)) fprintf(stderr, "fuzz: could not remove %s\n", fuzz_scratch_path);
}

/* The scratch path of target name, into out[n] (nothing is created). */
static void fuzz_scratch(const char *name, char *out, size_t n) {
    const char *root = getenv("TMPDIR");
    if (!root || access(root, W_OK)) root = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(fuzz_scratch_path, sizeof fuzz_scratch_path, "%s/smdiff_%s_%d", root, name, (int)getpid());
    snprintf(out, n, "%s", fuzz_scratch_path);
    atexit(fuzz_scratch_remove);
}

#endif
