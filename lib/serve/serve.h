/* serve.h -- the serve/ layer: an OpenAI-compatible HTTP/1.1 server for one
 * loaded model (docs/SERVER.md).
 *
 * Files, each a seam of its own:
 *   buf.c       growable byte buffer, UTF-8 repair, clocks, ids
 *   http.c      one HTTP/1.1 connection over any byte transport, parsing by
 *               http-parser (keep-alive, pipelining, limits, chunked output)
 *   request.c   OpenAI request JSON -> sd_gen_request (types, ranges, fields)
 *   response.c  response JSON, SSE chunks, step events, OpenAI-style errors
 *   job.c       one generation (a sequence of the batch): sampler, callbacks, stream
 *   slots.c     the worker, its batch of slots and the bounded queue
 *   metrics.c   counters and the Prometheus text exposition
 *   router.c    method + path -> endpoint; auth; /health, /v1/models, ...
 *   server.c    the public smdiff_server_* API and the libuv glue (TCP,
 *               timers, the wake-up from workers, shutdown)
 *   playground.c  the page served at / (playground.html, embedded)
 *
 * Threads: everything touching a connection runs on the loop thread. A job
 * is prepared on the loop thread, run on a worker thread, and hands its
 * output back through sd_job_out under the server's output mutex, waking
 * the loop with uv_async_send. This layer uses only the public API of the
 * layers below (smdiff.h) plus lib/core's allocation, errors, logging and
 * option tables.
 */
#ifndef SD_SERVE_H
#define SD_SERVE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "core/error.h"
#include "core/options.h"
#include "smdiff/smdiff.h"

/* ------------------------------------------------------------- buf.c */

/* A growable byte buffer; data is always NUL-terminated (when non-NULL). */
typedef struct sd_sbuf {
    char *data;
    size_t n, cap;
    int oom; /* an append failed; the contents are incomplete */
} sd_sbuf;

int sd_sbuf_add(sd_sbuf *b, const void *p, size_t n); /* 0 or -1 (oom set) */
int sd_sbuf_str(sd_sbuf *b, const char *s);
/* Room for extra more bytes: a pointer to them (n unchanged), NULL on oom. */
char *sd_sbuf_grow(sd_sbuf *b, size_t extra);
int sd_sbuf_printf(sd_sbuf *b, const char *fmt, ...) SD_PRINTF(2, 3);
void sd_sbuf_free(sd_sbuf *b);
/* Take the contents (caller frees with sd_free); b is left empty. */
char *sd_sbuf_take(sd_sbuf *b, size_t *n);

/* Append text[0..n) to b with every invalid UTF-8 sequence replaced by
 * U+FFFD, so the result can go into JSON (Jansson refuses invalid UTF-8). */
int sd_utf8_repair(sd_sbuf *b, const char *text, size_t n);

double sd_now(void);        /* monotonic seconds */
int64_t sd_unix_time(void); /* seconds since 1970 */
/* A fresh identifier "<prefix><24 hex digits>" into out[40]. */
void sd_new_id(const char *prefix, char out[40]);

/* Case-insensitive comparison of an n-byte string with a C string. */
int sd_strn_ieq(const char *a, size_t n, const char *b);

/* ------------------------------------------------------------ http.c */

typedef struct sd_http_conn sd_http_conn;

/* Where a connection's bytes go. write takes ownership of buf (sd_malloc'd);
 * close is called once (after the last write), and the transport calls
 * sd_http_conn_free once its own handles are gone, never from inside a
 * call into this layer. pause_read stops (1) or resumes (0) input. */
typedef struct sd_http_io {
    void (*write)(void *io, char *buf, size_t n);
    void (*close)(void *io);
    void (*pause_read)(void *io, int pause);
    /* 1: a request was received and is being answered; 0: the connection
     * waits for its next request (the read timeout runs). */
    void (*busy)(void *io, int busy);
    void *io;
} sd_http_io;

typedef struct sd_http_limits {
    size_t max_header; /* request line + headers, bytes; more gets 431 */
    size_t max_body;   /* body bytes; more gets 413 */
} sd_http_limits;

/* One parsed request; valid until the response to it is complete. */
typedef struct sd_http_req {
    int method;          /* enum http_method */
    const char *path;    /* the URL's path, NUL-terminated, query removed */
    const char *auth;    /* Authorization header value or NULL */
    const char *body;    /* NUL-terminated (for convenience); body_len bytes */
    size_t body_len;
    int http_minor;      /* 1.0 or 1.1 */
} sd_http_req;

/* Called once per complete request; the handler answers with exactly one
 * of sd_http_respond or sd_http_stream_begin...end, now or later. */
