/*
 * aws_env.c - AWS client settings from environment variables (see aws_env.h).
 *
 * Design: a URL is checked here, once, at start, strictly (printable ASCII,
 * scheme, host, port), so nothing downstream ever sees a URL that would make
 * libcurl, jansson or the signer fail in the middle of the night: invalid
 * UTF-8 in a queue URL used to crash the worker on its first receive.
 */
#include "aws_env.h"

#include <stdio.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "util.h"

bool aws_region_valid(const char *r)
{
    if (!r || !*r)
        return false;
    for (; *r; r++)
        if (!((*r >= 'a' && *r <= 'z') || (*r >= '0' && *r <= '9') || *r == '-'))
            return false;
    return true;
}

static bool why_set(char *why, size_t whylen, const char *reason)
{
    if (why && whylen)
        snprintf(why, whylen, "%s", reason);
    return false;
}

static bool host_char(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '.' || ch == '-' || ch == '_' || ch == '~';
}

bool aws_url_valid(const char *url, char *why, size_t whylen)
{
    size_t skip;

    if (!url || !*url)
        return why_set(why, whylen, "is empty");
    for (const unsigned char *p = (const unsigned char *)url; *p; p++) {
        if (*p >= 0x80)
            return why_set(why, whylen, "must be ASCII (it holds other bytes)");
        if (*p <= 0x20 || *p == 0x7f)
            return why_set(why, whylen, "must not contain spaces or control characters");
    }
    if (strncasecmp(url, "https://", 8) == 0)
        skip = 8;
    else if (strncasecmp(url, "http://", 7) == 0)
        skip = 7;
    else
        return why_set(why, whylen, "must start with http:// or https://");

    const char *host = url + skip;
    size_t alen = strcspn(host, "/?#");
    const char *aend = host + alen;
    if (memchr(host, '@', alen))
        return why_set(why, whylen, "must not contain user information (user@)");
    const char *port = NULL, *hend;
    if (*host == '[') {
        const char *close = memchr(host, ']', alen);
        if (!close || close == host + 1)
            return why_set(why, whylen, "has an unterminated or empty [IPv6] host");
        for (const char *p = host + 1; p < close; p++)
            if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f') ||
                  (*p >= 'A' && *p <= 'F') || *p == ':' || *p == '.'))
                return why_set(why, whylen, "has an invalid [IPv6] host");
        hend = close + 1;
        if (hend < aend && *hend != ':')
            return why_set(why, whylen, "has characters after the [IPv6] host");
        if (hend < aend)
            port = hend + 1;
    } else {
        hend = memchr(host, ':', alen);
        if (hend)
            port = hend + 1;
        else
            hend = aend;
        if (hend == host)
            return why_set(why, whylen, "has no host");
        for (const char *p = host; p < hend; p++)
            if (!host_char(*p))
                return why_set(why, whylen, "has invalid characters in its host");
    }
    if (port) {
        long n = 0;
        if (port == aend || aend - port > 5)
            return why_set(why, whylen, "has a port that is not 1-65535");
        for (const char *p = port; p < aend; p++) {
            if (*p < '0' || *p > '9')
                return why_set(why, whylen, "has a port that is not 1-65535");
            n = n * 10 + (*p - '0');
        }
        if (n < 1 || n > 65535)
            return why_set(why, whylen, "has a port that is not 1-65535");
    }
    return true;
}

/* An endpoint is scheme://host[:port] (trailing slashes allowed): requests
 * are always POST / and the signature covers exactly that path and Host. */
static int endpoint_set(struct aws_config *c, const char *var, const char *url, char *err,
                        size_t errlen)
{
    char why[128];

    if (!aws_url_valid(url, why, sizeof(why))) {
        snprintf(err, errlen, "%s %s", var, why);
        return -1;
    }
    if (util_strlcpy(c->endpoint, url, sizeof(c->endpoint)) >= sizeof(c->endpoint)) {
        snprintf(err, errlen, "%s is too long", var);
        return -1;
    }
    size_t skip = strstr(c->endpoint, "://") - c->endpoint + 3;
    size_t n = strlen(c->endpoint);
    while (n > skip && c->endpoint[n - 1] == '/')
        c->endpoint[--n] = '\0';
    if (strpbrk(c->endpoint + skip, "/?#")) {
        snprintf(err, errlen, "%s must be scheme://host[:port] without a path", var);
        return -1;
    }
    return 0;
}

/* The configuration tables validated these variables before any client is
 * made (config.c); this only reads them, with the same defaults and ranges. */
static int env_int(const char *name, int64_t def, int64_t min, int64_t max, int64_t *out, char *err,
                   size_t errlen)
{
    const char *v = config_env(name);
    char *end;
    if (!v) {
        *out = def;
        return 0;
    }
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (errno || *end || x < min || x > max) {
        snprintf(err, errlen, "%s must be an integer between %lld and %lld", name, (long long)min,
                 (long long)max);
        return -1;
    }
    *out = x;
    return 0;
}

static int tuning(const char *prefix, const char *name, int64_t def, int64_t max, int64_t *out,
                  char *err, size_t errlen)
{
    char var[96];
    if (!prefix) {
        *out = def;
        return 0;
    }
    snprintf(var, sizeof(var), "%s_%s", prefix, name);
    return env_int(var, def, 1, max, out, err, errlen);
}

int aws_config_from_env(struct aws_config *c, const struct aws_service *svc, char *err,
                        size_t errlen)
{
    const char *region = config_env("AWS_REGION");
    const char *endpoint;
    char var[96];
    int64_t v;

    memset(c, 0, sizeof(*c));
    if (!region)
        region = config_env("AWS_DEFAULT_REGION");
    if (!region) {
        snprintf(err, errlen, "AWS_REGION (or AWS_DEFAULT_REGION) is not set");
        return -1;
    }
    if (!aws_region_valid(region) ||
        util_strlcpy(c->region, region, sizeof(c->region)) >= sizeof(c->region)) {
        snprintf(err, errlen, "AWS_REGION is not a valid region name");
        return -1;
    }

    snprintf(var, sizeof(var), "AWS_ENDPOINT_URL_%s", svc->id);
    if ((endpoint = config_env(var))) {
        if (endpoint_set(c, var, endpoint, err, errlen) != 0)
            return -1;
    } else if ((endpoint = config_env("AWS_ENDPOINT_URL"))) {
        if (endpoint_set(c, "AWS_ENDPOINT_URL", endpoint, err, errlen) != 0)
            return -1;
    } else {
        /* China regions live under their own DNS suffix. */
        const char *suffix =
            strncmp(c->region, "cn-", 3) == 0 ? "amazonaws.com.cn" : "amazonaws.com";
        snprintf(c->endpoint, sizeof(c->endpoint), "https://%s.%s.%s", svc->endpoint_prefix,
                 c->region, suffix);
    }

    c->verify_tls = true;
    if (tuning(svc->tuning_prefix, "MAX_ATTEMPTS", 5, 20, &v, err, errlen) != 0)
        return -1;
    c->max_attempts = (unsigned)v;
    if (tuning(svc->tuning_prefix, "CONNECT_TIMEOUT_MS", 2000, 600000, &v, err, errlen) != 0)
        return -1;
    c->connect_timeout_ms = (long)v;
    if (tuning(svc->tuning_prefix, "REQUEST_TIMEOUT_MS", 30000, 3600000, &v, err, errlen) != 0)
        return -1;
    c->request_timeout_ms = (long)v;
    c->backoff_base_ms = 50;
    c->backoff_cap_ms = 5000;
    return 0;
}
