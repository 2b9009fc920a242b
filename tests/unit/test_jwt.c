/*
 * test_jwt.c - the token rules of issue 11, one test each, through the pure
 * verifier (common/jwt.c) and key-set parser (common/jwks.c).
 *
 * Keys are generated when the suite starts (RSA 2048, a second RSA 2048, RSA
 * 1024, EC P-256, EC P-384) and tokens are minted by tests/unit/jwt_mint.c.
 * Where a rule must hold before any signature is computed, the test also
 * asserts that the signature counter did not move.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "jwks.h"
#include "jwt.h"
#include "jwt_mint.h"

#define NOW 1700000000LL
#define ISS "https://issuer.example"

static struct {
    EVP_PKEY *rsa, *rsa_b, *rsa1024, *ec, *ec384;
    struct jwks *ks; /* r1 (RSA), e1 (EC P-256) */
    struct jwt_policy pol;
    _Atomic uint64_t sigs;
} F;

static const char *const audiences[] = {"order-api", "admin-console"};

static struct jwks *parse_set(const char *json, char *err, size_t errlen)
{
    return jwks_parse(json, strlen(json), NULL, NULL, err, errlen);
}

static int suite_setup(void **state)
{
    char err[256];
    (void)state;
    F.rsa = mint_rsa_key(2048);
    F.rsa_b = mint_rsa_key(2048);
    F.rsa1024 = mint_rsa_key(1024);
    F.ec = mint_ec_key("P-256");
    F.ec384 = mint_ec_key("P-384");
    char *k[2] = {mint_jwk(F.rsa, "r1", ""), mint_jwk(F.ec, "e1", "")};
    char *set = mint_jwks((const char *const *)k, 2);
    F.ks = parse_set(set, err, sizeof(err));
    free(k[0]);
    free(k[1]);
    free(set);
    if (!F.ks) {
        fprintf(stderr, "fixture key set: %s\n", err);
        return -1;
    }
    F.pol = (struct jwt_policy){.algs = JWS_ALG_BIT(JWS_ALG_RS256) | JWS_ALG_BIT(JWS_ALG_ES256),
                                .issuer = ISS,
                                .audiences = audiences,
                                .n_audiences = 2,
                                .leeway_s = 60,
                                .scope_prefix = "orders/",
                                .customer_claim = "sub"};
    return 0;
}

static int suite_teardown(void **state)
{
    (void)state;
    jwks_free(F.ks);
    EVP_PKEY_free(F.rsa);
    EVP_PKEY_free(F.rsa_b);
    EVP_PKEY_free(F.rsa1024);
    EVP_PKEY_free(F.ec);
    EVP_PKEY_free(F.ec384);
    return 0;
}

/* A valid payload with extra members pasted in (extra starts with ','). */
static char *claims(const char *extra)
{
    return mint_printf("{\"iss\":\"" ISS "\",\"aud\":\"order-api\",\"sub\":\"c-123\","
                       "\"exp\":%lld,\"iat\":%lld,\"scope\":\"orders/read orders/write\"%s}",
                       NOW + 600, NOW - 5, extra);
}

/* The payload given whole (no defaults). */
static char *rs256_raw(const char *payload)
{
    return mint_token("{\"alg\":\"RS256\",\"kid\":\"r1\",\"typ\":\"JWT\"}", payload, MINT_RS256,
                      F.rsa, NULL, 0);
}

static char *rs256(const char *extra)
{
    char *p = claims(extra);
    char *t = rs256_raw(p);
    free(p);
    return t;
}

static enum jwt_reason check_in(const struct jwks *ks, const char *token, struct jwt_claims *c)
{
    struct jwt_claims scratch;
    return jwt_check(token, strlen(token), ks, &F.pol, NOW, c ? c : &scratch, &F.sigs);
}

static enum jwt_reason check(const char *token, struct jwt_claims *c)
{
    return check_in(F.ks, token, c);
}

/* Asserts the reason by name, so a failure prints both names. */
#define assert_reason(got, want) assert_string_equal(jwt_reason_name(got), jwt_reason_name(want))

static uint64_t sigs(void)
{
    return atomic_load(&F.sigs);
}

/* ---- happy paths ---- */

static void test_rs256_valid_token(void **state)
{
    struct jwt_claims c;
    char *t = rs256(",\"scp\":[\"ignored\"]");
    (void)state;
    assert_reason(check(t, &c), JWT_OK);
    assert_string_equal(c.sub, "c-123");
    assert_string_equal(c.customer, "c-123");
    assert_int_equal(c.scopes, JWT_SCOPE_READ | JWT_SCOPE_WRITE);
    assert_int_equal(c.exp, NOW + 600);
    assert_true(c.nbf == JWT_NO_NBF);
    free(t);
}

static void test_es256_valid_token(void **state)
{
    char *p = claims("");
    char *t = mint_token("{\"alg\":\"ES256\",\"kid\":\"e1\"}", p, MINT_ES256, F.ec, NULL, 0);
    struct jwt_claims c;
    (void)state;
    assert_reason(check(t, &c), JWT_OK);
    assert_string_equal(c.sub, "c-123");
    free(p);
    free(t);
}