typedef void (*sd_http_handler)(void *ctx, sd_http_conn *c, const sd_http_req *req);

sd_http_conn *sd_http_conn_create(const sd_http_io *io, const sd_http_limits *lim,
                                  sd_http_handler handler, void *ctx);
void sd_http_conn_free(sd_http_conn *c);
/* Bytes arrived (n > 0) or the peer closed its side (n == 0). */
void sd_http_conn_feed(sd_http_conn *c, const char *data, size_t n);
/* The peer is gone (EOF, reset, timeout): stop everything, close. */
void sd_http_conn_lost(sd_http_conn *c);
/* Per-connection user pointer (the server keeps its job here). */
void sd_http_conn_set_user(sd_http_conn *c, void *user);
void *sd_http_conn_user(const sd_http_conn *c);
/* 1 while a request is being answered, 0 between requests. */
int sd_http_conn_busy(const sd_http_conn *c);
/* 1 once the connection has started closing. */
int sd_http_conn_closing(const sd_http_conn *c);
/* Answer with Connection: close from now on (server shutting down). */
void sd_http_conn_set_draining(sd_http_conn *c);
/* Bytes handed to the transport and not yet written are the transport's
 * business; this counts the responses completed on this connection. */
uint64_t sd_http_conn_responses(const sd_http_conn *c);

/* A complete response. extra_headers: "Name: value\r\n" lines or NULL. */
void sd_http_respond(sd_http_conn *c, int status, const char *content_type, const char *body,
                     size_t n, const char *extra_headers);
/* A streamed response (chunked on HTTP/1.1, close-delimited on 1.0). */
void sd_http_stream_begin(sd_http_conn *c, int status, const char *content_type,
                          const char *extra_headers);
void sd_http_stream_send(sd_http_conn *c, const char *data, size_t n);
void sd_http_stream_end(sd_http_conn *c);

/* --------------------------------------------------------- request.c */

/* An error to answer with: HTTP status and OpenAI's error fields. */
typedef struct sd_api_error {
    int status;
    const char *type;  /* "invalid_request_error", "server_error", ... */
    const char *code;  /* NULL or e.g. "model_not_found" */
    char param[64];    /* "" when none */
    char message[512];
} sd_api_error;

int sd_api_fail(sd_api_error *e, int status, const char *type, const char *code,
                const char *param, const char *fmt, ...) SD_PRINTF(6, 7);

#define SD_MAX_STOP 4

/* A completion or chat completion request, fields as sent; "unset" is -1 for
 * integers, NaN for doubles, NULL for strings. */
typedef struct sd_gen_request {
    int chat;                 /* 1 for /v1/chat/completions */
    char *model;
    char *prompt;             /* completions: the prompt text */
    int32_t *prompt_ids;      /* completions: or the prompt as token ids */
    size_t n_prompt_ids;
    char *suffix;             /* completions: text after the generated span
                                 (infilling); NULL or non-empty */
    size_t n_messages;        /* chat: roles[i], contents[i] */
    char **roles, **contents;
    int stream, stream_steps, include_usage, echo;
    int64_t max_tokens, steps, block_length, top_k, seed, softmask_topk;
    double temperature, top_p, alg_temp, threshold;
    char *strategy;
    int softmask;             /* -1 unset, else SMDIFF_SM_* */
    double softmask_scale, softmask_steepness, softmask_centre, softmask_lambda;
    char *stop[SD_MAX_STOP];
    size_t n_stop;
} sd_gen_request;

/* Parse a request body. 0, or -1 with e filled (400 and the field). */
int sd_request_parse(const char *body, size_t n, int chat, sd_gen_request *out, sd_api_error *e);
void sd_request_free(sd_gen_request *r);

/* Apply the request's diffusion settings to a sampler and schedule (gen
 * length and steps excepted: they depend on the prompt). 0 or -1 with a 400
 * in e naming the field. */
int sd_request_configure(const sd_gen_request *r, const smdiff_model *m, smdiff_sampler *s,
                         int32_t threads, sd_api_error *e);

/* The prompt text a request generates from: the completion prompt, or the
 * chat messages in the model's chat template (a plain transcript for models
 * without one; *templated says which). sd_malloc'd, or NULL with e set. */
char *sd_request_render(const sd_gen_request *r, const smdiff_model *m, int *templated,
                        sd_api_error *e);

/* -------------------------------------------------------- response.c */

/* Compact JSON text of v (released), sd_malloc'd; NULL on failure. */
typedef struct json_t json_t;
char *sd_json_take(json_t *v, size_t *n);

