/*
 * jwks.h - JSON Web Key Sets (RFC 7517): parse a set into OpenSSL public keys.
 *
 * Pure: bytes in, keys out, no I/O and no logging, so the parser can be fuzzed
 * on its own. Only keys a JWS may be verified with are kept: RSA of at least
 * 2048 bits and EC on P-256. Anything else is skipped and reported through the
 * caller's warning callback; the caller decides whether to log it.
 */
#ifndef ORDER_JWKS_H
#define ORDER_JWKS_H

#include <openssl/evp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define JWKS_KID_MAX 128 /* longer key ids are refused, in sets and tokens */
#define JWKS_MAX_KEYS 64 /* keys beyond this are skipped */
#define JWKS_RSA_MIN_BITS 2048
#define JWKS_RSA_MAX_BITS 8192 /* a bigger modulus only makes verification slower */

/* The JWS algorithms this service verifies; anything else is JWS_ALG_OTHER. */
enum jws_alg { JWS_ALG_OTHER = 0, JWS_ALG_RS256 = 1, JWS_ALG_ES256 = 2 };
#define JWS_ALG_BIT(a) (1u << (unsigned)(a))

enum jwk_kty { JWK_KTY_RSA = 1, JWK_KTY_EC = 2 };

struct jwk {
    char kid[JWKS_KID_MAX + 1];
    bool has_kid;
    enum jwk_kty kty;
    bool has_alg;     /* the JWK states "alg" */
    enum jws_alg alg; /* when has_alg; JWS_ALG_OTHER for names we do not verify */
    bool for_sig;     /* "use" absent or "sig", and "key_ops" absent or holding "verify" */
    int bits;
    EVP_PKEY *pkey;
};

struct jwks {
    struct jwk *keys;
    size_t n;
    /* SHA-256 over every kept key (kid, kty, alg, use, public key DER): equal
     * fingerprints mean a refresh changed nothing a verification depends on. */
    unsigned char fingerprint[32];
};

/* Called once per skipped key; kid is "" when the key has none or it is unprintable. */
typedef void (*jwks_warn_fn)(void *ctx, const char *kid, const char *why);

/* Parses a JWK Set. NULL with err set when the document is not a JSON object
 * with a "keys" array (duplicate member names refused), or holds no key usable
 * for signatures. warn may be NULL. */
struct jwks *jwks_parse(const char *json, size_t len, jwks_warn_fn warn, void *ctx, char *err,
                        size_t errlen);
void jwks_free(struct jwks *ks);

/* The key with this kid, or NULL. */
const struct jwk *jwks_find(const struct jwks *ks, const char *kid);
/* How many keys can verify signatures; *only gets the key when there is exactly one. */
size_t jwks_usable(const struct jwks *ks, const struct jwk **only);

/* "RS256" / "ES256" to the enum; JWS_ALG_OTHER for anything else. */
enum jws_alg jws_alg_from_name(const char *name);
const char *jws_alg_name(enum jws_alg alg);

/* Strict base64url (RFC 4648 section 5) without padding, as JWS requires:
 * only [A-Za-z0-9_-], no '=', and the unused low bits of the last character
 * zero, so each byte string has exactly one encoding. Returns 0 and *outlen, or
 * -1 when the input is not canonical or does not fit in cap bytes. */
int jwks_b64url_decode(const char *in, size_t len, unsigned char *out, size_t cap, size_t *outlen);
/* Bytes that decoding len characters yields (an upper bound for invalid input). */
size_t jwks_b64url_decoded_len(size_t len);

#endif
