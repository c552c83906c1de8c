/* request.c -- OpenAI request bodies to sd_gen_request.
 *
 * One table lists every field a request may carry, with the endpoints it
 * belongs to and what the server does with it (docs/SERVER.md mirrors it):
 * parsed and used, accepted and ignored, or accepted only at its default
 * (OpenAI features diffusion decoding does not have). Anything else is
 * refused as OpenAI refuses it ("Unrecognized request argument"), so a
 * misspelt diffusion setting is an error rather than silently ignored.
 * Values are checked for their JSON type here; numeric bounds are the
 * sampler's and soft-mask schedule's own (sd_request_configure), so the
 * server and the library can never disagree about them.
 */
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "serve.h"

int sd_api_fail(sd_api_error *e, int status, const char *type, const char *code, const char *param,
                const char *fmt, ...) {
    e->status = status;
    e->type = type;
    e->code = code;
    snprintf(e->param, sizeof e->param, "%s", param ? param : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
    return -1;
}

static int bad(sd_api_error *e, const char *param, const char *fmt, ...) SD_PRINTF(3, 4);
static int bad(sd_api_error *e, const char *param, const char *fmt, ...) {
    char msg[sizeof e->message];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return sd_api_fail(e, 400, "invalid_request_error", NULL, param, "%s", msg);
}

static const char *json_kind(const json_t *v) {
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    default: return "null";
    }
}

static int wrong_type(sd_api_error *e, const char *name, const char *want, const json_t *v) {
    return bad(e, name, "Invalid type for '%s': expected %s, but got %s instead.", name, want,
               json_kind(v));
}

static char *dup_str(const json_t *v) {
    size_t n = json_string_length(v);
    char *s = sd_malloc(n + 1);
    if (s) {
        memcpy(s, json_string_value(v), n);
        s[n] = '\0';
    }
    return s;
}

/* ------------------------------------------------------ typed fields */

enum { W_CMPL = 1, W_CHAT = 2, W_BOTH = 3 };

enum {
    F_STR,    /* char * */
    F_INT,    /* int64_t, >= 0 */
    F_NUM,    /* double */
    F_BOOL,   /* int 0/1 */
    F_FN,     /* custom parser */
    F_IGNORE, /* any value, ignored */
};

typedef struct field {
    const char *name;
    int where, kind;
    size_t off;
    int (*fn)(const char *name, json_t *v, sd_gen_request *r, sd_api_error *e);
} field;

#define AT(m) offsetof(sd_gen_request, m)

static int set_field(const field *f, json_t *v, sd_gen_request *r, sd_api_error *e) {
    char *base = (char *)r;
    if (json_is_null(v) && f->kind != F_FN) return 0; /* null = the default */
    switch (f->kind) {
    case F_STR:
        if (!json_is_string(v)) return wrong_type(e, f->name, "a string", v);
        sd_free(*(char **)(base + f->off));
        if (!(*(char **)(base + f->off) = dup_str(v)))
            return sd_api_fail(e, 500, "server_error", NULL, NULL, "out of memory");
        return 0;
    case F_INT: {
        double d = json_is_integer(v) ? (double)json_integer_value(v) : json_is_real(v) ? json_real_value(v) : NAN;
        if (!json_is_number(v) || d != floor(d)) return wrong_type(e, f->name, "an integer", v);
        if (d < 0) return bad(e, f->name, "Invalid '%s': %lld is below the minimum of 0.", f->name, (long long)d);
        *(int64_t *)(base + f->off) = json_is_integer(v) ? (int64_t)json_integer_value(v) : (int64_t)d;
        return 0;
    }
    case F_NUM:
        if (!json_is_number(v)) return wrong_type(e, f->name, "a number", v);
        *(double *)(base + f->off) = json_number_value(v);
        return 0;
    case F_BOOL:
        if (!json_is_boolean(v)) return wrong_type(e, f->name, "a boolean", v);
        *(int *)(base + f->off) = json_is_true(v);
        return 0;
    case F_FN: return f->fn(f->name, v, r, e);
    default: return 0;
    }
}

/* ----------------------------------------------------- custom fields */

/* Accepted only at OpenAI's default: null, or the value given. */
static int only_default(const char *name, json_t *v, int ok, const char *why, sd_api_error *e) {
    if (json_is_null(v) || ok) return 0;
    return sd_api_fail(e, 400, "invalid_request_error", "unsupported_parameter", name,
                       "'%s' is not supported: %s", name, why);
}

