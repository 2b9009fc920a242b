/*
 * fuzz_jwks.c - libFuzzer target for JSON Web Key Set parsing (common/jwks.c).
 *
 * A key set arrives from the network (the issuer's jwks_uri), so the parser
 * must take any bytes without crashing, leaking or reading past len (the input
 * is not NUL-terminated, on purpose); the strict base64url decoder it relies
 * on gets the same bytes.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "jwks.h"

static void count_warning(void *ctx, const char *kid, const char *why)
{
    (void)kid;
    (void)why;
    (*(size_t *)ctx)++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256];
    size_t warnings = 0, n;
    const struct jwk *only;
    struct jwks *ks =
        jwks_parse((const char *)data, size, count_warning, &warnings, err, sizeof(err));
    unsigned char *out;

    if (ks) {
        (void)jwks_usable(ks, &only);
        for (size_t i = 0; i < ks->n; i++)
            if (jwks_find(ks, ks->keys[i].kid) == NULL && ks->keys[i].has_kid)
                abort(); /* a kept key must be found by its own kid */
        jwks_free(ks);
    }
    out = malloc(jwks_b64url_decoded_len(size) + 1);
    if (out) {
        (void)jwks_b64url_decode((const char *)data, size, out, jwks_b64url_decoded_len(size), &n);
        free(out);
    }
    return 0;
}
