/*
 * test_sigv4.c - runs every header-signing case of the official AWS SigV4 test
 * suite (tests/unit/data/sigv4, copied from aws-c-auth) through sigv4_sign.
 *
 * Each vector folder becomes its own cmocka test, so a failure names the vector;
 * the request.txt parser is deliberately literal (folded lines keep their line
 * break, repeated headers stay separate) so the signer, not the test, does the
 * canonicalization the suite checks.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <cmocka.h>
#include <jansson.h>

#include "sigv4.h"

#define VECTOR_DIR TEST_DATA_DIR "/sigv4"
#define MAX_VECTORS 128
#define MAX_HEADERS 32
/* The suite as copied holds this many cases; fewer means the data went missing. */
#define EXPECTED_VECTORS 38

static const char *const suite_secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

struct vector {
    char name[256];
    char dir[PATH_MAX];
};

struct parsed_request {
    char *text; /* owns the strings below */
    char method[16];
    char *path;
    char *query;
    struct sigv4_header headers[MAX_HEADERS];
    char *values[MAX_HEADERS]; /* owned copies, so folded lines can be joined */
    size_t n_headers;
    const char *body;
    size_t body_len;
};

static char *read_file(const char *dir, const char *name, size_t *len)
{
    char path[PATH_MAX + 64];
    FILE *f;
    char *data;
    long n;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    f = fopen(path, "rb");
    if (!f)
        return NULL;
    if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
        fclose(f);
        return NULL;
    }
    data = malloc((size_t)n + 1);
    if (data && fread(data, 1, (size_t)n, f) != (size_t)n) {
        free(data);
        data = NULL;
    }
    fclose(f);
    if (data) {
        data[n] = '\0';
        if (len)
            *len = (size_t)n;
    }
    return data;
}

static void free_request(struct parsed_request *r)
{
    for (size_t i = 0; i < r->n_headers; i++)
        free(r->values[i]);
    free(r->text);
}

/* Request line "METHOD PATH HTTP/1.1" (the path may contain spaces), header lines
 * with folded continuations, a blank line, then the body. Returns 0 or -1. */
static int parse_request(char *text, size_t len, struct parsed_request *r)
{
    char *line, *next, *sp, *last_sp, *q;

    memset(r, 0, sizeof(*r));
    r->text = text;
    next = strchr(text, '\n');
    if (!next)
        return -1;
    *next++ = '\0';
    line = text;
    sp = strchr(line, ' ');
    last_sp = strrchr(line, ' ');
    if (!sp || sp == last_sp || (size_t)(sp - line) >= sizeof(r->method))
        return -1;
    memcpy(r->method, line, (size_t)(sp - line));
    *last_sp = '\0';
    r->path = sp + 1;
    q = strchr(r->path, '?');
    if (q) {
        *q = '\0';
        r->query = q + 1;
    }

    while (next && *next && *next != '\n') {
        line = next;
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        if (line[0] == ' ' || line[0] == '\t') {
            size_t i = r->n_headers - 1;
            char *joined;
            if (r->n_headers == 0)
                return -1;
            joined = malloc(strlen(r->values[i]) + strlen(line) + 2);
            if (!joined)
                return -1;
            sprintf(joined, "%s\n%s", r->values[i], line);
            free(r->values[i]);
            r->values[i] = joined;
            r->headers[i].value = joined;
            continue;
        }
        char *colon = strchr(line, ':');
        if (!colon || r->n_headers == MAX_HEADERS)
            return -1;
        *colon = '\0';
        r->values[r->n_headers] = strdup(colon + 1);
        if (!r->values[r->n_headers])
            return -1;
        r->headers[r->n_headers].name = line;
        r->headers[r->n_headers].value = r->values[r->n_headers];
        r->n_headers++;
    }
    if (next && *next == '\n') {
        r->body = next + 1;
        r->body_len = len - (size_t)(r->body - text);
    }
    return 0;
}

