/*
 * test_credentials.c - the default credentials chain, the container endpoint's
 * JSON and time parsing, and the cache's refresh behaviour.
 *
 * The container provider runs end to end against the shared HTTP stub
 * (tests/unit/http_stub.h: 127.0.0.1, an ephemeral port, canned responses in
 * order), so the tests see exactly which requests libcurl sent and when.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>

#include "credentials.h"
#include "credentials_ecs.h"
#include "http_stub.h"
#include "util.h"

static const char *const env_vars[] = {"AWS_ACCESS_KEY_ID",
                                       "AWS_SECRET_ACCESS_KEY",
                                       "AWS_SESSION_TOKEN",
                                       "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                                       "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                                       "AWS_CONTAINER_AUTHORIZATION_TOKEN",
                                       "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"};

static void clear_env(void)
{
    for (size_t i = 0; i < sizeof(env_vars) / sizeof(env_vars[0]); i++)
        unsetenv(env_vars[i]);
}

static int reset_env(void **state)
{
    (void)state;
    clear_env();
    return 0;
}

/* ---- the container endpoint, played by the shared HTTP stub ---- */

static struct http_stub *stub(void)
{
    struct http_stub *s = http_stub_start();
    assert_non_null(s);
    return s;
}

static void add_reply(struct http_stub *s, int status, const char *body, int delay_ms)
{
    const struct http_stub_response r = {.status = status, .body = body, .delay_ms = delay_ms};
    http_stub_push(s, &r);
}

/* A credentials response expiring ttl seconds from now. */
static void add_creds(struct http_stub *s, const char *akid, const char *secret, long ttl,
                      int delay_ms)
{
    char exp[32], body[1024];
    time_t t = time(NULL) + ttl;
    struct tm tm;

    gmtime_r(&t, &tm);
    strftime(exp, sizeof(exp), "%Y-%m-%dT%H:%M:%SZ", &tm);
    snprintf(body, sizeof(body),
             "{\"AccessKeyId\":\"%s\",\"SecretAccessKey\":\"%s\",\"Token\":\"TOKEN-%s\","
             "\"Expiration\":\"%s\"}",
             akid, secret, akid, exp);
    add_reply(s, 200, body, delay_ms);
}

/* Whether request i carried needle in any header value or its body. */
static bool request_mentions(struct http_stub *s, size_t i, const char *needle)
{
    const struct http_stub_request *r = http_stub_request(s, i);
    assert_non_null(r);
    for (size_t h = 0; h < r->n_headers; h++)
        if (strstr(r->headers[h].value, needle))
            return true;
    return strstr(r->body, needle) != NULL;
}

static void set_full_uri(struct http_stub *s)
{
    char uri[128];
    snprintf(uri, sizeof(uri), "%s/creds", http_stub_url(s));
    setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", uri, 1);
}

/* ---- environment provider and chain ---- */

static void test_env_with_session_token(void **state)
{
    struct aws_credentials c;
    char err[256] = "";

    (void)state;
    setenv("AWS_ACCESS_KEY_ID", "AKIDENV", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "env-secret", 1);
    setenv("AWS_SESSION_TOKEN", "env-token", 1);
    struct creds_provider *p = creds_provider_new_default(err, sizeof(err));
    assert_non_null(p);
    assert_string_equal(creds_provider_name(p), "environment");
    assert_int_equal(creds_provider_get(p, &c, err, sizeof(err)), 0);
    assert_string_equal(c.access_key_id, "AKIDENV");
    assert_string_equal(c.secret_access_key, "env-secret");
    assert_string_equal(c.session_token, "env-token");
    assert_int_equal(c.expiration, 0);
    creds_provider_free(p);
}

static void test_env_without_session_token(void **state)
{
    struct aws_credentials c;
    char err[256] = "";

    (void)state;
    setenv("AWS_ACCESS_KEY_ID", "AKIDENV2", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "env-secret2", 1);
    struct creds_provider *p = creds_provider_new_default(err, sizeof(err));
    assert_non_null(p);
    assert_int_equal(creds_provider_get(p, &c, err, sizeof(err)), 0);
    assert_string_equal(c.access_key_id, "AKIDENV2");
    assert_string_equal(c.secret_access_key, "env-secret2");
    assert_string_equal(c.session_token, "");
    creds_provider_free(p);
}

