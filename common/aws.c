/*
 * aws.c - the AWS JSON protocol client: signed libcurl requests, keep-alive,
 * and synchronous calls with retries (see aws.h).
 *
 * Design: a request is signed afresh before every attempt (new X-Amz-Date,
 * possibly refreshed credentials), so one struct aws_request can be retried
 * by a caller-driven event loop without ever sleeping here; only aws_call
 * sleeps, between attempts, on the client's single keep-alive easy handle.
 * The signed headers carry the session token, so they are wiped before they
 * are freed and never outlive the call that needed them.
 */
#include "aws.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aws_env.h"
#include "sigv4.h"
#include "util.h"

#ifndef ORDER_VERSION
#define ORDER_VERSION "dev"
#endif

/* A guard against a misbehaving endpoint, not a tight limit: ten 256 KiB
 * SQS messages with JSON escaping and attributes must still fit. */
#define AWS_MAX_RESPONSE_BYTES (8u * 1024 * 1024)

struct aws_request {
    struct aws_client *client;
    const char *action;
    const char *body; /* owned_body, or borrowed for the duration of aws_call */
    size_t body_len;
    char *owned_body;
    void *userdata;
    CURL *easy;
    struct curl_slist *headers; /* signed per attempt; holds the session token */
    struct buf resp;
    bool resp_too_large;
    unsigned attempts;
    char errbuf[CURL_ERROR_SIZE];
};

struct aws_client {
    const struct aws_service *svc;
    struct aws_config cfg;
    struct aws_retry_policy retry;
    struct creds_provider *creds;
    char url[sizeof(((struct aws_config *)0)->endpoint) + 2];
    const char *host;        /* points into cfg.endpoint */
    struct aws_request sync; /* aws_call's request, on the keep-alive handle */
};

static const char *content_type(const struct aws_client *c)
{
    return c->svc->json == AWS_JSON_1_1 ? "application/x-amz-json-1.1"
                                        : "application/x-amz-json-1.0";
}

static size_t on_write(char *data, size_t size, size_t nmemb, void *userdata)
{
    struct aws_request *r = userdata;
    size_t n = size * nmemb;
    if (buf_append(&r->resp, data, n) != 0) {
        r->resp_too_large = r->resp.len + n > AWS_MAX_RESPONSE_BYTES;
        return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
    }
    return n;
}

