/*
 * jwt.c - JWS compact tokens (RFC 7515/7519) as OAuth 2.0 access tokens.
 *
 * Design: every check is a step that returns a reason, and the steps run in an
 * order that keeps attacker-controlled input away from the expensive and the
 * dangerous parts: the Authorization header's size, then the token's shape,
 * then the JOSE header (duplicate names refused), then the algorithm against
 * the allowed list and against the selected key's type - only then a
 * signature, and only a verified payload is parsed for claims. Signatures go
 * straight to OpenSSL 3's EVP with the key from the set; the token never names
 * the key material (jku, x5u, jwk, x5c are never read).
 */
#include "jwt.h"

#include <jansson.h>
#include <math.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define ES256_SIG_LEN 64

static const char *const reason_names[JWT_REASON_COUNT] = {
    [JWT_OK] = "ok",
    [JWT_NO_TOKEN] = "no token",
    [JWT_NOT_BEARER] = "not a bearer token",
    [JWT_HEADER_TOO_LARGE] = "authorization header too large",
    [JWT_MALFORMED] = "malformed token",
    [JWT_BAD_HEADER] = "malformed token header",
    [JWT_DUP_HEADER] = "duplicate header parameter",
    [JWT_ALG_NOT_ALLOWED] = "algorithm not allowed",
    [JWT_CRIT] = "critical header parameter not supported",
    [JWT_NO_KID] = "key id required",
    [JWT_UNKNOWN_KEY] = "unknown key",
    [JWT_KEY_MISMATCH] = "algorithm does not match key",
    [JWT_KEY_NOT_SIG] = "key not for signatures",
    [JWT_BAD_SIG_LEN] = "bad signature length",
    [JWT_BAD_SIG] = "bad signature",
    [JWT_BAD_CLAIMS] = "malformed claims",
    [JWT_DUP_CLAIM] = "duplicate claim",
    [JWT_WRONG_ISSUER] = "wrong issuer",
    [JWT_NO_EXP] = "missing expiry",
    [JWT_EXPIRED] = "expired",
    [JWT_NOT_YET_VALID] = "not yet valid",
    [JWT_IAT_FUTURE] = "issued in the future",
    [JWT_WRONG_AUDIENCE] = "wrong audience",
    [JWT_NOT_ACCESS] = "not an access token",
    [JWT_NO_SUB] = "missing subject",
    [JWT_BAD_CUSTOMER] = "invalid customer claim",
    [JWT_KEYS_NOT_READY] = "keys not loaded",
    [JWT_INTERNAL] = "internal error",
};

const char *jwt_reason_name(enum jwt_reason r)
{
    if ((unsigned)r >= JWT_REASON_COUNT)
        return "internal error";
    return reason_names[r];
}

/* ---- Authorization header ---- */

enum jwt_reason jwt_bearer(const char *header, const char **token, size_t *len)
{
    size_t n, i = 0, end;

    if (!header)
        return JWT_NO_TOKEN;
    n = strnlen(header, JWT_MAX_AUTH_HEADER + 1);
    if (n > JWT_MAX_AUTH_HEADER)
        return JWT_HEADER_TOO_LARGE;
    while (i < n && (header[i] == ' ' || header[i] == '\t'))
        i++;
    end = n;
    while (end > i && (header[end - 1] == ' ' || header[end - 1] == '\t'))
        end--;
    if (i == end)
        return JWT_NO_TOKEN;
    /* RFC 6750 2.1: credentials = "Bearer" 1*SP b64token; auth-scheme is case-insensitive. */
    if (end - i < 6 || strncasecmp(header + i, "Bearer", 6) != 0 ||
        (end - i > 6 && header[i + 6] != ' '))
        return JWT_NOT_BEARER;
    i += 6;
    while (i < end && header[i] == ' ')
        i++;
    if (i == end)
        return JWT_MALFORMED;
    for (size_t j = i; j < end; j++)
        if (header[j] == ' ' || header[j] == '\t')
            return JWT_MALFORMED;
    *token = header + i;
    *len = end - i;
    return JWT_OK;
}