static time_t parse_utc(const char *s)
{
    struct tm tm;
    const char *end;

    memset(&tm, 0, sizeof(tm));
    end = strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm);
    if (!end || *end)
        return (time_t)-1;
    return timegm(&tm);
}

/* Fills creds and signing from context.json; omit_session_token means the token is
 * added after signing, which is the same as signing without it. */
static int parse_context(const char *json, struct aws_credentials *creds, struct sigv4_signing *s,
                         char *region, char *service, size_t cap)
{
    json_error_t jerr;
    json_t *root = json_loads(json, 0, &jerr);
    const char *akid = NULL, *secret = NULL, *token = NULL, *reg = NULL, *svc = NULL, *ts = NULL;
    int normalize = 0, sign_body = 0, omit_token = 0;
    int rc = -1;

    if (!root)
        return -1;
    if (json_unpack_ex(root, &jerr, 0, "{s:{s:s, s:s, s?:s}, s:b, s:s, s:s, s:b, s:s, s?:b}",
                       "credentials", "access_key_id", &akid, "secret_access_key", &secret, "token",
                       &token, "normalize", &normalize, "region", &reg, "service", &svc,
                       "sign_body", &sign_body, "timestamp", &ts, "omit_session_token",
                       &omit_token) != 0)
        goto done;
    memset(creds, 0, sizeof(*creds));
    snprintf(creds->access_key_id, sizeof(creds->access_key_id), "%s", akid);
    snprintf(creds->secret_access_key, sizeof(creds->secret_access_key), "%s", secret);
    if (token && !omit_token)
        snprintf(creds->session_token, sizeof(creds->session_token), "%s", token);
    snprintf(region, cap, "%s", reg);
    snprintf(service, cap, "%s", svc);
    memset(s, 0, sizeof(*s));
    s->region = region;
    s->service = service;
    s->creds = creds;
    s->now = parse_utc(ts);
    s->normalize_path = normalize;
    s->sign_body = sign_body;
    rc = s->now == (time_t)-1 ? -1 : 0;
done:
    json_decref(root);
    return rc;
}

/* The Authorization value from header-signed-request.txt, or NULL. */
static char *expected_authorization(const char *signed_request)
{
    const char *p = strstr(signed_request, "\nAuthorization:");
    const char *end;

    if (!p)
        return NULL;
    p += strlen("\nAuthorization:");
    end = strchr(p, '\n');
    return strndup(p, end ? (size_t)(end - p) : strlen(p));
}

static void expect_equal(const char *vector, const char *what, const char *expected,
                         const char *got)
{
    if (!expected || !got || strcmp(expected, got) != 0) {
        print_error("%s: %s differs\n--- expected\n%s\n--- got\n%s\n", vector, what,
                    expected ? expected : "(missing file)", got ? got : "(null)");
        fail();
    }
}

static void test_vector(void **state)
{
    const struct vector *v = *state;
    struct parsed_request req;
    struct aws_credentials creds;
    struct sigv4_signing s;
    struct sigv4_result out;
    char region[64], service[64], err[256] = "";
    size_t len = 0;
    char *text = read_file(v->dir, "request.txt", &len);
    char *context = read_file(v->dir, "context.json", NULL);
    char *want_canon = read_file(v->dir, "header-canonical-request.txt", NULL);
    char *want_sts = read_file(v->dir, "header-string-to-sign.txt", NULL);
    char *want_sig = read_file(v->dir, "header-signature.txt", NULL);
    char *signed_req = read_file(v->dir, "header-signed-request.txt", NULL);
    char *want_auth = signed_req ? expected_authorization(signed_req) : NULL;

    if (!text || !context) {
        print_error("%s: request.txt or context.json missing\n", v->name);
        fail();
    }
    if (parse_request(text, len, &req) != 0) {
        print_error("%s: cannot parse request.txt\n", v->name);
        fail();
    }
    if (parse_context(context, &creds, &s, region, service, sizeof(region)) != 0) {
        print_error("%s: cannot parse context.json\n", v->name);
        fail();
    }

    struct sigv4_request r = {
        .method = req.method,
        .path = req.path,
        .query = req.query,
        .headers = req.headers,
        .n_headers = req.n_headers,
        .body = req.body,
        .body_len = req.body_len,
    };
    if (sigv4_sign(&r, &s, &out, err, sizeof(err)) != 0) {
        print_error("%s: sigv4_sign failed: %s\n", v->name, err);
        fail();
    }
    expect_equal(v->name, "canonical request", want_canon, out.canonical_request);
    expect_equal(v->name, "string to sign", want_sts, out.string_to_sign);
    expect_equal(v->name, "signature", want_sig, out.signature);
    expect_equal(v->name, "Authorization header", want_auth, out.authorization);

    sigv4_result_free(&out);
    free_request(&req);
    free(context);
    free(want_canon);
    free(want_sts);
    free(want_sig);
    free(signed_req);
    free(want_auth);
}

