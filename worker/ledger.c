/*
 * ledger.c - the worker's SQL: classify delivered messages, pay orders.
 *
 * Payment at most once: the PENDING -> PROCESSED update and the payments row
 * (unique per order) are one statement, hence one transaction. A redelivered
 * or duplicated message finds the order no longer PENDING and pays nothing;
 * a cancel that wins the row lock first leaves nothing to pay either. The
 * same statement appends the order.processed event (event_outbox.h), so the
 * event exists exactly when the payment does.
 *
 * Statements are sent and their answers collected separately, so the event
 * loop never waits for PostgreSQL: it sends, polls the connection's socket
 * with its SQS sockets, and reads the answer when it is in.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "event_outbox.h"
#include "log.h"
#include "worker.h"

static char actor[64];

/* Rows come back numbered by their message's position in the arrays (ord),
 * so a batch of hundreds is matched without a search. */
static const char lookup_sql[] =
    "WITH found AS ("
    "  SELECT o.id, o.status, o.correlation_id,"
    "         (extract(epoch FROM o.created_at) * 1000)::bigint AS created_ms"
    "  FROM orders o WHERE o.id = ANY($1::uuid[])"
    "), m AS ("
    "  SELECT * FROM unnest($1::uuid[], $2::int[], $3::text[]) WITH ORDINALITY"
    "         AS t(id, receive_count, message_id, ord)"
    "), ev AS ("
    "  INSERT INTO order_events (order_id, step, actor, correlation_id, detail)"
    "  SELECT f.id, s.step, $4, f.correlation_id,"
    "         CASE WHEN s.step = 'DELIVERED' THEN jsonb_build_object('receive_count',"
    "              m.receive_count, 'message_id', m.message_id) ELSE '{}'::jsonb END"
    "  FROM found f JOIN m ON m.id = f.id"
    "  CROSS JOIN (VALUES (1, 'DELIVERED'), (2, 'PAYMENT_STARTED')) AS s(ord, step)"
    "  WHERE f.status = 'PENDING'"
    ")"
    "SELECT m.ord, f.status, f.correlation_id, f.created_ms FROM found f JOIN m ON m.id = f.id";

/* The order.processed event of each row paid returns (event_outbox.h). */
#define PROCESSED_EVENT EVENT_OUTBOX_APPEND(EVENT_PROCESSED, "paid")

static const char pay_sql[] =
    "WITH input AS (SELECT DISTINCT ON (id) id, ord"
    "  FROM unnest($1::uuid[]) WITH ORDINALITY AS t(id, ord) ORDER BY id, ord),"
    " paid AS ("
    "  UPDATE orders o SET status = 'PROCESSED', processed_at = now(), updated_at = now()"
    "  FROM input WHERE o.id = input.id AND o.status = 'PENDING'"
    "  RETURNING o.id, input.ord, o.total_cents, o.currency, o.correlation_id),"
    " pay AS ("
    "  INSERT INTO payments (order_id, amount_cents, currency, worker)"
    "  SELECT id, total_cents, currency, $2 FROM paid ON CONFLICT (order_id) DO NOTHING),"
    " ev AS ("
    "  INSERT INTO order_events (order_id, step, actor, correlation_id, detail)"
    "  SELECT p.id, s.step, $2, p.correlation_id,"
    "         CASE WHEN s.step = 'PAYMENT_APPROVED' THEN jsonb_build_object('amount_cents',"
    "              p.total_cents, 'currency', p.currency) ELSE '{}'::jsonb END"
    "  FROM paid p CROSS JOIN (VALUES (1, 'PAYMENT_APPROVED'), (2, 'PROCESSED')) AS s(ord, step)),"
    " evo AS (" PROCESSED_EVENT ")"
    "SELECT ord FROM paid";

static int ensure(struct ledger *l, char *err, size_t errlen)
{
    if (l->db && PQstatus(l->db) == CONNECTION_OK)
        return 0;
    if (db_ensure(&l->db, wcfg.database_url, "order-worker", err, errlen) != 0)
        return -1;
    PGresult *r1 = PQprepare(l->db, "lookup", lookup_sql, 4, NULL);
    PGresult *r2 = PQprepare(l->db, "pay", pay_sql, 2, NULL);
    int ok = PQresultStatus(r1) == PGRES_COMMAND_OK && PQresultStatus(r2) == PGRES_COMMAND_OK;
    if (!ok) {
        db_error(l->db, PQresultStatus(r1) != PGRES_COMMAND_OK ? r1 : r2, err, errlen);
        PQfinish(l->db);
        l->db = NULL;
    }
    PQclear(r1);
    PQclear(r2);
    return ok ? 0 : -1;
}

