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
#include <jansson.h>
#include <stdio.h>
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

/* The error goes to outbox.last_error, a text column: PostgreSQL refuses a
 * value that is not valid UTF-8, and a row whose outcome cannot be written is
 * neither parked nor backed off. SQS's code and message may be longer than
 * their share of the error and carry multi-byte characters: they are cut at
 * character boundaries. */
static void test_long_failure_texts_are_cut_at_character_boundaries(void **s)
{
    (void)s;
    char text[400], json[1200];
    for (size_t pad = 0; pad < 3; pad++) { /* every cut position inside a 3-byte character */
        size_t n = 0;
        for (; n < pad; n++)
            text[n] = 'x';
        while (n + 3 < sizeof(text)) {
            memcpy(text + n, "\xe2\x82\xac", 3); /* U+20AC */
            n += 3;
        }
        text[n] = '\0';
        snprintf(json, sizeof(json),
                 "{\"Successful\":[],\"Failed\":[{\"Id\":\"0\",\"Code\":\"%s\","
                 "\"Message\":\"%s\",\"SenderFault\":true}]}",
                 text + pad + 90, text); /* both start at a character */
        struct send_result out[1];
        apply_json(json, 1, out);
        assert_int_equal(out[0].outcome, SEND_REJECTED);
        json_t *valid = json_string(out[0].error); /* NULL when not valid UTF-8 */
        assert_non_null(valid);
        json_decref(valid);
        assert_true(strlen(out[0].error) > 200);
    }
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
        cmocka_unit_test(test_long_failure_texts_are_cut_at_character_boundaries),
        cmocka_unit_test(test_batch_encode_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
