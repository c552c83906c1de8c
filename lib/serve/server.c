/* server.c -- the public smdiff_server_* API (include/smdiff/smdiff.h,
 * experimental section) and the libuv glue: the listening socket, one
 * uv_tcp_t + uv_timer_t per connection, the async handle the workers and
 * smdiff_server_stop wake the loop with, and the shutdown sequence.
 *
 * Shutdown (smdiff_server_stop, e.g. from SIGTERM): the listener closes;
 * waiting requests get 503; idle connections close; running generations
 * get SMDIFF_SERVER_SHUTDOWN_GRACE seconds to finish, then are aborted at
 * their next step (503, or an error event in a stream); connections still
 * open LINGER_S after that are closed. smdiff_server_run then joins the
 * workers and returns SMDIFF_OK.
 */
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/alloc.h"
#include "core/log.h"
#include "serve.h"

/* After our last byte, how long a closing connection may still send
 * (read and dropped) before it is cut, so a client whose request we refused
 * early (413) reads our answer instead of a reset. */
#define LINGER_S 2.0
/* A connection whose unsent output grows beyond this is cut. */
#define MAX_WRITE_QUEUE (16u << 20)

enum { S_CREATED, S_LISTENING, S_RUNNING, S_DONE };

static const sd_option_def k_defs[] = {
    {SMDIFF_SERVER_PORT, "port", SMDIFF_TYPE_INT, 0, 65535, 8080, 0, 0},
    {SMDIFF_SERVER_SLOTS, "slots", SMDIFF_TYPE_INT, 1, 1024, 1, 0, 0},
    {SMDIFF_SERVER_QUEUE, "queue", SMDIFF_TYPE_INT, 0, 1048576, 8, 0, 0},
    {SMDIFF_SERVER_TIMEOUT, "timeout", SMDIFF_TYPE_DOUBLE, 0, 1e6, 300, 0, 0},
    {SMDIFF_SERVER_READ_TIMEOUT, "read_timeout", SMDIFF_TYPE_DOUBLE, 0, 3600, 10, 1, 0},
    {SMDIFF_SERVER_MAX_BODY, "max_body", SMDIFF_TYPE_INT, 1, 1073741824.0, 1048576, 0, 0},
    {SMDIFF_SERVER_MAX_HEADER, "max_header", SMDIFF_TYPE_INT, 256, 1048576, 16384, 0, 0},
    {SMDIFF_SERVER_MAX_CONNECTIONS, "max_connections", SMDIFF_TYPE_INT, 1, 1048576, 1024, 0, 0},
    {SMDIFF_SERVER_MAX_TOKENS, "max_tokens", SMDIFF_TYPE_INT, 0, 1048576, 0, 0, 0},
    {SMDIFF_SERVER_THREADS, "threads", SMDIFF_TYPE_INT, 0, 1024, 0, 0, 0},
    {SMDIFF_SERVER_SHUTDOWN_GRACE, "shutdown_grace", SMDIFF_TYPE_DOUBLE, 0, 3600, 10, 0, 0},
};

#define N_OPT ((int32_t)(sizeof k_defs / sizeof k_defs[0]))
_Static_assert(N_OPT == SMDIFF_SERVER_OPT_LAST_ - SMDIFF_SERVER_OPT_FIRST_ + 1, "one entry per option");

static const sd_option_table k_options = {k_defs, N_OPT};

typedef struct conn conn;

/* An option's value by its public key. */
#define OPT(s, KEY) ((s)->opt[SD_OPT_SLOT(KEY)])

struct smdiff_server {
    sd_optval opt[N_OPT];
    sd_error err;
    smdiff_model *model;
    char *host, *api_key, *model_name;
    sd_server_core core;
    atomic_int state;
    atomic_int stop_requested;
    int stopping, forced;
    uv_loop_t loop;
    uv_tcp_t listener;
    uv_async_t wake;
    uv_timer_t grace;
    int32_t port;
    conn *conns;
    char readbuf[64 * 1024];
};

struct conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_shutdown_t shutdown;
    smdiff_server *srv;
    sd_http_conn *http;
    conn *prev, *next;
    int handles_open, closing, lingering, close_requested;
    size_t writes_pending;
};

