/*
 * test_config.c - the configuration tables: every kind's parser and
 * validator, config_url_valid (issue 10, fault 5: a URL with an invalid
 * UTF-8 byte must be refused at load), required variables and defaults,
 * table mistakes, --help, and the SQS / credential chain check at start.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static const char *const aws_vars[] = {
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ENDPOINT_URL_SQS",
    "AWS_ENDPOINT_URL",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    "SQS_MAX_ATTEMPTS",
    "SQS_CONNECT_TIMEOUT_MS",
    "SQS_REQUEST_TIMEOUT_MS",
};

static int clear_aws(void **s)
{
    (void)s;
    for (size_t i = 0; i < N(aws_vars); i++)
        unsetenv(aws_vars[i]);
    return 0;
}

/* ---- config_url_valid ---------------------------------------------------- */

static void test_url_accepts_the_urls_we_use(void **s)
{
    (void)s;
    char why[200];
    const char *good[] = {
        "http://127.0.0.1:4566/000000000000/orders",
        "https://sqs.us-east-1.amazonaws.com/123456789012/orders",
        "https://sqs.us-east-1.amazonaws.com",
        "http://localstack:4566/000000000000/orders",
        "HTTPS://Example.COM/",
        "http://[::1]:8080/x?y=1#z",
        "http://my_host.internal:1",
        "https://h:65535/",
    };
    for (size_t i = 0; i < N(good); i++) {
        why[0] = '\0';
        if (config_url_valid(good[i], 0, why, sizeof(why)) != 0)
            fail_msg("refused %s: %s", good[i], why);
    }
}

static void test_fault5_url_with_invalid_utf8_byte_is_refused(void **s)
{
    (void)s;
    char why[200];
    /* The value that crashed the worker's first receive (issue 10, fault 5). */
    assert_int_equal(config_url_valid("http://127.0.0.1:4566/\xff", 0, why, sizeof(why)), -1);
    assert_non_null(strstr(why, "printable ASCII"));
    assert_non_null(strstr(why, "0xff"));
    assert_non_null(strstr(why, "offset 22"));
    /* valid UTF-8 is still not ASCII: SigV4 and SQS see bytes */
    assert_int_equal(config_url_valid("http://127.0.0.1:4566/\xc3\xa9", 0, why, sizeof(why)), -1);
    assert_int_equal(config_url_valid("http://h\xff/q", 0, why, sizeof(why)), -1);
}

static void test_url_refusals_say_why_without_the_url(void **s)
{
    (void)s;
    static char longurl[CONFIG_URL_MAX + 40];
    memcpy(longurl, "https://h/", 10);
    memset(longurl + 10, 'a', sizeof(longurl) - 11);
    struct {
        const char *url, *reason;
    } bad[] = {
        {"http://127.0.0.1:4566/q\x01", "control characters"},
        {"http://127.0.0.1:4566/\x7f", "control characters"},
        {"http://127.0.0.1:4566/a b", "whitespace"},
        {"http://127.0.0.1:4566/q\n", "whitespace"},
        {"\thttp://127.0.0.1:4566/q", "whitespace"},
        {"ftp://secret-host/q", "http:// or https://"},
        {"secret-host:4566/q", "http:// or https://"},
        {"", "http:// or https://"},
        {"http://", "no host"},
        {"http:///secret-path", "no host"},
        {"http://:4566/q", "no host"},
        {"https://secret-host:0/", "port"},
        {"https://secret-host:65536/", "port"},
        {"https://secret-host:/", "port"},
        {"https://secret-host:80a/", "port"},
        {"https://secret-host:000443/", "port"},
        {"https://user:secret-pw@h/", "user name or password"},
        {"http://[::1/q", "IPv6"},
        {"http://[secret]/q", "IPv6"},
        {"http://secret-h%6fst/", "host name"},
        {"http://[::1]x/", "after the host"},
        {longurl, "at most"},
    };
    for (size_t i = 0; i < N(bad); i++) {
        char why[200] = "";
        if (config_url_valid(bad[i].url, 0, why, sizeof(why)) != -1)
            fail_msg("accepted bad URL #%zu", i);
        if (!strstr(why, bad[i].reason))
            fail_msg("URL #%zu: reason '%s' lacks '%s'", i, why, bad[i].reason);
        assert_null(strstr(why, "secret"));
    }
}