/* ---- helpers ---- */

/* Decodes strict base64url into a NUL-terminated malloc'd buffer. */
static enum jwt_reason b64_decode_alloc(const char *in, size_t len, unsigned char **out,
                                        size_t *outlen)
{
    size_t cap = jwks_b64url_decoded_len(len);

    if (!(*out = malloc(cap + 1)))
        return JWT_INTERNAL;
    if (jwks_b64url_decode(in, len, *out, cap, outlen) < 0) {
        free(*out);
        *out = NULL;
        return JWT_MALFORMED;
    }
    (*out)[*outlen] = '\0';
    return JWT_OK;
}

static bool printable(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
            return false;
    return true;
}

/* A string claim of 1..JWT_CLAIM_MAX printable bytes copied into dst. */
static bool take_claim(json_t *root, const char *name, char dst[JWT_CLAIM_MAX + 1])
{
    json_t *v = json_object_get(root, name);
    size_t n;

    if (!json_is_string(v))
        return false;
    n = json_string_length(v);
    if (n == 0 || n > JWT_CLAIM_MAX || !printable(json_string_value(v), n))
        return false;
    memcpy(dst, json_string_value(v), n);
    dst[n] = '\0';
    return true;
}

/* NumericDate (RFC 7519 2): integer or fractional seconds. Clamped to a range
 * that cannot overflow when the leeway is added. */
#define NUMERIC_DATE_LIMIT 1000000000000000LL

static bool numeric_date(json_t *v, int64_t *out)
{
    if (json_is_integer(v)) {
        json_int_t x = json_integer_value(v);
        *out = x > NUMERIC_DATE_LIMIT    ? NUMERIC_DATE_LIMIT
               : x < -NUMERIC_DATE_LIMIT ? -NUMERIC_DATE_LIMIT
                                         : (int64_t)x;
        return true;
    }
    if (json_is_real(v)) {
        double d = json_real_value(v);
        if (!isfinite(d))
            return false;
        d = floor(d);
        *out = d > (double)NUMERIC_DATE_LIMIT    ? NUMERIC_DATE_LIMIT
               : d < -(double)NUMERIC_DATE_LIMIT ? -NUMERIC_DATE_LIMIT
                                                 : (int64_t)d;
        return true;
    }
    return false;
}

static bool audience_allowed(const struct jwt_policy *p, json_t *v)
{
    for (size_t i = 0; i < p->n_audiences; i++) {
        size_t n = strlen(p->audiences[i]);
        if (json_string_length(v) == n && !memcmp(json_string_value(v), p->audiences[i], n))
            return true;
    }
    return false;
}

/* As API Gateway's JWT authorizer: aud (string or array) when present, else client_id. */
static enum jwt_reason check_audience(json_t *root, const struct jwt_policy *p)
{
    json_t *aud = json_object_get(root, "aud");
    json_t *cid;

    if (aud) {
        size_t i;
        json_t *a;
        bool match = false;
        if (json_is_string(aud))
            return audience_allowed(p, aud) ? JWT_OK : JWT_WRONG_AUDIENCE;
        if (!json_is_array(aud))
            return JWT_BAD_CLAIMS;
        json_array_foreach(aud, i, a)
        {
            if (!json_is_string(a))
                return JWT_BAD_CLAIMS;
            if (audience_allowed(p, a))
                match = true;
        }
        return match ? JWT_OK : JWT_WRONG_AUDIENCE;
    }
    cid = json_object_get(root, "client_id");
    if (!cid)
        return JWT_WRONG_AUDIENCE;
    if (!json_is_string(cid))
        return JWT_BAD_CLAIMS;
    return audience_allowed(p, cid) ? JWT_OK : JWT_WRONG_AUDIENCE;
}

