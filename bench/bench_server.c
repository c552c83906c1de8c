/* bench_server.c -- the HTTP server (lib/serve/) with the bundled model.
 *
 * 1. Overhead: the same generation (prompt "It was a dark and stormy
 *    night, and", 32 tokens, 16 steps, greedy, 1 thread) called through
 *    the library directly -- tokenize, smdiff_generate_tokens, detokenize --
 *    and requested from the server by one keep-alive client, alternating
 *    so both see the same machine load. Compared in CPU time of the whole
 *    process (client, loop and worker threads together; wall time is
 *    printed too but a shared machine stretches it), and again for a
 *    one-token one-step request, where the difference is the server's
 *    fixed cost per request measured more tightly.
 * 2. Throughput: 1, 4 and 16 concurrent keep-alive clients against 2 slots
 *    (the machine's cores) with a queue long enough that nothing is
 *    refused: requests/s and p50/p99 latency.
 * 3. /health latency while every slot is busy with long generations.
 *
 *   BENCH_QUICK=1   fewer requests
 *
 * Prints a table (docs/PERFORMANCE.md, "Server"); never fails on slowness.
 * Run from the repository root (it loads models/smdiff-gutenberg-18m-sm.gguf).
 */
#ifndef SMDIFF_EXPERIMENTAL /* the Makefile defines it for tests and benchmarks */
#define SMDIFF_EXPERIMENTAL
#endif
#include <arpa/inet.h>
#include <http_parser.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "smdiff/smdiff.h"
#include "clock.h"

#define PROMPT "It was a dark and stormy night, and"
#define GEN 32
#define STEPS 16

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* q-quantile (0..1) of v[n], sorting v. */
static double quantile(double *v, size_t n, double q) {
    qsort(v, n, sizeof *v, cmp_d);
    size_t i = (size_t)(q * (double)(n - 1) + 0.5);
    return v[i < n ? i : n - 1];
}

/* ------------------------------------------------------------ direct */

static double direct_once(const smdiff_model *m, smdiff_sampler *s, int gen, int steps) {
    smdiff_sampler_set_int(s, SMDIFF_SAMPLER_GEN_LENGTH, gen);
    smdiff_sampler_set_int(s, SMDIFF_SAMPLER_STEPS, steps);
    double t0 = now();
    int32_t ids[64], out[GEN];
    size_t n = 0, nb = 0;
    smdiff_model_tokenize(m, PROMPT, strlen(PROMPT), SMDIFF_TOKENIZE_PARSE_SPECIAL, ids, 64, &n);
    size_t n_out = 0;
    if (smdiff_generate_tokens(s, m, ids, n, out, (size_t)gen, &n_out)) {
        fprintf(stderr, "bench_server: generate failed: %s\n", smdiff_sampler_last_error(s));
        exit(1);
    }
    char text[4096];
    smdiff_model_detokenize(m, out, n_out, 0, text, sizeof text, &nb);
    return now() - t0;
}

/* ------------------------------------------------------------ client */

typedef struct client {
    int fd;
    http_parser p;
    int done;
    char body[512];
    size_t n;
} client;

static int on_done(http_parser *p) {
    ((client *)p->data)->done = 1;
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t n) {
    client *c = p->data;
    size_t k = n < sizeof c->body - 1 - c->n ? n : sizeof c->body - 1 - c->n;
    memcpy(c->body + c->n, at, k);
    c->n += k;
    c->body[c->n] = '\0';
    return 0;
}