static void test_url_https_flag_allows_http_only_to_loopback(void **s)
{
    (void)s;
    char why[200];
    assert_int_equal(
        config_url_valid("https://idp.example.com/jwks", CONFIG_URL_HTTPS, why, sizeof(why)), 0);
    assert_int_equal(
        config_url_valid("http://127.0.0.1:9000/jwks", CONFIG_URL_HTTPS, why, sizeof(why)), 0);
    assert_int_equal(config_url_valid("http://127.9.9.9/jwks", CONFIG_URL_HTTPS, why, sizeof(why)),
                     0);
    assert_int_equal(config_url_valid("http://LocalHost:1/", CONFIG_URL_HTTPS, why, sizeof(why)),
                     0);
    assert_int_equal(config_url_valid("http://[::1]:8/", CONFIG_URL_HTTPS, why, sizeof(why)), 0);
    const char *bad[] = {"http://idp.example.com/jwks", "http://127.0.0.1.nip.io/jwks",
                         "http://10.0.0.1/", "http://[::2]/", "http://localhost.example.com/"};
    for (size_t i = 0; i < N(bad); i++) {
        why[0] = '\0';
        if (config_url_valid(bad[i], CONFIG_URL_HTTPS, why, sizeof(why)) != -1)
            fail_msg("accepted %s", bad[i]);
        assert_non_null(strstr(why, "https"));
        /* without the flag plain http is fine */
        assert_int_equal(config_url_valid(bad[i], 0, why, sizeof(why)), 0);
    }
}

/* ---- one table with a variable of every kind ----------------------------- */

static const struct config_choice colours[] = {{"red", 1}, {"green", 2}, {"verde", 2}, {NULL, 0}};
static const struct config_choice algs[] = {{"RS256", 1}, {"ES256", 2}, {NULL, 0}};

static const struct config_var v_int = {.name = "T_INT",
                                        .def = "42",
                                        .programs = CONFIG_API,
                                        .kind = CONFIG_INT,
                                        .min = 1,
                                        .max = 100,
                                        .help = "i"};
static const struct config_var v_neg = {.name = "T_NEG",
                                        .def = "-5",
                                        .programs = CONFIG_API,
                                        .kind = CONFIG_INT,
                                        .min = -10,
                                        .max = 10,
                                        .help = "n"};
static const struct config_var v_enum = {.name = "T_ENUM",
                                         .def = "red",
                                         .programs = CONFIG_API,
                                         .kind = CONFIG_ENUM,
                                         .choices = colours,
                                         .help = "e"};
static const struct config_var v_set = {.name = "T_SET",
                                        .def = "RS256,ES256",
                                        .programs = CONFIG_API,
                                        .kind = CONFIG_SET,
                                        .choices = algs,
                                        .help = "s"};
static const struct config_var v_word = {
    .name = "T_WORD", .programs = CONFIG_API, .kind = CONFIG_WORD, .help = "w"};
static const struct config_var v_text = {
    .name = "T_TEXT", .programs = CONFIG_API, .kind = CONFIG_TEXT, .help = "t"};
static const struct config_var v_list = {
    .name = "T_LIST", .programs = CONFIG_API, .kind = CONFIG_LIST, .help = "l"};
static const struct config_var v_region = {
    .name = "T_REGION", .programs = CONFIG_API, .kind = CONFIG_REGION, .help = "r"};
static const struct config_var v_url = {.name = "T_URL",
                                        .programs = CONFIG_API,
                                        .kind = CONFIG_URL,
                                        .flags = CONFIG_REQUIRED,
                                        .help = "u"};
