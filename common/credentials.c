/*
 * credentials.c - the AWS SDKs' default credentials chain: environment, then
 * the ECS/Fargate container endpoint, with a cache refreshed ahead of expiry.
 *
 * Design: one caller at a time refreshes, outside the lock; everyone else keeps
 * getting the cached credentials while they are still valid, and only waits
 * when there is nothing valid to hand out. A failed refresh never throws away
 * credentials that still work. Secrets (keys, tokens, response bodies) are
 * never copied into an error message and are wiped with OPENSSL_cleanse.
 */
#include "credentials.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "util.h"

#define ECS_CONTAINER_HOST "http://169.254.170.2"
#define CREDS_HTTP_TIMEOUT_MS 2000L
#define CREDS_HTTP_CONNECT_TIMEOUT_MS 1000L
#define CREDS_HTTP_ATTEMPTS 3
#define CREDS_HTTP_BACKOFF_BASE_MS 100
#define CREDS_HTTP_BACKOFF_CAP_MS 1000
#define CREDS_MAX_RESPONSE (64 * 1024)
#define CREDS_MAX_TOKEN_FILE (16 * 1024)
/* After a failed refresh, callers holding valid credentials do not retry for this long,
 * so an endpoint outage costs one slow request per interval rather than one per call. */
#define CREDS_RETRY_AFTER_FAILURE_S 10

enum creds_kind { CREDS_STATIC, CREDS_ENVIRONMENT, CREDS_CONTAINER };

struct creds_provider {
    enum creds_kind kind;
    pthread_mutex_t mu;
    pthread_cond_t refreshed;
    struct aws_credentials cached; /* immutable after construction unless kind is container */
    bool have;
    bool refreshing;
    unsigned long generation; /* bumped when a refresh finishes, so waiters know */
    bool last_refresh_ok;
    char last_err[256];
    time_t retry_after;

    /* container provider */
    char url[2048];
    bool send_auth;        /* only with AWS_CONTAINER_CREDENTIALS_FULL_URI, as in the SDKs */
    char *auth_token;      /* from AWS_CONTAINER_AUTHORIZATION_TOKEN, or NULL */
    char *auth_token_file; /* read on every fetch: the agent may rotate it */
};

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    if (!err || !errlen)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

void creds_wipe(struct aws_credentials *c)
{
    if (c)
        OPENSSL_cleanse(c, sizeof(*c));
}

static void wipe_string(char *s)
{
    if (s)
        OPENSSL_cleanse(s, strlen(s));
}

int creds_need_refresh(const struct aws_credentials *c, time_t now)
{
    if (!c || !c->access_key_id[0])
        return 1;
    if (c->expiration == 0)
        return 0;
    return now >= c->expiration - CREDS_REFRESH_AHEAD_S;
}

static bool creds_valid_at(const struct aws_credentials *c, time_t now)
{
    return c->access_key_id[0] && (c->expiration == 0 || now < c->expiration);
}

/* ---- RFC 3339 ---- */

static int parse_digits(const char **p, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        char c = (*p)[i];
        if (c < '0' || c > '9')
            return -1;
        v = v * 10 + (c - '0');
    }
    *p += n;
    return v;
}

static bool expect_char(const char **p, const char *set)
{
    if (**p && strchr(set, **p)) {
        (*p)++;
        return true;
    }
    return false;
}

/* Days since 1970-01-01 for a proleptic Gregorian date (Howard Hinnant's algorithm),
 * so no time zone or TZ variable is involved. */
static long long days_from_civil(int y, int m, int d)
{
    y -= m <= 2;
    long long era = (y >= 0 ? y : y - 399) / 400;
    long long yoe = y - era * 400;
    long long doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    long long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int days_in_month(int y, int m)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : days[m - 1];
}

