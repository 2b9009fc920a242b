/*
 * credentials.c - the AWS SDKs' default credentials chain: environment, then
 * the ECS/Fargate container endpoint (credentials_ecs.c), with a cache
 * refreshed ahead of expiry.
 *
 * Design: one caller at a time refreshes, outside the lock; everyone else keeps
 * getting the cached credentials while they are still valid, and only waits
 * when there is nothing valid to hand out. A failed refresh never throws away
 * credentials that still work. Secrets (keys, tokens, response bodies) are
 * never copied into an error message and are wiped with OPENSSL_cleanse.
 */
#include "credentials.h"

#include <openssl/crypto.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "credentials_ecs.h"
#include "util.h"

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
    struct creds_ecs *ecs; /* the container provider's endpoint */
};

void creds_wipe(struct aws_credentials *c)
{
    if (c)
        OPENSSL_cleanse(c, sizeof(*c));
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

static int copy_env(char *dst, size_t cap, const char *name, const char *value, char *err,
                    size_t errlen)
{
    size_t n = strlen(value);
    if (n >= cap) {
        util_errf(err, errlen, "%s is too long (%zu bytes, at most %zu)", name, n, cap - 1);
        return -1;
    }
    memcpy(dst, value, n + 1);
    return 0;
}

/* 1 when AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY are set, 0 when neither is, -1 on error. */
static int env_provider(struct creds_provider **out, char *err, size_t errlen)
{
    const char *akid = config_env("AWS_ACCESS_KEY_ID");
    const char *secret = config_env("AWS_SECRET_ACCESS_KEY");
    const char *token = config_env("AWS_SESSION_TOKEN");
    struct aws_credentials c;
    int rc = -1;

    if (!akid && !secret)
        return 0;
    if (!akid) {
        util_errf(err, errlen, "AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not");
        return -1;
    }
    if (!secret) {
        util_errf(err, errlen, "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not");
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
        util_errf(err, errlen, "credentials: out of memory");
        goto done;
    }
    (*out)->cached = c;
    (*out)->have = true;
    rc = 1;
done:
    creds_wipe(&c);
    return rc;
}

struct creds_provider *creds_provider_new_default(char *err, size_t errlen)
{
    struct creds_provider *p = NULL;
    int rc;

    if ((rc = env_provider(&p, err, errlen)) != 0)
        return rc > 0 ? p : NULL;
    struct creds_ecs *ecs;
    if ((rc = creds_ecs_from_env(&ecs, err, errlen)) < 0)
        return NULL;
    if (rc > 0) { /* no I/O here: the first creds_provider_get fetches */
        if (!(p = provider_alloc(CREDS_CONTAINER))) {
            creds_ecs_free(ecs);
            util_errf(err, errlen, "credentials: out of memory");
            return NULL;
        }
        p->ecs = ecs;
        return p;
    }
    util_errf(err, errlen,
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
        util_errf(err, errlen, "credentials: no provider");
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
            util_errf(err, errlen, "%s", p->last_err);
            pthread_mutex_unlock(&p->mu);
            return -1;
        }
    }
    p->refreshing = true;
    pthread_mutex_unlock(&p->mu);

    memset(&fresh, 0, sizeof(fresh));
    rc = creds_ecs_fetch(p->ecs, &fresh, ferr, sizeof(ferr));

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
            util_errf(err, errlen,
                      "container credentials: the endpoint returned expired credentials");
        else
            util_errf(err, errlen, "%s", ferr);
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
    creds_ecs_free(p->ecs);
    pthread_cond_destroy(&p->refreshed);
    pthread_mutex_destroy(&p->mu);
    free(p);
}
