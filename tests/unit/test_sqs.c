/*
 * test_sqs.c - the SQS client: JSON encoders and decoders, error
 * classification, configuration from the environment, and the transport
 * against the shared HTTP stub (tests/unit/http_stub.h) playing SQS.
 *
 * The stub is scripted (one status and body per request) and captures every
 * request and counts accepted TCP connections, so retries and keep-alive are
 * observed from the far side of the socket rather than assumed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "credentials.h"
#include "sigv4.h"
#include "alloc_fail.h"
#include "aws_env.h"
#include "sqs.h"
#include "http_stub.h"

#define QURL "https://sqs.eu-west-1.amazonaws.com/123456789012/orders"
#define SECRET "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
#define TOKEN "IQoJb3JpZ2luX2VjEXAMPLETOKEN"

/* ---- helpers ------------------------------------------------------------- */

static json_t *parse(const char *s)
{
    json_error_t e;
    assert_non_null(s);
    json_t *j = json_loads(s, 0, &e);
    if (!j)
        fail_msg("encoder produced invalid JSON: %s: %s", e.text, s);
    return j;
}

static const char *jstr(json_t *o, const char *path)
{
    /* "a.b.c" walks objects; returns NULL when any step is missing */
    char buf[256];
    snprintf(buf, sizeof(buf), "%s", path);
    json_t *cur = o;
    for (char *save = NULL, *tok = strtok_r(buf, ".", &save); tok; tok = strtok_r(NULL, ".", &save))
        cur = json_object_get(cur, tok);
    return json_string_value(cur);
}

/* What the logger (jansson) needs to keep a line. */
static void assert_utf8(const char *s)
{
    json_t *j = json_string(s);
    if (!j)
        fail_msg("not valid UTF-8: %s", s);
    json_decref(j);
}

static bool array_has(json_t *a, const char *s)
{
    size_t i;
    json_t *v;
    json_array_foreach(a, i, v)
    {
        if (json_is_string(v) && strcmp(json_string_value(v), s) == 0)
            return true;
    }
    return false;
}

static void env_clear(void)
{
    static const char *vars[] = {
        "AWS_REGION",       "AWS_DEFAULT_REGION",     "AWS_ENDPOINT_URL_SQS",  "AWS_ENDPOINT_URL",
        "SQS_MAX_ATTEMPTS", "SQS_CONNECT_TIMEOUT_MS", "SQS_REQUEST_TIMEOUT_MS"};
    for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
        unsetenv(vars[i]);
}

/* ---- encoding ------------------------------------------------------------ */

static void test_action_names(void **state)
{
    (void)state;
    assert_string_equal(sqs_action_name(SQS_SEND_MESSAGE), "SendMessage");
    assert_string_equal(sqs_action_name(SQS_SEND_MESSAGE_BATCH), "SendMessageBatch");
    assert_string_equal(sqs_action_name(SQS_RECEIVE_MESSAGE), "ReceiveMessage");
    assert_string_equal(sqs_action_name(SQS_DELETE_MESSAGE), "DeleteMessage");
    assert_string_equal(sqs_action_name(SQS_DELETE_MESSAGE_BATCH), "DeleteMessageBatch");
    assert_string_equal(sqs_action_name(SQS_CHANGE_MESSAGE_VISIBILITY), "ChangeMessageVisibility");
    assert_string_equal(sqs_action_name(SQS_CHANGE_MESSAGE_VISIBILITY_BATCH),
                        "ChangeMessageVisibilityBatch");
    assert_string_equal(sqs_action_name(SQS_GET_QUEUE_URL), "GetQueueUrl");
    assert_string_equal(sqs_action_name(SQS_GET_QUEUE_ATTRIBUTES), "GetQueueAttributes");
}

static void test_encode_send_message(void **state)
{
    (void)state;
    struct sqs_attr attrs[] = {{"correlation_id", "c-1"}, {"order_id", "o-42"}};
    struct sqs_send_entry e = {.id = "ignored",
                               .body = "{\"order\":\"\xc3\xa9\"}",
                               .attrs = attrs,
                               .n_attrs = 2,
                               .trace_header = "Root=1-5759e988-bd862e3fe1be46a994272793"};
    char *s = sqs_encode_send_message(QURL, &e);
    json_t *j = parse(s);
    assert_string_equal(jstr(j, "QueueUrl"), QURL);
    assert_string_equal(jstr(j, "MessageBody"), "{\"order\":\"\xc3\xa9\"}");
    assert_null(json_object_get(j, "Id"));
    assert_string_equal(jstr(j, "MessageAttributes.correlation_id.DataType"), "String");
    assert_string_equal(jstr(j, "MessageAttributes.correlation_id.StringValue"), "c-1");
    assert_string_equal(jstr(j, "MessageAttributes.order_id.StringValue"), "o-42");
    assert_string_equal(jstr(j, "MessageSystemAttributes.AWSTraceHeader.DataType"), "String");
    assert_string_equal(jstr(j, "MessageSystemAttributes.AWSTraceHeader.StringValue"),
                        "Root=1-5759e988-bd862e3fe1be46a994272793");
    json_decref(j);
    free(s);

    /* Without attributes or a trace header neither map is sent. */
    struct sqs_send_entry plain = {.body = "hello"};
    s = sqs_encode_send_message(QURL, &plain);
    j = parse(s);
    assert_string_equal(jstr(j, "MessageBody"), "hello");
    assert_null(json_object_get(j, "MessageAttributes"));
    assert_null(json_object_get(j, "MessageSystemAttributes"));
    json_decref(j);
    free(s);
}

static void test_encode_send_message_rejects(void **state)
{
    (void)state;
    struct sqs_send_entry e = {.body = NULL};
    assert_null(sqs_encode_send_message(QURL, &e));
    e.body = "";
    assert_null(sqs_encode_send_message(QURL, &e));
    e.body = "bad \x01 control";
    assert_null(sqs_encode_send_message(QURL, &e));
    e.body = "bad utf8 \xff";
    assert_null(sqs_encode_send_message(QURL, &e));
    e.body = "ok";
    assert_null(sqs_encode_send_message(NULL, &e));
    assert_null(sqs_encode_send_message("", &e));

    char *big = malloc(SQS_MAX_BODY_BYTES + 2);
    assert_non_null(big);
    memset(big, 'x', SQS_MAX_BODY_BYTES + 1);
    big[SQS_MAX_BODY_BYTES + 1] = '\0';
    e.body = big;
    assert_null(sqs_encode_send_message(QURL, &e));
    big[SQS_MAX_BODY_BYTES] = '\0'; /* exactly the limit is fine */
    char *s = sqs_encode_send_message(QURL, &e);
    assert_non_null(s);
    free(s);
    free(big);

    struct sqs_attr dup[] = {{"a", "1"}, {"a", "2"}};
    struct sqs_send_entry d = {.body = "x", .attrs = dup, .n_attrs = 2};
    assert_null(sqs_encode_send_message(QURL, &d));
    struct sqs_attr noval[] = {{"a", NULL}};
    struct sqs_send_entry nv = {.body = "x", .attrs = noval, .n_attrs = 1};
    assert_null(sqs_encode_send_message(QURL, &nv));
}

static void test_encode_send_message_batch(void **state)
{
    (void)state;
    struct sqs_attr attrs[] = {{"order_id", "o-1"}};
    struct sqs_send_entry e[2] = {
        {.id = "m0", .body = "first", .attrs = attrs, .n_attrs = 1},
        {.id = "m_1-b", .body = "second", .trace_header = "Root=1-abc"},
    };
    char *s = sqs_encode_send_message_batch(QURL, e, 2);
    json_t *j = parse(s);
    assert_string_equal(jstr(j, "QueueUrl"), QURL);
    json_t *entries = json_object_get(j, "Entries");
    assert_true(json_is_array(entries));
    assert_int_equal(json_array_size(entries), 2);
    assert_string_equal(jstr(json_array_get(entries, 0), "Id"), "m0");
    assert_string_equal(jstr(json_array_get(entries, 0), "MessageBody"), "first");
    assert_string_equal(jstr(json_array_get(entries, 0), "MessageAttributes.order_id.StringValue"),
                        "o-1");
    assert_string_equal(jstr(json_array_get(entries, 1), "Id"), "m_1-b");
    assert_string_equal(jstr(json_array_get(entries, 1), "MessageBody"), "second");
    assert_string_equal(
        jstr(json_array_get(entries, 1), "MessageSystemAttributes.AWSTraceHeader.StringValue"),
        "Root=1-abc");
    json_decref(j);
    free(s);

    struct sqs_send_entry many[11];
    char ids[11][8];
    for (int i = 0; i < 11; i++) {
        snprintf(ids[i], sizeof(ids[i]), "e%d", i);
        many[i] = (struct sqs_send_entry){.id = ids[i], .body = "b"};
    }
    assert_null(sqs_encode_send_message_batch(QURL, many, 0));
    assert_null(sqs_encode_send_message_batch(QURL, many, 11));
    s = sqs_encode_send_message_batch(QURL, many, 10);
    assert_non_null(s);
    free(s);

    struct sqs_send_entry bad[2] = {{.id = "a b", .body = "x"}, {.id = "ok", .body = "y"}};
    assert_null(sqs_encode_send_message_batch(QURL, bad, 2));
    bad[0].id = "same";
    bad[1].id = "same";
    assert_null(sqs_encode_send_message_batch(QURL, bad, 2));
    bad[0].id = NULL;
    assert_null(sqs_encode_send_message_batch(QURL, bad, 2));
    bad[0].id = "one";
    bad[1].id = "two";
    bad[1].body = "";
    assert_null(sqs_encode_send_message_batch(QURL, bad, 2));
}

static void test_encode_receive_message(void **state)
{
    (void)state;
    char *s = sqs_encode_receive_message(QURL, 10, 20, -1);
    json_t *j = parse(s);
    assert_string_equal(jstr(j, "QueueUrl"), QURL);
    assert_int_equal(json_integer_value(json_object_get(j, "MaxNumberOfMessages")), 10);
    assert_int_equal(json_integer_value(json_object_get(j, "WaitTimeSeconds")), 20);
    assert_null(json_object_get(j, "VisibilityTimeout"));
    json_t *man = json_object_get(j, "MessageAttributeNames");
    assert_int_equal(json_array_size(man), 1);
    assert_true(array_has(man, "All"));
    const char *keys[] = {"MessageSystemAttributeNames", "AttributeNames"};
    for (int k = 0; k < 2; k++) {
        json_t *a = json_object_get(j, keys[k]);
        assert_true(json_is_array(a));
        assert_true(array_has(a, "ApproximateReceiveCount"));
        assert_true(array_has(a, "SentTimestamp"));
        assert_true(array_has(a, "AWSTraceHeader"));
    }
    json_decref(j);
    free(s);

    s = sqs_encode_receive_message(QURL, 1, 0, 30);
    j = parse(s);
    assert_int_equal(json_integer_value(json_object_get(j, "VisibilityTimeout")), 30);
    assert_int_equal(json_integer_value(json_object_get(j, "WaitTimeSeconds")), 0);
    json_decref(j);
    free(s);

    assert_null(sqs_encode_receive_message(QURL, 0, 20, -1));
    assert_null(sqs_encode_receive_message(QURL, 11, 20, -1));
    assert_null(sqs_encode_receive_message(QURL, 5, 21, -1));
    assert_null(sqs_encode_receive_message(QURL, 5, -1, -1));
    assert_null(sqs_encode_receive_message(QURL, 5, 1, 43201));
    assert_null(sqs_encode_receive_message(NULL, 5, 1, -1));
}

