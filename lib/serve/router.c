/* router.c -- method + path to an endpoint; authentication; the small
 * endpoints answered on the loop thread (/, /health, /metrics, /v1/models);
 * admission of generations (slots + queue, else 429) and the delivery of
 * their output from the workers back to the connections. */
#include <http_parser.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "serve.h"
#include "smdiff/smdiff_decoder.h"

#define JSON "application/json"

static void answer(sd_server_core *core, sd_http_conn *c, sd_endpoint ep, double t0, int status,
                   const char *ctype, const char *body, size_t n, const char *extra) {
    sd_metrics_request(core->metrics, ep, status, sd_now() - t0);
    sd_http_respond(c, status, ctype, body, n, extra);
}

static void answer_error(sd_server_core *core, sd_http_conn *c, sd_endpoint ep, double t0,
                         const sd_api_error *e, const char *extra) {
    size_t n = 0;
    char *body = sd_error_json(e, &n);
    answer(core, c, ep, t0, e->status, JSON, body ? body : "", body ? n : 0, extra);
    sd_free(body);
}

static void answer_json(sd_server_core *core, sd_http_conn *c, sd_endpoint ep, double t0, int status,
                        json_t *v) {
    size_t n = 0;
    char *s = sd_json_take(v, &n);
    if (!s) {
        sd_api_error e;
        sd_api_fail(&e, 500, "server_error", NULL, NULL, "out of memory");
        answer_error(core, c, ep, t0, &e, NULL);
        return;
    }
    answer(core, c, ep, t0, status, JSON, s, n, NULL);
    sd_free(s);
}

/* ------------------------------------------------------ small endpoints */

static void counts(sd_server_core *core, size_t *busy, size_t *waiting) {
    *busy = *waiting = 0;
    if (core->slots) sd_slots_counts(core->slots, busy, waiting);
}

static void health(sd_server_core *core, sd_http_conn *c, double t0) {
    size_t busy, waiting;
    counts(core, &busy, &waiting);
    json_t *o = json_object();
    json_object_set_new(o, "status", json_string(core->draining ? "shutting down" : "ok"));
    json_object_set_new(o, "slots", json_integer((json_int_t)core->n_slots));
    json_object_set_new(o, "slots_busy", json_integer((json_int_t)busy));
    json_object_set_new(o, "queue_depth", json_integer((json_int_t)waiting));
    json_object_set_new(o, "queue_capacity", json_integer((json_int_t)core->queue_capacity));
    answer_json(core, c, SD_EP_HEALTH, t0, core->draining ? 503 : 200, o);
}

static void metrics(sd_server_core *core, sd_http_conn *c, double t0) {
    size_t busy, waiting;
    counts(core, &busy, &waiting);
    sd_gauges g = {(int64_t)core->n_slots, (int64_t)busy, (int64_t)waiting, (int64_t)core->queue_capacity,
                   core->connections};
    /* This request is counted before the exposition it appears in. */
    sd_metrics_request(core->metrics, SD_EP_METRICS, 200, sd_now() - t0);
    sd_sbuf b = {0};
    if (sd_metrics_render(core->metrics, &g, &b)) {
        sd_sbuf_free(&b);
        sd_http_respond(c, 500, "text/plain", "out of memory\n", 14, NULL);
        return;
    }
    sd_http_respond(c, 200, "text/plain; version=0.0.4; charset=utf-8", b.data, b.n, NULL);
    sd_sbuf_free(&b);
}

