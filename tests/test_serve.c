/* test_serve.c -- the server end to end over real loopback sockets, through
 * the public smdiff_server_* API, on an ephemeral port:
 *  - the API's argument, option and state errors;
 *  - keep-alive, completions, concurrency (every request answered, 200 or
 *    429, none lost);
 *  - slots + queue: 429 with Retry-After at once when both are full;
 *  - a client that disconnects, running or queued, frees its slot at the
 *    next denoising step; the time limit answers 504 (or an error event);
 *  - slowloris and idle connections are closed after the read timeout;
 *    garbage, truncated and oversized requests get their error or are
 *    dropped, and the server keeps serving;
 *  - stop: queued requests get 503, running ones finish within the grace
 *    or are aborted, run returns.
 * Slow generations come from the "test_slow" strategy (tests/support),
 * which sleeps per step instead of computing. */
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"
#include "servetest.h"

#ifndef SMDIFF_EXPERIMENTAL /* the Makefile defines it for tests and benchmarks */
#define SMDIFF_EXPERIMENTAL
#endif
#include "smdiff/smdiff.h"

#define NEED_MODEL()                                                                      \
    do {                                                                                  \
        if (!st_bundled_model())                                                          \
            SKIP_BECAUSE("the bundled model models/smdiff-gutenberg-18m-sm.gguf is missing"); \
    } while (0)

/* ------------------------------------------------------------- a server */

typedef struct srv {
    smdiff_server *s;
    pthread_t th;
    int port, ran;
    int32_t run_rc;
} srv;

static void *run_thread(void *arg) {
    srv *v = arg;
    v->run_rc = smdiff_server_run(v->s);
    return NULL;
}

typedef struct opt {
    int32_t key;
    double v;
} opt;

/* Start a server on a free port with options (ints or doubles by key). */
static srv *start(const opt *opts, size_t n, const char *api_key) {
    srv *v = calloc(1, sizeof *v);
    assert_int_equal(smdiff_server_create(st_bundled_model(), &v->s), SMDIFF_OK);
    assert_int_equal(smdiff_server_set_int(v->s, SMDIFF_SERVER_PORT, 0), SMDIFF_OK);
    assert_int_equal(smdiff_server_set_int(v->s, SMDIFF_SERVER_THREADS, 1), SMDIFF_OK);
    assert_int_equal(smdiff_server_set_model_name(v->s, "tm"), SMDIFF_OK);
    if (api_key) assert_int_equal(smdiff_server_set_api_key(v->s, api_key), SMDIFF_OK);
    for (size_t i = 0; i < n; i++) {
        int32_t type = 0;
        assert_int_equal(smdiff_server_option_info(opts[i].key, NULL, &type, NULL, NULL, NULL), SMDIFF_OK);
        int32_t rc = type == SMDIFF_TYPE_INT ? smdiff_server_set_int(v->s, opts[i].key, (int64_t)opts[i].v)
                                             : smdiff_server_set_double(v->s, opts[i].key, opts[i].v);
        assert_int_equal(rc, SMDIFF_OK);
    }
    assert_int_equal(smdiff_server_listen(v->s), SMDIFF_OK);
    int32_t port = 0;
    assert_int_equal(smdiff_server_port(v->s, &port), SMDIFF_OK);
    assert_true(port > 0);
    v->port = port;
    assert_int_equal(pthread_create(&v->th, NULL, run_thread, v), 0);
    return v;
}

static void stop(srv *v) {
    assert_int_equal(smdiff_server_stop(v->s), SMDIFF_OK);
    pthread_join(v->th, NULL);
    assert_int_equal(v->run_rc, SMDIFF_OK);
    smdiff_server_free(v->s);
    free(v);
}

static json_t *body_json(const st_resp *r) {
    json_error_t e;
    json_t *v = json_loads(r->body ? r->body : "", 0, &e);
    if (!v) print_message("not JSON: %s\n", r->body);
    assert_non_null(v);
    return v;
}

