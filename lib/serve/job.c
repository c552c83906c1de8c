/* job.c -- one generation request, run alone (sd_job_run) or as one
 * sequence of the slots' batch (sd_job_begin, sd_job_poll).
 *
 * The job owns its sampler (configured on the loop thread when the request
 * arrived, so bad settings are refused before queueing). The run tokenizes
 * the prompt (and a completion's suffix), fixes gen length and steps, and
 * fills the canvas prompt + gen-length masks + suffix with
 * smdiff_generate_canvas -- without a suffix exactly what
 * smdiff_generate_tokens does with the prompt; with one, OpenAI's suffix is
 * diffusion infilling: the span is denoised with the suffix as context too.
 * Two callbacks:
 *   - the abort callback, polled before each step (and, alone, between
 *     layers),
 *     ends the run when the client has gone, the time limit has passed, the
 *     server is stopping, or a stop sequence has appeared;
 *   - the step callback follows the decided prefix of the canvas (the
 *     generated positions before the first one still masked) and, for a
 *     streamed request, sends its new text as an OpenAI chunk -- plus, when
 *     asked (stream_steps), smdiff's step event: the positions committed in
 *     this step with their text, and lambda of every position still masked.
 * Output goes to j->out under the server's output mutex (sd_core_post).
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/log.h"
#include "serve.h"

/* Default steps when a request gives none: at most this many (the CLI's
 * default), one token per step below it. */
#define DEFAULT_STEPS 64
/* Default gen length when a request gives no max_tokens, capped by what the
 * context leaves after the prompt. */
#define DEFAULT_GEN 128

typedef struct run_state {
    sd_job *j;
    const smdiff_model *m;
    size_t P, G, S;            /* prompt, generated and suffix tokens */
    int32_t *suffix;           /* [S] */
    int32_t mask_id;
    int32_t stop_ids[2];       /* EOS, and <|im_end|> for ChatML chats; -1 = none */
    int32_t *gen;              /* [G] the generated region at the last step */
    size_t decided;            /* tokens of the decided prefix seen so far */
    int ended;                 /* a stop id ended the prefix */
    sd_sbuf text;              /* echoed prompt, then the decided prefix's text */
    size_t echo_len;           /* bytes of the echoed prompt */
    size_t sent;               /* bytes of text already streamed */
    int stopped;               /* a stop sequence was found ... */
    size_t stop_at;            /* ... at this offset of text */
    int first_sent;
    double t_last;
    /* step event scratch, [G] each */
    int32_t *cpos, *cid, *mpos;
    float *mlam;
    char **ctext;
    size_t *clen;
} run_state;

/* ---------------------------------------------------------- output */

static void post(sd_job *j, const sd_sbuf *add, int streaming, int finished, int status, const char *extra) {
    sd_core_post(j->core, j, add ? add->data : NULL, add ? add->n : 0, streaming, finished, status, extra);
}

static const char *retry_header(int status) {
    return status == 429 || status == 503 ? "Retry-After: 1\r\n" : NULL;
}

void sd_job_fail(sd_job *j, const sd_api_error *e) {
    sd_sbuf b = {0};
    int streaming = j->out.streaming; /* only this job's runner sets it */
    if (streaming) {
        sd_error_sse(&b, e);
    } else {
        size_t n = 0;
        char *body = sd_error_json(e, &n);
        if (body) sd_sbuf_add(&b, body, n);
        sd_free(body);
    }
    post(j, &b, 0, 1, e->status, retry_header(e->status));
    sd_sbuf_free(&b);
}

/* ------------------------------------------------------- lifecycle */

