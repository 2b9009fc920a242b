/*
 * credentials_ecs.c - the container credentials provider (see
 * credentials_ecs.h): configuration from the environment, the fetch, and the
 * endpoint's JSON.
 *
 * Design: nothing that came from the endpoint or the token file is ever
 * copied into an error (only a status code, curl's error name or the name of
 * a missing field), and every buffer that held a secret is wiped with
 * OPENSSL_cleanse before it is freed. The retry policy is the AWS clients'
 * (aws_error.h): transport errors, 429 and 5xx only.
 */
#include "credentials_ecs.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "aws_env.h"
#include "aws_error.h"
#include "aws_json.h"
#include "config.h"
#include "util.h"

#define ECS_CONTAINER_HOST "http://169.254.170.2"
#define ECS_HTTP_TIMEOUT_MS 2000L
#define ECS_HTTP_CONNECT_TIMEOUT_MS 1000L
#define ECS_MAX_RESPONSE (64 * 1024)
#define ECS_MAX_TOKEN_FILE (16 * 1024)

/* Three attempts, 100 ms to 1 s apart: a refresh must not stall the caller long. */
static const struct aws_retry_policy ecs_retry = {
    .max_attempts = 3, .base_ms = 100, .cap_ms = 1000};

struct creds_ecs {
    char url[2048];
    bool send_auth;        /* only with AWS_CONTAINER_CREDENTIALS_FULL_URI, as in the SDKs */
    char *auth_token;      /* from AWS_CONTAINER_AUTHORIZATION_TOKEN, or NULL */
    char *auth_token_file; /* read on every fetch: the agent may rotate it */
};

static void wipe_string(char *s)
{
    if (s)
        OPENSSL_cleanse(s, strlen(s));
}

/* ---- container endpoint response ---- */

static int copy_field(char *dst, size_t cap, json_t *root, const char *key, bool required,
                      char *err, size_t errlen)
{
    json_t *v = json_object_get(root, key);
    if (!v || json_is_null(v)) {
        if (required) {
            util_errf(err, errlen, "container credentials: missing %s", key);
            return -1;
        }
        dst[0] = '\0';
        return 0;
    }
    if (!json_is_string(v)) {
        util_errf(err, errlen, "container credentials: %s is not a string", key);
        return -1;
    }
    if (json_string_length(v) >= cap || strlen(json_string_value(v)) != json_string_length(v)) {
        util_errf(err, errlen, "container credentials: %s is too long or contains NUL", key);
        return -1;
    }
    if (required && json_string_length(v) == 0) {
        util_errf(err, errlen, "container credentials: %s is empty", key);
        return -1;
    }
    memcpy(dst, json_string_value(v), json_string_length(v) + 1);
    return 0;
}

/* jansson keeps its own copies of the strings; wipe the secret ones before freeing. */
static void wipe_json_string(json_t *root, const char *key)
{
    json_t *v = json_object_get(root, key);
    if (json_is_string(v))
        OPENSSL_cleanse((char *)json_string_value(v), json_string_length(v));
}