/* A metric's value from /metrics (the first line starting with name). */
static double metric(int port, const char *name) {
    st_resp r;
    assert_int_equal(st_request(port, "GET", "/metrics", NULL, NULL, &r), 200);
    const char *p = r.body;
    double v = -1;
    size_t n = strlen(name);
    while (p && *p) {
        if (!strncmp(p, name, n) && p[n] == ' ') {
            v = atof(p + n + 1);
            break;
        }
        p = strchr(p, '\n');
        if (p) p++;
    }
    st_resp_free(&r);
    return v;
}

/* Wait until a metric equals (at_least 0) or reaches (1) a value, or the
 * deadline passes. */
static int wait_metric_cmp(int port, const char *name, double want, double timeout, int at_least) {
    double end = st_now() + timeout;
    while (st_now() < end) {
        double v = metric(port, name);
        if (at_least ? v >= want : v == want) return 1;
        usleep(20000);
    }
    return 0;
}

static int wait_metric(int port, const char *name, double want, double timeout) {
    return wait_metric_cmp(port, name, want, timeout, 0);
}

/* A request in its own thread. */
typedef struct call {
    pthread_t th;
    int port;
    const char *path, *body;
    st_resp r;
    double seconds;
} call;

static void *call_thread(void *arg) {
    call *c = arg;
    double t0 = st_now();
    st_request(c->port, "POST", c->path, c->body, NULL, &c->r);
    c->seconds = st_now() - t0;
    return NULL;
}

static void call_start(call *c, int port, const char *body) {
    memset(c, 0, sizeof *c);
    c->port = port;
    c->path = "/v1/completions";
    c->body = body;
    assert_int_equal(pthread_create(&c->th, NULL, call_thread, c), 0);
}

static void call_join(call *c) { pthread_join(c->th, NULL); }

static const char *k_slow = "{\"prompt\":\"Once upon a time\",\"max_tokens\":20,\"steps\":20,\"strategy\":\"test_slow\"}";

/* ----------------------------------------------------------------- API */

