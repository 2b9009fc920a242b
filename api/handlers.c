/*
 * handlers.c - what each order-api route does: create (handed to the
 * committer), read, list, timeline, cancel, health and readiness.
 *
 * Handlers run on libmicrohttpd's threads and answer through http.h's
 * helpers; reads and cancels go to store.c, creates to the committer, so no
 * handler ever holds a connection while waiting for a commit.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "guard.h"
#include "http.h"
#include "log.h"
#include "trace.h"

#define LIST_DEFAULT_LIMIT 20
#define LIST_MAX_LIMIT 100

extern char *http_openapi_doc;
extern size_t http_openapi_len;

static void job_done(struct create_job *j, void *arg)
{
    (void)j;
    MHD_resume_connection((struct MHD_Connection *)arg);
}

/* True when the outbox holds OUTBOX_MAX_BACKLOG unsent rows or more: new
 * orders are refused until the publisher catches up. Counted each time,
 * logged at most once a second with how many were refused since. */
static bool overloaded(void)
{
    static _Atomic int64_t last_log_ms;
    static _Atomic uint64_t since_log;
    int64_t limit = api_cfg.outbox_max_backlog, backlog = publisher_backlog();
    if (limit == 0 || backlog < limit)
        return false;
    atomic_fetch_add(&api_metrics.overloaded, 1);
    uint64_t n = atomic_fetch_add(&since_log, 1) + 1;
    int64_t now = util_mono_ms(), last = atomic_load(&last_log_ms);
    if ((last == 0 || now - last >= 1000) &&
        atomic_compare_exchange_strong(&last_log_ms, &last, now)) {
        atomic_fetch_sub(&since_log, n);
        log_kv(LOG_WARN, NULL,
               "overloaded: the outbox backlog is at OUTBOX_MAX_BACKLOG; POST /orders answers 503",
               "backlog", (long long)backlog, "limit", (long long)limit, "refused", (long long)n,
               NULL);
    }
    return true;
}

enum MHD_Result handle_create(struct req_ctx *c)
{
    struct order_errors errs;

    if (overloaded()) {
        static const char *const h[] = {"Retry-After", "5", NULL};
        return http_send_error(c, 503, "overloaded",
                               "too many accepted orders are still waiting to be sent to the "
                               "queue; retry later",
                               NULL, NULL, h);
    }
    struct create_job *j = calloc(1, sizeof(*j));

    if (!j)
        return http_send_error(c, 500, "internal", "out of memory", NULL, NULL, NULL);
    const char *own = c->caller.authenticated ? c->caller.customer : NULL;
    if (order_parse_for(c->body.data ? c->body.data : "", c->body.len, own, &j->req, &errs) != 0) {
        free(j);
        return http_send_json(
            c, errs.status, order_error_json(errs.code, errs.message, errs.details, errs.n), NULL);
    }
    if (own && !c->caller.admin && strcmp(j->req.customer_id, own) != 0) {
        free(j);
        return http_send_error(c, 403, "forbidden",
                               "orders may only be placed for your own customer", "customer_id",
                               "must be your own customer (or omitted)", NULL);
    }
    util_strlcpy(j->principal, c->caller.principal, sizeof(j->principal));
    const char *key = MHD_lookup_connection_value(c->conn, MHD_HEADER_KIND, "Idempotency-Key");
    if (key) {
        size_t n = strlen(key);
        bool ok = n >= 1 && n <= 255;
        for (size_t i = 0; ok && i < n; i++)
            ok = key[i] >= 0x21 && key[i] <= 0x7e;
        if (!ok) {
            free(j);
            return http_send_error(c, 400, "invalid_header", "Idempotency-Key is not valid",
                                   "Idempotency-Key", "must be 1-255 printable ASCII characters",
                                   NULL);
        }
        memcpy(j->idempotency_key, key, n + 1);
        if (order_request_hash(&j->req) != 0) {
            free(j);
            return http_send_error(c, 500, "internal", "out of memory", NULL, NULL, NULL);
        }
    }
    util_uuid_v4(j->id);
    util_strlcpy(j->correlation_id, c->correlation_id, sizeof(j->correlation_id));
    trace_traceparent(MHD_lookup_connection_value(c->conn, MHD_HEADER_KIND, "traceparent"),
                      j->traceparent);
    trace_xray_header(MHD_lookup_connection_value(c->conn, MHD_HEADER_KIND, "X-Amzn-Trace-Id"),
                      (long long)time(NULL), j->trace_header, sizeof(j->trace_header));
    j->done = job_done;
    j->done_arg = c->conn;
    c->job = j;
    /* Suspend before submitting: the committer may resume us at once. */
    http_suspend(c);
    committer_submit(j);
    return MHD_YES;
}

