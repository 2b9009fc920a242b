/*
 * config.c - environment variable parsing with range checks.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

const char *config_str(const char *name, const char *def)
{
    const char *v = getenv(name);
    return (v && *v) ? v : def;
}

int config_int(const char *name, int64_t def, int64_t min, int64_t max, int64_t *out, char *err,
               size_t errlen)
{
    const char *v = getenv(name);
    char *end;

    if (!v || !*v) {
        *out = def;
        return 0;
    }
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (errno || *end || end == v || x < min || x > max) {
        snprintf(err, errlen, "%s must be an integer between %lld and %lld", name, (long long)min,
                 (long long)max);
        return -1;
    }
    *out = x;
    return 0;
}

int config_required(const char *name, const char **out, char *err, size_t errlen)
{
    const char *v = getenv(name);
    if (!v || !*v) {
        snprintf(err, errlen, "%s is required but not set", name);
        return -1;
    }
    *out = v;
    return 0;
}
