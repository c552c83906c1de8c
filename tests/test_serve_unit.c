/* test_serve_unit.c -- the server's parts without sockets or threads
 * (lib/serve/): request parsing and validation, response formatting, UTF-8
 * repair, the metrics exposition, the HTTP connection over an in-memory
 * transport (pipelining, limits, chunked bodies, HTTP/1.0, Expect), and the
 * router answering whole requests inline with the bundled model (stream
 * text equal to the non-streamed text, step events covering every position
 * once, stop sequences, echo, token-id prompts, auth, 404/405). */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "servetest.h"
#include "core/alloc.h"
#include "serve/serve.h"

/* ------------------------------------------------------------ helpers */

static json_t *parse_json(const char *s) {
    json_error_t e;
    json_t *v = json_loads(s, 0, &e);
    if (!v) print_message("bad JSON (%s): %s\n", e.text, s);
    assert_non_null(v);
    return v;
}

static int parse_ok(const char *body, int chat, sd_gen_request *r) {
    sd_api_error e = {0};
    int rc = sd_request_parse(body, strlen(body), chat, r, &e);
    if (rc) print_message("unexpected refusal of %s: %s\n", body, e.message);
    return rc;
}

/* The request is refused with status 400 (or want) naming param. */
static void refused(const char *body, int chat, int want, const char *param, const char *needle) {
    sd_gen_request r;
    sd_api_error e = {0};
    int rc = sd_request_parse(body, strlen(body), chat, &r, &e);
    if (!rc) print_message("accepted: %s\n", body);
    assert_int_equal(rc, -1);
    assert_int_equal(e.status, want);
    if (param) assert_string_equal(e.param, param);
    if (needle && !strstr(e.message, needle)) print_message("message '%s' lacks '%s'\n", e.message, needle);
    if (needle) assert_non_null(strstr(e.message, needle));
}

/* -------------------------------------------------------- request parsing */

static void test_parse_completion(void **state) {
    (void)state;
    sd_gen_request r;
    assert_int_equal(parse_ok("{\"model\":\"m\",\"prompt\":\"Hello\",\"max_tokens\":16,\"temperature\":0.5,"
                              "\"top_p\":0.9,\"seed\":7,\"stream\":true,\"stream_options\":{\"include_usage\":true},"
                              "\"stop\":[\"a\",\"bc\"],\"echo\":true,\"n\":1,\"best_of\":1,\"logprobs\":null,"
                              "\"presence_penalty\":0,\"frequency_penalty\":0.0,\"logit_bias\":{},\"user\":\"u\","
                              "\"suffix\":\"\",\"steps\":8,\"block_length\":4,\"strategy\":\"entropy\",\"top_k\":5,"
                              "\"alg_temp\":0.1,\"threshold\":0.8,\"softmask\":\"constant\",\"softmask_topk\":2,"
                              "\"softmask_scale\":0.5,\"softmask_steepness\":3,\"softmask_centre\":-1,"
                              "\"softmask_lambda\":0.25,\"stream_steps\":true}",
                              0, &r),
                     0);
    assert_string_equal(r.model, "m");
    assert_string_equal(r.prompt, "Hello");
    assert_int_equal(r.max_tokens, 16);
    assert_true(r.temperature == 0.5 && r.top_p == 0.9 && r.alg_temp == 0.1 && r.threshold == 0.8);
    assert_int_equal(r.seed, 7);
    assert_true(r.stream && r.include_usage && r.echo && r.stream_steps);
    assert_int_equal(r.n_stop, 2);
    assert_null(r.suffix); /* "" is no suffix */
    assert_string_equal(r.stop[1], "bc");
    assert_int_equal(r.steps, 8);
    assert_int_equal(r.block_length, 4);
    assert_string_equal(r.strategy, "entropy");
    assert_int_equal(r.top_k, 5);
    assert_int_equal(r.softmask, SMDIFF_SM_CONSTANT);
    assert_int_equal(r.softmask_topk, 2);
    assert_true(r.softmask_scale == 0.5 && r.softmask_steepness == 3 && r.softmask_centre == -1 &&
                r.softmask_lambda == 0.25);
    sd_request_free(&r);

    /* Defaults: everything unset; null means unset. */
    assert_int_equal(parse_ok("{\"prompt\":\"x\",\"max_tokens\":null,\"temperature\":null,\"stop\":null}", 0, &r), 0);
    assert_null(r.model);
    assert_true(r.max_tokens == -1 && r.steps == -1 && r.seed == -1 && isnan(r.temperature) && r.softmask == -1);
    assert_int_equal(r.n_stop, 0);
    assert_int_equal(r.stream, 0);
    sd_request_free(&r);

    /* Prompts as token ids, nested ids, a one-element list; a single stop string. */
    assert_int_equal(parse_ok("{\"prompt\":[1,2,3],\"stop\":\"\\n\"}", 0, &r), 0);
    assert_int_equal(r.n_prompt_ids, 3);
    assert_int_equal(r.prompt_ids[2], 3);
    assert_int_equal(r.n_stop, 1);
    assert_string_equal(r.stop[0], "\n");
    sd_request_free(&r);
    assert_int_equal(parse_ok("{\"prompt\":[[5,6]]}", 0, &r), 0);
    assert_int_equal(r.n_prompt_ids, 2);
    sd_request_free(&r);
    assert_int_equal(parse_ok("{\"prompt\":[\"one\"],\"max_tokens\":4}", 0, &r), 0);
    assert_string_equal(r.prompt, "one");
    sd_request_free(&r);
    /* An integral real is an integer. */
    assert_int_equal(parse_ok("{\"prompt\":\"x\",\"steps\":8.0}", 0, &r), 0);
    assert_int_equal(r.steps, 8);
    sd_request_free(&r);
}

static void test_parse_chat(void **state) {
    (void)state;
    sd_gen_request r;
    assert_int_equal(parse_ok("{\"messages\":[{\"role\":\"developer\",\"content\":\"Be brief.\"},"
                              "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"Hi \"},"
                              "{\"type\":\"text\",\"text\":\"there\"}]},{\"role\":\"assistant\",\"content\":null}],"
                              "\"max_completion_tokens\":12,\"response_format\":{\"type\":\"text\"},\"tools\":[],"
                              "\"tool_choice\":\"none\",\"logprobs\":false,\"store\":false,\"metadata\":{\"a\":\"b\"}}",
                              1, &r),
                     0);
    assert_int_equal(r.chat, 1);
    assert_int_equal(r.n_messages, 3);
    assert_string_equal(r.roles[0], "system");
    assert_string_equal(r.contents[1], "Hi there");
    assert_string_equal(r.contents[2], "");
    assert_int_equal(r.max_tokens, 12);
    sd_request_free(&r);
}