static int f_n(const char *name, json_t *v, sd_gen_request *r, sd_api_error *e) {
    (void)r;
    return only_default(name, v, json_is_integer(v) && json_integer_value(v) == 1,
                        "one choice per request (n = 1)", e);
}

static int f_zero(const char *name, json_t *v, sd_gen_request *r, sd_api_error *e) {
    (void)r;
    return only_default(name, v, json_is_number(v) && json_number_value(v) == 0,
                        "diffusion decoding has no repetition penalties (0 only)", e);
}

static int f_logit_bias(const char *name, json_t *v, sd_gen_request *r, sd_api_error *e) {
    (void)r;
    return only_default(name, v, json_is_object(v) && json_object_size(v) == 0,
                        "token biases are not implemented", e);
}

static int f_logprobs(const char *name, json_t *v, sd_gen_request *r, sd_api_error *e) {
    (void)r;
    return only_default(name, v, json_is_false(v) || (json_is_integer(v) && json_integer_value(v) == 0),
                        "log probabilities are not reported", e);
}

static int f_best_of(const char *name, json_t *v, sd_gen_request *r, sd_api_error *e) {
    (void)r;
    return only_default(name, v, json_is_integer(v) && json_integer_value(v) == 1,
                        "one candidate per request (best_of = 1)", e);
}

/* The text after the completion: the span between prompt and suffix is
 * denoised with both as context (job.c). "" and null mean none. */
static int f_suffix(const char *name, json_t *v, sd_gen_request *r, sd_api_error *e) {
    if (json_is_null(v) || (json_is_string(v) && json_string_length(v) == 0)) return 0;
    if (!json_is_string(v)) return wrong_type(e, name, "a string", v);
    sd_free(r->suffix);
    if (!(r->suffix = dup_str(v))) return sd_api_fail(e, 500, "server_error", NULL, NULL, "out of memory");
    return 0;
}

static int f_tools(const char *name, json_t *v, sd_gen_request *r, sd_api_error *e) {
    (void)r;
    return only_default(name, v, json_is_array(v) && json_array_size(v) == 0,
                        "tool calls are not implemented", e);
}

static int f_tool_choice(const char *name, json_t *v, sd_gen_request *r, sd_api_error *e) {
    (void)r;
    return only_default(name, v, json_is_string(v) && !strcmp(json_string_value(v), "none"),
                        "tool calls are not implemented", e);
}

static int f_response_format(const char *name, json_t *v, sd_gen_request *r, sd_api_error *e) {
    (void)r;
    json_t *t = json_is_object(v) ? json_object_get(v, "type") : NULL;
    return only_default(name, v, t && json_is_string(t) && !strcmp(json_string_value(t), "text"),
                        "only {\"type\": \"text\"} output is produced", e);
}

static int f_stream_options(const char *name, json_t *v, sd_gen_request *r, sd_api_error *e) {
    if (json_is_null(v)) return 0;
    if (!json_is_object(v)) return wrong_type(e, name, "an object", v);
    const char *k;
    json_t *x;
    json_object_foreach(v, k, x) {
        if (strcmp(k, "include_usage"))
            return bad(e, name, "Unrecognized stream option: %s", k);
        if (!json_is_boolean(x) && !json_is_null(x))
            return wrong_type(e, "stream_options.include_usage", "a boolean", x);
        r->include_usage = json_is_true(x);
    }
    return 0;
}

static int f_max_tokens(const char *name, json_t *v, sd_gen_request *r, sd_api_error *e) {
    if (json_is_null(v)) return 0;
    if (!json_is_integer(v)) return wrong_type(e, name, "an integer", v);
    json_int_t x = json_integer_value(v);
    if (x < 1) return bad(e, name, "Invalid '%s': %lld is below the minimum of 1.", name, (long long)x);
    r->max_tokens = x;
    return 0;
}

static int f_softmask(const char *name, json_t *v, sd_gen_request *r, sd_api_error *e) {
    if (json_is_null(v)) return 0;
    const char *s = json_is_string(v) ? json_string_value(v) : NULL;
    if (!s) return wrong_type(e, name, "a string", v);
    r->softmask = !strcmp(s, "off") ? SMDIFF_SM_OFF
                  : !strcmp(s, "entropy") ? SMDIFF_SM_ENTROPY
                  : !strcmp(s, "constant") ? SMDIFF_SM_CONSTANT
                                           : -1;
    if (r->softmask < 0)
        return bad(e, name, "Invalid '%s': '%s' is not one of 'off', 'entropy', 'constant'.", name, s);
    return 0;
}