static const struct sigv4_header host_only[] = {{"Host", "sqs.eu-west-1.amazonaws.com"}};

static void fill_creds(struct aws_credentials *c, const char *token)
{
    memset(c, 0, sizeof(*c));
    snprintf(c->access_key_id, sizeof(c->access_key_id), "AKIDEXAMPLE");
    snprintf(c->secret_access_key, sizeof(c->secret_access_key), "%s", suite_secret);
    snprintf(c->session_token, sizeof(c->session_token), "%s", token);
}

static struct sigv4_signing signing_for(const struct aws_credentials *c)
{
    struct sigv4_signing s = {
        .region = "eu-west-1",
        .service = "sqs",
        .creds = c,
        .now = 1440938160, /* 2015-08-30T12:36:00Z */
        .normalize_path = true,
        .sign_body = false,
    };
    return s;
}

static void test_session_token_is_signed(void **state)
{
    struct aws_credentials c;
    struct sigv4_signing s;
    struct sigv4_result out;
    struct sigv4_request r = {.method = "POST", .path = "/", .headers = host_only, .n_headers = 1};
    char err[256];

    (void)state;
    fill_creds(&c, "FQoGZXIvYXdzEXAMPLETOKEN");
    s = signing_for(&c);
    assert_int_equal(sigv4_sign(&r, &s, &out, err, sizeof(err)), 0);
    assert_non_null(
        strstr(out.authorization, "SignedHeaders=host;x-amz-date;x-amz-security-token,"));
    assert_non_null(
        strstr(out.canonical_request, "\nx-amz-security-token:FQoGZXIvYXdzEXAMPLETOKEN\n"));
    sigv4_result_free(&out);

    /* Without a token the header must not appear at all. */
    fill_creds(&c, "");
    assert_int_equal(sigv4_sign(&r, &s, &out, err, sizeof(err)), 0);
    assert_null(strstr(out.authorization, "x-amz-security-token"));
    assert_null(strstr(out.canonical_request, "x-amz-security-token"));
    sigv4_result_free(&out);
}

static void test_secret_never_in_output(void **state)
{
    struct aws_credentials c;
    struct sigv4_signing s;
    struct sigv4_result out;
    const char body[] = "Action=SendMessage&MessageBody=hello";
    struct sigv4_request r = {.method = "POST",
                              .path = "/123456789012/orders",
                              .headers = host_only,
                              .n_headers = 1,
                              .body = body,
                              .body_len = sizeof(body) - 1};
    char err[256] = "";

    (void)state;
    fill_creds(&c, "TOKEN");
    s = signing_for(&c);
    s.sign_body = true;
    assert_int_equal(sigv4_sign(&r, &s, &out, err, sizeof(err)), 0);
    assert_non_null(strstr(out.authorization, "Credential=AKIDEXAMPLE/20150830/eu-west-1/sqs/"));
    assert_null(strstr(out.authorization, suite_secret));
    assert_null(strstr(out.canonical_request, suite_secret));
    assert_null(strstr(out.string_to_sign, suite_secret));
    assert_non_null(strstr(out.authorization, "x-amz-content-sha256"));
    sigv4_result_free(&out);

    /* An error path must not leak it either: no Host header. */
    r.n_headers = 0;
    assert_int_equal(sigv4_sign(&r, &s, &out, err, sizeof(err)), -1);
    assert_true(err[0] != '\0');
    assert_null(strstr(err, suite_secret));
    assert_null(out.authorization);
}

