/* testutil.h -- shared helpers for the cmocka test programs. */
#ifndef SMDIFF_TESTUTIL_H
#define SMDIFF_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

/* Path of a file under tests/data/ (tests run from the repository root). */
const char *test_data_path(const char *name);

/* Path of a file under the shared data folder (SMDIFF_SHARED_DATA, or the
 * environment variable of the same name), or NULL if the folder is absent. */
const char *test_shared_path(const char *rel);

/* Path of the smdiff CLI of the build variant under test ($BUILD/smdiff,
 * default build/cc/smdiff), or NULL if it is not built. */
const char *test_cli_path(void);

/* Skip the current test with a printed reason. */
#define SKIP_BECAUSE(...)                 \
    do {                                  \
        print_message("SKIP: " __VA_ARGS__); \
        print_message("\n");              \
        skip();                           \
    } while (0)

#endif
