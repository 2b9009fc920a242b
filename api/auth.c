/*
 * auth.c - bearer-token authentication: the key set, its refresher thread and
 * the verified-token cache around the pure checks of common/jwt.c.
 *
 * Design: the key set in use is an immutable, reference-counted snapshot. A
 * request takes a reference under a mutex held for a pointer copy, so readers
 * never wait for a fetch; the refresher thread builds a whole new set off to
 * the side and swaps the pointer. A fetch that fails, or returns a set with no
 * usable key, changes nothing: the last good keys stay, and without any keys
 * every check fails closed (AUTH_NOT_READY). A token naming an unknown kid
 * asks the refresher for one fetch and waits at most AUTH_JWKS_TIMEOUT_MS; such
 * on-demand fetches happen at most once per AUTH_JWKS_MIN_REFRESH_S, however
 * many tokens ask. Verified tokens are cached by SHA-256 of the token in a
 * sharded, set-associative table, tagged with the key set they were verified
 * under, and re-checked against exp/nbf on every use.
 */
#include "auth.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "auth_fetch.h"
#include "jwks.h"
#include "jwt.h"
#include "log.h"
#include "util.h"

#define AUTH_MAX_AUDIENCES 16
#define AUTH_CACHE_SHARDS 16
#define AUTH_CACHE_WAYS 4
#define AUTH_MAX_WARNINGS 8
#define AUTH_RETRY_MIN_MS 1000
#define AUTH_RETRY_MAX_MS 30000

_Static_assert(AUTH_SCOPE_READ == JWT_SCOPE_READ && AUTH_SCOPE_WRITE == JWT_SCOPE_WRITE &&
                   AUTH_SCOPE_ADMIN == JWT_SCOPE_ADMIN,
               "scope bits are passed through unchanged");
_Static_assert(sizeof(((struct auth_principal *)0)->sub) == JWT_CLAIM_MAX + 1,
               "principal strings hold a whole claim");

struct keyset {
    atomic_uint refs;
    struct jwks *jwks;
    uint64_t generation; /* bumped only when the keys actually changed */
};

struct cache_entry {
    unsigned char key[32]; /* SHA-256 of the token */
    bool used;
    uint64_t generation;
    uint64_t stamp; /* last use, for LRU within the set */
    int64_t nbf;
    struct auth_principal p;
};

struct cache_shard {
    pthread_mutex_t mu;
    struct cache_entry *entries; /* n_sets * AUTH_CACHE_WAYS */
    uint64_t clock;
} __attribute__((aligned(64)));

struct auth {
    /* configuration, owned copies */
    char *issuer, *jwks_url, *jwks_file, *scope_prefix, *customer_claim;
    char *audience_buf; /* the audiences point into it */
    const char *audiences[AUTH_MAX_AUDIENCES];
    struct jwt_policy policy;
    int64_t refresh_ms, min_refresh_ms, timeout_ms;

    /* key set in use */
    pthread_mutex_t ks_mu;
    struct keyset *ks;
    uint64_t next_generation; /* refresher thread only */

    /* refresher thread and on-demand refreshes */
    pthread_mutex_t rf_mu;
    pthread_cond_t rf_wake; /* to the thread: stop, or fetch now */
    pthread_cond_t rf_done; /* from the thread: a fetch finished */
    bool rf_requested, rf_running, thread_started;
    bool rf_failing; /* the last fetch failed: the issuer looks down */
    atomic_bool stopping;
    uint64_t rf_completed;
    int64_t last_demand_ms; /* INT64_MIN before the first on-demand fetch */
    pthread_t thread;
    char *discovered_uri; /* refresher thread only */

    /* cache */
    EVP_MD *sha256; /* fetched once: OpenSSL 3's implicit fetch locks per call */
    struct cache_shard *shards;
    size_t n_sets; /* per shard; 0 = cache off */

    /* counters */
    atomic_uint_least64_t sig_checks, cache_hits, fetches, fetch_failures, changes;
    atomic_uint_least64_t failures[JWT_REASON_COUNT];
};

/* ---- configuration ---- */

void auth_config_defaults(struct auth_config *c)
{
    memset(c, 0, sizeof(*c));
    c->algorithms = "RS256,ES256";
    c->leeway_s = 60;
    c->scope_prefix = "orders/";
    c->customer_claim = "sub";
    c->jwks_refresh_s = 3600;
    c->jwks_min_refresh_s = 30;
    c->jwks_timeout_ms = 5000;
    c->cache_max = 10000;
}

