/*
 * ledger.c - the worker's SQL: classify delivered messages, pay orders.
 *
 * Payment at most once: the PENDING -> PROCESSED update and the payments row
 * (unique per order) are one statement, hence one transaction. A redelivered
 * or duplicated message finds the order no longer PENDING and pays nothing;
 * a cancel that wins the row lock first leaves nothing to pay either. The
 * same statement records every attempt (payment_attempts, the timeline),
 * moves a declined order PENDING -> FAILED with its reason, and appends the
 * order.processed or order.failed event (event_outbox.h), so an attempt's
 * outcome, the status it leads to and its event are never seen apart.
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
    "         (extract(epoch FROM o.created_at) * 1000)::bigint AS created_ms,"
    "         o.customer_id, o.total_cents, o.currency"
    "  FROM orders o WHERE o.id = ANY($1::uuid[])"
    "), m AS ("
    "  SELECT * FROM unnest($1::uuid[], $2::int[], $3::text[], $5::bool[]) WITH ORDINALITY"
    "         AS t(id, receive_count, message_id, recheck, ord)"
    "), ev AS ("
    "  INSERT INTO order_events (order_id, step, actor, correlation_id, detail)"
    "  SELECT f.id, s.step, $4, f.correlation_id,"
    "         CASE WHEN s.step = 'DELIVERED' THEN jsonb_build_object('receive_count',"
    "              m.receive_count, 'message_id', m.message_id) ELSE '{}'::jsonb END"
    "  FROM found f JOIN m ON m.id = f.id"
    "  CROSS JOIN (VALUES (1, 'DELIVERED'), (2, 'PAYMENT_STARTED')) AS s(ord, step)"
    "  WHERE f.status = 'PENDING' AND NOT m.recheck"
    ")"
    "SELECT m.ord, f.status, f.correlation_id, f.created_ms, f.customer_id, f.total_cents,"
    "       f.currency FROM found f JOIN m ON m.id = f.id";

/* The events of the rows "paid" and "failed" return (event_outbox.h). */
#define PROCESSED_EVENT EVENT_OUTBOX_APPEND(EVENT_PROCESSED, "paid")
#define FAILED_EVENT EVENT_OUTBOX_APPEND(EVENT_FAILED, "failed")

/* $1 order ids, $2 outcomes, $3 provider payment ids, $4 latencies, $5
 * reasons (decline reason or error excerpt), $6 provider, $7 actor. A
 * declined order's FAILED transition is the UPDATE in "failed". */
static const char settle_sql[] =
    "WITH input AS (SELECT DISTINCT ON (id) id, ord, outcome, payment_id, latency_ms, reason"
    "  FROM unnest($1::uuid[], $2::text[], $3::text[], $4::int[], $5::text[]) WITH ORDINALITY"
    "       AS t(id, outcome, payment_id, latency_ms, reason, ord) ORDER BY id, ord),"
    " cur AS (SELECT i.*, o.status, o.total_cents, o.currency, o.correlation_id,"
    "         (SELECT count(*) FROM payment_attempts a WHERE a.order_id = i.id) + 1 AS attempt"
    "  FROM input i JOIN orders o ON o.id = i.id),"
    " paid AS ("
    "  UPDATE orders o SET status = 'PROCESSED', processed_at = now(), updated_at = now()"
    "  FROM input i WHERE o.id = i.id AND i.outcome = 'approved' AND o.status = 'PENDING'"
    "  RETURNING o.id),"
    " failed AS ("
    "  UPDATE orders o SET status = 'FAILED', failed_at = now(), updated_at = now(),"
    "         failure_reason = i.reason"
    "  FROM input i WHERE o.id = i.id AND i.outcome = 'declined' AND o.status = 'PENDING'"
    "  RETURNING o.id),"
    " pay AS ("
    "  INSERT INTO payments (order_id, amount_cents, currency, worker, provider,"
    "                        provider_payment_id)"
    "  SELECT c.id, c.total_cents, c.currency, $7, $6, c.payment_id FROM cur c JOIN paid USING (id)"
    "  ON CONFLICT (order_id) DO NOTHING),"
    " att AS ("
    "  INSERT INTO payment_attempts (order_id, provider, attempt, outcome, provider_payment_id,"
    "                                latency_ms, error, worker)"
    "  SELECT id, $6, attempt, outcome, payment_id, latency_ms,"
    "         CASE WHEN outcome <> 'approved' THEN reason END, $7 FROM cur),"
    " ev AS ("
    "  INSERT INTO order_events (order_id, step, actor, correlation_id, detail)"
    "  SELECT id, step, $7, correlation_id, detail FROM ("
    "    SELECT c.id, c.correlation_id, 1 AS seq,"
    "           CASE c.outcome WHEN 'approved' THEN 'PAYMENT_APPROVED'"
    "                WHEN 'declined' THEN 'PAYMENT_DECLINED' ELSE 'PAYMENT_ERROR' END AS step,"
    "           jsonb_strip_nulls(jsonb_build_object('attempt', c.attempt, 'provider', $6::text,"
    "             'latency_ms', c.latency_ms, 'amount_cents', c.total_cents,"
    "             'currency', c.currency, 'payment_id', c.payment_id,"
    "             CASE c.outcome WHEN 'declined' THEN 'reason' ELSE 'error' END,"
    "             CASE WHEN c.outcome <> 'approved' THEN c.reason END)) AS detail"
    "    FROM cur c WHERE c.status = 'PENDING'"
    "    UNION ALL SELECT c.id, c.correlation_id, 2, 'PROCESSED', '{}'::jsonb"
    "    FROM cur c JOIN paid USING (id)"
    "    UNION ALL SELECT c.id, c.correlation_id, 2, 'FAILED', jsonb_build_object('reason', "
    "c.reason)"
    "    FROM cur c JOIN failed USING (id)"
    "  ) e ORDER BY id, seq),"
    " evp AS (" PROCESSED_EVENT "),"
    " evf AS (" FAILED_EVENT ")"
    "SELECT c.ord, CASE WHEN p.id IS NOT NULL THEN 'PROCESSED' WHEN f.id IS NOT NULL THEN 'FAILED'"
    "                   ELSE c.status END,"
    "       p.id IS NOT NULL OR f.id IS NOT NULL"
    " FROM cur c LEFT JOIN paid p USING (id) LEFT JOIN failed f USING (id)";