static void test_parse_refusals(void **state) {
    (void)state;
    refused("{bad", 0, 400, NULL, "could not parse the JSON");
    refused("", 0, 400, NULL, "could not parse the JSON");
    refused("[1,2]", 0, 400, NULL, "must be a JSON object");
    refused("{\"prompt\":\"a\",\"prompt\":\"b\"}", 0, 400, NULL, "duplicate");
    refused("{}", 0, 400, "prompt", "Missing required parameter");
    refused("{\"prompt\":\"x\"}", 1, 400, "prompt", "Unrecognized request argument");
    refused("{}", 1, 400, "messages", "Missing required parameter");
    refused("{\"prompt\":\"x\",\"max_tokens\":\"ten\"}", 0, 400, "max_tokens", "expected an integer");
    refused("{\"prompt\":\"x\",\"max_tokens\":0}", 0, 400, "max_tokens", "below the minimum of 1");
    refused("{\"prompt\":\"x\",\"max_tokens\":2.5}", 0, 400, "max_tokens", "expected an integer");
    refused("{\"prompt\":\"x\",\"steps\":-3}", 0, 400, "steps", "below the minimum");
    refused("{\"prompt\":\"x\",\"steps\":1.5}", 0, 400, "steps", "expected an integer");
    refused("{\"prompt\":\"x\",\"temperature\":\"hot\"}", 0, 400, "temperature", "expected a number");
    refused("{\"prompt\":\"x\",\"stream\":1}", 0, 400, "stream", "expected a boolean");
    refused("{\"prompt\":\"x\",\"model\":5}", 0, 400, "model", "expected a string");
    refused("{\"prompt\":7}", 0, 400, "prompt", "expected a string or an array");
    refused("{\"prompt\":[]}", 0, 400, "prompt", "empty");
    refused("{\"prompt\":[\"a\",\"b\"]}", 0, 400, "prompt", "one prompt per request");
    refused("{\"prompt\":[1,\"a\"]}", 0, 400, "prompt", "token ids");
    refused("{\"prompt\":[-1]}", 0, 400, "prompt", "out of range");
    refused("{\"prompt\":\"x\",\"foo\":1}", 0, 400, "foo", "Unrecognized request argument supplied: foo");
    refused("{\"prompt\":\"x\",\"n\":2}", 0, 400, "n", "not supported");
    refused("{\"prompt\":\"x\",\"best_of\":3}", 0, 400, "best_of", "not supported");
    refused("{\"prompt\":\"x\",\"logprobs\":2}", 0, 400, "logprobs", "not supported");
    refused("{\"prompt\":\"x\",\"presence_penalty\":0.5}", 0, 400, "presence_penalty", "not supported");
    refused("{\"prompt\":\"x\",\"frequency_penalty\":1}", 0, 400, "frequency_penalty", "not supported");
    refused("{\"prompt\":\"x\",\"logit_bias\":{\"5\":1}}", 0, 400, "logit_bias", "not supported");
    refused("{\"prompt\":\"x\",\"suffix\":3}", 0, 400, "suffix", "expected a string");
    refused("{\"prompt\":\"x\",\"stop\":[\"a\",\"b\",\"c\",\"d\",\"e\"]}", 0, 400, "stop", "at most 4");
    refused("{\"prompt\":\"x\",\"stop\":[\"\"]}", 0, 400, "stop", "empty");
    refused("{\"prompt\":\"x\",\"stop\":[1]}", 0, 400, "stop", "expected a string");
    refused("{\"prompt\":\"x\",\"stream_options\":{\"foo\":true}}", 0, 400, "stream_options", "Unrecognized");
    refused("{\"prompt\":\"x\",\"softmask\":\"half\"}", 0, 400, "softmask", "not one of");
    refused("{\"messages\":[]}", 1, 400, "messages", "empty array");
    refused("{\"messages\":[{\"role\":\"robot\",\"content\":\"x\"}]}", 1, 400, "messages[0].role", "not one of");
    refused("{\"messages\":[{\"content\":\"x\"}]}", 1, 400, "messages[0].role", "Missing");
    refused("{\"messages\":[\"hi\"]}", 1, 400, "messages[]", "expected an object");
    refused("{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\"}]}]}", 1, 400,
            "messages[0].content", "only text content");
    refused("{\"messages\":[{\"role\":\"user\",\"content\":5}]}", 1, 400, "messages[0].content", "expected");
    refused("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tools\":[{\"type\":\"function\"}]}", 1, 400,
            "tools", "not supported");
    refused("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"response_format\":{\"type\":\"json_object\"}}", 1,
            400, "response_format", "not supported");
    refused("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"logprobs\":true}", 1, 400, "logprobs",
            "not supported");
    refused("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"echo\":true}", 1, 400, "echo", "Unrecognized");
}

/* Diffusion settings reach the sampler; out-of-range values are refused
 * with the library's own bounds, naming the field. */
static void test_configure(void **state) {
    (void)state;
    smdiff_model *m = st_bundled_model();
    if (!m) SKIP_BECAUSE("the bundled model models/smdiff-gutenberg-18m-sm.gguf is missing");
    sd_gen_request r;
    assert_int_equal(parse_ok("{\"prompt\":\"x\",\"temperature\":0.7,\"top_p\":0.8,\"top_k\":9,\"seed\":42,"
                              "\"alg_temp\":0.2,\"threshold\":0.6,\"block_length\":4,\"strategy\":\"low_confidence\","
                              "\"softmask\":\"off\"}",
                              0, &r),
                     0);
    smdiff_sampler *s = NULL;
    assert_int_equal(smdiff_sampler_create(&s), SMDIFF_OK);
    sd_api_error e = {0};
    assert_int_equal(sd_request_configure(&r, m, s, 1, &e), 0);
    double d = 0;
    int64_t i = 0;
    const char *name = NULL;
    smdiff_sampler_get_double(s, SMDIFF_SAMPLER_TEMPERATURE, &d);
    assert_true(d == 0.7);
    smdiff_sampler_get_double(s, SMDIFF_SAMPLER_TOP_P, &d);
    assert_true(d == 0.8);
    smdiff_sampler_get_double(s, SMDIFF_SAMPLER_ALG_TEMP, &d);
    assert_true(d == 0.2);
    smdiff_sampler_get_double(s, SMDIFF_SAMPLER_THRESHOLD, &d);
    assert_true(d == 0.6);
    smdiff_sampler_get_int(s, SMDIFF_SAMPLER_TOP_K, &i);
    assert_int_equal(i, 9);
    smdiff_sampler_get_int(s, SMDIFF_SAMPLER_SEED, &i);
    assert_int_equal(i, 42);
    smdiff_sampler_get_int(s, SMDIFF_SAMPLER_BLOCK_LENGTH, &i);
    assert_int_equal(i, 4);
    smdiff_sampler_get_int(s, SMDIFF_SAMPLER_THREADS, &i);
    assert_int_equal(i, 1);
    smdiff_sampler_get_strategy(s, &name);
    assert_string_equal(name, "low_confidence");
    smdiff_sampler_free(s);
    sd_request_free(&r);

    struct {
        const char *body, *param;
    } bad[] = {
        {"{\"prompt\":\"x\",\"temperature\":1000}", "temperature"},
        {"{\"prompt\":\"x\",\"top_p\":0}", "top_p"},
        {"{\"prompt\":\"x\",\"threshold\":2}", "threshold"},
        {"{\"prompt\":\"x\",\"strategy\":\"no_such\"}", "strategy"},
        {"{\"prompt\":\"x\",\"softmask_scale\":1.5}", "softmask_scale"},
        {"{\"prompt\":\"x\",\"softmask_centre\":1}", "softmask_centre"},
        {"{\"prompt\":\"x\",\"softmask_topk\":0}", "softmask_topk"},
        {"{\"prompt\":\"x\",\"softmask_lambda\":-0.5}", "softmask_lambda"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        assert_int_equal(parse_ok(bad[k].body, 0, &r), 0);
        assert_int_equal(smdiff_sampler_create(&s), SMDIFF_OK);
        memset(&e, 0, sizeof e);
        assert_int_equal(sd_request_configure(&r, m, s, 0, &e), -1);
        assert_int_equal(e.status, 400);
        assert_string_equal(e.param, bad[k].param);
        smdiff_sampler_free(s);
        sd_request_free(&r);
    }
}

/* ------------------------------------------------------ response bodies */

static void test_format(void **state) {
    (void)state;
    sd_gen_result res = {"cmpl-1", 1700000000, "m", "caf\xc3\xa9 \"q\"\n", 10, "stop", 3, 2};
    size_t n = 0;
    char *s = sd_completion_json(0, &res, &n);
    assert_int_equal(strlen(s), n);
    json_t *v = parse_json(s);
    assert_string_equal(json_string_value(json_object_get(v, "object")), "text_completion");
    assert_string_equal(json_string_value(json_object_get(v, "id")), "cmpl-1");
    assert_int_equal(json_integer_value(json_object_get(v, "created")), 1700000000);
    json_t *c0 = json_array_get(json_object_get(v, "choices"), 0);
    assert_string_equal(json_string_value(json_object_get(c0, "text")), "caf\xc3\xa9 \"q\"\n");
    assert_string_equal(json_string_value(json_object_get(c0, "finish_reason")), "stop");
    assert_true(json_is_null(json_object_get(c0, "logprobs")));
    json_t *u = json_object_get(v, "usage");
    assert_int_equal(json_integer_value(json_object_get(u, "total_tokens")), 5);
    json_decref(v);
    sd_free(s);

    s = sd_completion_json(1, &res, &n);
    v = parse_json(s);
    assert_string_equal(json_string_value(json_object_get(v, "object")), "chat.completion");
    json_t *msg = json_object_get(json_array_get(json_object_get(v, "choices"), 0), "message");
    assert_string_equal(json_string_value(json_object_get(msg, "role")), "assistant");
    assert_string_equal(json_string_value(json_object_get(msg, "content")), "caf\xc3\xa9 \"q\"\n");
    json_decref(v);
    sd_free(s);

    /* Invalid UTF-8 in text becomes U+FFFD rather than a broken body. */
    sd_gen_result bad = res;
    bad.text = "a\xff" "b\xe2\x82";
    bad.text_len = 5;
    s = sd_completion_json(0, &bad, &n);
    v = parse_json(s);
    assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(v, "choices"), 0), "text")),
                        "a\xef\xbf\xbd" "b\xef\xbf\xbd\xef\xbf\xbd");
    json_decref(v);
    sd_free(s);

    /* Errors: OpenAI's four fields, null where empty. */
    sd_api_error e;
    sd_api_fail(&e, 400, "invalid_request_error", NULL, "", "bad %d", 1);
    s = sd_error_json(&e, &n);
    v = parse_json(s);
    json_t *err = json_object_get(v, "error");
    assert_string_equal(json_string_value(json_object_get(err, "message")), "bad 1");
    assert_string_equal(json_string_value(json_object_get(err, "type")), "invalid_request_error");
    assert_true(json_is_null(json_object_get(err, "param")) && json_is_null(json_object_get(err, "code")));
    json_decref(v);
    sd_free(s);
}

