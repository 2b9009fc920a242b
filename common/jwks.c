/*
 * jwks.c - JSON Web Key Set parsing into OpenSSL 3 public keys.
 *
 * Design: a key is either fully understood and kept, or skipped with a reason;
 * nothing half-parsed survives. Symmetric ("oct") keys are always skipped, so
 * no byte string from the set can ever become an HMAC secret. Members that
 * point elsewhere for key material (x5u, x5c) are ignored: the set's own n/e or
 * x/y are the key.
 */
#include "jwks.h"

#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/param_build.h>
#include <openssl/x509.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define JWKS_RSA_MAX_BYTES (JWKS_RSA_MAX_BITS / 8)
#define JWKS_RSA_MAX_E_BYTES 8
#define JWKS_EC_COORD_BYTES 32

/* ---- base64url ---- */

static int b64url_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

size_t jwks_b64url_decoded_len(size_t len)
{
    return len / 4 * 3 + (len % 4 ? len % 4 - 1 : 0);
}

int jwks_b64url_decode(const char *in, size_t len, unsigned char *out, size_t cap, size_t *outlen)
{
    uint32_t acc = 0;
    unsigned bits = 0;
    size_t n = 0;

    if (len % 4 == 1 || jwks_b64url_decoded_len(len) > cap)
        return -1;
    for (size_t i = 0; i < len; i++) {
        int v = b64url_value((unsigned char)in[i]);
        if (v < 0)
            return -1;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[n++] = (unsigned char)(acc >> bits);
        }
    }
    /* Leftover bits must be zero: "QQ" and "QR" must not both decode to "A". */
    if (bits && (acc & ((1u << bits) - 1u)))
        return -1;
    *outlen = n;
    return 0;
}

/* ---- algorithm names ---- */

enum jws_alg jws_alg_from_name(const char *name)
{
    if (name && !strcmp(name, "RS256"))
        return JWS_ALG_RS256;
    if (name && !strcmp(name, "ES256"))
        return JWS_ALG_ES256;
    return JWS_ALG_OTHER;
}

const char *jws_alg_name(enum jws_alg alg)
{
    switch (alg) {
    case JWS_ALG_RS256:
        return "RS256";
    case JWS_ALG_ES256:
        return "ES256";
    case JWS_ALG_OTHER:
        break;
    }
    return "other";
}

/* ---- one key ---- */

static bool printable(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
            return false;
    return true;
}

/* Decodes member key of obj; key material in sets is sometimes padded, so
 * trailing '=' is tolerated here (never in tokens). */
static int member_bytes(json_t *obj, const char *key, unsigned char *out, size_t cap, size_t *n)
{
    json_t *v = json_object_get(obj, key);
    size_t len;
    const char *s;

    if (!json_is_string(v))
        return -1;
    s = json_string_value(v);
    len = json_string_length(v);
    while (len > 0 && s[len - 1] == '=')
        len--;
    if (len == 0)
        return -1;
    return jwks_b64url_decode(s, len, out, cap, n);
}

static EVP_PKEY *pkey_from_params(const char *type, OSSL_PARAM_BLD *bld)
{
    OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
    EVP_PKEY_CTX *ctx = NULL, *check = NULL;
    EVP_PKEY *pkey = NULL;

    if (!params)
        return NULL;
    ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
    if (!ctx || EVP_PKEY_fromdata_init(ctx) <= 0 ||
        EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) <= 0)
        goto done;
    /* fromdata does not promise a point on the curve or a sane modulus: ask. */
    check = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
    if (!check || EVP_PKEY_public_check(check) <= 0) {
        EVP_PKEY_free(pkey);
        pkey = NULL;
    }
done:
    if (!pkey)
        ERR_clear_error();
    EVP_PKEY_CTX_free(check);
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    return pkey;
}

static const char *load_rsa(json_t *obj, struct jwk *k)
{
    unsigned char nbuf[JWKS_RSA_MAX_BYTES + 8], ebuf[JWKS_RSA_MAX_E_BYTES];
    size_t nlen, elen;
    BIGNUM *n = NULL, *e = NULL;
    OSSL_PARAM_BLD *bld = NULL;
    const char *why = NULL;

    if (member_bytes(obj, "n", nbuf, sizeof(nbuf), &nlen) < 0)
        return "RSA modulus missing, malformed or over 8192 bits";
    if (member_bytes(obj, "e", ebuf, sizeof(ebuf), &elen) < 0)
        return "RSA exponent missing or malformed";
    n = BN_bin2bn(nbuf, (int)nlen, NULL);
    e = BN_bin2bn(ebuf, (int)elen, NULL);
    if (!n || !e) {
        why = "out of memory";
        goto done;
    }
    k->bits = BN_num_bits(n);
    if (k->bits < JWKS_RSA_MIN_BITS) {
        why = "RSA key shorter than 2048 bits";
        goto done;
    }
    if (k->bits > JWKS_RSA_MAX_BITS) {
        why = "RSA key longer than 8192 bits";
        goto done;
    }
    if (BN_is_zero(e) || !BN_is_odd(e)) {
        why = "RSA exponent invalid";
        goto done;
    }
    bld = OSSL_PARAM_BLD_new();
    if (!bld || !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) ||
        !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e)) {
        why = "out of memory";
        goto done;
    }
    k->pkey = pkey_from_params("RSA", bld);
    if (!k->pkey)
        why = "RSA key rejected by OpenSSL";
