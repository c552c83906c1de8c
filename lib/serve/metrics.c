/* metrics.c -- the server's counters and their exposition in Prometheus's
 * text format, version 0.0.4 (# HELP / # TYPE lines, one sample per line,
 * histograms as cumulative _bucket{le=...} plus _sum and _count).
 * Updated from the loop and the workers, so behind a mutex. */
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "serve.h"

#define MAX_STATUS 32

static const char *const k_endpoint[SD_EP_COUNT_] = {
    "/v1/completions", "/v1/chat/completions", "/v1/models", "/health", "/metrics", "/", "other",
};

static const char *const k_abort[SD_ABORT_COUNT_] = {"none", "disconnect", "timeout", "shutdown", "stop_sequence"};

static const double k_step_le[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
static const double k_req_le[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300};

#define N_STEP_LE (sizeof k_step_le / sizeof k_step_le[0])
#define N_REQ_LE (sizeof k_req_le / sizeof k_req_le[0])

typedef struct histo {
    uint64_t bucket[N_REQ_LE > N_STEP_LE ? N_REQ_LE : N_STEP_LE];
    uint64_t count;
    double sum;
} histo;

struct sd_metrics {
    uv_mutex_t mu;
    struct {
        int status;
        uint64_t n[SD_EP_COUNT_];
    } req[MAX_STATUS];
    int n_status;
    uint64_t aborted[SD_ABORT_COUNT_];
    uint64_t prompt_tokens, completion_tokens;
    uint64_t batch_steps, batch_sequence_steps;
    histo step, duration[SD_EP_COUNT_], queue_wait;
};

sd_metrics *sd_metrics_create(void) {
    sd_metrics *m = sd_calloc(1, sizeof *m);
    if (m && uv_mutex_init(&m->mu)) {
        sd_free(m);
        return NULL;
    }
    return m;
}

void sd_metrics_free(sd_metrics *m) {
    if (!m) return;
    uv_mutex_destroy(&m->mu);
    sd_free(m);
}

static void observe(histo *h, const double *le, size_t n_le, double v) {
    for (size_t i = 0; i < n_le; i++)
        if (v <= le[i]) h->bucket[i]++;
    h->count++;
    h->sum += v;
}

void sd_metrics_request(sd_metrics *m, sd_endpoint ep, int status, double seconds) {
    uv_mutex_lock(&m->mu);
    int i = 0;
    while (i < m->n_status && m->req[i].status != status) i++;
    if (i == m->n_status && i < MAX_STATUS) m->req[m->n_status++].status = status;
    if (i < MAX_STATUS) m->req[i].n[ep]++;
    observe(&m->duration[ep], k_req_le, N_REQ_LE, seconds);
    uv_mutex_unlock(&m->mu);
}

void sd_metrics_tokens(sd_metrics *m, int64_t prompt, int64_t completion) {
    uv_mutex_lock(&m->mu);
    m->prompt_tokens += (uint64_t)prompt;
    m->completion_tokens += (uint64_t)completion;
    uv_mutex_unlock(&m->mu);
}

void sd_metrics_step(sd_metrics *m, double seconds) {
    uv_mutex_lock(&m->mu);
    observe(&m->step, k_step_le, N_STEP_LE, seconds);
    uv_mutex_unlock(&m->mu);
}

void sd_metrics_queue_wait(sd_metrics *m, double seconds) {
    uv_mutex_lock(&m->mu);
    observe(&m->queue_wait, k_req_le, N_REQ_LE, seconds);
    uv_mutex_unlock(&m->mu);
}

void sd_metrics_batch_step(sd_metrics *m, size_t n) {
    uv_mutex_lock(&m->mu);
    m->batch_steps++;
    m->batch_sequence_steps += n;
    uv_mutex_unlock(&m->mu);
}

void sd_metrics_abort(sd_metrics *m, sd_abort_reason why) {
    uv_mutex_lock(&m->mu);
    if (why > SD_ABORT_NONE && why < SD_ABORT_COUNT_) m->aborted[why]++;
    uv_mutex_unlock(&m->mu);
}

static void head(sd_sbuf *o, const char *name, const char *type, const char *help) {
    sd_sbuf_printf(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void histogram(sd_sbuf *o, const char *name, const char *label, const histo *h, const double *le,
                      size_t n_le) {
    const char *sep = label[0] ? "," : "";
    for (size_t i = 0; i < n_le; i++)
        sd_sbuf_printf(o, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, label, sep, le[i],
                       (unsigned long long)h->bucket[i]);
    sd_sbuf_printf(o, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, label, sep, (unsigned long long)h->count);
    const char *open = label[0] ? "{" : "", *close = label[0] ? "}" : "";
    sd_sbuf_printf(o, "%s_sum%s%s%s %.9g\n", name, open, label, close, h->sum);
    sd_sbuf_printf(o, "%s_count%s%s%s %llu\n", name, open, label, close, (unsigned long long)h->count);
}

int sd_metrics_render(sd_metrics *m, const sd_gauges *g, sd_sbuf *o) {
    uv_mutex_lock(&m->mu);
    head(o, "smdiff_requests_total", "counter", "HTTP requests answered, by endpoint and status.");
    for (int i = 0; i < m->n_status; i++)
        for (int e = 0; e < SD_EP_COUNT_; e++)
            if (m->req[i].n[e])
                sd_sbuf_printf(o, "smdiff_requests_total{endpoint=\"%s\",status=\"%d\"} %llu\n", k_endpoint[e],
                               m->req[i].status, (unsigned long long)m->req[i].n[e]);
    head(o, "smdiff_request_duration_seconds", "histogram",
         "Time from a request's arrival to the end of its response, by endpoint.");
    for (int e = 0; e < SD_EP_COUNT_; e++) {
        if (!m->duration[e].count) continue;
        char label[64];
        snprintf(label, sizeof label, "endpoint=\"%s\"", k_endpoint[e]);
        histogram(o, "smdiff_request_duration_seconds", label, &m->duration[e], k_req_le, N_REQ_LE);
    }
    head(o, "smdiff_generations_aborted_total", "counter",
         "Generations ended early, by reason (disconnect, timeout, shutdown, stop_sequence).");
    for (int a = SD_ABORT_DISCONNECT; a < SD_ABORT_COUNT_; a++)
        sd_sbuf_printf(o, "smdiff_generations_aborted_total{reason=\"%s\"} %llu\n", k_abort[a],
                       (unsigned long long)m->aborted[a]);
    head(o, "smdiff_prompt_tokens_total", "counter", "Prompt tokens of finished generations.");
    sd_sbuf_printf(o, "smdiff_prompt_tokens_total %llu\n", (unsigned long long)m->prompt_tokens);
    head(o, "smdiff_completion_tokens_total", "counter", "Tokens generated by finished generations.");
    sd_sbuf_printf(o, "smdiff_completion_tokens_total %llu\n", (unsigned long long)m->completion_tokens);
    head(o, "smdiff_batch_steps_total", "counter", "Forward passes of the slots' batch (each advances every "
                                                   "running generation by one step).");
    sd_sbuf_printf(o, "smdiff_batch_steps_total %llu\n", (unsigned long long)m->batch_steps);
    head(o, "smdiff_batch_sequence_steps_total", "counter", "Generation steps those passes advanced; divided by "
                                                            "smdiff_batch_steps_total, the mean batch size.");
    sd_sbuf_printf(o, "smdiff_batch_sequence_steps_total %llu\n", (unsigned long long)m->batch_sequence_steps);
    head(o, "smdiff_step_seconds", "histogram", "Time of one denoising step.");
    histogram(o, "smdiff_step_seconds", "", &m->step, k_step_le, N_STEP_LE);
    head(o, "smdiff_queue_wait_seconds", "histogram", "Time a generation waited for a slot.");
    histogram(o, "smdiff_queue_wait_seconds", "", &m->queue_wait, k_req_le, N_REQ_LE);
    uv_mutex_unlock(&m->mu);
    struct {
        const char *name, *help;
        int64_t v;
    } gauges[] = {
        {"smdiff_slots", "Generation slots (sequences of the batch).", g->slots},
        {"smdiff_slots_busy", "Slots generating now.", g->slots_busy},
        {"smdiff_queue_depth", "Requests waiting for a slot.", g->queue_depth},
        {"smdiff_queue_capacity", "Requests that may wait before the server answers 429.", g->queue_capacity},
        {"smdiff_connections", "Open client connections.", g->connections},
        {"smdiff_heap_blocks", "Blocks allocated through smdiff's allocator and not yet freed; between idle moments "
                               "it returns to the same value, growth is a leak.", sd_alloc_live()},
    };
    for (size_t i = 0; i < sizeof gauges / sizeof gauges[0]; i++) {
        head(o, gauges[i].name, "gauge", gauges[i].help);
        sd_sbuf_printf(o, "%s %lld\n", gauges[i].name, (long long)gauges[i].v);
    }
    return o->oom ? -1 : 0;
}
