/*
 * test_event_outbox.c - what a PutEvents answer means for each event_outbox
 * row (sent, retried, parked), read from answers in the shape EventBridge's
 * API reference gives, and the entries refused before any call.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "event_outbox.h"

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
        cmocka_unit_test(test_each_entry_of_a_partial_failure_gets_its_own_outcome),
        cmocka_unit_test(test_a_failed_call_retries_every_entry),
        cmocka_unit_test(test_an_entry_eventbridge_cannot_take_is_parked_before_the_call),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