done:
    OSSL_PARAM_BLD_free(bld);
    BN_free(n);
    BN_free(e);
    return why;
}

static const char *load_ec(json_t *obj, struct jwk *k)
{
    unsigned char point[1 + 2 * JWKS_EC_COORD_BYTES];
    size_t xlen, ylen;
    json_t *crv = json_object_get(obj, "crv");
    OSSL_PARAM_BLD *bld;
    const char *why = NULL;

    if (!json_is_string(crv) || strcmp(json_string_value(crv), "P-256") != 0)
        return "EC key not on curve P-256";
    /* Both coordinates are exactly 32 bytes (RFC 7518 section 6.2.1.2), so a
     * shorter or longer value is malformed, not merely unpadded. */
    point[0] = 0x04; /* uncompressed point: 04 || x || y */
    if (member_bytes(obj, "x", point + 1, JWKS_EC_COORD_BYTES, &xlen) < 0 ||
        xlen != JWKS_EC_COORD_BYTES ||
        member_bytes(obj, "y", point + 1 + JWKS_EC_COORD_BYTES, JWKS_EC_COORD_BYTES, &ylen) < 0 ||
        ylen != JWKS_EC_COORD_BYTES)
        return "EC coordinates missing or not 32 bytes";
    k->bits = 256;
    bld = OSSL_PARAM_BLD_new();
    if (!bld ||
        !OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) ||
        !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point, sizeof(point))) {
        why = "out of memory";
    } else {
        k->pkey = pkey_from_params("EC", bld);
        if (!k->pkey)
            why = "EC point not on P-256";
    }
    OSSL_PARAM_BLD_free(bld);
    return why;
}

/* Reads "use" and "key_ops"; NULL when both (if present) allow verification
 * or simply say something else, an error text when they are malformed. */
static const char *load_usage(json_t *obj, struct jwk *k)
{
    json_t *use = json_object_get(obj, "use");
    json_t *ops = json_object_get(obj, "key_ops");

    k->for_sig = true;
    if (use) {
        if (!json_is_string(use))
            return "\"use\" is not a string";
        k->for_sig = !strcmp(json_string_value(use), "sig");
    }
    if (ops) {
        size_t i;
        json_t *op;
        bool verify = false;
        if (!json_is_array(ops))
            return "\"key_ops\" is not an array";
        json_array_foreach(ops, i, op)
        {
            if (!json_is_string(op))
                return "\"key_ops\" holds a non-string";
            if (!strcmp(json_string_value(op), "verify"))
                verify = true;
        }
        k->for_sig = k->for_sig && verify;
    }
    return NULL;
}

/* Fills k from obj; returns NULL when kept, else why it was skipped. */
static const char *load_key(json_t *obj, struct jwk *k)
{
    json_t *kid, *kty, *alg;
    const char *why;

    memset(k, 0, sizeof(*k));
    if (!json_is_object(obj))
        return "not a JSON object";
    kid = json_object_get(obj, "kid");
    if (kid) {
        size_t n = json_string_length(kid);
        if (!json_is_string(kid) || n == 0 || n > JWKS_KID_MAX ||
            !printable(json_string_value(kid), n))
            return "kid is not a printable string of 1 to 128 bytes";
        memcpy(k->kid, json_string_value(kid), n + 1);
        k->has_kid = true;
    }
    alg = json_object_get(obj, "alg");
    if (alg) {
        if (!json_is_string(alg))
            return "\"alg\" is not a string";
        k->has_alg = true;
        k->alg = jws_alg_from_name(json_string_value(alg));
    }
    if ((why = load_usage(obj, k)) != NULL)
        return why;
    kty = json_object_get(obj, "kty");
    if (!json_is_string(kty))
        return "kty missing";
    if (!strcmp(json_string_value(kty), "RSA")) {
        k->kty = JWK_KTY_RSA;
        return load_rsa(obj, k);
    }
    if (!strcmp(json_string_value(kty), "EC")) {
        k->kty = JWK_KTY_EC;
        return load_ec(obj, k);
    }
    if (!strcmp(json_string_value(kty), "oct"))
        return "symmetric (oct) keys are never used";
    return "unsupported key type";
}

