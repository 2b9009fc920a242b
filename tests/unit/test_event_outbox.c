/*
 * test_event_outbox.c - the Detail of each order event (order_json's order
 * as of the change, including out of memory), what a PutEvents answer means
 * for each event_outbox row (sent, retried, parked), read from answers in the
 * shape EventBridge's API reference gives, and the entries refused before any
 * call.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "alloc_fail.h"
#include "event_outbox.h"
#include "util.h"

#define EID "0b5c6a8e-3f1d-4c2a-9e7b-2d4f6a8c0e1b"

/* An order row as it is after its payment. */
static struct order_view processed_row(json_t *items)
{
    return (struct order_view){.id = "f5664835-5369-4f61-a8cf-bb9fae363e64",
                               .status = "PROCESSED",
                               .customer_id = "c-123",
                               .currency = "BRL",
                               .items = items,
                               .total_cents = 3000,
                               .correlation_id = "demo-42",
                               .created_at = "2026-12-02T02:23:56.690688Z",
                               .updated_at = "2026-12-02T02:23:57.016020Z",
                               .processed_at = "2026-12-02T02:23:57.016020Z"};
}

static json_t *items_of(void)
{
    json_t *items =
        json_loads("[{\"quantity\":2,\"product_id\":\"p-1\",\"unit_price_cents\":1500}]", 0, NULL);
    assert_non_null(items);
    return items;
}

/* order_json(v), compact, in its key order (malloc). */
static char *order_text(const struct order_view *v)
{
    json_t *o = order_json(v);
    assert_non_null(o);
    char *s = util_json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    assert_non_null(s);
    return s;
}

/* Checks detail is {"version":1,"id":EID,"order":<order>,"correlation_id":"demo-42"}
 * byte for byte: order_json's keys, in its order. */
static void assert_detail(const char *detail, const char *order)
{
    char *want = NULL;
    assert_true(asprintf(&want,
                         "{\"version\":1,\"id\":\"%s\",\"order\":%s,"
                         "\"correlation_id\":\"demo-42\"}",
                         EID, order) > 0);
    assert_string_equal(detail, want);
    free(want);
}

static void test_a_final_state_event_carries_the_order_as_order_json_renders_it(void **state)
{
    (void)state;
    json_t *items = items_of();
    struct order_view row = processed_row(items);
    char *order = order_text(&row);
    char *d = event_outbox_detail(EID, EVENT_PROCESSED, &row);
    assert_non_null(d);
    assert_detail(d, order);
    free(d);
    free(order);

    /* FAILED (another branch): failure_reason, last, only when set */
    row.status = "FAILED";
    row.processed_at = NULL;
    row.failure_reason = "card declined";
    order = order_text(&row);
    assert_non_null(strstr(order, ",\"processed_at\":null,\"failure_reason\":\"card declined\"}"));
    d = event_outbox_detail(EID, EVENT_FAILED, &row);
    assert_detail(d, order);
    free(d);
    free(order);
    json_decref(items);
}

static void test_order_created_shows_the_order_as_it_was_created(void **state)
{
    (void)state;
    json_t *items = items_of();
    /* sent after the order was canceled: the event still announces the PENDING order */
    struct order_view row = processed_row(items);
    row.status = "CANCELED";
    row.processed_at = NULL;
    row.canceled_at = "2026-12-02T02:23:58.000001Z";
    row.updated_at = row.canceled_at;
    struct order_view pending = processed_row(items);
    pending.status = "PENDING";
    pending.updated_at = pending.created_at;
    pending.processed_at = NULL;
    char *order = order_text(&pending);
    char *d = event_outbox_detail(EID, EVENT_CREATED, &row);
    assert_non_null(d);
    assert_detail(d, order);
    assert_null(strstr(d, "canceled_at"));
    free(d);
    free(order);

    /* and the order.canceled event of the same row shows it canceled */
    order = order_text(&row);
    d = event_outbox_detail(EID, EVENT_CANCELED, &row);
    assert_detail(d, order);
    assert_non_null(strstr(d, "\"canceled_at\":\"2026-12-02T02:23:58.000001Z\""));
    free(d);
    free(order);
    json_decref(items);
}

static json_t *walk_items;
static char *walk_expected;

static int walk_detail(void *arg)
{
    (void)arg;
    struct order_view row = processed_row(walk_items);
    char *d = event_outbox_detail(EID, EVENT_PROCESSED, &row);
    if (!d)
        return ALLOC_FAIL_ERROR;
    int rc = strcmp(d, walk_expected) == 0 ? ALLOC_FAIL_OK : ALLOC_FAIL_WRONG;
    free(d);
    return rc;
}

static void test_out_of_memory_never_yields_a_partial_detail(void **state)
{
    (void)state;
    struct alloc_fail_walk w;
    walk_items = items_of();
    struct order_view row = processed_row(walk_items);
    walk_expected = event_outbox_detail(EID, EVENT_PROCESSED, &row);
    assert_non_null(walk_expected);
    alloc_fail_jansson(true);
    int rc = alloc_fail_walk(walk_detail, NULL, 100000, &w);
    alloc_fail_jansson(false);
    if (rc != 0)
        fail_msg("event_outbox_detail: %s", w.why);
    assert_true(w.runs > 5);
    free(walk_expected);
    json_decref(walk_items);
}

static const struct events_entry VALID = {.source = "order-service",
                                          .detail_type = "order.created",
                                          .detail = "{\"version\":1,\"id\":\"e-1\"}",
                                          .event_bus_name = "orders"};

static void decode(const char *json, size_t n, struct events_put_result *res)
{
    struct aws_error err;
    if (events_decode_put_events(json, strlen(json), n, res, &err) != 0)
        fail_msg("answer not read: %s", err.message);
}