/* {"error": {"message", "type", "param", "code"}} */
char *sd_error_json(const sd_api_error *e, size_t *n);

/* What one finished generation produced. */
typedef struct sd_gen_result {
    const char *id;           /* "cmpl-..." / "chatcmpl-..." */
    int64_t created;
    const char *model;
    const char *text;         /* UTF-8 (repaired) */
    size_t text_len;
    const char *finish_reason; /* "stop" or "length" */
    int64_t prompt_tokens, completion_tokens;
} sd_gen_result;

/* The non-streamed body of a completion (chat = 0) or chat completion. */
char *sd_completion_json(int chat, const sd_gen_result *r, size_t *n);

/* One SSE event "data: {...}\n\n" with a text delta (may be empty), an
 * optional finish reason and an optional step object, appended to out.
 * first: chat's first chunk carries the assistant role. */
typedef struct sd_step_event {
    size_t step, n_steps, length;      /* length: generated positions */
    const int32_t *committed_pos;      /* [n_committed] positions, 0-based */
    const int32_t *committed_id;
    const char *const *committed_text; /* each token's bytes (may split a
                                          character: sent repaired as "text",
                                          exact as "bytes") */
    const size_t *committed_len;
    size_t n_committed;
    const int32_t *masked_pos;         /* [n_masked] still-masked positions */
    const float *masked_lambda;
    size_t n_masked;
    double seconds;                    /* time of this step */
} sd_step_event;

int sd_chunk_sse(sd_sbuf *out, int chat, const sd_gen_result *r, int first, const char *delta,
                 size_t delta_len, const char *finish_reason, const sd_step_event *step);
/* The usage-only chunk (stream_options.include_usage). */
int sd_usage_sse(sd_sbuf *out, int chat, const sd_gen_result *r);
/* An error event inside a stream, then [DONE]. */
int sd_error_sse(sd_sbuf *out, const sd_api_error *e);
int sd_done_sse(sd_sbuf *out);

/* ------------------------------------------------------- metrics.c */

typedef enum sd_endpoint {
    SD_EP_COMPLETIONS, SD_EP_CHAT, SD_EP_MODELS, SD_EP_HEALTH, SD_EP_METRICS, SD_EP_PLAYGROUND,
    SD_EP_OTHER, SD_EP_COUNT_
} sd_endpoint;

typedef enum sd_abort_reason {
    SD_ABORT_NONE, SD_ABORT_DISCONNECT, SD_ABORT_TIMEOUT, SD_ABORT_SHUTDOWN, SD_ABORT_STOP_WORD,
    SD_ABORT_COUNT_
} sd_abort_reason;

typedef struct sd_metrics sd_metrics;

sd_metrics *sd_metrics_create(void);
void sd_metrics_free(sd_metrics *m);
void sd_metrics_request(sd_metrics *m, sd_endpoint ep, int status, double seconds);
void sd_metrics_tokens(sd_metrics *m, int64_t prompt, int64_t completion);
void sd_metrics_step(sd_metrics *m, double seconds);
void sd_metrics_queue_wait(sd_metrics *m, double seconds);
void sd_metrics_abort(sd_metrics *m, sd_abort_reason why);
/* One step of the slots' batch, advancing n sequences in one forward pass. */
void sd_metrics_batch_step(sd_metrics *m, size_t n);
/* Gauges sampled at exposition time. */
typedef struct sd_gauges {
    int64_t slots, slots_busy, queue_depth, queue_capacity, connections;
} sd_gauges;
/* The Prometheus text exposition format (version 0.0.4). */
int sd_metrics_render(sd_metrics *m, const sd_gauges *g, sd_sbuf *out);

/* ---------------------------------------------------------- job.c */

typedef struct sd_server_core sd_server_core;

/* Output of a job, handed from the worker to the loop under the server's
 * output mutex. */
typedef struct sd_job_out {
    int streaming;     /* the 200 event-stream head may be sent */
    int finished;      /* nothing more will be appended */
    int status;        /* non-streamed or error-before-stream: the HTTP status */
    const char *extra; /* extra headers of that response (static storage) */
    sd_sbuf data;      /* SSE bytes, or the whole body once finished */
    int dirty;         /* on the server's ready list */
} sd_job_out;