static void test_api(void **state) {
    (void)state;
    NEED_MODEL();
    smdiff_server *s = NULL;
    assert_int_equal(smdiff_server_create(NULL, &s), SMDIFF_E_INVAL);
    assert_int_equal(smdiff_server_create(st_bundled_model(), NULL), SMDIFF_E_INVAL);
    smdiff_model *empty = NULL;
    assert_int_equal(smdiff_model_create(&empty), SMDIFF_OK);
    assert_int_equal(smdiff_server_create(empty, &s), SMDIFF_E_STATE);
    assert_non_null(strstr(smdiff_last_error(), "not loaded"));
    smdiff_model_free(empty);

    assert_int_equal(smdiff_server_create(st_bundled_model(), &s), SMDIFF_OK);
    /* keys of other families, wrong types, bounds */
    assert_int_equal(smdiff_server_set_int(s, SMDIFF_SAMPLER_STEPS, 1), SMDIFF_E_INVAL);
    assert_non_null(strstr(smdiff_server_last_error(s), "not a server option"));
    assert_string_equal(smdiff_last_error(), smdiff_server_last_error(s));
    assert_int_equal(smdiff_server_set_int(s, 599, 1), SMDIFF_E_INVAL);
    assert_int_equal(smdiff_server_set_int(s, SMDIFF_SERVER_OPT_LAST_ + 1, 1), SMDIFF_E_INVAL);
    assert_int_equal(smdiff_server_set_int(s, SMDIFF_SERVER_SLOTS, 0), SMDIFF_E_RANGE);
    assert_non_null(strstr(smdiff_server_last_error(s), "slots"));
    assert_int_equal(smdiff_server_set_int(s, SMDIFF_SERVER_PORT, 65536), SMDIFF_E_RANGE);
    assert_int_equal(smdiff_server_set_double(s, SMDIFF_SERVER_SLOTS, 2), SMDIFF_E_INVAL);
    assert_int_equal(smdiff_server_set_int(s, SMDIFF_SERVER_TIMEOUT, 2), SMDIFF_E_INVAL);
    assert_int_equal(smdiff_server_set_double(s, SMDIFF_SERVER_READ_TIMEOUT, 0), SMDIFF_E_RANGE);
    assert_int_equal(smdiff_server_set_double(s, SMDIFF_SERVER_TIMEOUT, 0.0 / 0.0), SMDIFF_E_RANGE);
    int64_t i = 0;
    double d = 0;
    assert_int_equal(smdiff_server_get_int(s, SMDIFF_SERVER_SLOTS, &i), SMDIFF_OK);
    assert_int_equal(i, 1);
    assert_int_equal(smdiff_server_get_int(s, SMDIFF_SERVER_PORT, &i), SMDIFF_OK);
    assert_int_equal(i, 8080);
    assert_int_equal(smdiff_server_get_double(s, SMDIFF_SERVER_READ_TIMEOUT, &d), SMDIFF_OK);
    assert_true(d == 10);
    /* every key has a name that maps back to it */
    for (int32_t k = SMDIFF_SERVER_OPT_FIRST_; k <= SMDIFF_SERVER_OPT_LAST_; k++) {
        const char *name = NULL;
        int32_t back = 0;
        assert_int_equal(smdiff_server_option_info(k, &name, NULL, NULL, NULL, NULL), SMDIFF_OK);
        assert_int_equal(smdiff_server_option_key(name, &back), SMDIFF_OK);
        assert_int_equal(back, k);
    }
    assert_int_equal(smdiff_server_option_info(SMDIFF_SAMPLER_STEPS, NULL, NULL, NULL, NULL, NULL), SMDIFF_E_INVAL);
    int32_t k = 0;
    assert_int_equal(smdiff_server_option_key("no_such", &k), SMDIFF_E_NOT_FOUND);
    assert_int_equal(smdiff_server_set_host(s, ""), SMDIFF_E_INVAL);
    assert_int_equal(smdiff_server_set_host(s, NULL), SMDIFF_E_INVAL);
    assert_int_equal(smdiff_server_set_model_name(s, ""), SMDIFF_E_INVAL);
    assert_int_equal(smdiff_server_set_api_key(s, NULL), SMDIFF_OK);
    int32_t port = 0;
    assert_int_equal(smdiff_server_port(s, &port), SMDIFF_E_STATE);
    assert_int_equal(smdiff_server_run(s), SMDIFF_E_STATE);
    assert_non_null(strstr(smdiff_server_last_error(s), "listen first"));
    /* an unresolvable host, then a port already taken */
    assert_int_equal(smdiff_server_set_host(s, "no.such.host.invalid"), SMDIFF_OK);
    assert_int_equal(smdiff_server_listen(s), SMDIFF_E_IO);
    assert_non_null(strstr(smdiff_server_last_error(s), "no.such.host.invalid"));
    smdiff_server_free(s);

    srv *v = start(NULL, 0, NULL);
    assert_int_equal(smdiff_server_create(st_bundled_model(), &s), SMDIFF_OK);
    assert_int_equal(smdiff_server_set_int(s, SMDIFF_SERVER_PORT, v->port), SMDIFF_OK);
    assert_int_equal(smdiff_server_listen(s), SMDIFF_E_IO);
    assert_non_null(strstr(smdiff_server_last_error(s), "address already in use"));
    smdiff_server_free(s);
    /* once listening: options are fixed, no second listen or run */
    assert_int_equal(smdiff_server_set_int(v->s, SMDIFF_SERVER_SLOTS, 2), SMDIFF_E_STATE);
    assert_int_equal(smdiff_server_set_api_key(v->s, "k"), SMDIFF_E_STATE);
    assert_int_equal(smdiff_server_listen(v->s), SMDIFF_E_STATE);
    smdiff_server *keep = v->s;
    (void)keep;
    stop(v);

    /* listened, never ran: free stops and cleans up */
    assert_int_equal(smdiff_server_create(st_bundled_model(), &s), SMDIFF_OK);
    assert_int_equal(smdiff_server_set_int(s, SMDIFF_SERVER_PORT, 0), SMDIFF_OK);
    assert_int_equal(smdiff_server_listen(s), SMDIFF_OK);
    smdiff_server_free(s);
    /* stop before run: run returns at once */
    assert_int_equal(smdiff_server_create(st_bundled_model(), &s), SMDIFF_OK);
    assert_int_equal(smdiff_server_set_int(s, SMDIFF_SERVER_PORT, 0), SMDIFF_OK);
    assert_int_equal(smdiff_server_listen(s), SMDIFF_OK);
    assert_int_equal(smdiff_server_stop(s), SMDIFF_OK);
    assert_int_equal(smdiff_server_run(s), SMDIFF_OK);
    assert_int_equal(smdiff_server_run(s), SMDIFF_E_STATE);
    smdiff_server_free(s);
    smdiff_server_free(NULL);
    assert_int_equal(smdiff_server_stop(NULL), SMDIFF_E_INVAL);
}

