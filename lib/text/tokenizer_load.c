/* tokenizer_load.c -- pick the loader for a path: a directory of Hugging
 * Face files, a tokenizer.json, or a GGUF file. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "io/file.h"
#include "io/gguf.h"
#include "tokenizer.h"

int32_t sd_tokenizer_load(const char *path, sd_tokenizer **out, sd_error *err) {
    if (!path || !out) return sd_fail(err, SMDIFF_E_INVAL, "NULL argument");
    if (sd_file_probe(path, NULL) == SD_FILE_FOLDER) return sd_tokenizer_from_hf_dir(path, out, err);
    int fd;
    int32_t orc = sd_file_open_input(path, "tokenizer", &fd, NULL, err);
    if (orc) return orc;
    char magic[4] = {0};
    ssize_t got = read(fd, magic, 4);
    close(fd);
    if (got == 4 && !memcmp(magic, "GGUF", 4)) {
        sd_gguf *g = NULL;
        int32_t rc = sd_gguf_open(path, 1, &g, err);
        if (rc) return rc;
        rc = sd_tokenizer_from_gguf(g, out, err);
        sd_gguf_close(g);
        return rc;
    }
    size_t n = strlen(path);
    if (n >= 5 && !strcmp(path + n - 5, ".json")) return sd_tokenizer_from_hf_json(path, out, err);
    return sd_fail(err, SMDIFF_E_FORMAT, "%s is neither a GGUF file, a tokenizer.json nor a "
                   "tokenizer directory", path);
}