sd_job *sd_job_create(sd_server_core *core, sd_gen_request *req, sd_endpoint ep, sd_api_error *e) {
    sd_job *j = sd_calloc(1, sizeof *j);
    if (!j || smdiff_sampler_create(&j->sampler)) {
        sd_free(j);
        sd_api_fail(e, 500, "server_error", NULL, NULL, "out of memory");
        return NULL;
    }
    if (sd_request_configure(req, core->model, j->sampler, core->threads, e)) {
        smdiff_sampler_free(j->sampler);
        sd_free(j);
        return NULL;
    }
    j->core = core;
    j->req = *req;
    memset(req, 0, sizeof *req);
    j->ep = ep;
    j->t_arrival = sd_now();
    j->deadline = core->timeout > 0 ? j->t_arrival + core->timeout : 0;
    atomic_init(&j->abort_reason, SD_ABORT_NONE);
    sd_new_id(j->req.chat ? "chatcmpl-" : "cmpl-", j->id);
    j->created = sd_unix_time();
    core->jobs_alive++;
    return j;
}

void sd_job_free(sd_job *j) {
    if (!j) return;
    j->core->jobs_alive--;
    smdiff_sampler_free(j->sampler);
    sd_request_free(&j->req);
    sd_sbuf_free(&j->out.data);
    sd_free(j);
}

/* ------------------------------------------------- the decided prefix */

static int is_stop_id(const run_state *rs, int32_t id) { return id == rs->stop_ids[0] || id == rs->stop_ids[1]; }

/* Text of ids, appended to out (special tokens skipped, as the final text). */
static int detok(const smdiff_model *m, const int32_t *ids, size_t n, sd_sbuf *out) {
    size_t need = 0;
    int32_t rc = smdiff_model_detokenize(m, ids, n, 0, NULL, 0, &need);
    if (rc && rc != SMDIFF_E_BUFFER) return -1;
    char *at = sd_sbuf_grow(out, need);
    if (!at || smdiff_model_detokenize(m, ids, n, 0, at, need, &need)) return -1;
    out->n += need;
    out->data[out->n] = '\0';
    return 0;
}

/* Find the earliest stop sequence in the text; remember where. */
static void find_stop(run_state *rs) {
    const sd_gen_request *r = &rs->j->req;
    for (size_t i = 0; i < r->n_stop; i++) {
        size_t len = strlen(r->stop[i]);
        /* text already sent was checked; the echoed prompt is not matched */
        size_t from = rs->sent >= rs->echo_len + len ? rs->sent - len + 1 : rs->echo_len;
        if (rs->text.n < len) continue;
        const char *p = memmem(rs->text.data + from, rs->text.n - from, r->stop[i], len);
        if (p && (!rs->stopped || (size_t)(p - rs->text.data) < rs->stop_at)) {
            rs->stopped = 1;
            rs->stop_at = (size_t)(p - rs->text.data);
        }
    }
}

/* Bytes of the text that may be sent now: up to a stop sequence; short of
 * a tail that could still become one; short of an incomplete character. */
static size_t sendable(run_state *rs, int final) {
    if (rs->stopped) return rs->stop_at;
    size_t end = rs->text.n;
    if (final) return end;
    const sd_gen_request *r = &rs->j->req;
    size_t hold = 0;
    for (size_t i = 0; i < r->n_stop; i++) {
        size_t len = strlen(r->stop[i]);
        for (size_t k = len - 1; k > hold; k--)
            if (k <= end && !memcmp(rs->text.data + end - k, r->stop[i], k)) {
                hold = k;
                break;
            }
    }
    end -= hold;
    size_t ok = 0;
    if (end > rs->sent) smdiff_utf8_complete(rs->text.data + rs->sent, end - rs->sent, &ok);
    return rs->sent + ok;
}

/* Extend the decided prefix with the canvas of this step. */
static int advance_prefix(run_state *rs, const int32_t *gen) {
    size_t k = rs->decided;
    while (!rs->ended && k < rs->G && gen[k] != rs->mask_id) {
        if (is_stop_id(rs, gen[k])) {
            rs->ended = 1;
            break;
        }
        k++;
    }
    if (k > rs->decided && detok(rs->m, gen + rs->decided, k - rs->decided, &rs->text)) return -1;
    rs->decided = k;
    if (rs->j->req.n_stop) find_stop(rs);
    return 0;
}