static void test_env_missing_variable_named(void **state)
{
    char err[256] = "";

    (void)state;
    setenv("AWS_SECRET_ACCESS_KEY", "lonely-secret-value", 1);
    assert_null(creds_provider_new_default(err, sizeof(err)));
    assert_non_null(strstr(err, "AWS_ACCESS_KEY_ID"));
    assert_null(strstr(err, "lonely-secret-value"));

    clear_env();
    err[0] = '\0';
    setenv("AWS_ACCESS_KEY_ID", "AKIDALONE", 1);
    assert_null(creds_provider_new_default(err, sizeof(err)));
    assert_non_null(strstr(err, "AWS_SECRET_ACCESS_KEY"));
}

static void test_env_value_too_long(void **state)
{
    char err[256] = "", token[5000];

    (void)state;
    memset(token, 'T', sizeof(token) - 1);
    token[sizeof(token) - 1] = '\0';
    memcpy(token, "tok-marker-", 11);
    setenv("AWS_ACCESS_KEY_ID", "AKIDENV", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "env-secret", 1);
    setenv("AWS_SESSION_TOKEN", token, 1);
    assert_null(creds_provider_new_default(err, sizeof(err)));
    assert_non_null(strstr(err, "AWS_SESSION_TOKEN"));
    assert_null(strstr(err, "tok-marker-"));
    assert_null(strstr(err, "env-secret"));
}

static void test_empty_chain(void **state)
{
    char err[256] = "";

    (void)state;
    assert_null(creds_provider_new_default(err, sizeof(err)));
    assert_non_null(strstr(err, "no AWS credentials"));
}

/* Environment comes first, and building the chain does no network I/O. */
static void test_env_wins_without_network(void **state)
{
    struct http_stub *s = stub();
    char err[256] = "";

    (void)state;
    add_creds(s, "AKIDNET", "net-secret", 3600, 0);
    set_full_uri(s);
    setenv("AWS_ACCESS_KEY_ID", "AKIDENV", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "env-secret", 1);
    struct creds_provider *p = creds_provider_new_default(err, sizeof(err));
    assert_non_null(p);
    assert_string_equal(creds_provider_name(p), "environment");
    struct aws_credentials c;
    assert_int_equal(creds_provider_get(p, &c, err, sizeof(err)), 0);
    assert_string_equal(c.access_key_id, "AKIDENV");
    assert_int_equal(http_stub_requests(s), 0);
    creds_provider_free(p);
    http_stub_stop(s);
}

static void test_static_provider(void **state)
{
    struct aws_credentials in = {.expiration = 0}, out;
    char err[64];

    (void)state;
    snprintf(in.access_key_id, sizeof(in.access_key_id), "AKIDSTATIC");
    snprintf(in.secret_access_key, sizeof(in.secret_access_key), "static-secret");
    struct creds_provider *p = creds_provider_new_static(&in);
    assert_non_null(p);
    assert_string_equal(creds_provider_name(p), "static");
    assert_int_equal(creds_provider_get(p, &out, err, sizeof(err)), 0);
    assert_string_equal(out.access_key_id, "AKIDSTATIC");
    creds_provider_free(p);

    creds_wipe(&in);
    assert_string_equal(in.secret_access_key, "");
    assert_string_equal(in.access_key_id, "");
}

/* ---- JSON and time parsing ---- */

static void test_parse_json_good(void **state)
{
    const char *j =
        "{\"AccessKeyId\":\"ASIAX\",\"SecretAccessKey\":\"sek\",\"Token\":\"tok\","
        "\"Expiration\":\"2015-08-30T12:36:00Z\",\"RoleArn\":\"arn:aws:iam::1:role/r\"}";
    struct aws_credentials c;
    char err[256] = "";

    (void)state;
    assert_int_equal(creds_parse_container_json(j, strlen(j), &c, err, sizeof(err)), 0);
    assert_string_equal(c.access_key_id, "ASIAX");
    assert_string_equal(c.secret_access_key, "sek");
    assert_string_equal(c.session_token, "tok");
    assert_int_equal(c.expiration, 1440938160);
}