/* ------------------------------------------------------------- traffic */

static void test_basic_keepalive(void **state) {
    (void)state;
    NEED_MODEL();
    srv *v = start(NULL, 0, "k1");
    st_resp r;
    assert_int_equal(st_request(v->port, "GET", "/health", NULL, NULL, &r), 200);
    st_resp_free(&r);
    assert_int_equal(st_request(v->port, "POST", "/v1/completions", "{\"prompt\":\"Hi\",\"max_tokens\":4}", NULL, &r),
                     401);
    st_resp_free(&r);
    assert_int_equal(st_request(v->port, "POST", "/v1/completions", "{\"prompt\":\"Hi\",\"max_tokens\":4,\"steps\":2}",
                                "Authorization: Bearer k1\r\n", &r),
                     200);
    json_t *j = body_json(&r);
    assert_string_equal(json_string_value(json_object_get(j, "model")), "tm");
    json_decref(j);
    st_resp_free(&r);
    /* three requests on one connection, the last one streamed, then close */
    int fd = st_connect(v->port);
    const char *body = "{\"prompt\":\"Hi\",\"max_tokens\":4,\"steps\":2,\"stream\":true}";
    char req[1024];
    snprintf(req, sizeof req,
             "GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
             "GET /v1/models HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k1\r\n\r\n"
             "POST /v1/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k1\r\nConnection: close\r\n"
             "Content-Length: %zu\r\n\r\n%s",
             strlen(body), body);
    assert_int_equal(st_send_all(fd, req, strlen(req)), 0);
    size_t n = 0;
    char *data = st_read_all(fd, &n, 30);
    close(fd);
    st_resp rs[3];
    assert_int_equal(st_parse_responses(data, n, rs, 3), 3);
    assert_int_equal(rs[0].status, 200);
    assert_int_equal(rs[1].status, 200);
    assert_int_equal(rs[2].status, 200);
    assert_non_null(strstr(rs[2].body, "data: [DONE]\n\n"));
    for (int k = 0; k < 3; k++) st_resp_free(&rs[k]);
    free(data);
    stop(v);
}

