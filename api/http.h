/*
 * http.h - what order-api's HTTP files share: the per-request context and
 * the answer helpers. http.c owns the server (limits, callbacks, shutdown),
 * handlers.c the routes' logic, metrics_api.c the /metrics page.
 *
 * Every answer goes through http_send_*: one place sets the JSON error
 * envelope, X-Correlation-Id and Cache-Control, and counts the status.
 */
#ifndef ORDER_API_HTTP_H
#define ORDER_API_HTTP_H

#include <jansson.h>
#include <microhttpd.h>
#include <stdbool.h>
#include <stdint.h>

#include "api.h"
#include "routes.h"
#include "store.h"

/* Who is calling, once authenticated (auth.c); with AUTH_MODE=off nobody
 * is, and every caller acts on every customer. */
struct caller {
    bool authenticated;
    bool admin;          /* may act on every customer */
    char principal[257]; /* the token's sub; never the token */
    char customer[257];  /* the caller's own customer */
};

struct req_ctx {
    enum route route;
    struct caller caller;
    const char *method;
    char id[UUID_STR_LEN];
    char correlation_id[CORRELATION_ID_MAX + 1];
    struct buf body;
    size_t discarded;
    bool too_large;
    bool responded;
    bool abandoned; /* shutdown answered 503 instead of the committer */
    int status;
    uint64_t bytes_out;
    struct create_job *job;
    struct MHD_Connection *conn;
    int64_t start_us;                      /* monotonic */
    struct req_ctx *susp_prev, *susp_next; /* suspended POSTs, for shutdown */
};

/* The customer a request is scoped to: the caller's own, or NULL for every
 * customer (admin scope, or auth off). */
static inline const char *req_tenant(const struct req_ctx *c)
{
    return (c->caller.authenticated && !c->caller.admin) ? c->caller.customer : NULL;
}

enum MHD_Result http_send_text(struct req_ctx *c, int status, const char *type, const char *body,
                               size_t len, const char *const *headers);
/* Takes the reference to body. */
enum MHD_Result http_send_json(struct req_ctx *c, int status, json_t *body,
                               const char *const *headers);
/* The error envelope with at most one field detail (field may be NULL). */
enum MHD_Result http_send_error(struct req_ctx *c, int status, const char *code,
                                const char *message, const char *field, const char *field_message,
                                const char *const *headers);
enum MHD_Result http_send_unavailable(struct req_ctx *c, const char *message);
enum MHD_Result http_send_store_error(struct req_ctx *c, enum store_rc rc);

/* Starts a POST /orders whose body is in c->body (handlers.c). */
enum MHD_Result handle_create(struct req_ctx *c);
/* Answers a POST /orders the committer has finished. */
enum MHD_Result handle_create_done(struct req_ctx *c);
/* Every other route. */
enum MHD_Result handle_request(struct req_ctx *c);
/* Marks c suspended (it is resumed by the committer or by shutdown). */
void http_suspend(struct req_ctx *c);

/* Requests by route and status, and the /metrics page (metrics_api.c). */
void metrics_api_count(enum route r, int status);

/* Why a POST /orders was refused, by its status: 400, 413, 414, 415, 422,
 * 431 invalid; 401, 403 auth; 429 rate limited; 503 unavailable (overloaded
 * included: api_metrics.overloaded counts those apart); anything else error. */
enum refused_reason {
    REFUSED_INVALID,
    REFUSED_AUTH,
    REFUSED_RATE_LIMITED,
    REFUSED_UNAVAILABLE,
    REFUSED_ERROR,
    REFUSED_COUNT
};
void metrics_api_order_refused(int status);

/* Totals since the start, for the EMF lines. */
struct api_request_totals {
    uint64_t all;
    uint64_t server_errors; /* 5xx */
    uint64_t auth_failures; /* 401 and 403 */
    uint64_t rate_limited;  /* 429 */
    uint64_t orders_refused[REFUSED_COUNT];
};
void metrics_api_totals(struct api_request_totals *t);
enum MHD_Result metrics_api_page(struct req_ctx *c);

#endif
