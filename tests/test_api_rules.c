/* test_api_rules.c -- the rules of the public API that hold across objects
 * (docs/API.md):
 *  - option key families: every key of every family (model, soft-mask,
 *    sampler, trainer, model property, server), walked over the families' ranges,
 *    is refused by every other family's setters, getters and info calls
 *    with SMDIFF_E_INVAL and a message naming both families; keys outside
 *    every family (0..99) are refused everywhere; a lookup by name never
 *    yields another family's key;
 *  - the error-message rule: a failing call leaves its own message in the
 *    thread's slot and, for a sampler, schedule, trainer or server, on the
 *    object too, so after a failure A and a different failure B both places
 *    name B; a model's failures are read from the thread's slot. */
#include <math.h>
#include <string.h>

#include "smdiff/smdiff.h"
#include "testutil.h"

/* One family: its range, what messages call it, and its functions (NULL
 * where the family has no such call). The objects are created in setup. */
typedef struct family {
    const char *phrase;
    int32_t first, last;
    int32_t (*set_int)(void *obj, int32_t key, int64_t v);
    int32_t (*set_double)(void *obj, int32_t key, double v);
    int32_t (*get_int)(const void *obj, int32_t key, int64_t *out);
    int32_t (*get_double)(const void *obj, int32_t key, double *out);
    int32_t (*info)(int32_t key, const char **name, int32_t *type, double *min, double *max, double *def);
    int32_t (*lookup)(const char *name, int32_t *key);
    void *obj;
    const char *(*obj_error)(const void *obj); /* the object's own slot, or NULL */
} family;

/* Adapters from the typed public functions to the table's shapes. */
#define ADAPT(fn, ...) static int32_t a_##fn(__VA_ARGS__)
ADAPT(model_set_int, void *o, int32_t k, int64_t v) { return smdiff_model_set_int(o, k, v); }
ADAPT(model_get_int, const void *o, int32_t k, int64_t *v) { return smdiff_model_get_int(o, k, v); }
ADAPT(model_property, const void *o, int32_t k, int64_t *v) { return smdiff_model_property(o, k, v); }
ADAPT(sm_set_int, void *o, int32_t k, int64_t v) { return smdiff_softmask_set_int(o, k, v); }
ADAPT(sm_set_double, void *o, int32_t k, double v) { return smdiff_softmask_set_double(o, k, v); }
ADAPT(sm_get_int, const void *o, int32_t k, int64_t *v) { return smdiff_softmask_get_int(o, k, v); }
ADAPT(sm_get_double, const void *o, int32_t k, double *v) { return smdiff_softmask_get_double(o, k, v); }
ADAPT(s_set_int, void *o, int32_t k, int64_t v) { return smdiff_sampler_set_int(o, k, v); }
ADAPT(s_set_double, void *o, int32_t k, double v) { return smdiff_sampler_set_double(o, k, v); }
ADAPT(s_get_int, const void *o, int32_t k, int64_t *v) { return smdiff_sampler_get_int(o, k, v); }
ADAPT(s_get_double, const void *o, int32_t k, double *v) { return smdiff_sampler_get_double(o, k, v); }
ADAPT(t_set_int, void *o, int32_t k, int64_t v) { return smdiff_trainer_set_int(o, k, v); }
ADAPT(t_set_double, void *o, int32_t k, double v) { return smdiff_trainer_set_double(o, k, v); }
ADAPT(t_get_int, const void *o, int32_t k, int64_t *v) { return smdiff_trainer_get_int(o, k, v); }
ADAPT(t_get_double, const void *o, int32_t k, double *v) { return smdiff_trainer_get_double(o, k, v); }
static const char *e_sm(const void *o) { return smdiff_softmask_last_error(o); }
static const char *e_s(const void *o) { return smdiff_sampler_last_error(o); }
ADAPT(srv_set_int, void *o, int32_t k, int64_t v) { return smdiff_server_set_int(o, k, v); }
ADAPT(srv_set_double, void *o, int32_t k, double v) { return smdiff_server_set_double(o, k, v); }
ADAPT(srv_get_int, const void *o, int32_t k, int64_t *v) { return smdiff_server_get_int(o, k, v); }
ADAPT(srv_get_double, const void *o, int32_t k, double *v) { return smdiff_server_get_double(o, k, v); }
static const char *e_t(const void *o) { return smdiff_trainer_last_error(o); }
static const char *e_srv(const void *o) { return smdiff_server_last_error(o); }