static bool printable_nospace(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s <= 0x20 || (unsigned char)*s > 0x7e)
            return false;
    return true;
}

static char *trim(char *s)
{
    char *e;
    while (*s == ' ' || *s == '\t')
        s++;
    e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
        *--e = '\0';
    return s;
}

static int parse_algorithms(const char *list, unsigned *out, char *err, size_t errlen)
{
    char *copy = strdup(list), *tok, *next;
    int rc = 0;

    if (!copy) {
        util_errf(err, errlen, "AUTH_ALGORITHMS: out of memory");
        return -1;
    }
    *out = 0;
    /* Split by hand: strtok_r would skip an empty entry ("RS256,") without a word. */
    for (tok = copy; tok && rc == 0; tok = next) {
        next = strchr(tok, ',');
        if (next)
            *next++ = '\0';
        char *t = trim(tok);
        enum jws_alg a = jws_alg_from_name(t);
        if (a == JWS_ALG_OTHER) {
            util_errf(err, errlen, "AUTH_ALGORITHMS: %.32s is not allowed (only RS256 and ES256)",
                      *t ? t : "an empty entry");
            rc = -1;
        } else {
            *out |= JWS_ALG_BIT(a);
        }
    }
    free(copy);
    return rc;
}

static int parse_audiences(struct auth *a, const char *list, char *err, size_t errlen)
{
    char *next, *tok;
    size_t n = 0;

    if (!list || !*list) {
        util_errf(err, errlen, "AUTH_AUDIENCE: required (comma-separated audiences)");
        return -1;
    }
    if (!(a->audience_buf = strdup(list))) {
        util_errf(err, errlen, "AUTH_AUDIENCE: out of memory");
        return -1;
    }
    /* Split by hand: an empty entry is a typo worth naming, not skipping. */
    for (tok = a->audience_buf; tok; tok = next) {
        next = strchr(tok, ',');
        if (next)
            *next++ = '\0';
        tok = trim(tok);
        if (!*tok || !printable_nospace(tok)) {
            util_errf(err, errlen,
                      "AUTH_AUDIENCE: entry %zu is empty or holds spaces or control "
                      "characters",
                      n + 1);
            return -1;
        }
        if (n == AUTH_MAX_AUDIENCES) {
            util_errf(err, errlen, "AUTH_AUDIENCE: at most %d audiences", AUTH_MAX_AUDIENCES);
            return -1;
        }
        a->audiences[n++] = tok;
    }
    a->policy.audiences = a->audiences;
    a->policy.n_audiences = n;
    return 0;
}

static int validate(struct auth *a, const struct auth_config *c, char *err, size_t errlen)
{
    if (!c->issuer || !*c->issuer) {
        util_errf(err, errlen, "AUTH_ISSUER: required");
        return -1;
    }
    if (!printable_nospace(c->issuer)) {
        util_errf(err, errlen, "AUTH_ISSUER: must not hold spaces or control characters");
        return -1;
    }
    if (parse_audiences(a, c->audience, err, errlen) < 0 ||
        parse_algorithms(c->algorithms ? c->algorithms : "RS256,ES256", &a->policy.algs, err,
                         errlen) < 0)
        return -1;
    if (c->leeway_s < 0 || c->leeway_s > 3600) {
        util_errf(err, errlen, "AUTH_LEEWAY_S: must be between 0 and 3600");
        return -1;
    }
    if (c->scope_prefix && *c->scope_prefix && !printable_nospace(c->scope_prefix)) {
        util_errf(err, errlen, "AUTH_SCOPE_PREFIX: must not hold spaces or control characters");
        return -1;
    }
    if (c->customer_claim && (!*c->customer_claim || !printable_nospace(c->customer_claim))) {
        util_errf(err, errlen, "AUTH_CUSTOMER_CLAIM: must be a claim name");
        return -1;
    }
    if (c->jwks_url && *c->jwks_url && c->jwks_file && *c->jwks_file) {
        util_errf(err, errlen, "AUTH_JWKS_FILE: cannot be combined with AUTH_JWKS_URL");
        return -1;
    }
    if (c->jwks_url && *c->jwks_url) {
        if (auth_check_key_url("AUTH_JWKS_URL", c->jwks_url, err, errlen) < 0)
            return -1;
    } else if (!c->jwks_file || !*c->jwks_file) {
        /* Discovery: the issuer's own URL carries the keys' trust. */
        if (auth_check_key_url("AUTH_ISSUER", c->issuer, err, errlen) < 0) {
            size_t used = strlen(err);
            util_errf(err + used, errlen - used,
                      " (keys are discovered from it; or set AUTH_JWKS_URL or AUTH_JWKS_FILE)");
            return -1;
        }
    }
    if (c->jwks_refresh_s < 1 || c->jwks_refresh_s > 7 * 86400) {
        util_errf(err, errlen, "AUTH_JWKS_REFRESH_S: must be between 1 and 604800");
        return -1;
    }
    if (c->jwks_min_refresh_s < 0 || c->jwks_min_refresh_s > 86400) {
        util_errf(err, errlen, "AUTH_JWKS_MIN_REFRESH_S: must be between 0 and 86400");
        return -1;
    }
    if (c->jwks_timeout_ms < 100 || c->jwks_timeout_ms > 60000) {
        util_errf(err, errlen, "AUTH_JWKS_TIMEOUT_MS: must be between 100 and 60000");
        return -1;
    }
    if (c->cache_max > 10000000) {
        util_errf(err, errlen, "auth cache: at most 10000000 entries");
        return -1;
    }
    return 0;
}

