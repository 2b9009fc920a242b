/*
 * test_order.c - order validation, one test per rule, and the message and
 * error shapes shared by the API and the worker.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc_fail.h"
#include "order.h"
#include "util.h"

static struct order_request req;
static struct order_errors errs;

#define VALID_ITEM "{\"product_id\":\"p-1\",\"quantity\":2,\"unit_price_cents\":1500}"

static int parse(const char *body)
{
    return order_parse(body, strlen(body), &req, &errs);
}

/* Asserts the body is refused with this status and a detail naming field. */
static void refused(const char *body, int status, const char *field)
{
    assert_int_equal(parse(body), -1);
    assert_int_equal(errs.status, status);
    for (size_t i = 0; i < errs.n; i++)
        if (strcmp(errs.details[i].field, field) == 0)
            return;
    fail_msg("no error for field %s in %zu details (first: %s: %s)", field, errs.n,
             errs.n ? errs.details[0].field : "-", errs.n ? errs.details[0].message : "-");
}

static char *order_with(const char *customer, const char *currency, const char *items)
{
    static char b[80000];
    snprintf(b, sizeof(b), "{\"customer_id\":%s,\"currency\":%s,\"items\":%s}", customer, currency,
             items);
    return b;
}

static void test_valid_order(void **s)
{
    (void)s;
    assert_int_equal(parse("{\"customer_id\":\"c-123\",\"currency\":\"BRL\",\"items\":[" VALID_ITEM
                           ",{\"product_id\":\"p-2\",\"quantity\":1,"
                           "\"unit_price_cents\":0}]}"),
                     0);
    assert_string_equal(req.customer_id, "c-123");
    assert_string_equal(req.currency, "BRL");
    assert_int_equal(req.n_items, 2);
    assert_int_equal(req.items[0].quantity, 2);
    assert_int_equal(req.total_cents, 3000);
    assert_int_equal(strlen(req.hash), 0); /* only computed on demand */
    assert_int_equal(order_request_hash(&req), 0);
    assert_int_equal(strlen(req.hash), 64);
}

static void test_customer_required(void **s)
{
    (void)s;
    refused("{\"currency\":\"BRL\",\"items\":[" VALID_ITEM "]}", 422, "customer_id");
}

static void test_customer_must_be_string(void **s)
{
    (void)s;
    refused(order_with("12", "\"BRL\"", "[" VALID_ITEM "]"), 422, "customer_id");
}

static void test_customer_not_empty(void **s)
{
    (void)s;
    refused(order_with("\"\"", "\"BRL\"", "[" VALID_ITEM "]"), 422, "customer_id");
}

static void test_customer_at_most_128_bytes(void **s)
{
    (void)s;
    char c[200];
    memset(c, 0, sizeof(c));
    c[0] = '"';
    memset(c + 1, 'a', 128);
    c[129] = '"';
    assert_int_equal(parse(order_with(c, "\"BRL\"", "[" VALID_ITEM "]")), 0);
    c[129] = 'a';
    c[130] = '"';
    refused(order_with(c, "\"BRL\"", "[" VALID_ITEM "]"), 422, "customer_id");
}

static void test_currency_three_upper_letters(void **s)
{
    (void)s;
    refused(order_with("\"c\"", "\"brl\"", "[" VALID_ITEM "]"), 422, "currency");
    refused(order_with("\"c\"", "\"BR\"", "[" VALID_ITEM "]"), 422, "currency");
    refused(order_with("\"c\"", "\"BRL1\"", "[" VALID_ITEM "]"), 422, "currency");
    refused(order_with("\"c\"", "978", "[" VALID_ITEM "]"), 422, "currency");
    refused("{\"customer_id\":\"c\",\"items\":[" VALID_ITEM "]}", 422, "currency");
}

static void test_items_required_array(void **s)
{
    (void)s;
    refused("{\"customer_id\":\"c\",\"currency\":\"BRL\"}", 422, "items");
    refused(order_with("\"c\"", "\"BRL\"", "{}"), 422, "items");
}

