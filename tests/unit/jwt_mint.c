/*
 * jwt_mint.c - test helper: keys, JWKs and JWS tokens minted with OpenSSL 3.
 *
 * It signs independently of common/jwt.c (EVP_DigestSign, HMAC, its own
 * base64url and DER-to-r||s conversion), so a bug shared by the verifier and
 * the minter cannot make a test pass.
 */
#include "jwt_mint.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *must(void *p)
{
    if (!p) {
        fprintf(stderr, "jwt_mint: allocation or OpenSSL call failed\n");
        abort();
    }
    return p;
}

EVP_PKEY *mint_rsa_key(unsigned bits)
{
    return must(EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)bits));
}

EVP_PKEY *mint_ec_key(const char *group)
{
    return must(EVP_PKEY_Q_keygen(NULL, NULL, "EC", group));
}

char *mint_printf(const char *fmt, ...)
{
    va_list ap;
    char *s = NULL;
    va_start(ap, fmt);
    int n = vasprintf(&s, fmt, ap);
    va_end(ap);
    if (n < 0)
        must(NULL);
    return s;
}

char *mint_b64url(const void *data, size_t len)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const unsigned char *p = data;
    char *out = must(malloc(len / 3 * 4 + 5));
    size_t o = 0, i = 0;

    for (; i + 2 < len; i += 3) {
        unsigned v = (unsigned)p[i] << 16 | (unsigned)p[i + 1] << 8 | p[i + 2];
        out[o++] = alphabet[v >> 18 & 63];
        out[o++] = alphabet[v >> 12 & 63];
        out[o++] = alphabet[v >> 6 & 63];
        out[o++] = alphabet[v & 63];
    }
    if (len - i == 1) {
        unsigned v = (unsigned)p[i] << 16;
        out[o++] = alphabet[v >> 18 & 63];
        out[o++] = alphabet[v >> 12 & 63];
    } else if (len - i == 2) {
        unsigned v = (unsigned)p[i] << 16 | (unsigned)p[i + 1] << 8;
        out[o++] = alphabet[v >> 18 & 63];
        out[o++] = alphabet[v >> 12 & 63];
        out[o++] = alphabet[v >> 6 & 63];
    }
    out[o] = '\0';
    return out;
}

static char *bn_b64url(const BIGNUM *bn, int pad_to)
{
    int n = BN_num_bytes(bn);
    int len = pad_to > n ? pad_to : n;
    unsigned char *buf = must(malloc((size_t)len));
    if (BN_bn2binpad(bn, buf, len) != len)
        must(NULL);
    char *s = mint_b64url(buf, (size_t)len);
    free(buf);
    return s;
}

char *mint_jwk(EVP_PKEY *k, const char *kid, const char *extra)
{
    char *kidpart = kid ? mint_printf("\"kid\":\"%s\",", kid) : mint_printf("%s", "");
    char *out;

    if (EVP_PKEY_is_a(k, "RSA")) {
        BIGNUM *n = NULL, *e = NULL;
        if (!EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_RSA_N, &n) ||
            !EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_RSA_E, &e))
            must(NULL);
        char *ns = bn_b64url(n, 0), *es = bn_b64url(e, 0);
        out =
            mint_printf("{%s\"kty\":\"RSA\",\"n\":\"%s\",\"e\":\"%s\"%s}", kidpart, ns, es, extra);
        free(ns);
        free(es);
        BN_free(n);
        BN_free(e);
    } else {
        BIGNUM *x = NULL, *y = NULL;
        char group[32];
        size_t glen = 0;
        if (!EVP_PKEY_get_utf8_string_param(k, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                            &glen) ||
            !EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_EC_PUB_X, &x) ||
            !EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_EC_PUB_Y, &y))
            must(NULL);
        int coord = !strcmp(group, "prime256v1") ? 32 : 48;
        char *xs = bn_b64url(x, coord), *ys = bn_b64url(y, coord);
        out = mint_printf("{%s\"kty\":\"EC\",\"crv\":\"%s\",\"x\":\"%s\",\"y\":\"%s\"%s}", kidpart,
                          coord == 32 ? "P-256" : "P-384", xs, ys, extra);
        free(xs);
        free(ys);
        BN_free(x);
        BN_free(y);
    }
    free(kidpart);
    return out;
}

char *mint_jwks(const char *const *jwks, size_t n)
{
    char *out = mint_printf("%s", "{\"keys\":[");
    for (size_t i = 0; i < n; i++) {
        char *next = mint_printf("%s%s%s", out, i ? "," : "", jwks[i]);
        free(out);
        out = next;
    }
    char *next = mint_printf("%s]}", out);
    free(out);
    return next;
}

char *mint_public_pem(EVP_PKEY *k)
{
    BIO *b = must(BIO_new(BIO_s_mem()));
    char *data;
    if (!PEM_write_bio_PUBKEY(b, k))
        must(NULL);
    long n = BIO_get_mem_data(b, &data);
    char *out = must(malloc((size_t)n + 1));
    memcpy(out, data, (size_t)n);
    out[n] = '\0';
    BIO_free(b);
    return out;
}

static unsigned char *sign(const char *input, EVP_PKEY *key, size_t *len)
{
    EVP_MD_CTX *md = must(EVP_MD_CTX_new());
    unsigned char *sig;
    if (EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) != 1 ||
        EVP_DigestSign(md, NULL, len, (const unsigned char *)input, strlen(input)) != 1)
        must(NULL);
    sig = must(malloc(*len));
    if (EVP_DigestSign(md, sig, len, (const unsigned char *)input, strlen(input)) != 1)
        must(NULL);
    EVP_MD_CTX_free(md);
    return sig;
}

char *mint_token(const char *header, const char *payload, enum mint_alg alg, EVP_PKEY *key,
                 const void *secret, size_t secret_len)
{
    char *h = mint_b64url(header, strlen(header)), *p = mint_b64url(payload, strlen(payload));
    char *input = mint_printf("%s.%s", h, p), *s = NULL, *out;
    unsigned char *sig = NULL, raw[64], mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    size_t len = 0;

    switch (alg) {
    case MINT_RS256:
    case MINT_ES256_DER:
        sig = sign(input, key, &len);
        s = mint_b64url(sig, len);
        break;
    case MINT_ES256: {
        sig = sign(input, key, &len);
        const unsigned char *q = sig;
        ECDSA_SIG *es = must(d2i_ECDSA_SIG(NULL, &q, (long)len));
        if (BN_bn2binpad(ECDSA_SIG_get0_r(es), raw, 32) != 32 ||
            BN_bn2binpad(ECDSA_SIG_get0_s(es), raw + 32, 32) != 32)
            must(NULL);
        ECDSA_SIG_free(es);
        s = mint_b64url(raw, sizeof(raw));
        break;
    }
    case MINT_HS256:
        if (!HMAC(EVP_sha256(), secret, (int)secret_len, (const unsigned char *)input,
                  strlen(input), mac, &maclen))
            must(NULL);
        s = mint_b64url(mac, maclen);
        break;
    case MINT_NONE:
        s = mint_printf("%s", "");
        break;
    }
    out = mint_printf("%s.%s", input, s);
    free(sig);
    free(s);
    free(input);
    free(h);
    free(p);
    return out;
}