static void test_encode_delete_and_visibility(void **state)
{
    (void)state;
    char *s = sqs_encode_delete_message(QURL, "rh-1");
    json_t *j = parse(s);
    assert_string_equal(jstr(j, "QueueUrl"), QURL);
    assert_string_equal(jstr(j, "ReceiptHandle"), "rh-1");
    json_decref(j);
    free(s);
    assert_null(sqs_encode_delete_message(QURL, NULL));
    assert_null(sqs_encode_delete_message(QURL, ""));

    s = sqs_encode_change_visibility(QURL, "rh-2", 120);
    j = parse(s);
    assert_string_equal(jstr(j, "ReceiptHandle"), "rh-2");
    assert_int_equal(json_integer_value(json_object_get(j, "VisibilityTimeout")), 120);
    json_decref(j);
    free(s);
    s = sqs_encode_change_visibility(QURL, "rh-2", 0); /* 0 = visible again at once */
    assert_non_null(s);
    free(s);
    assert_null(sqs_encode_change_visibility(QURL, "rh-2", -1));
    assert_null(sqs_encode_change_visibility(QURL, "rh-2", 43201));
    assert_null(sqs_encode_change_visibility(QURL, NULL, 10));

    struct sqs_receipt_entry e[2] = {{"d0", "rh-a", 5}, {"d1", "rh-b", 60}};
    s = sqs_encode_delete_message_batch(QURL, e, 2);
    j = parse(s);
    json_t *entries = json_object_get(j, "Entries");
    assert_int_equal(json_array_size(entries), 2);
    assert_string_equal(jstr(json_array_get(entries, 1), "Id"), "d1");
    assert_string_equal(jstr(json_array_get(entries, 1), "ReceiptHandle"), "rh-b");
    assert_null(json_object_get(json_array_get(entries, 0), "VisibilityTimeout"));
    json_decref(j);
    free(s);

    s = sqs_encode_change_visibility_batch(QURL, e, 2);
    j = parse(s);
    entries = json_object_get(j, "Entries");
    assert_int_equal(json_array_size(entries), 2);
    assert_string_equal(jstr(json_array_get(entries, 0), "ReceiptHandle"), "rh-a");
    assert_int_equal(
        json_integer_value(json_object_get(json_array_get(entries, 0), "VisibilityTimeout")), 5);
    assert_int_equal(
        json_integer_value(json_object_get(json_array_get(entries, 1), "VisibilityTimeout")), 60);
    json_decref(j);
    free(s);

    assert_null(sqs_encode_delete_message_batch(QURL, e, 0));
    assert_null(sqs_encode_change_visibility_batch(QURL, e, 0));
    struct sqs_receipt_entry many[11];
    char ids[11][8];
    for (int i = 0; i < 11; i++) {
        snprintf(ids[i], sizeof(ids[i]), "r%d", i);
        many[i] = (struct sqs_receipt_entry){ids[i], "rh", 1};
    }
    assert_null(sqs_encode_delete_message_batch(QURL, many, 11));
    assert_null(sqs_encode_change_visibility_batch(QURL, many, 11));
    e[1].visibility_timeout = -5;
    assert_null(sqs_encode_change_visibility_batch(QURL, e, 2));
    e[1].receipt_handle = NULL;
    assert_null(sqs_encode_delete_message_batch(QURL, e, 2));
}

static void test_encode_queue_lookups(void **state)
{
    (void)state;
    char *s = sqs_encode_get_queue_url("orders");
    json_t *j = parse(s);
    assert_string_equal(jstr(j, "QueueName"), "orders");
    json_decref(j);
    free(s);
    assert_null(sqs_encode_get_queue_url(NULL));
    assert_null(sqs_encode_get_queue_url(""));

    const char *names[] = {"ApproximateNumberOfMessages", "QueueArn"};
    s = sqs_encode_get_queue_attributes(QURL, names, 2);
    j = parse(s);
    assert_string_equal(jstr(j, "QueueUrl"), QURL);
    json_t *a = json_object_get(j, "AttributeNames");
    assert_int_equal(json_array_size(a), 2);
    assert_true(array_has(a, "ApproximateNumberOfMessages"));
    assert_true(array_has(a, "QueueArn"));
    json_decref(j);
    free(s);
    assert_null(sqs_encode_get_queue_attributes(QURL, names, 0));
}

/* ---- decoding ------------------------------------------------------------ */

static const char RECEIVE_FULL[] =
    "{\"Messages\":[{\"MessageId\":\"id-1\",\"ReceiptHandle\":\"rh-1\","
    "\"MD5OfBody\":\"5d41402abc4b2a76b9719d911017c592\",\"Body\":\"{\\\"order_id\\\":1}\","
    "\"Attributes\":{\"ApproximateReceiveCount\":\"3\",\"SentTimestamp\":\"1700000000123\","
    "\"AWSTraceHeader\":\"Root=1-abc\",\"SenderId\":\"AIDA\"},"
    "\"MessageAttributes\":{\"order_id\":{\"DataType\":\"String\",\"StringValue\":\"o-1\"},"
    "\"retries\":{\"DataType\":\"Number\",\"StringValue\":\"2\"},"
    "\"blob\":{\"DataType\":\"Binary\",\"BinaryValue\":\"AAEC\"}}},"
    "{\"MessageId\":\"id-2\",\"ReceiptHandle\":\"rh-2\",\"Body\":\"plain\"}]}";

static void test_decode_receive(void **state)
{
    (void)state;
    struct sqs_received r;
    struct sqs_error err;

    assert_int_equal(sqs_decode_receive_message(RECEIVE_FULL, strlen(RECEIVE_FULL), &r, &err), 0);
    assert_int_equal(r.n, 2);
    assert_int_equal(r.n_rejected, 0);
    struct sqs_message *m = r.msgs;
    assert_string_equal(m[0].message_id, "id-1");
    assert_string_equal(m[0].receipt_handle, "rh-1");
    assert_string_equal(m[0].body, "{\"order_id\":1}");
    assert_int_equal(m[0].receive_count, 3);
    assert_int_equal(m[0].sent_timestamp_ms, 1700000000123LL);
    assert_string_equal(m[0].trace_header, "Root=1-abc");
    assert_int_equal(m[0].n_attrs, 2); /* the Binary attribute has no text value */
    assert_string_equal(sqs_message_attr(&m[0], "order_id"), "o-1");
    assert_string_equal(sqs_message_attr(&m[0], "retries"), "2");
    assert_null(sqs_message_attr(&m[0], "blob"));
    assert_null(sqs_message_attr(&m[0], "missing"));
    assert_string_equal(m[1].message_id, "id-2");
    assert_int_equal(m[1].receive_count, 0);
    assert_int_equal(m[1].sent_timestamp_ms, 0);
    assert_null(m[1].trace_header);
    assert_int_equal(m[1].n_attrs, 0);
    sqs_received_free(&r);
    assert_null(r.msgs);
    assert_int_equal(r.n, 0);

    /* Emulators may send numbers as JSON numbers. */
    const char *nums = "{\"Messages\":[{\"MessageId\":\"a\",\"ReceiptHandle\":\"b\",\"Body\":\"c\","
                       "\"Attributes\":{\"ApproximateReceiveCount\":7,\"SentTimestamp\":5}}]}";
    assert_int_equal(sqs_decode_receive_message(nums, strlen(nums), &r, &err), 0);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.msgs[0].receive_count, 7);
    assert_int_equal(r.msgs[0].sent_timestamp_ms, 5);
    sqs_received_free(&r);
}

static void test_decode_receive_empty(void **state)
{
    (void)state;
    const char *ok[] = {"{}", "{\"Messages\":[]}", "{\"Messages\":null}", " { } "};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        struct sqs_received r;
        struct sqs_error err;
        memset(&r, 0x55, sizeof(r));
        assert_int_equal(sqs_decode_receive_message(ok[i], strlen(ok[i]), &r, &err), 0);
        assert_int_equal(r.n, 0);
        assert_int_equal(r.n_rejected, 0);
        assert_null(r.msgs);
        assert_null(r.rejected);
    }
}

/* The answer as a whole is unusable: an error, nothing returned. */
static void expect_receive_parse_error(const char *json, const char *needle)
{
    struct sqs_received r;
    struct sqs_error err;
    memset(&r, 0x55, sizeof(r));
    if (sqs_decode_receive_message(json, json ? strlen(json) : 0, &r, &err) == 0)
        fail_msg("accepted: %s", json);
    assert_int_equal(err.kind, SQS_ERR_PARSE);
    assert_false(sqs_error_retryable(&err));
    assert_null(r.msgs);
    assert_null(r.rejected);
    assert_int_equal(r.n, 0);
    assert_int_equal(r.n_rejected, 0);
    if (!strstr(err.message, needle))
        fail_msg("message \"%s\" lacks \"%s\"", err.message, needle);
}

/* One entry that cannot be acted on: reported, not returned, with what is
 * known of it. */
static void expect_rejected(const char *json, const char *needle, const char *message_id,
                            bool has_receipt_handle)
{
    struct sqs_received r;
    struct sqs_error err;
    if (sqs_decode_receive_message(json, strlen(json), &r, &err) != 0)
        fail_msg("whole answer refused (%s): %s", err.message, json);
    if (r.n != 0 || r.n_rejected != 1)
        fail_msg("%zu returned, %zu rejected, expected 0 and 1: %s", r.n, r.n_rejected, json);
    const struct sqs_rejected *x = &r.rejected[0];
    assert_int_equal(x->why.kind, SQS_ERR_PARSE);
    if (!strstr(x->why.message, needle))
        fail_msg("reason \"%s\" lacks \"%s\"", x->why.message, needle);
    assert_string_equal(x->message_id, message_id);
    assert_int_equal(x->has_receipt_handle, has_receipt_handle);
    sqs_received_free(&r);
}