enum { N_FAMILIES = 6 };
static family fam[N_FAMILIES];

static int setup(void **state) {
    (void)state;
    smdiff_model *m = NULL;
    smdiff_softmask *sm = NULL;
    smdiff_sampler *s = NULL;
    smdiff_trainer *t = NULL;
    smdiff_model *loaded = NULL; /* a server is made from a loaded model */
    smdiff_server *srv = NULL;
    if (smdiff_model_create(&m) || smdiff_softmask_create(&sm) || smdiff_sampler_create(&s) ||
        smdiff_trainer_create(&t) || smdiff_model_create(&loaded) ||
        smdiff_model_load_file(loaded, test_data_path("tiny_llada_f32.gguf")) || smdiff_server_create(loaded, &srv))
        return -1;
    smdiff_model_free(loaded); /* the server holds its own reference */
    family f[N_FAMILIES] = {
        {"model option", SMDIFF_MODEL_OPT_FIRST_, SMDIFF_MODEL_OPT_LAST_, a_model_set_int, NULL, a_model_get_int,
         NULL, smdiff_model_option_info, smdiff_model_option_key, m, NULL},
        {"soft-mask option", SMDIFF_SM_OPT_FIRST_, SMDIFF_SM_OPT_LAST_, a_sm_set_int, a_sm_set_double, a_sm_get_int,
         a_sm_get_double, smdiff_softmask_option_info, smdiff_softmask_option_key, sm, e_sm},
        {"sampler option", SMDIFF_SAMPLER_OPT_FIRST_, SMDIFF_SAMPLER_OPT_LAST_, a_s_set_int, a_s_set_double,
         a_s_get_int, a_s_get_double, smdiff_sampler_option_info, smdiff_sampler_option_key, s, e_s},
        {"trainer option", SMDIFF_TRAIN_OPT_FIRST_, SMDIFF_TRAIN_OPT_LAST_, a_t_set_int, a_t_set_double,
         a_t_get_int, a_t_get_double, smdiff_trainer_option_info, smdiff_trainer_option_key, t, e_t},
        {"model property", SMDIFF_PROP_OPT_FIRST_, SMDIFF_PROP_OPT_LAST_, NULL, NULL, a_model_property, NULL, NULL,
         NULL, m, NULL},
        {"server option", SMDIFF_SERVER_OPT_FIRST_, SMDIFF_SERVER_OPT_LAST_, a_srv_set_int, a_srv_set_double,
         a_srv_get_int, a_srv_get_double, smdiff_server_option_info, smdiff_server_option_key, srv, e_srv},
    };
    memcpy(fam, f, sizeof fam);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    smdiff_model_free(fam[0].obj);
    smdiff_softmask_free(fam[1].obj);
    smdiff_sampler_free(fam[2].obj);
    smdiff_trainer_free(fam[3].obj);
    smdiff_server_free(fam[5].obj);
    return 0;
}

/* The failure just made: INVAL, its message names both phrases (want may be
 * NULL for a key of no family), in the thread's slot and, for a call on an
 * object (on_obj), on the object. */
static void expect_refusal(int32_t rc, const family *g, int32_t key, const char *got_phrase, int on_obj) {
    const char *msg = smdiff_last_error();
    if (rc != SMDIFF_E_INVAL || !strstr(msg, g->phrase) || (got_phrase && !strstr(msg, got_phrase)))
        fail_msg("key %d given to a %s: status %d, message \"%s\"", (int)key, g->phrase, (int)rc, msg);
    if (on_obj && g->obj_error) assert_string_equal(g->obj_error(g->obj), msg);
}

/* Leave a message of another failure in the thread's slot and on g's
 * object, so a refusal that records nothing is seen. */
static const family *plant(const family *g) {
    int32_t rc = g->get_int(g->obj, g->first, NULL);
    assert_true(rc < 0 && !strstr(smdiff_last_error(), g->phrase));
    return g;
}

/* Every call of family g with key, which is not g's. */
static void refuse_everywhere(const family *g, int32_t key, const char *got_phrase) {
    int64_t i = 7;
    double d = 7;
    if (g->set_int) expect_refusal(g->set_int(plant(g)->obj, key, 1), g, key, got_phrase, 1);
    if (g->set_double) expect_refusal(g->set_double(plant(g)->obj, key, 0.5), g, key, got_phrase, 1);
    if (g->get_int) expect_refusal(g->get_int(plant(g)->obj, key, &i), g, key, got_phrase, 1);
    if (g->get_double) expect_refusal(g->get_double(plant(g)->obj, key, &d), g, key, got_phrase, 1);
    if (g->info) expect_refusal(plant(g)->info(key, NULL, NULL, NULL, NULL, NULL), g, key, got_phrase, 0);
    assert_true(i == 7 && d == 7); /* outputs untouched */
}