/* ---- Authorization header ---- */

static void test_bearer_scheme_case_insensitive(void **state)
{
    const char *tok;
    size_t len;
    (void)state;
    assert_reason(jwt_bearer("Bearer abc.def.ghi", &tok, &len), JWT_OK);
    assert_int_equal(len, 11);
    assert_memory_equal(tok, "abc.def.ghi", 11);
    assert_reason(jwt_bearer("bearer abc.def.ghi", &tok, &len), JWT_OK);
    assert_reason(jwt_bearer("BEARER   abc.def.ghi", &tok, &len), JWT_OK);
    assert_int_equal(len, 11);
    assert_reason(jwt_bearer(NULL, &tok, &len), JWT_NO_TOKEN);
    assert_reason(jwt_bearer("", &tok, &len), JWT_NO_TOKEN);
    assert_reason(jwt_bearer("Basic dXNlcjpwYXNz", &tok, &len), JWT_NOT_BEARER);
    assert_reason(jwt_bearer("Bearerabc.def.ghi", &tok, &len), JWT_NOT_BEARER);
    assert_reason(jwt_bearer("Bearer ", &tok, &len), JWT_MALFORMED); /* a scheme, no token */
    assert_reason(jwt_bearer("Bearer a.b.c d", &tok, &len), JWT_MALFORMED);
}

static void test_oversized_header_refused_before_parsing(void **state)
{
    size_t n = JWT_MAX_AUTH_HEADER + 1;
    char *h = malloc(n + 1);
    const char *tok;
    size_t len;
    (void)state;
    assert_non_null(h);
    memset(h, 'A', n);
    memcpy(h, "Bearer ", 7);
    h[n] = '\0';
    assert_reason(jwt_bearer(h, &tok, &len), JWT_HEADER_TOO_LARGE);
    h[n - 1] = '\0'; /* exactly the limit: read, and refused for its content instead */
    assert_reason(jwt_bearer(h, &tok, &len), JWT_OK);
    assert_reason(jwt_check(tok, len, F.ks, &F.pol, NOW, &(struct jwt_claims){0}, &F.sigs),
                  JWT_MALFORMED);
    free(h);
}

static void test_three_strict_base64url_parts(void **state)
{
    char *t = rs256("");
    char *dot2 = strrchr(t, '.');
    uint64_t before = sigs();
    (void)state;
    char *two = mint_printf("%.*s", (int)(dot2 - t), t);
    char *four = mint_printf("%s.AAAA", t);
    char *padded = mint_printf("%s=", t);
    char *std_alphabet = mint_printf("%s", t);
    std_alphabet[1] = '+';
    char *empty_payload = mint_printf("%.*s..%s", (int)(strchr(t, '.') - t), t, dot2 + 1);
    assert_reason(check(two, NULL), JWT_MALFORMED);
    assert_reason(check(four, NULL), JWT_MALFORMED);
    assert_reason(check(padded, NULL), JWT_MALFORMED);
    assert_reason(check(std_alphabet, NULL), JWT_MALFORMED);
    assert_reason(check(empty_payload, NULL), JWT_MALFORMED);
    assert_int_equal(sigs(), before);
    assert_reason(check(t, NULL), JWT_OK);
    free(two);
    free(four);
    free(padded);
    free(std_alphabet);
    free(empty_payload);
    free(t);
}