typedef struct write_req {
    uv_write_t req;
    conn *c;
    char *buf;
} write_req;

/* ----------------------------------------------------------- errors */

#define ERR_OF SD_ERR_OF /* core/options.h */

#define REQUIRE(cond, s, ...)                                                \
    do {                                                                     \
        if (!(cond)) return sd_fail(ERR_OF(s), SMDIFF_E_INVAL, __VA_ARGS__); \
    } while (0)

/* ------------------------------------------------------------ options */

SMDIFF_API int32_t smdiff_server_create(smdiff_model *model, smdiff_server **out) {
    REQUIRE(model && out, (smdiff_server *)NULL, "smdiff_server_create: NULL argument");
    int32_t loaded = 0;
    smdiff_model_is_loaded(model, &loaded);
    if (!loaded) return sd_fail(NULL, SMDIFF_E_STATE, "smdiff_server_create: the model is not loaded");
    smdiff_server *s = sd_calloc(1, sizeof *s);
    if (!s || !(s->host = sd_strdup("127.0.0.1"))) {
        sd_free(s);
        return sd_fail(NULL, SMDIFF_E_NOMEM, "out of memory creating a server");
    }
    sd_options_defaults(&k_options, s->opt);
    char name[256];
    size_t need = 0;
    const char *arch = "smdiff";
    smdiff_model_arch(model, &arch);
    if (smdiff_model_meta(model, "general.name", name, sizeof name, &need)) snprintf(name, sizeof name, "%s", arch);
    if (!(s->model_name = sd_strdup(name))) {
        sd_free(s->host);
        sd_free(s);
        return sd_fail(NULL, SMDIFF_E_NOMEM, "out of memory creating a server");
    }
    smdiff_model_retain(model);
    s->model = model;
    atomic_init(&s->state, S_CREATED);
    atomic_init(&s->stop_requested, 0);
    *out = s;
    return SMDIFF_OK;
}

SMDIFF_API void smdiff_server_free(smdiff_server *s) {
    if (!s) return;
    int st = atomic_load(&s->state);
    if (st == S_LISTENING || st == S_RUNNING) {
        /* listened but never ran (or run failed): close what listen opened */
        smdiff_server_stop(s);
        smdiff_server_run(s);
    }
    smdiff_model_free(s->model);
    sd_free(s->host);
    sd_free(s->api_key);
    sd_free(s->model_name);
    sd_free(s);
}

static int32_t settable(smdiff_server *s, const char *fn) {
    REQUIRE(s, s, "%s: server is NULL", fn);
    if (atomic_load(&s->state) != S_CREATED)
        return sd_fail(&s->err, SMDIFF_E_STATE, "%s: options are fixed once the server listens", fn);
    return SMDIFF_OK;
}

SMDIFF_API int32_t smdiff_server_set_int(smdiff_server *s, int32_t key, int64_t value) {
    int32_t rc = settable(s, "smdiff_server_set_int");
    return rc ? rc : sd_option_set_int(&k_options, s->opt, key, value, &s->err);
}

SMDIFF_API int32_t smdiff_server_set_double(smdiff_server *s, int32_t key, double value) {
    int32_t rc = settable(s, "smdiff_server_set_double");
    return rc ? rc : sd_option_set_double(&k_options, s->opt, key, value, &s->err);
}

SD_OPTION_READERS(server, smdiff_server, k_options)

static int32_t set_string(smdiff_server *s, char **slot, const char *v, int allow_empty, const char *fn) {
    int32_t rc = settable(s, fn);
    if (rc) return rc;
    if (!allow_empty && (!v || !*v)) return sd_fail(&s->err, SMDIFF_E_INVAL, "%s: empty value", fn);
    char *copy = v && *v ? sd_strdup(v) : NULL;
    if (v && *v && !copy) return sd_fail(&s->err, SMDIFF_E_NOMEM, "%s: out of memory", fn);
    sd_free(*slot);
    *slot = copy;
    return SMDIFF_OK;
}

SMDIFF_API int32_t smdiff_server_set_host(smdiff_server *s, const char *host) {
    return set_string(s, s ? &s->host : NULL, host, 0, "smdiff_server_set_host");
}

