/* api_file.c -- the public face of the file layer (file.h): atomic writes
 * for programs built on smdiff, such as the CLI's logs and plots. */
#include "core/error.h"
#include "io/file.h"
#include "smdiff/smdiff.h"

SMDIFF_API int32_t smdiff_write_file(const char *path, const void *data, size_t n) {
    if (!path || (!data && n)) return sd_fail(NULL, SMDIFF_E_INVAL, "smdiff_write_file: NULL argument");
    return sd_atomic_write_file(path, "file", data, n, NULL);
}