static void test_noncanonical_base64url_refused(void **state)
{
    unsigned char out[8];
    size_t n;
    (void)state;
    assert_int_equal(jwks_b64url_decode("QQ", 2, out, sizeof(out), &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(out[0], 'A');
    assert_int_equal(jwks_b64url_decode("QR", 2, out, sizeof(out), &n), -1);
    assert_int_equal(jwks_b64url_decode("Q", 1, out, sizeof(out), &n), -1);
    assert_int_equal(jwks_b64url_decode("QQ==", 4, out, sizeof(out), &n), -1);
}

/* ---- algorithms ---- */

static void test_wrong_alg_refused_before_signature(void **state)
{
    char *p = claims("");
    uint64_t before = sigs();
    (void)state;
    const char *headers[] = {
        "{\"alg\":\"RS384\",\"kid\":\"r1\"}", "{\"alg\":\"PS256\",\"kid\":\"r1\"}",
        "{\"alg\":\"rs256\",\"kid\":\"r1\"}", "{\"alg\":\"EdDSA\",\"kid\":\"r1\"}"};
    for (size_t i = 0; i < sizeof(headers) / sizeof(headers[0]); i++) {
        char *t = mint_token(headers[i], p, MINT_RS256, F.rsa, NULL, 0);
        assert_reason(check(t, NULL), JWT_ALG_NOT_ALLOWED);
        free(t);
    }
    /* ES256 is valid JOSE but not in this policy's list. */
    struct jwt_policy rs_only = F.pol;
    rs_only.algs = JWS_ALG_BIT(JWS_ALG_RS256);
    char *t = mint_token("{\"alg\":\"ES256\",\"kid\":\"e1\"}", p, MINT_ES256, F.ec, NULL, 0);
    struct jwt_claims c;
    assert_reason(jwt_check(t, strlen(t), F.ks, &rs_only, NOW, &c, &F.sigs), JWT_ALG_NOT_ALLOWED);
    assert_int_equal(sigs(), before);
    free(t);
    free(p);
}

/* The classic confusion: HS256 signed with the verifier's RSA public key as the
 * HMAC secret, as PEM and as the JWK's bytes. Refused on the header alone. */
static void test_alg_confusion_hs256_with_rsa_public_key(void **state)
{
    char *p = claims("");
    char *pem = mint_public_pem(F.rsa);
    char *jwk = mint_jwk(F.rsa, "r1", "");
    uint64_t before = sigs();
    (void)state;
    char *t1 =
        mint_token("{\"alg\":\"HS256\",\"kid\":\"r1\"}", p, MINT_HS256, NULL, pem, strlen(pem));
    char *t2 =
        mint_token("{\"alg\":\"HS256\",\"kid\":\"r1\"}", p, MINT_HS256, NULL, jwk, strlen(jwk));
    char *t3 = mint_token("{\"alg\":\"HS256\"}", p, MINT_HS256, NULL, pem, strlen(pem));
    assert_reason(check(t1, NULL), JWT_ALG_NOT_ALLOWED);
    assert_reason(check(t2, NULL), JWT_ALG_NOT_ALLOWED);
    assert_reason(check(t3, NULL), JWT_ALG_NOT_ALLOWED);
    assert_int_equal(sigs(), before);
    free(t1);
    free(t2);
    free(t3);
    free(pem);
    free(jwk);
    free(p);
}

static void test_alg_none_refused(void **state)
{
    char *p = claims("");
    (void)state;
    char *t1 = mint_token("{\"alg\":\"none\",\"kid\":\"r1\"}", p, MINT_NONE, NULL, NULL, 0);
    char *t2 = mint_token("{\"alg\":\"None\"}", p, MINT_NONE, NULL, NULL, 0);
    char *t3 = mint_token("{\"alg\":\"none\"}", p, MINT_RS256, F.rsa, NULL, 0);
    char *t4 = mint_token("{\"kid\":\"r1\"}", p, MINT_RS256, F.rsa, NULL, 0);
    assert_reason(check(t1, NULL), JWT_ALG_NOT_ALLOWED);
    assert_reason(check(t2, NULL), JWT_ALG_NOT_ALLOWED);
    assert_reason(check(t3, NULL), JWT_ALG_NOT_ALLOWED);
    assert_reason(check(t4, NULL), JWT_BAD_HEADER); /* no alg at all */
    free(t1);
    free(t2);
    free(t3);
    free(t4);
    free(p);
}

/* ES256 naming the RSA key, and RS256 naming the EC key: the key's kty wins,
 * and no signature is computed. */
static void test_alg_must_match_key_type(void **state)
{
    char *p = claims("");
    uint64_t before = sigs();
    (void)state;
    char *t1 = mint_token("{\"alg\":\"ES256\",\"kid\":\"r1\"}", p, MINT_ES256, F.ec, NULL, 0);
    char *t2 = mint_token("{\"alg\":\"RS256\",\"kid\":\"e1\"}", p, MINT_RS256, F.rsa, NULL, 0);
    assert_reason(check(t1, NULL), JWT_KEY_MISMATCH);
    assert_reason(check(t2, NULL), JWT_KEY_MISMATCH);
    assert_int_equal(sigs(), before);
    free(t1);
    free(t2);
    free(p);
}

static void test_jwk_alg_and_use_honoured(void **state)
{
    char err[256];
    char *k[3] = {mint_jwk(F.rsa, "stated-rs384", ",\"alg\":\"RS384\""),
                  mint_jwk(F.rsa_b, "enc-only", ",\"use\":\"enc\""),
                  mint_jwk(F.ec, "stated-ok", ",\"alg\":\"ES256\",\"use\":\"sig\"")};
    char *set = mint_jwks((const char *const *)k, 3);
    struct jwks *ks = parse_set(set, err, sizeof(err));
    char *p = claims("");
    uint64_t before = sigs();
    (void)state;
    assert_non_null(ks);
    char *t1 =
        mint_token("{\"alg\":\"RS256\",\"kid\":\"stated-rs384\"}", p, MINT_RS256, F.rsa, NULL, 0);
    char *t2 =
        mint_token("{\"alg\":\"RS256\",\"kid\":\"enc-only\"}", p, MINT_RS256, F.rsa_b, NULL, 0);
    char *t3 =
        mint_token("{\"alg\":\"ES256\",\"kid\":\"stated-ok\"}", p, MINT_ES256, F.ec, NULL, 0);
    assert_reason(check_in(ks, t1, NULL), JWT_KEY_MISMATCH);
    assert_reason(check_in(ks, t2, NULL), JWT_KEY_NOT_SIG);
    assert_int_equal(sigs(), before);
    assert_reason(check_in(ks, t3, NULL), JWT_OK);
    for (int i = 0; i < 3; i++)
        free(k[i]);
    free(t1);
    free(t2);
    free(t3);
    free(set);
    free(p);
    jwks_free(ks);
}

static void test_crit_header_refused(void **state)
{
    char *p = claims("");
    (void)state;
    char *t = mint_token("{\"alg\":\"RS256\",\"kid\":\"r1\",\"crit\":[\"exp\"],\"exp\":1}", p,
                         MINT_RS256, F.rsa, NULL, 0);
    assert_reason(check(t, NULL), JWT_CRIT);
    free(t);
    free(p);
}

/* jku/x5u/jwk/x5c name other keys; they are never read. A token signed by an
 * attacker's key that it embeds as "jwk" fails; the same headers on a token
 * signed by the real key change nothing. */
static void test_key_pointing_headers_ignored(void **state)
{
    char *p = claims("");
    char *evil = mint_jwk(F.rsa_b, "r1", "");
    char *hdr = mint_printf("{\"alg\":\"RS256\",\"kid\":\"r1\",\"jku\":\"https://evil.example/"
                            "jwks\",\"x5u\":\"https://evil.example/c\",\"x5c\":[\"AAAA\"],"
                            "\"jwk\":%s}",
                            evil);
    (void)state;
    char *forged = mint_token(hdr, p, MINT_RS256, F.rsa_b, NULL, 0);
    char *real = mint_token(hdr, p, MINT_RS256, F.rsa, NULL, 0);
    assert_reason(check(forged, NULL), JWT_BAD_SIG);
    assert_reason(check(real, NULL), JWT_OK);
    free(forged);
    free(real);
    free(hdr);
    free(evil);
    free(p);
}

static void test_duplicate_header_keys_refused(void **state)
{
    char *p = claims("");
    (void)state;
    char *t = mint_token("{\"alg\":\"RS256\",\"kid\":\"r1\",\"alg\":\"none\"}", p, MINT_RS256,
                         F.rsa, NULL, 0);
    char *t2 = mint_token("{\"alg\":\"RS256\",\"kid\":\"e1\",\"kid\":\"r1\"}", p, MINT_RS256, F.rsa,
                          NULL, 0);
    assert_reason(check(t, NULL), JWT_DUP_HEADER);
    assert_reason(check(t2, NULL), JWT_DUP_HEADER);
    free(t);
    free(t2);
    free(p);
}

static void test_malformed_header_refused(void **state)
{
    char *p = claims("");
    (void)state;
    const char *bad[] = {"[\"RS256\"]", "{\"alg\":256}", "{\"alg\":\"RS256\",\"kid\":7}",
                         "{\"alg\":\"RS256\",\"kid\":\"\"}", "not json"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char *t = mint_token(bad[i], p, MINT_RS256, F.rsa, NULL, 0);
        assert_reason(check(t, NULL), JWT_BAD_HEADER);
        free(t);
    }
    free(p);
}

/* ---- key selection ---- */

static void test_unknown_kid(void **state)
{
    char *p = claims("");
    (void)state;
    char *t = mint_token("{\"alg\":\"RS256\",\"kid\":\"r2\"}", p, MINT_RS256, F.rsa, NULL, 0);
    assert_reason(check(t, NULL), JWT_UNKNOWN_KEY);
    free(t);
    free(p);
}

static void test_no_kid_one_key_accepted_two_keys_refused(void **state)
{
    char err[256];
    char *one = mint_jwk(F.rsa, "only", "");
    char *set1 = mint_jwks((const char *const *)&one, 1);
    struct jwks *ks1 = parse_set(set1, err, sizeof(err));
    char *p = claims("");
    (void)state;
    assert_non_null(ks1);
    char *t = mint_token("{\"alg\":\"RS256\"}", p, MINT_RS256, F.rsa, NULL, 0);
    assert_reason(check_in(ks1, t, NULL), JWT_OK);
    assert_reason(check(t, NULL), JWT_NO_KID); /* the fixture set holds two */
    free(t);
    free(one);
    free(set1);
    free(p);
    jwks_free(ks1);
}

/* ---- signatures ---- */

static void test_tampered_payload(void **state)
{
    char *t = rs256("");
    char *other = claims(",\"scope\":\"orders/admin\"");
    char *b64 = mint_b64url(other, strlen(other));
    char *dot1 = strchr(t, '.'), *dot2 = strrchr(t, '.');
    (void)state;
    char *tampered = mint_printf("%.*s.%s%s", (int)(dot1 - t), t, b64, dot2);
    assert_reason(check(tampered, NULL), JWT_BAD_SIG);
    /* one flipped signature bit too */
    char *flip = mint_printf("%s", t);
    char *last = flip + strlen(flip) - 3;
    *last = *last == 'A' ? 'B' : 'A';
    assert_reason(check(flip, NULL), JWT_BAD_SIG);
    free(flip);
    free(tampered);
    free(b64);
    free(other);
    free(t);
}

static void test_es256_signature_length(void **state)
{
    char *p = claims("");
    uint64_t before = sigs();
    (void)state;
    /* OpenSSL's DER signature (70-72 bytes) where JWS wants 64 raw bytes. */
    char *der = mint_token("{\"alg\":\"ES256\",\"kid\":\"e1\"}", p, MINT_ES256_DER, F.ec, NULL, 0);
    assert_reason(check(der, NULL), JWT_BAD_SIG_LEN);
    char *good = mint_token("{\"alg\":\"ES256\",\"kid\":\"e1\"}", p, MINT_ES256, F.ec, NULL, 0);
    char *dot2 = strrchr(good, '.');
    unsigned char raw[65] = {0};
    char *s63 = mint_b64url(raw, 63), *s65 = mint_b64url(raw, 65);
    char *t63 = mint_printf("%.*s.%s", (int)(dot2 - good), good, s63);
    char *t65 = mint_printf("%.*s.%s", (int)(dot2 - good), good, s65);
    assert_reason(check(t63, NULL), JWT_BAD_SIG_LEN);
    assert_reason(check(t65, NULL), JWT_BAD_SIG_LEN);
    assert_int_equal(sigs(), before);
    /* 64 bytes of zeros: the right length, r = s = 0 is never a valid signature. */
    char *s64 = mint_b64url(raw, 64);
    char *t64 = mint_printf("%.*s.%s", (int)(dot2 - good), good, s64);
    assert_reason(check(t64, NULL), JWT_BAD_SIG);
    /* RS256: the signature must be exactly the modulus size. */
    char *rs = rs256("");
    char *rdot = strrchr(rs, '.');
    char *short_rs = mint_printf("%.*s.%s", (int)(rdot - rs), rs, s64);
    assert_reason(check(short_rs, NULL), JWT_BAD_SIG_LEN);
    free(rs);
    free(short_rs);
    free(s63);
    free(s64);
    free(s65);
    free(t63);
    free(t64);
    free(t65);
    free(der);
    free(good);
    free(p);
}

/* ---- claims ---- */

static void test_duplicate_claims_refused(void **state)
{
    char *p = mint_printf("{\"iss\":\"" ISS "\",\"aud\":\"order-api\",\"sub\":\"c-123\","
                          "\"sub\":\"c-999\",\"exp\":%lld}",
                          NOW + 600);
    char *t = rs256_raw(p);
    (void)state;
    assert_reason(check(t, NULL), JWT_DUP_CLAIM);
    free(t);
    free(p);
}

static void test_expired(void **state)
{
    char *p1 = mint_printf("{\"iss\":\"" ISS "\",\"aud\":\"order-api\",\"sub\":\"c\","
                           "\"exp\":%lld}",
                           NOW - 61);
    char *p2 = mint_printf("{\"iss\":\"" ISS "\",\"aud\":\"order-api\",\"sub\":\"c\","
                           "\"exp\":%lld}",
                           NOW - 59); /* inside the 60 s leeway */
    char *p3 = mint_printf("{\"iss\":\"" ISS "\",\"aud\":\"order-api\",\"sub\":\"c\","
                           "\"exp\":%lld.5}",
                           NOW - 100);
    char *t1 = rs256_raw(p1), *t2 = rs256_raw(p2), *t3 = rs256_raw(p3);
    (void)state;
    assert_reason(check(t1, NULL), JWT_EXPIRED);
    assert_reason(check(t2, NULL), JWT_OK);
    assert_reason(check(t3, NULL), JWT_EXPIRED);
    free(t1);
    free(t2);
    free(t3);
    free(p1);
    free(p2);
    free(p3);
}

static void test_missing_or_malformed_exp(void **state)
{
    char *p1 = mint_printf("%s", "{\"iss\":\"" ISS "\",\"aud\":\"order-api\",\"sub\":\"c\"}");
    char *p2 = mint_printf("%s", "{\"iss\":\"" ISS "\",\"aud\":\"order-api\",\"sub\":\"c\","
                                 "\"exp\":\"tomorrow\"}");
    char *t1 = rs256_raw(p1), *t2 = rs256_raw(p2);
    (void)state;
    assert_reason(check(t1, NULL), JWT_NO_EXP);
    assert_reason(check(t2, NULL), JWT_BAD_CLAIMS);
    free(t1);
    free(t2);
    free(p1);
    free(p2);
}

static void test_not_yet_valid(void **state)
{
    char *e1 = mint_printf(",\"nbf\":%lld", NOW + 61);
    char *e2 = mint_printf(",\"nbf\":%lld", NOW + 59);
    char *t1 = rs256(e1), *t2 = rs256(e2);
    struct jwt_claims c;
    (void)state;
    assert_reason(check(t1, NULL), JWT_NOT_YET_VALID);
    assert_reason(check(t2, &c), JWT_OK);
    assert_int_equal(c.nbf, NOW + 59);
    free(t1);
    free(t2);
    free(e1);
    free(e2);
}

static void test_iat_in_future(void **state)
{
    char *p1 = mint_printf("{\"iss\":\"" ISS "\",\"aud\":\"order-api\",\"sub\":\"c\","
                           "\"exp\":%lld,\"iat\":%lld}",
                           NOW + 600, NOW + 61);
    char *p2 = mint_printf("{\"iss\":\"" ISS "\",\"aud\":\"order-api\",\"sub\":\"c\","
                           "\"exp\":%lld,\"iat\":%lld}",
                           NOW + 600, NOW + 30);
    char *t1 = rs256_raw(p1), *t2 = rs256_raw(p2);
    (void)state;
    assert_reason(check(t1, NULL), JWT_IAT_FUTURE);
    assert_reason(check(t2, NULL), JWT_OK);
    free(t1);
    free(t2);
    free(p1);
    free(p2);
}

static void test_wrong_issuer(void **state)
{
    const char *bad[] = {"https://issuer.example/", "https://ISSUER.example",
                         "https://evil.example", ""};
    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char *p = mint_printf("{\"iss\":\"%s\",\"aud\":\"order-api\",\"sub\":\"c\",\"exp\":%lld}",
                              bad[i], NOW + 600);
        char *t = rs256_raw(p);
        assert_reason(check(t, NULL), JWT_WRONG_ISSUER);
        free(t);
        free(p);
    }
    char *p = mint_printf("{\"aud\":\"order-api\",\"sub\":\"c\",\"exp\":%lld}", NOW + 600);
    char *t = rs256_raw(p);
    assert_reason(check(t, NULL), JWT_WRONG_ISSUER);
    free(t);
    free(p);
}

static char *aud_token(const char *aud_members)
{
    char *p =
        mint_printf("{\"iss\":\"" ISS "\",\"sub\":\"c\",\"exp\":%lld%s}", NOW + 600, aud_members);
    char *t = rs256_raw(p);
    free(p);
    return t;
}

static void test_wrong_audience(void **state)
{
    char *t1 = aud_token(",\"aud\":\"order-api-2\"");
    char *t2 = aud_token(",\"aud\":[\"x\",\"y\"]");
    char *t3 = aud_token(",\"aud\":[]");
    char *t4 = aud_token("");
    char *ok1 = aud_token(",\"aud\":[\"x\",\"admin-console\"]");
    (void)state;
    assert_reason(check(t1, NULL), JWT_WRONG_AUDIENCE);
    assert_reason(check(t2, NULL), JWT_WRONG_AUDIENCE);
    assert_reason(check(t3, NULL), JWT_WRONG_AUDIENCE);
    assert_reason(check(t4, NULL), JWT_WRONG_AUDIENCE);
    assert_reason(check(ok1, NULL), JWT_OK);
    free(t1);
    free(t2);
    free(t3);
    free(t4);
    free(ok1);
}

/* Cognito access tokens carry client_id and no aud. */
static void test_client_id_as_audience(void **state)
{
    char *ok = aud_token(",\"client_id\":\"order-api\",\"token_use\":\"access\"");
    char *bad = aud_token(",\"client_id\":\"someone-else\"");
    char *aud_wins = aud_token(",\"aud\":\"someone-else\",\"client_id\":\"order-api\"");
    (void)state;
    assert_reason(check(ok, NULL), JWT_OK);
    assert_reason(check(bad, NULL), JWT_WRONG_AUDIENCE);
    assert_reason(check(aud_wins, NULL), JWT_WRONG_AUDIENCE);
    free(ok);
    free(bad);
    free(aud_wins);
}

static void test_id_token_refused(void **state)
{
    char *id = rs256(",\"token_use\":\"id\"");
    char *access = rs256(",\"token_use\":\"access\"");
    char *odd = rs256(",\"token_use\":1");
    (void)state;
    assert_reason(check(id, NULL), JWT_NOT_ACCESS);
    assert_reason(check(odd, NULL), JWT_NOT_ACCESS);
    assert_reason(check(access, NULL), JWT_OK);
    free(id);
    free(access);
    free(odd);
}

static unsigned scopes_of(const char *scope_members)
{
    char *p =
        mint_printf("{\"iss\":\"" ISS "\",\"aud\":\"order-api\",\"sub\":\"c\",\"exp\":%lld%s}",
                    NOW + 600, scope_members);
    char *t = rs256_raw(p);
    struct jwt_claims c;
    enum jwt_reason r = check(t, &c);
    free(t);
    free(p);
    assert_reason(r, JWT_OK);
    return c.scopes;
}

static void test_scope_mapping(void **state)
{
    (void)state;
    assert_int_equal(scopes_of(",\"scope\":\"orders/read\""), JWT_SCOPE_READ);
    assert_int_equal(scopes_of(",\"scope\":\"openid orders/write orders/admin\""),
                     JWT_SCOPE_WRITE | JWT_SCOPE_ADMIN);
    assert_int_equal(scopes_of(",\"scp\":[\"orders/read\",\"orders/admin\"]"),
                     JWT_SCOPE_READ | JWT_SCOPE_ADMIN);
    /* missing mapping: no prefix, another resource server, a longer name, none at all */
    assert_int_equal(scopes_of(",\"scope\":\"read write admin\""), 0);
    assert_int_equal(scopes_of(",\"scope\":\"billing/read orders/reader orders/\""), 0);
    assert_int_equal(scopes_of(""), 0);
    /* a different prefix from configuration */
    struct jwt_policy saved = F.pol;
    F.pol.scope_prefix = "https://api.example/";
    assert_int_equal(scopes_of(",\"scope\":\"https://api.example/write orders/read\""),
                     JWT_SCOPE_WRITE);
    F.pol = saved;
}

static void test_customer_claim(void **state)
{
    struct jwt_claims c;
    char *long_id = malloc(JWT_CLAIM_MAX + 2);
    (void)state;
    assert_non_null(long_id);
    memset(long_id, 'x', JWT_CLAIM_MAX + 1);
    long_id[JWT_CLAIM_MAX + 1] = '\0';
    F.pol.customer_claim = "custom:tenant";
    char *ok = rs256(",\"custom:tenant\":\"t-42\"");
    char *missing = rs256("");
    char *empty = rs256(",\"custom:tenant\":\"\"");
    char *number = rs256(",\"custom:tenant\":42");
    char *control = rs256(",\"custom:tenant\":\"t\\n42\"");
    char *extra = mint_printf(",\"custom:tenant\":\"%s\"", long_id);
    char *too_long = rs256(extra);
    long_id[JWT_CLAIM_MAX] = '\0';
    char *extra_max = mint_printf(",\"custom:tenant\":\"%s\"", long_id);
    char *max = rs256(extra_max);
    assert_reason(check(ok, &c), JWT_OK);
    assert_string_equal(c.customer, "t-42");
    assert_string_equal(c.sub, "c-123");
    assert_reason(check(missing, NULL), JWT_BAD_CUSTOMER);
    assert_reason(check(empty, NULL), JWT_BAD_CUSTOMER);
    assert_reason(check(number, NULL), JWT_BAD_CUSTOMER);
    assert_reason(check(control, NULL), JWT_BAD_CUSTOMER);
    assert_reason(check(too_long, NULL), JWT_BAD_CUSTOMER);
    assert_reason(check(max, &c), JWT_OK);
    assert_int_equal(strlen(c.customer), JWT_CLAIM_MAX);
    F.pol.customer_claim = "sub";
    free(ok);
    free(missing);
    free(empty);
    free(number);
    free(control);
    free(too_long);
    free(extra);
    free(extra_max);
    free(max);
    free(long_id);
}

static void test_sub_required(void **state)
{
    char *p = mint_printf("{\"iss\":\"" ISS "\",\"aud\":\"order-api\",\"exp\":%lld}", NOW + 600);
    char *t = rs256_raw(p);
    (void)state;
    assert_reason(check(t, NULL), JWT_NO_SUB);
    free(t);
    free(p);
}

/* ---- key sets ---- */

struct warned {
    int n;
    char last[160];
};

static void record_warning(void *ctx, const char *kid, const char *why)
{
    struct warned *w = ctx;
    w->n++;
    snprintf(w->last, sizeof(w->last), "%s: %s", kid, why);
}

static void test_rsa_1024_key_skipped(void **state)
{
    char err[256];
    struct warned w = {0};
    char *k[2] = {mint_jwk(F.rsa1024, "weak", ""), mint_jwk(F.rsa, "r1", "")};
    char *set = mint_jwks((const char *const *)k, 2);
    struct jwks *ks = jwks_parse(set, strlen(set), record_warning, &w, err, sizeof(err));
    char *p = claims("");
    (void)state;
    assert_non_null(ks);
    assert_int_equal(ks->n, 1);
    assert_int_equal(w.n, 1);
    assert_string_equal(w.last, "weak: RSA key shorter than 2048 bits");
    char *t = mint_token("{\"alg\":\"RS256\",\"kid\":\"weak\"}", p, MINT_RS256, F.rsa1024, NULL, 0);
    assert_reason(check_in(ks, t, NULL), JWT_UNKNOWN_KEY);
    /* a set holding only the weak key is no set at all */
    char *only = mint_jwks((const char *const *)k, 1);
    assert_null(jwks_parse(only, strlen(only), NULL, NULL, err, sizeof(err)));
    assert_non_null(strstr(err, "no signature key"));
    free(only);
    free(t);
    free(p);
    free(k[0]);
    free(k[1]);
    free(set);
    jwks_free(ks);
}

static void test_other_keys_skipped(void **state)
{
    char err[256];
    struct warned w = {0};
    char *p384 = mint_jwk(F.ec384, "p384", "");
    char *good = mint_jwk(F.ec, "e1", "");
    char *dup = mint_jwk(F.rsa, "e1", "");
    char *set = mint_printf("{\"keys\":[%s,{\"kty\":\"oct\",\"kid\":\"h\",\"k\":\"c2VjcmV0\"},"
                            "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"AAAA\"},"
                            "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"AAAA\",\"y\":\"AAAA\"},"
                            "%s,%s,\"not an object\"]}",
                            p384, good, dup);
    struct jwks *ks = jwks_parse(set, strlen(set), record_warning, &w, err, sizeof(err));
    (void)state;
    assert_non_null(ks);
    assert_int_equal(ks->n, 1);
    assert_string_equal(ks->keys[0].kid, "e1");
    assert_int_equal(ks->keys[0].kty, JWK_KTY_EC);
    assert_int_equal(w.n, 6);
    assert_string_equal(w.last, ": not a JSON object");
    free(p384);
    free(good);
    free(dup);
    free(set);
    jwks_free(ks);
}

static void test_jwks_document_errors(void **state)
{
    char err[256];
    char *k = mint_jwk(F.rsa, "r1", "");
    char *dupkey = mint_printf("{\"keys\":[%s],\"keys\":[]}", k);
    (void)state;
    assert_null(parse_set("", err, sizeof(err)));
    assert_non_null(strstr(err, "not valid JSON"));
    assert_null(parse_set("{\"keys\":{}}", err, sizeof(err)));
    assert_non_null(strstr(err, "\"keys\" array"));
    assert_null(parse_set("[]", err, sizeof(err)));
    assert_null(parse_set(dupkey, err, sizeof(err)));
    assert_non_null(strstr(err, "not valid JSON"));
    free(dupkey);
    free(k);
}

static void test_fingerprint_tracks_key_material(void **state)
{
    char err[256];
    char *a = mint_jwk(F.rsa, "r1", ""), *b = mint_jwk(F.rsa_b, "r1", "");
    char *sa = mint_jwks((const char *const *)&a, 1), *sb = mint_jwks((const char *const *)&b, 1);
    /* the same keys with other whitespace and member order */
    char *sa2 = mint_printf("{ \"keys\" : [ %s ] , \"extra\": true }", a);
    struct jwks *ka = parse_set(sa, err, sizeof(err)), *kb = parse_set(sb, err, sizeof(err));
    struct jwks *ka2 = parse_set(sa2, err, sizeof(err));
    (void)state;
    assert_non_null(ka);
    assert_non_null(kb);
    assert_non_null(ka2);
    assert_memory_equal(ka->fingerprint, ka2->fingerprint, 32);
    assert_memory_not_equal(ka->fingerprint, kb->fingerprint, 32);
    jwks_free(ka);
    jwks_free(ka2);
    jwks_free(kb);
    free(a);
    free(b);
    free(sa);
    free(sb);
    free(sa2);
}

static void test_time_recheck(void **state)
{
    (void)state;
    assert_reason(jwt_check_times(NOW + 10, JWT_NO_NBF, NOW, 0), JWT_OK);
    assert_reason(jwt_check_times(NOW, JWT_NO_NBF, NOW, 0), JWT_EXPIRED);
    assert_reason(jwt_check_times(NOW, JWT_NO_NBF, NOW, 1), JWT_OK);
    assert_reason(jwt_check_times(NOW + 100, NOW + 5, NOW, 0), JWT_NOT_YET_VALID);
    assert_reason(jwt_check_times(NOW + 100, NOW + 5, NOW, 5), JWT_OK);
}

static void test_reason_names_never_empty(void **state)
{
    (void)state;
    for (int i = 0; i < JWT_REASON_COUNT; i++) {
        assert_non_null(jwt_reason_name((enum jwt_reason)i));
        assert_true(strlen(jwt_reason_name((enum jwt_reason)i)) > 1);
    }
    assert_string_equal(jwt_reason_name(JWT_REASON_COUNT), "internal error");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rs256_valid_token),
        cmocka_unit_test(test_es256_valid_token),
        cmocka_unit_test(test_bearer_scheme_case_insensitive),
        cmocka_unit_test(test_oversized_header_refused_before_parsing),
        cmocka_unit_test(test_three_strict_base64url_parts),
        cmocka_unit_test(test_noncanonical_base64url_refused),
        cmocka_unit_test(test_wrong_alg_refused_before_signature),
        cmocka_unit_test(test_alg_confusion_hs256_with_rsa_public_key),
        cmocka_unit_test(test_alg_none_refused),
        cmocka_unit_test(test_alg_must_match_key_type),
        cmocka_unit_test(test_jwk_alg_and_use_honoured),
        cmocka_unit_test(test_crit_header_refused),
        cmocka_unit_test(test_key_pointing_headers_ignored),
        cmocka_unit_test(test_duplicate_header_keys_refused),
        cmocka_unit_test(test_malformed_header_refused),
        cmocka_unit_test(test_unknown_kid),
        cmocka_unit_test(test_no_kid_one_key_accepted_two_keys_refused),
        cmocka_unit_test(test_tampered_payload),
        cmocka_unit_test(test_es256_signature_length),
        cmocka_unit_test(test_duplicate_claims_refused),
        cmocka_unit_test(test_expired),
        cmocka_unit_test(test_missing_or_malformed_exp),
        cmocka_unit_test(test_not_yet_valid),
        cmocka_unit_test(test_iat_in_future),
        cmocka_unit_test(test_wrong_issuer),
        cmocka_unit_test(test_wrong_audience),
        cmocka_unit_test(test_client_id_as_audience),
        cmocka_unit_test(test_id_token_refused),
        cmocka_unit_test(test_scope_mapping),
        cmocka_unit_test(test_customer_claim),
        cmocka_unit_test(test_sub_required),
        cmocka_unit_test(test_rsa_1024_key_skipped),
        cmocka_unit_test(test_other_keys_skipped),
        cmocka_unit_test(test_jwks_document_errors),
        cmocka_unit_test(test_fingerprint_tracks_key_material),
        cmocka_unit_test(test_time_recheck),
        cmocka_unit_test(test_reason_names_never_empty),
    };
    return cmocka_run_group_tests(tests, suite_setup, suite_teardown);
}
