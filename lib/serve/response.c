/* response.c -- the bodies the server sends, in OpenAI's formats: errors,
 * completions and chat completions, their streamed chunks (server-sent
 * events) and smdiff's step extension of a chunk (docs/SERVER.md). */
#include <jansson.h>
#include <string.h>

#include "core/alloc.h"
#include "serve.h"

static int dump_cb(const char *buf, size_t n, void *ud) { return sd_sbuf_add(ud, buf, n); }

/* Compact JSON of v appended to out (v is released). */
static int dump(json_t *v, sd_sbuf *out) {
    if (!v) {
        out->oom = 1;
        return -1;
    }
    /* nine digits hold a float exactly and keep 0.005 from printing as
     * 0.0050000000000000001 */
    int rc = json_dump_callback(v, dump_cb, out, JSON_COMPACT | JSON_REAL_PRECISION(9));
    json_decref(v);
    if (rc) out->oom = 1;
    return rc ? -1 : 0;
}

char *sd_json_take(json_t *v, size_t *n) {
    sd_sbuf b = {0};
    if (dump(v, &b)) {
        sd_sbuf_free(&b);
        return NULL;
    }
    return sd_sbuf_take(&b, n);
}

/* A JSON string of s[0..n) (NULL gives null). Jansson refuses invalid
 * UTF-8 -- a token can end inside a character, a message can be cut inside
 * one -- so such text is repaired (U+FFFD) instead of lost. */
static json_t *str_n(const char *s, size_t n) {
    if (!s) return json_null();
    json_t *v = json_stringn(s, n);
    if (v) return v;
    sd_sbuf b = {0};
    sd_utf8_repair(&b, s, n);
    v = json_stringn(b.data ? b.data : "", b.n);
    sd_sbuf_free(&b);
    return v;
}
static json_t *str(const char *s) { return str_n(s, s ? strlen(s) : 0); }

char *sd_error_json(const sd_api_error *e, size_t *n) {
    json_t *err = json_object();
    json_object_set_new(err, "message", str(e->message));
    json_object_set_new(err, "type", str(e->type ? e->type : "invalid_request_error"));
    json_object_set_new(err, "param", e->param[0] ? str(e->param) : json_null());
    json_object_set_new(err, "code", str(e->code));
    json_t *root = json_object();
    json_object_set_new(root, "error", err);
    return sd_json_take(root, n);
}

static json_t *usage(const sd_gen_result *r) {
    json_t *u = json_object();
    json_object_set_new(u, "prompt_tokens", json_integer(r->prompt_tokens));
    json_object_set_new(u, "completion_tokens", json_integer(r->completion_tokens));
    json_object_set_new(u, "total_tokens", json_integer(r->prompt_tokens + r->completion_tokens));
    return u;
}

static json_t *envelope(int chat, int chunk, const sd_gen_result *r) {
    json_t *o = json_object();
    json_object_set_new(o, "id", str(r->id));
    json_object_set_new(o, "object", json_string(chat ? (chunk ? "chat.completion.chunk" : "chat.completion")
                                                      : "text_completion"));
    json_object_set_new(o, "created", json_integer(r->created));
    json_object_set_new(o, "model", str(r->model));
    json_object_set_new(o, "system_fingerprint", json_string("smdiff-" SMDIFF_VERSION_STRING));
    return o;
}

char *sd_completion_json(int chat, const sd_gen_result *r, size_t *n) {
    json_t *o = envelope(chat, 0, r);
    json_t *choice = json_object();
    json_object_set_new(choice, "index", json_integer(0));
    if (chat) {
        json_t *msg = json_object();
        json_object_set_new(msg, "role", json_string("assistant"));
        json_object_set_new(msg, "content", str_n(r->text, r->text_len));
        json_object_set_new(choice, "message", msg);
    } else {
        json_object_set_new(choice, "text", str_n(r->text, r->text_len));
    }
    json_object_set_new(choice, "logprobs", json_null());
    json_object_set_new(choice, "finish_reason", str(r->finish_reason));
    json_t *choices = json_array();
    json_array_append_new(choices, choice);
    json_object_set_new(o, "choices", choices);
    json_object_set_new(o, "usage", usage(r));
    return sd_json_take(o, n);
}