static const struct config_var v_path = {
    .name = "T_UPATH", .programs = CONFIG_API, .kind = CONFIG_URL_PATH, .help = "p"};
static const struct config_var v_ip = {
    .name = "T_IP", .def = "0.0.0.0", .programs = CONFIG_API, .kind = CONFIG_IPV4, .help = "a"};
static const struct config_var v_db = {
    .name = "T_DB", .programs = CONFIG_API, .kind = CONFIG_DATABASE_URL, .help = "d"};
static const struct config_var v_file = {
    .name = "T_FILE", .programs = CONFIG_API, .kind = CONFIG_FILE, .help = "f"};
static const struct config_var v_dir = {
    .name = "T_DIR", .programs = CONFIG_API, .kind = CONFIG_DIR, .help = "d"};

static struct {
    int64_t i, neg;
    int e;
    unsigned set;
    const char *word, *text, *list, *region, *url, *path, *ip, *db, *file, *dir;
} got;

static const struct config_entry entries[] = {
    {.var = &v_int, .to.i = &got.i},     {.var = &v_neg, .to.i = &got.neg},
    {.var = &v_enum, .to.e = &got.e},    {.var = &v_set, .to.set = &got.set},
    {.var = &v_word, .to.s = &got.word}, {.var = &v_text, .to.s = &got.text},
    {.var = &v_list, .to.s = &got.list}, {.var = &v_region, .to.s = &got.region},
    {.var = &v_url, .to.s = &got.url},   {.var = &v_path, .to.s = &got.path},
    {.var = &v_ip, .to.s = &got.ip},     {.var = &v_db, .to.s = &got.db},
    {.var = &v_file, .to.s = &got.file}, {.var = &v_dir, .to.s = &got.dir},
};
static const struct config_table table = {CONFIG_API, entries, N(entries)};

static const char *const table_vars[] = {"T_INT",  "T_NEG",  "T_ENUM",   "T_SET", "T_WORD",
                                         "T_TEXT", "T_LIST", "T_REGION", "T_URL", "T_UPATH",
                                         "T_IP",   "T_DB",   "T_FILE",   "T_DIR"};

static int reset_table_env(void **s)
{
    (void)s;
    for (size_t i = 0; i < N(table_vars); i++)
        unsetenv(table_vars[i]);
    setenv("T_URL", "http://127.0.0.1:4566/q", 1);
    memset(&got, 0xa5, sizeof(got)); /* a field left untouched would show */
    return 0;
}

static void test_defaults_apply_when_unset_or_empty(void **s)
{
    (void)s;
    char err[256];
    setenv("T_INT", "", 1); /* empty counts as unset, as in the AWS SDKs */
    assert_int_equal(config_load(&table, CONFIG_SERVE, err, sizeof(err)), 0);
    assert_int_equal(got.i, 42);
    assert_int_equal(got.neg, -5);
    assert_int_equal(got.e, 1);
    assert_int_equal(got.set, 3u);
    assert_string_equal(got.ip, "0.0.0.0");
    assert_string_equal(got.url, "http://127.0.0.1:4566/q");
    /* no default: the field is NULL */
    assert_null(got.word);
    assert_null(got.db);
    assert_null(got.file);
}

