/*
 * routes.c - maps request paths to order-api's routes. Exact matches only:
 * no prefix or pattern is ever looser than the table in routes.h says.
 */
#include "routes.h"

#include <string.h>

static const char *const names[R_COUNT] = {"unknown",
                                           "/healthz",
                                           "/readyz",
                                           "/metrics",
                                           "/openapi.yaml",
                                           "/orders",
                                           "/orders/{id}",
                                           "/orders/{id}/events",
                                           "/orders/{id}/cancel"};

const char *route_name(enum route r)
{
    return (r >= 0 && r < R_COUNT) ? names[r] : names[R_NONE];
}

enum route route_of(const char *url, char id[UUID_STR_LEN], bool *bad_id)
{
    *bad_id = false;
    if (strcmp(url, "/healthz") == 0)
        return R_HEALTHZ;
    if (strcmp(url, "/readyz") == 0)
        return R_READYZ;
    if (strcmp(url, "/metrics") == 0)
        return R_METRICS;
    if (strcmp(url, "/openapi.yaml") == 0)
        return R_OPENAPI;
    if (strcmp(url, "/orders") == 0 || strcmp(url, "/orders/") == 0)
        return R_ORDERS;
    if (strncmp(url, "/orders/", 8) != 0)
        return R_NONE;
    const char *rest = url + 8;
    const char *slash = strchr(rest, '/');
    size_t idlen = slash ? (size_t)(slash - rest) : strlen(rest);
    enum route r;
    if (!slash)
        r = R_ORDER;
    else if (strcmp(slash, "/events") == 0)
        r = R_ORDER_EVENTS;
    else if (strcmp(slash, "/cancel") == 0)
        r = R_ORDER_CANCEL;
    else
        return R_NONE;
    char tmp[UUID_STR_LEN];
    if (idlen != 36) {
        *bad_id = true;
        return r;
    }
    memcpy(tmp, rest, 36);
    tmp[36] = '\0';
    if (!util_is_uuid(tmp)) {
        *bad_id = true;
        return r;
    }
    for (int i = 0; i < 36; i++) /* canonical lower case */
        id[i] = (char)((tmp[i] >= 'A' && tmp[i] <= 'F') ? tmp[i] + 32 : tmp[i]);
    id[36] = '\0';
    return r;
}

const char *route_allowed_methods(enum route r)
{
    switch (r) {
    case R_ORDERS:
        return "GET, POST";
    case R_ORDER_CANCEL:
        return "POST";
    case R_NONE:
    case R_COUNT:
        return "";
    default:
        return "GET, HEAD";
    }
}

bool route_method_allowed(enum route r, const char *method)
{
    bool get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
    bool post = strcmp(method, "POST") == 0;
    switch (r) {
    case R_ORDERS:
        return strcmp(method, "GET") == 0 || post;
    case R_ORDER_CANCEL:
        return post;
    case R_NONE:
    case R_COUNT:
        return false;
    default:
        return get;
    }
}

bool route_is_public(enum route r)
{
    return r == R_HEALTHZ || r == R_READYZ || r == R_OPENAPI;
}
