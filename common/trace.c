/*
 * trace.c - generating and checking trace headers.
 */
#include "trace.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "util.h"

static bool hex_run(const char *s, size_t n, bool *all_zero)
{
    *all_zero = true;
    for (size_t i = 0; i < n; i++) {
        if (!isxdigit((unsigned char)s[i]) || isupper((unsigned char)s[i]))
            return false;
        if (s[i] != '0')
            *all_zero = false;
    }
    return true;
}

bool trace_traceparent_valid(const char *s)
{
    bool z1, z2, z3;
    if (!s || strlen(s) != 55 || s[2] != '-' || s[35] != '-' || s[52] != '-')
        return false;
    if (!hex_run(s, 2, &z1) || strncmp(s, "ff", 2) == 0)
        return false;
    return hex_run(s + 3, 32, &z2) && !z2 && hex_run(s + 36, 16, &z3) && !z3 &&
           hex_run(s + 53, 2, &z1);
}

static void hex(const unsigned char *b, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02x", b[i]);
}

void trace_traceparent(const char *incoming, char out[TRACEPARENT_LEN])
{
    unsigned char span[8], trace[16];
    char span_hex[17], trace_hex[33];

    do
        util_random_bytes(span, sizeof(span));
    while (!memcmp(span, "\0\0\0\0\0\0\0\0", 8));
    hex(span, 8, span_hex);
    if (trace_traceparent_valid(incoming)) {
        snprintf(out, TRACEPARENT_LEN, "00-%.32s-%s-%.2s", incoming + 3, span_hex, incoming + 53);
        return;
    }
    util_random_bytes(trace, sizeof(trace));
    trace[0] |= 1; /* never all zero */
    hex(trace, 16, trace_hex);
    snprintf(out, TRACEPARENT_LEN, "00-%s-%s-01", trace_hex, span_hex);
}

/* n lower- or upper-case hex digits at s. */
static bool xdigits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isxdigit((unsigned char)s[i]))
            return false;
    return true;
}

bool trace_xray_header_valid(const char *s)
{
    /* Root=1-<8 hex>-<24 hex>[;Parent=<16 hex>][;Sampled=0|1]: what SQS takes
     * as AWSTraceHeader. Anything looser could make a batch entry fail for good. */
    if (!s || strncmp(s, "Root=1-", 7) != 0 || !xdigits(s + 7, 8) || s[15] != '-' ||
        !xdigits(s + 16, 24))
        return false;
    s += 40;
    if (strncmp(s, ";Parent=", 8) == 0) {
        if (!xdigits(s + 8, 16))
            return false;
        s += 24;
    }
    if (strncmp(s, ";Sampled=", 9) == 0) {
        if (s[9] != '0' && s[9] != '1')
            return false;
        s += 10;
    }
    return *s == '\0';
}

void trace_xray_header(const char *incoming, long long epoch_s, char *out, size_t outlen)
{
    if (trace_xray_header_valid(incoming) && strlen(incoming) < outlen) {
        memcpy(out, incoming, strlen(incoming) + 1);
        return;
    }
    unsigned char id[12];
    char id_hex[25];
    util_random_bytes(id, sizeof(id));
    hex(id, 12, id_hex);
    snprintf(out, outlen, "Root=1-%08llx-%s;Sampled=0", (unsigned long long)epoch_s & 0xffffffffULL,
             id_hex);
}