static void result_of(const run_state *rs, sd_gen_result *res) {
    const sd_job *j = rs->j;
    memset(res, 0, sizeof *res);
    res->id = j->id;
    res->created = j->created;
    res->model = j->core->model_name;
    res->prompt_tokens = (int64_t)(rs->P + rs->S); /* the context given, suffix included */
}

/* One chunk (a text delta and/or a step event) onto the stream. */
static void stream_chunk(run_state *rs, size_t upto, const char *finish, const sd_step_event *ev) {
    sd_gen_result res;
    result_of(rs, &res);
    sd_sbuf b = {0};
    size_t n = upto > rs->sent ? upto - rs->sent : 0;
    sd_chunk_sse(&b, rs->j->req.chat, &res, !rs->first_sent, rs->text.data ? rs->text.data + rs->sent : "", n,
                 finish, ev);
    rs->sent += n;
    rs->first_sent = 1;
    post(rs->j, &b, 1, 0, 0, NULL);
    sd_sbuf_free(&b);
}

static size_t step_event(run_state *rs, const int32_t *canvas, const uint8_t *committed, const float *lambda,
                         size_t step, size_t n_steps, double seconds, sd_step_event *ev) {
    size_t nc = 0, nm = 0;
    for (size_t i = 0; i < rs->G; i++) {
        int32_t id = canvas[rs->P + i];
        if (id == rs->mask_id) {
            rs->mpos[nm] = (int32_t)i;
            rs->mlam[nm++] = lambda[rs->P + i];
        } else if (committed[rs->P + i]) {
            sd_sbuf t = {0};
            detok(rs->m, &id, 1, &t);
            sd_free(rs->ctext[nc]);
            rs->clen[nc] = t.n;
            rs->ctext[nc] = t.data ? sd_sbuf_take(&t, NULL) : sd_strdup("");
            rs->cpos[nc] = (int32_t)i;
            rs->cid[nc++] = id;
        }
    }
    *ev = (sd_step_event){step, n_steps, rs->G, rs->cpos, rs->cid, (const char *const *)rs->ctext, rs->clen, nc,
                          rs->mpos, rs->mlam, nm, seconds};
    return nc;
}

static int32_t on_step(size_t step, size_t n_steps, const int32_t *canvas, const uint8_t *committed,
                       const float *lambda, size_t n, void *ud) {
    run_state *rs = ud;
    sd_job *j = rs->j;
    double t = sd_now(), secs = t - rs->t_last;
    rs->t_last = t;
    sd_metrics_step(j->core->metrics, secs);
    (void)n;
    memcpy(rs->gen, canvas + rs->P, sizeof(int32_t) * rs->G);
    if (advance_prefix(rs, rs->gen)) return 1;
    if (rs->stopped) atomic_store(&j->abort_reason, SD_ABORT_STOP_WORD);
    if (!j->req.stream) return 0;
    size_t upto = sendable(rs, 0);
    sd_step_event ev, *evp = NULL;
    if (j->req.stream_steps) {
        step_event(rs, canvas, committed, lambda, step, n_steps, secs, &ev);
        evp = &ev;
    }
    if (evp || upto > rs->sent) stream_chunk(rs, upto, NULL, evp);
    return 0;
}

static int32_t should_abort(void *ud) {
    sd_job *j = ud;
    if (atomic_load(&j->abort_reason)) return 1;
    if (j->deadline > 0 && sd_now() > j->deadline) {
        int none = SD_ABORT_NONE;
        atomic_compare_exchange_strong(&j->abort_reason, &none, SD_ABORT_TIMEOUT);
        return 1;
    }
    return 0;
}

/* -------------------------------------------------------------- the run */

static int32_t single_token(const smdiff_model *m, const char *text) {
    int32_t id[2];
    size_t n = 0;
    if (smdiff_model_tokenize(m, text, strlen(text), SMDIFF_TOKENIZE_PARSE_SPECIAL, id, 2, &n) || n != 1) return -1;
    return id[0];
}