static void test_decode_receive_bad(void **state)
{
    (void)state;
    expect_receive_parse_error("", "not valid JSON");
    expect_receive_parse_error("not json", "not valid JSON");
    expect_receive_parse_error("[1,2]", "not a JSON object");
    expect_receive_parse_error("{\"Messages\":{}}", "Messages is not an array");

    /* More messages than a receive can ever return. */
    char big[2048] = "{\"Messages\":[";
    for (int i = 0; i < 11; i++)
        strcat(big, i ? ",{}" : "{}");
    strcat(big, "]}");
    expect_receive_parse_error(big, "at most 10");

    /* Deep nesting is refused by the parser, not by the stack. */
    char *deep = malloc(200001);
    assert_non_null(deep);
    memset(deep, '[', 200000);
    deep[200000] = '\0';
    expect_receive_parse_error(deep, "not valid JSON");
    free(deep);

    /* Everything below is one bad entry, not a bad answer. */
    expect_rejected("{\"Messages\":[1]}", "message 0: the entry is not an object", "", false);
    expect_rejected("{\"Messages\":[{\"ReceiptHandle\":\"r\",\"Body\":\"b\"}]}",
                    "MessageId is missing", "", true);
    expect_rejected("{\"Messages\":[{\"MessageId\":\"a\",\"ReceiptHandle\":7,\"Body\":\"b\"}]}",
                    "ReceiptHandle is not a string", "a", false);
    expect_rejected("{\"Messages\":[{\"MessageId\":\"a\",\"ReceiptHandle\":\"r\"}]}",
                    "Body is missing", "a", true);
    expect_rejected("{\"Messages\":[{\"MessageId\":\"a\",\"ReceiptHandle\":\"r\",\"Body\":7}]}",
                    "Body is not a string", "a", true);
    expect_rejected("{\"Messages\":[{\"MessageId\":\"a\",\"ReceiptHandle\":\"r\",\"Body\":\"b\","
                    "\"Attributes\":[]}]}",
                    "Attributes is not an object", "a", true);
    expect_rejected("{\"Messages\":[{\"MessageId\":\"a\",\"ReceiptHandle\":\"r\",\"Body\":\"b\","
                    "\"Attributes\":{\"ApproximateReceiveCount\":\"x1\"}}]}",
                    "ApproximateReceiveCount", "a", true);
    expect_rejected("{\"Messages\":[{\"MessageId\":\"a\",\"ReceiptHandle\":\"r\",\"Body\":\"b\","
                    "\"Attributes\":{\"ApproximateReceiveCount\":\"99999999999\"}}]}",
                    "ApproximateReceiveCount", "a", true);
    expect_rejected("{\"Messages\":[{\"MessageId\":\"a\",\"ReceiptHandle\":\"r\",\"Body\":\"b\","
                    "\"Attributes\":{\"SentTimestamp\":true}}]}",
                    "SentTimestamp", "a", true);
    expect_rejected("{\"Messages\":[{\"MessageId\":\"a\",\"ReceiptHandle\":\"r\",\"Body\":\"b\","
                    "\"Attributes\":{\"AWSTraceHeader\":1}}]}",
                    "AWSTraceHeader is not a string", "a", true);
    expect_rejected("{\"Messages\":[{\"MessageId\":\"a\",\"ReceiptHandle\":\"r\",\"Body\":\"b\","
                    "\"MessageAttributes\":{\"k\":{\"DataType\":\"String\",\"StringValue\":5}}}]}",
                    "StringValue is not a string", "a", true);
    expect_rejected("{\"Messages\":[{\"MessageId\":\"a\",\"ReceiptHandle\":\"r\",\"Body\":\"b\","
                    "\"MessageAttributes\":{\"k\":\"v\"}}]}",
                    "has no DataType", "a", true);
    expect_rejected("{\"Messages\":[{\"MessageId\":\"a\",\"ReceiptHandle\":\"r\",\"Body\":\"b\","
                    "\"MessageAttributes\":7}]}",
                    "MessageAttributes is not an object", "a", true);

    /* Reasons go into JSON log lines, so they stay valid UTF-8: jansson's
     * own error quotes raw input (here a backslash and half a character),
     * and a long attribute name is cut at a character boundary (both found
     * by fuzz_events / reading the fuzz targets' new checks). */
    struct sqs_received r;
    struct sqs_error err;
    const char *esc = "{\"Messages\":\"\\\xda\x85\"}";
    assert_int_equal(sqs_decode_receive_message(esc, strlen(esc), &r, &err), -1);
    assert_utf8(err.message);
    char named[512];
    snprintf(
        named, sizeof(named),
        "{\"Messages\":[{\"MessageId\":\"a\",\"ReceiptHandle\":\"r\",\"Body\":\"b\","
        "\"MessageAttributes\":{\"%s\xc3\xa9z\":5}}]}",
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
        "aaaaaaaaaaa"); /* 99 bytes, then a two-byte character across byte 100 */
    assert_int_equal(sqs_decode_receive_message(named, strlen(named), &r, &err), 0);
    assert_int_equal(r.n_rejected, 1);
    assert_utf8(r.rejected[0].why.message);
    assert_non_null(strstr(r.rejected[0].why.message, "has no DataType"));
    sqs_received_free(&r);

    /* An id too long to log whole is not copied into the report. */
    char longid[400];
    snprintf(longid, sizeof(longid),
             "{\"Messages\":[{\"MessageId\":\"%0200d\",\"ReceiptHandle\":\"r\",\"Body\":\"b\"}]}",
             7);
    expect_rejected(longid, "MessageId is longer than 127 bytes", "", true);
}

/* Fault 1 (issue 10): SQS (or an emulator, or a proxy) answered an entry with
 * "ReceiptHandle": "". The decoder handed it out as a message; the worker
 * paid the order, the DeleteMessageBatch encoder refused the empty handle,
 * sqs_request_new returned NULL and the worker dereferenced it (SIGSEGV).
 * An entry that can never be deleted is now refused by the decoder. */
static void test_fault1_empty_receipt_handle_is_rejected_not_returned(void **state)
{
    (void)state;
    expect_rejected("{\"Messages\":[{\"MessageId\":\"m-1\",\"ReceiptHandle\":\"\","
                    "\"Body\":\"{\\\"order_id\\\":\\\"o\\\"}\"}]}",
                    "ReceiptHandle is empty", "m-1", false);
    expect_rejected("{\"Messages\":[{\"MessageId\":\"m-2\",\"Body\":\"b\"}]}",
                    "ReceiptHandle is missing", "m-2", false);
    expect_rejected(
        "{\"Messages\":[{\"MessageId\":\"m-3\",\"ReceiptHandle\":null,\"Body\":\"b\"}]}",
        "ReceiptHandle is not a string", "m-3", false);
    expect_rejected("{\"Messages\":[{\"MessageId\":\"\",\"ReceiptHandle\":\"rh\",\"Body\":\"b\"}]}",
                    "MessageId is empty", "", true);
    expect_rejected(
        "{\"Messages\":[{\"MessageId\":\"m-4\",\"ReceiptHandle\":\"rh\",\"Body\":\"\"}]}",
        "Body is empty", "m-4", true);

    /* The same on its own, as the per-entry decoder (the fuzz target) sees it. */
    struct sqs_message m;
    struct sqs_rejected rej;
    struct sqs_error err;
    const char *e = "{\"MessageId\":\"m-1\",\"ReceiptHandle\":\"\",\"Body\":\"b\"}";
    assert_int_equal(sqs_decode_receive_entry(e, strlen(e), &m, &rej, &err), 1);
    assert_null(m.message_id);
    assert_null(m.receipt_handle);
    assert_string_equal(rej.message_id, "m-1");
    assert_false(rej.has_receipt_handle);
    const char *ok = "{\"MessageId\":\"m-1\",\"ReceiptHandle\":\"rh\",\"Body\":\"b\"}";
    assert_int_equal(sqs_decode_receive_entry(ok, strlen(ok), &m, &rej, &err), 0);
    assert_string_equal(m.receipt_handle, "rh");
    sqs_message_clear(&m);
    assert_null(m.receipt_handle);
    assert_int_equal(sqs_decode_receive_entry("{", 1, &m, &rej, &err), -1);
    assert_int_equal(err.kind, SQS_ERR_PARSE);
}

/* Fault 1, the other half: a request that could not be built (the encoder
 * refused, memory ran out) is NULL, and NULL is an error for every request
 * function, never a dereference. */
static void test_fault1_null_request_is_an_error_not_a_crash(void **state)
{
    (void)state;
    struct sqs_receipt_entry bad[1] = {{"d0", "", 0}};
    char *body = sqs_encode_delete_message_batch(QURL, bad, 1);
    assert_null(body); /* SQS would refuse an empty receipt handle */

    struct aws_credentials c = {.access_key_id = "AKID", .secret_access_key = SECRET};
    struct creds_provider *p = creds_provider_new_static(&c);
    struct sqs_config cfg = {.endpoint = "http://127.0.0.1:9",
                             .region = "eu-west-1",
                             .connect_timeout_ms = 100,
                             .request_timeout_ms = 100,
                             .max_attempts = 1};
    struct sqs_client *client = sqs_client_new(&cfg, p);
    assert_non_null(client);
    struct sqs_request *r = sqs_request_new(client, SQS_DELETE_MESSAGE_BATCH, body, NULL);
    assert_null(r);

    struct sqs_error err;
    assert_int_equal(sqs_request_prepare(r, 0, &err), -1);
    assert_int_equal(err.kind, SQS_ERR_CLIENT);
    assert_false(sqs_error_retryable(&err));
    assert_null(sqs_request_easy(r));
    assert_int_equal(sqs_request_complete(r, CURLE_OK, &err), -1);
    size_t len = 99;
    assert_string_equal(sqs_request_response(r, &len), "");
    assert_int_equal(len, 0);
    assert_null(sqs_request_userdata(r));
    assert_int_equal(sqs_request_attempts(r), 0);
    assert_int_equal(sqs_request_action(r), SQS_ACTION_UNKNOWN);
    assert_null(sqs_request_from_easy(NULL));
    sqs_request_free(r);
    sqs_client_free(client);
    creds_provider_free(p);
}

/* Fault 4 (issue 10): one malformed entry made the whole ReceiveMessage
 * answer fail, so the valid messages beside it waited out their visibility
 * timeout and counted toward the DLQ. Now the valid ones come back at once,
 * in order, and each bad one is reported with what is known of it. */
static const char FAULT4_ANSWER[] =
    "{\"Messages\":["
    "{\"MessageId\":\"good-1\",\"ReceiptHandle\":\"rh-1\",\"Body\":\"one\"},"
    "{\"ReceiptHandle\":\"rh-x\",\"Body\":\"no id\"},"
    "{\"MessageId\":\"bad-body\",\"ReceiptHandle\":\"rh-y\",\"Body\":{\"not\":\"a string\"}},"
    "{\"MessageId\":\"bad-attr\",\"ReceiptHandle\":\"rh-z\",\"Body\":\"b\","
    "\"MessageAttributes\":{\"k\":{\"DataType\":\"String\",\"StringValue\":[]}}},"
    "{\"MessageId\":\"good-2\",\"ReceiptHandle\":\"rh-2\",\"Body\":\"two\","
    "\"MessageAttributes\":{\"correlation_id\":{\"DataType\":\"String\",\"StringValue\":\"c\"}}}"
    "]}";

static void assert_fault4_result(const struct sqs_received *r)
{
    assert_int_equal(r->n, 2);
    assert_string_equal(r->msgs[0].message_id, "good-1");
    assert_string_equal(r->msgs[0].receipt_handle, "rh-1");
    assert_string_equal(r->msgs[1].message_id, "good-2");
    assert_string_equal(sqs_message_attr(&r->msgs[1], "correlation_id"), "c");
    assert_int_equal(r->n_rejected, 3);
    assert_string_equal(r->rejected[0].message_id, "");
    assert_true(r->rejected[0].has_receipt_handle);
    assert_non_null(strstr(r->rejected[0].why.message, "message 1: MessageId is missing"));
    assert_string_equal(r->rejected[1].message_id, "bad-body");
    assert_non_null(strstr(r->rejected[1].why.message, "message 2: Body is not a string"));
    assert_string_equal(r->rejected[2].message_id, "bad-attr");
    assert_non_null(strstr(r->rejected[2].why.message, "StringValue is not a string"));
}

static void test_fault4_one_malformed_entry_keeps_the_rest_of_the_batch(void **state)
{
    (void)state;
    struct sqs_received r;
    struct sqs_error err;
    assert_int_equal(sqs_decode_receive_message(FAULT4_ANSWER, strlen(FAULT4_ANSWER), &r, &err), 0);
    assert_fault4_result(&r);
    sqs_received_free(&r);
}

