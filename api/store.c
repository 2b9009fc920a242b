/*
 * store.c - SQL for order-api's reads and cancellation, one connection per
 * HTTP thread (a pthread key frees it when the thread ends).
 *
 * Cancellation and payment race on the same row: both are single conditional
 * UPDATEs (WHERE status = 'PENDING'), so PostgreSQL's row lock decides, and
 * whichever loses sees the other's result and changes nothing. A cancel
 * appends its order.canceled event in the same statement.
 */
#include "store.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "db.h"
#include "event_outbox.h"
#include "log.h"

static pthread_key_t store_key;

#define TS(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
/* clang-format off */
#define ORDER_COLUMNS                                                                              \
    "id::text, status, customer_id, currency, items::text, total_cents, correlation_id, "         \
    TS("created_at") ", " TS("updated_at") ", " TS("processed_at") ", " TS("canceled_at") ", "   \
    "(extract(epoch FROM created_at) * 1000000)::bigint, failure_reason"
/* clang-format on */

/* $N::text IS NULL OR customer_id = $N: a caller without the admin scope
 * passes its own customer and sees nothing else; another customer's order
 * answers exactly as one that does not exist. */
#define TENANT(n) "($" #n "::text IS NULL OR customer_id = $" #n ")"

static void conn_free(void *p)
{
    PQfinish((PGconn *)p);
}

void store_init(void)
{
    pthread_key_create(&store_key, conn_free);
}

void store_shutdown(void)
{
    PGconn *c = pthread_getspecific(store_key);
    if (c) {
        PQfinish(c);
        pthread_setspecific(store_key, NULL);
    }
}

static PGconn *conn(void)
{
    PGconn *c = pthread_getspecific(store_key);
    char err[512];
    if (db_ensure(&c, api_cfg.database_url, "order-api", err, sizeof(err)) != 0) {
        pthread_setspecific(store_key, NULL);
        log_warn(NULL, "database unavailable: %s", err);
        return NULL;
    }
    pthread_setspecific(store_key, c);
    return c;
}

static enum store_rc failed(PGconn *c, PGresult *r)
{
    char err[512];
    enum store_rc rc = db_is_connection_error(c, r) ? STORE_UNAVAILABLE : STORE_ERROR;
    db_error(c, r, err, sizeof(err));
    log_error(NULL, "query failed: %s", err);
    PQclear(r);
    atomic_fetch_add(&api_metrics.db_errors, 1);
    return rc;
}

static const char *opt(PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? NULL : PQgetvalue(r, row, col);
}

static json_t *order_row(PGresult *r, int row)
{
    json_t *items = json_loads(PQgetvalue(r, row, 4), 0, NULL);
    struct order_view v = {.id = PQgetvalue(r, row, 0),
                           .status = PQgetvalue(r, row, 1),
                           .customer_id = PQgetvalue(r, row, 2),
                           .currency = PQgetvalue(r, row, 3),
                           .items = items,
                           .total_cents = strtoll(PQgetvalue(r, row, 5), NULL, 10),
                           .correlation_id = PQgetvalue(r, row, 6),
                           .created_at = PQgetvalue(r, row, 7),
                           .updated_at = PQgetvalue(r, row, 8),
                           .processed_at = opt(r, row, 9),
                           .canceled_at = opt(r, row, 10),
                           .failure_reason = opt(r, row, 12)};
    json_t *o = order_json(&v);
    json_decref(items);
    return o;
}

enum store_rc store_ping(void)
{
    PGconn *c = conn();
    if (!c)
        return STORE_UNAVAILABLE;
    PGresult *r = PQexec(c, "SELECT 1");
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        return failed(c, r);
    PQclear(r);
    return STORE_OK;
}

