/* cmd_serve.c -- `smdiff serve`: the OpenAI-compatible HTTP server of
 * docs/SERVER.md around one model, until SIGTERM or SIGINT.
 *
 * Prints "smdiff serve: listening on http://HOST:PORT ..." on stderr once
 * the socket is bound (scripts read the port from it when --port 0 asks
 * for any free one), an access line per request with -v, and exits 0 after
 * a clean stop. Numbers are checked against the server options' bounds
 * (smdiff_server_option_info) before the model is loaded. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: smdiff serve [-m MODEL.gguf] [--host ADDR] [--port N] [--slots N] [--queue N]\n"
            "                    [--api-key KEY] [--timeout S] [options]\n"
            "\n"
            "Serves the model over OpenAI's HTTP API until SIGTERM or Ctrl-C. Endpoints:\n"
            "POST /v1/completions, POST /v1/chat/completions, GET /v1/models, /health,\n"
            "/metrics, and a playground page at /. See docs/SERVER.md.\n"
            "  -m, --model FILE      model (default: the bundled " CLI_DEFAULT_MODEL ", or $SMDIFF_MODEL)\n"
            "  --host ADDR           address to bind (default 127.0.0.1; 0.0.0.0 exposes the server)\n"
            "  --port N              port (default 8080; 0 = any free port, printed at start)\n"
            "  --slots N             generations at once (default 1)\n"
            "  --queue N             requests that may wait for a slot; more get 429 (default 8)\n"
            "  --api-key KEY         require 'Authorization: Bearer KEY' on /v1/ (or $SMDIFF_API_KEY)\n"
            "  --timeout S           seconds a generation request may take, queue included\n"
            "                        (default 300, 0 = none)\n"
            "  --read-timeout S      seconds to receive a request on a free connection (default 10)\n"
            "  --max-body BYTES      largest request body (default 1048576)\n"
            "  --max-tokens N        most tokens a request may generate (default 0 = the context)\n"
            "  -t, --threads N       threads per generation (default 0 = all CPUs)\n"
            "  --grace S             on SIGTERM, seconds running generations may finish (default 10)\n"
            "  -a, --name NAME       model id in the API (default: the file name without .gguf;\n"
            "                        llama.cpp's --alias)\n"
            "  -v, --verbose         log every request to stderr\n"
            "  -h, --help            this text\n");
}

enum { O_HOST = CLI_OPT_FIRST, O_PORT, O_SLOTS, O_QUEUE, O_KEY, O_TIMEOUT, O_READ, O_BODY, O_TOKENS, O_GRACE };
static const struct option longopts[] = {
    {"model", required_argument, NULL, 'm'},         {"host", required_argument, NULL, O_HOST},
    {"port", required_argument, NULL, O_PORT},       {"slots", required_argument, NULL, O_SLOTS},
    {"queue", required_argument, NULL, O_QUEUE},     {"api-key", required_argument, NULL, O_KEY},
    {"timeout", required_argument, NULL, O_TIMEOUT}, {"read-timeout", required_argument, NULL, O_READ},
    {"max-body", required_argument, NULL, O_BODY},   {"max-tokens", required_argument, NULL, O_TOKENS},
    {"threads", required_argument, NULL, 't'},       {"grace", required_argument, NULL, O_GRACE},
    {"name", required_argument, NULL, 'a'},          {"verbose", no_argument, NULL, 'v'},
    CLI_HELP_OPTION,                                 {0, 0, 0, 0},
};
const cli_spec cli_spec_serve = {"serve", "m:t:a:vh", longopts, usage};

typedef struct serve_args {
    const char *model, *host, *key, *name;
    int verbose;
    cli_settings server; /* SMDIFF_SERVER_* */
} serve_args;