static char *dup_or_null(const char *s, bool *oom)
{
    char *d;
    if (!s || !*s)
        return NULL;
    if (!(d = strdup(s)))
        *oom = true;
    return d;
}

struct auth *auth_new(const struct auth_config *c, char *err, size_t errlen)
{
    struct auth *a;
    pthread_condattr_t ca;
    bool oom = false;

    if (!c) {
        util_errf(err, errlen, "auth: no configuration");
        return NULL;
    }
    if (!(a = calloc(1, sizeof(*a)))) {
        util_errf(err, errlen, "auth: out of memory");
        return NULL;
    }
    pthread_mutex_init(&a->ks_mu, NULL);
    pthread_mutex_init(&a->rf_mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* deadlines come from util_mono_ms */
    pthread_cond_init(&a->rf_wake, &ca);
    pthread_cond_init(&a->rf_done, &ca);
    pthread_condattr_destroy(&ca);
    a->last_demand_ms = INT64_MIN;
    if (!(a->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL))) {
        util_errf(err, errlen, "auth: OpenSSL has no SHA-256");
        auth_free(a);
        return NULL;
    }

    if (validate(a, c, err, errlen) < 0) {
        auth_free(a);
        return NULL;
    }
    a->issuer = dup_or_null(c->issuer, &oom);
    a->jwks_url = dup_or_null(c->jwks_url, &oom);
    a->jwks_file = dup_or_null(c->jwks_file, &oom);
    a->scope_prefix = strdup(c->scope_prefix ? c->scope_prefix : "orders/");
    a->customer_claim = strdup(c->customer_claim ? c->customer_claim : "sub");
    if (oom || !a->scope_prefix || !a->customer_claim) {
        util_errf(err, errlen, "auth: out of memory");
        auth_free(a);
        return NULL;
    }
    a->policy.issuer = a->issuer;
    a->policy.leeway_s = c->leeway_s;
    a->policy.scope_prefix = a->scope_prefix;
    a->policy.customer_claim = a->customer_claim;
    a->refresh_ms = c->jwks_refresh_s * 1000;
    a->min_refresh_ms = c->jwks_min_refresh_s * 1000;
    a->timeout_ms = c->jwks_timeout_ms;

    if (c->cache_max > 0) {
        size_t per = AUTH_CACHE_SHARDS * AUTH_CACHE_WAYS;
        a->n_sets = c->cache_max / per ? c->cache_max / per : 1;
        if (!(a->shards = calloc(AUTH_CACHE_SHARDS, sizeof(*a->shards)))) {
            util_errf(err, errlen, "auth: out of memory");
            auth_free(a);
            return NULL;
        }
        for (size_t i = 0; i < AUTH_CACHE_SHARDS; i++) {
            pthread_mutex_init(&a->shards[i].mu, NULL);
            a->shards[i].entries = calloc(a->n_sets * AUTH_CACHE_WAYS, sizeof(struct cache_entry));
            if (!a->shards[i].entries) {
                util_errf(err, errlen, "auth: out of memory (token cache of %zu entries)",
                          c->cache_max);
                auth_free(a);
                return NULL;
            }
        }
    }
    return a;
}