static void test_items_between_1_and_100(void **s)
{
    (void)s;
    static char items[60000];
    refused(order_with("\"c\"", "\"BRL\"", "[]"), 422, "items");
    strcpy(items, "[");
    for (int i = 0; i < 100; i++)
        strcat(strcat(items, i ? "," : ""), VALID_ITEM);
    strcat(items, "]");
    assert_int_equal(parse(order_with("\"c\"", "\"BRL\"", items)), 0);
    assert_int_equal(req.n_items, 100);
    items[strlen(items) - 1] = '\0';
    strcat(items, "," VALID_ITEM "]");
    refused(order_with("\"c\"", "\"BRL\"", items), 422, "items");
}

static void test_item_must_be_object(void **s)
{
    (void)s;
    refused(order_with("\"c\"", "\"BRL\"", "[1]"), 422, "items[0]");
}

static void test_product_id_rules(void **s)
{
    (void)s;
    refused(order_with("\"c\"", "\"BRL\"", "[{\"quantity\":1,\"unit_price_cents\":1}]"), 422,
            "items[0].product_id");
    refused(order_with("\"c\"", "\"BRL\"",
                       "[{\"product_id\":\"\",\"quantity\":1,\"unit_price_cents\":1}]"),
            422, "items[0].product_id");
    refused(order_with("\"c\"", "\"BRL\"",
                       "[{\"product_id\":7,\"quantity\":1,\"unit_price_cents\":1}]"),
            422, "items[0].product_id");
}

static void test_quantity_between_1_and_10000(void **s)
{
    (void)s;
    const char *bad[] = {"0", "10001", "-1", "1.0", "\"2\"", "null", "1e2"};
    char items[200];
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(items, sizeof(items),
                 "[" VALID_ITEM ",{\"product_id\":\"p\",\"quantity\":%s,\"unit_price_cents\":1}]",
                 bad[i]);
        refused(order_with("\"c\"", "\"BRL\"", items), 422, "items[1].quantity");
    }
    assert_int_equal(
        parse(order_with("\"c\"", "\"BRL\"",
                         "[{\"product_id\":\"p\",\"quantity\":10000,\"unit_price_cents\":1}]")),
        0);
    assert_int_equal(req.total_cents, 10000);
}

static void test_unit_price_non_negative_integer(void **s)
{
    (void)s;
    refused(order_with("\"c\"", "\"BRL\"",
                       "[{\"product_id\":\"p\",\"quantity\":1,\"unit_price_cents\":-1}]"),
            422, "items[0].unit_price_cents");
    refused(order_with("\"c\"", "\"BRL\"",
                       "[{\"product_id\":\"p\",\"quantity\":1,\"unit_price_cents\":9.99}]"),
            422, "items[0].unit_price_cents");
    refused(order_with("\"c\"", "\"BRL\"", "[{\"product_id\":\"p\",\"quantity\":1}]"), 422,
            "items[0].unit_price_cents");
}

static void test_total_within_int64(void **s)
{
    (void)s;
    refused(order_with("\"c\"", "\"BRL\"",
                       "[{\"product_id\":\"p\",\"quantity\":2,"
                       "\"unit_price_cents\":9223372036854775807}]"),
            422, "items[0]");
    refused(order_with("\"c\"", "\"BRL\"",
                       "[{\"product_id\":\"p\",\"quantity\":1,"
                       "\"unit_price_cents\":9223372036854775807},"
                       "{\"product_id\":\"q\",\"quantity\":1,\"unit_price_cents\":1}]"),
            422, "items[1]");
    assert_int_equal(parse(order_with("\"c\"", "\"BRL\"",
                                      "[{\"product_id\":\"p\",\"quantity\":1,"
                                      "\"unit_price_cents\":9223372036854775807}]")),
                     0);
    assert_true(req.total_cents == INT64_MAX);
}