static void test_format_sse(void **state) {
    (void)state;
    sd_gen_result res = {"chatcmpl-9", 5, "m", NULL, 0, NULL, 4, 3};
    sd_sbuf b = {0};
    int32_t cpos[] = {0, 2}, cid[] = {11, 12}, mpos[] = {1};
    const char *ctext[] = {"He", "\xe2\x80"}; /* the second: part of a character */
    size_t clen[] = {2, 2};
    float lam[] = {0.25f};
    sd_step_event ev = {1, 4, 3, cpos, cid, ctext, clen, 2, mpos, lam, 1, 0.01};
    assert_int_equal(sd_chunk_sse(&b, 1, &res, 1, "He", 2, NULL, &ev), 0);
    assert_int_equal(sd_chunk_sse(&b, 1, &res, 0, "", 0, "stop", NULL), 0);
    assert_int_equal(sd_usage_sse(&b, 1, &res), 0);
    assert_int_equal(sd_done_sse(&b), 0);
    char **evs = NULL;
    int n = st_sse_events(b.data, &evs);
    assert_int_equal(n, 4);
    /* each event is one line "data: <json>" followed by a blank line */
    assert_true(!strncmp(b.data, "data: {", 7));
    assert_non_null(strstr(b.data, "}\n\ndata: {"));
    json_t *v = parse_json(evs[0]);
    assert_string_equal(json_string_value(json_object_get(v, "object")), "chat.completion.chunk");
    json_t *d = json_object_get(json_array_get(json_object_get(v, "choices"), 0), "delta");
    assert_string_equal(json_string_value(json_object_get(d, "role")), "assistant");
    assert_string_equal(json_string_value(json_object_get(d, "content")), "He");
    json_t *st = json_object_get(v, "smdiff_step");
    assert_int_equal(json_integer_value(json_object_get(st, "step")), 1);
    assert_int_equal(json_integer_value(json_object_get(st, "steps")), 4);
    assert_int_equal(json_integer_value(json_object_get(st, "length")), 3);
    json_t *com = json_object_get(st, "committed");
    assert_int_equal(json_integer_value(json_array_get(json_object_get(com, "positions"), 1)), 2);
    assert_int_equal(json_integer_value(json_array_get(json_object_get(com, "ids"), 0)), 11);
    assert_string_equal(json_string_value(json_array_get(json_object_get(com, "text"), 0)), "He");
    assert_string_equal(json_string_value(json_array_get(json_object_get(com, "text"), 1)), "\xef\xbf\xbd\xef\xbf\xbd");
    json_t *by = json_array_get(json_object_get(com, "bytes"), 1);
    assert_int_equal(json_array_size(by), 2);
    assert_int_equal(json_integer_value(json_array_get(by, 0)), 0xe2);
    assert_int_equal(json_integer_value(json_array_get(by, 1)), 0x80);
    json_t *mk = json_object_get(st, "masked");
    assert_int_equal(json_integer_value(json_array_get(json_object_get(mk, "positions"), 0)), 1);
    assert_true(fabs(json_number_value(json_array_get(json_object_get(mk, "lambda"), 0)) - 0.25) < 1e-9);
    json_decref(v);
    v = parse_json(evs[1]);
    json_t *c0 = json_array_get(json_object_get(v, "choices"), 0);
    assert_string_equal(json_string_value(json_object_get(c0, "finish_reason")), "stop");
    assert_int_equal(json_object_size(json_object_get(c0, "delta")), 0);
    assert_null(json_object_get(v, "smdiff_step"));
    json_decref(v);
    v = parse_json(evs[2]);
    assert_int_equal(json_array_size(json_object_get(v, "choices")), 0);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(v, "usage"), "total_tokens")), 7);
    json_decref(v);
    assert_string_equal(evs[3], "[DONE]");
    st_free_events(evs, n);
    sd_sbuf_free(&b);

    /* completions chunks carry "text"; an error event is followed by [DONE] */
    assert_int_equal(sd_chunk_sse(&b, 0, &res, 1, "ab", 1, NULL, NULL), 0);
    sd_api_error e;
    sd_api_fail(&e, 503, "server_error", "shutting_down", NULL, "bye");
    assert_int_equal(sd_error_sse(&b, &e), 0);
    n = st_sse_events(b.data, &evs);
    assert_int_equal(n, 3);
    v = parse_json(evs[0]);
    assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(v, "choices"), 0), "text")), "a");
    json_decref(v);
    v = parse_json(evs[1]);
    assert_string_equal(json_string_value(json_object_get(json_object_get(v, "error"), "code")), "shutting_down");
    json_decref(v);
    assert_string_equal(evs[2], "[DONE]");
    st_free_events(evs, n);
    sd_sbuf_free(&b);
}