static json_t *model_object(const sd_server_core *core) {
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(core->model_name));
    json_object_set_new(o, "object", json_string("model"));
    json_object_set_new(o, "created", json_integer(0));
    json_object_set_new(o, "owned_by", json_string("smdiff"));
    /* smdiff's extension: what a client needs to offer diffusion settings */
    json_t *x = json_object();
    const char *arch = NULL;
    smdiff_model_arch(core->model, &arch);
    json_object_set_new(x, "architecture", json_string(arch ? arch : ""));
    json_object_set_new(x, "context_length", json_integer(core->context));
    json_object_set_new(x, "vocab_size", json_integer(core->vocab));
    json_object_set_new(x, "max_tokens", json_integer(core->max_tokens));
    json_t *strategies = json_array();
    size_t n = 0;
    smdiff_decoder_count(&n);
    for (size_t i = 0; i < n; i++) {
        const char *name = NULL, *desc = NULL;
        if (!smdiff_decoder_name(i, &name, &desc) && name) json_array_append_new(strategies, json_string(name));
    }
    json_object_set_new(x, "strategies", strategies);
    smdiff_softmask *sm = NULL;
    if (!smdiff_softmask_create_from_model(core->model, &sm)) {
        json_t *s = json_object();
        int64_t mode = 0, k = 0;
        double v = 0;
        static const char *const modes[] = {"off", "entropy", "constant"};
        smdiff_softmask_get_int(sm, SMDIFF_SM_MODE, &mode);
        smdiff_softmask_get_int(sm, SMDIFF_SM_TOPK, &k);
        json_object_set_new(s, "mode", json_string(modes[mode >= 0 && mode <= 2 ? mode : 0]));
        json_object_set_new(s, "topk", json_integer(k));
        smdiff_softmask_get_double(sm, SMDIFF_SM_SCALE, &v);
        json_object_set_new(s, "scale", json_real(v));
        smdiff_softmask_get_double(sm, SMDIFF_SM_STEEPNESS, &v);
        json_object_set_new(s, "steepness", json_real(v));
        smdiff_softmask_get_double(sm, SMDIFF_SM_CENTRE, &v);
        json_object_set_new(s, "centre", json_real(v));
        json_object_set_new(x, "softmask", s);
        smdiff_softmask_free(sm);
    }
    json_object_set_new(o, "smdiff", x);
    return o;
}

static void models(sd_server_core *core, sd_http_conn *c, double t0, const char *id) {
    if (id) {
        if (strcmp(id, core->model_name)) {
            sd_api_error e;
            sd_api_fail(&e, 404, "invalid_request_error", "model_not_found", "model",
                        "The model '%s' does not exist", id);
            answer_error(core, c, SD_EP_MODELS, t0, &e, NULL);
            return;
        }
        answer_json(core, c, SD_EP_MODELS, t0, 200, model_object(core));
        return;
    }
    json_t *o = json_object(), *data = json_array();
    json_array_append_new(data, model_object(core));
    json_object_set_new(o, "object", json_string("list"));
    json_object_set_new(o, "data", data);
    answer_json(core, c, SD_EP_MODELS, t0, 200, o);
}

/* -------------------------------------------------------- generations */

static void generate(sd_server_core *core, sd_http_conn *c, const sd_http_req *r, sd_endpoint ep, double t0) {
    sd_api_error e;
    sd_gen_request req;
    if (core->draining) {
        sd_api_fail(&e, 503, "server_error", "shutting_down", NULL, "the server is shutting down");
        answer_error(core, c, ep, t0, &e, "Retry-After: 1\r\n");
        return;
    }
    if (sd_request_parse(r->body, r->body_len, ep == SD_EP_CHAT, &req, &e)) {
        answer_error(core, c, ep, t0, &e, NULL);
        return;
    }
    if (req.model && strcmp(req.model, core->model_name)) {
        sd_api_fail(&e, 404, "invalid_request_error", "model_not_found", "model",
                    "The model '%s' does not exist; this server has '%s'", req.model, core->model_name);
        sd_request_free(&req);
        answer_error(core, c, ep, t0, &e, NULL);
        return;
    }
    if ((size_t)core->jobs_alive >= core->n_slots + core->queue_capacity) {
        sd_api_fail(&e, 429, "rate_limit_error", "queue_full", NULL,
                    "all %zu generation slots are busy and %zu requests are waiting; retry later",
                    core->n_slots, core->queue_capacity);
        sd_request_free(&req);
        answer_error(core, c, ep, t0, &e, "Retry-After: 1\r\n");
        return;
    }
    sd_job *j = sd_job_create(core, &req, ep, &e);
    if (!j) {
        sd_request_free(&req);
        answer_error(core, c, ep, t0, &e, NULL);
        return;
    }
    j->t_arrival = t0;
    if (core->timeout > 0) j->deadline = t0 + core->timeout;
    j->conn = c;
    sd_http_conn_set_user(c, j);
    if (!core->slots) { /* inline: tests and the fuzz target */
        sd_job_run(j);
        sd_core_deliver(core);
    } else if (sd_slots_submit(core->slots, j)) {
        sd_api_fail(&e, 503, "server_error", "shutting_down", NULL, "the server is shutting down");
        sd_job_fail(j, &e);
        sd_core_deliver(core);
    }
}