/* ---- key set snapshots ---- */

static struct keyset *keyset_acquire(struct auth *a)
{
    struct keyset *ks;
    pthread_mutex_lock(&a->ks_mu);
    ks = a->ks;
    if (ks)
        atomic_fetch_add(&ks->refs, 1);
    pthread_mutex_unlock(&a->ks_mu);
    return ks;
}

static void keyset_release(struct keyset *ks)
{
    if (ks && atomic_fetch_sub(&ks->refs, 1) == 1) {
        jwks_free(ks->jwks);
        free(ks);
    }
}

bool auth_ready(const struct auth *a)
{
    bool ready;
    if (!a)
        return false;
    pthread_mutex_lock((pthread_mutex_t *)&a->ks_mu);
    ready = a->ks != NULL;
    pthread_mutex_unlock((pthread_mutex_t *)&a->ks_mu);
    return ready;
}

/* ---- fetching (the network part is auth_fetch.c) ---- */

struct warnings {
    size_t n, dropped;
    struct {
        char kid[JWKS_KID_MAX + 1];
        const char *why;
    } w[AUTH_MAX_WARNINGS];
};

static void collect_warning(void *ctx, const char *kid, const char *why)
{
    struct warnings *ws = ctx;
    if (ws->n == AUTH_MAX_WARNINGS) {
        ws->dropped++;
        return;
    }
    util_strlcpy(ws->w[ws->n].kid, kid, sizeof(ws->w[0].kid));
    ws->w[ws->n++].why = why;
}

/* Fetches and parses the set; installs it when it differs from the one in use. */
static bool refresh_once(struct auth *a)
{
    char err[512] = "";
    struct buf body;
    struct warnings ws = {0};
    struct jwks *set = NULL;
    struct keyset *cur, *fresh;
    const char *source = a->jwks_file ? a->jwks_file : a->jwks_url;
    bool ok = false;

    atomic_fetch_add(&a->fetches, 1);
    buf_init(&body, AUTH_MAX_FETCH_BYTES);
    if (a->jwks_file) {
        size_t len;
        char *data = util_read_file(a->jwks_file, AUTH_MAX_FETCH_BYTES, &len);
        if (!data) {
            util_errf(err, sizeof(err), "AUTH_JWKS_FILE %s: cannot read it, or over %d KiB",
                      a->jwks_file, AUTH_MAX_FETCH_BYTES / 1024);
            goto done;
        }
        body.data = data;
        body.len = len;
        body.cap = len + 1;
    } else {
        if (!a->jwks_url && !a->discovered_uri &&
            !(a->discovered_uri =
                  auth_discover(a->issuer, a->timeout_ms, &a->stopping, err, sizeof(err))))
            goto done;
        source = a->jwks_url ? a->jwks_url : a->discovered_uri;
        if (auth_http_get(source, a->timeout_ms, &a->stopping, &body, err, sizeof(err)) < 0)
            goto done;
    }
    set = jwks_parse(body.data ? body.data : "", body.len, collect_warning, &ws, err, sizeof(err));
    if (!set)
        goto done;
    ok = true;
    cur = keyset_acquire(a);
    if (cur && !memcmp(cur->jwks->fingerprint, set->fingerprint, sizeof(set->fingerprint))) {
        keyset_release(cur);
        jwks_free(set);
        goto done;
    }
    keyset_release(cur);
    for (size_t i = 0; i < ws.n; i++)
        log_warn(NULL, "auth: JWKS key \"%s\" from %s skipped: %s", ws.w[i].kid, source,
                 ws.w[i].why);
    if (ws.dropped)
        log_warn(NULL, "auth: %zu more JWKS keys from %s skipped", ws.dropped, source);
    if (!(fresh = calloc(1, sizeof(*fresh)))) {
        jwks_free(set);
        util_errf(err, sizeof(err), "out of memory");
        ok = false;
        goto done;
    }
    atomic_init(&fresh->refs, 1);
    fresh->jwks = set;
    fresh->generation = ++a->next_generation;
    pthread_mutex_lock(&a->ks_mu);
    cur = a->ks;
    a->ks = fresh;
    pthread_mutex_unlock(&a->ks_mu);
    keyset_release(cur); /* freed when the last request using it lets go */
    atomic_fetch_add(&a->changes, 1);
    log_info(NULL, "auth: %zu signing keys loaded from %s", set->n, source);
done:
    if (!ok) {
        atomic_fetch_add(&a->fetch_failures, 1);
        /* A discovery result may be what went stale: look it up again next time. */
        free(a->discovered_uri);
        a->discovered_uri = NULL;
        if (atomic_load(&a->stopping))
            ; /* aborted by auth_stop: nothing went wrong */
        else if (auth_ready(a))
            log_warn(NULL, "auth: JWKS refresh failed, keeping the keys in use: %s", err);
        else
            log_warn(NULL, "auth: no JWKS loaded yet (requests answer 503): %s", err);
    }
    buf_free(&body);
    return ok;
}

