/* common.c -- what several commands need: error messages, the bundled
 * model's path, token files. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

int cli_fail(const char *what, int32_t status, const char *detail) {
    fprintf(stderr, "%s: %s: %s (%s)%s%s\n", cli_prog(), what, smdiff_strerror(status), smdiff_err_name(status),
            detail && *detail ? ": " : "", detail ? detail : "");
    return CLI_EXIT_FAIL;
}

int cli_softmask_mode(const char *opt, const char *text, int64_t *mode) {
    static const char *const names[] = {[SMDIFF_SM_OFF] = "off", [SMDIFF_SM_ENTROPY] = "entropy",
                                        [SMDIFF_SM_CONSTANT] = "constant"};
    for (int64_t i = 0; i < 3; i++) {
        if (strcmp(text, names[i])) continue;
        *mode = i;
        return 0;
    }
    return cli_usage_error("%s: '%s' is not off, entropy or constant", opt, text);
}

int cli_cache_mode(const char *opt, const char *text, int64_t *mode) {
    static const char *const names[] = {[SMDIFF_CACHE_OFF] = "off", [SMDIFF_CACHE_PREFIX] = "prefix",
                                        [SMDIFF_CACHE_DUAL] = "dual"};
    for (int64_t i = 0; i < 3; i++) {
        if (strcmp(text, names[i])) continue;
        *mode = i;
        return 0;
    }
    return cli_usage_error("%s: '%s' is not off, prefix or dual", opt, text);
}

int cli_cache_setting(cli_settings *sampler, const char *opt, const char *text) {
    int64_t mode = 0;
    int r = cli_cache_mode(opt, text, &mode);
    return r ? r : cli_setting_int(sampler, opt, SMDIFF_SAMPLER_CACHE, mode);
}

static int readable(const char *path) { return access(path, R_OK) == 0; }

const char *cli_default_model(void) {
    static char buf[4096];
    const char *env = getenv("SMDIFF_MODEL");
    if (env && *env) return env;
    if (readable("models/" CLI_DEFAULT_MODEL)) return "models/" CLI_DEFAULT_MODEL;
    char exe[4000];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return NULL;
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (!slash) return NULL;
    *slash = '\0';
    static const char *const rel[] = {"/../../models/", "/../models/", "/../share/smdiff/"};
    for (size_t i = 0; i < sizeof rel / sizeof rel[0]; i++) {
        snprintf(buf, sizeof buf, "%s%s%s", exe, rel[i], CLI_DEFAULT_MODEL);
        if (readable(buf)) return buf;
    }
    return NULL;
}

int32_t *cli_read_tokens(const char *path, int64_t *n) {
    FILE *f = cli_fopen(path, "rb", "token file");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    if (size < 0 || size % 4) {
        fprintf(stderr, "%s: %s: size %ld is not a whole number of int32 tokens\n", cli_prog(), path, size);
        fclose(f);
        return NULL;
    }
    int32_t *t = malloc(size ? (size_t)size : 4);
    *n = size / 4;
    if (!t || fread(t, 4, (size_t)*n, f) != (size_t)*n) {
        fprintf(stderr, "%s: %s: read failed\n", cli_prog(), path);
        free(t);
        t = NULL;
    }
    fclose(f);
    return t;
}

int64_t cli_val_tokens(int64_t n, int64_t seq) { return n / 100 > seq ? n / 100 : seq; }