void sd_core_post(sd_server_core *core, sd_job *j, const char *data, size_t n, int streaming, int finished,
                  int status, const char *extra) {
    /* One critical section: once it ends the loop may deliver the job and,
     * if it is finished, free it, so the caller must not touch j again. */
    uv_mutex_lock(&core->out_mu);
    if (n) sd_sbuf_add(&j->out.data, data, n);
    if (streaming) j->out.streaming = 1;
    if (finished) {
        j->out.finished = 1;
        j->out.status = status;
        j->out.extra = extra;
    }
    if (!j->out.dirty) {
        j->out.dirty = 1;
        j->ready_next = core->ready;
        core->ready = j;
    }
    uv_mutex_unlock(&core->out_mu);
    if (core->notify) core->notify(core);
}

static const char k_sse_headers[] = "Cache-Control: no-cache\r\nX-Accel-Buffering: no\r\n";

size_t sd_core_deliver(sd_server_core *core) {
    uv_mutex_lock(&core->out_mu);
    sd_job *list = core->ready;
    core->ready = NULL;
    uv_mutex_unlock(&core->out_mu);
    size_t freed = 0;
    while (list) {
        sd_job *j = list;
        list = j->ready_next;
        uv_mutex_lock(&core->out_mu);
        j->out.dirty = 0;
        sd_sbuf data = j->out.data;
        memset(&j->out.data, 0, sizeof j->out.data);
        int streaming = j->out.streaming, finished = j->out.finished, status = j->out.status;
        const char *extra = j->out.extra;
        uv_mutex_unlock(&core->out_mu);
        sd_http_conn *c = j->conn;
        if (c && streaming && !j->head_sent) {
            sd_http_stream_begin(c, 200, "text/event-stream; charset=utf-8", k_sse_headers);
            j->head_sent = 1;
        }
        if (c && j->head_sent && data.n) sd_http_stream_send(c, data.data, data.n);
        if (finished) {
            if (c) sd_http_conn_set_user(c, NULL);
            if (c && j->head_sent) sd_http_stream_end(c);
            else if (c) sd_http_respond(c, status, JSON, data.data ? data.data : "", data.n, extra);
            if (c || status != 499) sd_metrics_request(core->metrics, j->ep, j->head_sent ? 200 : status,
                                                      sd_now() - j->t_arrival);
            sd_job_free(j);
            freed++;
        }
        sd_sbuf_free(&data);
    }
    return freed;
}

void sd_router_conn_lost(sd_server_core *core, sd_http_conn *c) {
    sd_job *j = sd_http_conn_user(c);
    if (!j) return;
    sd_http_conn_set_user(c, NULL);
    j->conn = NULL;
    int none = SD_ABORT_NONE;
    atomic_compare_exchange_strong(&j->abort_reason, &none, SD_ABORT_DISCONNECT);
    if (core->slots && sd_slots_cancel(core->slots, j)) { /* it never ran */
        sd_metrics_abort(core->metrics, SD_ABORT_DISCONNECT);
        sd_job_free(j);
    }
}