static void test_decode_send_message(void **state)
{
    (void)state;
    char id[64];
    struct sqs_error err;
    const char *ok = "{\"MD5OfMessageBody\":\"x\",\"MessageId\":\"5fea7756-0ea4-451a-a703\"}";
    assert_int_equal(sqs_decode_send_message(ok, strlen(ok), id, sizeof(id), &err), 0);
    assert_string_equal(id, "5fea7756-0ea4-451a-a703");

    assert_int_equal(sqs_decode_send_message(ok, strlen(ok), id, 8, &err), -1);
    assert_int_equal(err.kind, SQS_ERR_PARSE);
    assert_string_equal(id, "");
    const char *bad = "{\"MessageId\":12}";
    assert_int_equal(sqs_decode_send_message(bad, strlen(bad), id, sizeof(id), &err), -1);
    assert_int_equal(err.kind, SQS_ERR_PARSE);
    assert_non_null(strstr(err.message, "not a string"));
    assert_int_equal(sqs_decode_send_message("{}", 2, id, sizeof(id), &err), -1);
    assert_non_null(strstr(err.message, "missing"));
}

static void test_decode_batch_result(void **state)
{
    (void)state;
    struct sqs_batch_result r;
    struct sqs_error err;
    const char *json =
        "{\"Successful\":[{\"Id\":\"m0\",\"MessageId\":\"mid-0\",\"MD5OfMessageBody\":\"x\"},"
        "{\"Id\":\"m2\",\"MessageId\":\"mid-2\"}],"
        "\"Failed\":[{\"Id\":\"m1\",\"SenderFault\":true,\"Code\":\"InvalidParameterValue\","
        "\"Message\":\"bad "
        "body\"},{\"Id\":\"m3\",\"SenderFault\":false,\"Code\":\"InternalError\"}]}";
    assert_int_equal(sqs_decode_batch_result(json, strlen(json), &r, &err), 0);
    assert_int_equal(r.n_ok, 2);
    assert_string_equal(r.ok_ids[0], "m0");
    assert_string_equal(r.ok_message_ids[0], "mid-0");
    assert_string_equal(r.ok_ids[1], "m2");
    assert_string_equal(r.ok_message_ids[1], "mid-2");
    assert_int_equal(r.n_failed, 2);
    assert_string_equal(r.failed[0].id, "m1");
    assert_string_equal(r.failed[0].code, "InvalidParameterValue");
    assert_string_equal(r.failed[0].message, "bad body");
    assert_true(r.failed[0].sender_fault);
    assert_string_equal(r.failed[1].id, "m3");
    assert_string_equal(r.failed[1].message, "");
    assert_false(r.failed[1].sender_fault);
    sqs_batch_result_free(&r);
    assert_int_equal(r.n_ok, 0);

    /* DeleteMessageBatch: Successful entries carry only an Id. */
    const char *del = "{\"Successful\":[{\"Id\":\"d0\"}]}";
    assert_int_equal(sqs_decode_batch_result(del, strlen(del), &r, &err), 0);
    assert_int_equal(r.n_ok, 1);
    assert_string_equal(r.ok_ids[0], "d0");
    assert_null(r.ok_message_ids[0]);
    assert_int_equal(r.n_failed, 0);
    sqs_batch_result_free(&r);

    const char *bad[] = {
        "{\"Successful\":{}}",
        "{\"Failed\":\"x\"}",
        "{\"Successful\":[{\"MessageId\":\"m\"}]}",
        "{\"Successful\":[{\"Id\":\"a\"},7]}",
        "{\"Failed\":[{\"Id\":\"a\",\"SenderFault\":1,\"Code\":\"X\"}]}",
        "{\"Failed\":[{\"Id\":\"a\",\"SenderFault\":true}]}",
        "{\"Failed\":[{\"Id\":\"a\",\"Code\":\"X\",\"Message\":[]}]}",
        "[]",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (sqs_decode_batch_result(bad[i], strlen(bad[i]), &r, &err) == 0)
            fail_msg("accepted: %s", bad[i]);
        assert_int_equal(err.kind, SQS_ERR_PARSE);
        assert_int_equal(r.n_ok, 0);
        assert_int_equal(r.n_failed, 0);
        assert_null(r.ok_ids);
    }
}

static void test_decode_queue_url_and_attributes(void **state)
{
    (void)state;
    char *url = NULL;
    struct sqs_error err;
    const char *ok = "{\"QueueUrl\":\"" QURL "\"}";
    assert_int_equal(sqs_decode_get_queue_url(ok, strlen(ok), &url, &err), 0);
    assert_string_equal(url, QURL);
    free(url);
    assert_int_equal(sqs_decode_get_queue_url("{}", 2, &url, &err), -1);
    assert_null(url);
    assert_int_equal(err.kind, SQS_ERR_PARSE);
    assert_int_equal(sqs_decode_get_queue_url("{\"QueueUrl\":[]}", 15, &url, &err), -1);
    assert_non_null(strstr(err.message, "not a string"));

    const char *attrs =
        "{\"Attributes\":{\"ApproximateNumberOfMessages\":\"12\",\"QueueArn\":\"arn:x\"}}";
    char *v = sqs_decode_queue_attribute(attrs, strlen(attrs), "ApproximateNumberOfMessages");
    assert_string_equal(v, "12");
    free(v);
    assert_null(sqs_decode_queue_attribute(attrs, strlen(attrs), "Nope"));
    assert_null(sqs_decode_queue_attribute("{\"Attributes\":5}", 16, "QueueArn"));
    assert_null(sqs_decode_queue_attribute("garbage", 7, "QueueArn"));
}

/* ---- allocation failure: every encoder and decoder, every allocation ------- */

/* Each encoder case renders one fixed request; the walk compares every
 * successful run with the text of the complete one. */
static const struct sqs_attr WALK_ATTRS[] = {{"correlation_id", "c-1"}, {"traceparent", "00-x"}};
static const struct sqs_send_entry WALK_SEND[2] = {
    {.id = "0",
     .body = "{\"order_id\":\"o-1\"}",
     .attrs = WALK_ATTRS,
     .n_attrs = 2,
     .trace_header = "Root=1-5759e988-bd862e3fe1be46a994272793"},
    {.id = "1", .body = "second", .attrs = WALK_ATTRS, .n_attrs = 1}};
static const struct sqs_receipt_entry WALK_RECEIPTS[2] = {{"0", "rh-a", 30}, {"1", "rh-b", 0}};
static const char *const WALK_NAMES[] = {"ApproximateNumberOfMessages", "QueueArn"};

static char *walk_send(void)
{
    return sqs_encode_send_message(QURL, &WALK_SEND[0]);
}
static char *walk_send_batch(void)
{
    return sqs_encode_send_message_batch(QURL, WALK_SEND, 2);
}
static char *walk_receive(void)
{
    return sqs_encode_receive_message(QURL, 10, 20, 30);
}
static char *walk_delete(void)
{
    return sqs_encode_delete_message(QURL, "rh-a");
}
static char *walk_delete_batch(void)
{
    return sqs_encode_delete_message_batch(QURL, WALK_RECEIPTS, 2);
}
static char *walk_visibility(void)
{
    return sqs_encode_change_visibility(QURL, "rh-a", 60);
}
static char *walk_visibility_batch(void)
{
    return sqs_encode_change_visibility_batch(QURL, WALK_RECEIPTS, 2);
}
static char *walk_queue_url(void)
{
    return sqs_encode_get_queue_url("orders");
}
static char *walk_queue_attributes(void)
{
    return sqs_encode_get_queue_attributes(QURL, WALK_NAMES, 2);
}

struct encoder_case {
    const char *name;
    char *(*encode)(void);
    char *expected;
};

static int walk_encoder(void *arg)
{
    struct encoder_case *c = arg;
    char *s = c->encode();
    if (!s)
        return ALLOC_FAIL_ERROR;
    int rc = strcmp(s, c->expected) == 0 ? ALLOC_FAIL_OK : ALLOC_FAIL_WRONG;
    free(s);
    return rc;
}

/* min_runs > 1 for cases that allocate, so a failure was really injected. */
static void walk(const char *name, int (*fn)(void *), void *arg, unsigned long min_runs)
{
    struct alloc_fail_walk w;
    if (alloc_fail_walk(fn, arg, 100000, &w) != 0)
        fail_msg("%s: %s", name, w.why);
    if (w.runs < min_runs)
        fail_msg("%s: %lu run(s), at least %lu expected (is alloc_fail linked in?)", name, w.runs,
                 min_runs);
}

static int walk_decode_receive(void *arg)
{
    const char *json = arg;
    struct sqs_received r;
    struct sqs_error err;
    if (sqs_decode_receive_message(json, strlen(json), &r, &err) != 0)
        return r.msgs || r.rejected || r.n || r.n_rejected || err.kind != SQS_ERR_PARSE
                   ? ALLOC_FAIL_WRONG
                   : ALLOC_FAIL_ERROR;
    bool ok;
    if (json == RECEIVE_FULL)
        ok = r.n == 2 && r.n_rejected == 0 && strcmp(r.msgs[0].receipt_handle, "rh-1") == 0 &&
             r.msgs[0].n_attrs == 2 && strcmp(r.msgs[0].trace_header, "Root=1-abc") == 0 &&
             strcmp(r.msgs[1].body, "plain") == 0;
    else
        ok = r.n == 2 && r.n_rejected == 3 && strcmp(r.msgs[1].message_id, "good-2") == 0 &&
             strcmp(r.rejected[1].message_id, "bad-body") == 0;
    sqs_received_free(&r);
    return ok ? ALLOC_FAIL_OK : ALLOC_FAIL_WRONG;
}

static int walk_decode_entry(void *arg)
{
    (void)arg;
    const char *e =
        "{\"MessageId\":\"m\",\"ReceiptHandle\":\"rh\",\"Body\":\"b\","
        "\"Attributes\":{\"AWSTraceHeader\":\"Root=1-abc\"},"
        "\"MessageAttributes\":{\"k\":{\"DataType\":\"String\",\"StringValue\":\"v\"}}}";
    struct sqs_message m;
    struct sqs_rejected rej;
    struct sqs_error err;
    int rc = sqs_decode_receive_entry(e, strlen(e), &m, &rej, &err);
    if (rc < 0)
        return m.message_id ? ALLOC_FAIL_WRONG : ALLOC_FAIL_ERROR;
    bool ok = rc == 0 && strcmp(sqs_message_attr(&m, "k"), "v") == 0 &&
              strcmp(m.trace_header, "Root=1-abc") == 0;
    sqs_message_clear(&m);
    return ok ? ALLOC_FAIL_OK : ALLOC_FAIL_WRONG;
}

static int walk_decode_batch(void *arg)
{
    (void)arg;
    const char *json = "{\"Successful\":[{\"Id\":\"0\",\"MessageId\":\"m-0\"}],"
                       "\"Failed\":[{\"Id\":\"1\",\"SenderFault\":true,\"Code\":\"X\"}]}";
    struct sqs_batch_result r;
    struct sqs_error err;
    if (sqs_decode_batch_result(json, strlen(json), &r, &err) != 0)
        return r.ok_ids || r.failed || r.n_ok || r.n_failed ? ALLOC_FAIL_WRONG : ALLOC_FAIL_ERROR;
    bool ok = r.n_ok == 1 && strcmp(r.ok_message_ids[0], "m-0") == 0 && r.n_failed == 1 &&
              strcmp(r.failed[0].message, "") == 0 && r.failed[0].sender_fault;
    sqs_batch_result_free(&r);
    return ok ? ALLOC_FAIL_OK : ALLOC_FAIL_WRONG;
}