static int f_stop(const char *name, json_t *v, sd_gen_request *r, sd_api_error *e) {
    if (json_is_null(v)) return 0;
    if (!json_is_array(v) && !json_is_string(v)) return wrong_type(e, name, "a string or an array of strings", v);
    size_t n = json_is_array(v) ? json_array_size(v) : 1;
    if (n > SD_MAX_STOP) return bad(e, name, "Invalid '%s': at most %d stop sequences.", name, SD_MAX_STOP);
    for (size_t i = 0; i < n; i++) {
        json_t *s = json_is_array(v) ? json_array_get(v, i) : v;
        if (!json_is_string(s)) return wrong_type(e, name, "a string or an array of strings", s);
        if (!json_string_length(s)) return bad(e, name, "Invalid '%s': a stop sequence is empty.", name);
        if (!(r->stop[r->n_stop] = dup_str(s))) return sd_api_fail(e, 500, "server_error", NULL, NULL, "out of memory");
        r->n_stop++;
    }
    return 0;
}

/* A token id array [int, ...]. */
static int take_ids(const char *name, json_t *a, sd_gen_request *r, sd_api_error *e) {
    size_t n = json_array_size(a);
    if (!n) return bad(e, name, "Invalid '%s': the prompt is empty.", name);
    if (!(r->prompt_ids = sd_malloc(n * sizeof(int32_t))))
        return sd_api_fail(e, 500, "server_error", NULL, NULL, "out of memory");
    for (size_t i = 0; i < n; i++) {
        json_t *x = json_array_get(a, i);
        if (!json_is_integer(x)) return wrong_type(e, name, "an array of token ids", x);
        json_int_t id = json_integer_value(x);
        if (id < 0 || id > INT32_MAX)
            return bad(e, name, "Invalid '%s': token id %lld is out of range.", name, (long long)id);
        r->prompt_ids[i] = (int32_t)id;
    }
    r->n_prompt_ids = n;
    return 0;
}

static int f_prompt(const char *name, json_t *v, sd_gen_request *r, sd_api_error *e) {
    if (json_is_string(v)) {
        if (!(r->prompt = dup_str(v))) return sd_api_fail(e, 500, "server_error", NULL, NULL, "out of memory");
        return 0;
    }
    if (!json_is_array(v)) return wrong_type(e, name, "a string or an array", v);
    json_t *first = json_array_get(v, 0);
    if (first && (json_is_string(first) || json_is_array(first))) {
        if (json_array_size(v) != 1)
            return sd_api_fail(e, 400, "invalid_request_error", "unsupported_parameter", name,
                               "one prompt per request is supported, got %zu", json_array_size(v));
        if (json_is_array(first)) return take_ids(name, first, r, e);
        return f_prompt(name, first, r, e);
    }
    return take_ids(name, v, r, e);
}

/* content: a string, or an array of {"type": "text", "text": ...} parts. */
static int message_content(json_t *c, size_t i, char **out, sd_api_error *e) {
    char where[48];
    snprintf(where, sizeof where, "messages[%zu].content", i);
    if (json_is_null(c) || !c) {
        *out = sd_strdup("");
    } else if (json_is_string(c)) {
        *out = dup_str(c);
    } else if (json_is_array(c)) {
        sd_sbuf b = {0};
        for (size_t k = 0; k < json_array_size(c); k++) {
            json_t *part = json_array_get(c, k), *t = json_object_get(part, "type"),
                   *text = json_object_get(part, "text");
            if (!json_is_object(part) || !json_is_string(t) || strcmp(json_string_value(t), "text") ||
                !json_is_string(text)) {
                sd_sbuf_free(&b);
                return sd_api_fail(e, 400, "invalid_request_error", "unsupported_parameter", where,
                                   "only text content parts ({\"type\": \"text\", \"text\": ...}) are supported");
            }
            sd_sbuf_add(&b, json_string_value(text), json_string_length(text));
        }
        sd_sbuf_add(&b, "", 0);
        if (b.oom) {
            sd_sbuf_free(&b);
            return sd_api_fail(e, 500, "server_error", NULL, NULL, "out of memory");
        }
        *out = sd_sbuf_take(&b, NULL);
    } else {
        return wrong_type(e, where, "a string or an array of content parts", c);
    }
    return *out ? 0 : sd_api_fail(e, 500, "server_error", NULL, NULL, "out of memory");
}