/* The options that never change for a handle; set once at creation. */
static int easy_setup(CURL *easy, const struct aws_client *c)
{
    CURLcode rc = CURLE_OK;
#define SET(opt, val)                                                                              \
    if (rc == CURLE_OK)                                                                            \
    rc = curl_easy_setopt(easy, opt, val)
    SET(CURLOPT_URL, c->url);
    SET(CURLOPT_NOSIGNAL, 1L); /* timeouts without SIGALRM: callers are multi-threaded */
    SET(CURLOPT_TCP_KEEPALIVE, 1L);
    SET(CURLOPT_TCP_KEEPIDLE, 30L);
    SET(CURLOPT_TCP_KEEPINTVL, 15L);
    SET(CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    SET(CURLOPT_POST, 1L);
    SET(CURLOPT_FOLLOWLOCATION, 0L);
    SET(CURLOPT_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_USERAGENT, "order-service/" ORDER_VERSION);
    /* There is deliberately no switch to turn verification off. */
    SET(CURLOPT_SSL_VERIFYPEER, 1L);
    SET(CURLOPT_SSL_VERIFYHOST, 2L);
    SET(CURLOPT_CONNECTTIMEOUT_MS, c->cfg.connect_timeout_ms);
    SET(CURLOPT_WRITEFUNCTION, on_write);
#undef SET
    return rc == CURLE_OK ? 0 : -1;
}

static CURL *easy_new(const struct aws_client *c)
{
    CURL *easy = curl_easy_init();
    if (easy && easy_setup(easy, c) != 0) {
        curl_easy_cleanup(easy);
        easy = NULL;
    }
    return easy;
}

/* The list carries the session token; do not leave it in freed memory. */
static void slist_free_wiped(struct curl_slist *list)
{
    for (struct curl_slist *h = list; h; h = h->next)
        explicit_bzero(h->data, strlen(h->data));
    curl_slist_free_all(list);
}

static void headers_free(struct aws_request *r)
{
    slist_free_wiped(r->headers);
    r->headers = NULL;
}

static int header_add(struct curl_slist **list, const char *name, const char *value)
{
    char *line;
    struct curl_slist *l;
    /* "Name:" with no value tells curl not to send a header it would add itself. */
    if ((value ? asprintf(&line, "%s: %s", name, value) : asprintf(&line, "%s:", name)) < 0)
        return -1;
    l = curl_slist_append(*list, line);
    explicit_bzero(line, strlen(line));
    free(line);
    if (!l)
        return -1;
    *list = l;
    return 0;
}

static void request_init(struct aws_request *r, struct aws_client *c, CURL *easy)
{
    memset(r, 0, sizeof(*r));
    r->client = c;
    r->easy = easy;
    buf_init(&r->resp, AWS_MAX_RESPONSE_BYTES);
}

static void request_release(struct aws_request *r)
{
    headers_free(r);
    buf_free(&r->resp);
    free(r->owned_body);
    r->owned_body = NULL;
    r->body = NULL;
    if (r->easy)
        curl_easy_cleanup(r->easy);
    r->easy = NULL;
}

static int request_sign(struct aws_request *r, struct aws_error *err)
{
    struct aws_client *c = r->client;
    struct aws_credentials creds;
    struct sigv4_result sig;
    char target[128], cerr[256];
    struct curl_slist *list = NULL;
    int rc = -1;

    snprintf(target, sizeof(target), "%s.%s", c->svc->target_prefix, r->action);
    const struct sigv4_header hdrs[] = {
        {"Host", c->host},
        {"Content-Type", content_type(c)},
        {"X-Amz-Target", target},
    };
    const struct sigv4_request req = {
        .method = "POST",
        .path = "/",
        .query = NULL,
        .headers = hdrs,
        .n_headers = sizeof(hdrs) / sizeof(hdrs[0]),
        .body = r->body,
        .body_len = r->body_len,
    };

    cerr[0] = '\0';
    memset(&creds, 0, sizeof(creds));
    if (creds_provider_get(c->creds, &creds, cerr, sizeof(cerr)) != 0) {
        aws_error_set(err, AWS_ERR_CREDENTIALS, 0, "%s: no credentials: %s", r->action, cerr);
        creds_wipe(&creds);
        return -1;
    }
    const struct sigv4_signing s = {
        .region = c->cfg.region,
        .service = c->svc->signing_name,
        .creds = &creds,
        .now = time(NULL),
        .normalize_path = true,
        .sign_body = false,
    };
    memset(&sig, 0, sizeof(sig));
    cerr[0] = '\0';
    if (sigv4_sign(&req, &s, &sig, cerr, sizeof(cerr)) != 0) {
        aws_error_set(err, AWS_ERR_CLIENT, 0, "%s: signing failed: %s", r->action, cerr);
        goto out;
    }
    /* curl would send its own Host from the URL; ours must be the signed one. */
    if (header_add(&list, "Host", c->host) != 0 ||
        header_add(&list, "Content-Type", content_type(c)) != 0 ||
        header_add(&list, "X-Amz-Target", target) != 0 ||
        header_add(&list, "X-Amz-Date", sig.amz_date) != 0 ||
        (creds.session_token[0] &&
         header_add(&list, "X-Amz-Security-Token", creds.session_token) != 0) ||
        header_add(&list, "Authorization", sig.authorization) != 0 ||
        header_add(&list, "Expect", NULL) != 0) {
        aws_error_set(err, AWS_ERR_CLIENT, 0, "%s: out of memory building headers", r->action);
        goto out;
    }
    headers_free(r);
    r->headers = list;
    list = NULL;
    rc = 0;
out:
    slist_free_wiped(list);
    sigv4_result_free(&sig);
    creds_wipe(&creds);
    return rc;
}

int aws_request_prepare(struct aws_request *r, long extra_timeout_ms, struct aws_error *err)
{
    CURLcode rc = CURLE_OK;

    aws_error_clear(err);
    if (!r) {
        aws_error_set(err, AWS_ERR_CLIENT, 0, "no request to send (it could not be built)");
        return -1;
    }
    buf_reset(&r->resp);
    r->resp_too_large = false;
    r->errbuf[0] = '\0';
    if (request_sign(r, err) != 0)
        return -1;
    if (extra_timeout_ms < 0)
        extra_timeout_ms = 0;
#define SET(opt, val)                                                                              \
    if (rc == CURLE_OK)                                                                            \
    rc = curl_easy_setopt(r->easy, opt, val)
    SET(CURLOPT_HTTPHEADER, r->headers);
    SET(CURLOPT_POSTFIELDS, r->body);
    SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body_len);
    SET(CURLOPT_WRITEDATA, r);
    SET(CURLOPT_ERRORBUFFER, r->errbuf);
    SET(CURLOPT_PRIVATE, r);
    SET(CURLOPT_TIMEOUT_MS, r->client->cfg.request_timeout_ms + extra_timeout_ms);
#undef SET
    if (rc != CURLE_OK) {
        aws_error_set(err, AWS_ERR_CLIENT, 0, "%s: curl setup failed: %s", r->action,
                      curl_easy_strerror(rc));
        return -1;
    }
    return 0;
}