/* Slots + queue full: 429 at once; then the slot frees and requests pass. */
static void test_queue_full(void **state) {
    (void)state;
    NEED_MODEL();
    st_register_slow();
    st_slow_ms = 40;
    opt o[] = {{SMDIFF_SERVER_SLOTS, 1}, {SMDIFF_SERVER_QUEUE, 1}};
    srv *v = start(o, 2, NULL);
    call a, b;
    call_start(&a, v->port, k_slow);
    assert_true(wait_metric(v->port, "smdiff_slots_busy", 1, 5));
    call_start(&b, v->port, k_slow);
    assert_true(wait_metric(v->port, "smdiff_queue_depth", 1, 5));
    st_resp r;
    double t0 = st_now();
    assert_int_equal(st_request(v->port, "POST", "/v1/completions", k_slow, NULL, &r), 429);
    assert_true(st_now() - t0 < 0.5); /* at once, not after the queue */
    assert_string_equal(st_header(&r, "retry-after"), "1");
    json_t *j = body_json(&r);
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "error"), "code")), "queue_full");
    json_decref(j);
    st_resp_free(&r);
    call_join(&a);
    call_join(&b);
    assert_int_equal(a.r.status, 200);
    assert_int_equal(b.r.status, 200);
    st_resp_free(&a.r);
    st_resp_free(&b.r);
    /* answered means freed: the next one is accepted */
    assert_int_equal(st_request(v->port, "POST", "/v1/completions", "{\"prompt\":\"x\",\"max_tokens\":2}", NULL, &r), 200);
    st_resp_free(&r);
    stop(v);
}

/* Open a connection, send a request, close after `after` seconds. */
static void send_and_leave(int port, const char *body, double after) {
    int fd = st_connect(port);
    char req[1024];
    snprintf(req, sizeof req, "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: %zu\r\n\r\n%s", strlen(body),
             body);
    assert_int_equal(st_send_all(fd, req, strlen(req)), 0);
    usleep((useconds_t)(after * 1e6));
    close(fd);
}

static void test_disconnect(void **state) {
    (void)state;
    NEED_MODEL();
    st_register_slow();
    st_slow_ms = 50;
    opt o[] = {{SMDIFF_SERVER_SLOTS, 1}, {SMDIFF_SERVER_QUEUE, 1}};
    srv *v = start(o, 2, NULL);
    /* 20 steps of 50 ms = 1 s of work; the client leaves after 0.2 s */
    const char *slow_stream = "{\"prompt\":\"Once\",\"max_tokens\":20,\"steps\":20,\"strategy\":\"test_slow\",\"stream\":true}";
    const char *bodies[] = {k_slow, slow_stream};
    for (int k = 0; k < 2; k++) {
        send_and_leave(v->port, bodies[k], 0.2);
        double t0 = st_now();
        assert_true(wait_metric(v->port, "smdiff_slots_busy", 0, 2));
        assert_true(st_now() - t0 < 0.6); /* a step or two, not the remaining 0.8 s */
    }
    assert_true(wait_metric(v->port, "smdiff_generations_aborted_total{reason=\"disconnect\"}", 2, 2));
    /* a queued request whose client leaves is dropped from the queue */
    call a;
    call_start(&a, v->port, k_slow);
    assert_true(wait_metric(v->port, "smdiff_slots_busy", 1, 5));
    send_and_leave(v->port, k_slow, 0.1);
    assert_true(wait_metric(v->port, "smdiff_generations_aborted_total{reason=\"disconnect\"}", 3, 2));
    assert_int_equal(metric(v->port, "smdiff_queue_depth"), 0);
    call_join(&a);
    assert_int_equal(a.r.status, 200);
    st_resp_free(&a.r);
    stop(v);
}

static void test_timeout(void **state) {
    (void)state;
    NEED_MODEL();
    st_register_slow();
    st_slow_ms = 50;
    opt o[] = {{SMDIFF_SERVER_TIMEOUT, 0.3}};
    srv *v = start(o, 1, NULL);
    st_resp r;
    double t0 = st_now();
    assert_int_equal(st_request(v->port, "POST", "/v1/completions", k_slow, NULL, &r), 504);
    assert_true(st_now() - t0 < 0.9);
    json_t *j = body_json(&r);
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "error"), "code")), "timeout");
    json_decref(j);
    st_resp_free(&r);
    /* streamed: the stream has begun, so the error is its last event */
    assert_int_equal(st_request(v->port, "POST", "/v1/completions",
                                "{\"prompt\":\"Once\",\"max_tokens\":20,\"steps\":20,\"strategy\":\"test_slow\",\"stream\":true}",
                                NULL, &r),
                     200);
    char **ev = NULL;
    int n = st_sse_events(r.body, &ev);
    assert_true(n >= 2);
    assert_string_equal(ev[n - 1], "[DONE]");
    assert_non_null(strstr(ev[n - 2], "\"timeout\""));
    st_free_events(ev, n);
    st_resp_free(&r);
    assert_true(wait_metric(v->port, "smdiff_generations_aborted_total{reason=\"timeout\"}", 2, 2));
    stop(v);
}