static int f_messages(const char *name, json_t *v, sd_gen_request *r, sd_api_error *e) {
    if (!json_is_array(v)) return wrong_type(e, name, "an array", v);
    size_t n = json_array_size(v);
    if (!n) return bad(e, name, "Invalid '%s': empty array. Expected an array with minimum length 1.", name);
    r->roles = sd_calloc(n, sizeof(char *));
    r->contents = sd_calloc(n, sizeof(char *));
    if (!r->roles || !r->contents) return sd_api_fail(e, 500, "server_error", NULL, NULL, "out of memory");
    static const char *const roles[] = {"system", "developer", "user", "assistant", "tool"};
    for (size_t i = 0; i < n; i++) {
        json_t *m = json_array_get(v, i), *role = json_object_get(m, "role");
        char where[40];
        snprintf(where, sizeof where, "messages[%zu].role", i);
        if (!json_is_object(m)) return wrong_type(e, "messages[]", "an object", m);
        if (!json_is_string(role)) return bad(e, where, "Missing or invalid '%s'.", where);
        const char *rs = json_string_value(role);
        size_t k = 0;
        while (k < sizeof roles / sizeof roles[0] && strcmp(rs, roles[k])) k++;
        if (k == sizeof roles / sizeof roles[0])
            return bad(e, where, "Invalid '%s': '%s' is not one of system, developer, user, assistant, tool.",
                       where, rs);
        /* OpenAI's "developer" is the newer name of "system". */
        r->roles[i] = sd_strdup(k == 1 ? "system" : rs);
        r->n_messages = i + 1;
        if (!r->roles[i]) return sd_api_fail(e, 500, "server_error", NULL, NULL, "out of memory");
        if (message_content(json_object_get(m, "content"), i, &r->contents[i], e)) return -1;
    }
    return 0;
}

static const field k_fields[] = {
    /* OpenAI's fields */
    {"model", W_BOTH, F_STR, AT(model), NULL},
    {"prompt", W_CMPL, F_FN, 0, f_prompt},
    {"messages", W_CHAT, F_FN, 0, f_messages},
    {"max_tokens", W_BOTH, F_FN, 0, f_max_tokens},
    {"max_completion_tokens", W_CHAT, F_FN, 0, f_max_tokens},
    {"temperature", W_BOTH, F_NUM, AT(temperature), NULL},
    {"top_p", W_BOTH, F_NUM, AT(top_p), NULL},
    {"seed", W_BOTH, F_INT, AT(seed), NULL},
    {"stream", W_BOTH, F_BOOL, AT(stream), NULL},
    {"stream_options", W_BOTH, F_FN, 0, f_stream_options},
    {"stop", W_BOTH, F_FN, 0, f_stop},
    {"echo", W_CMPL, F_BOOL, AT(echo), NULL},
    {"n", W_BOTH, F_FN, 0, f_n},
    {"best_of", W_CMPL, F_FN, 0, f_best_of},
    {"suffix", W_CMPL, F_FN, 0, f_suffix},
    {"logprobs", W_BOTH, F_FN, 0, f_logprobs},
    {"top_logprobs", W_CHAT, F_FN, 0, f_logprobs},
    {"presence_penalty", W_BOTH, F_FN, 0, f_zero},
    {"frequency_penalty", W_BOTH, F_FN, 0, f_zero},
    {"logit_bias", W_BOTH, F_FN, 0, f_logit_bias},
    {"response_format", W_CHAT, F_FN, 0, f_response_format},
    {"tools", W_CHAT, F_FN, 0, f_tools},
    {"tool_choice", W_CHAT, F_FN, 0, f_tool_choice},
    {"user", W_BOTH, F_IGNORE, 0, NULL},
    {"store", W_CHAT, F_IGNORE, 0, NULL},
    {"metadata", W_CHAT, F_IGNORE, 0, NULL},
    {"service_tier", W_BOTH, F_IGNORE, 0, NULL},
    {"parallel_tool_calls", W_CHAT, F_IGNORE, 0, NULL},
    /* diffusion settings (smdiff's extension) */
    {"steps", W_BOTH, F_INT, AT(steps), NULL},
    {"block_length", W_BOTH, F_INT, AT(block_length), NULL},
    {"strategy", W_BOTH, F_STR, AT(strategy), NULL},
    {"top_k", W_BOTH, F_INT, AT(top_k), NULL},
    {"alg_temp", W_BOTH, F_NUM, AT(alg_temp), NULL},
    {"threshold", W_BOTH, F_NUM, AT(threshold), NULL},
    {"softmask", W_BOTH, F_FN, 0, f_softmask},
    {"softmask_topk", W_BOTH, F_INT, AT(softmask_topk), NULL},
    {"softmask_scale", W_BOTH, F_NUM, AT(softmask_scale), NULL},
    {"softmask_steepness", W_BOTH, F_NUM, AT(softmask_steepness), NULL},
    {"softmask_centre", W_BOTH, F_NUM, AT(softmask_centre), NULL},
    {"softmask_lambda", W_BOTH, F_NUM, AT(softmask_lambda), NULL},
    {"stream_steps", W_BOTH, F_BOOL, AT(stream_steps), NULL},
};

