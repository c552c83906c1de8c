/* http.c -- one HTTP/1.1 connection over any byte transport.
 *
 * Parsing is http-parser's (Debian libhttp-parser-dev). We chose it over
 * h2o (libh2o-dev), the other well-kept candidate, for three reasons:
 *   - h2o stops reading a connection while its request is being answered,
 *     so it cannot notice a client that goes away during a long
 *     non-streamed generation; the server must, to free the slot (the
 *     client's FIN arrives as EOF on a socket we keep reading);
 *   - http-parser is a pure parser with no I/O of its own, so the same code
 *     runs on libuv sockets, in unit tests and under libFuzzer from memory;
 *   - it adds no OpenSSL, zlib or wslay to every program that links
 *     libsmdiff, and ships a static library.
 * http-parser handles the request line, headers, Content-Length and chunked
 * request bodies, and tells whether the connection stays open
 * (http_should_keep_alive). What remains here is state: limits, one
 * request at a time with pipelined bytes kept for later, and writing
 * responses (status line, headers, chunked framing of streams).
 */
#include <http_parser.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "serve.h"

/* Pipelined input kept while a request is answered; beyond it reading
 * pauses until the response is done. */
#define PENDING_MAX (64 * 1024)

enum { HDR_OTHER, HDR_AUTH, HDR_EXPECT };

struct sd_http_conn {
    http_parser parser;
    sd_http_io io;
    sd_http_limits lim;
    sd_http_handler handler;
    void *ctx, *user;
    /* the request being received */
    sd_sbuf url, field, auth, expect, body, path;
    int value_last;    /* the previous header callback was a value */
    int hdr;           /* HDR_* the current value belongs to */
    size_t head_bytes;
    int error_status;  /* set by a callback that refused the request */
    /* the connection */
    sd_sbuf pending;   /* received, not yet parsed */
    size_t pending_off;
    int busy, streaming, chunked, keep_alive, draining, closing, in_pump, read_paused;
    uint64_t responses;
};

static sd_http_conn *conn_of(http_parser *p) { return p->data; }

static int too_big(sd_http_conn *c, size_t more, int status) {
    c->head_bytes += more;
    if (c->head_bytes <= c->lim.max_header) return 0;
    c->error_status = status;
    return 1;
}

static int on_message_begin(http_parser *p) {
    sd_http_conn *c = conn_of(p);
    c->url.n = c->field.n = c->auth.n = c->expect.n = c->body.n = 0;
    c->url.oom = c->field.oom = c->auth.oom = c->expect.oom = c->body.oom = 0;
    c->value_last = 0;
    c->hdr = HDR_OTHER;
    c->head_bytes = 0;
    c->error_status = 0;
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t n) {
    sd_http_conn *c = conn_of(p);
    if (too_big(c, n, 414)) return -1;
    return sd_sbuf_add(&c->url, at, n) ? (c->error_status = 500, -1) : 0;
}

static int on_header_field(http_parser *p, const char *at, size_t n) {
    sd_http_conn *c = conn_of(p);
    if (too_big(c, n + 4, 431)) return -1;
    if (c->value_last) {
        c->field.n = 0;
        c->value_last = 0;
    }
    /* Names we look at are short; a long name only needs counting. */
    if (c->field.n + n <= 64 && sd_sbuf_add(&c->field, at, n)) return c->error_status = 500, -1;
    if (c->field.n + n > 64) c->field.n = 65;
    return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t n) {
    sd_http_conn *c = conn_of(p);
    if (too_big(c, n, 431)) return -1;
    if (!c->value_last) {
        c->value_last = 1;
        c->hdr = c->field.n > 64                                    ? HDR_OTHER
                 : sd_strn_ieq(c->field.data, c->field.n, "authorization") ? HDR_AUTH
                 : sd_strn_ieq(c->field.data, c->field.n, "expect")  ? HDR_EXPECT
                                                                      : HDR_OTHER;
        /* A repeated header replaces the earlier one. */
        if (c->hdr == HDR_AUTH) c->auth.n = 0;
        if (c->hdr == HDR_EXPECT) c->expect.n = 0;
    }
    sd_sbuf *dst = c->hdr == HDR_AUTH ? &c->auth : c->hdr == HDR_EXPECT ? &c->expect : NULL;
    if (dst && sd_sbuf_add(dst, at, n)) return c->error_status = 500, -1;
    return 0;
}

static void write_raw(sd_http_conn *c, const char *s, size_t n) {
    char *b = sd_malloc(n ? n : 1);
    if (!b) return; /* the transport cannot help either; the peer times out */
    memcpy(b, s, n);
    c->io.write(c->io.io, b, n);
}

static int on_headers_complete(http_parser *p) {
    sd_http_conn *c = conn_of(p);
    if (p->content_length != ULLONG_MAX && p->content_length > c->lim.max_body) {
        c->error_status = 413;
        return -1;
    }
    if (c->expect.n) {
        if (!sd_strn_ieq(c->expect.data, c->expect.n, "100-continue")) {
            c->error_status = 417;
            return -1;
        }
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        if (p->http_minor >= 1) write_raw(c, cont, sizeof cont - 1);
    }
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t n) {
    sd_http_conn *c = conn_of(p);
    if (c->body.n + n > c->lim.max_body) {
        c->error_status = 413;
        return -1;
    }
    return sd_sbuf_add(&c->body, at, n) ? (c->error_status = 500, -1) : 0;
}

