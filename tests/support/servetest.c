#include <arpa/inet.h>
#include <errno.h>
#include <http_parser.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "servetest.h"
#include "smdiff/smdiff_decoder.h"

double st_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* --------------------------------------------------------------- model */

static smdiff_model *g_model;
static pthread_once_t g_model_once = PTHREAD_ONCE_INIT;

static void load_model(void) {
    const char *path = "models/smdiff-gutenberg-18m-sm.gguf";
    if (access(path, R_OK)) return;
    smdiff_model *m = NULL;
    if (smdiff_model_create(&m)) return;
    if (smdiff_model_load_file(m, path)) {
        smdiff_model_free(m);
        return;
    }
    g_model = m;
}

smdiff_model *st_bundled_model(void) {
    pthread_once(&g_model_once, load_model);
    return g_model;
}

/* ---------------------------------------------------------- slow strategy */

volatile int st_slow_ms = 50;

static int32_t slow_select(const smdiff_step_view *v, int32_t *commit, int32_t *n_commit, int32_t *remask,
                           int32_t *n_remask, void *ud) {
    (void)remask;
    (void)ud;
    struct timespec t = {st_slow_ms / 1000, (long)(st_slow_ms % 1000) * 1000000L};
    nanosleep(&t, NULL);
    /* positions arrive in canvas order: commit the leftmost n_transfer */
    size_t k = v->n_transfer > 0 ? v->n_transfer : 1;
    if (k > v->n_masked) k = v->n_masked;
    for (size_t i = 0; i < k; i++) commit[i] = (int32_t)i;
    *n_commit = (int32_t)k;
    *n_remask = 0;
    return SMDIFF_OK;
}

static void register_slow(void) {
    smdiff_decoder d = {
        .struct_size = sizeof d,
        .abi_version = SMDIFF_DECODER_ABI_VERSION,
        .name = "test_slow",
        .description = "sleeps, then commits left to right",
        .select = slow_select,
    };
    smdiff_decoder_register(&d, NULL);
}

static pthread_once_t g_slow_once = PTHREAD_ONCE_INIT;
void st_register_slow(void) { pthread_once(&g_slow_once, register_slow); }

/* ------------------------------------------------------------ responses */

typedef struct parse_state {
    st_resp *out;
    int max, count;
    char field[128];
    int in_value;
    size_t head_n;
} parse_state;

static st_resp *cur(http_parser *p) {
    parse_state *s = p->data;
    return &s->out[s->count];
}

static int on_begin(http_parser *p) {
    parse_state *s = p->data;
    if (s->count >= s->max) return -1;
    memset(cur(p), 0, sizeof(st_resp));
    s->head_n = 0;
    return 0;
}

static void head_add(http_parser *p, const char *at, size_t n, int lower) {
    parse_state *s = p->data;
    st_resp *r = cur(p);
    for (size_t i = 0; i < n && s->head_n + 2 < sizeof r->head; i++) {
        char c = at[i];
        if (lower && c >= 'A' && c <= 'Z') c = (char)(c + 32);
        r->head[s->head_n++] = c;
    }
    r->head[s->head_n] = '\0';
}

static int on_field(http_parser *p, const char *at, size_t n) {
    parse_state *s = p->data;
    if (s->in_value) {
        head_add(p, "\n", 1, 0);
        s->in_value = 0;
    }
    head_add(p, at, n, 1);
    return 0;
}

static int on_value(http_parser *p, const char *at, size_t n) {
    parse_state *s = p->data;
    if (!s->in_value) {
        head_add(p, ": ", 2, 0);
        s->in_value = 1;
    }
    head_add(p, at, n, 0);
    return 0;
}

static int on_headers_done(http_parser *p) {
    parse_state *s = p->data;
    if (s->in_value) head_add(p, "\n", 1, 0);
    s->in_value = 0;
    cur(p)->status = (int)p->status_code;
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t n) {
    st_resp *r = cur(p);
    char *b = realloc(r->body, r->n + n + 1);
    if (!b) return -1;
    memcpy(b + r->n, at, n);
    r->body = b;
    r->n += n;
    r->body[r->n] = '\0';
    return 0;
}

static int on_done(http_parser *p) {
    parse_state *s = p->data;
    st_resp *r = cur(p);
    r->complete = 1;
    r->keep_alive = http_should_keep_alive(p);
    if (!r->body) r->body = calloc(1, 1);
    s->count++;
    return 0;
}