SMDIFF_API int32_t smdiff_server_set_api_key(smdiff_server *s, const char *key) {
    return set_string(s, s ? &s->api_key : NULL, key, 1, "smdiff_server_set_api_key");
}

SMDIFF_API int32_t smdiff_server_set_model_name(smdiff_server *s, const char *name) {
    return set_string(s, s ? &s->model_name : NULL, name, 0, "smdiff_server_set_model_name");
}

SMDIFF_API const char *smdiff_server_last_error(const smdiff_server *s) {
    return s ? s->err.msg : "server is NULL";
}

SMDIFF_API int32_t smdiff_server_port(const smdiff_server *s, int32_t *out) {
    REQUIRE(s && out, s, "smdiff_server_port: NULL argument");
    if (atomic_load(&s->state) == S_CREATED)
        return sd_fail(ERR_OF(s), SMDIFF_E_STATE, "smdiff_server_port: the server is not listening");
    *out = s->port;
    return SMDIFF_OK;
}

/* --------------------------------------------------------- connections */

static void maybe_finish(smdiff_server *s);

static void on_handle_closed(uv_handle_t *h) {
    conn *c = h->data;
    if (--c->handles_open) return;
    smdiff_server *s = c->srv;
    if (c->http) sd_router_conn_lost(&s->core, c->http);
    sd_http_conn_free(c->http);
    if (c->prev) c->prev->next = c->next;
    else s->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    s->core.connections--;
    sd_free(c);
    maybe_finish(s);
}

/* Close both handles now. */
static void conn_destroy(conn *c) {
    if (c->closing) return;
    c->closing = 1;
    /* the job (if any) is told at once, not when the handles are gone */
    if (c->http) sd_router_conn_lost(&c->srv->core, c->http);
    uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
    uv_close((uv_handle_t *)&c->timer, on_handle_closed);
}

static void on_linger_timeout(uv_timer_t *t) { conn_destroy(t->data); }

static void on_shutdown(uv_shutdown_t *req, int status) {
    conn *c = req->data;
    if (status < 0 || c->srv->forced) {
        conn_destroy(c);
        return;
    }
    /* Keep reading (and dropping) until the peer closes, for a while. */
    c->lingering = 1;
    uv_timer_start(&c->timer, on_linger_timeout, (uint64_t)(LINGER_S * 1000), 0);
}

static void begin_close(conn *c) {
    if (c->closing || c->lingering == 2) return;
    c->lingering = 2; /* shutdown requested */
    c->shutdown.data = c;
    if (uv_shutdown(&c->shutdown, (uv_stream_t *)&c->tcp, on_shutdown)) conn_destroy(c);
}

static void on_write(uv_write_t *req, int status) {
    write_req *w = (write_req *)req;
    conn *c = w->c;
    sd_free(w->buf);
    sd_free(w);
    c->writes_pending--;
    if (status < 0) {
        conn_destroy(c);
        return;
    }
    if (c->close_requested && !c->writes_pending) begin_close(c);
}

static void io_write(void *io, char *buf, size_t n) {
    conn *c = io;
    write_req *w = c->closing ? NULL : sd_malloc(sizeof *w);
    if (!w || uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) > MAX_WRITE_QUEUE) {
        sd_free(buf);
        sd_free(w);
        conn_destroy(c);
        return;
    }
    w->c = c;
    w->buf = buf;
    uv_buf_t b = uv_buf_init(buf, (unsigned)n);
    if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_write)) {
        sd_free(buf);
        sd_free(w);
        conn_destroy(c);
        return;
    }
    c->writes_pending++;
}

static void io_close(void *io) {
    conn *c = io;
    c->close_requested = 1;
    uv_timer_stop(&c->timer);
    if (!c->writes_pending) begin_close(c);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
    (void)suggested;
    conn *c = h->data;
    *buf = uv_buf_init(c->srv->readbuf, sizeof c->srv->readbuf);
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf) {
    conn *c = st->data;
    if (n < 0) { /* EOF, reset: the client is gone, so is its generation */
        conn_destroy(c);
        return;
    }
    if (n == 0 || c->lingering || c->close_requested) return;
    sd_http_conn_feed(c->http, buf->base, (size_t)n);
}