time_t creds_parse_rfc3339(const char *s)
{
    const char *p = s;
    int y, mo, d, h, mi, sec, off = 0;

    if (!s)
        return (time_t)-1;
    if ((y = parse_digits(&p, 4)) < 0 || !expect_char(&p, "-") || (mo = parse_digits(&p, 2)) < 0 ||
        !expect_char(&p, "-") || (d = parse_digits(&p, 2)) < 0 || !expect_char(&p, "Tt") ||
        (h = parse_digits(&p, 2)) < 0 || !expect_char(&p, ":") || (mi = parse_digits(&p, 2)) < 0 ||
        !expect_char(&p, ":") || (sec = parse_digits(&p, 2)) < 0)
        return (time_t)-1;
    if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || sec > 60)
        return (time_t)-1;
    if (expect_char(&p, ".")) {
        /* Fractions are dropped: expiry is compared at second resolution. */
        if (*p < '0' || *p > '9')
            return (time_t)-1;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    if (expect_char(&p, "Zz")) {
        off = 0;
    } else if (*p == '+' || *p == '-') {
        int sign = *p == '-' ? -1 : 1, oh, om;
        p++;
        if ((oh = parse_digits(&p, 2)) < 0 || !expect_char(&p, ":") ||
            (om = parse_digits(&p, 2)) < 0 || oh > 23 || om > 59)
            return (time_t)-1;
        off = sign * (oh * 3600 + om * 60);
    } else {
        return (time_t)-1;
    }
    if (*p)
        return (time_t)-1;
    return (time_t)(days_from_civil(y, mo, d) * 86400LL + h * 3600LL + mi * 60LL + sec - off);
}

/* ---- container endpoint response ---- */

static int copy_field(char *dst, size_t cap, json_t *root, const char *key, bool required,
                      char *err, size_t errlen)
{
    json_t *v = json_object_get(root, key);
    if (!v || json_is_null(v)) {
        if (required) {
            set_err(err, errlen, "container credentials: missing %s", key);
            return -1;
        }
        dst[0] = '\0';
        return 0;
    }
    if (!json_is_string(v)) {
        set_err(err, errlen, "container credentials: %s is not a string", key);
        return -1;
    }
    if (json_string_length(v) >= cap || strlen(json_string_value(v)) != json_string_length(v)) {
        set_err(err, errlen, "container credentials: %s is too long or contains NUL", key);
        return -1;
    }
    if (required && json_string_length(v) == 0) {
        set_err(err, errlen, "container credentials: %s is empty", key);
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
        set_err(err, errlen, "container credentials: no response");
        return -1;
    }
    root = json_loadb(json, len, 0, &jerr);
    if (!root) {
        /* jerr.text quotes the input near the error, which may be a secret: position only. */
        set_err(err, errlen, "container credentials: invalid JSON at line %d column %d", jerr.line,
                jerr.column);
        return -1;
    }
    memset(&c, 0, sizeof(c));
    if (!json_is_object(root)) {
        set_err(err, errlen, "container credentials: response is not a JSON object");
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
            set_err(err, errlen, "container credentials: Expiration is not an RFC 3339 time");
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
        set_err(err, errlen, "cannot open AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE %s: %s", path,
                strerror(errno));
        return NULL;
    }
    tok = malloc(CREDS_MAX_TOKEN_FILE + 1);
    if (!tok) {
        fclose(f);
        set_err(err, errlen, "container credentials: out of memory");
        return NULL;
    }
    n = fread(tok, 1, CREDS_MAX_TOKEN_FILE + 1, f);
    if (ferror(f) || n > CREDS_MAX_TOKEN_FILE) {
        set_err(err, errlen, "cannot read AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE %s: %s", path,
                ferror(f) ? "read error" : "file too large");
        fclose(f);
        OPENSSL_cleanse(tok, CREDS_MAX_TOKEN_FILE + 1);
        free(tok);
        return NULL;
    }
    fclose(f);
    while (n > 0 && (tok[n - 1] == '\n' || tok[n - 1] == '\r'))
        n--;
    tok[n] = '\0';
    if (n == 0 || has_control_chars(tok) || strlen(tok) != n) {
        set_err(err, errlen,
                "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE %s is empty or holds control "
                "characters",
                path);
        OPENSSL_cleanse(tok, CREDS_MAX_TOKEN_FILE + 1);
        free(tok);
        return NULL;
    }
    return tok;
}

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {.tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* One GET with a few retries on transport errors, 429 and 5xx. Only the status code
 * or curl's error name is reported: the body may carry credentials. */
static int container_fetch(struct creds_provider *p, struct aws_credentials *out, char *err,
                           size_t errlen)
{
    struct curl_slist *headers = NULL, *h;
    char *token = NULL, *auth_line = NULL;
    struct buf body;
    CURL *curl = NULL;
    int rc = -1;

    buf_init(&body, CREDS_MAX_RESPONSE);
    if (p->send_auth) {
        if (p->auth_token_file)
            token = read_token_file(p->auth_token_file, err, errlen);
        else if (p->auth_token)
            token = strdup(p->auth_token);
        if (p->auth_token_file && !token)
            goto done;
        if (token) {
            size_t n = strlen("Authorization: ") + strlen(token) + 1;
            auth_line = malloc(n);
            if (!auth_line)
                goto oom;
            snprintf(auth_line, n, "Authorization: %s", token);
            if (!(h = curl_slist_append(headers, auth_line)))
                goto oom;
            headers = h;
        }
    }
    if (!(h = curl_slist_append(headers, "Accept: application/json")))
        goto oom;
    headers = h;

    curl = curl_easy_init();
    if (!curl) {
        set_err(err, errlen, "container credentials: curl_easy_init failed");
        goto done;
    }
    curl_easy_setopt(curl, CURLOPT_URL, p->url);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, write_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, CREDS_HTTP_TIMEOUT_MS);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, CREDS_HTTP_CONNECT_TIMEOUT_MS);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L); /* called from worker threads */
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
    /* The endpoint is container-local; a proxy from the environment must never see the token. */
    curl_easy_setopt(curl, CURLOPT_NOPROXY, "*");

    for (int attempt = 0; attempt < CREDS_HTTP_ATTEMPTS; attempt++) {
        long status = 0;
        CURLcode cc;

        if (attempt > 0)
            sleep_ms(util_backoff_ms((unsigned)attempt, CREDS_HTTP_BACKOFF_BASE_MS,
                                     CREDS_HTTP_BACKOFF_CAP_MS));
        if (body.data)
            OPENSSL_cleanse(body.data, body.len);
        buf_reset(&body);
        cc = curl_easy_perform(curl);
        if (cc != CURLE_OK) {
            set_err(err, errlen, "container credentials endpoint: %s", curl_easy_strerror(cc));
            continue;
        }
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
        if (status == 200) {
            rc = creds_parse_container_json(body.data ? body.data : "", body.len, out, err, errlen);
            break;
        }
        set_err(err, errlen, "container credentials endpoint returned HTTP %ld", status);
        if (status != 429 && status < 500)
            break; /* the request itself is wrong (e.g. bad token): retrying will not help */
    }
    goto done;
