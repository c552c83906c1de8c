/* cmd_serve.c -- `smdiff serve`: the OpenAI-compatible HTTP server of
 * docs/SERVER.md around one model, until SIGTERM or SIGINT.
 *
 * Prints "smdiff serve: listening on http://HOST:PORT ..." on stderr once
 * the socket is bound (scripts read the port from it when --port 0 asks
 * for any free one), an access line per request with -v, and exits 0 after
 * a clean stop. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: smdiff serve [-m MODEL.gguf] [options]\n"
            "  -m, --model FILE      model (default: the bundled " CLI_DEFAULT_MODEL ", or $SMDIFF_MODEL)\n"
            "      --host ADDR       address to bind (default 127.0.0.1; 0.0.0.0 exposes the server)\n"
            "      --port N          port (default 8080; 0 = any free port, printed at start)\n"
            "      --slots N         generations at once (default 1)\n"
            "      --queue N         requests that may wait for a slot; more get 429 (default 8)\n"
            "      --api-key KEY     require 'Authorization: Bearer KEY' on /v1/ (or $SMDIFF_API_KEY)\n"
            "      --timeout S       seconds a generation request may take, queue included (default 300,\n"
            "                        0 = none)\n"
            "      --read-timeout S  seconds to receive a request on a free connection (default 10)\n"
            "      --max-body BYTES  largest request body (default 1048576)\n"
            "      --max-tokens N    most tokens a request may generate (default: the model's context)\n"
            "      --threads N       threads per generation (default: all CPUs)\n"
            "      --grace S         on SIGTERM, seconds running generations may finish (default 10)\n"
            "      --name NAME       model id in the API (default: the file name without .gguf)\n"
            "  -v, --verbose         log every request to stderr\n"
            "  -h, --help            this text\n"
            "Endpoints: POST /v1/completions, POST /v1/chat/completions, GET /v1/models, /health,\n"
            "/metrics, and a playground page at /. See docs/SERVER.md.\n");
}

static smdiff_server *g_server;

static void on_signal(int sig) {
    (void)sig;
    smdiff_server_stop(g_server); /* async-signal-safe: a flag and a wake-up */
}

static void on_log(int32_t level, const char *msg, void *ud) {
    (void)ud;
    static const char *const names[] = {"error", "warning", "info", "debug"};
    fprintf(stderr, "smdiff serve: %s: %s\n", names[level >= 0 && level <= 3 ? level : 3], msg);
}

/* A whole-string number, or a message naming the option. */
static int num(const char *opt, const char *v, double *out) {
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (end == v || *end || errno || !isfinite(x)) {
        fprintf(stderr, "smdiff serve: %s: '%s' is not a number\n", opt, v);
        return -1;
    }
    *out = x;
    return 0;
}

typedef struct setting {
    int32_t key;
    int is_int;
    double v;
    int given;
    const char *opt;
} setting;

/* The file name without folders and .gguf. */
static void default_name(const char *path, char *out, size_t cap) {
    const char *base = strrchr(path, '/');
    snprintf(out, cap, "%s", base ? base + 1 : path);
    size_t n = strlen(out);
    if (n > 5 && !strcmp(out + n - 5, ".gguf")) out[n - 5] = '\0';
}