static void test_families_disjoint(void **state) {
    (void)state;
    for (int a = 0; a < N_FAMILIES; a++) {
        assert_true(fam[a].first % 100 == 0 && fam[a].last >= fam[a].first && fam[a].last < fam[a].first + 100);
        for (int b = 0; b < N_FAMILIES; b++)
            if (fam[a].first == fam[b].first) assert_int_equal(a, b);
    }
    long calls = 0;
    for (int a = 0; a < N_FAMILIES; a++)
        for (int32_t key = fam[a].first; key <= fam[a].last; key++)
            for (int b = 0; b < N_FAMILIES; b++) {
                if (b == a) continue;
                refuse_everywhere(&fam[b], key, fam[a].phrase);
                calls++;
            }
    /* keys of no family, and just past each family's last key */
    const int32_t none[] = {0, 1, 2, 99, -1, 900, 100000};
    for (size_t k = 0; k < sizeof none / sizeof none[0]; k++)
        for (int b = 0; b < N_FAMILIES; b++) refuse_everywhere(&fam[b], none[k], NULL);
    for (int b = 0; b < N_FAMILIES; b++) refuse_everywhere(&fam[b], fam[b].last + 1, "unknown");
    print_message("%ld (key, other family) pairs refused by every setter, getter and info call\n", calls);
}

/* Names are looked up in their own family only: any name of any family
 * given to another family's lookup is not found there or names a key of
 * that family (some names, such as "threads", exist in several). */
static void test_lookup_stays_in_family(void **state) {
    (void)state;
    for (int a = 0; a < N_FAMILIES; a++) {
        if (!fam[a].info) continue;
        for (int32_t key = fam[a].first; key <= fam[a].last; key++) {
            const char *name = NULL;
            assert_int_equal(fam[a].info(key, &name, NULL, NULL, NULL, NULL), SMDIFF_OK);
            for (int b = 0; b < N_FAMILIES; b++) {
                if (!fam[b].lookup) continue;
                int32_t back = -1;
                int32_t rc = fam[b].lookup(name, &back);
                if (rc == SMDIFF_OK)
                    assert_true(back >= fam[b].first && back <= fam[b].last);
                else
                    assert_int_equal(rc, SMDIFF_E_NOT_FOUND);
            }
        }
    }
}

/* ------------------------------------------------------- error messages */

/* The newest message contains `want` and not `stale`, in the thread's slot
 * and (when obj_msg is given) on the object. */
static void expect_message(const char *obj_msg, const char *want, const char *stale) {
    const char *msg = smdiff_last_error();
    if (!strstr(msg, want) || strstr(msg, stale))
        fail_msg("thread slot \"%s\": want \"%s\", not \"%s\"", msg, want, stale);
    if (obj_msg) assert_string_equal(obj_msg, msg);
}

static void test_model_messages(void **state) {
    (void)state;
    smdiff_model *m = fam[0].obj;
    int64_t v = 0;
    assert_int_equal(smdiff_model_set_int(m, SMDIFF_MODEL_THREADS, -1), SMDIFF_E_RANGE);
    expect_message(NULL, "threads", "not loaded");
    assert_int_equal(smdiff_model_property(m, SMDIFF_PROP_VOCAB_SIZE, &v), SMDIFF_E_STATE);
    expect_message(NULL, "not loaded", "threads");
    assert_int_equal(smdiff_model_load_file(m, "no/such/model.gguf"), SMDIFF_E_IO);
    expect_message(NULL, "no/such/model.gguf", "not loaded");
    assert_int_equal(smdiff_model_get_int(m, SMDIFF_SAMPLER_STEPS, &v), SMDIFF_E_INVAL);
    expect_message(NULL, "sampler option", "no/such/model.gguf");
    /* a successful call does not clear the slot */
    assert_int_equal(smdiff_model_get_int(m, SMDIFF_MODEL_THREADS, &v), SMDIFF_OK);
    expect_message(NULL, "sampler option", "no/such/model.gguf");
}