static void request_init(sd_gen_request *r, int chat) {
    memset(r, 0, sizeof *r);
    r->chat = chat;
    r->max_tokens = r->steps = r->block_length = r->top_k = r->seed = r->softmask_topk = -1;
    r->temperature = r->top_p = r->alg_temp = r->threshold = NAN;
    r->softmask = -1;
    r->softmask_scale = r->softmask_steepness = r->softmask_centre = r->softmask_lambda = NAN;
}

void sd_request_free(sd_gen_request *r) {
    if (!r) return;
    sd_free(r->model);
    sd_free(r->prompt);
    sd_free(r->prompt_ids);
    sd_free(r->suffix);
    for (size_t i = 0; i < r->n_messages; i++) {
        sd_free(r->roles[i]);
        sd_free(r->contents[i]);
    }
    sd_free(r->roles);
    sd_free(r->contents);
    sd_free(r->strategy);
    for (size_t i = 0; i < r->n_stop; i++) sd_free(r->stop[i]);
    memset(r, 0, sizeof *r);
}

int sd_request_parse(const char *body, size_t n, int chat, sd_gen_request *out, sd_api_error *e) {
    request_init(out, chat);
    json_error_t jerr;
    json_t *root = json_loadb(body, n, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return bad(e, NULL, "We could not parse the JSON body of your request: %s (line %d, column %d).",
                   jerr.text, jerr.line, jerr.column);
    int rc = 0;
    if (!json_is_object(root)) {
        rc = bad(e, NULL, "The request body must be a JSON object, not %s.", json_kind(root));
        goto done;
    }
    int where = chat ? W_CHAT : W_CMPL;
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v) {
        const field *f = NULL;
        for (size_t i = 0; i < sizeof k_fields / sizeof k_fields[0] && !f; i++)
            if ((k_fields[i].where & where) && !strcmp(k_fields[i].name, key)) f = &k_fields[i];
        if (!f) {
            rc = sd_api_fail(e, 400, "invalid_request_error", "unknown_parameter", key,
                             "Unrecognized request argument supplied: %s", key);
            goto done;
        }
        if ((rc = set_field(f, v, out, e))) goto done;
    }
    if (chat && !out->n_messages) rc = bad(e, "messages", "Missing required parameter: 'messages'.");
    if (!chat && !out->prompt && !out->prompt_ids) rc = bad(e, "prompt", "Missing required parameter: 'prompt'.");
done:
    json_decref(root);
    if (rc) sd_request_free(out);
    return rc;
}

/* ------------------------------------------------- sampler settings */

static int refused(sd_api_error *e, const char *param, const char *what) {
    return bad(e, param, "Invalid '%s': %s", param, what);
}