/* A connection that never finishes its headers is closed. */
static void test_slowloris(void **state) {
    (void)state;
    NEED_MODEL();
    opt o[] = {{SMDIFF_SERVER_READ_TIMEOUT, 0.5}};
    srv *v = start(o, 1, NULL);
    int fd = st_connect(v->port);
    const char *part = "GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ";
    assert_int_equal(st_send_all(fd, part, strlen(part)), 0);
    double t0 = st_now();
    int closed = 0;
    while (st_now() - t0 < 3) {
        if (st_send_all(fd, "a", 1)) { /* reset by the server */
            closed = 1;
            break;
        }
        size_t n = 0;
        char *got = st_read_all(fd, &n, 0.1);
        free(got);
        if (n == 0) {
            char c;
            if (recv(fd, &c, 1, MSG_DONTWAIT) == 0) {
                closed = 1;
                break;
            }
        }
    }
    double took = st_now() - t0;
    close(fd);
    assert_true(closed);
    assert_true(took >= 0.4 && took < 2.0);
    /* an idle keep-alive connection too, after its response */
    fd = st_connect(v->port);
    const char *req = "GET /health HTTP/1.1\r\nHost: x\r\n\r\n";
    st_send_all(fd, req, strlen(req));
    size_t n = 0;
    t0 = st_now();
    char *got = st_read_all(fd, &n, 3); /* returns at EOF */
    took = st_now() - t0;
    assert_non_null(strstr(got, "200 OK"));
    assert_true(took >= 0.4 && took < 2.0);
    free(got);
    close(fd);
    stop(v);
}

static void send_raw(int port, const char *data, size_t n, int want_status, int want_close) {
    int fd = st_connect(port);
    assert_true(fd >= 0);
    st_send_all(fd, data, n);
    shutdown(fd, SHUT_WR);
    size_t got_n = 0;
    char *got = st_read_all(fd, &got_n, 5);
    close(fd);
    if (want_status) {
        st_resp r;
        char code[16];
        snprintf(code, sizeof code, " %d ", want_status);
        if (!strstr(got, code)) print_message("expected %d, got: %.200s\n", want_status, got);
        assert_int_equal(st_parse_responses(got, got_n, &r, 1), 1);
        assert_int_equal(r.status, want_status);
        assert_string_equal(st_header(&r, "connection"), want_close ? "close" : "keep-alive");
        st_resp_free(&r);
    }
    free(got);
}