static int walk_decode_small(void *arg)
{
    (void)arg;
    struct sqs_error err;
    char id[64];
    const char *send = "{\"MessageId\":\"m-9\"}";
    if (sqs_decode_send_message(send, strlen(send), id, sizeof(id), &err) != 0)
        return id[0] ? ALLOC_FAIL_WRONG : ALLOC_FAIL_ERROR;
    if (strcmp(id, "m-9") != 0)
        return ALLOC_FAIL_WRONG;
    char *url;
    const char *u = "{\"QueueUrl\":\"" QURL "\"}";
    if (sqs_decode_get_queue_url(u, strlen(u), &url, &err) != 0)
        return url ? ALLOC_FAIL_WRONG : ALLOC_FAIL_ERROR;
    bool ok = strcmp(url, QURL) == 0;
    free(url);
    const char *a = "{\"Attributes\":{\"QueueArn\":\"arn:x\"}}";
    char *v = sqs_decode_queue_attribute(a, strlen(a), "QueueArn");
    if (!v)
        return ALLOC_FAIL_ERROR;
    ok = ok && strcmp(v, "arn:x") == 0;
    free(v);
    return ok ? ALLOC_FAIL_OK : ALLOC_FAIL_WRONG;
}

static int walk_decode_error(void *arg)
{
    (void)arg;
    struct sqs_error err;
    const char *b = "{\"__type\":\"com.amazonaws.sqs#QueueDoesNotExist\",\"message\":\"gone\"}";
    sqs_decode_error(400, b, strlen(b), &err);
    /* without memory the body cannot be parsed: still a CLIENT error with a message */
    if (err.kind != SQS_ERR_CLIENT || err.http_status != 400 || !err.message[0])
        return ALLOC_FAIL_WRONG;
    return strcmp(err.type, "QueueDoesNotExist") == 0 ? ALLOC_FAIL_OK : ALLOC_FAIL_ERROR;
}

/* Issue 10's sweep: with each allocation in turn failing, every SQS encoder
 * and decoder returns a clean error (or a correct result) and frees all it
 * took; the final run, where nothing fails, gives the normal result. */
static void test_alloc_failure_walks_every_encoder_and_decoder(void **state)
{
    (void)state;
    struct encoder_case enc[] = {
        {"SendMessage", walk_send, NULL},
        {"SendMessageBatch", walk_send_batch, NULL},
        {"ReceiveMessage", walk_receive, NULL},
        {"DeleteMessage", walk_delete, NULL},
        {"DeleteMessageBatch", walk_delete_batch, NULL},
        {"ChangeMessageVisibility", walk_visibility, NULL},
        {"ChangeMessageVisibilityBatch", walk_visibility_batch, NULL},
        {"GetQueueUrl", walk_queue_url, NULL},
        {"GetQueueAttributes", walk_queue_attributes, NULL},
    };
    alloc_fail_jansson(true); /* building and dumping survive any failed allocation */
    for (size_t i = 0; i < sizeof(enc) / sizeof(enc[0]); i++) {
        enc[i].expected = enc[i].encode();
        assert_non_null(enc[i].expected);
        walk(enc[i].name, walk_encoder, &enc[i], 2);
        free(enc[i].expected);
    }
    /* jansson's parser does not (see alloc_fail.h): the decoders' own allocations */
    alloc_fail_jansson(false);
    walk("ReceiveMessage answer", walk_decode_receive, (void *)RECEIVE_FULL, 2);
    walk("ReceiveMessage answer with rejected entries", walk_decode_receive, (void *)FAULT4_ANSWER,
         2);
    walk("ReceiveMessage entry", walk_decode_entry, NULL, 2);
    walk("batch answer", walk_decode_batch, NULL, 2);
    walk("SendMessage/GetQueueUrl/GetQueueAttributes answers", walk_decode_small, NULL, 2);
    walk("error answer", walk_decode_error, NULL, 1); /* only jansson allocates: leaks checked */

    /* The counter itself: a leak is caught. */
    alloc_fail_arm(0);
    char *leak = strdup("x");
    struct alloc_fail_stats st = alloc_fail_disarm();
    assert_int_equal(st.live, 1);
    assert_int_equal(st.allocations, 1);
    free(leak);
}

/* ---- error classification ------------------------------------------------ */

static void classify(long status, const char *body, enum sqs_error_kind kind, const char *type)
{
    struct sqs_error err;
    sqs_decode_error(status, body, body ? strlen(body) : 0, &err);
    if (err.kind != kind)
        fail_msg("HTTP %ld %s: kind %d, expected %d", status, body ? body : "(null)", err.kind,
                 kind);
    assert_int_equal(err.http_status, status);
    assert_string_equal(err.type, type);
    assert_true(err.message[0] != '\0');
}

static void test_error_classification(void **state)
{
    (void)state;
    const char *throttles[] = {
        "ThrottlingException",      "RequestThrottled",          "Throttling",
        "TooManyRequestsException", "RequestThrottledException", "KmsThrottled"};
    for (size_t i = 0; i < sizeof(throttles) / sizeof(throttles[0]); i++) {
        char body[256];
        snprintf(body, sizeof(body), "{\"__type\":\"com.amazonaws.sqs#%s\",\"message\":\"slow\"}",
                 throttles[i]);
        classify(400, body, SQS_ERR_THROTTLED, throttles[i]);
    }
    classify(429, "", SQS_ERR_THROTTLED, "");
    classify(429, "{\"__type\":\"Whatever\"}", SQS_ERR_THROTTLED, "Whatever");
    classify(500, "{\"__type\":\"com.amazonaws.sqs#InternalError\"}", SQS_ERR_SERVER,
             "InternalError");
    classify(503, "<html>Service Unavailable</html>", SQS_ERR_SERVER, "");
    classify(400, "{\"__type\":\"com.amazonaws.sqs#QueueDoesNotExist\",\"message\":\"gone\"}",
             SQS_ERR_CLIENT, "QueueDoesNotExist");
    classify(403, "{\"__type\":\"AccessDeniedException\",\"Message\":\"no\"}", SQS_ERR_CLIENT,
             "AccessDeniedException");
    classify(400, "{\"__type\":\"InvalidSignatureException:http://internal.amazon.com/\"}",
             SQS_ERR_CLIENT, "InvalidSignatureException");
    classify(400, "", SQS_ERR_CLIENT, "");
    classify(400, NULL, SQS_ERR_CLIENT, "");
    classify(404, "not json at all", SQS_ERR_CLIENT, "");
    classify(400, "{\"__type\":5}", SQS_ERR_CLIENT, "");

    struct sqs_error err;
    const char *b = "{\"__type\":\"com.amazonaws.sqs#QueueDoesNotExist\",\"message\":"
                    "\"The specified queue does not exist.\"}";
    sqs_decode_error(400, b, strlen(b), &err);
    assert_non_null(strstr(err.message, "The specified queue does not exist."));
    assert_false(sqs_error_retryable(&err));
    const char *b2 = "{\"__type\":\"X\",\"Message\":\"capital M\"}";
    sqs_decode_error(400, b2, strlen(b2), &err);
    assert_non_null(strstr(err.message, "capital M"));
    sqs_decode_error(502, "\x01\x02<h1>Bad Gateway</h1>", 20, &err);
    assert_non_null(strstr(err.message, "Bad Gateway"));
    assert_null(strchr(err.message, '\x01'));
    assert_true(sqs_error_retryable(&err));

    struct sqs_error e = {.kind = SQS_ERR_TRANSPORT};
    assert_true(sqs_error_retryable(&e));
    e.kind = SQS_ERR_THROTTLED;
    assert_true(sqs_error_retryable(&e));
    e.kind = SQS_ERR_SERVER;
    assert_true(sqs_error_retryable(&e));
    e.kind = SQS_ERR_CLIENT;
    assert_false(sqs_error_retryable(&e));
    e.kind = SQS_ERR_PARSE;
    assert_false(sqs_error_retryable(&e));
    e.kind = SQS_ERR_CREDENTIALS;
    assert_false(sqs_error_retryable(&e));
    assert_false(sqs_error_retryable(NULL));
}

/* ---- configuration ------------------------------------------------------- */

static void test_config_defaults_and_region(void **state)
{
    (void)state;
    struct sqs_config c;
    char err[256] = "";

    env_clear();
    assert_int_equal(sqs_config_from_env(&c, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "AWS_REGION"));

    setenv("AWS_DEFAULT_REGION", "us-west-2", 1);
    assert_int_equal(sqs_config_from_env(&c, err, sizeof(err)), 0);
    assert_string_equal(c.region, "us-west-2");
    assert_string_equal(c.endpoint, "https://sqs.us-west-2.amazonaws.com");
    assert_true(c.verify_tls);
    assert_int_equal(c.max_attempts, 5);
    assert_int_equal(c.connect_timeout_ms, 2000);
    assert_int_equal(c.request_timeout_ms, 30000);
    assert_true(c.backoff_base_ms > 0);
    assert_true(c.backoff_cap_ms >= c.backoff_base_ms);

    setenv("AWS_REGION", "eu-central-1", 1); /* wins over AWS_DEFAULT_REGION */
    assert_int_equal(sqs_config_from_env(&c, err, sizeof(err)), 0);
    assert_string_equal(c.region, "eu-central-1");
    assert_string_equal(c.endpoint, "https://sqs.eu-central-1.amazonaws.com");

    setenv("AWS_REGION", "", 1); /* empty counts as unset */
    assert_int_equal(sqs_config_from_env(&c, err, sizeof(err)), 0);
    assert_string_equal(c.region, "us-west-2");

    setenv("AWS_REGION", "eu west", 1);
    assert_int_equal(sqs_config_from_env(&c, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "AWS_REGION"));
    env_clear();
}

static void test_config_endpoint_precedence(void **state)
{
    (void)state;
    struct sqs_config c;
    char err[256] = "";

    env_clear();
    setenv("AWS_REGION", "us-east-1", 1);
    setenv("AWS_ENDPOINT_URL", "http://localstack:4566/", 1);
    assert_int_equal(sqs_config_from_env(&c, err, sizeof(err)), 0);
    assert_string_equal(c.endpoint, "http://localstack:4566");

    setenv("AWS_ENDPOINT_URL_SQS", "http://elasticmq:9324", 1);
    assert_int_equal(sqs_config_from_env(&c, err, sizeof(err)), 0);
    assert_string_equal(c.endpoint, "http://elasticmq:9324");
    assert_true(c.verify_tls);

    setenv("AWS_ENDPOINT_URL_SQS", "ftp://elasticmq:9324", 1);
    assert_int_equal(sqs_config_from_env(&c, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "AWS_ENDPOINT_URL_SQS"));

    unsetenv("AWS_ENDPOINT_URL_SQS");
    setenv("AWS_ENDPOINT_URL", "localstack:4566", 1);
    assert_int_equal(sqs_config_from_env(&c, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "AWS_ENDPOINT_URL"));
    assert_null(strstr(err, "AWS_ENDPOINT_URL_SQS"));

    setenv("AWS_ENDPOINT_URL", "https://", 1);
    assert_int_equal(sqs_config_from_env(&c, err, sizeof(err)), -1);
    setenv("AWS_ENDPOINT_URL", "https://host/some/path", 1);
    assert_int_equal(sqs_config_from_env(&c, err, sizeof(err)), -1);
    setenv("AWS_ENDPOINT_URL", "https://sqs.example.com///", 1);
    assert_int_equal(sqs_config_from_env(&c, err, sizeof(err)), 0);
    assert_string_equal(c.endpoint, "https://sqs.example.com");
    env_clear();
}