static void test_unknown_fields_refused(void **s)
{
    (void)s;
    refused("{\"customer_id\":\"c\",\"currency\":\"BRL\",\"items\":[" VALID_ITEM
            "],\"total_cents\":1}",
            422, "total_cents");
    refused(order_with("\"c\"", "\"BRL\"",
                       "[{\"product_id\":\"p\",\"quantity\":1,\"unit_price_cents\":1,"
                       "\"discount\":5}]"),
            422, "items[0].discount");
}

static void test_invalid_json_is_400(void **s)
{
    (void)s;
    refused("{\"customer_id\":", 400, "body");
    refused("", 400, "body");
    refused("[1,2]", 400, "body");
    refused("\"just a string\"", 400, "body");
}

static void test_invalid_utf8_is_400(void **s)
{
    (void)s;
    refused("{\"customer_id\":\"c\xff\",\"currency\":\"BRL\",\"items\":[" VALID_ITEM "]}", 400,
            "body");
}

static void test_duplicate_keys_are_400(void **s)
{
    (void)s;
    refused(
        "{\"customer_id\":\"a\",\"customer_id\":\"b\",\"currency\":\"BRL\",\"items\":[" VALID_ITEM
        "]}",
        400, "body");
}

static void test_integer_overflow_is_400(void **s)
{
    (void)s;
    refused(order_with("\"c\"", "\"BRL\"",
                       "[{\"product_id\":\"p\",\"quantity\":1,"
                       "\"unit_price_cents\":92233720368547758080}]"),
            400, "body");
}

static void test_deep_nesting_refused(void **s)
{
    (void)s;
    static char b[20000];
    char *p = b + sprintf(b, "{\"customer_id\":");
    for (int i = 0; i < 5000; i++)
        *p++ = '[';
    for (int i = 0; i < 5000; i++)
        *p++ = ']';
    strcpy(p, ",\"currency\":\"BRL\",\"items\":[" VALID_ITEM "]}");
    assert_int_equal(parse(b), -1);
    assert_true(errs.status == 400 || errs.status == 422);
}

static void test_body_over_64k_is_413(void **s)
{
    (void)s;
    size_t n = ORDER_MAX_BODY_BYTES + 1;
    char *b = malloc(n);
    memset(b, ' ', n);
    assert_int_equal(order_parse(b, n, &req, &errs), -1);
    assert_int_equal(errs.status, 413);
    free(b);
}

static void test_all_errors_reported_at_once(void **s)
{
    (void)s;
    assert_int_equal(parse("{\"customer_id\":\"\",\"currency\":\"x\",\"items\":[]}"), -1);
    assert_int_equal(errs.n, 3);
}

static void test_hash_ignores_key_order_and_whitespace(void **s)
{
    (void)s;
    char h1[65], h2[65];
    assert_int_equal(
        parse("{\"customer_id\":\"c\",\"currency\":\"BRL\",\"items\":[" VALID_ITEM "]}"), 0);
    assert_int_equal(order_request_hash(&req), 0);
    strcpy(h1, req.hash);
    assert_int_equal(parse("{ \"items\": [ {\"unit_price_cents\": 1500, \"quantity\": 2,"
                           " \"product_id\": \"p-1\"} ], \"currency\": \"BRL\","
                           " \"customer_id\": \"c\" }"),
                     0);
    assert_int_equal(order_request_hash(&req), 0);
    strcpy(h2, req.hash);
    assert_string_equal(h1, h2);
    assert_int_equal(
        parse("{\"customer_id\":\"d\",\"currency\":\"BRL\",\"items\":[" VALID_ITEM "]}"), 0);
    assert_int_equal(order_request_hash(&req), 0);
    assert_string_not_equal(h1, req.hash);
}

