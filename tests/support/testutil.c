#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"

#ifndef SMDIFF_SHARED_DATA
#define SMDIFF_SHARED_DATA "../shared/data"
#endif

const char *test_data_path(const char *name) {
    static _Thread_local char buf[4096];
    snprintf(buf, sizeof buf, "tests/data/%s", name);
    return buf;
}

const char *test_shared_path(const char *rel) {
    static _Thread_local char buf[4096];
    const char *root = getenv("SMDIFF_SHARED_DATA");
    if (!root || !*root) root = SMDIFF_SHARED_DATA;
    struct stat st;
    if (stat(root, &st) != 0 || !S_ISDIR(st.st_mode)) return NULL;
    snprintf(buf, sizeof buf, "%s/%s", root, rel);
    return buf;
}

const char *test_cli_path(void) {
    static char p[512];
    const char *b = getenv("BUILD");
    snprintf(p, sizeof p, "%s/smdiff", b && *b ? b : "build/cc");
    return access(p, X_OK) == 0 ? p : NULL;
}