static void test_config_tunables(void **state)
{
    (void)state;
    struct sqs_config c;
    char err[256] = "";

    env_clear();
    setenv("AWS_REGION", "us-east-1", 1);
    setenv("SQS_MAX_ATTEMPTS", "7", 1);
    setenv("SQS_CONNECT_TIMEOUT_MS", "150", 1);
    setenv("SQS_REQUEST_TIMEOUT_MS", "9000", 1);
    assert_int_equal(sqs_config_from_env(&c, err, sizeof(err)), 0);
    assert_int_equal(c.max_attempts, 7);
    assert_int_equal(c.connect_timeout_ms, 150);
    assert_int_equal(c.request_timeout_ms, 9000);

    const char *bad_attempts[] = {"0", "21", "abc", "5x", "-1", "99999999999999999999"};
    for (size_t i = 0; i < sizeof(bad_attempts) / sizeof(bad_attempts[0]); i++) {
        setenv("SQS_MAX_ATTEMPTS", bad_attempts[i], 1);
        err[0] = '\0';
        if (sqs_config_from_env(&c, err, sizeof(err)) != -1)
            fail_msg("SQS_MAX_ATTEMPTS=%s accepted", bad_attempts[i]);
        assert_non_null(strstr(err, "SQS_MAX_ATTEMPTS"));
    }
    setenv("SQS_MAX_ATTEMPTS", "20", 1);
    assert_int_equal(sqs_config_from_env(&c, err, sizeof(err)), 0);
    setenv("SQS_CONNECT_TIMEOUT_MS", "soon", 1);
    assert_int_equal(sqs_config_from_env(&c, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "SQS_CONNECT_TIMEOUT_MS"));
    unsetenv("SQS_CONNECT_TIMEOUT_MS");
    setenv("SQS_REQUEST_TIMEOUT_MS", "0", 1);
    assert_int_equal(sqs_config_from_env(&c, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "SQS_REQUEST_TIMEOUT_MS"));
    env_clear();
}

/* Fault 5 (issue 10), the URL part: an endpoint with invalid UTF-8 (or any
 * byte that is not printable ASCII) reached libcurl and jansson and crashed
 * the worker on its first receive. Every URL setting is now checked at start
 * and the error names the variable. */
static void test_fault5_endpoint_urls_are_validated(void **state)
{
    (void)state;
    struct sqs_config c;
    char err[256];
    const char *bad[] = {
        "http://sqs.\xff\xfe.example",  /* invalid UTF-8 */
        "http://s\xc3\xa9.example.com", /* valid UTF-8, not ASCII */
        "http://host:4566/\x01",
        "http://host name:4566",
        "http://host\t:1",
        "http://user:pw@host:4566",
        "http://host:0",
        "http://host:65536",
        "http://host:",
        "http://host:45a",
        "http://:4566",
        "http://",
        "https:///path",
        "gopher://host",
        "http//host",
        "http://[::1",
        "http://[]:1",
        "http://[::1]x",
        "http://ho%st",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        env_clear();
        setenv("AWS_REGION", "us-east-1", 1);
        setenv("AWS_ENDPOINT_URL_SQS", bad[i], 1);
        err[0] = '\0';
        if (sqs_config_from_env(&c, err, sizeof(err)) != -1)
            fail_msg("AWS_ENDPOINT_URL_SQS=%s accepted", bad[i]);
        if (strncmp(err, "AWS_ENDPOINT_URL_SQS ", 21) != 0)
            fail_msg("error does not start with the variable: %s", err);
        /* the message is printable ASCII: safe on one stderr line */
        for (const char *p = err; *p; p++)
            assert_true(*p >= 0x20 && *p < 0x7f);
        char why[128];
        assert_false(aws_url_valid(bad[i], why, sizeof(why)));
        assert_true(why[0] != '\0');
    }
    const char *good[] = {"http://localhost:4566",   "https://sqs.eu-west-1.amazonaws.com",
                          "http://127.0.0.1:1",      "http://[::1]:65535",
                          "HTTPS://Sqs.Example.com", "http://elasticmq:9324/"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        env_clear();
        setenv("AWS_REGION", "us-east-1", 1);
        setenv("AWS_ENDPOINT_URL", good[i], 1);
        if (sqs_config_from_env(&c, err, sizeof(err)) != 0)
            fail_msg("AWS_ENDPOINT_URL=%s refused: %s", good[i], err);
    }
    /* Queue URLs (which the programs check with the same function) have a path. */
    char why[128];
    assert_true(aws_url_valid(QURL, why, sizeof(why)));
    assert_true(aws_url_valid("http://localhost:4566/000000000000/orders", why, sizeof(why)));
    assert_false(
        aws_url_valid("http://localhost:4566/000000000000/ord\xc3\xa9rs", why, sizeof(why)));
    assert_false(aws_url_valid(NULL, why, sizeof(why)));
    assert_false(aws_url_valid("", why, sizeof(why)));
    env_clear();
}

/* ---- transport: SQS played by the shared HTTP stub ---------------------- */

/* One scripted answer, in the order the tests list them. */
struct reply {
    int status;
    const char *body;
    bool hang_up;    /* close the connection without answering */
    int delay_ms;    /* wait before answering */
    size_t fill_len; /* answer 200 with this many bytes of body */
};

struct fixture {
    struct http_stub *srv;
    struct creds_provider *creds;
    struct sqs_client *client;
};

static void fixture_start(struct fixture *f, const struct reply *script, size_t n,
                          const char *session_token)
{
    struct aws_credentials c;
    struct sqs_config cfg;

    memset(&c, 0, sizeof(c));
    strcpy(c.access_key_id, "AKID");
    strcpy(c.secret_access_key, SECRET);
    if (session_token)
        strcpy(c.session_token, session_token);
    f->srv = http_stub_start();
    assert_non_null(f->srv);
    for (size_t i = 0; i < n; i++) {
        const struct http_stub_response r = {.status = script[i].status,
                                             .body = script[i].body,
                                             .content_type = "application/x-amz-json-1.0",
                                             .headers = "x-amzn-RequestId: 00000000-test\r\n",
                                             .delay_ms = script[i].delay_ms,
                                             .hang_up = script[i].hang_up,
                                             .fill_len = script[i].fill_len};
        http_stub_push(f->srv, &r);
    }
    f->creds = creds_provider_new_static(&c);
    assert_non_null(f->creds);

    memset(&cfg, 0, sizeof(cfg));
    snprintf(cfg.endpoint, sizeof(cfg.endpoint), "%s", http_stub_url(f->srv));
    strcpy(cfg.region, "eu-west-1");
    cfg.verify_tls = true;
    cfg.connect_timeout_ms = 1000;
    cfg.request_timeout_ms = 5000;
    cfg.max_attempts = 5;
    cfg.backoff_base_ms = 1;
    cfg.backoff_cap_ms = 5;
    f->client = sqs_client_new(&cfg, f->creds);
    assert_non_null(f->client);
}

static void fixture_stop(struct fixture *f)
{
    sqs_client_free(f->client);
    creds_provider_free(f->creds);
    http_stub_stop(f->srv);
}

static int requests(struct fixture *f)
{
    return (int)http_stub_requests(f->srv);
}

static int connections(struct fixture *f)
{
    return (int)http_stub_connections(f->srv);
}

/* A header of the latest request, "" when absent (so string asserts fail cleanly). */
static const char *last_header(struct fixture *f, const char *name)
{
    const char *v = http_stub_header(http_stub_last(f->srv), name);
    return v ? v : "";
}

static const char *last_body(struct fixture *f)
{
    const struct http_stub_request *r = http_stub_last(f->srv);
    return r ? r->body : "";
}

/* Why an SQS request is malformed, or NULL when it is what SQS expects. */
static const char *sqs_request_problem(const struct http_stub_request *r)
{
    const char *target = http_stub_header(r, "X-Amz-Target");
    const char *ctype = http_stub_header(r, "Content-Type");
    const char *auth = http_stub_header(r, "Authorization");
    if (strcmp(r->method, "POST") != 0 || strcmp(r->target, "/") != 0)
        return "request line is not POST /";
    if (!target || strncmp(target, "AmazonSQS.", 10) != 0)
        return "X-Amz-Target missing or wrong";
    if (!ctype || strcmp(ctype, "application/x-amz-json-1.0") != 0)
        return "Content-Type wrong";
    if (!auth || strncmp(auth, "AWS4-HMAC-SHA256 Credential=AKID/", 33) != 0)
        return "Authorization missing or wrong";
    if (!http_stub_header(r, "X-Amz-Date"))
        return "X-Amz-Date missing";
    if (http_stub_header(r, "Expect"))
        return "Expect header sent";
    return NULL;
}

static void assert_no_bad_requests(struct fixture *f)
{
    for (size_t i = 0; i < http_stub_requests(f->srv); i++) {
        const char *why = sqs_request_problem(http_stub_request(f->srv, i));
        if (why)
            fail_msg("request %zu is malformed: %s", i, why);
    }
}

static void assert_no_secret(const struct sqs_error *err)
{
    assert_null(strstr(err->message, SECRET));
    assert_null(strstr(err->message, TOKEN));
    assert_null(strstr(err->message, "Signature="));
}

static const char OK_SEND[] = "{\"MD5OfMessageBody\":\"acbd18db4cc2f85cedef654fccc4a4d8\","
                              "\"MessageId\":\"msg-0001\"}";
static const char QDNE[] = "{\"__type\":\"com.amazonaws.sqs#QueueDoesNotExist\","
                           "\"message\":\"The specified queue does not exist.\"}";

static void test_transport_retries_5xx(void **state)
{
    (void)state;
    struct fixture f;
    const struct reply script[] = {{500, "{\"__type\":\"InternalError\"}", false, 0, 0},
                                   {500, "", false, 0, 0},
                                   {200, OK_SEND, false, 0, 0}};
    fixture_start(&f, script, 3, NULL);

    char *resp = NULL;
    size_t len = 0;
    struct sqs_error err;
    struct sqs_send_entry e = {.body = "{\"order_id\":\"o-1\"}"};
    char *body = sqs_encode_send_message(QURL, &e);
    assert_int_equal(sqs_call(f.client, SQS_SEND_MESSAGE, body, 0, &resp, &len, &err), 0);
    assert_int_equal(err.kind, SQS_ERR_NONE);
    assert_int_equal(requests(&f), 3);
    assert_int_equal(len, strlen(OK_SEND));
    assert_string_equal(resp, OK_SEND);
    assert_string_equal(last_header(&f, "X-Amz-Target"), "AmazonSQS.SendMessage");
    assert_string_equal(last_body(&f), body);
    assert_no_bad_requests(&f);
    free(resp);
    free(body);
    fixture_stop(&f);
}