/* text's ids (special tokens parsed) into *ids, sd_malloc'd with room for
 * one more. 0 or -1 with e set (param names the field). */
static int tokenize(const smdiff_model *m, const char *text, const char *param, int32_t **ids, size_t *n,
                    sd_api_error *e) {
    size_t len = strlen(text), need = 0;
    int32_t rc = smdiff_model_tokenize(m, text, len, SMDIFF_TOKENIZE_PARSE_SPECIAL, NULL, 0, &need);
    if ((rc == SMDIFF_OK || rc == SMDIFF_E_BUFFER) && (*ids = sd_malloc(sizeof(int32_t) * (need + 1))))
        rc = smdiff_model_tokenize(m, text, len, SMDIFF_TOKENIZE_PARSE_SPECIAL, *ids, need, &need);
    else if (rc == SMDIFF_OK || rc == SMDIFF_E_BUFFER)
        rc = SMDIFF_E_NOMEM;
    if (rc)
        return sd_api_fail(e, rc == SMDIFF_E_NOMEM ? 500 : 400,
                           rc == SMDIFF_E_NOMEM ? "server_error" : "invalid_request_error", NULL, param,
                           "tokenizing the %s: %s", param, smdiff_strerror(rc));
    *n = need;
    return 0;
}

/* The prompt's ids into *ids (sd_malloc'd). 0 or -1 with e set. */
static int prompt_ids(run_state *rs, sd_sbuf *echo, int32_t **ids, size_t *n, sd_api_error *e) {
    const sd_gen_request *r = &rs->j->req;
    const smdiff_model *m = rs->m;
    if (r->prompt_ids) {
        if (!(*ids = sd_malloc(sizeof(int32_t) * r->n_prompt_ids)))
            return sd_api_fail(e, 500, "server_error", NULL, NULL, "out of memory");
        memcpy(*ids, r->prompt_ids, sizeof(int32_t) * r->n_prompt_ids);
        *n = r->n_prompt_ids;
        for (size_t i = 0; i < *n; i++)
            if ((*ids)[i] >= rs->j->core->vocab)
                return sd_api_fail(e, 400, "invalid_request_error", NULL, "prompt",
                                   "token id %d is outside the vocabulary of %lld", (int)(*ids)[i],
                                   (long long)rs->j->core->vocab);
        if (r->echo) detok(m, *ids, *n, echo);
        return 0;
    }
    int templated = 0;
    char *text = sd_request_render(r, m, &templated, e);
    if (!text) return -1;
    if (templated) rs->stop_ids[1] = single_token(m, "<|im_end|>");
    if (r->echo) sd_sbuf_str(echo, text);
    int rc = tokenize(m, text, "prompt", ids, n, e);
    sd_free(text);
    if (rc) return -1;
    /* An empty prompt starts from BOS, as OpenAI's default prompt does. */
    if (!*n && rs->j->core->bos_id >= 0) (*ids)[(*n)++] = (int32_t)rs->j->core->bos_id;
    if (!*n) return sd_api_fail(e, 400, "invalid_request_error", NULL, "prompt", "the prompt is empty");
    return 0;
}

/* The suffix's ids into rs->suffix (none without a suffix). */
static int suffix_ids(run_state *rs, sd_api_error *e) {
    const char *suffix = rs->j->req.suffix;
    return suffix ? tokenize(rs->m, suffix, "suffix", &rs->suffix, &rs->S, e) : 0;
}

/* Gen length and steps from the request, the prompt, the suffix and the
 * context. */
