/* consumer.c -- a minimal program that uses smdiff the way a host
 * application would. `make check` builds it twice: against the installed
 * shared library through pkg-config, and statically against libsmdiff.a. */
#include <stdio.h>
#include <string.h>

#include <smdiff/smdiff.h>

int main(void) {
    if (smdiff_version_number() != SMDIFF_VERSION_NUMBER) {
        fprintf(stderr, "header %s but library %s\n", SMDIFF_VERSION_STRING,
                smdiff_version_string());
        return 1;
    }
    smdiff_sampler *s = NULL;
    int32_t rc = smdiff_sampler_create(&s);
    if (rc != SMDIFF_OK) {
        fprintf(stderr, "sampler: %s\n", smdiff_strerror(rc));
        return 1;
    }
    int32_t key = 0;
    rc = smdiff_sampler_option_key("steps", &key);
    if (rc == SMDIFF_OK) rc = smdiff_sampler_set_int(s, key, 32);
    int64_t steps = 0;
    if (rc == SMDIFF_OK) rc = smdiff_sampler_get_int(s, key, &steps);
    smdiff_sampler_free(s);
    if (rc != SMDIFF_OK || steps != 32) {
        fprintf(stderr, "options: %s\n", smdiff_strerror(rc));
        return 1;
    }
    printf("consumer: linked smdiff %s\n", smdiff_version_string());
    return 0;
}