static void test_garbage(void **state) {
    (void)state;
    NEED_MODEL();
    opt o[] = {{SMDIFF_SERVER_MAX_HEADER, 4096}, {SMDIFF_SERVER_MAX_BODY, 10000}};
    srv *v = start(o, 2, NULL);
    send_raw(v->port, "hello there\r\n\r\n", 15, 400, 1);
    send_raw(v->port, "GET / HTTP/9.9\r\n\r\n", 18, 505, 1);
    send_raw(v->port, "GET / HTTP/1.1\r\nContent-Length: -5\r\n\r\n", 39, 400, 1);
    /* random bytes, a fixed seed */
    unsigned x = 12345;
    char junk[2048];
    for (int round = 0; round < 20; round++) {
        size_t n = 1 + (x % sizeof junk);
        for (size_t i = 0; i < n; i++) junk[i] = (char)((x = x * 1103515245u + 12345u) >> 16);
        send_raw(v->port, junk, n, 0, 1);
    }
    /* truncated requests: the peer goes away mid-way */
    const char *full = "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 40\r\n\r\n{\"prompt\":\"Hi\",\"max_tokens\":2}";
    for (size_t cut = 1; cut < strlen(full); cut += 7) send_raw(v->port, full, cut, 0, 1);
    /* oversized headers and bodies */
    char big[6000];
    int n = snprintf(big, sizeof big, "GET /health HTTP/1.1\r\nX-Big: %05000d\r\n\r\n", 1);
    send_raw(v->port, big, (size_t)n, 431, 1);
    const char *huge = "POST /v1/completions HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n{";
    send_raw(v->port, huge, strlen(huge), 413, 1);
    /* a well-formed body that is not what the API wants */
    const char *bad = "POST /v1/completions HTTP/1.1\r\nContent-Length: 12\r\n\r\n{\"prompt\":1}";
    send_raw(v->port, bad, strlen(bad), 400, 0); /* an API error keeps the connection */
    /* still serving, and every connection was let go */
    st_resp r;
    assert_int_equal(st_request(v->port, "POST", "/v1/completions", "{\"prompt\":\"Hi\",\"max_tokens\":2}", NULL, &r), 200);
    st_resp_free(&r);
    assert_true(wait_metric(v->port, "smdiff_connections", 1, 5)); /* the /metrics request itself */
    stop(v);
}

/* Many clients at once: every request answered, 200 or 429, none lost. */
typedef struct client {
    pthread_t th;
    int port, n, ok, busy, other;
} client;

static void *client_thread(void *arg) {
    client *c = arg;
    for (int i = 0; i < c->n; i++) {
        st_resp r;
        int s = st_request(c->port, "POST", "/v1/completions",
                           "{\"prompt\":\"The\",\"max_tokens\":4,\"steps\":2,\"strategy\":\"test_slow\"}", NULL, &r);
        if (s == 200) c->ok++;
        else if (s == 429) c->busy++;
        else c->other++;
        st_resp_free(&r);
    }
    return NULL;
}

static void test_concurrent(void **state) {
    (void)state;
    NEED_MODEL();
    st_register_slow();
    st_slow_ms = 20;
    opt o[] = {{SMDIFF_SERVER_SLOTS, 2}, {SMDIFF_SERVER_QUEUE, 2}};
    srv *v = start(o, 2, NULL);
    enum { N = 12, PER = 4 };
    client c[N];
    for (int i = 0; i < N; i++) {
        c[i] = (client){0};
        c[i].port = v->port;
        c[i].n = PER;
        pthread_create(&c[i].th, NULL, client_thread, &c[i]);
    }
    int ok = 0, busy = 0, other = 0;
    for (int i = 0; i < N; i++) {
        pthread_join(c[i].th, NULL);
        ok += c[i].ok;
        busy += c[i].busy;
        other += c[i].other;
    }
    print_message("concurrent: %d answered 200, %d answered 429\n", ok, busy);
    assert_int_equal(other, 0);
    assert_int_equal(ok + busy, N * PER);
    assert_true(ok >= 4 && busy >= 1);
    assert_int_equal(metric(v->port, "smdiff_requests_total{endpoint=\"/v1/completions\",status=\"200\"}"), ok);
    assert_int_equal(metric(v->port, "smdiff_requests_total{endpoint=\"/v1/completions\",status=\"429\"}"), busy);
    /* the two slots are one batch: while both are busy a forward pass
     * advances both generations, so the passes are fewer than the steps */
    double passes = metric(v->port, "smdiff_batch_steps_total");
    double steps = metric(v->port, "smdiff_batch_sequence_steps_total");
    print_message("concurrent: %.0f batch passes advanced %.0f generation steps\n", passes, steps);
    assert_true(passes > 0 && steps > passes);
    stop(v);
}