static unsigned scope_bit(const char *s, size_t n, const char *prefix)
{
    size_t pl = strlen(prefix);

    if (n <= pl || memcmp(s, prefix, pl) != 0)
        return 0;
    s += pl;
    n -= pl;
    if (n == 4 && !memcmp(s, "read", 4))
        return JWT_SCOPE_READ;
    if (n == 5 && !memcmp(s, "write", 5))
        return JWT_SCOPE_WRITE;
    if (n == 5 && !memcmp(s, "admin", 5))
        return JWT_SCOPE_ADMIN;
    return 0;
}

static unsigned scopes_from_string(const char *s, size_t n, const char *prefix)
{
    unsigned bits = 0;
    size_t i = 0;

    while (i < n) {
        size_t j = i;
        while (j < n && s[j] != ' ')
            j++;
        bits |= scope_bit(s + i, j - i, prefix);
        i = j + 1;
    }
    return bits;
}

/* "scope" (RFC 8693/9068: space-separated string) or "scp" (array, or a string). */
static enum jwt_reason read_scopes(json_t *root, const char *prefix, unsigned *out)
{
    json_t *v = json_object_get(root, "scope");

    *out = 0;
    if (!v)
        v = json_object_get(root, "scp");
    if (!v)
        return JWT_OK;
    if (json_is_string(v)) {
        *out = scopes_from_string(json_string_value(v), json_string_length(v), prefix);
        return JWT_OK;
    }
    if (json_is_array(v)) {
        size_t i;
        json_t *s;
        json_array_foreach(v, i, s)
        {
            if (!json_is_string(s))
                return JWT_BAD_CLAIMS;
            *out |= scope_bit(json_string_value(s), json_string_length(s), prefix);
        }
        return JWT_OK;
    }
    return JWT_BAD_CLAIMS;
}

/* ---- claims ---- */

enum jwt_reason jwt_check_times(int64_t exp, int64_t nbf, int64_t now_s, int64_t leeway_s)
{
    if (now_s - leeway_s >= exp)
        return JWT_EXPIRED;
    if (nbf != JWT_NO_NBF && now_s + leeway_s < nbf)
        return JWT_NOT_YET_VALID;
    return JWT_OK;
}

static enum jwt_reason claims_from_root(json_t *root, const struct jwt_policy *p, int64_t now_s,
                                        struct jwt_claims *c)
{
    json_t *iss, *v;
    int64_t iat;
    enum jwt_reason r;

    if (!json_is_object(root))
        return JWT_BAD_CLAIMS;
    iss = json_object_get(root, "iss");
    if (!json_is_string(iss) || json_string_length(iss) != strlen(p->issuer) ||
        memcmp(json_string_value(iss), p->issuer, json_string_length(iss)) != 0)
        return JWT_WRONG_ISSUER;

    if (!(v = json_object_get(root, "exp")))
        return JWT_NO_EXP;
    if (!numeric_date(v, &c->exp))
        return JWT_BAD_CLAIMS;
    c->nbf = JWT_NO_NBF;
    if ((v = json_object_get(root, "nbf")) && !numeric_date(v, &c->nbf))
        return JWT_BAD_CLAIMS;
    if ((r = jwt_check_times(c->exp, c->nbf, now_s, p->leeway_s)) != JWT_OK)
        return r;
    if ((v = json_object_get(root, "iat"))) {
        if (!numeric_date(v, &iat))
            return JWT_BAD_CLAIMS;
        if (iat > now_s + p->leeway_s)
            return JWT_IAT_FUTURE;
    }

    if ((r = check_audience(root, p)) != JWT_OK)
        return r;
    if ((v = json_object_get(root, "token_use")) &&
        (!json_is_string(v) || strcmp(json_string_value(v), "access") != 0 ||
         json_string_length(v) != 6))
        return JWT_NOT_ACCESS;
    if (!take_claim(root, "sub", c->sub))
        return JWT_NO_SUB;
    if (!take_claim(root, p->customer_claim, c->customer))
        return JWT_BAD_CUSTOMER;
    return read_scopes(root, p->scope_prefix, &c->scopes);
}

