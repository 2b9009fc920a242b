/*
 * ledger.c - the worker's SQL: classify delivered messages, pay orders.
 *
 * Payment at most once: the PENDING -> PROCESSED update and the payments row
 * (unique per order) are one statement, hence one transaction. A redelivered
 * or duplicated message finds the order no longer PENDING and pays nothing;
 * a cancel that wins the row lock first leaves nothing to pay either.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "log.h"
#include "worker.h"

static PGconn *ldb;
static char actor[64];

static const char lookup_sql[] =
    "WITH found AS ("
    "  SELECT o.id, o.status, o.correlation_id,"
    "         (extract(epoch FROM o.created_at) * 1000)::bigint AS created_ms"
    "  FROM orders o WHERE o.id = ANY($1::uuid[])"
    "), m AS ("
    "  SELECT * FROM unnest($1::uuid[], $2::int[], $3::text[]) AS t(id, receive_count, message_id)"
    "), ev AS ("
    "  INSERT INTO order_events (order_id, step, actor, correlation_id, detail)"
    "  SELECT f.id, s.step, $4, f.correlation_id,"
    "         CASE WHEN s.step = 'DELIVERED' THEN jsonb_build_object('receive_count',"
    "              m.receive_count, 'message_id', m.message_id) ELSE '{}'::jsonb END"
    "  FROM found f JOIN m ON m.id = f.id"
    "  CROSS JOIN (VALUES (1, 'DELIVERED'), (2, 'PAYMENT_STARTED')) AS s(ord, step)"
    "  WHERE f.status = 'PENDING'"
    ")"
    "SELECT id::text, status, correlation_id, created_ms FROM found";

static const char pay_sql[] =
    "WITH input AS (SELECT DISTINCT unnest($1::uuid[]) AS id),"
    " paid AS ("
    "  UPDATE orders o SET status = 'PROCESSED', processed_at = now(), updated_at = now()"
    "  FROM input WHERE o.id = input.id AND o.status = 'PENDING'"
    "  RETURNING o.id, o.total_cents, o.currency, o.correlation_id),"
    " pay AS ("
    "  INSERT INTO payments (order_id, amount_cents, currency, worker)"
    "  SELECT id, total_cents, currency, $2 FROM paid ON CONFLICT (order_id) DO NOTHING),"
    " ev AS ("
    "  INSERT INTO order_events (order_id, step, actor, correlation_id, detail)"
    "  SELECT p.id, s.step, $2, p.correlation_id,"
    "         CASE WHEN s.step = 'PAYMENT_APPROVED' THEN jsonb_build_object('amount_cents',"
    "              p.total_cents, 'currency', p.currency) ELSE '{}'::jsonb END"
    "  FROM paid p CROSS JOIN (VALUES (1, 'PAYMENT_APPROVED'), (2, 'PROCESSED')) AS s(ord, step))"
    "SELECT id::text FROM paid";

static int ensure(char *err, size_t errlen)
{
    if (ldb && PQstatus(ldb) == CONNECTION_OK)
        return 0;
    if (db_ensure(&ldb, wcfg.database_url, "order-worker", err, errlen) != 0)
        return -1;
    PGresult *r1 = PQprepare(ldb, "lookup", lookup_sql, 4, NULL);
    PGresult *r2 = PQprepare(ldb, "pay", pay_sql, 2, NULL);
    int ok = PQresultStatus(r1) == PGRES_COMMAND_OK && PQresultStatus(r2) == PGRES_COMMAND_OK;
    if (!ok) {
        db_error(ldb, PQresultStatus(r1) != PGRES_COMMAND_OK ? r1 : r2, err, errlen);
        PQfinish(ldb);
        ldb = NULL;
    }
    PQclear(r1);
    PQclear(r2);
    return ok ? 0 : -1;
}

int ledger_connect(char *err, size_t errlen)
{
    snprintf(actor, sizeof(actor), "order-worker/%s", log_instance_id());
    return ensure(err, errlen);
}

void ledger_close(void)
{
    if (ldb)
        PQfinish(ldb);
    ldb = NULL;
}

int ledger_lookup(struct held **h, size_t n, enum ledger_status *out, char *err, size_t errlen)
{
    struct buf ids, counts, mids;
    int rc = -1;

    if (ensure(err, errlen) != 0)
        return -1;
    db_array_init(&ids);
    db_array_init(&counts);
    db_array_init(&mids);
    for (size_t i = 0; i < n; i++) {
        db_array_add(&ids, h[i]->order_id);
        db_array_add_int(&counts, h[i]->receive_count);
        db_array_add(&mids, h[i]->message_id);
        out[i] = LEDGER_MISSING;
    }
    const char *p[] = {db_array_finish(&ids), db_array_finish(&counts), db_array_finish(&mids),
                       actor};
    PGresult *r = PQexecPrepared(ldb, "lookup", 4, p, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        db_error(ldb, r, err, errlen);
        goto out;
    }
    for (int row = 0; row < PQntuples(r); row++) {
        const char *id = PQgetvalue(r, row, 0);
        bool pending = strcmp(PQgetvalue(r, row, 1), "PENDING") == 0;
        for (size_t i = 0; i < n; i++) {
            if (strcmp(h[i]->order_id, id) != 0)
                continue;
            out[i] = pending ? LEDGER_PENDING : LEDGER_DONE;
            /* The row is the source of truth for the correlation id. */
            util_strlcpy(h[i]->correlation_id, PQgetvalue(r, row, 2), sizeof(h[i]->correlation_id));
            h[i]->order_created_ms = strtoll(PQgetvalue(r, row, 3), NULL, 10);
        }
    }
    rc = 0;
out:
    PQclear(r);
    buf_free(&ids);
    buf_free(&counts);
    buf_free(&mids);
    return rc;
}

int ledger_pay(struct held **h, size_t n, bool *paid, char *err, size_t errlen)
{
    struct buf ids;
    int rc = -1;

    if (ensure(err, errlen) != 0)
        return -1;
    db_array_init(&ids);
    for (size_t i = 0; i < n; i++) {
        db_array_add(&ids, h[i]->order_id);
        paid[i] = false;
    }
    const char *p[] = {db_array_finish(&ids), actor};
    PGresult *r = PQexecPrepared(ldb, "pay", 2, p, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        db_error(ldb, r, err, errlen);
        goto out;
    }
    for (int row = 0; row < PQntuples(r); row++) {
        const char *id = PQgetvalue(r, row, 0);
        /* Two messages for one order: only the first is the payment. */
        for (size_t i = 0; i < n; i++)
            if (strcmp(h[i]->order_id, id) == 0) {
                paid[i] = true;
                break;
            }
    }
    rc = 0;
out:
    PQclear(r);
    buf_free(&ids);
    return rc;
}