/* ------------------------------------------------------------- routing */

/* Constant-time comparison, so the key cannot be guessed byte by byte
 * from response times. */
static int key_matches(const char *auth, const char *key) {
    static const char bearer[] = "Bearer ";
    if (!auth || strncmp(auth, bearer, sizeof bearer - 1)) return 0;
    const char *given = auth + sizeof bearer - 1;
    size_t n = strlen(given), m = strlen(key);
    unsigned diff = (unsigned)(n ^ m);
    for (size_t i = 0; i < m; i++) diff |= (unsigned char)key[i] ^ (unsigned char)(i < n ? given[i] : 0);
    return diff == 0;
}

typedef struct route {
    const char *path;
    int prefix;     /* path is a prefix (/v1/models/ID) */
    int method;     /* HTTP_GET, HTTP_POST */
    sd_endpoint ep;
    int auth;
} route;

static const route k_routes[] = {
    {"/", 0, HTTP_GET, SD_EP_PLAYGROUND, 0},
    {"/health", 0, HTTP_GET, SD_EP_HEALTH, 0},
    {"/metrics", 0, HTTP_GET, SD_EP_METRICS, 0},
    {"/v1/models", 0, HTTP_GET, SD_EP_MODELS, 1},
    {"/v1/models/", 1, HTTP_GET, SD_EP_MODELS, 1},
    {"/v1/completions", 0, HTTP_POST, SD_EP_COMPLETIONS, 1},
    {"/v1/chat/completions", 0, HTTP_POST, SD_EP_CHAT, 1},
};

void sd_router_handle(void *ctx, sd_http_conn *c, const sd_http_req *r) {
    sd_server_core *core = ctx;
    double t0 = sd_now();
    const route *rt = NULL;
    for (size_t i = 0; i < sizeof k_routes / sizeof k_routes[0] && !rt; i++) {
        size_t n = strlen(k_routes[i].path);
        if (k_routes[i].prefix ? !strncmp(r->path, k_routes[i].path, n) && r->path[n] : !strcmp(r->path, k_routes[i].path))
            rt = &k_routes[i];
    }
    sd_api_error e;
    const char *method = http_method_str((enum http_method)r->method);
    if (!rt) {
        sd_api_fail(&e, 404, "invalid_request_error", "unknown_url", NULL, "Invalid URL (%s %s)", method, r->path);
        answer_error(core, c, SD_EP_OTHER, t0, &e, NULL);
        return;
    }
    if (r->method != rt->method) {
        const char *allow = rt->method == HTTP_GET ? "Allow: GET\r\n" : "Allow: POST\r\n";
        sd_api_fail(&e, 405, "invalid_request_error", "method_not_allowed", NULL,
                    "Method %s is not allowed for %s; use %s", method, r->path,
                    http_method_str((enum http_method)rt->method));
        answer_error(core, c, rt->ep, t0, &e, allow);
        return;
    }
    if (rt->auth && core->api_key && !key_matches(r->auth, core->api_key)) {
        sd_api_fail(&e, 401, "invalid_request_error", "invalid_api_key", NULL,
                    r->auth ? "Incorrect API key provided."
                            : "You didn't provide an API key. Send it as 'Authorization: Bearer KEY'.");
        answer_error(core, c, rt->ep, t0, &e, "WWW-Authenticate: Bearer\r\n");
        return;
    }
    switch (rt->ep) {
    case SD_EP_PLAYGROUND: {
        size_t n = 0;
        const char *html = sd_playground_html(&n);
        answer(core, c, rt->ep, t0, 200, "text/html; charset=utf-8", html, n, NULL);
        break;
    }
    case SD_EP_HEALTH: health(core, c, t0); break;
    case SD_EP_METRICS: metrics(core, c, t0); break;
    case SD_EP_MODELS: models(core, c, t0, rt->prefix ? r->path + strlen(rt->path) : NULL); break;
    default: generate(core, c, r, rt->ep, t0); break;
    }
}