static void test_parse_json_missing_fields(void **state)
{
    const char *no_key = "{\"SecretAccessKey\":\"s3cr3t-value\",\"Token\":\"t\","
                         "\"Expiration\":\"2015-08-30T12:36:00Z\"}";
    const char *no_secret = "{\"AccessKeyId\":\"ASIAX\",\"Token\":\"t\","
                            "\"Expiration\":\"2015-08-30T12:36:00Z\"}";
    const char *not_string = "{\"AccessKeyId\":\"ASIAX\",\"SecretAccessKey\":42}";
    struct aws_credentials c;
    char err[256] = "";

    (void)state;
    assert_int_equal(creds_parse_container_json(no_key, strlen(no_key), &c, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "AccessKeyId"));
    assert_null(strstr(err, "s3cr3t-value"));
    assert_int_equal(creds_parse_container_json(no_secret, strlen(no_secret), &c, err, sizeof(err)),
                     -1);
    assert_non_null(strstr(err, "SecretAccessKey"));
    assert_int_equal(
        creds_parse_container_json(not_string, strlen(not_string), &c, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "SecretAccessKey"));
}

static void test_parse_json_bad(void **state)
{
    /* Truncated right after the secret: a parser error that quoted its input would leak it. */
    const char *j = "{\"AccessKeyId\":\"ASIAX\",\"SecretAccessKey\":\"leaky-secret-xyz";
    const char *arr = "[1,2]";
    struct aws_credentials c;
    char err[256] = "";

    (void)state;
    assert_int_equal(creds_parse_container_json(j, strlen(j), &c, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "invalid JSON"));
    assert_null(strstr(err, "leaky"));
    assert_int_equal(creds_parse_container_json(arr, strlen(arr), &c, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "not a JSON object"));
}

static void test_parse_json_bad_expiration(void **state)
{
    const char *j = "{\"AccessKeyId\":\"ASIAX\",\"SecretAccessKey\":\"sek\",\"Token\":\"t\","
                    "\"Expiration\":\"next tuesday\"}";
    struct aws_credentials c;
    char err[256] = "";

    (void)state;
    assert_int_equal(creds_parse_container_json(j, strlen(j), &c, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "Expiration"));
}

static void test_parse_rfc3339(void **state)
{
    (void)state;
    assert_int_equal(creds_parse_rfc3339("2015-08-30T12:36:00Z"), 1440938160);
    assert_int_equal(creds_parse_rfc3339("2015-08-30T12:36:00.123456Z"), 1440938160);
    assert_int_equal(creds_parse_rfc3339("2015-08-30T12:36:00+00:00"), 1440938160);
    assert_int_equal(creds_parse_rfc3339("2015-08-30T14:36:00+02:00"), 1440938160);
    assert_int_equal(creds_parse_rfc3339("2015-08-30T07:06:00.5-05:30"), 1440938160);
    assert_int_equal(creds_parse_rfc3339("1970-01-01T00:00:00Z"), 0);
    assert_int_equal(creds_parse_rfc3339("2016-02-29T00:00:00Z"), 1456704000);
    assert_int_equal(creds_parse_rfc3339("2038-01-19T03:14:08Z"), 2147483648LL);

    assert_int_equal(creds_parse_rfc3339(""), -1);
    assert_int_equal(creds_parse_rfc3339("garbage"), -1);
    assert_int_equal(creds_parse_rfc3339("2015-08-30T12:36:00"), -1);   /* no zone */
    assert_int_equal(creds_parse_rfc3339("2015-08-30 12:36:00Z"), -1);  /* no T */
    assert_int_equal(creds_parse_rfc3339("2015-13-30T12:36:00Z"), -1);  /* month */
    assert_int_equal(creds_parse_rfc3339("2015-02-29T12:36:00Z"), -1);  /* not a leap year */
    assert_int_equal(creds_parse_rfc3339("2015-08-30T24:00:00Z"), -1);  /* hour */
    assert_int_equal(creds_parse_rfc3339("2015-08-30T12:36:00.Z"), -1); /* empty fraction */
    assert_int_equal(creds_parse_rfc3339("2015-08-30T12:36:00Zjunk"), -1);
    assert_int_equal(creds_parse_rfc3339("2015-08-30T12:36:00+0200"), -1);
    assert_int_equal(creds_parse_rfc3339(NULL), -1);
}

static void test_need_refresh_boundaries(void **state)
{
    struct aws_credentials c = {.expiration = 100000};

    (void)state;
    snprintf(c.access_key_id, sizeof(c.access_key_id), "AKID");
    assert_false(creds_need_refresh(&c, 100000 - CREDS_REFRESH_AHEAD_S - 1));
    assert_true(creds_need_refresh(&c, 100000 - CREDS_REFRESH_AHEAD_S));
    assert_true(creds_need_refresh(&c, 100000 - CREDS_REFRESH_AHEAD_S + 1));
    assert_true(creds_need_refresh(&c, 100000 + 10));
    c.expiration = 0; /* never expires */
    assert_false(creds_need_refresh(&c, 2000000000));
    c.access_key_id[0] = '\0'; /* nothing cached */
    assert_true(creds_need_refresh(&c, 0));
}