enum MHD_Result handle_create_done(struct req_ctx *c)
{
    struct create_job *j = c->job;
    char location[64];
    const char *h201[] = {"Location", location, NULL, NULL, NULL};
    static const char *const h503[] = {"Retry-After", "2", NULL};
    const char *const *h = NULL;

    if (j->status == 201) {
        snprintf(location, sizeof(location), "/orders/%s", j->id);
        if (j->replayed) {
            /* the stored response names the original order */
            json_t *o = json_loads(j->response_body, 0, NULL);
            const char *id = o ? json_string_value(json_object_get(o, "id")) : NULL;
            if (id)
                snprintf(location, sizeof(location), "/orders/%s", id);
            json_decref(o);
            h201[2] = "Idempotent-Replayed";
            h201[3] = "true";
        }
        h = h201;
    } else if (j->status == 503) {
        h = h503;
    }
    enum MHD_Result ret = http_send_text(c, j->status, "application/json", j->response_body,
                                         j->response_body ? strlen(j->response_body) : 0, h);
    return ret;
}

static const char *const list_params[] = {"status", "limit", "cursor", "customer_id", NULL};

struct param_scan {
    const char *unknown; /* the first parameter GET /orders does not have */
    const char *nul;     /* the first one whose value holds a NUL (%00) */
};

/* With the lengths libmicrohttpd decoded: a value with an embedded NUL would
 * otherwise be read cut at it (a customer_id of 200 bytes passing as 10). */
static enum MHD_Result scan_param(void *cls, enum MHD_ValueKind kind, const char *key,
                                  size_t key_size, const char *value, size_t value_size)
{
    struct param_scan *s = cls;
    (void)kind;
    for (size_t i = 0; list_params[i]; i++) {
        if (strcmp(key, list_params[i]) == 0) {
            if (key_size != strlen(key) || (value && value_size != strlen(value))) {
                s->nul = list_params[i];
                return MHD_NO;
            }
            return MHD_YES;
        }
    }
    s->unknown = key;
    return MHD_NO; /* stop at the first unknown one */
}

static enum MHD_Result list_orders(struct req_ctx *c)
{
    struct param_scan scan = {0};
    MHD_get_connection_values_n(c->conn, MHD_GET_ARGUMENT_KIND, scan_param, &scan);
    if (scan.unknown) {
        char field[64];
        util_strlcpy(field, scan.unknown, sizeof(field));
        return http_send_error(c, 400, "invalid_parameter", "unknown query parameter", field,
                               "is not a parameter of GET /orders (status, limit, cursor, "
                               "customer_id)",
                               NULL);
    }
    if (scan.nul)
        return http_send_error(c, 400, "invalid_parameter", "query parameter holds a NUL", scan.nul,
                               "must not contain %00", NULL);
    const char *customer = req_tenant(c);
    const char *filter = MHD_lookup_connection_value(c->conn, MHD_GET_ARGUMENT_KIND, "customer_id");
    if (filter) {
        size_t fl = strlen(filter);
        if (fl == 0 || fl > ORDER_MAX_STR)
            return http_send_error(c, 400, "invalid_parameter", "customer_id is not valid",
                                   "customer_id", "must be 1-128 bytes", NULL);
        if (customer && strcmp(filter, customer) != 0)
            return http_send_error(c, 403, "forbidden",
                                   "listing another customer's orders needs "
                                   "the admin scope",
                                   "customer_id", "must be your own customer", NULL);
        customer = filter;
    }
    const char *status = MHD_lookup_connection_value(c->conn, MHD_GET_ARGUMENT_KIND, "status");
    const char *limit_s = MHD_lookup_connection_value(c->conn, MHD_GET_ARGUMENT_KIND, "limit");
    const char *cursor = MHD_lookup_connection_value(c->conn, MHD_GET_ARGUMENT_KIND, "cursor");
    int limit = LIST_DEFAULT_LIMIT;
    long long cursor_us = 0;
    char cursor_id[UUID_STR_LEN] = "";