/* /health is answered while every slot is busy (the loop never waits). */
static void test_health_while_busy(void **state) {
    (void)state;
    NEED_MODEL();
    st_register_slow();
    st_slow_ms = 50;
    opt o[] = {{SMDIFF_SERVER_SLOTS, 1}, {SMDIFF_SERVER_QUEUE, 0}};
    srv *v = start(o, 2, NULL);
    call a;
    call_start(&a, v->port, k_slow);
    assert_true(wait_metric(v->port, "smdiff_slots_busy", 1, 5));
    for (int i = 0; i < 5; i++) {
        st_resp r;
        double t0 = st_now();
        assert_int_equal(st_request(v->port, "GET", "/health", NULL, NULL, &r), 200);
        assert_true(st_now() - t0 < 0.5);
        json_t *j = body_json(&r);
        assert_int_equal(json_integer_value(json_object_get(j, "slots_busy")), 1);
        json_decref(j);
        st_resp_free(&r);
    }
    call_join(&a);
    assert_int_equal(a.r.status, 200);
    st_resp_free(&a.r);
    stop(v);
}

/* Stop: the queued request gets 503, the running one is aborted after the
 * grace (503, or an error event when streamed); run returns. */
static void test_stop(void **state) {
    (void)state;
    NEED_MODEL();
    st_register_slow();
    st_slow_ms = 50;
    opt o[] = {{SMDIFF_SERVER_SLOTS, 1}, {SMDIFF_SERVER_QUEUE, 1}, {SMDIFF_SERVER_SHUTDOWN_GRACE, 0.2}};
    srv *v = start(o, 3, NULL);
    call a, b;
    call_start(&a, v->port, "{\"prompt\":\"Once\",\"max_tokens\":40,\"steps\":40,\"strategy\":\"test_slow\",\"stream\":true}");
    assert_true(wait_metric(v->port, "smdiff_slots_busy", 1, 5));
    /* the stream has begun (its first step is done) */
    assert_true(wait_metric_cmp(v->port, "smdiff_step_seconds_count", 1, 5, 1));
    call_start(&b, v->port, k_slow);
    assert_true(wait_metric(v->port, "smdiff_queue_depth", 1, 5));
    double t0 = st_now();
    assert_int_equal(smdiff_server_stop(v->s), SMDIFF_OK);
    call_join(&b);
    assert_int_equal(b.r.status, 503);
    assert_string_equal(st_header(&b.r, "retry-after"), "1");
    call_join(&a);
    assert_int_equal(a.r.status, 200);
    char **ev = NULL;
    int n = st_sse_events(a.r.body, &ev);
    assert_true(n >= 2);
    assert_string_equal(ev[n - 1], "[DONE]");
    assert_non_null(strstr(ev[n - 2], "shutting_down"));
    st_free_events(ev, n);
    pthread_join(v->th, NULL);
    assert_true(st_now() - t0 < 1.5); /* grace 0.2 s + a step, not the 2 s of work */
    assert_int_equal(v->run_rc, SMDIFF_OK);
    /* refused now: nothing listens */
    assert_true(st_connect(v->port) < 0);
    st_resp_free(&a.r);
    st_resp_free(&b.r);
    smdiff_server_free(v->s);
    free(v);

    /* a grace long enough lets the running request finish */
    opt o2[] = {{SMDIFF_SERVER_SLOTS, 1}, {SMDIFF_SERVER_SHUTDOWN_GRACE, 10}};
    v = start(o2, 2, NULL);
    st_slow_ms = 20;
    call_start(&a, v->port, k_slow);
    assert_true(wait_metric(v->port, "smdiff_slots_busy", 1, 5));
    stop(v);
    call_join(&a);
    assert_int_equal(a.r.status, 200);
    st_resp_free(&a.r);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_api),        cmocka_unit_test(test_basic_keepalive),
        cmocka_unit_test(test_queue_full), cmocka_unit_test(test_disconnect),
        cmocka_unit_test(test_timeout),    cmocka_unit_test(test_slowloris),
        cmocka_unit_test(test_garbage),    cmocka_unit_test(test_concurrent),
        cmocka_unit_test(test_health_while_busy), cmocka_unit_test(test_stop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
