/*
 * routes.h - order-api's URL space: which route a path is, the order id in
 * it, and which methods each route takes. Pure functions, unit-tested.
 */
#ifndef ORDER_API_ROUTES_H
#define ORDER_API_ROUTES_H

#include <stdbool.h>

#include "util.h"

enum route {
    R_NONE = 0,
    R_HEALTHZ,
    R_READYZ,
    R_METRICS,
    R_OPENAPI,
    R_ORDERS,
    R_ORDER,
    R_ORDER_EVENTS,
    R_ORDER_CANCEL,
    R_COUNT
};

/* The route template, e.g. "/orders/{id}", for metrics and access logs. */
const char *route_name(enum route r);
/* Which route url is. For the /orders/{id}... routes, id gets the id in
 * canonical lower case, or *bad_id is set when it is not a UUID. A trailing
 * slash is accepted on /orders only ("/orders/"), as the README says. */
enum route route_of(const char *url, char id[UUID_STR_LEN], bool *bad_id);
/* The Allow header for a 405 on r. */
const char *route_allowed_methods(enum route r);
bool route_method_allowed(enum route r, const char *method);
/* Routes served without a token. */
bool route_is_public(enum route r);

#endif
