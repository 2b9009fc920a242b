/*
 * test_common.c - trace headers, UUIDs, backoff, the DATABASE_URL check,
 * PostgreSQL array literals and the Prometheus renderer.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "db.h"
#include "metrics.h"
#include "trace.h"
#include "util.h"

static void test_conninfo_check_hides_password(void **s)
{
    (void)s;
    char err[256];
    assert_int_equal(db_conninfo_check("postgresql://u:pw@127.0.0.1:5432/orders", err, sizeof(err)),
                     0);
    assert_int_equal(db_conninfo_check("host=x password=s3cr3t-value bogus", err, sizeof(err)), -1);
    assert_null(strstr(err, "s3cr3t-value"));
    assert_non_null(strstr(err, "DATABASE_URL"));
}

static void test_traceparent_continues_or_starts(void **s)
{
    (void)s;
    char out[TRACEPARENT_LEN];
    const char *in = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    assert_true(trace_traceparent_valid(in));
    trace_traceparent(in, out);
    assert_true(trace_traceparent_valid(out));
    assert_memory_equal(out, in, 36); /* same version and trace id */
    assert_memory_not_equal(out + 36, in + 36, 16);
    trace_traceparent("garbage", out);
    assert_true(trace_traceparent_valid(out));
    assert_memory_not_equal(out + 3, in + 3, 32);
    assert_false(
        trace_traceparent_valid("00-00000000000000000000000000000000-00f067aa0ba902b7-01"));
    assert_false(
        trace_traceparent_valid("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"));
    assert_false(trace_traceparent_valid(NULL));
}

static void test_xray_header_kept_or_started(void **s)
{
    (void)s;
    char out[XRAY_HEADER_MAX];
    const char *in = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";
    trace_xray_header(in, 0, out, sizeof(out));
    assert_string_equal(out, in);
    trace_xray_header("Root=1-x; injected", 0x5759e988, out, sizeof(out));
    assert_memory_equal(out, "Root=1-5759e988-", 16);
    assert_int_equal(strlen(out), strlen("Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=0"));
    trace_xray_header(NULL, 1, out, sizeof(out));
    assert_memory_equal(out, "Root=1-00000001-", 16);
}

/* A client's X-Amzn-Trace-Id becomes the message's AWSTraceHeader: anything
 * outside SQS's grammar would make that batch entry fail on every retry. */
static void test_xray_header_outside_the_grammar_is_replaced(void **s)
{
    (void)s;
    char out[XRAY_HEADER_MAX];
    const char *ok[] = {"Root=1-5759e988-bd862e3fe1be46a994272793",
                        "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=0",
                        "Root=1-5759E988-BD862E3FE1BE46A994272793;Parent=53995c3f42cd8ad8"};
    const char *bad[] = {"Root=1-x",
                         "Root=1-5759e988-bd862e3fe1be46a99427279",
                         "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=2",
                         "Root=1-5759e988-bd862e3fe1be46a994272793;Self=1-abc",
                         "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad",
                         "Root=1-5759e988-bd862e3fe1be46a994272793;",
                         "Root=2-5759e988-bd862e3fe1be46a994272793",
                         "Sampled=1;Root=1-5759e988-bd862e3fe1be46a994272793",
                         ""};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        assert_true(trace_xray_header_valid(ok[i]));
        trace_xray_header(ok[i], 7, out, sizeof(out));
        assert_string_equal(out, ok[i]);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_false(trace_xray_header_valid(bad[i]));
        trace_xray_header(bad[i], 7, out, sizeof(out));
        assert_true(trace_xray_header_valid(out));
        assert_memory_equal(out, "Root=1-00000007-", 16);
    }
}

static void test_uuid_v4_format(void **s)
{
    (void)s;
    char a[UUID_STR_LEN], b[UUID_STR_LEN];
    util_uuid_v4(a);
    util_uuid_v4(b);
    assert_true(util_is_uuid(a));
    assert_int_equal(a[14], '4');
    assert_string_not_equal(a, b);
    assert_false(util_is_uuid("3f0e8a6c-1d2b-4c5d-8e9f-0a1b2c3d4e5"));
    assert_false(util_is_uuid("3f0e8a6c-1d2b-4c5d-8e9f-0a1b2c3d4e5fa"));
    assert_false(util_is_uuid("3f0e8a6cx1d2b-4c5d-8e9f-0a1b2c3d4e5f"));
    assert_false(util_is_uuid("3f0e8a6c-1d2b-4c5d-8e9f-0a1b2c3d4e5g"));
}