static void test_softmask_messages(void **state) {
    (void)state;
    smdiff_softmask *sm = fam[1].obj;
    float p[2] = {0.5f, 0.5f};
    double d = 0;
    assert_int_equal(smdiff_softmask_set_double(sm, SMDIFF_SM_SCALE, 2.0), SMDIFF_E_RANGE);
    expect_message(smdiff_softmask_last_error(sm), "scale", "window");
    assert_int_equal(smdiff_softmask_set_double(sm, SMDIFF_SM_WINDOW_START, 0.5), SMDIFF_OK);
    assert_int_equal(smdiff_softmask_set_double(sm, SMDIFF_SM_WINDOW_END, 0.25), SMDIFF_E_RANGE);
    expect_message(smdiff_softmask_last_error(sm), "window", "scale");
    assert_int_equal(smdiff_softmask_get_double(sm, SMDIFF_SM_MODE, &d), SMDIFF_E_INVAL);
    expect_message(smdiff_softmask_last_error(sm), "mode", "window");
    assert_int_equal(smdiff_softmask_lambda(sm, p, 2, 3, 2, &d), SMDIFF_E_INVAL);
    expect_message(smdiff_softmask_last_error(sm), "step 3", "mode");
    /* a row that is not a probability distribution is refused, not read as one */
    float bad[3][2] = {{NAN, 0.5f}, {0.5f, INFINITY}, {-0.25f, 1.0f}};
    for (int i = 0; i < 3; i++) {
        d = -7;
        assert_int_equal(smdiff_softmask_lambda(sm, bad[i], 2, 1, 2, &d), SMDIFF_E_NUMERIC);
        expect_message(smdiff_softmask_last_error(sm), "not a probability", "step 3");
        assert_true(d == -7);
    }
    assert_int_equal(smdiff_softmask_lambda(sm, p, 2, 3, 2, &d), SMDIFF_E_INVAL);
    assert_int_equal(smdiff_softmask_get_double(sm, SMDIFF_SM_SCALE, NULL), SMDIFF_E_INVAL);
    expect_message(smdiff_softmask_last_error(sm), "NULL", "step 3");
    smdiff_softmask *copy = NULL;
    assert_int_equal(smdiff_softmask_clone(sm, NULL), SMDIFF_E_INVAL);
    expect_message(smdiff_softmask_last_error(sm), "clone", "get_double");
    /* a failure on another object leaves this one's message alone */
    assert_int_equal(smdiff_softmask_create(&copy), SMDIFF_OK);
    assert_int_equal(smdiff_softmask_set_int(copy, SMDIFF_SM_TOPK, 0), SMDIFF_E_RANGE);
    assert_non_null(strstr(smdiff_softmask_last_error(sm), "clone"));
    smdiff_softmask_free(copy);
}

static void test_sampler_messages(void **state) {
    (void)state;
    smdiff_sampler *s = fam[2].obj;
    smdiff_model *m = fam[0].obj;
    int32_t prompt[1] = {0}, out[4];
    size_t n = 0;
    assert_int_equal(smdiff_sampler_set_int(s, SMDIFF_SAMPLER_STEPS, 0), SMDIFF_E_RANGE);
    expect_message(smdiff_sampler_last_error(s), "steps", "no_such");
    assert_int_equal(smdiff_sampler_set_strategy(s, "no_such_strategy"), SMDIFF_E_NOT_FOUND);
    expect_message(smdiff_sampler_last_error(s), "no_such_strategy", "steps");
    assert_int_equal(smdiff_sampler_set_softmask(s, NULL), SMDIFF_E_INVAL);
    expect_message(smdiff_sampler_last_error(s), "set_softmask", "no_such_strategy");
    assert_int_equal(smdiff_generate_tokens(s, m, prompt, 1, out, 4, &n), SMDIFF_E_STATE);
    expect_message(smdiff_sampler_last_error(s), "not loaded", "set_softmask");
    assert_int_equal(smdiff_sampler_get_int(s, SMDIFF_SM_TOPK, NULL), SMDIFF_E_INVAL);
    expect_message(smdiff_sampler_last_error(s), "get_int", "not loaded");
    int64_t v = 0;
    assert_int_equal(smdiff_sampler_get_int(s, SMDIFF_SAMPLER_STEPS, &v), SMDIFF_OK);
    expect_message(smdiff_sampler_last_error(s), "get_int", "not loaded");
    /* a strategy found leaves both slots as they were (a success clears nothing) */
    assert_int_equal(smdiff_sampler_set_strategy(s, "no_such_strategy"), SMDIFF_E_NOT_FOUND);
    assert_int_equal(smdiff_sampler_set_strategy(s, "low_confidence"), SMDIFF_OK);
    expect_message(smdiff_sampler_last_error(s), "no_such_strategy", "get_int");
    expect_message(smdiff_last_error(), "no_such_strategy", "get_int");
    assert_int_equal(smdiff_sampler_get_int(s, SMDIFF_SAMPLER_STEPS, NULL), SMDIFF_E_INVAL);
    assert_int_equal(smdiff_sampler_set_strategy(s, "low_confidence"), SMDIFF_OK);
    expect_message(smdiff_last_error(), "get_int", "no_such_strategy");
}