int st_parse_responses(const char *data, size_t n, st_resp *out, int max) {
    static const http_parser_settings set = {.on_message_begin = on_begin,
                                             .on_header_field = on_field,
                                             .on_header_value = on_value,
                                             .on_headers_complete = on_headers_done,
                                             .on_body = on_body,
                                             .on_message_complete = on_done};
    parse_state s = {out, max, 0, {0}, 0, 0};
    http_parser p;
    http_parser_init(&p, HTTP_RESPONSE);
    p.data = &s;
    size_t k = http_parser_execute(&p, &set, data, n);
    if (k == n && HTTP_PARSER_ERRNO(&p) == HPE_OK) http_parser_execute(&p, &set, NULL, 0); /* EOF ends a close-delimited body */
    if (s.count < max && cur(&p)->status && !cur(&p)->complete && !cur(&p)->body) cur(&p)->body = calloc(1, 1);
    return s.count;
}

void st_resp_free(st_resp *r) {
    free(r->body);
    r->body = NULL;
}

const char *st_header(const st_resp *r, const char *name) {
    static char val[1024];
    size_t len = strlen(name);
    const char *p = r->head;
    while (*p) {
        const char *eol = strchr(p, '\n');
        if (!eol) eol = p + strlen(p);
        if ((size_t)(eol - p) > len + 1 && !strncmp(p, name, len) && p[len] == ':') {
            const char *v = p + len + 1;
            while (*v == ' ') v++;
            snprintf(val, sizeof val, "%.*s", (int)(eol - v), v);
            return val;
        }
        p = *eol ? eol + 1 : eol;
    }
    return NULL;
}

/* -------------------------------------------------------------- sockets */

int st_connect(int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a)) {
        close(fd);
        return -1;
    }
    return fd;
}

int st_send_all(int fd, const char *s, size_t n) {
    while (n) {
        ssize_t k = send(fd, s, n, MSG_NOSIGNAL);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return -1;
        s += k;
        n -= (size_t)k;
    }
    return 0;
}

char *st_read_all(int fd, size_t *n, double timeout) {
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    double end = st_now() + timeout;
    for (;;) {
        double left = end - st_now();
        if (left <= 0) break;
        struct pollfd pf = {fd, POLLIN, 0};
        int r = poll(&pf, 1, (int)(left * 1000) + 1);
        if (r <= 0) break;
        if (len + 4096 > cap) buf = realloc(buf, cap *= 2);
        ssize_t k = recv(fd, buf + len, cap - len - 1, 0);
        if (k <= 0) break;
        len += (size_t)k;
    }
    buf[len] = '\0';
    if (n) *n = len;
    return buf;
}

int st_request(int port, const char *method, const char *path, const char *body, const char *extra,
               st_resp *out) {
    memset(out, 0, sizeof *out);
    int fd = st_connect(port);
    if (fd < 0) return 0;
    char head[2048];
    size_t blen = body ? strlen(body) : 0;
    int hl = snprintf(head, sizeof head, "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n%s", method,
                      path, extra ? extra : "");
    if (body)
        hl += snprintf(head + hl, sizeof head - (size_t)hl, "Content-Type: application/json\r\nContent-Length: %zu\r\n",
                       blen);
    snprintf(head + hl, sizeof head - (size_t)hl, "\r\n");
    st_send_all(fd, head, strlen(head));
    if (body) st_send_all(fd, body, blen);
    size_t n = 0;
    char *data = st_read_all(fd, &n, 60);
    close(fd);
    st_parse_responses(data, n, out, 1);
    free(data);
    return out->status;
}

int st_sse_events(const char *body, char ***out) {
    int n = 0, cap = 16;
    char **ev = malloc(sizeof(char *) * (size_t)cap);
    const char *p = body;
    while (p && *p) {
        const char *eol = strstr(p, "\n");
        if (!eol) eol = p + strlen(p);
        if (!strncmp(p, "data: ", 6)) {
            if (n == cap) ev = realloc(ev, sizeof(char *) * (size_t)(cap *= 2));
            size_t len = (size_t)(eol - p - 6);
            ev[n] = malloc(len + 1);
            memcpy(ev[n], p + 6, len);
            ev[n++][len] = '\0';
        }
        p = *eol ? eol + 1 : NULL;
    }
    *out = ev;
    return n;
}

void st_free_events(char **ev, int n) {
    for (int i = 0; i < n; i++) free(ev[i]);
    free(ev);
}