enum jwt_reason jwt_claims_parse(const char *json, size_t len, const struct jwt_policy *p,
                                 int64_t now_s, struct jwt_claims *out)
{
    json_error_t jerr;
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
    enum jwt_reason r;

    if (!root)
        return json_error_code(&jerr) == json_error_duplicate_key ? JWT_DUP_CLAIM : JWT_BAD_CLAIMS;
    memset(out, 0, sizeof(*out));
    r = claims_from_root(root, p, now_s, out);
    json_decref(root);
    if (r != JWT_OK)
        memset(out, 0, sizeof(*out));
    return r;
}

/* ---- header, key selection, signature ---- */

struct parts {
    const char *h, *p, *s; /* base64url of header, payload, signature */
    size_t hlen, plen, slen;
};

static enum jwt_reason split(const char *tok, size_t len, struct parts *pt)
{
    const char *d1 = memchr(tok, '.', len), *d2;

    if (!d1)
        return JWT_MALFORMED;
    d2 = memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - tok));
    if (!d2 || memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - tok)))
        return JWT_MALFORMED;
    pt->h = tok;
    pt->hlen = (size_t)(d1 - tok);
    pt->p = d1 + 1;
    pt->plen = (size_t)(d2 - pt->p);
    pt->s = d2 + 1;
    pt->slen = len - (size_t)(pt->s - tok);
    return pt->hlen && pt->plen ? JWT_OK : JWT_MALFORMED;
}

struct header {
    enum jws_alg alg;
    bool has_kid;
    char kid[JWKS_KID_MAX + 1];
};

static enum jwt_reason parse_header(const struct parts *pt, unsigned allowed, struct header *hd)
{
    size_t n;
    unsigned char *raw;
    json_error_t jerr;
    json_t *root = NULL, *alg, *kid;
    enum jwt_reason r = b64_decode_alloc(pt->h, pt->hlen, &raw, &n);

    if (r != JWT_OK)
        return r;
    r = JWT_BAD_HEADER;
    root = json_loadb((const char *)raw, n, JSON_REJECT_DUPLICATES, &jerr);
    free(raw);
    if (!root)
        return json_error_code(&jerr) == json_error_duplicate_key ? JWT_DUP_HEADER : JWT_BAD_HEADER;
    if (!json_is_object(root))
        goto done;
    alg = json_object_get(root, "alg");
    if (!json_is_string(alg))
        goto done;
    hd->alg = jws_alg_from_name(json_string_value(alg));
    if (json_string_length(alg) != 5 || hd->alg == JWS_ALG_OTHER ||
        !(allowed & JWS_ALG_BIT(hd->alg))) {
        r = JWT_ALG_NOT_ALLOWED;
        goto done;
    }
    /* RFC 7515 4.1.11: a recipient that does not understand every extension listed in
     * crit must reject the JWS. We implement none. */
    if (json_object_get(root, "crit")) {
        r = JWT_CRIT;
        goto done;
    }
    kid = json_object_get(root, "kid");
    hd->has_kid = kid != NULL;
    if (kid) {
        n = json_string_length(kid);
        if (!json_is_string(kid) || n == 0 || n > JWKS_KID_MAX ||
            !printable(json_string_value(kid), n))
            goto done;
        memcpy(hd->kid, json_string_value(kid), n + 1);
    }
    r = JWT_OK;
done:
    json_decref(root);
    return r;
}

static enum jwt_reason select_key(const struct jwks *keys, const struct header *hd,
                                  const struct jwk **out)
{
    const struct jwk *k;

    if (hd->has_kid) {
        if (!(k = jwks_find(keys, hd->kid)))
            return JWT_UNKNOWN_KEY;
    } else if (jwks_usable(keys, &k) != 1) {
        return JWT_NO_KID;
    }
    if (!k->for_sig)
        return JWT_KEY_NOT_SIG;
    /* The key decides what the algorithm may be, never the token: an RSA key is
     * only ever an RSA verification key. */
    if ((hd->alg == JWS_ALG_RS256 && k->kty != JWK_KTY_RSA) ||
        (hd->alg == JWS_ALG_ES256 && k->kty != JWK_KTY_EC) || (k->has_alg && k->alg != hd->alg))
        return JWT_KEY_MISMATCH;
    *out = k;
    return JWT_OK;
}