/* A chunk announced larger than the room left is refused before it comes. */
static int on_chunk_header(http_parser *p) {
    sd_http_conn *c = conn_of(p);
    if (p->content_length > c->lim.max_body - c->body.n) {
        c->error_status = 413;
        return -1;
    }
    return 0;
}

static int on_message_complete(http_parser *p) {
    sd_http_conn *c = conn_of(p);
    c->keep_alive = http_should_keep_alive(p) && !p->upgrade;
    /* Stop here: the request is answered before the next one is parsed. */
    http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings k_settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
    .on_chunk_header = on_chunk_header,
};

sd_http_conn *sd_http_conn_create(const sd_http_io *io, const sd_http_limits *lim,
                                  sd_http_handler handler, void *ctx) {
    sd_http_conn *c = sd_calloc(1, sizeof *c);
    if (!c) return NULL;
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    c->io = *io;
    c->lim = *lim;
    c->handler = handler;
    c->ctx = ctx;
    return c;
}

void sd_http_conn_free(sd_http_conn *c) {
    if (!c) return;
    sd_sbuf *bufs[] = {&c->url, &c->field, &c->auth, &c->expect, &c->body, &c->path, &c->pending};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) sd_sbuf_free(bufs[i]);
    sd_free(c);
}

void sd_http_conn_set_user(sd_http_conn *c, void *user) { c->user = user; }
void *sd_http_conn_user(const sd_http_conn *c) { return c->user; }
int sd_http_conn_busy(const sd_http_conn *c) { return c->busy; }
int sd_http_conn_closing(const sd_http_conn *c) { return c->closing; }
void sd_http_conn_set_draining(sd_http_conn *c) { c->draining = 1; }
uint64_t sd_http_conn_responses(const sd_http_conn *c) { return c->responses; }

static void conn_close(sd_http_conn *c) {
    if (c->closing) return;
    c->closing = 1;
    c->io.close(c->io.io);
}

void sd_http_conn_lost(sd_http_conn *c) { conn_close(c); }

/* ------------------------------------------------------------ responses */

static void write_head(sd_http_conn *c, int status, const char *ctype, int64_t length,
                       const char *extra) {
    sd_sbuf h = {0};
    int close = !c->keep_alive || c->draining;
    sd_sbuf_printf(&h, "HTTP/1.1 %d %s\r\nServer: smdiff/%s\r\n", status,
                   http_status_str((enum http_status)status), smdiff_version_string());
    if (ctype) sd_sbuf_printf(&h, "Content-Type: %s\r\n", ctype);
    if (length >= 0) sd_sbuf_printf(&h, "Content-Length: %lld\r\n", (long long)length);
    else if (c->chunked) sd_sbuf_str(&h, "Transfer-Encoding: chunked\r\n");
    sd_sbuf_str(&h, close ? "Connection: close\r\n" : "Connection: keep-alive\r\n");
    if (extra) sd_sbuf_str(&h, extra);
    sd_sbuf_str(&h, "\r\n");
    if (h.oom) {
        sd_sbuf_free(&h);
        conn_close(c);
        return;
    }
    size_t n;
    char *b = sd_sbuf_take(&h, &n);
    c->io.write(c->io.io, b, n);
}

static void pump(sd_http_conn *c);

static void response_done(sd_http_conn *c) {
    c->busy = c->streaming = c->chunked = 0;
    c->responses++;
    if (!c->keep_alive || c->draining) {
        conn_close(c);
        return;
    }
    c->io.busy(c->io.io, 0);
    pump(c);
}

void sd_http_respond(sd_http_conn *c, int status, const char *ctype, const char *body, size_t n,
                     const char *extra) {
    if (c->closing) return;
    write_head(c, status, ctype, (int64_t)n, extra);
    if (n) write_raw(c, body, n);
    response_done(c);
}

void sd_http_stream_begin(sd_http_conn *c, int status, const char *ctype, const char *extra) {
    if (c->closing) return;
    c->streaming = 1;
    /* HTTP/1.0 has no chunked coding: the stream ends with the connection. */
    c->chunked = c->parser.http_major == 1 && c->parser.http_minor >= 1;
    if (!c->chunked) c->keep_alive = 0;
    write_head(c, status, ctype, -1, extra);
}

void sd_http_stream_send(sd_http_conn *c, const char *data, size_t n) {
    if (c->closing || !c->streaming || !n) return;
    if (!c->chunked) {
        write_raw(c, data, n);
        return;
    }
    sd_sbuf b = {0};
    sd_sbuf_printf(&b, "%zx\r\n", n);
    sd_sbuf_add(&b, data, n);
    sd_sbuf_str(&b, "\r\n");
    if (b.oom) {
        sd_sbuf_free(&b);
        conn_close(c);
        return;
    }
    size_t len;
    char *p = sd_sbuf_take(&b, &len);
    c->io.write(c->io.io, p, len);
}