static void test_transport_client_error_not_retried(void **state)
{
    (void)state;
    struct fixture f;
    const struct reply script[] = {{400, QDNE, false, 0, 0}, {200, "{}", false, 0, 0}};
    fixture_start(&f, script, 2, TOKEN);

    char *url = (char *)1;
    struct sqs_error err;
    assert_int_equal(sqs_get_queue_url(f.client, "orders", &url, &err), -1);
    assert_null(url);
    assert_int_equal(requests(&f), 1);
    assert_int_equal(err.kind, SQS_ERR_CLIENT);
    assert_int_equal(err.http_status, 400);
    assert_string_equal(err.type, "QueueDoesNotExist");
    assert_non_null(strstr(err.message, "GetQueueUrl"));
    assert_non_null(strstr(err.message, "does not exist"));
    assert_false(sqs_error_retryable(&err));
    assert_no_secret(&err);
    /* the session token travels in its own header */
    assert_string_equal(last_header(&f, "X-Amz-Security-Token"), TOKEN);
    assert_no_bad_requests(&f);
    fixture_stop(&f);
}

static void test_transport_throttling_retried(void **state)
{
    (void)state;
    struct fixture f;
    const struct reply script[] = {
        {400, "{\"__type\":\"com.amazonaws.sqs#RequestThrottled\",\"message\":\"slow down\"}",
         false, 0, 0},
        {429, "", false, 0, 0},
        {200, "{\"QueueUrl\":\"" QURL "\"}", false, 0, 0}};
    fixture_start(&f, script, 3, NULL);

    char *url = NULL;
    struct sqs_error err;
    assert_int_equal(sqs_get_queue_url(f.client, "orders", &url, &err), 0);
    assert_string_equal(url, QURL);
    assert_int_equal(requests(&f), 3);
    assert_string_equal(last_header(&f, "X-Amz-Target"), "AmazonSQS.GetQueueUrl");
    assert_no_bad_requests(&f);
    free(url);
    fixture_stop(&f);
}

static void test_transport_gives_up_after_max_attempts(void **state)
{
    (void)state;
    struct fixture f;
    const struct reply script[] = {{503, "", false, 0, 0}};
    fixture_start(&f, script, 1, TOKEN);

    struct sqs_error err;
    assert_int_equal(sqs_delete_message(f.client, QURL, "rh-1", &err), -1);
    assert_int_equal(requests(&f), 5);
    assert_int_equal(err.kind, SQS_ERR_SERVER);
    assert_int_equal(err.http_status, 503);
    assert_non_null(strstr(err.message, "after 5 attempts"));
    assert_no_secret(&err);
    assert_no_bad_requests(&f);
    fixture_stop(&f);
}

static void test_transport_keep_alive(void **state)
{
    (void)state;
    struct fixture f;
    const struct reply script[] = {{500, "", false, 0, 0}, {200, OK_SEND, false, 0, 0}};
    fixture_start(&f, script, 2, NULL);

    struct sqs_send_entry e = {.body = "{\"order\":1}"};
    char id[64];
    struct sqs_error err;
    for (int i = 0; i < 4; i++) {
        assert_int_equal(sqs_send_message(f.client, QURL, &e, id, sizeof(id), &err), 0);
        assert_string_equal(id, "msg-0001");
    }
    assert_int_equal(requests(&f), 5); /* one retried 500, four answers */
    assert_int_equal(connections(&f), 1);
    assert_no_bad_requests(&f);
    fixture_stop(&f);
}

static void test_transport_hang_up_retried(void **state)
{
    (void)state;
    struct fixture f;
    const struct reply script[] = {{0, NULL, true, 0, 0}, {200, "", false, 0, 0}};
    fixture_start(&f, script, 2, NULL);

    struct sqs_error err;
    char *resp = NULL;
    size_t len = 0;
    assert_int_equal(sqs_call(f.client, SQS_DELETE_MESSAGE, "{}", 0, &resp, &len, &err), 0);
    assert_int_equal(requests(&f), 2);
    /* an empty 2xx body reads as an empty object */
    assert_string_equal(resp, "{}");
    assert_int_equal(len, 2);
    free(resp);
    fixture_stop(&f);
}

static void test_transport_timeout_and_refused(void **state)
{
    (void)state;
    struct fixture f;
    const struct reply script[] = {{200, "{}", false, 400, 0}};
    fixture_start(&f, script, 1, NULL);
    struct sqs_config cfg = *sqs_client_config(f.client);
    cfg.request_timeout_ms = 100;
    cfg.max_attempts = 2;
    struct sqs_client *c = sqs_client_new(&cfg, f.creds);
    assert_non_null(c);

    char *resp = NULL;
    struct sqs_error err;
    assert_int_equal(sqs_call(c, SQS_DELETE_MESSAGE, "{}", 0, &resp, NULL, &err), -1);
    assert_null(resp);
    assert_int_equal(err.kind, SQS_ERR_TRANSPORT);
    assert_int_equal(err.http_status, 0);
    assert_true(sqs_error_retryable(&err));
    assert_non_null(strstr(err.message, "after 2 attempts"));
    sqs_client_free(c);
    fixture_stop(&f);

    /* A port nobody listens on: connection refused, retried, then reported. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof(a);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
    close(fd);
    snprintf(cfg.endpoint, sizeof(cfg.endpoint), "http://127.0.0.1:%d", ntohs(a.sin_port));
    cfg.max_attempts = 3;
    struct aws_credentials cr = {.access_key_id = "AKID", .secret_access_key = SECRET};
    struct creds_provider *p = creds_provider_new_static(&cr);
    c = sqs_client_new(&cfg, p);
    assert_non_null(c);
    assert_int_equal(sqs_call(c, SQS_DELETE_MESSAGE, "{}", 0, &resp, NULL, &err), -1);
    assert_int_equal(err.kind, SQS_ERR_TRANSPORT);
    assert_non_null(strstr(err.message, "after 3 attempts"));
    assert_no_secret(&err);
    sqs_client_free(c);
    creds_provider_free(p);
}

static void test_transport_response_cap(void **state)
{
    (void)state;
    struct fixture f;
    const struct reply script[] = {{200, NULL, false, 0, 9u * 1024 * 1024}};
    fixture_start(&f, script, 1, NULL);

    char *resp = NULL;
    struct sqs_error err;
    assert_int_equal(sqs_call(f.client, SQS_RECEIVE_MESSAGE, "{}", 0, &resp, NULL, &err), -1);
    assert_null(resp);
    assert_int_equal(err.kind, SQS_ERR_PARSE);
    assert_non_null(strstr(err.message, "larger than"));
    assert_int_equal(requests(&f), 1); /* not retried */
    fixture_stop(&f);
}

/* curl asks for "100-continue" on bodies over 1 MiB and would wait for it; a
 * full batch can be that large, so the header must be suppressed. */
static void test_transport_no_expect_continue(void **state)
{
    (void)state;
    struct fixture f;
    const struct reply script[] = {{200, "{}", false, 0, 0}};
    fixture_start(&f, script, 1, NULL);

    size_t n = 3u << 19; /* 1.5 MiB */
    char *body = malloc(n + 1);
    assert_non_null(body);
    memset(body, ' ', n);
    body[0] = '{';
    body[n - 1] = '}';
    body[n] = '\0';
    char *resp = NULL;
    struct sqs_error err;
    assert_int_equal(sqs_call(f.client, SQS_SEND_MESSAGE_BATCH, body, 0, &resp, NULL, &err), 0);
    assert_string_equal(resp, "{}");
    assert_int_equal(requests(&f), 1);
    assert_no_bad_requests(&f);
    free(resp);
    free(body);
    fixture_stop(&f);
}

/* The signature must cover exactly the headers that went on the wire (a Host
 * with the port, the target, the content type): recompute it from what the
 * server saw. */
static void test_transport_signature_matches_wire(void **state)
{
    (void)state;
    struct fixture f;
    const struct reply script[] = {{200, "{}", false, 0, 0}};
    fixture_start(&f, script, 1, TOKEN);

    struct sqs_error err;
    assert_int_equal(sqs_change_message_visibility(f.client, QURL, "rh-9", 30, &err), 0);
    assert_no_bad_requests(&f);

    char host[64];
    snprintf(host, sizeof(host), "127.0.0.1:%d", http_stub_port(f.srv));
    assert_string_equal(last_header(&f, "Host"), host);
    assert_string_equal(last_header(&f, "X-Amz-Target"), "AmazonSQS.ChangeMessageVisibility");

    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    assert_non_null(strptime(last_header(&f, "X-Amz-Date"), "%Y%m%dT%H%M%SZ", &tm));
    struct aws_credentials c;
    memset(&c, 0, sizeof(c));
    strcpy(c.access_key_id, "AKID");
    strcpy(c.secret_access_key, SECRET);
    strcpy(c.session_token, TOKEN);
    const struct sigv4_header hdrs[] = {{"Host", last_header(&f, "Host")},
                                        {"Content-Type", last_header(&f, "Content-Type")},
                                        {"X-Amz-Target", last_header(&f, "X-Amz-Target")}};
    const struct sigv4_request req = {.method = "POST",
                                      .path = "/",
                                      .headers = hdrs,
                                      .n_headers = 3,
                                      .body = last_body(&f),
                                      .body_len = strlen(last_body(&f))};
    const struct sigv4_signing s = {.region = "eu-west-1",
                                    .service = "sqs",
                                    .creds = &c,
                                    .now = timegm(&tm),
                                    .normalize_path = true};
    struct sigv4_result out;
    char serr[256];
    assert_int_equal(sigv4_sign(&req, &s, &out, serr, sizeof(serr)), 0);
    assert_string_equal(out.amz_date, last_header(&f, "X-Amz-Date"));
    assert_string_equal(out.authorization, last_header(&f, "Authorization"));
    assert_non_null(strstr(last_header(&f, "Authorization"), "/eu-west-1/sqs/aws4_request"));
    sigv4_result_free(&out);

    json_t *j = parse(last_body(&f));
    assert_string_equal(jstr(j, "ReceiptHandle"), "rh-9");
    json_decref(j);
    fixture_stop(&f);
}

