/* test_serve_tools.c -- `smdiff serve` with real outside clients, each a
 * script under tests/server/ (see serverutil.py there), run with $PYTHON:
 *   test_cli.py            arguments, port taken, 127.0.0.1, SIGTERM, /metrics
 *                          read by Prometheus's parser
 *   test_doc_examples.py   every curl example of docs/SERVER.md as printed
 *   test_node_sdk.py       the official OpenAI Node SDK
 *   test_load.py           wrk: every request answered 200/429, RSS flat
 *   test_haproxy.py        two instances behind haproxy, one killed
 *   test_playground.py     the page in headless chromium, screenshots
 * A script exits 77 after printing why it skipped (a tool not installed). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

static void run_script(const char *name) {
    if (!test_cli_path()) SKIP_BECAUSE("the smdiff CLI is not built");
    const char *py = getenv("PYTHON");
    char cmd[512];
    snprintf(cmd, sizeof cmd, "%s tests/server/%s 2>&1", py && *py ? py : "/usr/bin/python3", name);
    static char out[1 << 16];
    int rc = test_run(cmd, out, sizeof out);
    print_message("%s", out);
    if (rc == 77) {
        const char *why = strstr(out, "SKIP: ");
        SKIP_BECAUSE("%s", why ? why + 6 : name);
    }
    if (rc != 0) print_message("%s exited with %d\n", name, rc);
    assert_int_equal(rc, 0);
}

static void test_cli(void **state) { (void)state; run_script("test_cli.py"); }
static void test_doc_examples(void **state) { (void)state; run_script("test_doc_examples.py"); }
static void test_node_sdk(void **state) { (void)state; run_script("test_node_sdk.py"); }
static void test_load(void **state) { (void)state; run_script("test_load.py"); }
static void test_haproxy(void **state) { (void)state; run_script("test_haproxy.py"); }
static void test_playground(void **state) { (void)state; run_script("test_playground.py"); }

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cli),      cmocka_unit_test(test_doc_examples), cmocka_unit_test(test_node_sdk),
        cmocka_unit_test(test_load),     cmocka_unit_test(test_haproxy),      cmocka_unit_test(test_playground),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
