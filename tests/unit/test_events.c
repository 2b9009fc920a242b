/*
 * test_events.c - EventBridge PutEvents: the entry rules and size limits, the
 * body, the per-entry answer, configuration, and the call itself against the
 * shared HTTP stub playing EventBridge (signature, target, JSON 1.1, retries,
 * a curl multi loop), plus the allocation-failure walk over the codec.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alloc_fail.h"
#include "aws_env.h"
#include "credentials.h"
#include "events.h"
#include "http_stub.h"
#include "sigv4.h"

#define BUS "orders"
#define SECRET "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
#define TRACE "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1"

static const struct events_entry CREATED = {.source = "order-service",
                                            .detail_type = "order.created",
                                            .detail = "{\"version\":1,\"order\":{\"id\":\"o-1\"}}",
                                            .event_bus_name = BUS,
                                            .trace_header = TRACE};
static const struct events_entry PROCESSED = {.source = "order-service",
                                              .detail_type = "order.processed",
                                              .detail = "{\"version\":1}",
                                              .event_bus_name = BUS};

/* The JSON of a body the code under test produced; fails the test when it is not JSON. */
static json_t *json_of(const char *body)
{
    json_t *j = body ? json_loads(body, 0, NULL) : NULL;
    if (!j)
        fail_msg("not JSON: %s", body ? body : "(null)");
    return j;
}