/* JWS ES256 carries r || s, 32 bytes each (RFC 7518 3.4); OpenSSL wants DER. */
static unsigned char *es256_to_der(const unsigned char *sig, int *derlen)
{
    ECDSA_SIG *es = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(sig, 32, NULL), *s = BN_bin2bn(sig + 32, 32, NULL);
    unsigned char *der = NULL;

    if (!es || !r || !s || !ECDSA_SIG_set0(es, r, s)) {
        BN_free(r);
        BN_free(s);
        ECDSA_SIG_free(es);
        return NULL;
    }
    *derlen = i2d_ECDSA_SIG(es, &der);
    ECDSA_SIG_free(es);
    return *derlen > 0 ? der : NULL;
}

static enum jwt_reason verify_signature(const struct parts *pt, const struct header *hd,
                                        const struct jwk *k, _Atomic uint64_t *sig_checks)
{
    size_t want = hd->alg == JWS_ALG_ES256 ? ES256_SIG_LEN : (size_t)EVP_PKEY_get_size(k->pkey);
    size_t n;
    unsigned char *sig, *der = NULL;
    const unsigned char *check;
    size_t check_len;
    EVP_MD_CTX *md = NULL;
    enum jwt_reason r;

    if ((r = b64_decode_alloc(pt->s, pt->slen, &sig, &n)) != JWT_OK)
        return r;
    if (n != want) {
        free(sig);
        return JWT_BAD_SIG_LEN;
    }
    r = JWT_INTERNAL;
    check = sig;
    check_len = n;
    if (hd->alg == JWS_ALG_ES256) {
        int dl = 0;
        if (!(der = es256_to_der(sig, &dl)))
            goto done;
        check = der;
        check_len = (size_t)dl;
    }
    if (!(md = EVP_MD_CTX_new()) ||
        EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, k->pkey) != 1)
        goto done;
    if (sig_checks)
        atomic_fetch_add(sig_checks, 1);
    /* The signing input is the token's own bytes up to the second dot. */
    r = EVP_DigestVerify(md, check, check_len, (const unsigned char *)pt->h,
                         pt->hlen + 1 + pt->plen) == 1
            ? JWT_OK
            : JWT_BAD_SIG;
done:
    ERR_clear_error(); /* a failed verification leaves errors on this thread's queue */
    EVP_MD_CTX_free(md);
    OPENSSL_free(der);
    free(sig);
    return r;
}

enum jwt_reason jwt_check(const char *token, size_t len, const struct jwks *keys,
                          const struct jwt_policy *p, int64_t now_s, struct jwt_claims *out,
                          _Atomic uint64_t *sig_checks)
{
    struct parts pt;
    struct header hd = {.alg = JWS_ALG_OTHER};
    const struct jwk *k = NULL;
    unsigned char *payload;
    size_t n;
    enum jwt_reason r;

    memset(out, 0, sizeof(*out));
    if (!token || len == 0 || len > JWT_MAX_AUTH_HEADER)
        return len > JWT_MAX_AUTH_HEADER ? JWT_HEADER_TOO_LARGE : JWT_MALFORMED;
    if ((r = split(token, len, &pt)) != JWT_OK || (r = parse_header(&pt, p->algs, &hd)) != JWT_OK)
        return r;
    if (!keys)
        return JWT_KEYS_NOT_READY;
    if ((r = select_key(keys, &hd, &k)) != JWT_OK ||
        (r = verify_signature(&pt, &hd, k, sig_checks)) != JWT_OK)
        return r;
    if ((r = b64_decode_alloc(pt.p, pt.plen, &payload, &n)) != JWT_OK)
        return r;
    r = jwt_claims_parse((const char *)payload, n, p, now_s, out);
    free(payload);
    return r;
}