static int connect_to(int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a)) {
        perror("bench_server: connect");
        exit(1);
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

static void client_open(client *c, int port) {
    memset(c, 0, sizeof *c);
    c->fd = connect_to(port);
}

/* One request on a keep-alive connection; its latency in seconds. */
static double roundtrip(client *c, const char *req, size_t n) {
    static const http_parser_settings set = {.on_body = on_body, .on_message_complete = on_done};
    double t0 = now();
    if (send(c->fd, req, n, MSG_NOSIGNAL) != (ssize_t)n) {
        perror("bench_server: send");
        exit(1);
    }
    http_parser_init(&c->p, HTTP_RESPONSE);
    c->p.data = c;
    c->done = 0;
    c->n = 0;
    c->body[0] = '\0';
    char buf[16384];
    while (!c->done) {
        ssize_t k = recv(c->fd, buf, sizeof buf, 0);
        if (k <= 0) {
            fprintf(stderr, "bench_server: connection closed\n");
            exit(1);
        }
        http_parser_execute(&c->p, &set, buf, (size_t)k);
        if (HTTP_PARSER_ERRNO(&c->p) != HPE_OK) {
            fprintf(stderr, "bench_server: bad response\n");
            exit(1);
        }
    }
    if (c->p.status_code != 200) {
        fprintf(stderr, "bench_server: status %u\n", c->p.status_code);
        exit(1);
    }
    return now() - t0;
}

static size_t completion_request(char *buf, size_t cap, int gen, int steps) {
    char body[256];
    int bn = snprintf(body, sizeof body, "{\"prompt\":\"%s\",\"max_tokens\":%d,\"steps\":%d}", PROMPT, gen, steps);
    return (size_t)snprintf(buf, cap, "POST /v1/completions HTTP/1.1\r\nHost: b\r\nContent-Type: application/json\r\n"
                                      "Content-Length: %d\r\n\r\n%s",
                            bn, body);
}

/* ------------------------------------------------------------ server */

typedef struct srv {
    smdiff_server *s;
    pthread_t th;
    int port;
} srv;

static void *run(void *arg) {
    smdiff_server_run(arg);
    return NULL;
}

static srv start(smdiff_model *m, int slots, int queue) {
    srv v = {0};
    if (smdiff_server_create(m, &v.s) || smdiff_server_set_int(v.s, SMDIFF_SERVER_PORT, 0) ||
        smdiff_server_set_int(v.s, SMDIFF_SERVER_SLOTS, slots) || smdiff_server_set_int(v.s, SMDIFF_SERVER_QUEUE, queue) ||
        smdiff_server_set_int(v.s, SMDIFF_SERVER_THREADS, 1) || smdiff_server_listen(v.s)) {
        fprintf(stderr, "bench_server: server: %s\n", smdiff_last_error());
        exit(1);
    }
    int32_t port = 0;
    smdiff_server_port(v.s, &port);
    v.port = port;
    pthread_create(&v.th, NULL, run, v.s);
    return v;
}

static void stop(srv *v) {
    smdiff_server_stop(v->s);
    pthread_join(v->th, NULL);
    smdiff_server_free(v->s);
}

/* ---------------------------------------------------------- load runs */

typedef struct worker {
    pthread_t th;
    int port, n;
    double *lat;
} worker;

static void *load_thread(void *arg) {
    worker *w = arg;
    char req[1024];
    size_t n = completion_request(req, sizeof req, GEN, STEPS);
    client c;
    client_open(&c, w->port);
    for (int i = 0; i < w->n; i++) w->lat[i] = roundtrip(&c, req, n);
    close(c.fd);
    return NULL;
}

static void throughput(int port, int clients, int per) {
    worker *w = calloc((size_t)clients, sizeof *w);
    double *lat = calloc((size_t)(clients * per), sizeof *lat);
    double t0 = now();
    for (int i = 0; i < clients; i++) {
        w[i] = (worker){0, port, per, lat + i * per};
        pthread_create(&w[i].th, NULL, load_thread, &w[i]);
    }
    for (int i = 0; i < clients; i++) pthread_join(w[i].th, NULL);
    double wall = now() - t0;
    size_t total = (size_t)(clients * per);
    printf("| %2d clients | %4zu | %6.2f | %7.1f | %7.1f |\n", clients, total, (double)total / wall,
           1e3 * quantile(lat, total, 0.5), 1e3 * quantile(lat, total, 0.99));
    fflush(stdout);
    free(lat);
    free(w);
}

typedef struct hog {
    pthread_t th;
    int port;
    volatile int *stop;
    int n;
} hog;

static void *hog_thread(void *arg) {
    hog *h = arg;
    char req[1024];
    size_t n = completion_request(req, sizeof req, 64, 32);
    client c;
    client_open(&c, h->port);
    while (!*h->stop) {
        roundtrip(&c, req, n);
        h->n++;
    }
    close(c.fd);
    return NULL;
}

int main(void) {
    int quick = getenv("BENCH_QUICK") && atoi(getenv("BENCH_QUICK")) > 0;
    smdiff_model *m = NULL;
    /* one thread everywhere (model pool, BLAS, sampler): CPU time then
     * counts work, not spinning helpers */
    if (smdiff_model_create(&m) || smdiff_model_set_int(m, SMDIFF_MODEL_THREADS, 1) ||
        smdiff_model_load_file(m, "models/smdiff-gutenberg-18m-sm.gguf")) {
        fprintf(stderr, "bench_server: cannot load models/smdiff-gutenberg-18m-sm.gguf (run from the repository root)\n");
        return 1;
    }
    printf("bench_server: bundled model, prompt \"%s\", %d tokens, %d steps, greedy, 1 thread per generation\n",
           PROMPT, GEN, STEPS);

    /* 1. overhead at one client, alternating direct and served: the
     * standard request, then a one-token one-step request whose time is
     * mostly the fixed cost of a request, measured more tightly */
    smdiff_sampler *s = NULL;
    smdiff_sampler_create(&s);
    smdiff_sampler_set_int(s, SMDIFF_SAMPLER_THREADS, 1);
    smdiff_softmask *sm = NULL;
    smdiff_softmask_create_from_model(m, &sm);
    smdiff_sampler_set_softmask(s, sm);
    smdiff_softmask_free(sm);
    srv v = start(m, 1, 8);
    client c;
    client_open(&c, v.port);
    struct {
        int gen, steps, n;
    } shapes[] = {{GEN, STEPS, quick ? 8 : 30}, {1, 1, quick ? 40 : 200}};
    double fixed_cpu = 0, std_cpu = 0;
    for (int k = 0; k < 2; k++) {
        int n = shapes[k].n;
        char req[1024];
        size_t rn = completion_request(req, sizeof req, shapes[k].gen, shapes[k].steps);
        direct_once(m, s, shapes[k].gen, shapes[k].steps);
        roundtrip(&c, req, rn); /* warm both */
        double *d = calloc((size_t)n, sizeof *d), *h = calloc((size_t)n, sizeof *h);
        double *dc = calloc((size_t)n, sizeof *dc), *hc = calloc((size_t)n, sizeof *hc);
        for (int i = 0; i < n; i++) {
            double c0 = cpu_now();
            d[i] = direct_once(m, s, shapes[k].gen, shapes[k].steps);
            double c1 = cpu_now();
            h[i] = roundtrip(&c, req, rn);
            double c2 = cpu_now();
            dc[i] = c1 - c0;
            hc[i] = c2 - c1;
        }
        double dm = quantile(d, (size_t)n, 0.5), hm = quantile(h, (size_t)n, 0.5);
        double dcm = quantile(dc, (size_t)n, 0.5), hcm = quantile(hc, (size_t)n, 0.5);
        printf("%s %2d tokens, %2d steps, %3d requests each (medians): CPU library %.2f ms, server %.2f ms, "
               "difference %.2f ms (%.1f%%); wall library %.2f ms, server %.2f ms\n",
               k ? "fixed cost:" : "\noverhead:  ", shapes[k].gen, shapes[k].steps, n, 1e3 * dcm, 1e3 * hcm,
               1e3 * (hcm - dcm), 100.0 * (hcm - dcm) / dcm, 1e3 * dm, 1e3 * hm);
        if (k) fixed_cpu = hcm - dcm;
        else std_cpu = dcm;
        free(d);
        free(h);
        free(dc);
        free(hc);
    }
    printf("server overhead per request (CPU, from the 1-token request) %.2f ms = %.2f%% of the %d-token "
           "request's %.1f ms\n",
           1e3 * fixed_cpu, 100.0 * fixed_cpu / std_cpu, GEN, 1e3 * std_cpu);
    close(c.fd);
    smdiff_sampler_free(s);
    stop(&v);

    /* 2. throughput: 2 slots, no refusals */
    printf("\nthroughput, 2 slots, queue 64, keep-alive clients:\n\n");
    printf("| concurrency | requests | req/s | p50 ms | p99 ms |\n| --- | --- | --- | --- | --- |\n");
    v = start(m, 2, 64);
    int clients[] = {1, 4, 16};
    int per_quick[] = {8, 2, 1}, per_full[] = {30, 8, 4};
    for (int i = 0; i < 3; i++) throughput(v.port, clients[i], quick ? per_quick[i] : per_full[i]);
    stop(&v);

    /* 3. /health while both slots generate (64 tokens, 32 steps each) */
    v = start(m, 2, 0);
    volatile int halt = 0;
    hog hogs[2] = {{0, v.port, &halt, 0}, {0, v.port, &halt, 0}};
    for (int i = 0; i < 2; i++) pthread_create(&hogs[i].th, NULL, hog_thread, &hogs[i]);
    const char *hreq = "GET /health HTTP/1.1\r\nHost: b\r\n\r\n";
    client hc;
    client_open(&hc, v.port);
    /* wait until both slots are busy */
    for (;;) {
        roundtrip(&hc, hreq, strlen(hreq));
        const char *p = strstr(hc.body, "\"slots_busy\":");
        if (p && atoi(p + 13) == 2) break;
        usleep(5000);
    }
    int nh = quick ? 300 : 1000;
    double *hl = calloc((size_t)nh, sizeof *hl);
    for (int i = 0; i < nh; i++) {
        hl[i] = roundtrip(&hc, hreq, strlen(hreq));
        usleep(2000);
    }
    halt = 1;
    close(hc.fd);
    for (int i = 0; i < 2; i++) pthread_join(hogs[i].th, NULL);
    printf("\n/health while both slots generate (%d requests, 2 ms apart): p50 %.3f ms, p99 %.3f ms, max %.3f ms "
           "(%d long generations ran meanwhile)\n",
           nh, 1e3 * quantile(hl, (size_t)nh, 0.5), 1e3 * quantile(hl, (size_t)nh, 0.99),
           1e3 * quantile(hl, (size_t)nh, 1.0), hogs[0].n + hogs[1].n);
    free(hl);
    stop(&v);
    smdiff_model_free(m);
    return 0;
}