int sd_request_configure(const sd_gen_request *r, const smdiff_model *m, smdiff_sampler *s,
                         int32_t threads, sd_api_error *e) {
    struct {
        const char *name;
        int32_t key;
        int64_t v;
    } ints[] = {
        {"top_k", SMDIFF_SAMPLER_TOP_K, r->top_k},
        {"seed", SMDIFF_SAMPLER_SEED, r->seed},
        {"block_length", SMDIFF_SAMPLER_BLOCK_LENGTH, r->block_length},
        {"threads", SMDIFF_SAMPLER_THREADS, threads},
    };
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++)
        if (ints[i].v >= 0 && smdiff_sampler_set_int(s, ints[i].key, ints[i].v))
            return refused(e, ints[i].name, smdiff_sampler_last_error(s));
    struct {
        const char *name;
        int32_t key;
        double v;
    } dbls[] = {
        {"temperature", SMDIFF_SAMPLER_TEMPERATURE, r->temperature},
        {"top_p", SMDIFF_SAMPLER_TOP_P, r->top_p},
        {"alg_temp", SMDIFF_SAMPLER_ALG_TEMP, r->alg_temp},
        {"threshold", SMDIFF_SAMPLER_THRESHOLD, r->threshold},
    };
    for (size_t i = 0; i < sizeof dbls / sizeof dbls[0]; i++)
        if (!isnan(dbls[i].v) && smdiff_sampler_set_double(s, dbls[i].key, dbls[i].v))
            return refused(e, dbls[i].name, smdiff_sampler_last_error(s));
    if (r->strategy && smdiff_sampler_set_strategy(s, r->strategy))
        return refused(e, "strategy", smdiff_sampler_last_error(s));

    /* The schedule: the model's stored parameters unless the request says. */
    smdiff_softmask *sm = NULL;
    if (smdiff_softmask_create_from_model(m, &sm))
        return sd_api_fail(e, 500, "server_error", NULL, NULL, "soft-mask schedule: %s", smdiff_last_error());
    int rc = 0;
    if (r->softmask >= 0) smdiff_softmask_set_int(sm, SMDIFF_SM_MODE, r->softmask);
    if (r->softmask_topk >= 0 && smdiff_softmask_set_int(sm, SMDIFF_SM_TOPK, r->softmask_topk))
        rc = refused(e, "softmask_topk", smdiff_softmask_last_error(sm));
    struct {
        const char *name;
        int32_t key;
        double v;
    } sms[] = {
        {"softmask_scale", SMDIFF_SM_SCALE, r->softmask_scale},
        {"softmask_steepness", SMDIFF_SM_STEEPNESS, r->softmask_steepness},
        {"softmask_centre", SMDIFF_SM_CENTRE, r->softmask_centre},
        {"softmask_lambda", SMDIFF_SM_CONSTANT_LAMBDA, r->softmask_lambda},
    };
    for (size_t i = 0; i < sizeof sms / sizeof sms[0] && !rc; i++)
        if (!isnan(sms[i].v) && smdiff_softmask_set_double(sm, sms[i].key, sms[i].v))
            rc = refused(e, sms[i].name, smdiff_softmask_last_error(sm));
    if (!rc) smdiff_sampler_set_softmask(s, sm);
    smdiff_softmask_free(sm);
    return rc;
}

/* ------------------------------------------------------ chat prompt */

/* Models without a chat template (the bundled Gutenberg model is a plain
 * text model) get the conversation as a transcript, "Role: content"
 * paragraphs ending with "Assistant:", which such a model continues. */
static char *transcript(const sd_gen_request *r) {
    sd_sbuf b = {0};
    for (size_t i = 0; i < r->n_messages; i++) {
        const char *role = r->roles[i];
        char cap[16];
        snprintf(cap, sizeof cap, "%s", role);
        if (cap[0] >= 'a' && cap[0] <= 'z') cap[0] = (char)(cap[0] - 32);
        sd_sbuf_printf(&b, "%s: %s\n\n", cap, r->contents[i]);
    }
    sd_sbuf_str(&b, "Assistant:");
    if (b.oom) {
        sd_sbuf_free(&b);
        return NULL;
    }
    return sd_sbuf_take(&b, NULL);
}

char *sd_request_render(const sd_gen_request *r, const smdiff_model *m, int *templated, sd_api_error *e) {
    *templated = 0;
    if (!r->chat) {
        char *p = sd_strdup(r->prompt ? r->prompt : "");
        if (!p) sd_api_fail(e, 500, "server_error", NULL, NULL, "out of memory");
        return p;
    }
    size_t need = 0;
    int32_t n = (int32_t)r->n_messages;
    const char *const *roles = (const char *const *)r->roles, *const *contents = (const char *const *)r->contents;
    int32_t rc = smdiff_chat_template(m, n, roles, contents, 1, NULL, 0, &need);
    char *p = NULL;
    if (rc == SMDIFF_E_UNSUPPORTED) {
        p = transcript(r);
    } else if (rc == SMDIFF_E_BUFFER || rc == SMDIFF_OK) {
        if ((p = sd_malloc(need)) && smdiff_chat_template(m, n, roles, contents, 1, p, need, &need)) {
            sd_free(p);
            p = NULL;
        }
        *templated = 1;
    } else {
        sd_api_fail(e, 400, "invalid_request_error", NULL, "messages", "chat template: %s", smdiff_last_error());
        return NULL;
    }
    if (!p) sd_api_fail(e, 500, "server_error", NULL, NULL, "out of memory rendering the conversation");
    return p;
}