static void test_correlation_id_rules(void **s)
{
    (void)s;
    char long_id[200];
    assert_true(order_correlation_id_valid("abc-123_X.y"));
    assert_false(order_correlation_id_valid(""));
    assert_false(order_correlation_id_valid(NULL));
    assert_false(order_correlation_id_valid("has space"));
    assert_false(order_correlation_id_valid("semi;colon"));
    assert_false(order_correlation_id_valid("caf\xc3\xa9"));
    memset(long_id, 'a', 128);
    long_id[128] = '\0';
    assert_true(order_correlation_id_valid(long_id));
    long_id[128] = 'a';
    long_id[129] = '\0';
    assert_false(order_correlation_id_valid(long_id));
}

static void test_message_body_round_trip(void **s)
{
    (void)s;
    char id[UUID_STR_LEN], err[128];
    char *b = order_message_body("3f0e8a6c-1d2b-4c5d-8e9f-0a1b2c3d4e5f");
    assert_string_equal(b, "{\"type\":\"order.created\",\"version\":1,\"order_id\":"
                           "\"3f0e8a6c-1d2b-4c5d-8e9f-0a1b2c3d4e5f\"}");
    assert_int_equal(order_message_parse(b, strlen(b), id, err, sizeof(err)), 0);
    assert_string_equal(id, "3f0e8a6c-1d2b-4c5d-8e9f-0a1b2c3d4e5f");
    free(b);
}

/* The worker uses the message's order id as the payment Idempotency-Key and
 * as the simulated provider's seed: a message spelling the id in upper case
 * (hand-sent, redriven by a tool) must name the order exactly as the API's
 * own lower-case messages do, or one order gets two keys and two charges. */
static void test_message_order_id_canonical(void **s)
{
    (void)s;
    char id[UUID_STR_LEN], err[128];
    const char *body = "{\"type\":\"order.created\",\"version\":1,\"order_id\":"
                       "\"3F0E8A6C-1D2B-4C5D-8E9F-0A1B2C3D4E5F\"}";
    assert_int_equal(order_message_parse(body, strlen(body), id, err, sizeof(err)), 0);
    assert_string_equal(id, "3f0e8a6c-1d2b-4c5d-8e9f-0a1b2c3d4e5f");
}

static void test_message_poison_cases(void **s)
{
    (void)s;
    char id[UUID_STR_LEN], err[128];
    const char *bad[] = {
        "not json",
        "[]",
        "{\"type\":\"order.deleted\",\"version\":1,\"order_id\":"
        "\"3f0e8a6c-1d2b-4c5d-8e9f-0a1b2c3d4e5f\"}",
        "{\"type\":\"order.created\",\"version\":2,\"order_id\":"
        "\"3f0e8a6c-1d2b-4c5d-8e9f-0a1b2c3d4e5f\"}",
        "{\"type\":\"order.created\",\"version\":1,\"order_id\":\"nope\"}",
        "{\"type\":\"order.created\",\"version\":1}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        assert_int_equal(order_message_parse(bad[i], strlen(bad[i]), id, err, sizeof(err)), -1);
        assert_true(strlen(err) > 0);
    }
}

/* An error detail quotes the request (an unknown key, a query parameter's
 * name) cut to the field's size in bytes, or its raw bytes: the envelope must
 * still render, as valid UTF-8, instead of failing (a 500 for a client's own
 * mistake). */
static void test_error_envelope_survives_cut_and_invalid_utf8(void **s)
{
    (void)s;
    struct field_error d[2];
    char key[200] = "x";
    for (int i = 0; i < 30; i++)
        strcat(key, "\xe2\x82\xac"); /* U+20AC, cut inside one by the 64-byte field */
    util_strlcpy(d[0].field, key, sizeof(d[0].field));
    util_strlcpy(d[0].message, "is not a field of the order", sizeof(d[0].message));
    util_strlcpy(d[1].field,
                 "a\xc3"
                 "(b\xed\xa0\x80"
                 "c",
                 sizeof(d[1].field)); /* bad, surrogate */
    util_strlcpy(d[1].message, "near '\xff'", sizeof(d[1].message));
    json_t *e = order_error_json("invalid_parameter", "unknown query parameter", d, 2);
    assert_non_null(e);
    json_t *det = json_object_get(json_object_get(e, "error"), "details");
    assert_int_equal(json_array_size(det), 2);
    const char *f0 = json_string_value(json_object_get(json_array_get(det, 0), "field"));
    assert_int_equal(strncmp(f0, key, 61), 0); /* every whole character kept */
    assert_string_equal(json_string_value(json_object_get(json_array_get(det, 1), "field")),
                        "a?(b???c");
    assert_string_equal(json_string_value(json_object_get(json_array_get(det, 1), "message")),
                        "near '?'");
    json_decref(e);
}