typedef struct sd_job {
    struct sd_job *next;       /* queue link (slots.c), ready list (server) */
    struct sd_job *ready_next;
    sd_server_core *core;
    sd_gen_request req;
    smdiff_sampler *sampler;   /* configured on the loop thread */
    sd_endpoint ep;
    double t_arrival, t_start, deadline; /* deadline 0: none */
    atomic_int abort_reason;   /* sd_abort_reason; set by any thread */
    char id[40];
    int64_t created;
    sd_job_out out;
    /* loop-owned */
    sd_http_conn *conn;        /* NULL once the client is gone */
    int head_sent;
    /* worker-owned: the run while the job is a sequence of the batch */
    struct sd_job_run *run;
} sd_job;

/* Create a job for a parsed request (takes ownership of req's contents on
 * success). NULL with e set (400 for bad diffusion settings, 500 for
 * memory). */
sd_job *sd_job_create(sd_server_core *core, sd_gen_request *req, sd_endpoint ep,
                      sd_api_error *e);
void sd_job_free(sd_job *j);
/* Run the generation alone (inline, without slots), finishing j->out. */
void sd_job_run(sd_job *j);
/* Start the generation as a sequence of batch b (the slots' worker):
 * 0 with *id its handle; -1 when the job is already finished (refused,
 * aborted before it started, or the batch would not take it). */
int sd_job_begin(sd_job *j, smdiff_batch *b, size_t *id);
/* After a batch step: 1 when sequence id has ended (its response finished,
 * the sequence removed), 0 while it runs. failed != 0 ends it with that
 * error (the batch's shared pass failed). */
int sd_job_poll(sd_job *j, smdiff_batch *b, size_t id, int32_t failed);
/* Finish a job that never ran (queue full, shutdown, timeout in queue). */
void sd_job_fail(sd_job *j, const sd_api_error *e);

/* --------------------------------------------------------- slots.c */

typedef struct sd_slots sd_slots;

/* Start the worker: n_slots jobs of model run at once as one batch, the
 * others wait in one queue. NULL if the batch or the thread cannot be
 * made. */
sd_slots *sd_slots_create(size_t n_slots, smdiff_model *model, sd_metrics *metrics);
/* Stop the worker (after the queue is empty and every job has ended) and
 * join it. */
void sd_slots_free(sd_slots *s);
/* Queue a job (admission is the caller's); -1 once stopping. */
int sd_slots_submit(sd_slots *s, sd_job *j);
/* Remove a job still waiting in the queue: 1 if removed, 0 if a worker has
 * it already. */
int sd_slots_cancel(sd_slots *s, sd_job *j);
/* Remove and return every waiting job (a list through ->next). */
sd_job *sd_slots_take_waiting(sd_slots *s);
void sd_slots_counts(sd_slots *s, size_t *busy, size_t *waiting);

/* ----------------------------------------------------- server core */

/* What the router and the jobs need of the server; server.c owns it. */
struct sd_server_core {
    smdiff_model *model;
    const char *model_name;
    const char *api_key;       /* NULL: no authentication */
    int64_t max_tokens;        /* cap on a request's gen length */
    int32_t threads;           /* SMDIFF_SAMPLER_THREADS of each job */
    double timeout;            /* seconds per generation request, 0 = none */
    int64_t context, vocab, mask_id, eos_id, bos_id;
    sd_metrics *metrics;
    sd_slots *slots;           /* NULL: jobs run inline (tests, fuzzing) */
    int draining;              /* stop requested: refuse new work (503) */
    int64_t connections;       /* open connections (loop thread) */
    int64_t jobs_alive;        /* created and not yet freed (loop thread) */
    size_t queue_capacity, n_slots;
    /* Output handoff: jobs append under out_mu and call notify. */
    uv_mutex_t out_mu;
    sd_job *ready;             /* jobs with new output (under out_mu) */
    void (*notify)(sd_server_core *core);
    void *owner;               /* the smdiff_server */
};

/* Hand output of a job to the loop (any thread): append n bytes, mark the
 * stream begun and/or the job finished (with the status and extra headers
 * of a non-streamed answer), put it on the ready list, wake the loop. After
 * a post with finished set the job belongs to the loop: do not touch it. */
void sd_core_post(sd_server_core *core, sd_job *j, const char *data, size_t n, int streaming, int finished,
                  int status, const char *extra);
/* Deliver the output of every ready job to its connection (loop thread).
 * Returns the number of jobs that finished and were freed. */
size_t sd_core_deliver(sd_server_core *core);

/* --------------------------------------------------------- router.c */

/* The http handler: route, authenticate, answer or start a job. */
void sd_router_handle(void *core, sd_http_conn *c, const sd_http_req *req);
/* The connection is gone: abort its job (if any). Loop thread. */
void sd_router_conn_lost(sd_server_core *core, sd_http_conn *c);

/* ------------------------------------------------------ playground.c */

const char *sd_playground_html(size_t *n);

#endif