static int fix_lengths(run_state *rs, size_t n_prompt, sd_api_error *e) {
    const sd_gen_request *r = &rs->j->req;
    const sd_server_core *c = rs->j->core;
    int64_t ctx = c->context, given = (int64_t)(n_prompt + rs->S), room = ctx - given;
    int64_t G = r->max_tokens > 0 ? r->max_tokens : (room < DEFAULT_GEN ? room : DEFAULT_GEN);
    if (G > c->max_tokens)
        return sd_api_fail(e, 400, "invalid_request_error", NULL, "max_tokens",
                           "max_tokens %lld exceeds this server's limit of %lld", (long long)G,
                           (long long)c->max_tokens);
    if (G < 1 || given + G > ctx) {
        char in_suffix[48] = "";
        if (rs->S) snprintf(in_suffix, sizeof in_suffix, ", %zu in the suffix", rs->S);
        return sd_api_fail(e, 400, "invalid_request_error", "context_length_exceeded", "max_tokens",
                           "This model's maximum context length is %lld tokens. However, you requested %lld "
                           "tokens (%zu in the prompt%s, %lld for the completion). Please reduce the prompt "
                           "or max_tokens.", (long long)ctx, (long long)(given + (G > 0 ? G : 1)),
                           n_prompt, in_suffix, (long long)(G > 0 ? G : 1));
    }
    int64_t steps = r->steps;
    if (steps < 0) {
        steps = G < DEFAULT_STEPS ? G : DEFAULT_STEPS;
        int64_t B = r->block_length > 0 ? r->block_length : G;
        if (G % B == 0 && steps % (G / B)) steps += G / B - steps % (G / B);
    }
    smdiff_sampler *s = rs->j->sampler;
    if (smdiff_sampler_set_int(s, SMDIFF_SAMPLER_GEN_LENGTH, G))
        return sd_api_fail(e, 400, "invalid_request_error", NULL, "max_tokens", "%s", smdiff_sampler_last_error(s));
    if (smdiff_sampler_set_int(s, SMDIFF_SAMPLER_STEPS, steps))
        return sd_api_fail(e, 400, "invalid_request_error", NULL, "steps", "Invalid 'steps': %s",
                           smdiff_sampler_last_error(s));
    rs->P = n_prompt;
    rs->G = (size_t)G;
    return 0;
}

static int alloc_run(run_state *rs, sd_api_error *e) {
    size_t G = rs->G;
    rs->gen = sd_calloc(G, sizeof(int32_t));
    if (rs->j->req.stream_steps) {
        rs->cpos = sd_calloc(G, sizeof(int32_t));
        rs->cid = sd_calloc(G, sizeof(int32_t));
        rs->mpos = sd_calloc(G, sizeof(int32_t));
        rs->mlam = sd_calloc(G, sizeof(float));
        rs->ctext = sd_calloc(G, sizeof(char *));
        rs->clen = sd_calloc(G, sizeof(size_t));
        if (!rs->cpos || !rs->cid || !rs->mpos || !rs->mlam || !rs->ctext || !rs->clen)
            rs->gen = (sd_free(rs->gen), NULL);
    }
    return rs->gen ? 0 : sd_api_fail(e, 500, "server_error", NULL, NULL, "out of memory");
}

/* The canvas to fill: the prompt, G masks, the suffix (sd_malloc'd). NULL
 * with e set. */
static int32_t *make_canvas(const run_state *rs, const int32_t *prompt, sd_api_error *e) {
    int32_t *canvas = sd_malloc(sizeof(int32_t) * (rs->P + rs->G + rs->S));
    if (!canvas) {
        sd_api_fail(e, 500, "server_error", NULL, NULL, "out of memory");
        return NULL;
    }
    memcpy(canvas, prompt, sizeof(int32_t) * rs->P);
    for (size_t i = 0; i < rs->G; i++) canvas[rs->P + i] = rs->mask_id;
    if (rs->S) memcpy(canvas + rs->P + rs->G, rs->suffix, sizeof(int32_t) * rs->S);
    return canvas;
}

static void free_run(run_state *rs) {
    if (rs->ctext)
        for (size_t i = 0; i < rs->G; i++) sd_free(rs->ctext[i]);
    void *p[] = {rs->gen, rs->cpos, rs->cid, rs->mpos, rs->mlam, rs->ctext, rs->clen, rs->suffix};
    for (size_t i = 0; i < sizeof p / sizeof p[0]; i++) sd_free(p[i]);
    sd_sbuf_free(&rs->text);
}