int creds_parse_container_json(const char *json, size_t len, struct aws_credentials *out, char *err,
                               size_t errlen)
{
    struct aws_credentials c;
    char expiration[64];
    json_error_t jerr;
    json_t *root;
    int rc = -1;

    if (!json || !out) {
        util_errf(err, errlen, "container credentials: no response");
        return -1;
    }
    bool oom;
    root = aws_json_load(json, len, 0, &jerr, &oom);
    if (oom) {
        util_errf(err, errlen, "container credentials: out of memory");
        return -1;
    }
    if (!root) {
        /* jerr.text quotes the input near the error, which may be a secret: position only. */
        util_errf(err, errlen, "container credentials: invalid JSON at line %d column %d",
                  jerr.line, jerr.column);
        return -1;
    }
    memset(&c, 0, sizeof(c));
    if (!json_is_object(root)) {
        util_errf(err, errlen, "container credentials: response is not a JSON object");
        goto done;
    }
    if (copy_field(c.access_key_id, sizeof(c.access_key_id), root, "AccessKeyId", true, err,
                   errlen) < 0 ||
        copy_field(c.secret_access_key, sizeof(c.secret_access_key), root, "SecretAccessKey", true,
                   err, errlen) < 0 ||
        copy_field(c.session_token, sizeof(c.session_token), root, "Token", false, err, errlen) <
            0 ||
        copy_field(expiration, sizeof(expiration), root, "Expiration", false, err, errlen) < 0)
        goto done;
    /* Without Expiration the credentials are treated as long-lived, as the Go SDK does. */
    if (expiration[0]) {
        c.expiration = creds_parse_rfc3339(expiration);
        if (c.expiration == (time_t)-1 || c.expiration == 0) {
            util_errf(err, errlen, "container credentials: Expiration is not an RFC 3339 time");
            goto done;
        }
    }
    *out = c;
    rc = 0;
done:
    creds_wipe(&c);
    wipe_json_string(root, "SecretAccessKey");
    wipe_json_string(root, "Token");
    json_decref(root);
    return rc;
}

/* ---- container endpoint fetch ---- */

static size_t write_body(char *data, size_t size, size_t n, void *userp)
{
    struct buf *b = userp;
    if (buf_append(b, data, size * n) < 0)
        return 0; /* too large: curl aborts with CURLE_WRITE_ERROR */
    return size * n;
}

static bool has_control_chars(const char *s)
{
    for (; *s; s++) {
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return true;
    }
    return false;
}

/* Reads the token file fresh each time; a trailing newline is what editors and
 * Kubernetes secrets usually leave, so it is stripped. */
static char *read_token_file(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    char *tok;
    size_t n;

    if (!f) {
        util_errf(err, errlen, "cannot open AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE %s: %s", path,
                  strerror(errno));
        return NULL;
    }
    tok = malloc(ECS_MAX_TOKEN_FILE + 1);
    if (!tok) {
        fclose(f);
        util_errf(err, errlen, "container credentials: out of memory");
        return NULL;
    }
    n = fread(tok, 1, ECS_MAX_TOKEN_FILE + 1, f);
    if (ferror(f) || n > ECS_MAX_TOKEN_FILE) {
        util_errf(err, errlen, "cannot read AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE %s: %s", path,
                  ferror(f) ? "read error" : "file too large");
        fclose(f);
        OPENSSL_cleanse(tok, ECS_MAX_TOKEN_FILE + 1);
        free(tok);
        return NULL;
    }
    fclose(f);
    while (n > 0 && (tok[n - 1] == '\n' || tok[n - 1] == '\r'))
        n--;
    tok[n] = '\0';
    if (n == 0 || has_control_chars(tok) || strlen(tok) != n) {
        util_errf(err, errlen,
                  "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE %s is empty or holds control "
                  "characters",
                  path);
        OPENSSL_cleanse(tok, ECS_MAX_TOKEN_FILE + 1);
        free(tok);
        return NULL;
    }
    return tok;
}

/* The Authorization header for this fetch (token file re-read), or NULL when
 * none is sent; *failed when one was due but could not be had. */
static struct curl_slist *headers_new(const struct creds_ecs *e, bool *failed, char *err,
                                      size_t errlen)
{
    struct curl_slist *headers = NULL, *h;
    char *token = NULL, *line = NULL;

    *failed = false;
    if (e->send_auth && e->auth_token_file) {
        if (!(token = read_token_file(e->auth_token_file, err, errlen))) {
            *failed = true;
            return NULL;
        }
    } else if (e->send_auth && e->auth_token && !(token = strdup(e->auth_token))) {
        goto oom;
    }
    if (token) {
        if (asprintf(&line, "Authorization: %s", token) < 0) {
            line = NULL;
            goto oom;
        }
        if (!(h = curl_slist_append(headers, line)))
            goto oom;
        headers = h;
    }
    if (!(h = curl_slist_append(headers, "Accept: application/json")))
        goto oom;
    headers = h;
    goto out;
oom:
    util_errf(err, errlen, "container credentials: out of memory");
    *failed = true;
    for (h = headers; h; h = h->next)
        wipe_string(h->data);
    curl_slist_free_all(headers);
    headers = NULL;
out:
    wipe_string(line);
    free(line);
    wipe_string(token);
    free(token);
    return headers;
}