static void test_transport_wrappers(void **state)
{
    (void)state;
    struct fixture f;
    const struct reply script[] = {
        {200, RECEIVE_FULL, false, 0, 0},
        {200,
         "{\"Successful\":[{\"Id\":\"a\",\"MessageId\":\"m-a\"}],"
         "\"Failed\":[{\"Id\":\"b\",\"SenderFault\":true,\"Code\":\"InvalidMessageContents\"}]}",
         false, 0, 0},
        {200, "{\"Successful\":[{\"Id\":\"d0\"}]}", false, 0, 0},
        {200, "{\"Successful\":[{\"Id\":\"v0\"}]}", false, 0, 0},
        {200, "", false, 0, 0}};
    fixture_start(&f, script, 5, NULL);

    struct sqs_received rcv;
    struct sqs_error err;
    assert_int_equal(sqs_receive_message(f.client, QURL, 10, 1, &rcv, &err), 0);
    assert_int_equal(rcv.n, 2);
    assert_string_equal(rcv.msgs[0].receipt_handle, "rh-1");
    sqs_received_free(&rcv);
    assert_string_equal(last_header(&f, "X-Amz-Target"), "AmazonSQS.ReceiveMessage");
    json_t *j = parse(last_body(&f));
    assert_int_equal(json_integer_value(json_object_get(j, "WaitTimeSeconds")), 1);
    assert_int_equal(json_integer_value(json_object_get(j, "MaxNumberOfMessages")), 10);
    json_decref(j);

    struct sqs_send_entry e[2] = {{.id = "a", .body = "x"}, {.id = "b", .body = "y"}};
    struct sqs_batch_result r;
    assert_int_equal(sqs_send_message_batch(f.client, QURL, e, 2, &r, &err), 0);
    assert_string_equal(last_header(&f, "X-Amz-Target"), "AmazonSQS.SendMessageBatch");
    assert_int_equal(r.n_ok, 1);
    assert_string_equal(r.ok_message_ids[0], "m-a");
    assert_int_equal(r.n_failed, 1);
    assert_string_equal(r.failed[0].code, "InvalidMessageContents");
    sqs_batch_result_free(&r);

    struct sqs_receipt_entry d[1] = {{"d0", "rh-1", 0}};
    assert_int_equal(sqs_delete_message_batch(f.client, QURL, d, 1, &r, &err), 0);
    assert_string_equal(last_header(&f, "X-Amz-Target"), "AmazonSQS.DeleteMessageBatch");
    assert_int_equal(r.n_ok, 1);
    sqs_batch_result_free(&r);

    struct sqs_receipt_entry v[1] = {{"v0", "rh-1", 45}};
    assert_int_equal(sqs_change_message_visibility_batch(f.client, QURL, v, 1, &r, &err), 0);
    assert_string_equal(last_header(&f, "X-Amz-Target"), "AmazonSQS.ChangeMessageVisibilityBatch");
    assert_string_equal(r.ok_ids[0], "v0");
    sqs_batch_result_free(&r);

    assert_int_equal(sqs_delete_message(f.client, QURL, "rh-1", &err), 0);
    assert_string_equal(last_header(&f, "X-Amz-Target"), "AmazonSQS.DeleteMessage");

    /* Invalid input fails before the network. */
    int before = requests(&f);
    assert_int_equal(sqs_send_message_batch(f.client, QURL, e, 0, &r, &err), -1);
    assert_int_equal(err.kind, SQS_ERR_CLIENT);
    assert_int_equal(sqs_receive_message(f.client, QURL, 11, 1, &rcv, &err), -1);
    assert_int_equal(requests(&f), before);
    assert_int_equal(connections(&f), 1);
    assert_no_bad_requests(&f);
    fixture_stop(&f);
}

/* Fault 1 over the wire: an answer with an empty receipt handle next to a
 * good one. Only the good one is handed out, so the delete that follows
 * carries only its handle and is built and sent. */
static void test_fault1_empty_receipt_handle_over_the_wire(void **state)
{
    (void)state;
    struct fixture f;
    const struct reply script[] = {
        {200,
         "{\"Messages\":[{\"MessageId\":\"m-empty\",\"ReceiptHandle\":\"\",\"Body\":\"x\"},"
         "{\"MessageId\":\"m-ok\",\"ReceiptHandle\":\"rh-ok\",\"Body\":\"y\"}]}",
         false, 0, 0},
        {200, "{\"Successful\":[{\"Id\":\"0\"}]}", false, 0, 0}};
    fixture_start(&f, script, 2, NULL);

    struct sqs_received rcv;
    struct sqs_error err;
    assert_int_equal(sqs_receive_message(f.client, QURL, 10, 0, &rcv, &err), 0);
    assert_int_equal(rcv.n, 1);
    assert_int_equal(rcv.n_rejected, 1);
    assert_string_equal(rcv.rejected[0].message_id, "m-empty");
    assert_false(rcv.rejected[0].has_receipt_handle);

    struct sqs_receipt_entry e[SQS_MAX_BATCH];
    for (size_t i = 0; i < rcv.n; i++)
        e[i] = (struct sqs_receipt_entry){.id = "0", .receipt_handle = rcv.msgs[i].receipt_handle};
    struct sqs_batch_result res;
    assert_int_equal(sqs_delete_message_batch(f.client, QURL, e, rcv.n, &res, &err), 0);
    assert_int_equal(res.n_ok, 1);
    sqs_batch_result_free(&res);
    sqs_received_free(&rcv);
    assert_int_equal(requests(&f), 2);
    assert_string_equal(last_header(&f, "X-Amz-Target"), "AmazonSQS.DeleteMessageBatch");
    json_t *j = parse(last_body(&f));
    json_t *entries = json_object_get(j, "Entries");
    assert_int_equal(json_array_size(entries), 1);
    assert_string_equal(jstr(json_array_get(entries, 0), "ReceiptHandle"), "rh-ok");
    json_decref(j);
    assert_no_bad_requests(&f);
    fixture_stop(&f);
}

/* Fault 4 over the wire, through the worker's path (a request on its own
 * multi handle, decoded from the response buffer). */
static void test_fault4_malformed_entry_over_the_wire(void **state)
{
    (void)state;
    struct fixture f;
    const struct reply script[] = {{200, FAULT4_ANSWER, false, 0, 0}};
    fixture_start(&f, script, 1, NULL);

    struct sqs_request *r = sqs_request_new(f.client, SQS_RECEIVE_MESSAGE,
                                            sqs_encode_receive_message(QURL, 10, 0, 30), NULL);
    assert_non_null(r);
    struct sqs_error err;
    assert_int_equal(sqs_request_prepare(r, 0, &err), 0);
    assert_int_equal(sqs_request_complete(r, curl_easy_perform(sqs_request_easy(r)), &err), 0);
    size_t len;
    const char *resp = sqs_request_response(r, &len);
    struct sqs_received rcv;
    assert_int_equal(sqs_decode_receive_message(resp, len, &rcv, &err), 0);
    assert_fault4_result(&rcv);
    sqs_received_free(&rcv);
    sqs_request_free(r);
    assert_no_bad_requests(&f);
    fixture_stop(&f);
}

/* The worker's path: its own multi handle, retrying on its own schedule. */
static int run_multi(CURLM *multi, CURL *easy, CURLcode *result)
{
    int running = 1;
    assert_int_equal(curl_multi_add_handle(multi, easy), CURLM_OK);
    while (running) {
        assert_int_equal(curl_multi_perform(multi, &running), CURLM_OK);
        if (running)
            assert_int_equal(curl_multi_poll(multi, NULL, 0, 100, NULL), CURLM_OK);
    }
    int left;
    CURLMsg *msg = curl_multi_info_read(multi, &left);
    assert_non_null(msg);
    assert_int_equal(msg->msg, CURLMSG_DONE);
    assert_ptr_equal(msg->easy_handle, easy);
    *result = msg->data.result;
    return curl_multi_remove_handle(multi, easy) == CURLM_OK ? 0 : -1;
}

static void test_request_async(void **state)
{
    (void)state;
    struct fixture f;
    const struct reply script[] = {{500, "", false, 0, 0}, {200, OK_SEND, false, 0, 0}};
    fixture_start(&f, script, 2, NULL);
    int tag = 7;

    struct sqs_send_entry e = {.body = "async"};
    struct sqs_request *r =
        sqs_request_new(f.client, SQS_SEND_MESSAGE, sqs_encode_send_message(QURL, &e), &tag);
    assert_non_null(r);
    assert_ptr_equal(sqs_request_userdata(r), &tag);
    assert_int_equal(sqs_request_action(r), SQS_SEND_MESSAGE);
    assert_int_equal(sqs_request_attempts(r), 0);

    CURLM *multi = curl_multi_init();
    CURLcode rc;
    struct sqs_error err;
    assert_int_equal(sqs_request_prepare(r, 0, &err), 0);
    /* a multi loop finds the request of a finished handle without searching */
    assert_ptr_equal(sqs_request_from_easy(sqs_request_easy(r)), r);
    assert_int_equal(run_multi(multi, sqs_request_easy(r), &rc), 0);
    assert_int_equal(sqs_request_complete(r, rc, &err), -1);
    assert_int_equal(err.kind, SQS_ERR_SERVER);
    assert_true(sqs_error_retryable(&err));
    assert_int_equal(sqs_request_attempts(r), 1);
    int64_t wait = sqs_request_backoff_ms(r);
    assert_true(wait >= 0 && wait <= 1); /* base 1 ms for the first retry */

    assert_int_equal(sqs_request_prepare(r, 0, &err), 0);
    assert_int_equal(run_multi(multi, sqs_request_easy(r), &rc), 0);
    assert_int_equal(sqs_request_complete(r, rc, &err), 0);
    assert_int_equal(sqs_request_attempts(r), 2);
    size_t len;
    const char *resp = sqs_request_response(r, &len);
    assert_int_equal(len, strlen(OK_SEND));
    assert_memory_equal(resp, OK_SEND, len);
    char id[32];
    assert_int_equal(sqs_decode_send_message(resp, len, id, sizeof(id), &err), 0);
    assert_string_equal(id, "msg-0001");
    assert_int_equal(requests(&f), 2);
    assert_no_bad_requests(&f);

    sqs_request_free(r);
    curl_multi_cleanup(multi);
    assert_null(sqs_request_new(f.client, SQS_SEND_MESSAGE, NULL, NULL));
    fixture_stop(&f);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_action_names),
        cmocka_unit_test(test_encode_send_message),
        cmocka_unit_test(test_encode_send_message_rejects),
        cmocka_unit_test(test_encode_send_message_batch),
        cmocka_unit_test(test_encode_receive_message),
        cmocka_unit_test(test_encode_delete_and_visibility),
        cmocka_unit_test(test_encode_queue_lookups),
        cmocka_unit_test(test_decode_receive),
        cmocka_unit_test(test_decode_receive_empty),
        cmocka_unit_test(test_decode_receive_bad),
        cmocka_unit_test(test_fault1_empty_receipt_handle_is_rejected_not_returned),
        cmocka_unit_test(test_fault1_null_request_is_an_error_not_a_crash),
        cmocka_unit_test(test_fault4_one_malformed_entry_keeps_the_rest_of_the_batch),
        cmocka_unit_test(test_decode_send_message),
        cmocka_unit_test(test_decode_batch_result),
        cmocka_unit_test(test_decode_queue_url_and_attributes),
        cmocka_unit_test(test_alloc_failure_walks_every_encoder_and_decoder),
        cmocka_unit_test(test_error_classification),
        cmocka_unit_test(test_config_defaults_and_region),
        cmocka_unit_test(test_config_endpoint_precedence),
        cmocka_unit_test(test_config_tunables),
        cmocka_unit_test(test_fault5_endpoint_urls_are_validated),
        cmocka_unit_test(test_transport_retries_5xx),
        cmocka_unit_test(test_transport_client_error_not_retried),
        cmocka_unit_test(test_transport_throttling_retried),
        cmocka_unit_test(test_transport_gives_up_after_max_attempts),
        cmocka_unit_test(test_transport_keep_alive),
        cmocka_unit_test(test_transport_hang_up_retried),
        cmocka_unit_test(test_transport_timeout_and_refused),
        cmocka_unit_test(test_transport_response_cap),
        cmocka_unit_test(test_transport_no_expect_continue),
        cmocka_unit_test(test_transport_signature_matches_wire),
        cmocka_unit_test(test_transport_wrappers),
        cmocka_unit_test(test_request_async),
        cmocka_unit_test(test_fault1_empty_receipt_handle_over_the_wire),
        cmocka_unit_test(test_fault4_malformed_entry_over_the_wire),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return failed;
}