int aws_request_complete(struct aws_request *r, CURLcode rc, struct aws_error *err)
{
    long status = 0;

    aws_error_clear(err);
    if (!r) {
        aws_error_set(err, AWS_ERR_CLIENT, 0, "no request");
        return -1;
    }
    r->attempts++;
    if (rc == CURLE_WRITE_ERROR && r->resp_too_large) {
        aws_error_set(err, AWS_ERR_PARSE, 0, "%s: response larger than %u bytes", r->action,
                      AWS_MAX_RESPONSE_BYTES);
        return -1;
    }
    if (rc != CURLE_OK) {
        aws_error_set(err, aws_error_kind_of_curl(rc), 0, "%s: %s%s%s", r->action,
                      curl_easy_strerror(rc), r->errbuf[0] ? ": " : "", r->errbuf);
        return -1;
    }
    curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
    if (status >= 200 && status <= 299)
        return 0;
    if (err) {
        aws_decode_error(status, r->resp.data, r->resp.len, err);
        aws_error_prefix(err, r->action);
    }
    return -1;
}

struct aws_client *aws_client_new(const struct aws_service *svc, const struct aws_config *cfg,
                                  struct creds_provider *creds)
{
    struct aws_client *c;
    const char *sep;
    CURL *easy;

    if (!svc || !svc->signing_name || !svc->target_prefix || !cfg || !creds ||
        !(sep = strstr(cfg->endpoint, "://")) || !sep[3] || !aws_region_valid(cfg->region) ||
        cfg->max_attempts == 0)
        return NULL;
    if (!(c = calloc(1, sizeof(*c))))
        return NULL;
    c->svc = svc;
    c->cfg = *cfg;
    c->cfg.verify_tls = true;
    c->retry = (struct aws_retry_policy){.max_attempts = cfg->max_attempts,
                                         .base_ms = cfg->backoff_base_ms,
                                         .cap_ms = cfg->backoff_cap_ms};
    c->creds = creds;
    c->host = c->cfg.endpoint + (sep - cfg->endpoint) + 3;
    snprintf(c->url, sizeof(c->url), "%s/", c->cfg.endpoint);
    if (!(easy = easy_new(c))) {
        free(c);
        return NULL;
    }
    request_init(&c->sync, c, easy);
    return c;
}

void aws_client_free(struct aws_client *c)
{
    if (!c)
        return;
    request_release(&c->sync);
    free(c);
}

const struct aws_config *aws_client_config(const struct aws_client *c)
{
    return &c->cfg;
}

const struct aws_service *aws_client_service(const struct aws_client *c)
{
    return c->svc;
}