static int easy_setup(CURL *curl, const struct creds_ecs *e, struct curl_slist *headers,
                      struct buf *body)
{
    CURLcode rc = CURLE_OK;
#define SET(opt, val)                                                                              \
    if (rc == CURLE_OK)                                                                            \
    rc = curl_easy_setopt(curl, opt, val)
    SET(CURLOPT_URL, e->url);
    SET(CURLOPT_HTTPHEADER, headers);
    SET(CURLOPT_WRITEFUNCTION, write_body);
    SET(CURLOPT_WRITEDATA, body);
    SET(CURLOPT_TIMEOUT_MS, ECS_HTTP_TIMEOUT_MS);
    SET(CURLOPT_CONNECTTIMEOUT_MS, ECS_HTTP_CONNECT_TIMEOUT_MS);
    SET(CURLOPT_NOSIGNAL, 1L); /* called from worker threads */
    SET(CURLOPT_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_FOLLOWLOCATION, 0L);
    /* The endpoint is container-local; a proxy from the environment must never see the token. */
    SET(CURLOPT_NOPROXY, "*");
#undef SET
    return rc == CURLE_OK ? 0 : -1;
}

int creds_ecs_fetch(const struct creds_ecs *e, struct aws_credentials *out, char *err,
                    size_t errlen)
{
    struct curl_slist *headers, *h;
    struct buf body;
    CURL *curl = NULL;
    bool failed;
    int rc = -1;

    buf_init(&body, ECS_MAX_RESPONSE);
    if (!(headers = headers_new(e, &failed, err, errlen)) || failed)
        goto done;
    if (!(curl = curl_easy_init()) || easy_setup(curl, e, headers, &body) != 0) {
        util_errf(err, errlen, "container credentials: cannot set up libcurl");
        goto done;
    }
    for (unsigned attempts = 0;;) {
        struct aws_error why = {.kind = AWS_ERR_NONE};
        long status = 0;

        if (body.data)
            OPENSSL_cleanse(body.data, body.len);
        buf_reset(&body);
        CURLcode cc = curl_easy_perform(curl);
        attempts++;
        if (cc == CURLE_OK)
            curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
        if (cc == CURLE_OK && status == 200) {
            rc = creds_parse_container_json(body.data ? body.data : "", body.len, out, err, errlen);
            break;
        }
        /* Only the status or curl's error name: the body may carry credentials. */
        if (cc != CURLE_OK) {
            why.kind = aws_error_kind_of_curl(cc);
            util_errf(err, errlen, "container credentials endpoint: %s", curl_easy_strerror(cc));
        } else {
            why.kind = aws_error_kind_of_status(status, NULL);
            util_errf(err, errlen, "container credentials endpoint returned HTTP %ld", status);
        }
        if (!aws_retry_allowed(&ecs_retry, &why, attempts))
            break; /* e.g. a bad token: retrying will not help */
        aws_sleep_ms(aws_retry_delay_ms(&ecs_retry, attempts));
    }
done:
    if (curl)
        curl_easy_cleanup(curl);
    for (h = headers; h; h = h->next)
        wipe_string(h->data);
    curl_slist_free_all(headers);
    if (body.data)
        OPENSSL_cleanse(body.data, body.len);
    buf_free(&body);
    return rc;
}

/* Plain http is allowed only where the token cannot leave the machine or the task:
 * loopback, and the ECS (169.254.170.2) and EKS Pod Identity agents, as the SDKs allow. */
