/* fuzz_server_request.c -- libFuzzer target for the server's request
 * handling (lib/serve/): the input is the byte stream a client sends on one
 * connection -- HTTP framing, headers, bodies (JSON or not), several
 * pipelined requests -- fed in pieces to a connection whose output goes to
 * memory, routed and answered inline, generation included (on the bundled
 * model, max_tokens capped at 2 so an input stays fast).
 *
 * Properties checked (a violation traps):
 *   - whatever the server writes parses as a sequence of HTTP/1.1
 *     responses (http-parser in response mode), with a known status;
 *   - every answer to an /v1/ request with a JSON content type is JSON, and
 *     an error status carries {"error": {"message": ...}};
 *   - no job outlives its connection (jobs_alive returns to 0).
 * The first input byte sets the size of the pieces the rest is fed in. */
#include <http_parser.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "serve/serve.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                                                                          \
    do {                                                                                  \
        if (!(c)) {                                                                       \
            fprintf(stderr, "fuzz_server_request: check failed: %s (line %d)\n", #c, __LINE__); \
            __builtin_trap();                                                             \
        }                                                                                 \
    } while (0)

static sd_server_core core;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    const char *path = getenv("SMDIFF_FUZZ_MODEL");
    if (!path) path = "models/smdiff-gutenberg-18m-sm.gguf";
    smdiff_model *m = NULL;
    if (smdiff_model_create(&m) || smdiff_model_load_file(m, path)) {
        fprintf(stderr, "fuzz_server_request: cannot load %s (run from the repository root or set "
                        "SMDIFF_FUZZ_MODEL)\n", path);
        exit(1);
    }
    core.model = m;
    core.model_name = "fuzz";
    core.api_key = NULL;
    core.threads = 1;
    smdiff_model_property(m, SMDIFF_PROP_CONTEXT, &core.context);
    smdiff_model_property(m, SMDIFF_PROP_VOCAB_SIZE, &core.vocab);
    smdiff_model_property(m, SMDIFF_PROP_MASK_ID, &core.mask_id);
    smdiff_model_property(m, SMDIFF_PROP_EOS_ID, &core.eos_id);
    smdiff_model_property(m, SMDIFF_PROP_BOS_ID, &core.bos_id);
    core.max_tokens = 2;
    core.n_slots = 1;
    core.metrics = sd_metrics_create();
    uv_mutex_init(&core.out_mu);
    return 0;
}

typedef struct sink {
    sd_sbuf out;
    int closed;
} sink;

static void s_write(void *io, char *buf, size_t n) {
    sink *s = io;
    CHECK(!s->closed); /* nothing is written after close */
    sd_sbuf_add(&s->out, buf, n);
    sd_free(buf);
}
static void s_close(void *io) { ((sink *)io)->closed++; }
static void s_pause(void *io, int p) { (void)io, (void)p; }
static void s_busy(void *io, int b) { (void)io, (void)b; }

/* ---- checking what was written */

typedef struct resp {
    int status, json, in_value, field_is_ctype;
    sd_sbuf body;
    char field[32];
    size_t field_n;
} resp;

static int r_begin(http_parser *p) {
    resp *r = p->data;
    r->body.n = 0;
    r->json = 0;
    r->field_n = 0;
    r->in_value = 0;
    return 0;
}
static int r_field(http_parser *p, const char *at, size_t n) {
    resp *r = p->data;
    if (r->in_value) r->field_n = 0, r->in_value = 0;
    for (size_t i = 0; i < n && r->field_n < sizeof r->field - 1; i++) r->field[r->field_n++] = at[i];
    r->field[r->field_n] = '\0';
    return 0;
}
static int r_value(http_parser *p, const char *at, size_t n) {
    resp *r = p->data;
    r->in_value = 1;
    if (!strcmp(r->field, "Content-Type") && n >= 16 && !memcmp(at, "application/json", 16)) r->json = 1;
    return 0;
}
static int r_body(http_parser *p, const char *at, size_t n) {
    sd_sbuf_add(&((resp *)p->data)->body, at, n);
    return 0;
}
static int r_done(http_parser *p) {
    resp *r = p->data;
    int st = (int)p->status_code;
    CHECK(st == 100 || (st >= 200 && st <= 505));
    if (st == 100) return 0;
    if (r->json) {
        json_error_t e;
        json_t *v = json_loadb(r->body.data ? r->body.data : "", r->body.n, 0, &e);
        CHECK(v);
        if (st >= 400) CHECK(json_is_string(json_object_get(json_object_get(v, "error"), "message")));
        json_decref(v);
    }
    return 0;
}

static void check_output(const sd_sbuf *out) {
    static const http_parser_settings set = {.on_message_begin = r_begin, .on_header_field = r_field,
                                             .on_header_value = r_value, .on_body = r_body,
                                             .on_message_complete = r_done};
    resp r = {0};
    http_parser p;
    http_parser_init(&p, HTTP_RESPONSE);
    p.data = &r;
    size_t k = http_parser_execute(&p, &set, out->data ? out->data : "", out->n);
    CHECK(k == out->n && HTTP_PARSER_ERRNO(&p) == HPE_OK);
    sd_sbuf_free(&r.body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!size) return 0;
    size_t piece = 1 + data[0] % 64;
    if (data[0] >= 192) piece = size; /* often all at once */
    data++;
    size--;
    sink s = {0};
    sd_http_io io = {s_write, s_close, s_pause, s_busy, &s};
    sd_http_limits lim = {4096, 16384};
    sd_http_conn *c = sd_http_conn_create(&io, &lim, sd_router_handle, &core);
    CHECK(c);
    for (size_t off = 0; off < size && !s.closed; off += piece)
        sd_http_conn_feed(c, (const char *)data + off, size - off < piece ? size - off : piece);
    sd_router_conn_lost(&core, c);
    sd_http_conn_lost(c);
    sd_http_conn_free(c);
    CHECK(core.jobs_alive == 0);
    check_output(&s.out);
    sd_sbuf_free(&s.out);
    return 0;
}