static void test_values_are_parsed_into_their_fields(void **s)
{
    (void)s;
    char err[256];
    setenv("T_INT", "100", 1);
    setenv("T_NEG", "-10", 1);
    setenv("T_ENUM", "VERDE", 1); /* choices match in any case; aliases share a value */
    setenv("T_SET", "ES256", 1);
    setenv("T_WORD", "orders/", 1);
    setenv("T_TEXT", "Basic abc def", 1);
    setenv("T_LIST", "order-api,admin-api", 1);
    setenv("T_REGION", "eu-west-1", 1);
    setenv("T_UPATH", "/v2/credentials/abc", 1);
    setenv("T_IP", "127.0.0.1", 1);
    setenv("T_DB", "postgresql://u@127.0.0.1:5432/orders", 1);
    setenv("T_FILE", TEST_DATA_DIR "/../test_config.c", 1);
    setenv("T_DIR", TEST_DATA_DIR, 1);
    assert_int_equal(config_load(&table, CONFIG_SERVE, err, sizeof(err)), 0);
    assert_int_equal(got.i, 100);
    assert_int_equal(got.neg, -10);
    assert_int_equal(got.e, 2);
    assert_int_equal(got.set, 2u);
    assert_string_equal(got.word, "orders/");
    assert_string_equal(got.text, "Basic abc def");
    assert_string_equal(got.list, "order-api,admin-api");
    assert_string_equal(got.region, "eu-west-1");
    assert_string_equal(got.path, "/v2/credentials/abc");
    assert_string_equal(got.ip, "127.0.0.1");
    assert_string_equal(got.db, "postgresql://u@127.0.0.1:5432/orders");
    assert_string_equal(got.dir, TEST_DATA_DIR);
    /* keyword form and a socket directory in a URI are libpq's too */
    setenv("T_DB", "host=/var/run/postgresql dbname=orders", 1);
    assert_int_equal(config_load(&table, CONFIG_SERVE, err, sizeof(err)), 0);
    setenv("T_DB", "postgresql:///orders?host=/var/run/postgresql", 1);
    assert_int_equal(config_load(&table, CONFIG_SERVE, err, sizeof(err)), 0);
    setenv("T_DB", "postgresql://a:5432,b/orders", 1); /* several hosts, one default port */
    assert_int_equal(config_load(&table, CONFIG_SERVE, err, sizeof(err)), 0);
}

/* Each bad value must fail the load with a message that names the variable,
 * says what is wrong, and never quotes the value. */
static void test_every_kind_refuses_bad_values(void **s)
{
    (void)s;
    struct {
        const char *var, *value, *reason;
    } bad[] = {
        {"T_INT", "0", "integer from 1 to 100"},
        {"T_INT", "101", "integer from 1 to 100"},
        {"T_INT", "4x2", "integer"},
        {"T_INT", " 5", "integer"},
        {"T_INT", "+5", "integer"},
        {"T_INT", "99999999999999999999", "integer"},
        {"T_NEG", "-11", "integer from -10 to 10"},
        {"T_NEG", "-", "integer"},
        {"T_ENUM", "blue", "one of red, green, verde"},
        {"T_ENUM", "red ", "one of"},
        {"T_SET", "rs256", "of RS256, ES256"}, /* JOSE names are exact */
        {"T_SET", "RS256,HS256", "of RS256, ES256"},
        {"T_SET", "RS256,", "comma-separated"},
        {"T_SET", "RS256, ES256", "no spaces"},
        {"T_WORD", "two words", "whitespace"},
        {"T_WORD", "x\x01y", "control characters"},
        {"T_WORD", "caf\xc3\xa9", "printable ASCII"},
        {"T_TEXT", "tab\there", "whitespace"},
        {"T_LIST", "a,,b", "empty items"},
        {"T_LIST", ",a", "empty items"},
        {"T_LIST", "a b", "whitespace"},
        {"T_REGION", "US-EAST-1", "region name"},
        {"T_REGION", "us east 1", "region name"},
        {"T_URL", "http://127.0.0.1:4566/\xff", "printable ASCII"},
        {"T_URL", "sqs.us-east-1.amazonaws.com/q", "http:// or https://"},
        {"T_UPATH", "v2/credentials", "start with '/'"},
        {"T_UPATH", "/v2/\x01", "control characters"},
        {"T_IP", "localhost", "IPv4 address"},
        {"T_IP", "::1", "IPv4 address"},
        {"T_IP", "256.0.0.1", "IPv4 address"},
        {"T_IP", "127.0.0.1 ", "IPv4 address"},
        {"T_DB", "host=x password=s3cr3t bogus", "not a valid libpq"},
        {"T_DB", "postgresql://u:s3cr3t@h:notaport/db", "ports from 1 to 65535"},
        {"T_DB", "host=h port=65536 password=s3cr3t", "ports from 1 to 65535"},
        {"T_DB", "host=h,g port=5432,0", "ports from 1 to 65535"},
        {"T_DB", "postgresql:///orders", "host or a socket directory"},
        {"T_DB", "postgresql://u:s3cr3t@h/db\xff", "printable ASCII"},
        {"T_DB", "postgresql://u:s3cr3t@h/db\x01", "printable ASCII"},
        {"T_FILE", "/nonexistent/s3cr3t", "readable file"},
        {"T_FILE", TEST_DATA_DIR, "must name a file"},
        {"T_FILE", "/tmp/x\x01", "control characters"},
        {"T_DIR", TEST_DATA_DIR "/../test_config.c", "must name a directory"},
        {"T_DIR", "/nonexistent", "readable directory"},
    };
    for (size_t i = 0; i < N(bad); i++) {
        char err[256] = "";
        reset_table_env(NULL);
        setenv(bad[i].var, bad[i].value, 1);
        if (config_load(&table, CONFIG_SERVE, err, sizeof(err)) != -1)
            fail_msg("#%zu: %s accepted a bad value", i, bad[i].var);
        if (strncmp(err, bad[i].var, strlen(bad[i].var)) != 0 || !strstr(err, bad[i].reason))
            fail_msg("#%zu: message '%s' should start with %s and say '%s'", i, err, bad[i].var,
                     bad[i].reason);
        assert_null(strstr(err, "s3cr3t"));
        assert_null(strchr(err, '\n'));
        for (const char *p = err; *p; p++) /* one printable line, whatever the value held */
            assert_true(*p >= 0x20 && *p < 0x7f);
    }
}