static void test_backoff_capped_and_jittered(void **s)
{
    (void)s;
    int64_t max_seen = 0;
    bool varied = false;
    int64_t first = util_backoff_ms(10, 50, 5000);
    for (int i = 0; i < 200; i++) {
        int64_t d = util_backoff_ms(10, 50, 5000);
        assert_true(d >= 0 && d <= 5000);
        if (d > max_seen)
            max_seen = d;
        if (d != first)
            varied = true;
    }
    assert_true(varied);
    assert_true(max_seen > 50);
    for (int i = 0; i < 100; i++)
        assert_true(util_backoff_ms(0, 50, 5000) <= 50);
}

static void test_pg_array_literal_escapes(void **s)
{
    (void)s;
    struct buf b;
    db_array_init(&b);
    db_array_add(&b, "plain");
    db_array_add(&b, "with \"quote\" and \\ back");
    db_array_add(&b, NULL);
    db_array_add_int(&b, -42);
    assert_string_equal(db_array_finish(&b),
                        "{\"plain\",\"with \\\"quote\\\" and \\\\ back\",NULL,-42}");
    buf_free(&b);
}

/* An append that failed (out of memory, here the buffer's limit) must not
 * yield a literal missing its values: finish says NULL instead. */
static void test_pg_array_literal_refused_after_a_failed_append(void **s)
{
    (void)s;
    struct buf b;
    db_array_init(&b);
    b.limit = 8;
    db_array_add(&b, "0123456789");
    db_array_add(&b, "x");
    assert_null(db_array_finish(&b));
    buf_free(&b);
}

static void test_buf_limit(void **s)
{
    (void)s;
    struct buf b;
    buf_init(&b, 8);
    assert_int_equal(buf_append(&b, "12345678", 8), 0);
    assert_int_equal(buf_append(&b, "9", 1), -1);
    assert_string_equal(b.data, "12345678");
    buf_free(&b);
}

static void test_read_file_and_data_path(void **s)
{
    (void)s;
    char path[] = "/tmp/test_common_fileXXXXXX", buf[4096];
    size_t len = 0;
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "hello", 5), 5);
    close(fd);
    char *d = util_read_file(path, 16, &len);
    assert_non_null(d);
    assert_int_equal(len, 5);
    assert_string_equal(d, "hello");
    free(d);
    assert_null(util_read_file(path, 4, &len)); /* over the limit */
    assert_null(util_read_file("/nonexistent/file", 16, &len));

    static const char *const none[] = {"no/such/file", NULL};
    unsetenv("T_DATA_PATH");
    assert_null(util_data_path("T_DATA_PATH", none, buf, sizeof(buf)));
    setenv("T_DATA_PATH", path, 1);
    assert_string_equal(util_data_path("T_DATA_PATH", none, buf, sizeof(buf)), path);
    unsetenv("T_DATA_PATH");
    static const char *const self[] = {"no/such/file", ".", NULL}; /* the test's own directory */
    const char *found = util_data_path("T_DATA_PATH", self, buf, sizeof(buf));
    assert_non_null(found);
    assert_non_null(strstr(found, "/."));
    unlink(path);
}

static void test_histogram_rendering(void **s)
{
    (void)s;
    static const double bounds[] = {0.01, 0.1, 1};
    struct histogram h;
    struct buf b;
    histogram_init(&h, bounds, 3);
    histogram_observe_ms(&h, 5);
    histogram_observe_ms(&h, 50);
    histogram_observe_ms(&h, 5000);
    buf_init(&b, 0);
    metrics_histogram(&b, "x_seconds", "", &h);
    assert_non_null(strstr(b.data, "x_seconds_bucket{le=\"0.01\"} 1\n"));
    assert_non_null(strstr(b.data, "x_seconds_bucket{le=\"0.1\"} 2\n"));
    assert_non_null(strstr(b.data, "x_seconds_bucket{le=\"1\"} 2\n"));
    assert_non_null(strstr(b.data, "x_seconds_bucket{le=\"+Inf\"} 3\n"));
    assert_non_null(strstr(b.data, "x_seconds_count 3\n"));
    assert_non_null(strstr(b.data, "x_seconds_sum 5.055000\n"));
    buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conninfo_check_hides_password),
        cmocka_unit_test(test_traceparent_continues_or_starts),
        cmocka_unit_test(test_xray_header_kept_or_started),
        cmocka_unit_test(test_xray_header_outside_the_grammar_is_replaced),
        cmocka_unit_test(test_uuid_v4_format),
        cmocka_unit_test(test_backoff_capped_and_jittered),
        cmocka_unit_test(test_pg_array_literal_escapes),
        cmocka_unit_test(test_pg_array_literal_refused_after_a_failed_append),
        cmocka_unit_test(test_buf_limit),
        cmocka_unit_test(test_read_file_and_data_path),
        cmocka_unit_test(test_histogram_rendering),
    };
    return cmocka_run_group_tests_name("common", tests, NULL, NULL);
}