static void test_each_entry_of_a_partial_failure_gets_its_own_outcome(void **state)
{
    (void)state;
    static const char answer[] =
        "{\"FailedEntryCount\":4,\"Entries\":["
        "{\"EventId\":\"11710aed-b79e-4468-a20b-bb3c0c3b4860\"},"
        "{\"ErrorCode\":\"InternalFailure\",\"ErrorMessage\":\"try again\"},"
        "{\"ErrorCode\":\"ThrottlingException\",\"ErrorMessage\":\"Rate exceeded\"},"
        "{\"ErrorCode\":\"MalformedDetail\",\"ErrorMessage\":\"Detail is malformed.\"},"
        "{\"ErrorCode\":\"AccessDeniedException\",\"ErrorMessage\":\"not allowed\"}]}";
    struct events_put_result res;
    struct event_outbox_result out[5];
    decode(answer, 5, &res);
    event_outbox_outcomes(&res, NULL, 5, out);

    assert_int_equal(out[0].outcome, EVENT_OUTBOX_SENT);
    assert_string_equal(out[0].event_id, "11710aed-b79e-4468-a20b-bb3c0c3b4860");
    assert_string_equal(out[0].error, "");
    assert_int_equal(out[1].outcome, EVENT_OUTBOX_RETRY);
    assert_string_equal(out[1].error, "InternalFailure: try again");
    assert_int_equal(out[2].outcome, EVENT_OUTBOX_RETRY);
    /* invalid for good: parked, with the reason kept for last_error */
    assert_int_equal(out[3].outcome, EVENT_OUTBOX_PARK);
    assert_string_equal(out[3].error, "MalformedDetail: Detail is malformed.");
    /* permissions are fixed by people; the event must go out then */
    assert_int_equal(out[4].outcome, EVENT_OUTBOX_RETRY);
    assert_string_equal(out[4].event_id, "");
}

static void test_a_failed_call_retries_every_entry(void **state)
{
    (void)state;
    struct aws_error err;
    struct event_outbox_result out[3];
    aws_error_set(&err, AWS_ERR_TRANSPORT, 0, "connect to 127.0.0.1:1 refused");
    event_outbox_outcomes(NULL, &err, 3, out);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(out[i].outcome, EVENT_OUTBOX_RETRY);
        assert_string_equal(out[i].error, "connect to 127.0.0.1:1 refused");
        assert_string_equal(out[i].event_id, "");
    }
    /* an answer that covers fewer entries than were asked about sends none of the rest */
    struct events_put_result res;
    decode("{\"FailedEntryCount\":0,\"Entries\":[{\"EventId\":\"a\"}]}", 1, &res);
    event_outbox_outcomes(&res, NULL, 3, out);
    assert_int_equal(out[0].outcome, EVENT_OUTBOX_SENT);
    assert_int_equal(out[1].outcome, EVENT_OUTBOX_RETRY);
    assert_int_equal(out[2].outcome, EVENT_OUTBOX_RETRY);
}

/* last_error is a text column: PostgreSQL refuses a value that is not valid
 * UTF-8, and with it the whole round's bookkeeping (the rows already sent are
 * sent again). A failed call's message may be longer than the row's error and
 * carry multi-byte characters (an endpoint's JSON error message): it is cut
 * at a character boundary, never inside one. */
static void test_a_long_error_message_is_cut_at_a_character_boundary(void **state)
{
    (void)state;
    char msg[500];
    for (size_t pad = 0; pad < 3; pad++) { /* every cut position inside a 3-byte character */
        size_t n = 0;
        for (; n < pad; n++)
            msg[n] = 'x';
        while (n + 3 < sizeof(msg)) {
            memcpy(msg + n, "\xe2\x82\xac", 3); /* U+20AC */
            n += 3;
        }
        msg[n] = '\0';
        struct aws_error err;
        struct event_outbox_result out[1];
        aws_error_set(&err, AWS_ERR_THROTTLED, 400, "%s", msg);
        event_outbox_outcomes(NULL, &err, 1, out);
        assert_int_equal(out[0].outcome, EVENT_OUTBOX_RETRY);
        assert_true(strlen(out[0].error) > sizeof(out[0].error) - 4);
        json_t *valid = json_string(out[0].error); /* NULL when not valid UTF-8 */
        assert_non_null(valid);
        json_decref(valid);
    }
}

static void test_an_entry_eventbridge_cannot_take_is_parked_before_the_call(void **state)
{
    (void)state;
    struct event_outbox_result out;
    assert_int_equal(event_outbox_precheck(&VALID, &out), 0);

    struct events_entry e = VALID;
    e.detail = "[1,2]";
    assert_int_equal(event_outbox_precheck(&e, &out), -1);
    assert_int_equal(out.outcome, EVENT_OUTBOX_PARK);
    assert_non_null(strstr(out.error, "Detail"));

    e = VALID;
    e.trace_header = "Root=1-\x01";
    assert_int_equal(event_outbox_precheck(&e, &out), -1);
    assert_non_null(strstr(out.error, "TraceHeader"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_final_state_event_carries_the_order_as_order_json_renders_it),
        cmocka_unit_test(test_order_created_shows_the_order_as_it_was_created),
        cmocka_unit_test(test_out_of_memory_never_yields_a_partial_detail),
        cmocka_unit_test(test_each_entry_of_a_partial_failure_gets_its_own_outcome),
        cmocka_unit_test(test_a_failed_call_retries_every_entry),
        cmocka_unit_test(test_a_long_error_message_is_cut_at_a_character_boundary),
        cmocka_unit_test(test_an_entry_eventbridge_cannot_take_is_parked_before_the_call),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