struct aws_request *aws_request_new(struct aws_client *c, const char *action, char *body,
                                    void *userdata)
{
    struct aws_request *r;
    CURL *easy;

    if (!c || !action || !body) {
        free(body);
        return NULL;
    }
    r = malloc(sizeof(*r));
    easy = r ? easy_new(c) : NULL;
    if (!easy) {
        free(r);
        free(body);
        return NULL;
    }
    request_init(r, c, easy);
    r->action = action;
    r->owned_body = body;
    r->body = body;
    r->body_len = strlen(body);
    r->userdata = userdata;
    return r;
}

CURL *aws_request_easy(struct aws_request *r)
{
    return r ? r->easy : NULL;
}

struct aws_request *aws_request_from_easy(CURL *easy)
{
    char *p = NULL;
    if (!easy || curl_easy_getinfo(easy, CURLINFO_PRIVATE, &p) != CURLE_OK)
        return NULL;
    return (struct aws_request *)p;
}

const char *aws_request_response(const struct aws_request *r, size_t *len)
{
    if (len)
        *len = r ? r->resp.len : 0;
    return r && r->resp.data ? r->resp.data : "";
}

const char *aws_request_action(const struct aws_request *r)
{
    return r ? r->action : "(none)";
}

void *aws_request_userdata(const struct aws_request *r)
{
    return r ? r->userdata : NULL;
}

unsigned aws_request_attempts(const struct aws_request *r)
{
    return r ? r->attempts : 0;
}

int64_t aws_request_backoff_ms(const struct aws_request *r)
{
    return r ? aws_retry_delay_ms(&r->client->retry, r->attempts) : 0;
}

void aws_request_free(struct aws_request *r)
{
    if (!r)
        return;
    request_release(r);
    free(r);
}

int aws_call(struct aws_client *c, const char *action, const char *body, long extra_timeout_ms,
             char **resp, size_t *resp_len, struct aws_error *err)
{
    struct aws_request *r = &c->sync;
    struct aws_error e; /* retry decisions need it even when the caller passes NULL */
    int rc = -1;

    *resp = NULL;
    if (resp_len)
        *resp_len = 0;
    if (!body || !action) {
        aws_error_set(err, AWS_ERR_CLIENT, 0, "%s: invalid request", action ? action : "call");
        return -1;
    }
    r->action = action;
    r->body = body;
    r->body_len = strlen(body);
    r->attempts = 0;
    for (;;) {
        if (aws_request_prepare(r, extra_timeout_ms, &e) != 0)
            break;
        if (aws_request_complete(r, curl_easy_perform(r->easy), &e) == 0) {
            rc = 0;
            break;
        }
        if (!aws_retry_allowed(&c->retry, &e, r->attempts))
            break;
        aws_sleep_ms(aws_request_backoff_ms(r));
    }

    if (rc == 0) {
        /* Hand the buffer over; an empty 2xx body reads as "{}" for the decoders. */
        if (r->resp.len == 0) {
            *resp = strdup("{}");
            if (resp_len && *resp)
                *resp_len = 2;
        } else {
            *resp = r->resp.data;
            if (resp_len)
                *resp_len = r->resp.len;
            buf_init(&r->resp, AWS_MAX_RESPONSE_BYTES);
        }
        if (!*resp)
            aws_error_set(&e, AWS_ERR_CLIENT, 0, "%s: out of memory", action);
        rc = *resp ? 0 : -1;
    } else if (r->attempts > 1) {
        size_t n = strlen(e.message);
        snprintf(e.message + n, sizeof(e.message) - n, " (after %u attempts)", r->attempts);
    }
    if (err)
        *err = e;
    /* Nothing of this call may linger: the body is the caller's and the
     * headers hold the session token. */
    headers_free(r);
    curl_easy_setopt(r->easy, CURLOPT_HTTPHEADER, NULL);
    curl_easy_setopt(r->easy, CURLOPT_POSTFIELDS, NULL);
    r->body = NULL;
    r->body_len = 0;
    buf_reset(&r->resp);
    return rc;
}