static struct timespec mono_deadline(int64_t at_ms)
{
    struct timespec ts = {.tv_sec = (time_t)(at_ms / 1000),
                          .tv_nsec = (long)(at_ms % 1000) * 1000000L};
    return ts;
}

static void *refresher(void *arg)
{
    struct auth *a = arg;
    int64_t next_due = 0; /* the first fetch at once */
    unsigned failures = 0;

    pthread_mutex_lock(&a->rf_mu);
    while (!atomic_load(&a->stopping)) {
        int64_t now = util_mono_ms();
        if (!a->rf_requested && now < next_due) {
            struct timespec ts = mono_deadline(next_due);
            pthread_cond_timedwait(&a->rf_wake, &a->rf_mu, &ts);
            continue;
        }
        a->rf_requested = false;
        a->rf_running = true;
        pthread_mutex_unlock(&a->rf_mu);
        bool ok = refresh_once(a);
        pthread_mutex_lock(&a->rf_mu);
        a->rf_running = false;
        a->rf_failing = !ok;
        a->rf_completed++;
        pthread_cond_broadcast(&a->rf_done);
        now = util_mono_ms();
        if (ok) {
            failures = 0;
            next_due = now + a->refresh_ms;
        } else {
            /* Retry sooner than the period, doubling up to 30 s: the issuer is not hammered
             * and an outage at start does not cost a whole refresh period. */
            int64_t delay = (int64_t)AUTH_RETRY_MIN_MS << (failures < 5 ? failures : 5);
            failures++;
            if (delay > AUTH_RETRY_MAX_MS)
                delay = AUTH_RETRY_MAX_MS;
            if (delay > a->refresh_ms)
                delay = a->refresh_ms;
            next_due = now + delay;
        }
    }
    pthread_mutex_unlock(&a->rf_mu);
    return NULL;
}

/* A token named a key we do not hold. Ask for one fetch unless one was asked
 * for less than AUTH_JWKS_MIN_REFRESH_S ago, and wait at most
 * AUTH_JWKS_TIMEOUT_MS for a fetch that begins after the token arrived: a
 * fetch already under way may have been answered before the issuer rotated
 * the key in, so it only counts when no fetch of our own may be asked for. */
static void demand_refresh(struct auth *a)
{
    int64_t now = util_mono_ms(), deadline = now + a->timeout_ms;
    uint64_t want;

    pthread_mutex_lock(&a->rf_mu);
    if (!a->thread_started) {
        pthread_mutex_unlock(&a->rf_mu);
        return;
    }
    if (!a->rf_requested &&
        (a->last_demand_ms == INT64_MIN || now - a->last_demand_ms >= a->min_refresh_ms)) {
        a->last_demand_ms = now;
        a->rf_requested = true;
        pthread_cond_signal(&a->rf_wake);
    }
    if (a->rf_requested) {
        /* asked for and not yet begun (ours or another request's): it starts
         * after the fetch under way, if any, completes */
        want = a->rf_completed + (a->rf_running ? 2 : 1);
    } else if (a->rf_running && !a->rf_failing) {
        want = a->rf_completed + 1; /* no fetch of our own allowed: the best there is */
    } else {
        /* Nothing to wait for, or only a retry while the issuer is failing:
         * waiting on it would let tokens naming random kids, which need no
         * valid signature, hold request threads through the outage. */
        pthread_mutex_unlock(&a->rf_mu);
        return;
    }
    while (a->rf_completed < want && !atomic_load(&a->stopping)) {
        struct timespec ts = mono_deadline(deadline);
        if (pthread_cond_timedwait(&a->rf_done, &a->rf_mu, &ts) == ETIMEDOUT)
            break;
    }
    pthread_mutex_unlock(&a->rf_mu);
}