oom:
    set_err(err, errlen, "container credentials: out of memory");
done:
    if (curl)
        curl_easy_cleanup(curl);
    for (h = headers; h; h = h->next)
        wipe_string(h->data);
    curl_slist_free_all(headers);
    wipe_string(auth_line);
    free(auth_line);
    wipe_string(token);
    free(token);
    if (body.data)
        OPENSSL_cleanse(body.data, body.len);
    buf_free(&body);
    return rc;
}

/* ---- providers ---- */

static struct creds_provider *provider_alloc(enum creds_kind kind)
{
    struct creds_provider *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    p->kind = kind;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->refreshed, NULL);
    return p;
}

struct creds_provider *creds_provider_new_static(const struct aws_credentials *c)
{
    struct creds_provider *p;
    if (!c)
        return NULL;
    p = provider_alloc(CREDS_STATIC);
    if (!p)
        return NULL;
    p->cached = *c;
    p->have = true;
    return p;
}

static const char *env_nonempty(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

static int copy_env(char *dst, size_t cap, const char *name, const char *value, char *err,
                    size_t errlen)
{
    size_t n = strlen(value);
    if (n >= cap) {
        set_err(err, errlen, "%s is too long (%zu bytes, at most %zu)", name, n, cap - 1);
        return -1;
    }
    memcpy(dst, value, n + 1);
    return 0;
}

/* 1 when AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY are set, 0 when neither is, -1 on error. */
static int env_provider(struct creds_provider **out, char *err, size_t errlen)
{
    const char *akid = env_nonempty("AWS_ACCESS_KEY_ID");
    const char *secret = env_nonempty("AWS_SECRET_ACCESS_KEY");
    const char *token = env_nonempty("AWS_SESSION_TOKEN");
    struct aws_credentials c;
    int rc = -1;

    if (!akid && !secret)
        return 0;
    if (!akid) {
        set_err(err, errlen, "AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not");
        return -1;
    }
    if (!secret) {
        set_err(err, errlen, "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not");
        return -1;
    }
    memset(&c, 0, sizeof(c));
    if (copy_env(c.access_key_id, sizeof(c.access_key_id), "AWS_ACCESS_KEY_ID", akid, err, errlen) <
            0 ||
        copy_env(c.secret_access_key, sizeof(c.secret_access_key), "AWS_SECRET_ACCESS_KEY", secret,
                 err, errlen) < 0 ||
        (token && copy_env(c.session_token, sizeof(c.session_token), "AWS_SESSION_TOKEN", token,
                           err, errlen) < 0))
        goto done;
    *out = provider_alloc(CREDS_ENVIRONMENT);
    if (!*out) {
        set_err(err, errlen, "credentials: out of memory");
        goto done;
    }
    (*out)->cached = c;
    (*out)->have = true;
    rc = 1;
done:
    creds_wipe(&c);
    return rc;
}

/* Plain http is allowed only where the token cannot leave the machine or the task:
 * loopback, and the ECS (169.254.170.2) and EKS Pod Identity agents, as the SDKs allow. */
static bool http_host_allowed(const char *host)
{
    char bare[256];
    unsigned char a6[16];
    struct in_addr a4;
    size_t n = strlen(host);

    if (n >= sizeof(bare))
        return false;
    if (n >= 2 && host[0] == '[' && host[n - 1] == ']') {
        memcpy(bare, host + 1, n - 2);
        bare[n - 2] = '\0';
    } else {
        memcpy(bare, host, n + 1);
    }
    if (!strcasecmp(bare, "localhost"))
        return true;
    if (inet_pton(AF_INET, bare, &a4) == 1) {
        uint32_t ip = ntohl(a4.s_addr);
        return (ip >> 24) == 127 || ip == 0xA9FEAA02u /* 169.254.170.2 */ ||
               ip == 0xA9FEAA17u /* 169.254.170.23 */;
    }
    if (inet_pton(AF_INET6, bare, a6) == 1) {
        static const unsigned char loop6[16] = {[15] = 1};
        static const unsigned char eks6[16] = {0xfd, 0x00, 0x0e, 0xc2, [15] = 0x23};
        return !memcmp(a6, loop6, 16) || !memcmp(a6, eks6, 16);
    }
    return false;
}

static int check_full_uri(const char *uri, char *err, size_t errlen)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL;
    int rc = -1;

    if (!u) {
        set_err(err, errlen, "credentials: out of memory");
        return -1;
    }
    if (curl_url_set(u, CURLUPART_URL, uri, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
        set_err(err, errlen, "AWS_CONTAINER_CREDENTIALS_FULL_URI is not a valid URL");
        goto done;
    }
    if (!strcasecmp(scheme, "https") || (!strcasecmp(scheme, "http") && http_host_allowed(host))) {
        rc = 0;
    } else {
        set_err(err, errlen,
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

/* 1 when the container endpoint is configured, 0 when not, -1 on error. No I/O here:
 * the first creds_provider_get fetches. */
static int container_provider(struct creds_provider **out, char *err, size_t errlen)
{
    const char *rel = env_nonempty("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
    const char *full = env_nonempty("AWS_CONTAINER_CREDENTIALS_FULL_URI");
    const char *token = env_nonempty("AWS_CONTAINER_AUTHORIZATION_TOKEN");
    const char *token_file = env_nonempty("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
    struct creds_provider *p;
    int n;

    if (!rel && !full)
        return 0;
    p = provider_alloc(CREDS_CONTAINER);
    if (!p) {
        set_err(err, errlen, "credentials: out of memory");
        return -1;
    }
    if (rel) { /* the relative form wins, as in the SDKs */
        if (rel[0] != '/') {
            set_err(err, errlen, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI must start with '/'");
            goto fail;
        }
        n = snprintf(p->url, sizeof(p->url), "%s%s", ECS_CONTAINER_HOST, rel);
    } else {
        if (check_full_uri(full, err, errlen) < 0)
            goto fail;
        n = snprintf(p->url, sizeof(p->url), "%s", full);
        p->send_auth = true;
        if (token_file) {
            if (!(p->auth_token_file = strdup(token_file)))
                goto oom;
        } else if (token) {
            if (has_control_chars(token)) {
                set_err(err, errlen, "AWS_CONTAINER_AUTHORIZATION_TOKEN holds control characters");
                goto fail;
            }
            if (!(p->auth_token = strdup(token)))
                goto oom;
        }
    }
    if (n < 0 || (size_t)n >= sizeof(p->url)) {
        set_err(err, errlen, "container credentials URI is too long");
        goto fail;
    }
    *out = p;
    return 1;
oom:
    set_err(err, errlen, "credentials: out of memory");
fail:
    creds_provider_free(p);
    return -1;
}

struct creds_provider *creds_provider_new_default(char *err, size_t errlen)
{
    struct creds_provider *p = NULL;
    int rc;

    if ((rc = env_provider(&p, err, errlen)) != 0)
        return rc > 0 ? p : NULL;
    if ((rc = container_provider(&p, err, errlen)) != 0)
        return rc > 0 ? p : NULL;
    set_err(err, errlen,
            "no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or run where "
            "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI or _FULL_URI is set");
    return NULL;
}

int creds_provider_get(struct creds_provider *p, struct aws_credentials *out, char *err,
                       size_t errlen)
{
    struct aws_credentials fresh;
    char ferr[256] = "";
    time_t now;
    int rc;

    if (!p || !out) {
        set_err(err, errlen, "credentials: no provider");
        return -1;
    }
    if (p->kind != CREDS_CONTAINER) {
        *out = p->cached; /* never written after construction */
        return 0;
    }

    pthread_mutex_lock(&p->mu);
    for (;;) {
        now = time(NULL);
        bool valid = p->have && creds_valid_at(&p->cached, now);
        if (valid &&
            (!creds_need_refresh(&p->cached, now) || p->refreshing || now < p->retry_after)) {
            *out = p->cached;
            pthread_mutex_unlock(&p->mu);
            return 0;
        }
        if (!p->refreshing)
            break;
        /* Nothing valid to hand out: wait for the refresh in flight and share its result. */
        unsigned long gen = p->generation;
        while (p->refreshing && p->generation == gen)
            pthread_cond_wait(&p->refreshed, &p->mu);
        if (!p->last_refresh_ok) {
            set_err(err, errlen, "%s", p->last_err);
            pthread_mutex_unlock(&p->mu);
            return -1;
        }
    }
    p->refreshing = true;
    pthread_mutex_unlock(&p->mu);

    memset(&fresh, 0, sizeof(fresh));
    rc = container_fetch(p, &fresh, ferr, sizeof(ferr));

    pthread_mutex_lock(&p->mu);
    p->refreshing = false;
    p->generation++;
    p->last_refresh_ok = rc == 0;
    now = time(NULL);
    if (rc == 0) {
        creds_wipe(&p->cached);
        p->cached = fresh;
        p->have = true;
        p->retry_after = 0;
        p->last_err[0] = '\0';
    } else {
        util_strlcpy(p->last_err, ferr, sizeof(p->last_err));
        p->retry_after = now + CREDS_RETRY_AFTER_FAILURE_S;
    }
    pthread_cond_broadcast(&p->refreshed);
    if (p->have && creds_valid_at(&p->cached, now)) {
        *out = p->cached; /* a failed refresh falls back to credentials that still work */
        rc = 0;
    } else {
        if (rc == 0)
            set_err(err, errlen,
                    "container credentials: the endpoint returned expired credentials");
        else
            set_err(err, errlen, "%s", ferr);
        rc = -1;
    }
    pthread_mutex_unlock(&p->mu);
    creds_wipe(&fresh);
    return rc;
}

const char *creds_provider_name(const struct creds_provider *p)
{
    if (!p)
        return "none";
    switch (p->kind) {
    case CREDS_ENVIRONMENT:
        return "environment";
    case CREDS_CONTAINER:
        return "container";
    case CREDS_STATIC:
        break;
    }
    return "static";
}

void creds_provider_free(struct creds_provider *p)
{
    if (!p)
        return;
    creds_wipe(&p->cached);
    wipe_string(p->auth_token);
    free(p->auth_token);
    free(p->auth_token_file);
    pthread_cond_destroy(&p->refreshed);
    pthread_mutex_destroy(&p->mu);
    free(p);
}