static void test_utf8_repair(void **state) {
    (void)state;
    struct {
        const char *in;
        size_t n;
        const char *out;
    } cases[] = {
        {"plain", 5, "plain"},
        {"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 9, "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"},
        {"\xff", 1, "\xef\xbf\xbd"},
        {"a\xc3", 2, "a\xef\xbf\xbd"},                        /* truncated */
        {"\xc0\xaf", 2, "\xef\xbf\xbd\xef\xbf\xbd"},          /* overlong */
        {"\xed\xa0\x80", 3, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"}, /* surrogate */
        {"\xf4\x90\x80\x80", 4, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"}, /* > U+10FFFF */
        {"x\0y", 3, "x\0y"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sd_sbuf b = {0};
        assert_int_equal(sd_utf8_repair(&b, cases[i].in, cases[i].n), 0);
        size_t want = i == sizeof cases / sizeof cases[0] - 1 ? 3 : strlen(cases[i].out);
        assert_int_equal(b.n, want);
        assert_memory_equal(b.data, cases[i].out, want);
        sd_sbuf_free(&b);
    }
}

static void test_metrics_text(void **state) {
    (void)state;
    sd_metrics *m = sd_metrics_create();
    sd_metrics_request(m, SD_EP_COMPLETIONS, 200, 0.2);
    sd_metrics_request(m, SD_EP_COMPLETIONS, 200, 3);
    sd_metrics_request(m, SD_EP_COMPLETIONS, 429, 0.001);
    sd_metrics_request(m, SD_EP_HEALTH, 200, 0.0001);
    sd_metrics_tokens(m, 10, 20);
    sd_metrics_step(m, 0.04);
    sd_metrics_abort(m, SD_ABORT_DISCONNECT);
    sd_gauges g = {2, 1, 3, 8, 5};
    sd_sbuf b = {0};
    assert_int_equal(sd_metrics_render(m, &g, &b), 0);
    const char *want[] = {
        "# TYPE smdiff_requests_total counter\n",
        "smdiff_requests_total{endpoint=\"/v1/completions\",status=\"200\"} 2\n",
        "smdiff_requests_total{endpoint=\"/v1/completions\",status=\"429\"} 1\n",
        "smdiff_requests_total{endpoint=\"/health\",status=\"200\"} 1\n",
        "smdiff_request_duration_seconds_bucket{endpoint=\"/v1/completions\",le=\"0.25\"} 2\n",
        "smdiff_request_duration_seconds_bucket{endpoint=\"/v1/completions\",le=\"+Inf\"} 3\n",
        "smdiff_request_duration_seconds_count{endpoint=\"/v1/completions\"} 3\n",
        "smdiff_generations_aborted_total{reason=\"disconnect\"} 1\n",
        "smdiff_prompt_tokens_total 10\n",
        "smdiff_completion_tokens_total 20\n",
        "smdiff_step_seconds_bucket{le=\"0.05\"} 1\n",
        "smdiff_step_seconds_bucket{le=\"0.025\"} 0\n",
        "smdiff_step_seconds_count 1\n",
        "smdiff_slots 2\n", "smdiff_slots_busy 1\n", "smdiff_queue_depth 3\n", "smdiff_queue_capacity 8\n",
        "smdiff_connections 5\n",
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        if (!strstr(b.data, want[i])) print_message("missing: %s\n%s", want[i], b.data);
        assert_non_null(strstr(b.data, want[i]));
    }
    /* every line is a comment or "name{labels} value" */
    for (char *line = b.data; *line;) {
        char *eol = strchr(line, '\n');
        assert_non_null(eol);
        if (line[0] != '#') {
            char *sp = memchr(line, ' ', (size_t)(eol - line));
            assert_non_null(sp);
            char *end;
            strtod(sp + 1, &end);
            assert_ptr_equal(end, eol);
        }
        line = eol + 1;
    }
    sd_sbuf_free(&b);
    sd_metrics_free(m);
}

/* ----------------------------------------------- HTTP over memory */

typedef struct memio {
    sd_sbuf out;
    int closed, paused, busy;
} memio;

static void m_write(void *io, char *buf, size_t n) {
    memio *m = io;
    assert_false(m->closed);
    sd_sbuf_add(&m->out, buf, n);
    sd_free(buf);
}
static void m_close(void *io) { ((memio *)io)->closed++; }
static void m_pause(void *io, int p) { ((memio *)io)->paused = p; }
static void m_busy(void *io, int b) { ((memio *)io)->busy = b; }

/* Echo handler: "METHOD PATH auth=... body" as text/plain; a body
 * "defer" leaves the response for later (the test answers it). */
typedef struct echo_ctx {
    int n;
    sd_http_conn *deferred;
} echo_ctx;

static void echo(void *ctx, sd_http_conn *c, const sd_http_req *r) {
    echo_ctx *e = ctx;
    e->n++;
    if (!strcmp(r->body, "defer")) {
        e->deferred = c;
        return;
    }
    char buf[512];
    int n = snprintf(buf, sizeof buf, "%d %s auth=%s body=%.*s", r->method, r->path, r->auth ? r->auth : "-",
                     (int)r->body_len, r->body);
    sd_http_respond(c, 200, "text/plain", buf, (size_t)n, NULL);
}

static sd_http_conn *mem_conn(memio *m, echo_ctx *e, size_t max_header, size_t max_body) {
    memset(m, 0, sizeof *m);
    sd_http_io io = {m_write, m_close, m_pause, m_busy, m};
    sd_http_limits lim = {max_header, max_body};
    return sd_http_conn_create(&io, &lim, echo, e);
}

static void feed(sd_http_conn *c, const char *s) { sd_http_conn_feed(c, s, strlen(s)); }

static void test_http_basic(void **state) {
    (void)state;
    memio m;
    echo_ctx e = {0};
    sd_http_conn *c = mem_conn(&m, &e, 4096, 1024);
    /* two pipelined requests in one read, answered in order */
    feed(c, "GET /health?x=1 HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer k\r\n\r\n"
            "POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello");
    st_resp r[3];
    assert_int_equal(st_parse_responses(m.out.data, m.out.n, r, 3), 2);
    assert_int_equal(r[0].status, 200);
    assert_string_equal(r[0].body, "1 /health auth=Bearer k body=");
    assert_string_equal(r[1].body, "3 /p auth=- body=hello");
    assert_true(r[0].keep_alive && r[1].keep_alive);
    assert_non_null(st_header(&r[0], "content-length"));
    st_resp_free(&r[0]);
    st_resp_free(&r[1]);
    assert_int_equal(m.closed, 0);
    /* byte by byte, with a chunked body */
    m.out.n = 0;
    const char *req = "POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
    for (const char *p = req; *p; p++) sd_http_conn_feed(c, p, 1);
    assert_int_equal(st_parse_responses(m.out.data, m.out.n, r, 1), 1);
    assert_string_equal(r[0].body, "3 /c auth=- body=abcde");
    st_resp_free(&r[0]);
    /* Connection: close ends the connection after the answer */
    m.out.n = 0;
    feed(c, "GET /x HTTP/1.1\r\nConnection: close\r\n\r\nGET /y HTTP/1.1\r\n\r\n");
    assert_int_equal(st_parse_responses(m.out.data, m.out.n, r, 2), 1);
    assert_string_equal(st_header(&r[0], "connection"), "close");
    st_resp_free(&r[0]);
    assert_int_equal(m.closed, 1);
    assert_int_equal(e.n, 4);
    sd_http_conn_free(c);
    sd_sbuf_free(&m.out);

    /* HTTP/1.0 closes by default */
    c = mem_conn(&m, &e, 4096, 1024);
    feed(c, "GET /old HTTP/1.0\r\n\r\n");
    assert_int_equal(st_parse_responses(m.out.data, m.out.n, r, 1), 1);
    assert_string_equal(st_header(&r[0], "connection"), "close");
    st_resp_free(&r[0]);
    assert_int_equal(m.closed, 1);
    sd_http_conn_free(c);
    sd_sbuf_free(&m.out);
}

/* A request answered later holds the next one back (pipelining). */
static void test_http_deferred(void **state) {
    (void)state;
    memio m;
    echo_ctx e = {0};
    sd_http_conn *c = mem_conn(&m, &e, 4096, 1024);
    feed(c, "POST /a HTTP/1.1\r\nContent-Length: 5\r\n\r\ndeferGET /b HTTP/1.1\r\n\r\n");
    assert_int_equal(e.n, 1);
    assert_int_equal(m.out.n, 0);
    assert_true(sd_http_conn_busy(c) && m.busy);
    /* stream the deferred answer: chunked framing, then the next request runs */
    sd_http_stream_begin(e.deferred, 200, "text/event-stream", "X-T: 1\r\n");
    sd_http_stream_send(e.deferred, "data: 1\n\n", 9);
    sd_http_stream_send(e.deferred, "data: 2\n\n", 9);
    assert_int_equal(e.n, 1);
    sd_http_stream_end(e.deferred);
    assert_int_equal(e.n, 2);
    st_resp r[2];
    assert_int_equal(st_parse_responses(m.out.data, m.out.n, r, 2), 2);
    assert_string_equal(st_header(&r[0], "transfer-encoding"), "chunked");
    assert_string_equal(st_header(&r[0], "x-t"), "1");
    assert_string_equal(r[0].body, "data: 1\n\ndata: 2\n\n");
    assert_string_equal(r[1].body, "1 /b auth=- body=");
    st_resp_free(&r[0]);
    st_resp_free(&r[1]);
    assert_false(m.busy);
    sd_http_conn_free(c);
    sd_sbuf_free(&m.out);

    /* HTTP/1.0 streams have no chunked coding and end with the connection */
    c = mem_conn(&m, &e, 4096, 1024);
    feed(c, "POST /a HTTP/1.0\r\nContent-Length: 5\r\n\r\ndefer");
    sd_http_stream_begin(e.deferred, 200, "text/event-stream", NULL);
    sd_http_stream_send(e.deferred, "abc", 3);
    sd_http_stream_end(e.deferred);
    assert_null(strstr(m.out.data, "chunked"));
    assert_non_null(strstr(m.out.data, "\r\n\r\nabc"));
    assert_int_equal(m.closed, 1);
    sd_http_conn_free(c);
    sd_sbuf_free(&m.out);
}

/* Bad input: an answer with the right status, then the connection closes. */
static void http_refused(const char *raw, size_t max_header, size_t max_body, int status) {
    memio m;
    echo_ctx e = {0};
    sd_http_conn *c = mem_conn(&m, &e, max_header, max_body);
    feed(c, raw);
    st_resp r[1];
    if (st_parse_responses(m.out.data, m.out.n, r, 1) != 1) print_message("no response to %.60s\n", raw);
    assert_int_equal(r[0].status, status);
    json_t *v = parse_json(r[0].body);
    assert_non_null(json_object_get(json_object_get(v, "error"), "message"));
    json_decref(v);
    st_resp_free(&r[0]);
    assert_int_equal(m.closed, 1);
    assert_int_equal(e.n, 0);
    sd_http_conn_free(c);
    sd_sbuf_free(&m.out);
}

static void test_http_limits(void **state) {
    (void)state;
    http_refused("GARBAGE\r\n\r\n", 4096, 1024, 400);
    http_refused("GET / HTTP/1.1\r\nBad Header\r\n\r\n", 4096, 1024, 400);
    http_refused("\x01\x02\x03\x04\x05 / HTTP/1.1\r\n\r\n", 4096, 1024, 400);
    http_refused("POST /p HTTP/1.1\r\nContent-Length: 2000\r\n\r\n", 4096, 1024, 413);
    http_refused("POST /p HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n400\r\n", 4096, 1000, 413);
    http_refused("POST /p HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", 4096, 1024, 400);
    http_refused("POST /p HTTP/1.1\r\nExpect: magic\r\nContent-Length: 1\r\n\r\na", 4096, 1024, 417);
    char big[3000];
    memset(big, 'a', sizeof big);
    big[sizeof big - 1] = '\0';
    char raw[3200];
    snprintf(raw, sizeof raw, "GET / HTTP/1.1\r\nX-Big: %s\r\n\r\n", big);
    http_refused(raw, 1024, 1024, 431);
    snprintf(raw, sizeof raw, "GET /%s HTTP/1.1\r\n\r\n", big);
    http_refused(raw, 1024, 1024, 414);

    /* Expect: 100-continue gets its interim answer before the body */
    memio m;
    echo_ctx e = {0};
    sd_http_conn *c = mem_conn(&m, &e, 4096, 1024);
    feed(c, "POST /p HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n");
    assert_string_equal(m.out.data, "HTTP/1.1 100 Continue\r\n\r\n");
    feed(c, "abc");
    assert_non_null(strstr(m.out.data, "body=abc"));
    sd_http_conn_free(c);
    sd_sbuf_free(&m.out);

    /* A truncated request and then the end: nothing is answered, nothing leaks. */
    c = mem_conn(&m, &e, 4096, 1024);
    feed(c, "POST /p HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc");
    assert_int_equal(m.out.n, 0);
    sd_http_conn_lost(c);
    assert_int_equal(m.closed, 1);
    sd_http_conn_free(c);
    sd_sbuf_free(&m.out);
}

/* ------------------------------------------------ the router, inline */

static sd_server_core *core_new(const char *key) {
    smdiff_model *m = st_bundled_model();
    if (!m) return NULL;
    sd_server_core *c = calloc(1, sizeof *c);
    c->model = m;
    c->model_name = "test-model";
    c->api_key = key;
    c->threads = 1;
    smdiff_model_property(m, SMDIFF_PROP_CONTEXT, &c->context);
    smdiff_model_property(m, SMDIFF_PROP_VOCAB_SIZE, &c->vocab);
    smdiff_model_property(m, SMDIFF_PROP_MASK_ID, &c->mask_id);
    smdiff_model_property(m, SMDIFF_PROP_EOS_ID, &c->eos_id);
    smdiff_model_property(m, SMDIFF_PROP_BOS_ID, &c->bos_id);
    c->max_tokens = c->context;
    c->metrics = sd_metrics_create();
    c->n_slots = 1;
    uv_mutex_init(&c->out_mu);
    return c;
}

static void core_free(sd_server_core *c) {
    assert_int_equal(c->jobs_alive, 0);
    sd_metrics_free(c->metrics);
    uv_mutex_destroy(&c->out_mu);
    free(c);
}

/* One request through the router; the response parsed into r. */
static int exchange(sd_server_core *core, const char *method, const char *path, const char *body,
                    const char *extra, st_resp *r) {
    memio m = {0};
    sd_http_io io = {m_write, m_close, m_pause, m_busy, &m};
    sd_http_limits lim = {16384, 1 << 20};
    sd_http_conn *c = sd_http_conn_create(&io, &lim, sd_router_handle, core);
    char head[1024];
    snprintf(head, sizeof head, "%s %s HTTP/1.1\r\nHost: t\r\n%sContent-Length: %zu\r\n\r\n", method, path,
             extra ? extra : "", body ? strlen(body) : 0);
    feed(c, head);
    if (body) feed(c, body);
    int n = st_parse_responses(m.out.data ? m.out.data : "", m.out.n, r, 1);
    sd_router_conn_lost(core, c);
    sd_http_conn_free(c);
    sd_sbuf_free(&m.out);
    return n ? r->status : 0;
}

static json_t *exchange_json(sd_server_core *core, const char *path, const char *body, int want) {
    st_resp r;
    int status = exchange(core, body ? "POST" : "GET", path, body, NULL, &r);
    if (status != want) print_message("%s %s -> %d: %s\n", path, body ? body : "", status, r.body);
    assert_int_equal(status, want);
    json_t *v = parse_json(r.body);
    st_resp_free(&r);
    return v;
}

static const char *choice_text(json_t *v) {
    json_t *c0 = json_array_get(json_object_get(v, "choices"), 0);
    json_t *t = json_object_get(c0, "text");
    if (!t) t = json_object_get(json_object_get(c0, "message"), "content");
    return json_string_value(t);
}

static void test_router_endpoints(void **state) {
    (void)state;
    sd_server_core *core = core_new(NULL);
    if (!core) SKIP_BECAUSE("the bundled model models/smdiff-gutenberg-18m-sm.gguf is missing");
    json_t *v = exchange_json(core, "/health", NULL, 200);
    assert_string_equal(json_string_value(json_object_get(v, "status")), "ok");
    json_decref(v);
    v = exchange_json(core, "/v1/models", NULL, 200);
    json_t *m0 = json_array_get(json_object_get(v, "data"), 0);
    assert_string_equal(json_string_value(json_object_get(m0, "id")), "test-model");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(m0, "smdiff"), "context_length")), 128);
    assert_true(json_array_size(json_object_get(json_object_get(m0, "smdiff"), "strategies")) >= 7);
    json_decref(v);
    v = exchange_json(core, "/v1/models/test-model", NULL, 200);
    assert_string_equal(json_string_value(json_object_get(v, "object")), "model");
    json_decref(v);
    v = exchange_json(core, "/v1/models/other", NULL, 404);
    assert_string_equal(json_string_value(json_object_get(json_object_get(v, "error"), "code")), "model_not_found");
    json_decref(v);
    v = exchange_json(core, "/v1/nothing", NULL, 404);
    assert_string_equal(json_string_value(json_object_get(json_object_get(v, "error"), "code")), "unknown_url");
    json_decref(v);
    st_resp r;
    assert_int_equal(exchange(core, "GET", "/v1/completions", NULL, NULL, &r), 405);
    assert_string_equal(st_header(&r, "allow"), "POST");
    st_resp_free(&r);
    assert_int_equal(exchange(core, "POST", "/health", "", NULL, &r), 405);
    assert_string_equal(st_header(&r, "allow"), "GET");
    st_resp_free(&r);
    assert_int_equal(exchange(core, "GET", "/", NULL, NULL, &r), 200);
    assert_non_null(strstr(st_header(&r, "content-type"), "text/html"));
    assert_non_null(strstr(r.body, "<html"));
    st_resp_free(&r);
    v = exchange_json(core, "/v1/completions", "{\"prompt\":\"x\",\"model\":\"gpt-4\"}", 404);
    assert_string_equal(json_string_value(json_object_get(json_object_get(v, "error"), "code")), "model_not_found");
    json_decref(v);
    v = exchange_json(core, "/v1/completions", "{\"prompt\":\"x\",\"max_tokens\":129}", 400);
    json_decref(v);
    v = exchange_json(core, "/v1/completions", "{\"prompt\":\"x\",\"max_tokens\":127,\"steps\":4}", 200);
    json_decref(v);
    v = exchange_json(core, "/v1/completions", "{\"prompt\":\"x y\",\"max_tokens\":127}", 400);
    assert_string_equal(json_string_value(json_object_get(json_object_get(v, "error"), "code")),
                        "context_length_exceeded");
    json_decref(v);
    /* the sampler's own cross-checks, in its words */
    v = exchange_json(core, "/v1/completions", "{\"prompt\":\"x\",\"max_tokens\":8,\"steps\":9}", 400);
    assert_non_null(strstr(json_string_value(json_object_get(json_object_get(v, "error"), "message")), "steps 9"));
    json_decref(v);
    v = exchange_json(core, "/v1/completions", "{\"prompt\":[99999999],\"max_tokens\":4}", 400);
    json_decref(v);
    /* /metrics counted what came before, by endpoint and status */
    assert_int_equal(exchange(core, "GET", "/metrics", NULL, NULL, &r), 200);
    assert_non_null(strstr(r.body, "smdiff_requests_total{endpoint=\"/v1/completions\",status=\"400\"} 4"));
    assert_non_null(strstr(r.body, "smdiff_requests_total{endpoint=\"/v1/completions\",status=\"200\"} 1"));
    assert_non_null(strstr(r.body, "smdiff_requests_total{endpoint=\"other\",status=\"404\"} 1"));
    st_resp_free(&r);
    core_free(core);
}

static void test_router_auth(void **state) {
    (void)state;
    sd_server_core *core = core_new("sekret");
    if (!core) SKIP_BECAUSE("the bundled model models/smdiff-gutenberg-18m-sm.gguf is missing");
    st_resp r;
    assert_int_equal(exchange(core, "GET", "/v1/models", NULL, NULL, &r), 401);
    assert_non_null(strstr(r.body, "invalid_api_key"));
    st_resp_free(&r);
    assert_int_equal(exchange(core, "GET", "/v1/models", NULL, "Authorization: Bearer wrong\r\n", &r), 401);
    st_resp_free(&r);
    assert_int_equal(exchange(core, "GET", "/v1/models", NULL, "Authorization: Bearer sekretX\r\n", &r), 401);
    st_resp_free(&r);
    assert_int_equal(exchange(core, "GET", "/v1/models", NULL, "Authorization: sekret\r\n", &r), 401);
    st_resp_free(&r);
    assert_int_equal(exchange(core, "POST", "/v1/completions", "{\"prompt\":\"x\"}", NULL, &r), 401);
    st_resp_free(&r);
    assert_int_equal(exchange(core, "GET", "/v1/models", NULL, "Authorization: Bearer sekret\r\n", &r), 200);
    st_resp_free(&r);
    /* health, metrics and the page stay open (load balancers, scrapers) */
    assert_int_equal(exchange(core, "GET", "/health", NULL, NULL, &r), 200);
    st_resp_free(&r);
    assert_int_equal(exchange(core, "GET", "/metrics", NULL, NULL, &r), 200);
    st_resp_free(&r);
    assert_int_equal(exchange(core, "GET", "/", NULL, NULL, &r), 200);
    st_resp_free(&r);
    core_free(core);
}

/* Concatenated stream deltas equal the non-streamed text of the same
 * request (greedy decoding is deterministic), and the step events commit
 * every position exactly once, their texts spelling the same text. */
static void stream_matches(sd_server_core *core, const char *path, const char *params) {
    char body[512];
    snprintf(body, sizeof body, "{%s}", params);
    json_t *v = exchange_json(core, path, body, 200);
    char *plain = strdup(choice_text(v));
    const char *finish = json_string_value(json_object_get(json_array_get(json_object_get(v, "choices"), 0), "finish_reason"));
    char *plain_finish = strdup(finish);
    int64_t completion = json_integer_value(json_object_get(json_object_get(v, "usage"), "completion_tokens"));
    json_decref(v);

    snprintf(body, sizeof body, "{%s,\"stream\":true,\"stream_steps\":true,\"stream_options\":{\"include_usage\":true}}",
             params);
    st_resp r;
    assert_int_equal(exchange(core, "POST", path, body, NULL, &r), 200);
    assert_non_null(strstr(st_header(&r, "content-type"), "text/event-stream"));
    char **ev = NULL;
    int n = st_sse_events(r.body, &ev);
    assert_true(n >= 3);
    assert_string_equal(ev[n - 1], "[DONE]");
    sd_sbuf text = {0};
    int seen[128] = {0}, length = -1, last_step = -1, usage_seen = 0;
    char *pieces[128] = {0};
    int32_t ids[128] = {0};
    const char *fin = NULL;
    for (int i = 0; i < n - 1; i++) {
        json_t *c = parse_json(ev[i]);
        json_t *choices = json_object_get(c, "choices");
        if (json_array_size(choices) == 0) { /* usage chunk, last before [DONE] */
            assert_int_equal(i, n - 2);
            assert_int_equal(json_integer_value(json_object_get(json_object_get(c, "usage"), "completion_tokens")),
                             completion);
            usage_seen = 1;
            json_decref(c);
            continue;
        }
        json_t *c0 = json_array_get(choices, 0);
        json_t *t = json_object_get(c0, "text");
        if (!t) t = json_object_get(json_object_get(c0, "delta"), "content");
        if (t) sd_sbuf_str(&text, json_string_value(t));
        if (json_is_string(json_object_get(c0, "finish_reason"))) {
            assert_null(fin);
            fin = strdup(json_string_value(json_object_get(c0, "finish_reason")));
        }
        json_t *st = json_object_get(c, "smdiff_step");
        if (st) {
            int step = (int)json_integer_value(json_object_get(st, "step"));
            assert_true(step > last_step);
            last_step = step;
            length = (int)json_integer_value(json_object_get(st, "length"));
            json_t *com = json_object_get(st, "committed");
            json_t *pos = json_object_get(com, "positions"), *txt = json_object_get(com, "text"),
                   *cid = json_object_get(com, "ids");
            for (size_t k = 0; k < json_array_size(pos); k++) {
                int p = (int)json_integer_value(json_array_get(pos, k));
                assert_true(p >= 0 && p < length);
                assert_int_equal(seen[p]++, 0);
                pieces[p] = strdup(json_string_value(json_array_get(txt, k)));
                ids[p] = (int32_t)json_integer_value(json_array_get(cid, k));
            }
            json_t *mk = json_object_get(json_object_get(st, "masked"), "positions");
            for (size_t k = 0; k < json_array_size(mk); k++)
                assert_int_equal(seen[json_integer_value(json_array_get(mk, k))], 0);
        }
        json_decref(c);
    }
    assert_true(usage_seen);
    assert_non_null(fin);
    assert_string_equal(fin, plain_finish);
    if (strcmp(text.data ? text.data : "", plain)) {
        print_message("stream text '%s' != plain text '%s'\n", text.data, plain);
        for (int i = 0; i < n; i++) print_message("event %d: %s\n", i, ev[i]);
    }
    assert_string_equal(text.data ? text.data : "", plain);
    /* With no EOS, every position was committed once; their ids in
     * position order decode to the generated text (the per-token "text"
     * is for display: a character split across tokens shows as U+FFFD). */
    if (!strcmp(plain_finish, "length")) {
        size_t need = 0;
        for (int p = 0; p < length; p++) assert_int_equal(seen[p], 1);
        assert_int_equal(smdiff_model_detokenize(core->model, ids, (size_t)length, 0, NULL, 0, &need), SMDIFF_E_BUFFER);
        char *dec = calloc(1, need + 1);
        assert_int_equal(smdiff_model_detokenize(core->model, ids, (size_t)length, 0, dec, need, &need), SMDIFF_OK);
        sd_sbuf fixed = {0}; /* as sent: invalid UTF-8 as U+FFFD */
        assert_int_equal(sd_utf8_repair(&fixed, dec, need), 0);
        size_t pl = strlen(plain);
        assert_true(pl >= fixed.n);
        assert_string_equal(plain + pl - fixed.n, fixed.data); /* the text ends with it (echo comes first) */
        sd_sbuf_free(&fixed);
        free(dec);
    }
    for (int p = 0; p < 128; p++) free(pieces[p]);
    free((void *)fin);
    sd_sbuf_free(&text);
    st_free_events(ev, n);
    st_resp_free(&r);
    free(plain);
    free(plain_finish);
}

static void test_router_stream(void **state) {
    (void)state;
    sd_server_core *core = core_new(NULL);
    if (!core) SKIP_BECAUSE("the bundled model models/smdiff-gutenberg-18m-sm.gguf is missing");
    stream_matches(core, "/v1/completions", "\"prompt\":\"It was a dark and stormy night, and\",\"max_tokens\":16,\"steps\":8");
    stream_matches(core, "/v1/completions",
                   "\"prompt\":\"The old man\",\"max_tokens\":12,\"steps\":12,\"block_length\":4,\"strategy\":\"low_confidence\"");
    stream_matches(core, "/v1/completions", "\"prompt\":\"He said\",\"max_tokens\":8,\"temperature\":0.8,\"seed\":3,\"echo\":true");
    stream_matches(core, "/v1/chat/completions",
                   "\"messages\":[{\"role\":\"user\",\"content\":\"Tell me a story.\"}],\"max_tokens\":10,\"steps\":5");
    core_free(core);
}

/* Stop sequences cut the text before them (streamed or not); echo puts the
 * prompt first; a prompt of ids is the same prompt as its text. */
static void test_router_stop_echo_ids(void **state) {
    (void)state;
    sd_server_core *core = core_new(NULL);
    if (!core) SKIP_BECAUSE("the bundled model models/smdiff-gutenberg-18m-sm.gguf is missing");
    const char *base = "\"prompt\":\"It was a dark and stormy night, and\",\"max_tokens\":24,\"steps\":12";
    char body[512];
    snprintf(body, sizeof body, "{%s}", base);
    json_t *v = exchange_json(core, "/v1/completions", body, 200);
    char *full = strdup(choice_text(v));
    json_decref(v);
    assert_true(strlen(full) > 6);
    /* a stop string taken from the middle of the text */
    char stop[8];
    size_t at = strlen(full) / 2;
    snprintf(stop, sizeof stop, "%.3s", full + at);
    char *first = strstr(full, stop);
    size_t cut = (size_t)(first - full);
    char stop_json[32];
    sd_sbuf esc = {0};
    for (const char *p = stop; *p; p++) {
        if (*p == '\n') sd_sbuf_str(&esc, "\\n");
        else if (*p == '"' || *p == '\\') sd_sbuf_printf(&esc, "\\%c", *p);
        else sd_sbuf_add(&esc, p, 1);
    }
    snprintf(stop_json, sizeof stop_json, "%s", esc.data);
    sd_sbuf_free(&esc);
    snprintf(body, sizeof body, "{%s,\"stop\":[\"zzzz\",\"%s\"]}", base, stop_json);
    v = exchange_json(core, "/v1/completions", body, 200);
    assert_int_equal(strlen(choice_text(v)), cut);
    assert_memory_equal(choice_text(v), full, cut);
    assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(v, "choices"), 0), "finish_reason")),
                        "stop");
    json_decref(v);
    /* the same, streamed: the deltas never reach the stop string */
    snprintf(body, sizeof body, "{%s,\"stop\":\"%s\",\"stream\":true}", base, stop_json);
    st_resp r;
    assert_int_equal(exchange(core, "POST", "/v1/completions", body, NULL, &r), 200);
    char **ev = NULL;
    int n = st_sse_events(r.body, &ev);
    sd_sbuf text = {0};
    for (int i = 0; i < n - 1; i++) {
        json_t *c = parse_json(ev[i]);
        sd_sbuf_str(&text, choice_text(c));
        json_decref(c);
    }
    assert_int_equal(text.n, cut);
    assert_memory_equal(text.data ? text.data : "", full, cut);
    sd_sbuf_free(&text);
    st_free_events(ev, n);
    st_resp_free(&r);

    /* a stop sequence that starts like the end of the text but never
     * completes: that tail is held back at each step and must still come
     * at the end */
    char tail[16];
    size_t fl = strlen(full);
    snprintf(tail, sizeof tail, "%s", full + fl - 2);
    sd_sbuf esc2 = {0};
    for (const char *p = tail; *p; p++) {
        if (*p == '\n') sd_sbuf_str(&esc2, "\\n");
        else if (*p == '"' || *p == '\\') sd_sbuf_printf(&esc2, "\\%c", *p);
        else sd_sbuf_add(&esc2, p, 1);
    }
    snprintf(body, sizeof body, "{%s,\"stop\":\"%sqqq\",\"stream\":true}", base, esc2.data);
    sd_sbuf_free(&esc2);
    assert_int_equal(exchange(core, "POST", "/v1/completions", body, NULL, &r), 200);
    n = st_sse_events(r.body, &ev);
    for (int i = 0; i < n - 1; i++) {
        json_t *c = parse_json(ev[i]);
        sd_sbuf_str(&text, choice_text(c));
        json_decref(c);
    }
    assert_string_equal(text.data ? text.data : "", full);
    sd_sbuf_free(&text);
    st_free_events(ev, n);
    st_resp_free(&r);

    /* echo */
    snprintf(body, sizeof body, "{%s,\"echo\":true}", base);
    v = exchange_json(core, "/v1/completions", body, 200);
    char want[512];
    snprintf(want, sizeof want, "It was a dark and stormy night, and%s", full);
    assert_string_equal(choice_text(v), want);
    json_decref(v);

    /* the prompt as ids: tokenize it with the library, same completion */
    int32_t ids[64];
    size_t nid = 0;
    const char *prompt = "It was a dark and stormy night, and";
    assert_int_equal(smdiff_model_tokenize(core->model, prompt, strlen(prompt), SMDIFF_TOKENIZE_PARSE_SPECIAL, ids,
                                           64, &nid),
                     SMDIFF_OK);
    sd_sbuf b = {0};
    sd_sbuf_str(&b, "{\"prompt\":[");
    for (size_t i = 0; i < nid; i++) sd_sbuf_printf(&b, "%s%d", i ? "," : "", (int)ids[i]);
    sd_sbuf_str(&b, "],\"max_tokens\":24,\"steps\":12}");
    v = exchange_json(core, "/v1/completions", b.data, 200);
    assert_string_equal(choice_text(v), full);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(v, "usage"), "prompt_tokens")), (int)nid);
    json_decref(v);
    sd_sbuf_free(&b);
    free(full);
    core_free(core);
}