static int ensure(struct ledger *l, char *err, size_t errlen)
{
    if (l->db && PQstatus(l->db) == CONNECTION_OK)
        return 0;
    if (db_ensure(&l->db, wcfg.database_url, "order-worker", err, errlen) != 0)
        return -1;
    PGresult *r1 = PQprepare(l->db, "lookup", lookup_sql, 5, NULL);
    PGresult *r2 = PQprepare(l->db, "settle", settle_sql, 7, NULL);
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
    struct buf ids, counts, mids, rechecks;
    db_array_init(&ids);
    db_array_init(&counts);
    db_array_init(&mids);
    db_array_init(&rechecks);
    for (size_t i = 0; i < n; i++) {
        db_array_add(&ids, h[i]->order_id);
        db_array_add_int(&counts, h[i]->receive_count);
        db_array_add(&mids, h[i]->message_id);
        db_array_add(&rechecks, h[i]->recheck ? "t" : "f");
    }
    const char *p[] = {db_array_finish(&ids), db_array_finish(&counts), db_array_finish(&mids),
                       actor, db_array_finish(&rechecks)};
    int rc = -1;
    if (!p[0] || !p[1] || !p[2] || !p[4])
        snprintf(err, errlen, "out of memory building the lookup");
    else
        rc = send_prepared(l, "lookup", 5, p, err, errlen);
    buf_free(&ids);
    buf_free(&counts);
    buf_free(&mids);
    buf_free(&rechecks);
    return rc;
}

static const char *const outcome_names[] = {"approved", "declined", "error"};

int ledger_send_settle(struct ledger *l, struct held **h, size_t n, char *err, size_t errlen)
{
    struct buf ids, outcomes, pids, lat, reasons;
    struct buf *all[] = {&ids, &outcomes, &pids, &lat, &reasons};
    for (size_t k = 0; k < 5; k++)
        db_array_init(all[k]);
    for (size_t i = 0; i < n; i++) {
        const struct held *x = h[i];
        int64_t ms = x->latency_ms < 0 ? 0 : x->latency_ms > 86400000 ? 86400000 : x->latency_ms;
        db_array_add(&ids, x->order_id);
        db_array_add(&outcomes, outcome_names[x->outcome]);
        db_array_add(&pids,
                     x->outcome == PAYMENT_APPROVED && x->payment_id[0] ? x->payment_id : NULL);
        db_array_add_int(&lat, (long long)ms);
        db_array_add(&reasons, x->outcome != PAYMENT_APPROVED && x->reason[0] ? x->reason : NULL);
    }
    const char *p[] = {db_array_finish(&ids),
                       db_array_finish(&outcomes),
                       db_array_finish(&pids),
                       db_array_finish(&lat),
                       db_array_finish(&reasons),
                       wcfg.payment_provider == PAYMENT_HTTP ? "http" : "simulated",
                       actor};
    int rc = -1;
    if (!p[0] || !p[1] || !p[2] || !p[3] || !p[4])
        snprintf(err, errlen, "out of memory building the settlement");
    else
        rc = send_prepared(l, "settle", 7, p, err, errlen);
    for (size_t k = 0; k < 5; k++)
        buf_free(all[k]);
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
        util_strlcpy(h[i]->customer_id, PQgetvalue(r, row, 4), sizeof(h[i]->customer_id));
        h[i]->amount_cents = strtoll(PQgetvalue(r, row, 5), NULL, 10);
        util_strlcpy(h[i]->currency, PQgetvalue(r, row, 6), sizeof(h[i]->currency));
    }
}

void ledger_read_settle(const PGresult *r, size_t n, enum ledger_settled *out)
{
    for (size_t i = 0; i < n; i++)
        out[i] = SETTLED_OTHER; /* a duplicate of another message of the batch */
    for (int row = 0; row < PQntuples(r); row++) {
        long long ord = strtoll(PQgetvalue(r, row, 0), NULL, 10);
        if (ord < 1 || (size_t)ord > n)
            continue;
        const char *st = PQgetvalue(r, row, 1);
        bool changed = strcmp(PQgetvalue(r, row, 2), "t") == 0;
        if (changed)
            out[ord - 1] = strcmp(st, "PROCESSED") == 0 ? SETTLED_PROCESSED : SETTLED_FAILED;
        else if (strcmp(st, "PENDING") == 0)
            out[ord - 1] = SETTLED_PENDING;
    }
}