int auth_start(struct auth *a, char *err, size_t errlen)
{
    int rc;
    if (!a || a->thread_started) {
        util_errf(err, errlen, "auth: already started");
        return -1;
    }
    pthread_mutex_lock(&a->rf_mu);
    rc = pthread_create(&a->thread, NULL, refresher, a);
    a->thread_started = rc == 0;
    pthread_mutex_unlock(&a->rf_mu);
    if (rc != 0) {
        util_errf(err, errlen, "auth: cannot start the key refresher: %s", strerror(rc));
        return -1;
    }
    return 0;
}

void auth_stop(struct auth *a)
{
    bool started;
    if (!a)
        return;
    pthread_mutex_lock(&a->rf_mu);
    atomic_store(&a->stopping, true);
    started = a->thread_started;
    a->thread_started = false;
    pthread_cond_broadcast(&a->rf_wake);
    pthread_cond_broadcast(&a->rf_done);
    pthread_mutex_unlock(&a->rf_mu);
    if (started)
        pthread_join(a->thread, NULL);
}

/* ---- verified-token cache ---- */

static struct cache_entry *cache_set(struct auth *a, const unsigned char key[32],
                                     struct cache_shard **shard)
{
    uint64_t h;
    memcpy(&h, key + 8, sizeof(h)); /* SHA-256 bytes are already uniform */
    *shard = &a->shards[key[0] % AUTH_CACHE_SHARDS];
    return &(*shard)->entries[(h % a->n_sets) * AUTH_CACHE_WAYS];
}

static bool cache_get(struct auth *a, const unsigned char key[32], uint64_t generation,
                      struct auth_principal *p, int64_t *nbf)
{
    struct cache_shard *s;
    struct cache_entry *set;
    bool hit = false;

    if (!a->n_sets)
        return false;
    set = cache_set(a, key, &s);
    pthread_mutex_lock(&s->mu);
    for (int w = 0; w < AUTH_CACHE_WAYS; w++) {
        struct cache_entry *e = &set[w];
        if (!e->used || memcmp(e->key, key, 32) != 0)
            continue;
        if (e->generation != generation) {
            e->used = false; /* verified under keys that have since changed */
            break;
        }
        e->stamp = ++s->clock;
        *p = e->p;
        *nbf = e->nbf;
        hit = true;
        break;
    }
    pthread_mutex_unlock(&s->mu);
    return hit;
}

static void cache_put(struct auth *a, const unsigned char key[32], uint64_t generation,
                      const struct auth_principal *p, int64_t nbf, int64_t now_s)
{
    struct cache_shard *s;
    struct cache_entry *set, *victim = NULL;

    if (!a->n_sets)
        return;
    set = cache_set(a, key, &s);
    pthread_mutex_lock(&s->mu);
    /* The same token (two threads verified it at once), else a free or expired
     * way, else the least recently used one. */
    for (int w = 0; w < AUTH_CACHE_WAYS && !victim; w++)
        if (set[w].used && !memcmp(set[w].key, key, 32))
            victim = &set[w];
    for (int w = 0; w < AUTH_CACHE_WAYS && !victim; w++)
        if (!set[w].used || set[w].p.exp + a->policy.leeway_s <= now_s)
            victim = &set[w];
    if (!victim) {
        victim = &set[0];
        for (int w = 1; w < AUTH_CACHE_WAYS; w++)
            if (set[w].stamp < victim->stamp)
                victim = &set[w];
    }
    memcpy(victim->key, key, 32);
    victim->used = true;
    victim->generation = generation;
    victim->stamp = ++s->clock;
    victim->nbf = nbf;
    victim->p = *p;
    pthread_mutex_unlock(&s->mu);
}

/* ---- checking ---- */

static enum auth_status finish(struct auth *a, enum jwt_reason r, const char **reason)
{
    if (reason)
        *reason = jwt_reason_name(r);
    if (r == JWT_OK)
        return AUTH_OK;
    atomic_fetch_add(&a->failures[r], 1);
    switch (r) {
    case JWT_NO_TOKEN:
    case JWT_NOT_BEARER:
        return AUTH_NO_TOKEN;
    case JWT_KEYS_NOT_READY:
    case JWT_INTERNAL:
        return AUTH_NOT_READY;
    default:
        return AUTH_INVALID;
    }
}