/* The chat prompt: the model's template when it has one (Qwen2's ChatML
 * tokenizer of tests/data), else a plain transcript. */
/* OpenAI's suffix is diffusion infilling: the span between prompt and
 * suffix is denoised with both as context -- the text the library's own
 * infilling helper gives for the same settings, streamed or not; the
 * suffix counts as prompt tokens and against the context. */
static void test_router_suffix(void **state) {
    (void)state;
    sd_server_core *core = core_new(NULL);
    if (!core) SKIP_BECAUSE("the bundled model models/smdiff-gutenberg-18m-sm.gguf is missing");
    const char *prompt = "It was a dark and stormy night, and", *suffix = " said the old man, and went home.";
    const char *fields = "\"prompt\":\"It was a dark and stormy night, and\","
                         "\"suffix\":\" said the old man, and went home.\",\"max_tokens\":16,\"steps\":8";
    char body[512];
    snprintf(body, sizeof body, "{%s}", fields);
    json_t *v = exchange_json(core, "/v1/completions", body, 200);
    smdiff_sampler *s = NULL;
    assert_int_equal(smdiff_sampler_create(&s), SMDIFF_OK);
    assert_int_equal(smdiff_sampler_set_int(s, SMDIFF_SAMPLER_GEN_LENGTH, 16), SMDIFF_OK);
    assert_int_equal(smdiff_sampler_set_int(s, SMDIFF_SAMPLER_STEPS, 8), SMDIFF_OK);
    assert_int_equal(smdiff_sampler_set_int(s, SMDIFF_SAMPLER_THREADS, 1), SMDIFF_OK);
    char want[1024];
    size_t n = 0;
    assert_int_equal(smdiff_generate_infill_text(s, core->model, prompt, suffix, want, sizeof want, &n), SMDIFF_OK);
    smdiff_sampler_free(s);
    /* the server sends invalid UTF-8 as U+FFFD (test_utf8_repair) */
    sd_sbuf fixed = {0};
    assert_int_equal(sd_utf8_repair(&fixed, want, n), 0);
    assert_string_equal(choice_text(v), fixed.data);
    sd_sbuf_free(&fixed);
    size_t np = 0, ns = 0;
    assert_int_equal(smdiff_model_tokenize(core->model, prompt, strlen(prompt), SMDIFF_TOKENIZE_PARSE_SPECIAL, NULL,
                                           0, &np), SMDIFF_E_BUFFER);
    assert_int_equal(smdiff_model_tokenize(core->model, suffix, strlen(suffix), SMDIFF_TOKENIZE_PARSE_SPECIAL, NULL,
                                           0, &ns), SMDIFF_E_BUFFER);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(v, "usage"), "prompt_tokens")),
                     (json_int_t)(np + ns));
    json_decref(v);
    /* the suffix is context: without it the same settings continue otherwise */
    v = exchange_json(core, "/v1/completions",
                      "{\"prompt\":\"It was a dark and stormy night, and\",\"max_tokens\":16,\"steps\":8}", 200);
    assert_string_not_equal(choice_text(v), want);
    json_decref(v);
    stream_matches(core, "/v1/completions", fields);
    /* prompt + suffix + max_tokens beyond the context: the message counts the suffix */
    snprintf(body, sizeof body, "{\"prompt\":\"Hi\",\"suffix\":\"%s\",\"max_tokens\":%d}", suffix,
             (int)core->context - 1);
    v = exchange_json(core, "/v1/completions", body, 400);
    json_t *err = json_object_get(v, "error");
    assert_string_equal(json_string_value(json_object_get(err, "code")), "context_length_exceeded");
    assert_non_null(strstr(json_string_value(json_object_get(err, "message")), "in the suffix"));
    json_decref(v);
    core_free(core);
}