static void test_error_envelope_shape(void **s)
{
    (void)s;
    struct field_error d = {"items[0].quantity", "must be between 1 and 10000"};
    json_t *e = order_error_json("validation_failed", "the order is not valid", &d, 1);
    json_t *err = json_object_get(e, "error");
    assert_string_equal(json_string_value(json_object_get(err, "code")), "validation_failed");
    json_t *det = json_array_get(json_object_get(err, "details"), 0);
    assert_string_equal(json_string_value(json_object_get(det, "field")), "items[0].quantity");
    json_decref(e);
}

/* ---- allocation failure --------------------------------------------------- */

#define TWO_ITEMS                                                                                  \
    "{\"customer_id\":\"c-1\",\"currency\":\"EUR\",\"items\":[" VALID_ITEM                         \
    ",{\"product_id\":\"p-2\",\"quantity\":1,\"unit_price_cents\":99}]}"

/* The path of one POST: validate, hash for Idempotency-Key, render the items
 * as stored and the order as answered. jansson's parser is not counted (it
 * does not survive a failed allocation, see alloc_fail.h); everything after
 * it is, jansson's builders included. Each step must either succeed with the
 * whole result or report failure: never an order missing an item. */
static int walk_request_path(void *arg)
{
    (void)arg;
    struct order_request r;
    struct order_errors e;
    int rc = ALLOC_FAIL_WRONG;
    json_t *items = NULL, *o = NULL;
    char *dumped = NULL;

    alloc_fail_jansson(false);
    int parsed = order_parse_for(TWO_ITEMS, strlen(TWO_ITEMS), NULL, &r, &e);
    alloc_fail_jansson(true);
    if (parsed != 0)
        return ALLOC_FAIL_WRONG; /* the validator itself allocates nothing that may fail */
    if (order_request_hash(&r) != 0)
        return ALLOC_FAIL_ERROR;
    if (strlen(r.hash) != 64)
        return ALLOC_FAIL_WRONG;
    if (!(items = order_items_json(&r)))
        return ALLOC_FAIL_ERROR;
    if (json_array_size(items) != 2)
        goto done;
    struct order_view v = {.id = "0b5e3c4e-1f2a-4b7c-9d8e-0a1b2c3d4e5f",
                           .status = "PENDING",
                           .customer_id = r.customer_id,
                           .currency = r.currency,
                           .items = items,
                           .total_cents = r.total_cents,
                           .correlation_id = "corr-1",
                           .created_at = "2026-12-01T00:00:00Z",
                           .updated_at = "2026-12-01T00:00:00Z"};
    if (!(o = order_json(&v))) {
        rc = ALLOC_FAIL_ERROR;
        goto done;
    }
    if (!(dumped = util_json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER))) {
        rc = ALLOC_FAIL_ERROR;
        goto done;
    }
    rc = strstr(dumped, "\"product_id\":\"p-2\"") && strstr(dumped, "\"total_cents\":3099")
             ? ALLOC_FAIL_OK
             : ALLOC_FAIL_WRONG;
done:
    free(dumped);
    json_decref(o);
    json_decref(items);
    return rc;
}