enum auth_status auth_check(struct auth *a, const char *header, int64_t now_s,
                            struct auth_principal *p, const char **reason)
{
    const char *tok;
    size_t len;
    unsigned char key[32];
    unsigned int keylen = 0;
    struct keyset *ks;
    struct jwt_claims c;
    int64_t nbf;
    enum jwt_reason r;

    memset(p, 0, sizeof(*p));
    if (!(ks = keyset_acquire(a)))
        return finish(a, JWT_KEYS_NOT_READY, reason);
    if ((r = jwt_bearer(header, &tok, &len)) != JWT_OK)
        goto done;
    if (EVP_Digest(tok, len, key, &keylen, a->sha256, NULL) != 1 || keylen != sizeof(key)) {
        r = JWT_INTERNAL;
        goto done;
    }
    if (cache_get(a, key, ks->generation, p, &nbf)) {
        atomic_fetch_add(&a->cache_hits, 1);
        r = jwt_check_times(p->exp, nbf, now_s, a->policy.leeway_s);
        if (r != JWT_OK)
            memset(p, 0, sizeof(*p));
        goto done;
    }
    r = jwt_check(tok, len, ks->jwks, &a->policy, now_s, &c, &a->sig_checks);
    if (r == JWT_UNKNOWN_KEY) {
        keyset_release(ks);
        demand_refresh(a);
        ks = keyset_acquire(a); /* never NULL again once a set was installed */
        r = jwt_check(tok, len, ks->jwks, &a->policy, now_s, &c, &a->sig_checks);
    }
    if (r == JWT_OK) {
        memcpy(p->sub, c.sub, sizeof(p->sub));
        memcpy(p->customer, c.customer, sizeof(p->customer));
        p->scopes = c.scopes;
        p->exp = c.exp;
        cache_put(a, key, ks->generation, p, c.nbf, now_s);
    }
done:
    keyset_release(ks);
    OPENSSL_cleanse(key, sizeof(key));
    return finish(a, r, reason);
}

/* ---- counters ---- */

size_t auth_reason_table_size(void)
{
    return JWT_REASON_COUNT;
}

const char *auth_reason_name(size_t i)
{
    return jwt_reason_name((enum jwt_reason)i);
}

uint64_t auth_failures(const struct auth *a, size_t i)
{
    if (!a || i >= JWT_REASON_COUNT)
        return 0;
    return atomic_load(&((struct auth *)a)->failures[i]);
}

void auth_get_stats(const struct auth *a, struct auth_stats *out)
{
    struct auth *m = (struct auth *)a; /* atomics and the mutex, not the configuration */
    struct keyset *ks;

    memset(out, 0, sizeof(*out));
    if (!a)
        return;
    out->signature_checks = atomic_load(&m->sig_checks);
    out->cache_hits = atomic_load(&m->cache_hits);
    out->jwks_fetches = atomic_load(&m->fetches);
    out->jwks_fetch_failures = atomic_load(&m->fetch_failures);
    out->key_set_changes = atomic_load(&m->changes);
    if ((ks = keyset_acquire(m))) {
        out->keys = ks->jwks->n;
        keyset_release(ks);
    }
}

void auth_free(struct auth *a)
{
    if (!a)
        return;
    auth_stop(a);
    keyset_release(a->ks);
    if (a->shards) {
        for (size_t i = 0; i < AUTH_CACHE_SHARDS; i++) {
            if (a->shards[i].entries)
                OPENSSL_cleanse(a->shards[i].entries,
                                a->n_sets * AUTH_CACHE_WAYS * sizeof(struct cache_entry));
            free(a->shards[i].entries);
            pthread_mutex_destroy(&a->shards[i].mu);
        }
        free(a->shards);
    }
    EVP_MD_free(a->sha256);
    free(a->discovered_uri);
    free(a->issuer);
    free(a->jwks_url);
    free(a->jwks_file);
    free(a->scope_prefix);
    free(a->customer_claim);
    free(a->audience_buf);
    pthread_cond_destroy(&a->rf_wake);
    pthread_cond_destroy(&a->rf_done);
    pthread_mutex_destroy(&a->rf_mu);
    pthread_mutex_destroy(&a->ks_mu);
    free(a);
}