static void test_signer_owned_headers_rejected(void **state)
{
    struct aws_credentials c;
    struct sigv4_signing s;
    struct sigv4_result out;
    const struct sigv4_header hdrs[] = {{"Host", "example.amazonaws.com"},
                                        {"X-Amz-Date", "20000101T000000Z"}};
    struct sigv4_request r = {.method = "GET", .path = "/", .headers = hdrs, .n_headers = 2};
    char err[256] = "";

    (void)state;
    fill_creds(&c, "");
    s = signing_for(&c);
    assert_int_equal(sigv4_sign(&r, &s, &out, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "X-Amz-Date"));
}

/* Non-S3 services encode the path as given, so an escaped space is escaped again. */
static void test_path_double_encoded_and_normalized(void **state)
{
    struct aws_credentials c;
    struct sigv4_signing s;
    struct sigv4_result out;
    struct sigv4_request r = {
        .method = "GET", .path = "/a/./b//c%20d/", .headers = host_only, .n_headers = 1};
    char err[256];

    (void)state;
    fill_creds(&c, "");
    s = signing_for(&c);
    assert_int_equal(sigv4_sign(&r, &s, &out, err, sizeof(err)), 0);
    assert_true(strncmp(out.canonical_request, "GET\n/a/b/c%2520d/\n\n", 19) == 0);
    sigv4_result_free(&out);

    s.normalize_path = false;
    assert_int_equal(sigv4_sign(&r, &s, &out, err, sizeof(err)), 0);
    assert_true(strncmp(out.canonical_request, "GET\n/a/./b//c%2520d/\n\n", 22) == 0);
    sigv4_result_free(&out);
}

static void test_suite_present(void **state)
{
    size_t n = *(size_t *)*state;
    if (n < EXPECTED_VECTORS) {
        print_error("found %zu vectors in %s, expected %d\n", n, VECTOR_DIR, EXPECTED_VECTORS);
        fail();
    }
}

static int vector_cmp(const void *a, const void *b)
{
    return strcmp(((const struct vector *)a)->name, ((const struct vector *)b)->name);
}

static size_t find_vectors(struct vector *v, size_t max)
{
    DIR *d = opendir(VECTOR_DIR);
    struct dirent *e;
    size_t n = 0;

    if (!d)
        return 0;
    while ((e = readdir(d)) && n < max) {
        char probe[PATH_MAX + 64];
        struct stat st;
        if (e->d_name[0] == '.')
            continue;
        snprintf(v[n].dir, sizeof(v[n].dir), "%s/%s", VECTOR_DIR, e->d_name);
        snprintf(probe, sizeof(probe), "%s/request.txt", v[n].dir);
        if (stat(probe, &st) != 0)
            continue;
        snprintf(v[n].name, sizeof(v[n].name), "%s", e->d_name);
        n++;
    }
    closedir(d);
    qsort(v, n, sizeof(*v), vector_cmp);
    return n;
}

int main(void)
{
    static struct vector vectors[MAX_VECTORS];
    static struct CMUnitTest tests[MAX_VECTORS + 8];
    size_t n_vectors = find_vectors(vectors, MAX_VECTORS);
    size_t n = 0;

    tests[n++] = (struct CMUnitTest){"suite_present", test_suite_present, NULL, NULL, &n_vectors};
    for (size_t i = 0; i < n_vectors; i++)
        tests[n++] = (struct CMUnitTest){vectors[i].name, test_vector, NULL, NULL, &vectors[i]};
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_session_token_is_signed);
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_secret_never_in_output);
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_signer_owned_headers_rejected);
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_path_double_encoded_and_normalized);
    return _cmocka_run_group_tests("sigv4", tests, n, NULL, NULL);
}
