/*
 * auth.h - bearer-token authentication for order-api (AUTH_MODE=jwt).
 *
 * An auth object owns the issuer's key set (AUTH_JWKS_URL, discovery from
 * AUTH_ISSUER, or AUTH_JWKS_FILE), a background thread that refreshes it, and
 * a cache of verified tokens. auth_check is what a request handler calls; it
 * never blocks on a fetch except for one bounded wait when a token names a
 * key id the set does not hold yet (a key the issuer just rotated in).
 * It fails closed: with no keys loaded every check answers AUTH_NOT_READY.
 */
#ifndef ORDER_AUTH_H
#define ORDER_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum auth_scope { AUTH_SCOPE_READ = 1u, AUTH_SCOPE_WRITE = 2u, AUTH_SCOPE_ADMIN = 4u };

struct auth_config {            /* strings are copied by auth_new */
    const char *issuer;         /* AUTH_ISSUER, exact match */
    const char *audience;       /* AUTH_AUDIENCE, comma-separated */
    const char *algorithms;     /* AUTH_ALGORITHMS, NULL = "RS256,ES256"; only RS256/ES256 */
    int64_t leeway_s;           /* AUTH_LEEWAY_S, 60 */
    const char *scope_prefix;   /* AUTH_SCOPE_PREFIX, NULL = "orders/" */
    const char *customer_claim; /* AUTH_CUSTOMER_CLAIM, NULL = "sub" */
    const char *jwks_url;       /* AUTH_JWKS_URL, NULL = discover from issuer */
    const char *jwks_file;      /* AUTH_JWKS_FILE, offline (re-read on every refresh) */
    int64_t jwks_refresh_s, jwks_min_refresh_s, jwks_timeout_ms; /* 3600, 30, 5000 */
    size_t cache_max; /* verified-token cache entries; 0 = no cache */
};

struct auth_principal {
    char sub[257];
    char customer[257]; /* the AUTH_CUSTOMER_CLAIM claim */
    unsigned scopes;    /* AUTH_SCOPE_* */
    int64_t exp;
};

enum auth_status { AUTH_OK, AUTH_NO_TOKEN, AUTH_INVALID, AUTH_NOT_READY };

/* Fills c with the documented defaults (issuer and audience stay NULL). */
void auth_config_defaults(struct auth_config *c);

/* Validates the configuration; on error returns NULL with err naming the
 * offending variable, e.g. "AUTH_ALGORITHMS: HS256 is not allowed (only RS256
 * and ES256)". No I/O: keys are loaded by auth_start's thread. */
struct auth *auth_new(const struct auth_config *c, char *err, size_t errlen);

/* Starts the refresher thread; the first fetch runs there, so this returns at
 * once. -1 with err when the thread cannot be created. Call once. */
int auth_start(struct auth *a, char *err, size_t errlen);

/* Keys loaded at least once (readiness). */
bool auth_ready(const struct auth *a);

/* Checks an Authorization header value (NULL when absent) at now_s (Unix
 * seconds). AUTH_OK fills p. Otherwise *reason is a fixed string for the
 * error_description and the metrics label ("expired", "wrong audience",
 * "unknown key", ...) that never holds any part of the token; on AUTH_OK it is
 * "ok". AUTH_NO_TOKEN: no credentials, or another scheme than Bearer (RFC 6750
 * 3.1: answer without an error code). AUTH_NOT_READY: no keys yet (or out of
 * memory): 503 with Retry-After, never a pass. Thread-safe. */
enum auth_status auth_check(struct auth *a, const char *header, int64_t now_s,
                            struct auth_principal *p, const char **reason);

/* Failure counters by reason, for metrics: iterate i from 0 to
 * auth_reason_table_size() - 1; index 0 is "ok" and is never counted. */
size_t auth_reason_table_size(void);
const char *auth_reason_name(size_t i);
uint64_t auth_failures(const struct auth *a, size_t i);

struct auth_stats {
    uint64_t signature_checks; /* signatures computed (a cache hit computes none) */
    uint64_t cache_hits;
    uint64_t jwks_fetches; /* attempts, successful or not */
    uint64_t jwks_fetch_failures;
    uint64_t key_set_changes; /* times a fetched set differed from the one in use */
    size_t keys;              /* keys in the set in use */
};
void auth_get_stats(const struct auth *a, struct auth_stats *out);

/* Stops the refresher (an in-flight fetch is aborted) and joins it. Idempotent. */
void auth_stop(struct auth *a);
void auth_free(struct auth *a);

#endif
