/*
 * event_relay.c - sends the event outbox (migration 008) to Amazon EventBridge.
 *
 * One thread. Every RELAY_POLL_MS it claims due, unsent rows with FOR UPDATE
 * SKIP LOCKED (the event rows only, never the orders), so API instances side
 * by side never send the same row at the same time, renders each Detail from
 * its order row (event_outbox_detail: order_json() as of the change), and
 * sends them with PutEvents in batches events_batch_fit allows (10 entries,
 * 256 KiB). The claim's transaction records each row's outcome
 * (event_outbox.c) before it commits: sent rows get sent_at, EventBridge's id
 * and the Detail sent, failed ones a jittered backoff capped at 30 s, entries
 * EventBridge refuses for good are parked (rejected_at), logged and counted.
 * Rows the worker writes are picked up by the same polling: events reach the
 * bus within a poll of their commit.
 *
 * Delivery is at least once: a row whose PutEvents succeeded but whose
 * commit was lost (crash, database gone) is sent again. Consumers deduplicate
 * on Detail.id, the row's id.
 *
 * EVENT_BUS_NAME unset: events are off, said once at start. The rows are
 * still written (the worker writes them and has no such setting); nothing
 * sends them, and this thread only purges: sent and parked rows after a week,
 * and with events off unsent ones too (turning events on sends at most the
 * last week of changes).
 */
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api.h"
#include "db.h"
#include "event_outbox.h"
#include "events.h"
#include "log.h"

#define RELAY_POLL_MS 250
#define RELAY_CLAIM_MAX 100 /* rows a round claims: the LIMIT of claim_sql */
#define RELAY_ROUNDS_MAX 20 /* full rounds in a row before waiting again */
#define BACKLOG_EVERY_MS 5000
#define PURGE_EVERY_MS 60000

struct event_relay {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool stopping;
    pthread_t thread;
    bool enabled; /* EVENT_BUS_NAME set */

    PGconn *db;
    struct aws_config cfg; /* api_cfg.events with the relay's shorter calls */
    struct creds_provider *creds;
    struct aws_client *events;

    _Atomic uint64_t published; /* entries EventBridge took */
    _Atomic uint64_t errors;    /* entries not taken: call failed, entry failed or refused */
    _Atomic uint64_t rejected;  /* entries parked for good */
    _Atomic int64_t backlog;    /* unsent, not parked rows */
};

static struct event_relay relay = {.lock = PTHREAD_MUTEX_INITIALIZER,
                                   .cond = PTHREAD_COND_INITIALIZER};

#define TS(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"

/* The columns of claim_sql. failure_reason is read through to_jsonb(o) so
 * that this works with and without the column FAILED orders bring. */
enum {
    C_ID,
    C_ORDER_ID,
    C_TYPE,
    C_TRACE,
    C_STATUS,
    C_CUSTOMER,
    C_CURRENCY,
    C_ITEMS,
    C_TOTAL,
    C_CORRELATION,
    C_CREATED,
    C_UPDATED,
    C_PROCESSED,
    C_CANCELED,
    C_FAILURE
};
static const char claim_sql[] =
    "SELECT e.id::text, e.order_id::text, e.detail_type,"
    "       coalesce(e.trace_header, order_trace_header(e.order_id), ''),"
    "       o.status, o.customer_id, o.currency, o.items::text, o.total_cents, o.correlation_id,"
    "       " TS("o.created_at") ", " TS("o.updated_at") ", " TS(
        "o.processed_at") ","
                          "       " TS(
                              "o.canceled_at") ", to_jsonb(o) ->> 'failure_reason'"
                                               " FROM event_outbox e JOIN orders o ON o.id = "
                                               "e.order_id"
                                               " WHERE e.sent_at IS NULL AND e.rejected_at IS NULL "
                                               "AND e.next_attempt_at <= now()"
                                               " ORDER BY e.next_attempt_at, e.created_at LIMIT "
                                               "100 FOR UPDATE OF e SKIP LOCKED";
_Static_assert(RELAY_CLAIM_MAX == 100, "claim_sql's LIMIT");

static const char mark_sent_sql[] =
    "UPDATE event_outbox SET sent_at = now(), attempts = attempts + 1, event_id = m.event_id,"
    " detail = m.detail, last_error = NULL"
    " FROM unnest($1::uuid[], $2::text[], $3::text[]) AS m(id, event_id, detail)"
    " WHERE event_outbox.id = m.id";

static const char retry_later_sql[] =
    "UPDATE event_outbox SET attempts = attempts + 1, last_error = m.error,"
    " next_attempt_at = now() + least(interval '30 seconds',"
    "   interval '1 second' * power(2, least(attempts, 12)) * (0.5 + random() / 2))"
    " FROM unnest($1::uuid[], $2::text[]) AS m(id, error) WHERE event_outbox.id = m.id";

