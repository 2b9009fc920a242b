/*
 * jwt_mint.h - test helper: make keys, JWKs and signed tokens with OpenSSL.
 *
 * Everything the auth tests verify is produced here at test time, from keys
 * generated at test time, so no fixture can go stale and none holds a secret.
 * Allocation failures abort: a helper that fails must fail the test loudly.
 */
#ifndef ORDER_TEST_JWT_MINT_H
#define ORDER_TEST_JWT_MINT_H

#include <openssl/evp.h>
#include <stddef.h>

enum mint_alg {
    MINT_RS256,     /* RSASSA-PKCS1-v1_5 SHA-256 */
    MINT_ES256,     /* ECDSA P-256 SHA-256, raw r||s as JWS wants */
    MINT_ES256_DER, /* ECDSA with OpenSSL's DER signature left as is (wrong for JWS) */
    MINT_HS256,     /* HMAC-SHA256 with the given secret bytes */
    MINT_NONE,      /* empty signature */
};

EVP_PKEY *mint_rsa_key(unsigned bits);
EVP_PKEY *mint_ec_key(const char *group); /* "P-256", "P-384" */

/* malloc'd printf; aborts when out of memory. */
char *mint_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
char *mint_b64url(const void *data, size_t len);

/* The public JWK of k as a JSON object; extra ("" or ',"alg":"RS256'...) is
 * pasted before the closing brace, kid NULL leaves it out. */
char *mint_jwk(EVP_PKEY *k, const char *kid, const char *extra);
/* {"keys":[jwk0,jwk1,...]} from n JWK objects. */
char *mint_jwks(const char *const *jwks, size_t n);
/* The SubjectPublicKeyInfo PEM of k (what an alg-confusion attacker would use). */
char *mint_public_pem(EVP_PKEY *k);

/* base64url(header).base64url(payload).signature, both given as raw JSON text
 * (so duplicate members can be sent). key is ignored for HS256 and NONE. */
char *mint_token(const char *header, const char *payload, enum mint_alg alg, EVP_PKEY *key,
                 const void *secret, size_t secret_len);

#endif