static void test_render_chat(void **state) {
    (void)state;
    smdiff_model *m = st_bundled_model();
    if (!m) SKIP_BECAUSE("the bundled model models/smdiff-gutenberg-18m-sm.gguf is missing");
    sd_gen_request r;
    assert_int_equal(parse_ok("{\"messages\":[{\"role\":\"system\",\"content\":\"Be brief.\"},"
                              "{\"role\":\"user\",\"content\":\"Hi\"}]}",
                              1, &r),
                     0);
    sd_api_error e = {0};
    int templated = -1;
    char *p = sd_request_render(&r, m, &templated, &e);
    assert_int_equal(templated, 0);
    assert_string_equal(p, "System: Be brief.\n\nUser: Hi\n\nAssistant:");
    sd_free(p);
    smdiff_model *q = NULL;
    assert_int_equal(smdiff_model_create(&q), SMDIFF_OK);
    assert_int_equal(smdiff_model_load_tokenizer(q, test_data_path("tokenizers/dream-qwen2.5")), SMDIFF_OK);
    p = sd_request_render(&r, q, &templated, &e);
    assert_int_equal(templated, 1);
    assert_string_equal(p, "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
                           "<|im_start|>assistant\n");
    sd_free(p);
    smdiff_model_free(q);
    sd_request_free(&r);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_completion), cmocka_unit_test(test_parse_chat),
        cmocka_unit_test(test_parse_refusals),   cmocka_unit_test(test_configure),
        cmocka_unit_test(test_format),           cmocka_unit_test(test_format_sse),
        cmocka_unit_test(test_utf8_repair),      cmocka_unit_test(test_metrics_text),
        cmocka_unit_test(test_http_basic),       cmocka_unit_test(test_http_deferred),
        cmocka_unit_test(test_http_limits),      cmocka_unit_test(test_router_endpoints),
        cmocka_unit_test(test_router_auth),      cmocka_unit_test(test_router_stream),
        cmocka_unit_test(test_router_stop_echo_ids), cmocka_unit_test(test_router_suffix),
        cmocka_unit_test(test_render_chat),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