static void test_required_variable_is_named_when_missing(void **s)
{
    (void)s;
    char err[256];
    unsetenv("T_URL");
    assert_int_equal(config_load(&table, CONFIG_SERVE, err, sizeof(err)), -1);
    assert_string_equal(err, "T_URL is required but not set");
    setenv("T_URL", "", 1);
    assert_int_equal(config_load(&table, CONFIG_SERVE, err, sizeof(err)), -1);
    assert_string_equal(err, "T_URL is required but not set");
}

static void test_only_the_commands_entries_are_loaded(void **s)
{
    (void)s;
    char err[256];
    int64_t port = 0, other = 0;
    static const struct config_var v_other = {.name = "T_OTHER",
                                              .def = "1",
                                              .programs = CONFIG_API,
                                              .kind = CONFIG_INT,
                                              .min = 1,
                                              .max = 9,
                                              .help = "o"};
    const struct config_entry es[] = {
        {.var = &v_int, .to.i = &port, .cmds = CONFIG_SERVE | CONFIG_HEALTHCHECK},
        {.var = &v_other, .to.i = &other},
    };
    const struct config_table t = {CONFIG_API, es, N(es)};
    setenv("T_OTHER", "bad", 1);
    setenv("T_INT", "7", 1);
    assert_int_equal(config_load(&t, CONFIG_HEALTHCHECK, err, sizeof(err)), 0);
    assert_int_equal(port, 7);
    assert_int_equal(other, 0);
    assert_int_equal(config_load(&t, CONFIG_SERVE, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "T_OTHER"));
    unsetenv("T_OTHER");
    unsetenv("T_INT");
}