/* ---- container provider ---- */

static void test_container_fetch_and_refresh(void **state)
{
    struct http_stub *s = stub();
    struct aws_credentials c;
    char err[256] = "";

    (void)state;
    add_creds(s, "AKIDONE", "secret-one", 120, 0); /* inside the refresh window */
    add_creds(s, "AKIDTWO", "secret-two", 3600, 0);
    set_full_uri(s);
    setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", "tok-abc", 1);

    struct creds_provider *p = creds_provider_new_default(err, sizeof(err));
    assert_non_null(p);
    assert_string_equal(creds_provider_name(p), "container");
    assert_int_equal(http_stub_requests(s), 0); /* lazy: nothing fetched yet */

    assert_int_equal(creds_provider_get(p, &c, err, sizeof(err)), 0);
    assert_string_equal(c.access_key_id, "AKIDONE");
    assert_string_equal(c.secret_access_key, "secret-one");
    assert_string_equal(c.session_token, "TOKEN-AKIDONE");
    assert_true(c.expiration > time(NULL) + 100);
    assert_int_equal(http_stub_requests(s), 1);
    assert_string_equal(http_stub_request(s, 0)->method, "GET");
    assert_string_equal(http_stub_request(s, 0)->target, "/creds");
    assert_string_equal(http_stub_header(http_stub_request(s, 0), "Authorization"), "tok-abc");

    /* Expires in two minutes, inside CREDS_REFRESH_AHEAD_S: this get refreshes. */
    assert_int_equal(creds_provider_get(p, &c, err, sizeof(err)), 0);
    assert_string_equal(c.access_key_id, "AKIDTWO");
    assert_string_equal(c.secret_access_key, "secret-two");
    assert_int_equal(http_stub_requests(s), 2);

    /* Good for an hour: served from the cache. */
    assert_int_equal(creds_provider_get(p, &c, err, sizeof(err)), 0);
    assert_string_equal(c.access_key_id, "AKIDTWO");
    assert_int_equal(http_stub_requests(s), 2);

    creds_provider_free(p);
    http_stub_stop(s);
}