void ledger_init(void)
{
    snprintf(actor, sizeof(actor), "order-worker/%s", log_instance_id());
}

int ledger_connect(struct ledger *l, char *err, size_t errlen)
{
    return ensure(l, err, errlen);
}

void ledger_close(struct ledger *l)
{
    if (l->db)
        PQfinish(l->db);
    l->db = NULL;
    l->busy = false;
}

int ledger_socket(const struct ledger *l)
{
    return l->db && l->busy ? PQsocket(l->db) : -1;
}

static int send_prepared(struct ledger *l, const char *name, int n, const char *const *p, char *err,
                         size_t errlen)
{
    if (ensure(l, err, errlen) != 0)
        return -1;
    if (!PQsendQueryPrepared(l->db, name, n, p, NULL, NULL, 0)) {
        db_error(l->db, NULL, err, errlen);
        if (PQstatus(l->db) != CONNECTION_OK)
            ledger_close(l);
        return -1;
    }
    l->busy = true;
    return 0;
}

int ledger_send_lookup(struct ledger *l, struct held **h, size_t n, char *err, size_t errlen)
{
    struct buf ids, counts, mids;
    db_array_init(&ids);
    db_array_init(&counts);
    db_array_init(&mids);
    for (size_t i = 0; i < n; i++) {
        db_array_add(&ids, h[i]->order_id);
        db_array_add_int(&counts, h[i]->receive_count);
        db_array_add(&mids, h[i]->message_id);
    }
    const char *p[] = {db_array_finish(&ids), db_array_finish(&counts), db_array_finish(&mids),
                       actor};
    int rc = -1;
    if (!p[0] || !p[1] || !p[2])
        snprintf(err, errlen, "out of memory building the lookup");
    else
        rc = send_prepared(l, "lookup", 4, p, err, errlen);
    buf_free(&ids);
    buf_free(&counts);
    buf_free(&mids);
    return rc;
}

int ledger_send_pay(struct ledger *l, struct held **h, size_t n, char *err, size_t errlen)
{
    struct buf ids;
    db_array_init(&ids);
    for (size_t i = 0; i < n; i++)
        db_array_add(&ids, h[i]->order_id);
    const char *p[] = {db_array_finish(&ids), actor};
    int rc = -1;
    if (!p[0])
        snprintf(err, errlen, "out of memory building the payment");
    else
        rc = send_prepared(l, "pay", 2, p, err, errlen);
    buf_free(&ids);
    return rc;
}

int ledger_result(struct ledger *l, PGresult **res, char *err, size_t errlen)
{
    *res = NULL;
    if (!l->busy)
        return 0;
    if (!PQconsumeInput(l->db)) {
        db_error(l->db, NULL, err, errlen);
        ledger_close(l);
        return -1;
    }
    if (PQisBusy(l->db))
        return 0;
    PGresult *r = PQgetResult(l->db), *extra;
    while ((extra = PQgetResult(l->db)))
        PQclear(extra);
    l->busy = false;
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        db_error(l->db, r, err, errlen);
        PQclear(r);
        if (PQstatus(l->db) != CONNECTION_OK)
            ledger_close(l);
        return -1;
    }
    *res = r;
    return 1;
}

void ledger_read_lookup(const PGresult *r, struct held **h, size_t n, enum ledger_status *out)
{
    for (size_t i = 0; i < n; i++)
        out[i] = LEDGER_MISSING;
    for (int row = 0; row < PQntuples(r); row++) {
        long long ord = strtoll(PQgetvalue(r, row, 0), NULL, 10);
        if (ord < 1 || (size_t)ord > n)
            continue;
        size_t i = (size_t)ord - 1;
        out[i] = strcmp(PQgetvalue(r, row, 1), "PENDING") == 0 ? LEDGER_PENDING : LEDGER_DONE;
        /* The row is the source of truth for the correlation id. */
        util_strlcpy(h[i]->correlation_id, PQgetvalue(r, row, 2), sizeof(h[i]->correlation_id));
        h[i]->order_created_ms = strtoll(PQgetvalue(r, row, 3), NULL, 10);
    }
}

void ledger_read_pay(const PGresult *r, size_t n, bool *paid)
{
    for (size_t i = 0; i < n; i++)
        paid[i] = false;
    /* Two messages for one order: only the first is the payment. */
    for (int row = 0; row < PQntuples(r); row++) {
        long long ord = strtoll(PQgetvalue(r, row, 0), NULL, 10);
        if (ord >= 1 && (size_t)ord <= n)
            paid[ord - 1] = true;
    }
}