static void test_table_mistakes_are_caught(void **s)
{
    (void)s;
    char err[256];
    int e = 0;
    int64_t i = 0;
    unsetenv("T_INT");
    /* an INT bound to an int field */
    const struct config_entry wrong_type[] = {{.var = &v_int, .to.e = &e}};
    const struct config_table t1 = {CONFIG_API, wrong_type, 1};
    assert_int_equal(config_load(&t1, CONFIG_SERVE, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "T_INT"));
    assert_non_null(strstr(err, "wrong type"));
    /* two fields bound */
    const struct config_entry two[] = {{.var = &v_int, .to.i = &i, .to.e = &e}};
    const struct config_table t2 = {CONFIG_API, two, 1};
    assert_int_equal(config_load(&t2, CONFIG_SERVE, err, sizeof(err)), -1);
    /* an API-only variable in the worker's table */
    const struct config_entry foreign[] = {{.var = &v_int, .to.i = &i}};
    const struct config_table t3 = {CONFIG_WORKER, foreign, 1};
    assert_int_equal(config_load(&t3, CONFIG_SERVE, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "T_INT"));
    /* a default its own parser refuses */
    static const struct config_var bad_def = {.name = "T_BADDEF",
                                              .def = "0",
                                              .programs = CONFIG_API,
                                              .kind = CONFIG_INT,
                                              .min = 1,
                                              .max = 2,
                                              .help = "b"};
    const struct config_entry bd[] = {{.var = &bad_def, .to.i = &i}};
    const struct config_table t4 = {CONFIG_API, bd, 1};
    unsetenv("T_BADDEF");
    assert_int_equal(config_load(&t4, CONFIG_SERVE, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "(in its default)"));
}

static void test_help_lists_each_variable_with_default_and_rule(void **s)
{
    (void)s;
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    assert_non_null(f);
    config_help(&table, f);
    fclose(f);
    assert_non_null(strstr(out, "\n  T_INT [42]  integer from 1 to 100\n      i\n"));
    assert_non_null(strstr(out, "\n  T_ENUM [red]  one of red, green, verde\n"));
    assert_non_null(strstr(out, "\n  T_URL [required]  http or https URL\n"));
    assert_non_null(strstr(out, "\n  T_WORD [—]\n      w\n"));
    assert_non_null(strstr(out, "exits with status 2"));
    for (size_t i = 0; i < N(table_vars); i++) {
        char line[64];
        snprintf(line, sizeof(line), "\n  %s [", table_vars[i]);
        assert_non_null(strstr(out, line));
    }
    free(out);
}

/* ---- the variables both programs read ------------------------------------ */

static const struct config_var *const shared[] = {
    &cf_database_url,
    &cf_sqs_queue_url,
    &cf_aws_region,
    &cf_aws_default_region,
    &cf_aws_endpoint_url_sqs,
    &cf_aws_endpoint_url,
    &cf_aws_access_key_id,
    &cf_aws_secret_access_key,
    &cf_aws_session_token,
    &cf_aws_container_credentials_relative_uri,
    &cf_aws_container_credentials_full_uri,
    &cf_aws_container_authorization_token,
    &cf_aws_container_authorization_token_file,
    &cf_sqs_max_attempts,
    &cf_sqs_connect_timeout_ms,
    &cf_sqs_request_timeout_ms,
    &cf_log_level,
    &cf_log_format,
    &cf_bind_address,
    &cf_metrics_port,
};

static void test_shared_variables_are_for_both_and_their_defaults_parse(void **s)
{
    (void)s;
    char err[256];
    for (size_t i = 0; i < N(shared); i++) {
        const struct config_var *v = shared[i];
        struct config_entry e = {.var = v};
        assert_int_equal(v->programs, CONFIG_API | CONFIG_WORKER);
        assert_non_null(v->help);
        unsetenv(v->name);
        if (v->flags & CONFIG_REQUIRED) {
            assert_int_equal(config_load_entry(&e, err, sizeof(err)), -1);
            assert_non_null(strstr(err, v->name));
        } else if (config_load_entry(&e, err, sizeof(err)) != 0) {
            fail_msg("default of %s: %s", v->name, err);
        }
    }
    assert_string_equal(config_shown_default(&cf_database_url), "required");
    assert_string_equal(config_shown_default(&cf_aws_region), "AWS_DEFAULT_REGION");
    assert_string_equal(config_shown_default(&cf_aws_session_token), "—");
    assert_string_equal(config_shown_default(&cf_metrics_port), "9100");
}