static const char park_sql[] =
    "UPDATE event_outbox SET attempts = attempts + 1, last_error = m.error, rejected_at = now()"
    " FROM unnest($1::uuid[], $2::text[]) AS m(id, error) WHERE event_outbox.id = m.id";

void event_relay_stats(struct event_relay_stats *s)
{
    s->published = atomic_load(&relay.published);
    s->errors = atomic_load(&relay.errors);
    s->rejected = atomic_load(&relay.rejected);
    s->backlog = atomic_load(&relay.backlog);
}

static int ensure_db(struct event_relay *r)
{
    char err[512];
    if (r->db && PQstatus(r->db) == CONNECTION_OK)
        return 0;
    if (db_ensure(&r->db, api_cfg.database_url, "order-api-events", err, sizeof(err)) != 0) {
        log_warn(NULL, "event relay: database unavailable: %s", err);
        return -1;
    }
    return 0;
}

/* Runs one UPDATE over the parallel arrays a[0..n); 0 or -1 (logged). */
static int exec_arrays(struct event_relay *r, const char *sql, struct buf *a, int n, size_t rows,
                       const char *what)
{
    char err[512];
    const char *p[3];
    for (int k = 0; k < n; k++) {
        if (!(p[k] = db_array_finish(&a[k]))) {
            log_warn(NULL, "event relay: out of memory recording %zu rows", rows);
            return -1;
        }
    }
    PGresult *res = PQexecParams(r->db, sql, n, NULL, p, NULL, NULL, 0);
    int rc = PQresultStatus(res) == PGRES_COMMAND_OK ? 0 : -1;
    if (rc != 0) {
        db_error(r->db, res, err, sizeof(err));
        log_warn(NULL, "event relay: could not %s %zu event_outbox rows: %s", what, rows, err);
    }
    PQclear(res);
    return rc;
}

/* Writes the outcomes of rows 0..n of res into the claim's transaction:
 * sent rows with EventBridge's id and the Detail sent, the others with why. */
static int record(struct event_relay *r, PGresult *res, const struct event_outbox_result *out,
                  char *const *details, size_t n)
{
    struct buf a[3][3]; /* [sent, retry, park][id, text, detail] */
    size_t count[3] = {0, 0, 0};
    static const char *const sql[3] = {mark_sent_sql, retry_later_sql, park_sql};
    static const char *const what[3] = {"mark sent", "reschedule", "park"};
    int rc = 0;

    for (int k = 0; k < 3; k++)
        for (int c = 0; c < 3; c++)
            db_array_init(&a[k][c]);
    for (size_t i = 0; i < n; i++) {
        int k = out[i].outcome == EVENT_OUTBOX_SENT    ? 0
                : out[i].outcome == EVENT_OUTBOX_RETRY ? 1
                                                       : 2;
        db_array_add(&a[k][0], PQgetvalue(res, (int)i, C_ID));
        db_array_add(&a[k][1], k == 0 ? out[i].event_id : out[i].error);
        if (k == 0)
            db_array_add(&a[k][2], details[i]);
        count[k]++;
    }
    for (int k = 0; k < 3 && rc == 0; k++)
        if (count[k])
            rc = exec_arrays(r, sql[k], a[k], k == 0 ? 3 : 2, count[k], what[k]);
    for (int k = 0; k < 3; k++)
        for (int c = 0; c < 3; c++)
            buf_free(&a[k][c]);
    return rc;
}

/* Sends the entries e[idx[0..m)] in as few PutEvents calls as the limits
 * allow, filling out[idx[i]]. After a call that fails as a whole the rest
 * wait for their backoff too: EventBridge is not answering. */
static void send_entries(struct event_relay *r, const struct events_entry *e, const size_t *idx,
                         size_t m, struct event_outbox_result *out)
{
    struct aws_error err;
    bool down = false;
    size_t pos = 0;

    while (pos < m) {
        struct events_entry batch[EVENTS_MAX_BATCH];
        struct event_outbox_result got[EVENTS_MAX_BATCH];
        struct events_put_result put;
        size_t cnt = m - pos < EVENTS_MAX_BATCH ? m - pos : EVENTS_MAX_BATCH;
        for (size_t j = 0; j < cnt; j++)
            batch[j] = e[idx[pos + j]];
        size_t k = events_batch_fit(batch, cnt);
        if (k == 0)
            k = 1; /* cannot happen after event_outbox_precheck; never loop */
        if (!down) {
            aws_error_clear(&err);
            if (events_put(r->events, batch, k, &put, &err) != 0) {
                log_warn(NULL, "event relay: PutEvents failed, %zu events retried later: %s",
                         m - pos, err.message);
                down = true; /* err stays: the reason for the rest too */
            }
        }
        event_outbox_outcomes(down ? NULL : &put, down ? &err : NULL, k, got);
        for (size_t j = 0; j < k; j++)
            out[idx[pos + j]] = got[j];
        pos += k;
    }
}