    if (status && strcmp(status, "PENDING") != 0 && strcmp(status, "PROCESSED") != 0 &&
        strcmp(status, "CANCELED") != 0 && strcmp(status, "FAILED") != 0)
        return http_send_error(c, 400, "invalid_parameter", "status is not valid", "status",
                               "must be PENDING, PROCESSED, FAILED or CANCELED", NULL);
    if (limit_s) {
        char *end;
        long v = strtol(limit_s, &end, 10);
        if (*limit_s == '\0' || *end || v < 1 || v > LIST_MAX_LIMIT)
            return http_send_error(c, 400, "invalid_parameter", "limit is not valid", "limit",
                                   "must be an integer between 1 and 100", NULL);
        limit = (int)v;
    }
    if (cursor) {
        char *end;
        errno = 0;
        cursor_us = strtoll(cursor, &end, 10);
        /* a cursor is a creation time in microseconds: refuse what no row can have
         * (negative, or past year 2255) rather than let PostgreSQL overflow */
        if (end == cursor || errno || cursor_us < 0 || cursor_us > 9000000000000000LL ||
            *end != '_' || strlen(end + 1) != 36 || !util_is_uuid(end + 1))
            return http_send_error(c, 400, "invalid_parameter", "cursor is not valid", "cursor",
                                   "use the next_cursor value of a previous page", NULL);
        memcpy(cursor_id, end + 1, UUID_STR_LEN);
    }
    json_t *orders;
    char *next = NULL;
    enum store_rc rc = store_list_orders(customer, status, limit, cursor_us,
                                         cursor ? cursor_id : NULL, &orders, &next);
    if (rc != STORE_OK)
        return http_send_store_error(c, rc);
    json_t *body = json_pack("{s:o, s:s?}", "orders", orders, "next_cursor", next);
    free(next);
    return http_send_json(c, 200, body, NULL);
}

enum MHD_Result handle_request(struct req_ctx *c)
{
    json_t *o = NULL;
    enum store_rc rc;

    switch (c->route) {
    case R_HEALTHZ:
        return http_send_json(c, 200, json_pack("{s:s}", "status", "ok"), NULL);
    case R_READYZ:
        if (!guard_ready())
            return http_send_json(
                c, 503,
                json_pack("{s:s, s:s}", "status", "unavailable", "auth", "signing keys not loaded"),
                (const char *const[]){"Retry-After", "2", NULL});
        if (store_ping() != STORE_OK)
            return http_send_json(
                c, 503, json_pack("{s:s, s:s}", "status", "unavailable", "database", "unreachable"),
                (const char *const[]){"Retry-After", "2", NULL});
        return http_send_json(c, 200, json_pack("{s:s, s:s}", "status", "ready", "database", "ok"),
                              NULL);
    case R_METRICS:
        return metrics_api_page(c);
    case R_OPENAPI:
        if (!http_openapi_doc)
            return http_send_error(c, 404, "not_found", "the OpenAPI document is not installed",
                                   NULL, NULL, NULL);
        return http_send_text(c, 200, "application/yaml", http_openapi_doc, http_openapi_len, NULL);
    case R_ORDERS: /* GET; POST goes through create_order */
        return list_orders(c);
    case R_ORDER:
        rc = store_get_order(c->id, req_tenant(c), &o);
        return rc == STORE_OK ? http_send_json(c, 200, o, NULL) : http_send_store_error(c, rc);
    case R_ORDER_EVENTS:
        rc = store_order_events(c->id, req_tenant(c), &o);
        if (rc != STORE_OK)
            return http_send_store_error(c, rc);
        return http_send_json(c, 200, json_pack("{s:s, s:o}", "order_id", c->id, "events", o),
                              NULL);
    case R_ORDER_CANCEL:
        rc = store_cancel_order(c->id, req_tenant(c),
                                c->caller.principal[0] ? c->caller.principal : NULL,
                                c->correlation_id, &o);
        if (rc == STORE_OK)
            return http_send_json(c, 200, o, NULL);
        if (rc == STORE_CONFLICT) {
            /* PROCESSED or FAILED: both final, neither can be canceled */
            const char *st = json_string_value(json_object_get(o, "status"));
            bool failed = st && strcmp(st, "FAILED") == 0;
            json_decref(o);
            return http_send_error(c, 409, "conflict",
                                   failed ? "the order has FAILED and cannot be canceled"
                                          : "the order is already PROCESSED and cannot be canceled",
                                   "status", failed ? "is FAILED" : "is PROCESSED", NULL);
        }
        return http_send_store_error(c, rc);
    default:
        return http_send_error(c, 404, "not_found", "no such route", NULL, NULL, NULL);
    }
}