static void test_trainer_messages(void **state) {
    (void)state;
    smdiff_trainer *t = fam[3].obj;
    assert_int_equal(smdiff_trainer_set_int(t, SMDIFF_TRAIN_BATCH, 0), SMDIFF_E_RANGE);
    expect_message(smdiff_trainer_last_error(t), "batch", "no model");
    assert_int_equal(smdiff_trainer_step(t, NULL), SMDIFF_E_STATE);
    expect_message(smdiff_trainer_last_error(t), "no model", "batch");
    assert_int_equal(smdiff_trainer_init_new(t, "gpt"), SMDIFF_E_INVAL);
    expect_message(smdiff_trainer_last_error(t), "unknown architecture", "no model");
    assert_int_equal(smdiff_trainer_init_from_file(t, "no/such/start.gguf"), SMDIFF_E_IO);
    expect_message(smdiff_trainer_last_error(t), "no/such/start.gguf", "architecture");
    int64_t steps = 0;
    assert_int_equal(smdiff_trainer_steps(t, NULL), SMDIFF_E_INVAL);
    expect_message(smdiff_trainer_last_error(t), "smdiff_trainer_steps", "start.gguf");
    assert_int_equal(smdiff_trainer_steps(t, &steps), SMDIFF_OK);
    expect_message(smdiff_trainer_last_error(t), "smdiff_trainer_steps", "start.gguf");
}

static void test_server_messages(void **state) {
    (void)state;
    smdiff_server *srv = fam[5].obj;
    int32_t port = 0;
    double d = 0;
    assert_int_equal(smdiff_server_set_int(srv, SMDIFF_SERVER_SLOTS, 0), SMDIFF_E_RANGE);
    expect_message(smdiff_server_last_error(srv), "slots", "port");
    assert_int_equal(smdiff_server_port(srv, &port), SMDIFF_E_STATE);
    expect_message(smdiff_server_last_error(srv), "not listening", "slots");
    assert_int_equal(smdiff_server_set_host(srv, ""), SMDIFF_E_INVAL);
    expect_message(smdiff_server_last_error(srv), "set_host", "not listening");
    assert_int_equal(smdiff_server_get_double(srv, SMDIFF_SERVER_SLOTS, &d), SMDIFF_E_INVAL);
    expect_message(smdiff_server_last_error(srv), "slots", "set_host");
    assert_int_equal(smdiff_server_run(srv), SMDIFF_E_STATE);
    expect_message(smdiff_server_last_error(srv), "smdiff_server_listen first", "slots");
    assert_int_equal(smdiff_server_get_int(srv, SMDIFF_SERVER_PORT, NULL), SMDIFF_E_INVAL);
    expect_message(smdiff_server_last_error(srv), "get_int", "listen first");
    /* a call on no server has only the thread's slot */
    assert_int_equal(smdiff_server_listen(NULL), SMDIFF_E_INVAL);
    expect_message(NULL, "server is NULL", "get_int");
    assert_non_null(strstr(smdiff_server_last_error(srv), "get_int"));
    /* a successful call clears neither place */
    int64_t v = 0;
    assert_int_equal(smdiff_server_get_int(srv, SMDIFF_SERVER_PORT, &v), SMDIFF_OK);
    expect_message(NULL, "server is NULL", "get_int");
    assert_non_null(strstr(smdiff_server_last_error(srv), "get_int"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_families_disjoint),
        cmocka_unit_test(test_lookup_stays_in_family),
        cmocka_unit_test(test_model_messages),
        cmocka_unit_test(test_softmask_messages),
        cmocka_unit_test(test_sampler_messages),
        cmocka_unit_test(test_trainer_messages),
        cmocka_unit_test(test_server_messages),
    };
    return cmocka_run_group_tests_name("api rules", tests, setup, teardown);
}