static const char *member(json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

/* A string of n bytes of c (malloc). */
static char *filled(size_t n, char c)
{
    char *s = malloc(n + 1);
    assert_non_null(s);
    memset(s, c, n);
    s[n] = '\0';
    return s;
}

/* A Detail JSON object of exactly n bytes. */
static char *detail_of(size_t n)
{
    assert_true(n >= 8);
    char *s = filled(n, 'x');
    memcpy(s, "{\"x\":\"", 6);
    s[n - 2] = '"';
    s[n - 1] = '}';
    return s;
}

/* ---- entries and the body ------------------------------------------------ */

static void test_encode_put_events(void **state)
{
    (void)state;
    const struct events_entry e[2] = {CREATED, PROCESSED};
    struct aws_error err;
    char *body = events_encode_put_events(e, 2, &err);
    json_t *j = json_of(body);
    json_t *entries = json_object_get(j, "Entries");
    assert_int_equal(json_array_size(entries), 2);
    json_t *a = json_array_get(entries, 0), *b = json_array_get(entries, 1);
    assert_string_equal(member(a, "Source"), "order-service");
    assert_string_equal(member(a, "DetailType"), "order.created");
    assert_string_equal(member(a, "Detail"), CREATED.detail); /* a string holding JSON */
    assert_string_equal(member(a, "EventBusName"), BUS);
    assert_string_equal(member(a, "TraceHeader"), TRACE);
    assert_string_equal(member(b, "DetailType"), "order.processed");
    assert_null(json_object_get(b, "TraceHeader"));
    assert_int_equal(json_object_size(j), 1);
    json_decref(j);
    free(body);
}

static void expect_refused(const struct events_entry *e, const char *needle)
{
    char why[256] = "";
    struct aws_error err;
    if (events_entry_check(e, why, sizeof(why)) == 0)
        fail_msg("accepted an entry that should fail with \"%s\"", needle);
    if (!strstr(why, needle))
        fail_msg("reason \"%s\" lacks \"%s\"", why, needle);
    char *body = events_encode_put_events(e, 1, &err);
    if (body)
        fail_msg("encoded an entry that should fail with \"%s\": %s", needle, body);
    assert_int_equal(err.kind, AWS_ERR_CLIENT);
    assert_non_null(strstr(err.message, "entry 0"));
    assert_non_null(strstr(err.message, needle));
}

static void test_entry_rules(void **state)
{
    (void)state;
    char why[256];
    struct events_entry e = CREATED;
    assert_int_equal(events_entry_check(&e, why, sizeof(why)), 0);

    e.source = "";
    expect_refused(&e, "Source is empty");
    e.source = "aws.orders";
    expect_refused(&e, "aws.");
    char *long_source = filled(EVENTS_MAX_SOURCE_BYTES + 1, 's');
    e.source = long_source;
    expect_refused(&e, "Source is not 1-256 bytes");
    long_source[EVENTS_MAX_SOURCE_BYTES] = '\0';
    assert_int_equal(events_entry_check(&e, why, sizeof(why)), 0);
    e.source = "order-\xff";
    expect_refused(&e, "Source");
    e = CREATED;

    /* DetailType counts characters: 128 two-byte characters pass, 129 do not. */
    char dt[2 * 129 + 1];
    for (int i = 0; i < 129; i++)
        memcpy(dt + 2 * i, "\xc3\xa9", 2);
    dt[2 * 129] = '\0';
    e.detail_type = dt;
    expect_refused(&e, "DetailType is not 1-128 characters");
    dt[2 * 128] = '\0';
    assert_int_equal(events_entry_check(&e, why, sizeof(why)), 0);
    e.detail_type = "\xed\xa0\x80"; /* a UTF-16 surrogate, not UTF-8 */
    expect_refused(&e, "DetailType");
    e.detail_type = NULL;
    expect_refused(&e, "DetailType is empty");
    e = CREATED;

    const char *bad_buses[] = {"",
                               "orders bus",
                               "orders/x",
                               "ord\xc3\xa9rs",
                               "arn:aws:events:eu-west-1:12345678901:event-bus/orders",
                               "arn:aws:sqs:eu-west-1:123456789012:event-bus/orders",
                               "arn:aws:events:euwest1:123456789012:event-bus/orders",
                               "arn:aws:events:eu-west-1:123456789012:event-bus/"};
    for (size_t i = 0; i < sizeof(bad_buses) / sizeof(bad_buses[0]); i++) {
        e.event_bus_name = bad_buses[i];
        expect_refused(&e, "EventBusName");
    }
    const char *good_buses[] = {"default", "orders.v2_prod-1",
                                "arn:aws:events:eu-west-1:123456789012:event-bus/orders",
                                "arn:aws-us-gov:events:us-gov-west-1:123456789012:event-bus/o"};
    for (size_t i = 0; i < sizeof(good_buses) / sizeof(good_buses[0]); i++) {
        e.event_bus_name = good_buses[i];
        if (events_entry_check(&e, why, sizeof(why)) != 0)
            fail_msg("%s refused: %s", good_buses[i], why);
    }
    e = CREATED;

    e.trace_header = "";
    expect_refused(&e, "TraceHeader");
    e.trace_header = "Root=1-abc; Sampled=1";
    expect_refused(&e, "TraceHeader is not printable ASCII");
    char *long_trace = filled(EVENTS_MAX_TRACE_HEADER_BYTES + 1, 't');
    e.trace_header = long_trace;
    expect_refused(&e, "TraceHeader is not 1-500 bytes");
    e = CREATED;

    e.detail = "[1,2]";
    expect_refused(&e, "Detail is not a JSON object");
    e.detail = "{\"a\":";
    expect_refused(&e, "Detail is not a JSON object");
    e.detail = "";
    expect_refused(&e, "Detail is empty");

    free(long_source);
    free(long_trace);
}

static void test_entry_size_and_batches(void **state)
{
    (void)state;
    struct events_entry e = CREATED;
    /* the UTF-8 bytes of Source, DetailType and Detail; nothing else counts */
    assert_int_equal(events_entry_size(&e),
                     strlen("order-service") + strlen("order.created") + strlen(CREATED.detail));
    e.detail_type = "order.\xc3\xa9"; /* 7 characters, 8 bytes */
    assert_int_equal(events_entry_size(&e), 13 + 8 + strlen(CREATED.detail));

    /* One entry alone must stay under 256 KB. */
    size_t overhead = strlen("order-service") + strlen("order.created");
    char *big = detail_of(EVENTS_MAX_REQUEST_BYTES - overhead);
    e = CREATED;
    e.detail = big;
    char why[256];
    assert_int_equal(events_entry_check(&e, why, sizeof(why)), -1);
    assert_non_null(strstr(why, "must be under"));
    free(big);
    big = detail_of(EVENTS_MAX_REQUEST_BYTES - overhead - 1);
    e.detail = big;
    assert_int_equal(events_entry_check(&e, why, sizeof(why)), 0);
    struct aws_error err;
    char *body = events_encode_put_events(&e, 1, &err);
    assert_non_null(body);
    free(body);
    free(big);

    /* Ten a request, and the total under the limit. */
    struct events_entry many[12];
    for (int i = 0; i < 12; i++)
        many[i] = PROCESSED;
    assert_int_equal(events_batch_fit(many, 12), 10);
    assert_int_equal(events_batch_fit(many, 3), 3);
    assert_int_equal(events_batch_fit(many, 0), 0);
    assert_null(events_encode_put_events(many, 11, &err));
    assert_non_null(strstr(err.message, "11 entries"));
    assert_null(events_encode_put_events(many, 0, &err));

    char *d100 = detail_of(100 * 1024);
    for (int i = 0; i < 4; i++)
        many[i].detail = d100;
    assert_int_equal(events_batch_fit(many, 4), 2); /* 3 x 100 KB would pass 256 KB */
    assert_null(events_encode_put_events(many, 3, &err));
    assert_non_null(strstr(err.message, "must stay under"));
    body = events_encode_put_events(many, 2, &err);
    assert_non_null(body);
    free(body);
    free(d100);
}

/* ---- the answer ------------------------------------------------------------ */

static void test_decode_put_events(void **state)
{
    (void)state;
    struct events_put_result r;
    struct aws_error err;
    const char *ok = "{\"FailedEntryCount\":0,\"Entries\":[{\"EventId\":\"11710aed-b79e-4468-a20b-"
                     "bb3c0c3b4860\"},{\"EventId\":\"ev-2\"}]}";
    assert_int_equal(events_decode_put_events(ok, strlen(ok), 2, &r, &err), 0);
    assert_int_equal(r.n, 2);
    assert_int_equal(r.n_failed, 0);
    assert_int_equal(r.entry[0].outcome, EVENTS_OK);
    assert_string_equal(r.entry[0].event_id, "11710aed-b79e-4468-a20b-bb3c0c3b4860");
    assert_string_equal(r.entry[1].event_id, "ev-2");

    const char *mixed =
        "{\"FailedEntryCount\":6,\"Entries\":["
        "{\"EventId\":\"ev-0\"},"
        "{\"ErrorCode\":\"ThrottlingException\",\"ErrorMessage\":\"Rate exceeded\"},"
        "{\"ErrorCode\":\"InternalFailure\"},"
        "{\"ErrorCode\":\"MalformedDetail\",\"ErrorMessage\":\"Detail is malformed.\"},"
        "{\"ErrorCode\":\"ValidationException\",\"ErrorMessage\":\"bad\"},"
        "{\"ErrorCode\":\"AccessDeniedException\",\"ErrorMessage\":\"no\"},"
        "{\"ErrorCode\":\"SomethingNew\"},"
        "{\"EventId\":\"\"}]}";
    assert_int_equal(events_decode_put_events(mixed, strlen(mixed), 8, &r, &err), 0);
    assert_int_equal(r.n, 8);
    assert_int_equal(r.n_failed, 7);
    const enum events_outcome want[] = {EVENTS_OK,       EVENTS_RETRY,    EVENTS_RETRY,
                                        EVENTS_REJECTED, EVENTS_REJECTED, EVENTS_DENIED,
                                        EVENTS_RETRY,    EVENTS_RETRY};
    for (int i = 0; i < 8; i++)
        if (r.entry[i].outcome != want[i])
            fail_msg("entry %d: outcome %d, expected %d", i, r.entry[i].outcome, want[i]);
    assert_string_equal(r.entry[1].error_code, "ThrottlingException");
    assert_string_equal(r.entry[1].error_message, "Rate exceeded");
    assert_string_equal(r.entry[2].error_message, "");
    assert_string_equal(r.entry[3].error_code, "MalformedDetail");
    assert_string_equal(r.entry[7].error_code, "");
    assert_non_null(strstr(r.entry[7].error_message, "EventId is empty"));

    /* No FailedEntryCount at all (some emulators): the entries decide. */
    const char *nocount = "{\"Entries\":[{\"ErrorCode\":\"InternalFailure\"}]}";
    assert_int_equal(events_decode_put_events(nocount, strlen(nocount), 1, &r, &err), 0);
    assert_int_equal(r.n_failed, 1);

    assert_int_equal(events_classify_error_code("NotAuthorizedForSourceException"), EVENTS_DENIED);
    assert_int_equal(events_classify_error_code("InvalidArgument"), EVENTS_REJECTED);
    assert_int_equal(events_classify_error_code("RedactionFailure"), EVENTS_REJECTED);
    assert_int_equal(events_classify_error_code(NULL), EVENTS_RETRY);
}

static void test_decode_put_events_bad(void **state)
{
    (void)state;
    const struct {
        const char *json;
        size_t n;
        const char *needle;
    } bad[] = {
        {"", 1, "not valid JSON"},
        {"[]", 1, "not a JSON object"},
        {"{}", 1, "0 entries answered for 1 sent"},
        {"{\"Entries\":{}}", 1, "Entries is not an array"},
        {"{\"Entries\":[{\"EventId\":\"a\"}]}", 2, "1 entries answered for 2 sent"},
        {"{\"Entries\":[1]}", 1, "entry 0 is not an object"},
        {"{\"Entries\":[{\"EventId\":7}]}", 1, "not a string"},
        {"{\"Entries\":[{\"ErrorCode\":[]}]}", 1, "not a string"},
        {"{\"FailedEntryCount\":1,\"Entries\":[{\"EventId\":\"a\"}]}", 1, "FailedEntryCount"},
        {"{\"FailedEntryCount\":\"0\",\"Entries\":[{\"EventId\":\"a\"}]}", 1, "FailedEntryCount"},
        {"{\"Entries\":[{\"EventId\":\"a\"}]}", 0, "0 entries sent"},
        {"{\"Entries\":[{},{},{},{},{},{},{},{},{},{},{}]}", 10, "at most 10"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct events_put_result r;
        struct aws_error err;
        if (events_decode_put_events(bad[i].json, strlen(bad[i].json), bad[i].n, &r, &err) == 0)
            fail_msg("accepted: %s", bad[i].json);
        assert_int_equal(err.kind, AWS_ERR_PARSE);
        assert_int_equal(r.n, 0);
        if (!strstr(err.message, bad[i].needle))
            fail_msg("\"%s\" lacks \"%s\"", err.message, bad[i].needle);
    }
}

/* ---- configuration ----------------------------------------------------------- */

static void env_clear(void)
{
    static const char *vars[] = {
        "AWS_REGION",       "AWS_DEFAULT_REGION",   "AWS_ENDPOINT_URL_EVENTS",
        "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SQS", "SQS_MAX_ATTEMPTS"};
    for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
        unsetenv(vars[i]);
}

static void test_config_from_env(void **state)
{
    (void)state;
    struct aws_config c;
    char err[256];

    env_clear();
    assert_int_equal(events_config_from_env(&c, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "AWS_REGION"));
    setenv("AWS_REGION", "eu-west-1", 1);
    setenv("SQS_MAX_ATTEMPTS", "9", 1); /* SQS's, not EventBridge's */
    setenv("AWS_ENDPOINT_URL_SQS", "http://sqs-only:1", 1);
    assert_int_equal(events_config_from_env(&c, err, sizeof(err)), 0);
    assert_string_equal(c.endpoint, "https://events.eu-west-1.amazonaws.com");
    assert_int_equal(c.max_attempts, 5);
    assert_true(c.verify_tls);
    setenv("AWS_ENDPOINT_URL", "http://localstack:4566/", 1);
    assert_int_equal(events_config_from_env(&c, err, sizeof(err)), 0);
    assert_string_equal(c.endpoint, "http://localstack:4566");
    setenv("AWS_ENDPOINT_URL_EVENTS", "http://127.0.0.1:4596", 1);
    assert_int_equal(events_config_from_env(&c, err, sizeof(err)), 0);
    assert_string_equal(c.endpoint, "http://127.0.0.1:4596");
    setenv("AWS_ENDPOINT_URL_EVENTS", "http://bus\xc3\xa9:1", 1);
    assert_int_equal(events_config_from_env(&c, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "AWS_ENDPOINT_URL_EVENTS"));
    setenv("AWS_ENDPOINT_URL_EVENTS", "http://host/path", 1);
    assert_int_equal(events_config_from_env(&c, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "AWS_ENDPOINT_URL_EVENTS"));
    setenv("AWS_REGION", "cn-north-1", 1);
    unsetenv("AWS_ENDPOINT_URL_EVENTS");
    unsetenv("AWS_ENDPOINT_URL");
    assert_int_equal(events_config_from_env(&c, err, sizeof(err)), 0);
    assert_string_equal(c.endpoint, "https://events.cn-north-1.amazonaws.com.cn");
    env_clear();
}

/* ---- the call, against the stub ------------------------------------------------ */

/* EventBridge as the stub plays it: the first call of each test is throttled
 * (to prove the retry), then every entry is accepted except one whose
 * DetailType is "order.bad", which fails as MalformedDetail. */
struct bridge {
    pthread_mutex_t mu;
    int calls;
};

static void bridge_answer(const struct http_stub_request *req, struct http_stub_response *resp,
                          void *arg)
{
    static __thread char body[4096];
    struct bridge *b = arg;
    pthread_mutex_lock(&b->mu);
    int call = b->calls++;
    pthread_mutex_unlock(&b->mu);
    resp->content_type = "application/x-amz-json-1.1";
    if (call == 0) {
        resp->status = 400;
        resp->body = "{\"__type\":\"ThrottlingException\",\"message\":\"Rate exceeded\"}";
        return;
    }
    json_t *j = json_loadb(req->body, req->body_len, 0, NULL);
    json_t *entries = json_object_get(j, "Entries");
    size_t i, failed = 0;
    json_t *e;
    int n = snprintf(body, sizeof(body), "{\"Entries\":[");
    json_array_foreach(entries, i, e)
    {
        bool bad = strcmp(member(e, "DetailType"), "order.bad") == 0;
        failed += bad;
        n += snprintf(body + n, sizeof(body) - (size_t)n, "%s%s", i ? "," : "",
                      bad ? "{\"ErrorCode\":\"MalformedDetail\",\"ErrorMessage\":\"no\"}"
                          : "{\"EventId\":\"ev-0000\"}");
    }
    snprintf(body + n, sizeof(body) - (size_t)n, "],\"FailedEntryCount\":%zu}", failed);
    json_decref(j);
    resp->status = 200;
    resp->body = body;
}

struct fixture {
    struct http_stub *srv;
    struct bridge bridge;
    struct creds_provider *creds;
    struct aws_client *client;
};

static void fixture_start(struct fixture *f)
{
    struct aws_credentials c = {.access_key_id = "AKID", .secret_access_key = SECRET};
    struct aws_config cfg = {.region = "eu-west-1",
                             .verify_tls = true,
                             .connect_timeout_ms = 1000,
                             .request_timeout_ms = 5000,
                             .max_attempts = 5,
                             .backoff_base_ms = 1,
                             .backoff_cap_ms = 5};
    memset(f, 0, sizeof(*f));
    pthread_mutex_init(&f->bridge.mu, NULL);
    f->srv = http_stub_start();
    assert_non_null(f->srv);
    http_stub_set_handler(f->srv, bridge_answer, &f->bridge);
    snprintf(cfg.endpoint, sizeof(cfg.endpoint), "%s", http_stub_url(f->srv));
    f->creds = creds_provider_new_static(&c);
    f->client = events_client_new(&cfg, f->creds);
    assert_non_null(f->client);
}

static void fixture_stop(struct fixture *f)
{
    aws_client_free(f->client);
    creds_provider_free(f->creds);
    http_stub_stop(f->srv);
    pthread_mutex_destroy(&f->bridge.mu);
}

/* Recomputes the SigV4 signature from what went over the wire. */
static void assert_signed_for_events(const struct http_stub_request *r)
{
    const char *host = http_stub_header(r, "Host"), *date = http_stub_header(r, "X-Amz-Date");
    const char *ctype = http_stub_header(r, "Content-Type");
    const char *target = http_stub_header(r, "X-Amz-Target");
    assert_string_equal(r->method, "POST");
    assert_string_equal(r->target, "/");
    assert_string_equal(ctype, "application/x-amz-json-1.1");
    assert_string_equal(target, "AWSEvents.PutEvents");
    assert_null(http_stub_header(r, "Expect"));
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    assert_non_null(strptime(date, "%Y%m%dT%H%M%SZ", &tm));
    struct aws_credentials c = {.access_key_id = "AKID", .secret_access_key = SECRET};
    const struct sigv4_header hdrs[] = {
        {"Host", host}, {"Content-Type", ctype}, {"X-Amz-Target", target}};
    const struct sigv4_request req = {.method = "POST",
                                      .path = "/",
                                      .headers = hdrs,
                                      .n_headers = 3,
                                      .body = r->body,
                                      .body_len = r->body_len};
    const struct sigv4_signing s = {.region = "eu-west-1",
                                    .service = "events",
                                    .creds = &c,
                                    .now = timegm(&tm),
                                    .normalize_path = true};
    struct sigv4_result out;
    char serr[256];
    assert_int_equal(sigv4_sign(&req, &s, &out, serr, sizeof(serr)), 0);
    assert_string_equal(http_stub_header(r, "Authorization"), out.authorization);
    assert_non_null(strstr(out.authorization, "/eu-west-1/events/aws4_request"));
    sigv4_result_free(&out);
}

static void test_put_events_over_the_wire(void **state)
{
    (void)state;
    struct fixture f;
    fixture_start(&f);
    struct events_entry bad = PROCESSED;
    bad.detail_type = "order.bad";
    const struct events_entry e[3] = {CREATED, bad, PROCESSED};
    struct events_put_result r;
    struct aws_error err;

    assert_int_equal(events_put(f.client, e, 3, &r, &err), 0);
    assert_int_equal(http_stub_requests(f.srv), 2); /* throttled once, then answered */
    assert_int_equal(http_stub_connections(f.srv), 1);
    assert_int_equal(r.n, 3);
    assert_int_equal(r.n_failed, 1);
    assert_int_equal(r.entry[0].outcome, EVENTS_OK);
    assert_string_equal(r.entry[0].event_id, "ev-0000");
    assert_int_equal(r.entry[1].outcome, EVENTS_REJECTED);
    assert_string_equal(r.entry[1].error_code, "MalformedDetail");
    assert_int_equal(r.entry[2].outcome, EVENTS_OK);
    for (size_t i = 0; i < http_stub_requests(f.srv); i++)
        assert_signed_for_events(http_stub_request(f.srv, i));
    json_t *j = json_of(http_stub_last(f.srv)->body);
    assert_int_equal(json_array_size(json_object_get(j, "Entries")), 3);
    json_decref(j);

    /* An entry that can never be accepted does not reach the network. */
    struct events_entry reserved = CREATED;
    reserved.source = "aws.orders";
    assert_int_equal(events_put(f.client, &reserved, 1, &r, &err), -1);
    assert_int_equal(err.kind, AWS_ERR_CLIENT);
    assert_non_null(strstr(err.message, "aws."));
    assert_int_equal(http_stub_requests(f.srv), 2);
    fixture_stop(&f);
}

static void test_put_events_gives_up_on_throttling(void **state)
{
    (void)state;
    struct fixture f;
    fixture_start(&f);
    http_stub_set_handler(f.srv, NULL, NULL);
    const struct http_stub_response slow = {
        .status = 400,
        .body = "{\"__type\":\"ThrottlingException\",\"message\":\"Rate exceeded\"}"};
    http_stub_push(f.srv, &slow);
    struct events_put_result r;
    struct aws_error err;
    assert_int_equal(events_put(f.client, &CREATED, 1, &r, &err), -1);
    assert_int_equal(err.kind, AWS_ERR_THROTTLED);
    assert_true(aws_error_retryable(&err));
    assert_non_null(strstr(err.message, "after 5 attempts"));
    assert_int_equal(http_stub_requests(f.srv), 5);
    assert_int_equal(r.n, 0);
    fixture_stop(&f);
}

/* The publisher's path: a request on its own multi handle, found again from
 * the finished easy handle. */
static void test_put_events_request_in_a_multi_loop(void **state)
{
    (void)state;
    struct fixture f;
    fixture_start(&f);
    int tag = 42;
    const struct events_entry e[2] = {CREATED, PROCESSED};
    struct aws_error err;
    struct aws_request *req = events_request_new(f.client, e, 2, &tag, &err);
    assert_non_null(req);
    CURLM *multi = curl_multi_init();
    assert_non_null(multi);

    struct events_put_result r;
    for (int attempt = 0;; attempt++) {
        assert_true(attempt < 3);
        assert_int_equal(aws_request_prepare(req, 0, &err), 0);
        assert_int_equal(curl_multi_add_handle(multi, aws_request_easy(req)), CURLM_OK);
        int running = 1, left;
        while (running) {
            assert_int_equal(curl_multi_perform(multi, &running), CURLM_OK);
            if (running)
                assert_int_equal(curl_multi_poll(multi, NULL, 0, 100, NULL), CURLM_OK);
        }
        CURLMsg *m = curl_multi_info_read(multi, &left);
        assert_non_null(m);
        struct aws_request *done = aws_request_from_easy(m->easy_handle);
        assert_ptr_equal(done, req);
        assert_ptr_equal(aws_request_userdata(done), &tag);
        curl_multi_remove_handle(multi, m->easy_handle);
        if (aws_request_complete(done, m->data.result, &err) == 0)
            break;
        assert_int_equal(err.kind, AWS_ERR_THROTTLED); /* the stub's first answer */
        assert_true(aws_request_backoff_ms(done) <= 1);
    }
    assert_int_equal(aws_request_attempts(req), 2);
    assert_int_equal(events_request_result(req, 2, &r, &err), 0);
    assert_int_equal(r.n, 2);
    assert_int_equal(r.n_failed, 0);
    assert_string_equal(aws_request_action(req), "PutEvents");
    aws_request_free(req);
    curl_multi_cleanup(multi);

    struct events_entry bad = CREATED;
    bad.detail = "not json";
    assert_null(events_request_new(f.client, &bad, 1, NULL, &err));
    assert_non_null(strstr(err.message, "Detail is not a JSON object"));
    fixture_stop(&f);
}

/* ---- allocation failure ----------------------------------------------------------- */

static char *expected_body;

static int walk_encode(void *arg)
{
    (void)arg;
    const struct events_entry e[2] = {CREATED, PROCESSED};
    struct aws_error err;
    char *body = events_encode_put_events(e, 2, &err);
    if (!body)
        return err.kind == AWS_ERR_CLIENT ? ALLOC_FAIL_ERROR : ALLOC_FAIL_WRONG;
    int rc = strcmp(body, expected_body) == 0 ? ALLOC_FAIL_OK : ALLOC_FAIL_WRONG;
    free(body);
    return rc;
}

static int walk_decode(void *arg)
{
    (void)arg;
    const char *a = "{\"FailedEntryCount\":1,\"Entries\":[{\"EventId\":\"ev-1\"},"
                    "{\"ErrorCode\":\"InternalFailure\",\"ErrorMessage\":\"try again\"}]}";
    struct events_put_result r;
    struct aws_error err;
    if (events_decode_put_events(a, strlen(a), 2, &r, &err) != 0)
        return r.n == 0 && err.kind == AWS_ERR_PARSE ? ALLOC_FAIL_ERROR : ALLOC_FAIL_WRONG;
    return r.n == 2 && r.entry[1].outcome == EVENTS_RETRY &&
                   strcmp(r.entry[0].event_id, "ev-1") == 0
               ? ALLOC_FAIL_OK
               : ALLOC_FAIL_WRONG;
}

static void test_alloc_failure_walks_the_events_codec(void **state)
{
    (void)state;
    struct alloc_fail_walk w;
    const struct events_entry e[2] = {CREATED, PROCESSED};
    struct aws_error err;

    /* The encoder parses each Detail to check it: jansson's parser must not
     * see a failure (see alloc_fail.h), so only the building can fail here. */
    alloc_fail_jansson(false);
    expected_body = events_encode_put_events(e, 2, &err);
    assert_non_null(expected_body);
    if (alloc_fail_walk(walk_encode, NULL, 100000, &w) != 0)
        fail_msg("PutEvents encoder: %s", w.why);
    free(expected_body);
    /* The decoder allocates nothing of its own beyond jansson's tree: leaks only. */
    if (alloc_fail_walk(walk_decode, NULL, 100000, &w) != 0)
        fail_msg("PutEvents decoder: %s", w.why);
    assert_true(w.runs >= 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encode_put_events),
        cmocka_unit_test(test_entry_rules),
        cmocka_unit_test(test_entry_size_and_batches),
        cmocka_unit_test(test_decode_put_events),
        cmocka_unit_test(test_decode_put_events_bad),
        cmocka_unit_test(test_config_from_env),
        cmocka_unit_test(test_put_events_over_the_wire),
        cmocka_unit_test(test_put_events_gives_up_on_throttling),
        cmocka_unit_test(test_put_events_request_in_a_multi_loop),
        cmocka_unit_test(test_alloc_failure_walks_the_events_codec),
    };
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return failed;
}