/* The SQS client's rules are checked by the table first, with the same
 * ranges: a value the table accepts, the client accepts too. */
static void test_sqs_ranges_match_the_client(void **s)
{
    (void)s;
    char err[256];
    struct sqs_config c;
    const struct config_var *ints[] = {&cf_sqs_max_attempts, &cf_sqs_connect_timeout_ms,
                                       &cf_sqs_request_timeout_ms};
    setenv("AWS_REGION", "us-east-1", 1);
    setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "secret", 1);
    for (size_t i = 0; i < N(ints); i++) {
        char v[32];
        int64_t edge[] = {ints[i]->min, ints[i]->max};
        for (size_t k = 0; k < 2; k++) {
            snprintf(v, sizeof(v), "%lld", (long long)edge[k]);
            setenv(ints[i]->name, v, 1);
            if (config_load_aws(&c, err, sizeof(err)) != 0)
                fail_msg("%s=%s: %s", ints[i]->name, v, err);
        }
        unsetenv(ints[i]->name);
    }
}

static void test_load_aws_needs_a_region_and_a_credential_source(void **s)
{
    (void)s;
    char err[256];
    struct sqs_config c;
    assert_int_equal(config_load_aws(&c, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "AWS_REGION"));

    setenv("AWS_DEFAULT_REGION", "eu-west-1", 1);
    assert_int_equal(config_load_aws(&c, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "AWS_ACCESS_KEY_ID"));
    assert_non_null(strstr(err, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"));

    setenv("AWS_SECRET_ACCESS_KEY", "s3cr3t", 1);
    assert_int_equal(config_load_aws(&c, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "AWS_ACCESS_KEY_ID"));
    assert_null(strstr(err, "s3cr3t"));

    setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE", 1);
    assert_int_equal(config_load_aws(&c, err, sizeof(err)), 0);
    assert_string_equal(c.region, "eu-west-1");
    assert_string_equal(c.endpoint, "https://sqs.eu-west-1.amazonaws.com");

    /* the container endpoint is a source too, found without a network call */
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
    setenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/v2/credentials/x", 1);
    setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4566", 1);
    assert_int_equal(config_load_aws(&c, err, sizeof(err)), 0);
    assert_string_equal(c.endpoint, "http://127.0.0.1:4566");

    setenv("AWS_ENDPOINT_URL_SQS", "http://127.0.0.1:4566/path", 1);
    assert_int_equal(config_load_aws(&c, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "AWS_ENDPOINT_URL_SQS"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_url_accepts_the_urls_we_use),
        cmocka_unit_test(test_fault5_url_with_invalid_utf8_byte_is_refused),
        cmocka_unit_test(test_url_refusals_say_why_without_the_url),
        cmocka_unit_test(test_url_https_flag_allows_http_only_to_loopback),
        cmocka_unit_test_setup(test_defaults_apply_when_unset_or_empty, reset_table_env),
        cmocka_unit_test_setup(test_values_are_parsed_into_their_fields, reset_table_env),
        cmocka_unit_test_setup(test_every_kind_refuses_bad_values, reset_table_env),
        cmocka_unit_test_setup(test_required_variable_is_named_when_missing, reset_table_env),
        cmocka_unit_test(test_only_the_commands_entries_are_loaded),
        cmocka_unit_test(test_table_mistakes_are_caught),
        cmocka_unit_test(test_help_lists_each_variable_with_default_and_rule),
        cmocka_unit_test_setup(test_shared_variables_are_for_both_and_their_defaults_parse,
                               clear_aws),
        cmocka_unit_test_setup_teardown(test_sqs_ranges_match_the_client, clear_aws, clear_aws),
        cmocka_unit_test_setup_teardown(test_load_aws_needs_a_region_and_a_credential_source,
                                        clear_aws, clear_aws),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