static void io_pause(void *io, int pause) {
    conn *c = io;
    if (c->closing) return;
    if (pause) uv_read_stop((uv_stream_t *)&c->tcp);
    else uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

static void on_read_timeout(uv_timer_t *t) {
    conn *c = t->data;
    if (!sd_http_conn_busy(c->http)) conn_destroy(c); /* slowloris, or idle keep-alive */
}

static void io_busy(void *io, int busy) {
    conn *c = io;
    if (c->closing || c->close_requested) return;
    if (busy) {
        uv_timer_stop(&c->timer);
        return;
    }
    double t = OPT(c->srv, SMDIFF_SERVER_READ_TIMEOUT).d;
    uv_timer_start(&c->timer, on_read_timeout, (uint64_t)(t * 1000.0 + 0.5), 0);
    if (c->srv->stopping) sd_http_conn_lost(c->http); /* no new requests once stopping */
}

static void on_connection(uv_stream_t *l, int status) {
    smdiff_server *s = l->data;
    if (status < 0) return;
    conn *c = sd_calloc(1, sizeof *c);
    if (!c) return; /* the pending connection stays in the backlog */
    c->srv = s;
    uv_tcp_init(&s->loop, &c->tcp);
    uv_timer_init(&s->loop, &c->timer);
    c->tcp.data = c->timer.data = c;
    c->handles_open = 2;
    sd_http_io io = {io_write, io_close, io_pause, io_busy, c};
    sd_http_limits lim = {(size_t)OPT(s, SMDIFF_SERVER_MAX_HEADER).i, (size_t)OPT(s, SMDIFF_SERVER_MAX_BODY).i};
    c->http = sd_http_conn_create(&io, &lim, sd_router_handle, &s->core);
    c->next = s->conns;
    if (s->conns) s->conns->prev = c;
    s->conns = c;
    s->core.connections++;
    if (uv_accept(l, (uv_stream_t *)&c->tcp) || !c->http || s->core.connections > OPT(s, SMDIFF_SERVER_MAX_CONNECTIONS).i || s->stopping) {
        conn_destroy(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    io_busy(c, 0);
}

/* ------------------------------------------------------------ shutdown */

static void on_closed_quietly(uv_handle_t *h) { (void)h; }

static void maybe_finish(smdiff_server *s) {
    if (!s->stopping || s->conns || s->core.jobs_alive) return;
    if (!uv_is_closing((uv_handle_t *)&s->wake)) uv_close((uv_handle_t *)&s->wake, on_closed_quietly);
    if (!uv_is_closing((uv_handle_t *)&s->grace)) uv_close((uv_handle_t *)&s->grace, on_closed_quietly);
}

/* Phase 1 (the grace is over): abort what still runs, at its next step.
 * Phase 2 (LINGER_S later): cut every connection left. */
static void on_grace(uv_timer_t *t) {
    smdiff_server *s = t->data;
    if (!s->forced) {
        s->forced = 1;
        for (conn *c = s->conns; c; c = c->next) {
            sd_job *j = c->http ? sd_http_conn_user(c->http) : NULL;
            int none = SD_ABORT_NONE;
            if (j) atomic_compare_exchange_strong(&j->abort_reason, &none, SD_ABORT_SHUTDOWN);
        }
        uv_timer_start(&s->grace, on_grace, (uint64_t)(LINGER_S * 1000), 0);
        return;
    }
    for (conn *c = s->conns, *next; c; c = next) {
        next = c->next;
        conn_destroy(c);
    }
}

static void begin_stop(smdiff_server *s) {
    if (s->stopping) return;
    s->stopping = 1;
    s->core.draining = 1;
    SD_LOGI("server: stopping (grace %g s)", OPT(s, SMDIFF_SERVER_SHUTDOWN_GRACE).d);
    uv_close((uv_handle_t *)&s->listener, on_closed_quietly);
    sd_api_error e;
    sd_api_fail(&e, 503, "server_error", "shutting_down", NULL, "the server is shutting down");
    for (sd_job *j = sd_slots_take_waiting(s->core.slots), *next; j; j = next) {
        next = j->next;
        sd_job_fail(j, &e);
    }
    sd_core_deliver(&s->core);
    for (conn *c = s->conns, *next; c; c = next) {
        next = c->next;
        sd_http_conn_set_draining(c->http);
        if (!sd_http_conn_busy(c->http)) sd_http_conn_lost(c->http);
    }
    uv_timer_start(&s->grace, on_grace, (uint64_t)(OPT(s, SMDIFF_SERVER_SHUTDOWN_GRACE).d * 1000.0 + 0.5), 0);
    maybe_finish(s);
}

static void on_wake(uv_async_t *a) {
    smdiff_server *s = a->data;
    if (atomic_load(&s->stop_requested)) begin_stop(s);
    sd_core_deliver(&s->core);
    maybe_finish(s);
}

static void notify(sd_server_core *core) {
    smdiff_server *s = core->owner;
    uv_async_send(&s->wake);
}

/* ------------------------------------------------------------ listen, run */

static void core_init(smdiff_server *s) {
    sd_server_core *c = &s->core;
    c->model = s->model;
    c->model_name = s->model_name;
    c->api_key = s->api_key;
    c->timeout = OPT(s, SMDIFF_SERVER_TIMEOUT).d;
    c->threads = (int32_t)OPT(s, SMDIFF_SERVER_THREADS).i;
    c->n_slots = (size_t)OPT(s, SMDIFF_SERVER_SLOTS).i;
    c->queue_capacity = (size_t)OPT(s, SMDIFF_SERVER_QUEUE).i;
    int64_t v = 0;
    smdiff_model_property(s->model, SMDIFF_PROP_CONTEXT, &c->context);
    smdiff_model_property(s->model, SMDIFF_PROP_VOCAB_SIZE, &c->vocab);
    smdiff_model_property(s->model, SMDIFF_PROP_MASK_ID, &c->mask_id);
    c->eos_id = smdiff_model_property(s->model, SMDIFF_PROP_EOS_ID, &v) ? -1 : v;
    c->bos_id = smdiff_model_property(s->model, SMDIFF_PROP_BOS_ID, &v) ? -1 : v;
    c->max_tokens = OPT(s, SMDIFF_SERVER_MAX_TOKENS).i > 0 && OPT(s, SMDIFF_SERVER_MAX_TOKENS).i < c->context ? OPT(s, SMDIFF_SERVER_MAX_TOKENS).i : c->context;
    c->notify = notify;
    c->owner = s;
}

/* Undo a failed listen: close what was opened, let the loop finish. */
static int32_t listen_failed(smdiff_server *s, int32_t code, const char *what, int uverr) {
    uv_handle_t *hs[] = {(uv_handle_t *)&s->listener, (uv_handle_t *)&s->wake, (uv_handle_t *)&s->grace};
    for (size_t i = 0; i < 3; i++)
        if (hs[i]->loop == &s->loop && !uv_is_closing(hs[i])) uv_close(hs[i], on_closed_quietly);
    uv_run(&s->loop, UV_RUN_DEFAULT);
    uv_loop_close(&s->loop);
    sd_slots_free(s->core.slots);
    sd_metrics_free(s->core.metrics);
    uv_mutex_destroy(&s->core.out_mu);
    memset(&s->core, 0, sizeof s->core);
    return sd_fail(&s->err, code, "%s%s%s", what, uverr ? ": " : "", uverr ? uv_strerror(uverr) : "");
}

SMDIFF_API int32_t smdiff_server_listen(smdiff_server *s) {
    REQUIRE(s, s, "smdiff_server_listen: server is NULL");
    if (atomic_load(&s->state) != S_CREATED)
        return sd_fail(&s->err, SMDIFF_E_STATE, "smdiff_server_listen: the server listens already");
    if (uv_loop_init(&s->loop)) return sd_fail(&s->err, SMDIFF_E_INTERNAL, "cannot create an event loop");
    memset(&s->core, 0, sizeof s->core);
    if (uv_mutex_init(&s->core.out_mu)) {
        uv_loop_close(&s->loop);
        return sd_fail(&s->err, SMDIFF_E_THREAD, "cannot create a mutex");
    }
    core_init(s);
    s->listener.loop = s->wake.loop = NULL;
    s->grace.loop = NULL;
    char msg[300];
    char port[16];
    snprintf(port, sizeof port, "%d", (int)OPT(s, SMDIFF_SERVER_PORT).i);
    struct addrinfo hints = {0};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    uv_getaddrinfo_t gai;
    int rc = uv_getaddrinfo(&s->loop, &gai, NULL, s->host, port, &hints);
    if (rc) {
        snprintf(msg, sizeof msg, "cannot resolve host '%s'", s->host);
        return listen_failed(s, SMDIFF_E_IO, msg, rc);
    }
    uv_tcp_init(&s->loop, &s->listener);
    s->listener.data = s;
    rc = uv_tcp_bind(&s->listener, gai.addrinfo->ai_addr, 0);
    uv_freeaddrinfo(gai.addrinfo);
    if (!rc) rc = uv_listen((uv_stream_t *)&s->listener, 511, on_connection);
    if (rc) {
        snprintf(msg, sizeof msg, "cannot listen on %s:%s", s->host, port);
        return listen_failed(s, SMDIFF_E_IO, msg, rc);
    }
    struct sockaddr_storage addr;
    int len = sizeof addr;
    uv_tcp_getsockname(&s->listener, (struct sockaddr *)&addr, &len);
    s->port = ntohs(addr.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&addr)->sin6_port
                                               : ((struct sockaddr_in *)&addr)->sin_port);
    uv_async_init(&s->loop, &s->wake, on_wake);
    uv_timer_init(&s->loop, &s->grace);
    s->wake.data = s->grace.data = s;
    if (!(s->core.metrics = sd_metrics_create())) return listen_failed(s, SMDIFF_E_NOMEM, "out of memory", 0);
    if (!(s->core.slots = sd_slots_create(s->core.n_slots, s->core.model, s->core.metrics)))
        return listen_failed(s, SMDIFF_E_THREAD, "cannot start the worker thread and its batch", 0);
    atomic_store(&s->state, S_LISTENING);
    SD_LOGI("server: listening on %s port %d, %zu slots, queue %zu", s->host, (int)s->port, s->core.n_slots,
            s->core.queue_capacity);
    return SMDIFF_OK;
}

/* Writes to a socket the peer closed raise SIGPIPE; block it on the loop
 * thread so a write returns EPIPE instead, and drop any such signal left
 * pending before restoring the host's mask. */
static void sigpipe_block(sigset_t *old) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, old);
}

