/*
 * fuzz_jwt.c - libFuzzer target for bearer-token parsing (common/jwt.c).
 *
 * One input is tried three ways against a fixed key set (an RSA 2048 and an
 * EC P-256 public key whose private halves were thrown away): as a compact
 * token (not NUL-terminated, so any over-read shows), as an Authorization
 * header value, and as a decoded claims payload. A fourth way helps the
 * fuzzer past base64: an input "HEADER\nPAYLOAD" is encoded into a token with
 * a 256-byte signature, so JSON mutations reach the header checks (alg, kid,
 * crit, duplicates) and key selection directly.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "jwks.h"
#include "jwt.h"

#define FUZZ_NOW 1700000000

static const char fixed_jwks[] =
    "{\"keys\":["
    "{\"kty\":\"RSA\",\"kid\":\"fz-rsa\",\"use\":\"sig\",\"alg\":\"RS256\",\"n\":"
    "\"pE64qLHKufaslIFKb0I9F"
    "iOfDEbJGUWXpJITxFCxrdQQTRy-4fLmZJBFzV6TbKsQu9MTRlcMO2G1gonu8rCpNOxD6x2PLWk6hBwI2"
    "s1j0gW-UW3kIGz7-BdRRYKwA_o9bXjKt5y8W_NZEVVu-zBb_EXveaH1pa3gME4XzbKmvB5enr0djVPvK"
    "swMIvXoNRyO-Zsav97GXOkh6TE-vSlYpRxdvGYoJAh78GV-8UAqv-Kp3TPr9ilBXmMhnM8h7ndTIBVW_"
    "ZO7Yv2Z5sdmugO5uogkH0BgAxRaekgNBLwsWDRA9rN7zn4VaE38wU-BRkp9WfaIahCwVhS8oSjuvIWqR"
    "Q\",\"e\":\"AQAB\"}"
    ","
    "{\"kty\":\"EC\",\"kid\":\"fz-ec\",\"use\":\"sig\",\"alg\":\"ES256\",\"crv\":\"P-256\",\"x\":"
    "\"YlaQ21KHy"
    "jHLPikSXb_omENtHStfWed0gKGGSbjl-WE\",\"y\":\"H4qOz2xhITbuiSDUbBR4T77uavozrcp6AJeOSGj"
    "vleM\"}"
    "]}";

static struct jwks *keys;
static const char *const audiences[] = {"order-api"};
static const struct jwt_policy policy = {
    .algs = JWS_ALG_BIT(JWS_ALG_RS256) | JWS_ALG_BIT(JWS_ALG_ES256),
    .issuer = "https://order-service.local",
    .audiences = audiences,
    .n_audiences = 1,
    .leeway_s = 60,
    .scope_prefix = "orders/",
    .customer_claim = "sub",
};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char err[256];
    (void)argc;
    (void)argv;
    keys = jwks_parse(fixed_jwks, strlen(fixed_jwks), NULL, NULL, err, sizeof(err));
    if (!keys || keys->n != 2)
        abort();
    return 0;
}

static size_t b64url(const uint8_t *in, size_t len, char *out)
{
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0, i = 0;
    for (; i + 2 < len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = a[v >> 18 & 63];
        out[o++] = a[v >> 12 & 63];
        out[o++] = a[v >> 6 & 63];
        out[o++] = a[v & 63];
    }
    if (len - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        out[o++] = a[v >> 18 & 63];
        out[o++] = a[v >> 12 & 63];
    } else if (len - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        out[o++] = a[v >> 18 & 63];
        out[o++] = a[v >> 12 & 63];
        out[o++] = a[v >> 6 & 63];
    }
    return o;
}

/* HEADER "\n" PAYLOAD -> b64(HEADER).b64(PAYLOAD).b64(256 bytes) */
static void structured(const uint8_t *data, size_t size)
{
    const uint8_t *nl = memchr(data, '\n', size);
    static const uint8_t sig[256] = {1, 2, 3};
    struct jwt_claims c;
    char *tok;
    size_t n;

    if (!nl || size > 6000)
        return;
    tok = malloc((size + 256) / 3 * 4 + 16);
    if (!tok)
        return;
    n = b64url(data, (size_t)(nl - data), tok);
    tok[n++] = '.';
    n += b64url(nl + 1, size - (size_t)(nl + 1 - data), tok + n);
    tok[n++] = '.';
    n += b64url(sig, sizeof(sig), tok + n);
    (void)jwt_check(tok, n, keys, &policy, FUZZ_NOW, &c, NULL);
    free(tok);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct jwt_claims c;
    const char *tok;
    size_t len;
    char *header;

    (void)jwt_check((const char *)data, size, keys, &policy, FUZZ_NOW, &c, NULL);
    (void)jwt_claims_parse((const char *)data, size, &policy, FUZZ_NOW, &c);
    header = malloc(size + 1);
    if (header) {
        memcpy(header, data, size);
        header[size] = '\0';
        if (jwt_bearer(header, &tok, &len) == JWT_OK)
            (void)jwt_check(tok, len, keys, &policy, FUZZ_NOW, &c, NULL);
        free(header);
    }
    structured(data, size);
    return 0;
}
