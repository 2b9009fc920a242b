/*
 * jwt.h - bearer access tokens: a JWS compact token checked against a key set
 * and a policy (issuer, audiences, algorithms, clock skew, scope names).
 *
 * Pure: no I/O, no clock, no logging; the caller passes the time and the keys
 * and gets back one reason from a fixed table, never any part of the token.
 * The order of checks is the security argument: the header's algorithm is
 * checked against the allowed list and the chosen key's type before any
 * signature is computed, and claims are read only from a verified payload.
 */
#ifndef ORDER_JWT_H
#define ORDER_JWT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "jwks.h"

#define JWT_MAX_AUTH_HEADER 8192 /* an Authorization header longer than this is refused unread */
#define JWT_CLAIM_MAX 256        /* sub and the customer claim: 1 to 256 printable bytes */
#define JWT_NO_NBF INT64_MIN

#define JWT_SCOPE_READ 1u
#define JWT_SCOPE_WRITE 2u
#define JWT_SCOPE_ADMIN 4u

/* Why a token was refused. The names (jwt_reason_name) are fixed, short and
 * safe to show a client or use as a metrics label. */
enum jwt_reason {
    JWT_OK = 0,
    JWT_NO_TOKEN,         /* no Authorization header */
    JWT_NOT_BEARER,       /* another scheme (Basic, ...) */
    JWT_HEADER_TOO_LARGE, /* over JWT_MAX_AUTH_HEADER */
    JWT_MALFORMED,        /* not three strict base64url parts */
    JWT_BAD_HEADER,       /* JOSE header not a JSON object, or alg/kid of the wrong type */
    JWT_DUP_HEADER,       /* a header parameter given twice */
    JWT_ALG_NOT_ALLOWED,  /* none, HS*, or anything outside the configured list */
    JWT_CRIT,             /* "crit": extensions we do not implement */
    JWT_NO_KID,           /* no kid and the set does not hold exactly one usable key */
    JWT_UNKNOWN_KEY,      /* kid not in the set */
    JWT_KEY_MISMATCH,     /* alg does not fit the key's kty or its stated alg */
    JWT_KEY_NOT_SIG,      /* the key's use/key_ops exclude verification */
    JWT_BAD_SIG_LEN,      /* RS256: not the modulus size; ES256: not 64 bytes */
    JWT_BAD_SIG,
    JWT_BAD_CLAIMS, /* payload not a JSON object, or a claim of the wrong type */
    JWT_DUP_CLAIM,
    JWT_WRONG_ISSUER,
    JWT_NO_EXP,
    JWT_EXPIRED,
    JWT_NOT_YET_VALID,
    JWT_IAT_FUTURE,
    JWT_WRONG_AUDIENCE,
    JWT_NOT_ACCESS, /* token_use present and not "access" (e.g. a Cognito ID token) */
    JWT_NO_SUB,
    JWT_BAD_CUSTOMER,   /* customer claim missing, empty, over 256 bytes or unprintable */
    JWT_KEYS_NOT_READY, /* used by the caller: no key set loaded yet */
    JWT_INTERNAL,       /* out of memory or an OpenSSL failure */
    JWT_REASON_COUNT
};

const char *jwt_reason_name(enum jwt_reason r);

struct jwt_policy {
    unsigned algs;      /* JWS_ALG_BIT(JWS_ALG_RS256) | JWS_ALG_BIT(JWS_ALG_ES256) */
    const char *issuer; /* compared byte for byte */
    const char *const *audiences;
    size_t n_audiences;
    int64_t leeway_s;
    const char *scope_prefix;   /* "orders/" */
    const char *customer_claim; /* "sub" */
};

struct jwt_claims {
    char sub[JWT_CLAIM_MAX + 1];
    char customer[JWT_CLAIM_MAX + 1];
    unsigned scopes; /* JWT_SCOPE_* */
    int64_t exp;
    int64_t nbf; /* JWT_NO_NBF when absent */
};

/* Extracts the token from an Authorization header value: scheme "Bearer"
 * (any case), one or more spaces, the token. JWT_OK, JWT_NO_TOKEN (NULL or
 * empty), JWT_NOT_BEARER, JWT_HEADER_TOO_LARGE or JWT_MALFORMED. */
enum jwt_reason jwt_bearer(const char *header, const char **token, size_t *len);

/* Verifies a compact JWS (not NUL-terminated) with keys under p at now_s and
 * fills out. sig_checks, when not NULL, counts signature computations, so a
 * caller can see that a refusal happened before any. */
enum jwt_reason jwt_check(const char *token, size_t len, const struct jwks *keys,
                          const struct jwt_policy *p, int64_t now_s, struct jwt_claims *out,
                          _Atomic uint64_t *sig_checks);

/* The claims step alone, on a decoded payload (exposed for the fuzzer). */
enum jwt_reason jwt_claims_parse(const char *json, size_t len, const struct jwt_policy *p,
                                 int64_t now_s, struct jwt_claims *out);

/* exp/nbf against now with leeway: JWT_OK, JWT_EXPIRED or JWT_NOT_YET_VALID.
 * A cached verification is re-checked with this on every use. */
enum jwt_reason jwt_check_times(int64_t exp, int64_t nbf, int64_t now_s, int64_t leeway_s);

#endif