static void sigpipe_restore(const sigset_t *old) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    struct timespec zero = {0, 0};
    while (sigtimedwait(&set, NULL, &zero) > 0) {
    }
    pthread_sigmask(SIG_SETMASK, old, NULL);
}

SMDIFF_API int32_t smdiff_server_run(smdiff_server *s) {
    REQUIRE(s, s, "smdiff_server_run: server is NULL");
    int expected = S_LISTENING;
    if (!atomic_compare_exchange_strong(&s->state, &expected, S_RUNNING))
        return sd_fail(&s->err, SMDIFF_E_STATE, "smdiff_server_run: %s",
                        expected == S_CREATED ? "call smdiff_server_listen first" : "the server has run already");
    sigset_t old;
    sigpipe_block(&old);
    if (atomic_load(&s->stop_requested)) begin_stop(s);
    uv_run(&s->loop, UV_RUN_DEFAULT);
    sigpipe_restore(&old);
    sd_slots_free(s->core.slots);
    s->core.slots = NULL;
    sd_core_deliver(&s->core); /* nothing is left; frees what a race left */
    uv_loop_close(&s->loop);
    sd_metrics_free(s->core.metrics);
    s->core.metrics = NULL;
    uv_mutex_destroy(&s->core.out_mu);
    atomic_store(&s->state, S_DONE);
    SD_LOGI("server: stopped");
    return SMDIFF_OK;
}

SMDIFF_API int32_t smdiff_server_stop(smdiff_server *s) {
    if (!s) return SMDIFF_E_INVAL; /* no message: this may run in a signal handler */
    atomic_store(&s->stop_requested, 1);
    int st = atomic_load(&s->state);
    if (st == S_LISTENING || st == S_RUNNING) uv_async_send(&s->wake);
    return SMDIFF_OK;
}