static void log_outcome(const PGresult *res, int row, const struct event_outbox_result *o)
{
    /* message_id is the event's own id (Detail.id), the one consumers see */
    struct log_fields f = {.order_id = PQgetvalue(res, row, C_ORDER_ID),
                           .correlation_id = PQgetvalue(res, row, C_CORRELATION),
                           .message_id = PQgetvalue(res, row, C_ID)};
    if (o->outcome == EVENT_OUTBOX_SENT)
        log_msg(LOG_INFO, &f, "order event published: %s", PQgetvalue(res, row, C_TYPE));
    else if (o->outcome == EVENT_OUTBOX_PARK)
        log_msg(LOG_ERROR, &f, "order event refused for good, parked: %s: %s",
                PQgetvalue(res, row, C_TYPE), o->error);
}

static const char *opt(const PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col) ? NULL : PQgetvalue(res, row, col);
}

/* The Detail of claimed row i (malloc), or NULL when out of memory. */
static char *render(const PGresult *res, int i)
{
    json_t *items = json_loads(PQgetvalue(res, i, C_ITEMS), 0, NULL);
    if (!items)
        return NULL;
    struct order_view v = {.id = PQgetvalue(res, i, C_ORDER_ID),
                           .status = PQgetvalue(res, i, C_STATUS),
                           .customer_id = PQgetvalue(res, i, C_CUSTOMER),
                           .currency = PQgetvalue(res, i, C_CURRENCY),
                           .items = items,
                           .total_cents = strtoll(PQgetvalue(res, i, C_TOTAL), NULL, 10),
                           .correlation_id = PQgetvalue(res, i, C_CORRELATION),
                           .created_at = PQgetvalue(res, i, C_CREATED),
                           .updated_at = PQgetvalue(res, i, C_UPDATED),
                           .processed_at = opt(res, i, C_PROCESSED),
                           .canceled_at = opt(res, i, C_CANCELED),
                           .failure_reason = opt(res, i, C_FAILURE)};
    char *d = event_outbox_detail(PQgetvalue(res, i, C_ID), PQgetvalue(res, i, C_TYPE), &v);
    json_decref(items);
    return d;
}

/* Claims, sends and records one round. Returns the rows claimed, 0 when
 * none was sent (EventBridge down: wait for the next poll), -1 when the
 * database failed. */
static int relay_round(struct event_relay *r)
{
    char err[512];
    struct events_entry e[RELAY_CLAIM_MAX];
    struct event_outbox_result out[RELAY_CLAIM_MAX];
    char *details[RELAY_CLAIM_MAX];
    size_t idx[RELAY_CLAIM_MAX], m = 0, sent = 0, parked = 0;

    if (db_exec(r->db, "BEGIN", err, sizeof(err)) != 0)
        return -1;
    PGresult *res = PQexec(r->db, claim_sql);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        db_error(r->db, res, err, sizeof(err));
        log_warn(NULL, "event relay: cannot read the event outbox: %s", err);
        PQclear(res);
        db_exec(r->db, "ROLLBACK", err, sizeof(err));
        return -1;
    }
    size_t n = (size_t)PQntuples(res);
    if (n > RELAY_CLAIM_MAX)
        n = RELAY_CLAIM_MAX;
    for (size_t i = 0; i < n; i++) {
        const char *trace = PQgetvalue(res, (int)i, C_TRACE);
        details[i] = render(res, (int)i);
        e[i] = (struct events_entry){.source = api_cfg.event_source,
                                     .detail_type = PQgetvalue(res, (int)i, C_TYPE),
                                     .detail = details[i],
                                     .event_bus_name = api_cfg.event_bus_name,
                                     .trace_header = trace[0] ? trace : NULL};
        if (!details[i]) {
            out[i] = (struct event_outbox_result){.outcome = EVENT_OUTBOX_RETRY};
            util_strlcpy(out[i].error, "out of memory rendering the Detail", sizeof(out[i].error));
        } else if (event_outbox_precheck(&e[i], &out[i]) == 0) {
            idx[m++] = i;
        }
    }
    send_entries(r, e, idx, m, out);
    for (size_t i = 0; i < n; i++) {
        sent += out[i].outcome == EVENT_OUTBOX_SENT;
        parked += out[i].outcome == EVENT_OUTBOX_PARK;
        log_outcome(res, (int)i, &out[i]);
    }
    int rc = -1;
    if (record(r, res, out, details, n) == 0 && db_exec(r->db, "COMMIT", err, sizeof(err)) == 0) {
        rc = sent == 0 ? 0 : (int)n;
    } else {
        /* nothing recorded: every row goes again, including the ones sent */
        db_exec(r->db, "ROLLBACK", err, sizeof(err));
    }
    PQclear(res);
    for (size_t i = 0; i < n; i++)
        free(details[i]);
    atomic_fetch_add(&r->published, sent);
    atomic_fetch_add(&r->errors, n - sent);
    atomic_fetch_add(&r->rejected, parked);
    return rc;
}