enum store_rc store_get_order(const char *id, const char *customer, json_t **order)
{
    PGconn *c = conn();
    if (!c)
        return STORE_UNAVAILABLE;
    const char *p[] = {id, customer};
    PGresult *r =
        PQexecParams(c, "SELECT " ORDER_COLUMNS " FROM orders WHERE id = $1 AND " TENANT(2), 2,
                     NULL, p, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        return failed(c, r);
    enum store_rc rc = STORE_NOT_FOUND;
    if (PQntuples(r) == 1) {
        *order = order_row(r, 0);
        rc = *order ? STORE_OK : STORE_ERROR; /* out of memory */
    }
    PQclear(r);
    return rc;
}

enum store_rc store_list_orders(const char *customer, const char *status, int limit,
                                int64_t cursor_us, const char *cursor_id, json_t **orders,
                                char **next_cursor)
{
    char lim[16], cur[32];
    PGconn *c = conn();
    if (!c)
        return STORE_UNAVAILABLE;
    /* one row more than the page tells whether another page exists */
    snprintf(lim, sizeof(lim), "%d", limit + 1);
    snprintf(cur, sizeof(cur), "%lld", (long long)cursor_us);
    /* Keyset pagination on (created_at, id): rows inserted while a client pages
     * are newer than its cursor, so pages neither skip nor repeat rows. */
    const char *p[] = {status, lim, cursor_id ? cur : NULL, cursor_id, customer};
    PGresult *r = PQexecParams(
        c,
        "SELECT " ORDER_COLUMNS " FROM orders"
        " WHERE ($1::text IS NULL OR status = $1) AND " TENANT(
            5) ""
               "   AND ($3::bigint IS NULL OR (created_at, id) <"
               "        (timestamptz 'epoch' + $3::bigint * interval '1 microsecond', $4::uuid))"
               " ORDER BY created_at DESC, id DESC LIMIT $2::int",
        5, NULL, p, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        return failed(c, r);
    /* All or nothing: a page missing an order (out of memory) would read as
     * a complete page, and a lost cursor as the last one. */
    *next_cursor = NULL;
    *orders = json_array();
    int n = PQntuples(r) > limit ? limit : PQntuples(r);
    bool ok = *orders != NULL;
    for (int i = 0; ok && i < n; i++)
        ok = json_array_append_new(*orders, order_row(r, i)) == 0;
    if (ok && PQntuples(r) > limit &&
        asprintf(next_cursor, "%s_%s", PQgetvalue(r, n - 1, 11), PQgetvalue(r, n - 1, 0)) < 0) {
        *next_cursor = NULL;
        ok = false;
    }
    PQclear(r);
    if (!ok) {
        json_decref(*orders);
        *orders = NULL;
        return STORE_ERROR;
    }
    return STORE_OK;
}

enum store_rc store_order_events(const char *id, const char *customer, json_t **events)
{
    PGconn *c = conn();
    if (!c)
        return STORE_UNAVAILABLE;
    const char *p[] = {id, customer};
    PGresult *r = PQexecParams(
        c,
        "SELECT " TS("e.at") ", e.step, e.actor, e.correlation_id,"
                             " e.detail::text FROM orders o"
                             " LEFT JOIN order_events e ON e.order_id = o.id"
                             " WHERE o.id = $1 AND ($2::text IS NULL OR o.customer_id = $2)"
                             " ORDER BY e.at, e.id",
        2, NULL, p, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        return failed(c, r);
    if (PQntuples(r) == 0) {
        PQclear(r);
        return STORE_NOT_FOUND;
    }
    *events = json_array();
    bool ok = *events != NULL;
    for (int i = 0; ok && i < PQntuples(r); i++) {
        if (PQgetisnull(r, i, 1))
            continue; /* an order without events (only before migration 003) */
        json_t *detail = json_loads(PQgetvalue(r, i, 4), 0, NULL);
        if (!detail)
            detail = json_object();
        /* "o" takes the reference even when the pack fails */
        ok = detail &&
             json_array_append_new(
                 *events, json_pack("{s:s, s:s, s:s, s:s, s:o}", "at", PQgetvalue(r, i, 0), "step",
                                    PQgetvalue(r, i, 1), "actor", PQgetvalue(r, i, 2),
                                    "correlation_id", PQgetvalue(r, i, 3), "detail", detail)) == 0;
    }
    PQclear(r);
    if (!ok) { /* all or nothing: a timeline missing a step would mislead */
        json_decref(*events);
        *events = NULL;
        return STORE_ERROR;
    }
    return STORE_OK;
}

/* The order.canceled event of the row upd returns (event_outbox.h). */
#define CANCELED_EVENT EVENT_OUTBOX_APPEND(EVENT_CANCELED, "upd")

enum store_rc store_cancel_order(const char *id, const char *customer, const char *principal,
                                 const char *correlation_id, json_t **order)
{
    char actor[64];
    PGconn *c = conn();
    if (!c)
        return STORE_UNAVAILABLE;
    snprintf(actor, sizeof(actor), "order-api/%s", log_instance_id());
    const char *p[] = {id, actor, correlation_id, customer, principal};
    PGresult *r = PQexecParams(
        c,
        "WITH upd AS (UPDATE orders SET status = 'CANCELED', canceled_at = now(),"
        "   updated_at = now() WHERE id = $1 AND status = 'PENDING' AND " TENANT(
            4) ""
               "   RETURNING id, correlation_id),"
               " ev AS (INSERT INTO order_events (order_id, step, actor, correlation_id, detail)"
               "   SELECT id, 'CANCELED', $2, correlation_id,"
               "          jsonb_build_object('request_correlation_id', $3::text,"
               "                             'canceled_by', $5::text) FROM upd),"
               " evo AS (" CANCELED_EVENT ")"
               " SELECT count(*) FROM upd",
        5, NULL, p, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        return failed(c, r);
    bool canceled = strcmp(PQgetvalue(r, 0, 0), "1") == 0;
    PQclear(r);
    if (canceled)
        atomic_fetch_add(&api_metrics.orders_canceled, 1);
    enum store_rc rc = store_get_order(id, customer, order);
    if (rc != STORE_OK)
        return rc;
    if (canceled)
        return STORE_OK;
    /* Not PENDING: already CANCELED is fine (idempotent), PROCESSED and FAILED
     * conflict (the caller reads the status from *order). */
    const char *st = json_string_value(json_object_get(*order, "status"));
    return (st && strcmp(st, "CANCELED") == 0) ? STORE_OK : STORE_CONFLICT;
}