/* ---- the set ---- */

static int fingerprint(struct jwks *ks)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned int mdlen = 0;
    int rc = -1;

    if (!md || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1)
        goto done;
    for (size_t i = 0; i < ks->n; i++) {
        const struct jwk *k = &ks->keys[i];
        unsigned char *der = NULL;
        unsigned char meta[6] = {
            k->has_kid, (unsigned char)k->kty, k->has_alg, (unsigned char)k->alg, k->for_sig, 0};
        uint32_t kidlen = (uint32_t)strlen(k->kid);
        int derlen = i2d_PUBKEY(k->pkey, &der);
        if (derlen <= 0)
            goto done;
        int ok = EVP_DigestUpdate(md, &kidlen, sizeof(kidlen)) == 1 &&
                 EVP_DigestUpdate(md, k->kid, kidlen) == 1 &&
                 EVP_DigestUpdate(md, meta, sizeof(meta)) == 1 &&
                 EVP_DigestUpdate(md, &derlen, sizeof(derlen)) == 1 &&
                 EVP_DigestUpdate(md, der, (size_t)derlen) == 1;
        OPENSSL_free(der);
        if (!ok)
            goto done;
    }
    rc = EVP_DigestFinal_ex(md, ks->fingerprint, &mdlen) == 1 && mdlen == 32 ? 0 : -1;
done:
    EVP_MD_CTX_free(md);
    return rc;
}

struct jwks *jwks_parse(const char *json, size_t len, jwks_warn_fn warn, void *ctx, char *err,
                        size_t errlen)
{
    json_error_t jerr;
    json_t *root, *keys, *obj;
    struct jwks *ks = NULL;
    size_t i;

    root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        util_errf(err, errlen, "JWKS is not valid JSON (line %d, column %d)", jerr.line,
                  jerr.column);
        return NULL;
    }
    keys = json_object_get(root, "keys");
    if (!json_is_object(root) || !json_is_array(keys)) {
        util_errf(err, errlen, "JWKS has no \"keys\" array");
        goto fail;
    }
    ks = calloc(1, sizeof(*ks));
    if (!ks || (json_array_size(keys) &&
                !(ks->keys = calloc(json_array_size(keys) < JWKS_MAX_KEYS ? json_array_size(keys)
                                                                          : JWKS_MAX_KEYS,
                                    sizeof(*ks->keys))))) {
        util_errf(err, errlen, "JWKS: out of memory");
        goto fail;
    }
    json_array_foreach(keys, i, obj)
    {
        struct jwk k = {.pkey = NULL};
        const char *why = ks->n >= JWKS_MAX_KEYS ? "more than 64 keys in the set" : NULL;
        if (!why)
            why = load_key(obj, &k);
        if (!why && k.has_kid && jwks_find(ks, k.kid))
            why = "duplicate kid";
        if (why) {
            if (warn)
                warn(ctx, k.has_kid ? k.kid : "", why);
            EVP_PKEY_free(k.pkey);
            continue;
        }
        ks->keys[ks->n++] = k;
    }
    if (jwks_usable(ks, NULL) == 0) {
        util_errf(err, errlen,
                  "JWKS holds no signature key this service can use (RSA >= 2048 bits or EC "
                  "P-256)");
        goto fail;
    }
    if (fingerprint(ks) < 0) {
        util_errf(err, errlen, "JWKS: cannot hash the key set");
        goto fail;
    }
    json_decref(root);
    return ks;
fail:
    jwks_free(ks);
    json_decref(root);
    return NULL;
}

void jwks_free(struct jwks *ks)
{
    if (!ks)
        return;
    for (size_t i = 0; i < ks->n; i++)
        EVP_PKEY_free(ks->keys[i].pkey);
    free(ks->keys);
    free(ks);
}

const struct jwk *jwks_find(const struct jwks *ks, const char *kid)
{
    for (size_t i = 0; ks && kid && i < ks->n; i++)
        if (ks->keys[i].has_kid && !strcmp(ks->keys[i].kid, kid))
            return &ks->keys[i];
    return NULL;
}

size_t jwks_usable(const struct jwks *ks, const struct jwk **only)
{
    size_t count = 0;
    const struct jwk *last = NULL;

    for (size_t i = 0; ks && i < ks->n; i++) {
        if (ks->keys[i].for_sig) {
            count++;
            last = &ks->keys[i];
        }
    }
    if (only)
        *only = count == 1 ? last : NULL;
    return count;
}