/* The 422 of a request with several bad fields: all details or an error. */
static int walk_error_envelope(void *arg)
{
    (void)arg;
    struct order_request r;
    struct order_errors e;
    const char *bad = "{\"customer_id\":\"\",\"currency\":\"x\",\"items\":[]}";

    alloc_fail_jansson(false);
    int parsed = order_parse_for(bad, strlen(bad), NULL, &r, &e);
    alloc_fail_jansson(true);
    if (parsed != -1 || e.n != 3)
        return ALLOC_FAIL_WRONG;
    json_t *env = order_error_json(e.code, e.message, e.details, e.n);
    if (!env)
        return ALLOC_FAIL_ERROR;
    size_t n = json_array_size(json_object_get(json_object_get(env, "error"), "details"));
    json_decref(env);
    return n == 3 ? ALLOC_FAIL_OK : ALLOC_FAIL_WRONG;
}

static int walk_message_body(void *arg)
{
    (void)arg;
    char id[64];
    char err[128];
    char *body = order_message_body("0b5e3c4e-1f2a-4b7c-9d8e-0a1b2c3d4e5f");
    if (!body)
        return ALLOC_FAIL_ERROR;
    alloc_fail_jansson(false);
    int rc = order_message_parse(body, strlen(body), id, err, sizeof(err));
    alloc_fail_jansson(true);
    free(body);
    return rc == 0 && strcmp(id, "0b5e3c4e-1f2a-4b7c-9d8e-0a1b2c3d4e5f") == 0 ? ALLOC_FAIL_OK
                                                                              : ALLOC_FAIL_WRONG;
}

static void test_alloc_failure_walks_the_validator_and_renderers(void **s)
{
    (void)s;
    static const struct {
        const char *name;
        int (*fn)(void *);
    } walks[] = {{"request path", walk_request_path},
                 {"error envelope", walk_error_envelope},
                 {"message body", walk_message_body}};
    for (size_t i = 0; i < sizeof(walks) / sizeof(walks[0]); i++) {
        struct alloc_fail_walk w;
        alloc_fail_jansson(true);
        int rc = alloc_fail_walk(walks[i].fn, NULL, 100000, &w);
        alloc_fail_jansson(false);
        if (rc != 0)
            fail_msg("%s: %s", walks[i].name, w.why);
        /* each of them allocates: fewer runs means no failure was injected */
        if (w.runs < 3)
            fail_msg("%s: %lu run(s) (is alloc_fail linked in?)", walks[i].name, w.runs);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_order),
        cmocka_unit_test(test_customer_required),
        cmocka_unit_test(test_customer_must_be_string),
        cmocka_unit_test(test_customer_not_empty),
        cmocka_unit_test(test_customer_at_most_128_bytes),
        cmocka_unit_test(test_currency_three_upper_letters),
        cmocka_unit_test(test_items_required_array),
        cmocka_unit_test(test_items_between_1_and_100),
        cmocka_unit_test(test_item_must_be_object),
        cmocka_unit_test(test_product_id_rules),
        cmocka_unit_test(test_quantity_between_1_and_10000),
        cmocka_unit_test(test_unit_price_non_negative_integer),
        cmocka_unit_test(test_total_within_int64),
        cmocka_unit_test(test_unknown_fields_refused),
        cmocka_unit_test(test_invalid_json_is_400),
        cmocka_unit_test(test_invalid_utf8_is_400),
        cmocka_unit_test(test_duplicate_keys_are_400),
        cmocka_unit_test(test_integer_overflow_is_400),
        cmocka_unit_test(test_deep_nesting_refused),
        cmocka_unit_test(test_body_over_64k_is_413),
        cmocka_unit_test(test_all_errors_reported_at_once),
        cmocka_unit_test(test_hash_ignores_key_order_and_whitespace),
        cmocka_unit_test(test_correlation_id_rules),
        cmocka_unit_test(test_message_body_round_trip),
        cmocka_unit_test(test_message_order_id_canonical),
        cmocka_unit_test(test_message_poison_cases),
        cmocka_unit_test(test_error_envelope_survives_cut_and_invalid_utf8),
        cmocka_unit_test(test_error_envelope_shape),
        cmocka_unit_test(test_alloc_failure_walks_the_validator_and_renderers),
    };
    return cmocka_run_group_tests_name("order", tests, NULL, NULL);
}