static bool http_host_allowed(const char *host)
{
    char bare[256];
    unsigned char a6[16];
    struct in_addr a4;
    static const unsigned char eks6[16] = {0xfd, 0x00, 0x0e, 0xc2, [15] = 0x23};

    if (util_host_is_loopback(host))
        return true;
    if (!util_host_unbracket(host, bare, sizeof(bare)))
        return false;
    if (inet_pton(AF_INET, bare, &a4) == 1) {
        uint32_t ip = ntohl(a4.s_addr);
        return ip == 0xA9FEAA02u /* 169.254.170.2 */ || ip == 0xA9FEAA17u /* 169.254.170.23 */;
    }
    return inet_pton(AF_INET6, bare, a6) == 1 && !memcmp(a6, eks6, 16);
}

static int check_full_uri(const char *uri, char *err, size_t errlen)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL;
    int rc = -1;

    if (!u) {
        util_errf(err, errlen, "credentials: out of memory");
        return -1;
    }
    if (curl_url_set(u, CURLUPART_URL, uri, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
        util_errf(err, errlen, "AWS_CONTAINER_CREDENTIALS_FULL_URI is not a valid URL");
        goto done;
    }
    if (!strcasecmp(scheme, "https") || (!strcasecmp(scheme, "http") && http_host_allowed(host))) {
        rc = 0;
    } else {
        util_errf(err, errlen,
                  "AWS_CONTAINER_CREDENTIALS_FULL_URI must be https, or http to a loopback address "
                  "or the ECS/EKS container endpoint (host %.100s is not)",
                  host);
    }
done:
    curl_free(scheme);
    curl_free(host);
    curl_url_cleanup(u);
    return rc;
}

int creds_ecs_from_env(struct creds_ecs **out, char *err, size_t errlen)
{
    const char *rel = config_env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
    const char *full = config_env("AWS_CONTAINER_CREDENTIALS_FULL_URI");
    const char *token = config_env("AWS_CONTAINER_AUTHORIZATION_TOKEN");
    const char *token_file = config_env("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
    struct creds_ecs *e;
    char why[128];
    int n;

    *out = NULL;
    if (!rel && !full)
        return 0;
    if (!(e = calloc(1, sizeof(*e)))) {
        util_errf(err, errlen, "credentials: out of memory");
        return -1;
    }
    if (rel) { /* the relative form wins, as in the SDKs */
        if (rel[0] != '/') {
            util_errf(err, errlen, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI must start with '/'");
            goto fail;
        }
        n = snprintf(e->url, sizeof(e->url), "%s%s", ECS_CONTAINER_HOST, rel);
        if (n > 0 && (size_t)n < sizeof(e->url) && !aws_url_valid(e->url, why, sizeof(why))) {
            util_errf(err, errlen, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI %s", why);
            goto fail;
        }
    } else {
        if (!aws_url_valid(full, why, sizeof(why))) {
            util_errf(err, errlen, "AWS_CONTAINER_CREDENTIALS_FULL_URI %s", why);
            goto fail;
        }
        if (check_full_uri(full, err, errlen) < 0)
            goto fail;
        n = snprintf(e->url, sizeof(e->url), "%s", full);
        e->send_auth = true;
        if (token_file) {
            if (!(e->auth_token_file = strdup(token_file)))
                goto oom;
        } else if (token) {
            if (has_control_chars(token)) {
                util_errf(err, errlen,
                          "AWS_CONTAINER_AUTHORIZATION_TOKEN holds control characters");
                goto fail;
            }
            if (!(e->auth_token = strdup(token)))
                goto oom;
        }
    }
    if (n < 0 || (size_t)n >= sizeof(e->url)) {
        util_errf(err, errlen, "container credentials URI is too long");
        goto fail;
    }
    *out = e;
    return 1;
oom:
    util_errf(err, errlen, "credentials: out of memory");
fail:
    creds_ecs_free(e);
    return -1;
}

void creds_ecs_free(struct creds_ecs *e)
{
    if (!e)
        return;
    wipe_string(e->auth_token);
    free(e->auth_token);
    free(e->auth_token_file);
    free(e);
}