static void refresh_backlog(struct event_relay *r)
{
    PGresult *res = PQexec(r->db, "SELECT count(*) FROM event_outbox"
                                  " WHERE sent_at IS NULL AND rejected_at IS NULL");
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
        atomic_store(&r->backlog, strtoll(PQgetvalue(res, 0, 0), NULL, 10));
    PQclear(res);
}

static void purge(struct event_relay *r)
{
    char err[512];
    const char *sql = r->enabled
                          ? "DELETE FROM event_outbox WHERE id IN (SELECT id FROM event_outbox"
                            " WHERE coalesce(sent_at, rejected_at) < now() - interval '7 days'"
                            " LIMIT 10000)"
                          : "DELETE FROM event_outbox WHERE id IN (SELECT id FROM event_outbox"
                            " WHERE created_at < now() - interval '7 days' LIMIT 10000)";
    if (db_exec(r->db, sql, err, sizeof(err)) != 0)
        log_warn(NULL, "event relay: purge failed: %s", err);
}

/* Waits up to ms unless a stop is asked; false once it is. */
static bool wait_ms(struct event_relay *r, int64_t ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (ms % 1000) * 1000000;
    if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&r->lock);
    if (!r->stopping)
        pthread_cond_timedwait(&r->cond, &r->lock, &ts);
    bool go = !r->stopping;
    pthread_mutex_unlock(&r->lock);
    return go;
}

static void *relay_main(void *arg)
{
    struct event_relay *r = arg;
    int64_t next_backlog = 0, next_purge = util_mono_ms() + PURGE_EVERY_MS;

    while (wait_ms(r, r->enabled ? RELAY_POLL_MS : PURGE_EVERY_MS)) {
        if (ensure_db(r) != 0)
            continue;
        for (int round = 0; r->enabled && round < RELAY_ROUNDS_MAX; round++)
            if (relay_round(r) < RELAY_CLAIM_MAX)
                break;
        if (r->enabled && util_mono_ms() >= next_backlog) {
            refresh_backlog(r);
            next_backlog = util_mono_ms() + BACKLOG_EVERY_MS;
        }
        if (util_mono_ms() >= next_purge) {
            purge(r);
            next_purge = util_mono_ms() + PURGE_EVERY_MS;
        }
    }
    return NULL;
}

static void release(struct event_relay *r)
{
    aws_client_free(r->events);
    creds_provider_free(r->creds);
    r->events = NULL;
    r->creds = NULL;
}

int event_relay_start(char *err, size_t errlen)
{
    struct event_relay *r = &relay;
    r->enabled = api_cfg.event_bus_name != NULL;
    r->stopping = false;
    if (!r->enabled) {
        log_info(NULL, "order events off: EVENT_BUS_NAME is unset (changes stay in event_outbox, "
                       "unsent)");
    } else {
        /* Short calls: the outbox retries, and a stop must not wait on a dead endpoint. */
        r->cfg = api_cfg.events;
        r->cfg.max_attempts = 2;
        r->cfg.request_timeout_ms = 5000;
        r->creds = creds_provider_new_default(err, errlen);
        if (!r->creds)
            return -1;
        r->events = events_client_new(&r->cfg, r->creds);
        if (!r->events) {
            snprintf(err, errlen, "cannot create the EventBridge client (out of memory)");
            release(r);
            return -1;
        }
        log_info(NULL, "order events on: bus %s, source %s, endpoint %s", api_cfg.event_bus_name,
                 api_cfg.event_source, api_cfg.events.endpoint);
    }
    if (pthread_create(&r->thread, NULL, relay_main, r) != 0) {
        snprintf(err, errlen, "cannot start the event relay thread");
        release(r);
        return -1;
    }
    return 0;
}

void event_relay_stop(void)
{
    struct event_relay *r = &relay;
    pthread_mutex_lock(&r->lock);
    r->stopping = true;
    pthread_cond_signal(&r->cond);
    pthread_mutex_unlock(&r->lock);
    pthread_join(r->thread, NULL);
    if (r->db)
        PQfinish(r->db);
    r->db = NULL;
    release(r);
}