static void test_container_token_file(void **state)
{
    struct http_stub *s = stub();
    struct aws_credentials c;
    char err[256] = "", path[] = "/tmp/test_credentials_tokenXXXXXX";
    int fd = mkstemp(path);

    (void)state;
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "file-token\n", 11), 11);
    close(fd);
    add_creds(s, "AKIDFILE", "file-secret", 3600, 0);
    set_full_uri(s);
    setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", path, 1);
    setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", "env-token", 1); /* the file must win */

    struct creds_provider *p = creds_provider_new_default(err, sizeof(err));
    assert_non_null(p);
    assert_int_equal(creds_provider_get(p, &c, err, sizeof(err)), 0);
    assert_string_equal(c.access_key_id, "AKIDFILE");
    assert_string_equal(http_stub_header(http_stub_request(s, 0), "Authorization"), "file-token");
    assert_false(request_mentions(s, 0, "env-token"));
    creds_provider_free(p);
    http_stub_stop(s);

    /* A token file that cannot be read is an error naming the variable. */
    unlink(path);
    struct http_stub *s2 = stub();
    add_creds(s2, "AKIDFILE", "file-secret", 3600, 0);
    set_full_uri(s2);
    p = creds_provider_new_default(err, sizeof(err));
    assert_non_null(p);
    assert_int_equal(creds_provider_get(p, &c, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"));
    assert_int_equal(http_stub_requests(s2), 0);
    creds_provider_free(p);
    http_stub_stop(s2);
}

static void test_container_http_error_hides_body(void **state)
{
    struct http_stub *s = stub();
    struct aws_credentials c;
    char err[256] = "";

    (void)state;
    add_reply(s, 500, "{\"SecretAccessKey\":\"body-secret-500\"}", 0);
    set_full_uri(s);
    struct creds_provider *p = creds_provider_new_default(err, sizeof(err));
    assert_non_null(p);
    assert_int_equal(creds_provider_get(p, &c, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "HTTP 500"));
    assert_null(strstr(err, "body-secret-500"));
    assert_int_equal(http_stub_requests(s), 3); /* retried */
    creds_provider_free(p);
    http_stub_stop(s);

    /* A 4xx is not retried: the request itself is wrong. */
    struct http_stub *s2 = stub();
    add_reply(s2, 403, "{\"message\":\"denied body-secret-403\"}", 0);
    set_full_uri(s2);
    p = creds_provider_new_default(err, sizeof(err));
    assert_non_null(p);
    assert_int_equal(creds_provider_get(p, &c, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "HTTP 403"));
    assert_null(strstr(err, "body-secret-403"));
    assert_int_equal(http_stub_requests(s2), 1);
    creds_provider_free(p);
    http_stub_stop(s2);
}

static void test_container_refresh_failure_keeps_valid_creds(void **state)
{
    struct http_stub *s = stub();
    struct aws_credentials c;
    char err[256] = "";

    (void)state;
    add_creds(s, "AKIDKEEP", "keep-secret", 120, 0);
    add_reply(s, 503, "unavailable", 0);
    set_full_uri(s);
    struct creds_provider *p = creds_provider_new_default(err, sizeof(err));
    assert_non_null(p);
    assert_int_equal(creds_provider_get(p, &c, err, sizeof(err)), 0);
    assert_string_equal(c.access_key_id, "AKIDKEEP");

    assert_int_equal(creds_provider_get(p, &c, err, sizeof(err)), 0);
    assert_string_equal(c.access_key_id, "AKIDKEEP");
    size_t after_failed_refresh = http_stub_requests(s);
    assert_int_equal(after_failed_refresh, 1 + 3);

    /* Right after a failure the cache is used without hammering the endpoint. */
    assert_int_equal(creds_provider_get(p, &c, err, sizeof(err)), 0);
    assert_string_equal(c.access_key_id, "AKIDKEEP");
    assert_int_equal(http_stub_requests(s), after_failed_refresh);
    creds_provider_free(p);
    http_stub_stop(s);
}

struct getter {
    struct creds_provider *p;
    struct aws_credentials c;
    int rc;
    char err[256];
};

static void *get_in_thread(void *arg)
{
    struct getter *g = arg;
    g->rc = creds_provider_get(g->p, &g->c, g->err, sizeof(g->err));
    return NULL;
}

/* While one thread refreshes, another gets the cached, still-valid credentials at once. */
static void test_container_refresh_does_not_stall(void **state)
{
    struct http_stub *s = stub();
    struct aws_credentials c;
    char err[256] = "";
    pthread_t t;

    (void)state;
    add_creds(s, "AKIDOLD", "old-secret", 120, 0);
    add_creds(s, "AKIDNEW", "new-secret", 3600, 1500); /* a slow refresh */
    set_full_uri(s);
    struct creds_provider *p = creds_provider_new_default(err, sizeof(err));
    assert_non_null(p);
    assert_int_equal(creds_provider_get(p, &c, err, sizeof(err)), 0);
    assert_string_equal(c.access_key_id, "AKIDOLD");

    struct getter g = {.p = p};
    assert_int_equal(pthread_create(&t, NULL, get_in_thread, &g), 0);
    assert_true(http_stub_wait_requests(s, 2, 3000)); /* the refresh is in flight */

    int64_t start = util_mono_ms();
    assert_int_equal(creds_provider_get(p, &c, err, sizeof(err)), 0);
    int64_t took = util_mono_ms() - start;
    assert_string_equal(c.access_key_id, "AKIDOLD");
    assert_true(took < 500);

    pthread_join(t, NULL);
    assert_int_equal(g.rc, 0);
    assert_string_equal(g.c.access_key_id, "AKIDNEW");
    assert_int_equal(http_stub_requests(s), 2);
    creds_provider_free(p);
    http_stub_stop(s);
}

/* With nothing cached, concurrent callers wait for one shared fetch. */
static void test_container_empty_cache_waits(void **state)
{
    struct http_stub *s = stub();
    char err[256] = "";
    pthread_t t[3];
    struct getter g[3];

    (void)state;
    add_creds(s, "AKIDSHARED", "shared-secret", 3600, 300);
    set_full_uri(s);
    struct creds_provider *p = creds_provider_new_default(err, sizeof(err));
    assert_non_null(p);
    for (int i = 0; i < 3; i++) {
        memset(&g[i], 0, sizeof(g[i]));
        g[i].p = p;
        assert_int_equal(pthread_create(&t[i], NULL, get_in_thread, &g[i]), 0);
    }
    for (int i = 0; i < 3; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(g[i].rc, 0);
        assert_string_equal(g[i].c.access_key_id, "AKIDSHARED");
    }
    assert_int_equal(http_stub_requests(s), 1);
    creds_provider_free(p);
    http_stub_stop(s);
}

static void expect_full_uri(const char *uri, bool ok)
{
    char err[256] = "";
    clear_env();
    setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", uri, 1);
    struct creds_provider *p = creds_provider_new_default(err, sizeof(err));
    if ((p != NULL) != ok) {
        print_error("%s: expected %s, got %s (%s)\n", uri, ok ? "accepted" : "rejected",
                    p ? "accepted" : "rejected", err);
        fail();
    }
    if (!ok && !strstr(err, "AWS_CONTAINER_CREDENTIALS_FULL_URI")) {
        print_error("%s: error does not name the variable: %s\n", uri, err);
        fail();
    }
    if (p)
        assert_string_equal(creds_provider_name(p), "container");
    creds_provider_free(p);
}

static void test_container_uri_rules(void **state)
{
    char err[256] = "";

    (void)state;
    expect_full_uri("http://127.0.0.1:9/creds", true);
    expect_full_uri("http://127.1.2.3/creds", true);
    expect_full_uri("http://[::1]:9/creds", true);
    expect_full_uri("http://localhost:9/creds", true);
    expect_full_uri("http://169.254.170.23/v1/credentials", true);
    expect_full_uri("https://creds.example.com/creds", true);
    expect_full_uri("http://creds.example.com/creds", false);
    expect_full_uri("http://10.0.0.1/creds", false);
    expect_full_uri("http://128.0.0.1/creds", false);
    expect_full_uri("ftp://127.0.0.1/creds", false);
    expect_full_uri("not a url", false);
    /* every URL setting is printable ASCII with a host and no user information */
    expect_full_uri("http://127.0.0.1:9/caf\xc3\xa9", false);
    expect_full_uri("http://127.0.0.1:9/\xff", false);
    expect_full_uri("http://user:pw@127.0.0.1:9/creds", false);
    expect_full_uri("http://127.0.0.1:0/creds", false);

    clear_env();
    setenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/v2/credentials/abc", 1);
    struct creds_provider *p = creds_provider_new_default(err, sizeof(err));
    assert_non_null(p);
    assert_string_equal(creds_provider_name(p), "container");
    creds_provider_free(p);
    setenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "v2/credentials/abc", 1);
    assert_null(creds_provider_new_default(err, sizeof(err)));
    assert_non_null(strstr(err, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"));
    setenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/v2/credentials/a b", 1);
    assert_null(creds_provider_new_default(err, sizeof(err)));
    assert_non_null(strstr(err, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_env_with_session_token, reset_env),
        cmocka_unit_test_setup(test_env_without_session_token, reset_env),
        cmocka_unit_test_setup(test_env_missing_variable_named, reset_env),
        cmocka_unit_test_setup(test_env_value_too_long, reset_env),
        cmocka_unit_test_setup(test_empty_chain, reset_env),
        cmocka_unit_test_setup(test_env_wins_without_network, reset_env),
        cmocka_unit_test_setup(test_static_provider, reset_env),
        cmocka_unit_test(test_parse_json_good),
        cmocka_unit_test(test_parse_json_missing_fields),
        cmocka_unit_test(test_parse_json_bad),
        cmocka_unit_test(test_parse_json_bad_expiration),
        cmocka_unit_test(test_parse_rfc3339),
        cmocka_unit_test(test_need_refresh_boundaries),
        cmocka_unit_test_setup(test_container_fetch_and_refresh, reset_env),
        cmocka_unit_test_setup(test_container_token_file, reset_env),
        cmocka_unit_test_setup(test_container_http_error_hides_body, reset_env),
        cmocka_unit_test_setup(test_container_refresh_failure_keeps_valid_creds, reset_env),
        cmocka_unit_test_setup(test_container_refresh_does_not_stall, reset_env),
        cmocka_unit_test_setup(test_container_empty_cache_waits, reset_env),
        cmocka_unit_test_setup(test_container_uri_rules, reset_env),
    };
    int rc;

    curl_global_init(CURL_GLOBAL_DEFAULT);
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    clear_env();
    curl_global_cleanup();
    return rc;
}