/* Send what is left of the text and the end of the response. */
static void finish_ok(run_state *rs, size_t end, const char *finish, int64_t completion_tokens) {
    sd_job *j = rs->j;
    sd_gen_result res;
    result_of(rs, &res);
    res.finish_reason = finish;
    res.completion_tokens = completion_tokens;
    sd_metrics_tokens(j->core->metrics, res.prompt_tokens, completion_tokens);
    if (j->req.stream) {
        if (end > rs->sent) stream_chunk(rs, end, NULL, NULL);
        sd_sbuf b = {0};
        sd_chunk_sse(&b, j->req.chat, &res, !rs->first_sent, "", 0, finish, NULL);
        if (j->req.include_usage) sd_usage_sse(&b, j->req.chat, &res);
        sd_done_sse(&b);
        post(j, &b, 1, 1, 200, NULL);
        sd_sbuf_free(&b);
        return;
    }
    res.text = rs->text.data ? rs->text.data : "";
    res.text_len = end;
    size_t n = 0;
    char *body = sd_completion_json(j->req.chat, &res, &n);
    sd_sbuf b = {body, n, n, 0};
    if (!body) {
        sd_api_error e;
        sd_api_fail(&e, 500, "server_error", NULL, NULL, "out of memory formatting the response");
        sd_job_fail(j, &e);
        return;
    }
    post(j, &b, 0, 1, 200, NULL);
    sd_free(body);
}

/* The generation returned out[0..n_out): rebuild the text from it (the
 * decided prefix followed the same ids) and look for stop sequences once
 * more over the whole of it. */
static void finish_from_tokens(run_state *rs, const int32_t *out, size_t n_out) {
    size_t k = 0;
    while (k < n_out && !is_stop_id(rs, out[k])) k++;
    rs->text.n = rs->echo_len;
    if (detok(rs->m, out, k, &rs->text)) {
        sd_api_error e;
        sd_api_fail(&e, 500, "server_error", NULL, NULL, "out of memory decoding the result");
        sd_job_fail(rs->j, &e);
        return;
    }
    if (rs->sent > rs->text.n) rs->sent = rs->text.n; /* a strategy remasked streamed text */
    rs->stopped = 0;
    if (rs->j->req.n_stop) find_stop(rs);
    int stop = rs->stopped || k < rs->G;
    finish_ok(rs, rs->stopped ? rs->stop_at : rs->text.n, stop ? "stop" : "length", (int64_t)k);
}

static void fail_aborted(sd_job *j) {
    int why = atomic_load(&j->abort_reason);
    sd_metrics_abort(j->core->metrics, (sd_abort_reason)why);
    sd_api_error e;
    if (why == SD_ABORT_TIMEOUT)
        sd_api_fail(&e, 504, "server_error", "timeout", NULL,
                    "the request took longer than this server's limit of %g s", j->core->timeout);
    else if (why == SD_ABORT_SHUTDOWN)
        sd_api_fail(&e, 503, "server_error", "shutting_down", NULL, "the server is shutting down");
    else
        sd_api_fail(&e, 499, "invalid_request_error", "client_closed", NULL, "the client went away");
    sd_job_fail(j, &e);
}

/* A job between its start and its end (a batch holds it across steps). */
struct sd_job_run {
    run_state rs;
    int32_t *ids, *canvas;
};

static void run_free(struct sd_job_run *x) {
    free_run(&x->rs);
    sd_free(x->ids);
    sd_free(x->canvas);
    sd_free(x);
}

/* Tokenize, size and lay out the canvas; set the callbacks. NULL when the
 * job is already finished (aborted, or failed with its error). */
