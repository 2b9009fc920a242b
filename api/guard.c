/*
 * guard.c - who may call order-api: the bearer token (auth.c), the scope
 * each route needs, and a token bucket per caller (ratelimit.c).
 *
 * Fail closed: with AUTH_MODE=jwt nothing but /healthz, /readyz and
 * /openapi.yaml is served without a valid token, and before the first key
 * set has loaded protected routes answer 503, never "let it through".
 * Every refusal follows RFC 6750: 401 with WWW-Authenticate (and, for a bad
 * token, error="invalid_token" with a description that never echoes it),
 * 403 insufficient_scope naming the scope, 429 with Retry-After.
 * AUTH_MODE=off has to be asked for, and is warned about every minute.
 */
#include "guard.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "auth.h"
#include "log.h"
#include "ratelimit.h"

#define AUTH_HEADER_MAX 8192
#define TOKEN_CACHE_MAX 10000
#define RATE_KEYS_MAX 100000
#define OFF_WARN_EVERY_S 60

static struct {
    struct auth *auth;
    struct ratelimit *rate;
    pthread_t warner;
    bool warner_running, stopping;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    _Atomic uint64_t rate_limited;
    _Atomic uint64_t oversized;
} g = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};

static void warn_off(void)
{
    log_warn(NULL, "AUTH_MODE=off: the API accepts requests WITHOUT authentication and every "
                   "caller acts on every customer; never run it like this where others can reach "
                   "it");
}

static void *warner_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&g.lock);
    while (!g.stopping) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += OFF_WARN_EVERY_S;
        if (pthread_cond_timedwait(&g.cond, &g.lock, &ts) != 0 && !g.stopping)
            warn_off();
    }
    pthread_mutex_unlock(&g.lock);
    return NULL;
}

int guard_start(char *err, size_t errlen)
{
    const struct api_auth_config *ac = &api_cfg.auth;
    if (api_cfg.rate_limit_rps > 0) {
        g.rate = ratelimit_new((double)api_cfg.rate_limit_rps, (double)api_cfg.rate_limit_burst,
                               RATE_KEYS_MAX);
        if (!g.rate) {
            snprintf(err, errlen, "cannot create the rate limiter (out of memory)");
            return -1;
        }
    }
    if (ac->mode == API_AUTH_OFF) {
        warn_off();
        g.warner_running = pthread_create(&g.warner, NULL, warner_main, NULL) == 0;
        return 0;
    }
    struct auth_config c;
    char algs[32] = "";
    auth_config_defaults(&c);
    snprintf(algs, sizeof(algs), "%s%s%s", (ac->algorithms & API_AUTH_RS256) ? "RS256" : "",
             (ac->algorithms & API_AUTH_RS256) && (ac->algorithms & API_AUTH_ES256) ? "," : "",
             (ac->algorithms & API_AUTH_ES256) ? "ES256" : "");
    c.issuer = ac->issuer;
    c.audience = ac->audience;
    c.algorithms = algs;
    c.leeway_s = ac->leeway_s;
    c.scope_prefix = ac->scope_prefix;
    c.customer_claim = ac->customer_claim;
    c.jwks_url = ac->jwks_url;
    c.jwks_file = ac->jwks_file;
    c.jwks_refresh_s = ac->jwks_refresh_s;
    c.jwks_min_refresh_s = ac->jwks_min_refresh_s;
    c.jwks_timeout_ms = ac->jwks_timeout_ms;
    c.cache_max = TOKEN_CACHE_MAX;
    g.auth = auth_new(&c, err, errlen);
    if (!g.auth || auth_start(g.auth, err, errlen) != 0)
        return -1;
    return 0;
}

void guard_stop(void)
{
    pthread_mutex_lock(&g.lock);
    g.stopping = true;
    pthread_cond_broadcast(&g.cond);
    pthread_mutex_unlock(&g.lock);
    if (g.warner_running)
        pthread_join(g.warner, NULL);
    g.warner_running = false;
    if (g.auth) {
        auth_stop(g.auth);
        auth_free(g.auth);
    }
    g.auth = NULL;
    ratelimit_free(g.rate);
    g.rate = NULL;
}

bool guard_ready(void)
{
    return !g.auth || auth_ready(g.auth);
}

static unsigned scope_needed(const struct req_ctx *c)
{
    return strcmp(c->method, "POST") == 0 ? AUTH_SCOPE_WRITE : AUTH_SCOPE_READ;
}