static json_t *step_json(const sd_step_event *s) {
    json_t *o = json_object();
    json_object_set_new(o, "step", json_integer((json_int_t)s->step));
    json_object_set_new(o, "steps", json_integer((json_int_t)s->n_steps));
    json_object_set_new(o, "length", json_integer((json_int_t)s->length));
    json_object_set_new(o, "seconds", json_real(s->seconds));
    json_t *pos = json_array(), *ids = json_array(), *text = json_array(), *bytes = json_array();
    for (size_t i = 0; i < s->n_committed; i++) {
        json_array_append_new(pos, json_integer(s->committed_pos[i]));
        json_array_append_new(ids, json_integer(s->committed_id[i]));
        json_array_append_new(text, str_n(s->committed_text[i], s->committed_len[i]));
        /* A token can hold part of a character (byte-level BPE), which JSON
         * text cannot carry; its exact bytes let a client join neighbours. */
        json_t *b = json_array();
        for (size_t k = 0; k < s->committed_len[i]; k++)
            json_array_append_new(b, json_integer((unsigned char)s->committed_text[i][k]));
        json_array_append_new(bytes, b);
    }
    json_t *committed = json_object();
    json_object_set_new(committed, "positions", pos);
    json_object_set_new(committed, "ids", ids);
    json_object_set_new(committed, "text", text);
    json_object_set_new(committed, "bytes", bytes);
    json_object_set_new(o, "committed", committed);
    json_t *mpos = json_array(), *lam = json_array();
    for (size_t i = 0; i < s->n_masked; i++) {
        json_array_append_new(mpos, json_integer(s->masked_pos[i]));
        /* three decimals are plenty for drawing, and keep events small */
        json_array_append_new(lam, json_real((double)(int)(s->masked_lambda[i] * 1000.0f + 0.5f) / 1000.0));
    }
    json_t *masked = json_object();
    json_object_set_new(masked, "positions", mpos);
    json_object_set_new(masked, "lambda", lam);
    json_object_set_new(o, "masked", masked);
    return o;
}

static int sse(sd_sbuf *out, json_t *o) {
    if (sd_sbuf_str(out, "data: ")) return -1;
    if (dump(o, out)) return -1;
    return sd_sbuf_str(out, "\n\n");
}

int sd_chunk_sse(sd_sbuf *out, int chat, const sd_gen_result *r, int first, const char *delta,
                 size_t delta_len, const char *finish_reason, const sd_step_event *step) {
    json_t *o = envelope(chat, 1, r);
    json_t *choice = json_object();
    json_object_set_new(choice, "index", json_integer(0));
    if (chat) {
        json_t *d = json_object();
        if (first) json_object_set_new(d, "role", json_string("assistant"));
        if (delta_len || first || !finish_reason) json_object_set_new(d, "content", str_n(delta, delta_len));
        json_object_set_new(choice, "delta", d);
    } else {
        json_object_set_new(choice, "text", str_n(delta ? delta : "", delta_len));
    }
    json_object_set_new(choice, "logprobs", json_null());
    json_object_set_new(choice, "finish_reason", str(finish_reason));
    json_t *choices = json_array();
    json_array_append_new(choices, choice);
    json_object_set_new(o, "choices", choices);
    if (step) json_object_set_new(o, "smdiff_step", step_json(step));
    return sse(out, o);
}

int sd_usage_sse(sd_sbuf *out, int chat, const sd_gen_result *r) {
    json_t *o = envelope(chat, 1, r);
    json_object_set_new(o, "choices", json_array());
    json_object_set_new(o, "usage", usage(r));
    return sse(out, o);
}

int sd_error_sse(sd_sbuf *out, const sd_api_error *e) {
    size_t n = 0;
    char *body = sd_error_json(e, &n);
    int rc = !body || sd_sbuf_str(out, "data: ") || sd_sbuf_add(out, body, n) || sd_sbuf_str(out, "\n\n");
    sd_free(body);
    return rc ? -1 : sd_done_sse(out);
}

int sd_done_sse(sd_sbuf *out) { return sd_sbuf_str(out, "data: [DONE]\n\n"); }