static struct sd_job_run *job_start(sd_job *j) {
    j->t_start = sd_now();
    sd_metrics_queue_wait(j->core->metrics, j->t_start - j->t_arrival);
    sd_api_error e = {0};
    struct sd_job_run *x = sd_calloc(1, sizeof *x);
    if (!x) {
        sd_api_fail(&e, 500, "server_error", NULL, NULL, "out of memory");
        sd_job_fail(j, &e);
        return NULL;
    }
    run_state *rs = &x->rs;
    rs->j = j;
    rs->m = j->core->model;
    rs->mask_id = (int32_t)j->core->mask_id;
    rs->stop_ids[0] = (int32_t)j->core->eos_id;
    rs->stop_ids[1] = -1;
    size_t n_ids = 0;
    if (should_abort(j)) {
        fail_aborted(j);
        run_free(x);
        return NULL;
    }
    if (prompt_ids(rs, &rs->text, &x->ids, &n_ids, &e) || suffix_ids(rs, &e) || fix_lengths(rs, n_ids, &e) ||
        alloc_run(rs, &e) || !(x->canvas = make_canvas(rs, x->ids, &e))) {
        sd_job_fail(j, &e);
        run_free(x);
        return NULL;
    }
    rs->echo_len = rs->text.n;
    rs->t_last = sd_now();
    smdiff_sampler_set_step_callback(j->sampler, on_step, rs);
    smdiff_sampler_set_abort_callback(j->sampler, should_abort, j);
    if (j->req.stream && rs->echo_len) stream_chunk(rs, rs->echo_len, NULL, NULL);
    return x;
}

/* The generation ended with rc (x->canvas filled when OK): the response,
 * then x is freed. */
static void job_end(struct sd_job_run *x, int32_t rc) {
    run_state *rs = &x->rs;
    sd_job *j = rs->j;
    if (rc == SMDIFF_OK) {
        finish_from_tokens(rs, x->canvas + rs->P, rs->G);
    } else if (rc == SMDIFF_E_ABORTED && atomic_load(&j->abort_reason) == SD_ABORT_STOP_WORD) {
        sd_metrics_abort(j->core->metrics, SD_ABORT_STOP_WORD);
        finish_ok(rs, rs->stop_at, "stop", (int64_t)rs->decided);
    } else if (rc == SMDIFF_E_ABORTED) {
        fail_aborted(j);
    } else {
        sd_api_error e;
        int client = rc == SMDIFF_E_INVAL || rc == SMDIFF_E_RANGE;
        sd_api_fail(&e, client ? 400 : 500, client ? "invalid_request_error" : "server_error", NULL, NULL,
                    "%s", smdiff_sampler_last_error(j->sampler));
        if (!client) SD_LOGE("generation %s failed: %s", j->id, e.message);
        sd_job_fail(j, &e);
    }
    run_free(x);
}

static size_t canvas_len(const struct sd_job_run *x) { return x->rs.P + x->rs.G + x->rs.S; }

void sd_job_run(sd_job *j) {
    struct sd_job_run *x = job_start(j);
    if (x) job_end(x, smdiff_generate_canvas(j->sampler, x->rs.m, x->canvas, canvas_len(x)));
}

int sd_job_begin(sd_job *j, smdiff_batch *b, size_t *id) {
    struct sd_job_run *x = job_start(j);
    if (!x) return -1;
    int32_t rc = smdiff_batch_add(b, j->sampler, x->canvas, canvas_len(x), 1, id);
    if (rc) {
        job_end(x, rc);
        return -1;
    }
    j->run = x;
    return 0;
}

int sd_job_poll(sd_job *j, smdiff_batch *b, size_t id, int32_t failed) {
    struct sd_job_run *x = j->run;
    size_t n = 0;
    int32_t rc = failed ? failed : smdiff_batch_result(b, id, x->canvas, canvas_len(x), &n);
    if (rc == SMDIFF_E_STATE && !failed) return 0; /* still running */
    smdiff_batch_remove(b, id);
    j->run = NULL;
    job_end(x, rc);
    return 1;
}