void sd_http_stream_end(sd_http_conn *c) {
    if (c->closing || !c->streaming) return;
    if (c->chunked) write_raw(c, "0\r\n\r\n", 5);
    response_done(c);
}

/* -------------------------------------------------------------- parsing */

static void refuse(sd_http_conn *c, int status, const char *message) {
    sd_api_error e;
    sd_api_fail(&e, status, "invalid_request_error", NULL, NULL, "%s", message);
    size_t n = 0;
    char *body = sd_error_json(&e, &n);
    c->keep_alive = 0;
    c->busy = 1;
    sd_http_respond(c, status, "application/json", body ? body : "", body ? n : 0, NULL);
    sd_free(body);
}

static void parse_failed(sd_http_conn *c) {
    enum http_errno err = HTTP_PARSER_ERRNO(&c->parser);
    int status = c->error_status ? c->error_status : err == HPE_HEADER_OVERFLOW ? 431 : 400;
    char msg[160];
    switch (status) {
    case 413:
        snprintf(msg, sizeof msg, "request body larger than the server's limit of %zu bytes", c->lim.max_body);
        break;
    case 414:
        snprintf(msg, sizeof msg, "request target longer than the server's limit of %zu bytes", c->lim.max_header);
        break;
    case 431:
        snprintf(msg, sizeof msg, "request line and headers larger than the server's limit of %zu bytes",
                 c->lim.max_header);
        break;
    case 417: snprintf(msg, sizeof msg, "unsupported Expect header (only 100-continue is)"); break;
    case 500: snprintf(msg, sizeof msg, "out of memory reading the request"); break;
    default:
        snprintf(msg, sizeof msg, "malformed HTTP request: %s", http_errno_description(err));
    }
    refuse(c, status, msg);
}

static void dispatch(sd_http_conn *c) {
    c->busy = 1;
    c->io.busy(c->io.io, 1);
    struct http_parser_url u;
    http_parser_url_init(&u);
    c->path.n = 0;
    if (c->url.oom || c->auth.oom || c->body.oom || c->expect.oom) {
        refuse(c, 500, "out of memory reading the request");
        return;
    }
    if (c->parser.http_major != 1) {
        refuse(c, 505, "only HTTP/1.0 and HTTP/1.1 are served");
        return;
    }
    if (!c->url.n || http_parser_parse_url(c->url.data, c->url.n, c->parser.method == HTTP_CONNECT, &u) ||
        !(u.field_set & (1 << UF_PATH))) {
        refuse(c, 400, "malformed request target");
        return;
    }
    if (sd_sbuf_add(&c->path, c->url.data + u.field_data[UF_PATH].off, u.field_data[UF_PATH].len)) {
        refuse(c, 500, "out of memory reading the request");
        return;
    }
    sd_sbuf_add(&c->body, "", 0); /* NUL-terminate even an empty body */
    sd_http_req r = {
        .method = (int)c->parser.method,
        .path = c->path.data,
        .auth = c->auth.n ? c->auth.data : NULL,
        .body = c->body.data ? c->body.data : "",
        .body_len = c->body.n,
        .http_minor = (int)c->parser.http_minor,
    };
    c->handler(c->ctx, c, &r);
}

/* Parse what is pending, one request at a time, while the connection is
 * free. Re-entrant calls (a handler answering at once) return at once and
 * leave the work to the loop below. */
static void pump(sd_http_conn *c) {
    if (c->in_pump) return;
    c->in_pump = 1;
    while (!c->busy && !c->closing && c->pending_off < c->pending.n) {
        const char *d = c->pending.data + c->pending_off;
        size_t n = c->pending.n - c->pending_off;
        size_t k = http_parser_execute(&c->parser, &k_settings, d, n);
        enum http_errno err = HTTP_PARSER_ERRNO(&c->parser);
        c->pending_off += k;
        if (err == HPE_PAUSED) {
            http_parser_pause(&c->parser, 0);
            dispatch(c);
        } else if (err != HPE_OK) {
            parse_failed(c);
            break;
        } else if (k < n) {
            /* http-parser consumed less without an error: an upgrade; the
             * rest is not HTTP. */
            c->pending_off = c->pending.n;
        }
    }
    if (c->pending_off == c->pending.n) c->pending.n = c->pending_off = 0;
    if (!c->busy && c->read_paused && !c->closing) {
        c->read_paused = 0;
        c->io.pause_read(c->io.io, 0);
    }
    c->in_pump = 0;
}

void sd_http_conn_feed(sd_http_conn *c, const char *data, size_t n) {
    if (c->closing || !n) return;
    if (c->pending_off && c->pending_off == c->pending.n) c->pending.n = c->pending_off = 0;
    if (sd_sbuf_add(&c->pending, data, n)) {
        conn_close(c);
        return;
    }
    if (c->busy && c->pending.n - c->pending_off > PENDING_MAX && !c->read_paused) {
        c->read_paused = 1;
        c->io.pause_read(c->io.io, 1);
    }
    pump(c);
}