static int parse_option(void *ud, const cli_args *a, int c, const char *v) {
    serve_args *s = ud;
    const char *opt = a->opt;
    switch (c) {
    case 'm': s->model = v; return 0;
    case O_HOST: s->host = v; return 0;
    case O_KEY: s->key = v; return 0;
    case 'a': s->name = v; return 0;
    case 'v': s->verbose = 1; return 0;
    case O_PORT: return cli_setting_parse(&s->server, opt, v, SMDIFF_SERVER_PORT);
    case O_SLOTS: return cli_setting_parse(&s->server, opt, v, SMDIFF_SERVER_SLOTS);
    case O_QUEUE: return cli_setting_parse(&s->server, opt, v, SMDIFF_SERVER_QUEUE);
    case O_TIMEOUT: return cli_setting_parse(&s->server, opt, v, SMDIFF_SERVER_TIMEOUT);
    case O_READ: return cli_setting_parse(&s->server, opt, v, SMDIFF_SERVER_READ_TIMEOUT);
    case O_BODY: return cli_setting_parse(&s->server, opt, v, SMDIFF_SERVER_MAX_BODY);
    case O_TOKENS: return cli_setting_parse(&s->server, opt, v, SMDIFF_SERVER_MAX_TOKENS);
    case 't': return cli_setting_parse(&s->server, opt, v, SMDIFF_SERVER_THREADS);
    case O_GRACE: return cli_setting_parse(&s->server, opt, v, SMDIFF_SERVER_SHUTDOWN_GRACE);
    case CLI_ARG: return cli_usage_error("unexpected argument '%s' (the model goes after -m)", v);
    default: return CLI_EXIT_USAGE;
    }
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

/* The file name without folders and .gguf. */
static void default_name(const char *path, char *out, size_t cap) {
    const char *base = strrchr(path, '/');
    snprintf(out, cap, "%s", base ? base + 1 : path);
    size_t n = strlen(out);
    if (n > 5 && !strcmp(out + n - 5, ".gguf")) out[n - 5] = '\0';
}

/* Load the model and create the server with every option of s; 0, or an
 * exit status after saying why (g_server is then NULL). */
static int create_server(const serve_args *s) {
    smdiff_model *m = NULL;
    int32_t rc = smdiff_model_create(&m);
    if (rc) return cli_fail("create model", rc, smdiff_last_error());
    if ((rc = smdiff_model_load_file(m, s->model))) {
        int ret = cli_fail(s->model, rc, smdiff_last_error());
        smdiff_model_free(m);
        return ret;
    }
    rc = smdiff_server_create(m, &g_server);
    smdiff_model_free(m); /* the server holds its own reference */
    if (rc) return cli_fail("create server", rc, smdiff_last_error());
    char id[256];
    default_name(s->model, id, sizeof id);
    int ret = cli_settings_apply(&s->server, g_server);
    if (!ret && (rc = smdiff_server_set_model_name(g_server, s->name ? s->name : id)))
        ret = cli_refused("--name", rc, smdiff_server_last_error(g_server));
    if (!ret && s->host && (rc = smdiff_server_set_host(g_server, s->host)))
        ret = cli_refused("--host", rc, smdiff_server_last_error(g_server));
    if (!ret && s->key && (rc = smdiff_server_set_api_key(g_server, s->key)))
        ret = cli_refused("--api-key", rc, smdiff_server_last_error(g_server));
    if (ret) {
        smdiff_server_free(g_server);
        g_server = NULL;
    }
    return ret;
}

/* Stop on the first SIGTERM or SIGINT; a second ends the process at once. */
static void catch_signals(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESETHAND;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
}

int cmd_serve(int argc, char **argv) {
    serve_args s = {.key = getenv("SMDIFF_API_KEY")};
    cli_args a;
    int r = cli_parse(&a, &cli_spec_serve, argc, argv, parse_option, &s);
    if (r) return r < 0 ? CLI_EXIT_OK : r;
    if (!s.model && !(s.model = cli_default_model())) {
        fprintf(stderr, "%s: no -m given and the bundled model " CLI_DEFAULT_MODEL
                        " was not found (models/, next to the executable, or $SMDIFF_MODEL)\n",
                cli_prog());
        return CLI_EXIT_USAGE;
    }
    smdiff_set_log_callback(on_log, NULL, s.verbose ? SMDIFF_LOG_INFO : SMDIFF_LOG_WARN);
    if ((r = create_server(&s))) return r;
    int32_t rc = smdiff_server_listen(g_server);
    if (rc) {
        r = cli_fail("listen", rc, smdiff_server_last_error(g_server));
    } else {
        catch_signals();
        int32_t port = 0;
        int64_t slots = 0, queue = 0;
        smdiff_server_port(g_server, &port);
        smdiff_server_get_int(g_server, SMDIFF_SERVER_SLOTS, &slots);
        smdiff_server_get_int(g_server, SMDIFF_SERVER_QUEUE, &queue);
        const char *h = s.host ? s.host : "127.0.0.1";
        int v6 = strchr(h, ':') != NULL;
        char id[256];
        default_name(s.model, id, sizeof id);
        fprintf(stderr, "smdiff serve: listening on http://%s%s%s:%d (model %s, %lld slots, queue %lld)\n",
                v6 ? "[" : "", h, v6 ? "]" : "", (int)port, s.name ? s.name : id, (long long)slots,
                (long long)queue);
        if ((rc = smdiff_server_run(g_server))) r = cli_fail("serve", rc, smdiff_server_last_error(g_server));
        else fprintf(stderr, "smdiff serve: stopped\n");
    }
    smdiff_server_free(g_server);
    g_server = NULL;
    return r;
}