int cmd_serve(int argc, char **argv) {
    enum { O_HOST = 256, O_PORT, O_SLOTS, O_QUEUE, O_KEY, O_TIMEOUT, O_READ, O_BODY, O_TOKENS, O_THREADS,
           O_GRACE, O_NAME };
    static const struct option longs[] = {
        {"model", required_argument, NULL, 'm'},     {"host", required_argument, NULL, O_HOST},
        {"port", required_argument, NULL, O_PORT},   {"slots", required_argument, NULL, O_SLOTS},
        {"queue", required_argument, NULL, O_QUEUE}, {"api-key", required_argument, NULL, O_KEY},
        {"timeout", required_argument, NULL, O_TIMEOUT}, {"read-timeout", required_argument, NULL, O_READ},
        {"max-body", required_argument, NULL, O_BODY}, {"max-tokens", required_argument, NULL, O_TOKENS},
        {"threads", required_argument, NULL, O_THREADS}, {"grace", required_argument, NULL, O_GRACE},
        {"name", required_argument, NULL, O_NAME},   {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},            {NULL, 0, NULL, 0},
    };
    setting set[] = {
        {SMDIFF_SERVER_PORT, 1, 0, 0, "--port"},          {SMDIFF_SERVER_SLOTS, 1, 0, 0, "--slots"},
        {SMDIFF_SERVER_QUEUE, 1, 0, 0, "--queue"},        {SMDIFF_SERVER_TIMEOUT, 0, 0, 0, "--timeout"},
        {SMDIFF_SERVER_READ_TIMEOUT, 0, 0, 0, "--read-timeout"}, {SMDIFF_SERVER_MAX_BODY, 1, 0, 0, "--max-body"},
        {SMDIFF_SERVER_MAX_TOKENS, 1, 0, 0, "--max-tokens"}, {SMDIFF_SERVER_THREADS, 1, 0, 0, "--threads"},
        {SMDIFF_SERVER_SHUTDOWN_GRACE, 0, 0, 0, "--grace"},
    };
    const char *model_path = NULL, *host = NULL, *key = getenv("SMDIFF_API_KEY"), *name = NULL;
    int verbose = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "m:vh", longs, NULL)) != -1) {
        if (c >= O_PORT && c <= O_GRACE && c != O_KEY) {
            static const int order[] = {O_PORT, O_SLOTS, O_QUEUE, O_TIMEOUT, O_READ, O_BODY, O_TOKENS, O_THREADS,
                                        O_GRACE};
            for (size_t i = 0; i < sizeof order / sizeof order[0]; i++)
                if (order[i] == c) {
                    if (num(set[i].opt, optarg, &set[i].v)) return 2;
                    set[i].given = 1;
                }
            continue;
        }
        switch (c) {
        case 'm': model_path = optarg; break;
        case O_HOST: host = optarg; break;
        case O_KEY: key = optarg; break;
        case O_NAME: name = optarg; break;
        case 'v': verbose = 1; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "smdiff serve: unexpected argument '%s'\n\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    if (!model_path && !(model_path = cli_default_model())) {
        fprintf(stderr, "smdiff serve: no -m given and the bundled model " CLI_DEFAULT_MODEL
                        " was not found (models/, next to the executable, or $SMDIFF_MODEL)\n");
        return 2;
    }
    smdiff_set_log_callback(on_log, NULL, verbose ? SMDIFF_LOG_INFO : SMDIFF_LOG_WARN);
    smdiff_model *m = NULL;
    int ret = 1;
    int32_t rc = smdiff_model_create(&m);
    if (rc) return cli_fail("create model", rc, smdiff_last_error());
    if ((rc = smdiff_model_load_file(m, model_path))) {
        ret = cli_fail(model_path, rc, smdiff_last_error());
        smdiff_model_free(m);
        return ret;
    }
    rc = smdiff_server_create(m, &g_server);
    smdiff_model_free(m); /* the server holds its own reference */
    if (rc) return cli_fail("create server", rc, smdiff_last_error());
    char id[256];
    default_name(model_path, id, sizeof id);
    if ((rc = smdiff_server_set_model_name(g_server, name ? name : id)) ||
        (host && (rc = smdiff_server_set_host(g_server, host))) ||
        (key && (rc = smdiff_server_set_api_key(g_server, key)))) {
        ret = cli_fail("server options", rc, smdiff_server_last_error(g_server));
        goto done;
    }
    for (size_t i = 0; i < sizeof set / sizeof set[0]; i++) {
        if (!set[i].given) continue;
        if (set[i].is_int && set[i].v != floor(set[i].v)) {
            fprintf(stderr, "smdiff serve: %s: %g is not a whole number\n", set[i].opt, set[i].v);
            ret = 2;
            goto done;
        }
        rc = set[i].is_int ? smdiff_server_set_int(g_server, set[i].key, (int64_t)set[i].v)
                           : smdiff_server_set_double(g_server, set[i].key, set[i].v);
        if (rc) {
            ret = cli_fail(set[i].opt, rc, smdiff_server_last_error(g_server));
            goto done;
        }
    }
    if ((rc = smdiff_server_listen(g_server))) {
        ret = cli_fail("listen", rc, smdiff_server_last_error(g_server));
        goto done;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESETHAND; /* a second signal ends the process at once */
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    int32_t port = 0;
    int64_t slots = 0, queue = 0;
    smdiff_server_port(g_server, &port);
    smdiff_server_get_int(g_server, SMDIFF_SERVER_SLOTS, &slots);
    smdiff_server_get_int(g_server, SMDIFF_SERVER_QUEUE, &queue);
    const char *h = host ? host : "127.0.0.1";
    int v6 = strchr(h, ':') != NULL;
    fprintf(stderr, "smdiff serve: listening on http://%s%s%s:%d (model %s, %lld slots, queue %lld)\n",
            v6 ? "[" : "", h, v6 ? "]" : "", (int)port, name ? name : id, (long long)slots, (long long)queue);
    if ((rc = smdiff_server_run(g_server))) {
        ret = cli_fail("serve", rc, smdiff_server_last_error(g_server));
        goto done;
    }
    fprintf(stderr, "smdiff serve: stopped\n");
    ret = 0;
done:
    smdiff_server_free(g_server);
    g_server = NULL;
    return ret;
}