static enum MHD_Result unauthorized(struct req_ctx *c, const char *reason)
{
    char www[256];
    if (!reason) {
        const char *h[] = {"WWW-Authenticate", "Bearer realm=\"orders\"", NULL};
        return http_send_error(c, 401, "unauthorized", "a bearer token is required",
                               "Authorization", "must be \"Bearer <token>\"", h);
    }
    snprintf(www, sizeof(www),
             "Bearer realm=\"orders\", error=\"invalid_token\", error_description=\"%s\"", reason);
    const char *h[] = {"WWW-Authenticate", www, NULL};
    char msg[160];
    snprintf(msg, sizeof(msg), "the bearer token is not valid: %s", reason);
    return http_send_error(c, 401, "invalid_token", msg, "Authorization", reason, h);
}

static enum MHD_Result insufficient_scope(struct req_ctx *c, unsigned need)
{
    char scope[160], www[256], msg[200];
    snprintf(scope, sizeof(scope), "%s%s", api_cfg.auth.scope_prefix,
             need == AUTH_SCOPE_WRITE ? "write" : "read");
    snprintf(www, sizeof(www),
             "Bearer realm=\"orders\", error=\"insufficient_scope\", scope=\"%s\"", scope);
    snprintf(msg, sizeof(msg), "the token lacks the scope %s", scope);
    const char *h[] = {"WWW-Authenticate", www, NULL};
    return http_send_error(c, 403, "insufficient_scope", msg, "scope", msg, h);
}

enum MHD_Result guard_request(struct req_ctx *c)
{
    if (route_is_public(c->route))
        return MHD_YES;
    if (g.auth) {
        struct auth_principal p;
        const char *reason = NULL;
        const char *h = MHD_lookup_connection_value(c->conn, MHD_HEADER_KIND, "Authorization");
        if (h && strlen(h) > AUTH_HEADER_MAX) {
            atomic_fetch_add(&g.oversized, 1);
            return unauthorized(c, "the Authorization header exceeds 8192 bytes");
        }
        switch (auth_check(g.auth, h, (int64_t)time(NULL), &p, &reason)) {
        case AUTH_OK:
            break;
        case AUTH_NO_TOKEN:
            return unauthorized(c, NULL);
        case AUTH_NOT_READY:
            return http_send_unavailable(c, "the token signing keys are not loaded yet; retry");
        case AUTH_INVALID:
        default:
            return unauthorized(c, reason ? reason : "invalid");
        }
        unsigned need = scope_needed(c);
        if (!(p.scopes & need))
            return insufficient_scope(c, need);
        c->caller.authenticated = true;
        c->caller.admin = (p.scopes & AUTH_SCOPE_ADMIN) != 0;
        util_strlcpy(c->caller.principal, p.sub, sizeof(c->caller.principal));
        util_strlcpy(c->caller.customer, p.customer, sizeof(c->caller.customer));
    }
    if (g.rate) {
        int64_t retry_s = 1;
        /* with auth off every caller shares one bucket: there is no one to tell apart */
        const char *key = c->caller.authenticated ? c->caller.principal : "";
        if (!ratelimit_take(g.rate, key, util_mono_ms(), &retry_s)) {
            char ra[24];
            snprintf(ra, sizeof(ra), "%lld", (long long)(retry_s > 0 ? retry_s : 1));
            const char *h[] = {"Retry-After", ra, NULL};
            atomic_fetch_add(&g.rate_limited, 1);
            return http_send_error(c, 429, "rate_limited", "too many requests for this caller",
                                   NULL, NULL, h);
        }
    }
    return MHD_YES;
}

void guard_metrics(struct buf *b)
{
    metrics_header(b, "order_api_auth_failures_total", "counter",
                   "Requests refused for their token, by reason");
    if (g.auth) {
        char labels[160];
        for (size_t i = 0; i < auth_reason_table_size(); i++) {
            uint64_t v = auth_failures(g.auth, i);
            if (!v)
                continue;
            snprintf(labels, sizeof(labels), "reason=\"%s\"", auth_reason_name(i));
            metrics_sample(b, "order_api_auth_failures_total", labels, (double)v);
        }
    }
    metrics_sample(b, "order_api_auth_failures_total", "reason=\"header too large\"",
                   (double)atomic_load(&g.oversized));
    metrics_header(b, "order_api_rate_limited_total", "counter",
                   "Requests refused by the per-caller rate limit");
    metrics_sample(b, "order_api_rate_limited_total", "", (double)atomic_load(&g.rate_limited));
}
