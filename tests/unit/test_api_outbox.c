/*
 * test_api_outbox.c - the publisher's per-row outcome of a SendMessageBatch
 * answer (issue 10, fault 2: a partial failure wrote uninitialised pointers
 * as message ids, then freed them).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "outbox_send.h"

static void apply_json(const char *json, size_t n, struct send_result *out)
{
    struct sqs_batch_result res;
    struct sqs_error err;
    /* poison the slots: every one must be written */
    memset(out, 0xA5, n * sizeof(*out));
    assert_int_equal(sqs_decode_batch_result(json, strlen(json), &res, &err), 0);
    outbox_batch_apply(&res, n, out);
    sqs_batch_result_free(&res);
}

static void test_fault2_partial_send_failure_keeps_failed_rows_unsent(void **s)
{
    (void)s;
    struct send_result out[5];
    apply_json("{\"Successful\":[{\"Id\":\"0\",\"MessageId\":\"m-0\",\"MD5OfMessageBody\":\"x\"},"
               "{\"Id\":\"2\",\"MessageId\":\"m-2\",\"MD5OfMessageBody\":\"x\"}],"
               "\"Failed\":[{\"Id\":\"1\",\"Code\":\"InternalError\",\"Message\":\"try again\","
               "\"SenderFault\":false},{\"Id\":\"3\",\"Code\":\"InvalidParameterValue\","
               "\"Message\":\"bad attribute\",\"SenderFault\":true}]}",
               5, out);
    assert_int_equal(out[0].outcome, SEND_OK);
    assert_string_equal(out[0].message_id, "m-0");
    assert_int_equal(out[2].outcome, SEND_OK);
    assert_string_equal(out[2].message_id, "m-2");
    /* a server-side failure stays unsent, to be retried with backoff */
    assert_int_equal(out[1].outcome, SEND_RETRY);
    assert_non_null(strstr(out[1].error, "InternalError"));
    /* SQS blames the entry: parked, never retried forever */
    assert_int_equal(out[3].outcome, SEND_REJECTED);
    assert_non_null(strstr(out[3].error, "bad attribute"));
    /* not mentioned in the answer at all: unsent, with a defined reason */
    assert_int_equal(out[4].outcome, SEND_RETRY);
    assert_true(strlen(out[4].error) < sizeof(out[4].error));
}

static void test_fault2_foreign_and_duplicate_ids_cannot_mark_rows(void **s)
{
    (void)s;
    struct send_result out[2];
    apply_json("{\"Successful\":[{\"Id\":\"7\",\"MessageId\":\"m-7\"},{\"Id\":\"01\","
               "\"MessageId\":\"m-01\"},{\"Id\":\"-1\",\"MessageId\":\"m\"},{\"Id\":\"1\","
               "\"MessageId\":\"m-1\"}],\"Failed\":[{\"Id\":\"1\",\"Code\":\"X\","
               "\"SenderFault\":true}]}",
               2, out);
    assert_int_equal(out[0].outcome, SEND_RETRY); /* "01", "-1" and "7" are not ours */
    assert_int_equal(out[1].outcome, SEND_OK);    /* reported both ways: it was sent */
    assert_string_equal(out[1].message_id, "m-1");
}

static void test_batch_encode_limits(void **s)
{
    (void)s;
    struct outbox_msg m[SQS_MAX_BATCH + 1];
    memset(m, 0, sizeof(m));
    for (size_t i = 0; i <= SQS_MAX_BATCH; i++) {
        m[i].body = "{\"order_id\":\"x\"}";
        strcpy(m[i].correlation_id, "c-1");
    }
    assert_null(outbox_batch_encode("http://q", m, 0));
    assert_null(outbox_batch_encode("http://q", m, SQS_MAX_BATCH + 1));
    char *b = outbox_batch_encode("http://q", m, SQS_MAX_BATCH);
    assert_non_null(b);
    assert_non_null(strstr(b, "\"Id\":\"9\""));
    free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fault2_partial_send_failure_keeps_failed_rows_unsent),
        cmocka_unit_test(test_fault2_foreign_and_duplicate_ids_cannot_mark_rows),
        cmocka_unit_test(test_batch_encode_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
