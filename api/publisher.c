/*
 * publisher.c - sends outbox rows to SQS: at once after commit, and again
 * later for whatever is left unsent.
 *
 * Fast path: the committer hands over the rows it just committed; this thread
 * sends them (outbox_send.c) and records each row's outcome in one statement
 * per kind: sent rows get their message id and an ENQUEUED event, rows to
 * retry get a jittered, growing next_attempt_at, rows SQS refused for good
 * (SenderFault) are parked with rejected_at and counted. Nothing is lost if
 * recording fails or the process dies: the row is still unsent in PostgreSQL.
 *
 * Relay: every relay interval the thread claims overdue unsent rows with
 * FOR UPDATE SKIP LOCKED (so replicas never send the same row at the same
 * time) and sends them the same way. A message may still go out twice (sent,
 * then the mark failed); consumers are idempotent by design.
 *
 * All state is one struct publisher; the only instance is owned by this file.
 */
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api.h"
#include "db.h"
#include "log.h"

#define PUB_QUEUE_CAP 8192
#define RELAY_CLAIM_MAX OUTBOX_ROUND_MAX
#define PURGE_EVERY_MS 60000

struct publisher {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct outbox_msg queue[PUB_QUEUE_CAP]; /* committed rows waiting for the fast path */
    size_t head, count;
    bool stopping;
    pthread_t thread;

    PGconn *db;
    struct creds_provider *creds;
    struct sqs_client *sqs;
    struct outbox_sender sender;
    char actor[64];

    int64_t backoff_until; /* monotonic ms; no fast-path sends before it */
    unsigned failures;     /* consecutive rounds where nothing went out */

    /* Unsent rows: counted by the relay every interval, and in between
     * raised by each commit and lowered by each round sent, so the limit
     * (OUTBOX_MAX_BACKLOG) is checked per request without a query. Rows of
     * other replicas are seen at the next count. */
    _Atomic int64_t backlog;
    _Atomic int64_t oldest_ms; /* age of the oldest unsent row */
    _Atomic int64_t last_drop_warn_ms;
    _Atomic uint64_t dropped_since_warn;
};

static struct publisher pub = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};

static const char mark_sent_sql[] =
    "WITH m AS (SELECT * FROM unnest($1::bigint[], $2::text[]) AS t(id, message_id)),"
    " upd AS ("
    "  UPDATE outbox o SET sent_at = now(), message_id = m.message_id, attempts = o.attempts + 1"
    "  FROM m WHERE o.id = m.id AND o.sent_at IS NULL"
    "  RETURNING o.order_id, o.correlation_id, o.message_id, o.attempts)"
    " INSERT INTO order_events (order_id, at, step, actor, correlation_id, detail)"
    " SELECT u.order_id,"
    "        greatest(to_timestamp($4::bigint / 1000.0),"
    "                 (SELECT r.at FROM order_events r"
    "                   WHERE r.order_id = u.order_id AND r.step = 'RECEIVED' LIMIT 1)),"
    "        'ENQUEUED', $3, u.correlation_id,"
    "        jsonb_build_object('message_id', u.message_id, 'attempts', u.attempts)"
    " FROM upd u";

static const char retry_later_sql[] =
    "UPDATE outbox SET attempts = attempts + 1, last_error = $2,"
    " next_attempt_at = now() + least(interval '30 seconds',"
    "   interval '1 second' * power(2, least(attempts, 12)) * (0.5 + random() / 2))"
    " WHERE id = ANY($1::bigint[]) AND sent_at IS NULL";

/* SQS refused these entries themselves: sending them again cannot help. */
static const char park_sql[] =
    "UPDATE outbox SET attempts = attempts + 1, last_error = m.error, rejected_at = now()"
    " FROM unnest($1::bigint[], $2::text[]) AS m(id, error)"
    " WHERE outbox.id = m.id AND sent_at IS NULL";

int64_t publisher_backlog(void)
{
    int64_t b = atomic_load(&pub.backlog);
    return b > 0 ? b : 0; /* a count that raced a round may undershoot until the next one */
}

double publisher_oldest_age_s(void)
{
    return (double)atomic_load(&pub.oldest_ms) / 1000.0;
}

void publisher_stats(struct publisher_stats *s)
{
    s->requests = atomic_load(&pub.sender.requests);
    s->errors = atomic_load(&pub.sender.errors);
    s->sent = atomic_load(&pub.sender.sent);
    s->rejected = atomic_load(&pub.sender.rejected);
}

static int ensure_db(struct publisher *p)
{
    char err[512];
    if (p->db && PQstatus(p->db) == CONNECTION_OK)
        return 0;
    if (db_ensure(&p->db, api_cfg.database_url, "order-api-publisher", err, sizeof(err)) != 0) {
        log_warn(NULL, "publisher: database unavailable: %s", err);
        return -1;
    }
    return 0;
}

static void log_row(enum log_level level, const struct outbox_msg *m, const struct send_result *r,
                    const char *msg)
{
    struct log_fields f = {.order_id = m->order_id,
                           .correlation_id = m->correlation_id,
                           .message_id = r->outcome == SEND_OK ? r->message_id : NULL,
                           .trace_id = m->trace_header[0] ? m->trace_header : NULL,
                           .traceparent = m->traceparent[0] ? m->traceparent : NULL};
    if (r->outcome == SEND_OK)
        log_msg(level, &f, "%s", msg);
    else
        log_msg(level, &f, "%s: %s", msg, r->error);
}

static void exec_arrays(struct publisher *p, const char *sql, const char *const *params, int n,
                        size_t rows, const char *what)
{
    char err[512];
    for (int i = 0; i < n; i++) {
        if (!params[i]) { /* the rows stay as they are: the relay sees them again */
            log_warn(NULL, "publisher: could not %s %zu outbox rows: out of memory", what, rows);
            return;
        }
    }
    PGresult *r = PQexecParams(p->db, sql, n, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        db_error(p->db, r, err, sizeof(err));
        log_warn(NULL, "publisher: could not %s %zu outbox rows: %s", what, rows, err);
    }
    PQclear(r);
}

/* Records the outcome of one round. ENQUEUED carries the time the send
 * started: a consumer can receive the message before SendMessageBatch has
 * even answered, and the timeline must still read ENQUEUED before DELIVERED.
 * It is never before the RECEIVED step: the send time is in whole
 * milliseconds (and from another host's clock in production), so within
 * RECEIVED's millisecond it used to sort first. */
static void record(struct publisher *p, const struct outbox_msg *m, const struct send_result *res,
                   size_t n, int64_t sent_ms)
{
    struct buf ok_ids, ok_mids, retry_ids, park_ids, park_errs;
    size_t n_ok = 0, n_retry = 0, n_park = 0;
    const char *retry_err = "";
    char sent[32];

    if (ensure_db(p) != 0)
        return; /* rows stay unsent: the relay sends them again later */
    snprintf(sent, sizeof(sent), "%lld", (long long)sent_ms);
    db_array_init(&ok_ids);
    db_array_init(&ok_mids);
    db_array_init(&retry_ids);
    db_array_init(&park_ids);
    db_array_init(&park_errs);
    for (size_t i = 0; i < n; i++) {
        switch (res[i].outcome) {
        case SEND_OK:
            db_array_add_int(&ok_ids, m[i].outbox_id);
            db_array_add(&ok_mids, res[i].message_id);
            log_row(LOG_INFO, &m[i], &res[i], "order enqueued");
            n_ok++;
            break;
        case SEND_REJECTED:
            db_array_add_int(&park_ids, m[i].outbox_id);
            db_array_add(&park_errs, res[i].error);
            log_row(LOG_ERROR, &m[i], &res[i], "SQS refused the message; outbox row parked");
            n_park++;
            break;
        case SEND_RETRY:
            db_array_add_int(&retry_ids, m[i].outbox_id);
            retry_err = res[i].error;
            n_retry++;
            break;
        }
    }
    if (n_ok) {
        const char *prm[] = {db_array_finish(&ok_ids), db_array_finish(&ok_mids), p->actor, sent};
        exec_arrays(p, mark_sent_sql, prm, 4, n_ok, "mark sent");
    }
    if (n_retry) {
        const char *prm[] = {db_array_finish(&retry_ids), retry_err};
        exec_arrays(p, retry_later_sql, prm, 2, n_retry, "reschedule");
        log_warn(NULL, "publisher: %zu of %zu messages not sent, retried later: %s", n_retry, n,
                 retry_err);
    }
    if (n_park) {
        const char *prm[] = {db_array_finish(&park_ids), db_array_finish(&park_errs)};
        exec_arrays(p, park_sql, prm, 2, n_park, "park");
    }
    atomic_fetch_sub(&p->backlog, (int64_t)(n_ok + n_park));
    buf_free(&ok_ids);
    buf_free(&ok_mids);
    buf_free(&retry_ids);
    buf_free(&park_ids);
    buf_free(&park_errs);
}

/* Sends m[0..n) and records the outcome; returns how many were sent. */
static size_t send_round(struct publisher *p, const struct outbox_msg *m, size_t n)
{
    struct send_result res[OUTBOX_ROUND_MAX];
    int64_t sent_ms = util_wall_ms();
    size_t sent = outbox_send(&p->sender, m, n, res);
    record(p, m, res, n, sent_ms);
    return sent;
}

static void free_bodies(struct outbox_msg *m, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(m[i].body);
}

static void fast_path(struct publisher *p)
{
    struct outbox_msg round[OUTBOX_ROUND_MAX];
    size_t n = 0;

    pthread_mutex_lock(&p->lock);
    while (n < OUTBOX_ROUND_MAX && p->count) {
        round[n++] = p->queue[p->head];
        p->head = (p->head + 1) % PUB_QUEUE_CAP;
        p->count--;
    }
    pthread_mutex_unlock(&p->lock);
    if (!n)
        return;
    if (util_mono_ms() < p->backoff_until) {
        /* SQS is failing: leave these rows to the relay and its backoff. */
        free_bodies(round, n);
        return;
    }
    if (send_round(p, round, n) == 0) {
        int64_t d = util_backoff_ms(p->failures++, 200, 10000);
        p->backoff_until = util_mono_ms() + d;
    } else {
        p->failures = 0;
    }
    free_bodies(round, n);
}

/* Claims and sends one round of overdue rows for our queue; returns how many
 * were claimed, 0 when nothing went out, or -1 when the database is unavailable. */
static int relay_round(struct publisher *p)
{
    char err[512];
    struct outbox_msg m[RELAY_CLAIM_MAX];
    int n;

    if (db_exec(p->db, "BEGIN", err, sizeof(err)) != 0)
        return -1;
    const char *prm[] = {api_cfg.queue_url};
    /* Rows written before migration 004 name no queue: any relay may take them. */
    PGresult *r =
        PQexecParams(p->db,
                     "SELECT id, order_id::text, body, correlation_id, coalesce(trace_header, ''),"
                     " coalesce(traceparent, ''), (extract(epoch FROM created_at) * 1000)::bigint"
                     " FROM outbox WHERE sent_at IS NULL AND rejected_at IS NULL"
                     " AND next_attempt_at <= now() AND (queue_url = $1 OR queue_url IS NULL)"
                     " ORDER BY next_attempt_at LIMIT 100 FOR UPDATE SKIP LOCKED",
                     1, NULL, prm, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        db_error(p->db, r, err, sizeof(err));
        log_warn(NULL, "relay: cannot read the outbox: %s", err);
        PQclear(r);
        db_exec(p->db, "ROLLBACK", err, sizeof(err));
        return -1;
    }
    n = 0;
    for (int i = 0; i < PQntuples(r) && i < RELAY_CLAIM_MAX; i++) {
        memset(&m[n], 0, sizeof(m[n]));
        m[n].outbox_id = strtoll(PQgetvalue(r, i, 0), NULL, 10);
        util_strlcpy(m[n].order_id, PQgetvalue(r, i, 1), sizeof(m[n].order_id));
        m[n].body = strdup(PQgetvalue(r, i, 2));
        if (!m[n].body)
            continue; /* no memory: the row stays for a later round */
        util_strlcpy(m[n].correlation_id, PQgetvalue(r, i, 3), sizeof(m[n].correlation_id));
        util_strlcpy(m[n].trace_header, PQgetvalue(r, i, 4), sizeof(m[n].trace_header));
        util_strlcpy(m[n].traceparent, PQgetvalue(r, i, 5), sizeof(m[n].traceparent));
        m[n].created_ms = strtoll(PQgetvalue(r, i, 6), NULL, 10);
        n++;
    }
    int claimed = PQntuples(r);
    PQclear(r);
    size_t sent = 0;
    if (n > 0) {
        log_kv(LOG_INFO, NULL, "relay: publishing unsent outbox rows", "rows", (long long)n, NULL);
        sent = send_round(p, m, (size_t)n);
    }
    db_exec(p->db, "COMMIT", err, sizeof(err));
    free_bodies(m, (size_t)n);
    /* a round where nothing went out means SQS is down: stop for this interval */
    return sent == 0 ? 0 : claimed;
}

static void relay(struct publisher *p)
{
    if (ensure_db(p) != 0)
        return;
    /* After an outage the backlog can be large: keep claiming full rounds
     * (bounded, so the fast path is not starved) while SQS takes them. */
    for (int round = 0; round < 50; round++)
        if (relay_round(p) < RELAY_CLAIM_MAX)
            break;

    const char *prm[] = {api_cfg.queue_url};
    PGresult *r =
        PQexecParams(p->db,
                     "SELECT count(*), coalesce((extract(epoch FROM now() - min(created_at))"
                     " * 1000)::bigint, 0) FROM outbox WHERE sent_at IS NULL"
                     " AND rejected_at IS NULL AND (queue_url = $1 OR queue_url IS NULL)",
                     1, NULL, prm, NULL, NULL, 0);
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1) {
        atomic_store(&p->backlog, strtoll(PQgetvalue(r, 0, 0), NULL, 10));
        atomic_store(&p->oldest_ms, strtoll(PQgetvalue(r, 0, 1), NULL, 10));
    }
    PQclear(r);
}

/* Keys are kept 24 h as promised, sent outbox rows a week for investigations. */
static void purge(struct publisher *p)
{
    char err[512];
    if (ensure_db(p) != 0)
        return;
    if (db_exec(p->db,
                "DELETE FROM idempotency_keys WHERE ctid IN (SELECT ctid FROM idempotency_keys"
                " WHERE created_at < now() - interval '24 hours' LIMIT 10000)",
                err, sizeof(err)) != 0 ||
        db_exec(p->db,
                "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE sent_at < now()"
                " - interval '7 days' LIMIT 10000)",
                err, sizeof(err)) != 0)
        log_warn(NULL, "purge failed: %s", err);
}

/* Waits until rows are queued, the stop is asked, or the relay is due. */
static bool wait_for_work(struct publisher *p, int64_t next_relay)
{
    pthread_mutex_lock(&p->lock);
    while (!p->count && !p->stopping) {
        int64_t wait = next_relay - util_mono_ms();
        if (wait <= 0)
            break;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += wait / 1000;
        ts.tv_nsec += (wait % 1000) * 1000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&p->cond, &p->lock, &ts);
    }
    bool stop = p->stopping && !p->count;
    pthread_mutex_unlock(&p->lock);
    return !stop;
}

static void *publisher_main(void *arg)
{
    struct publisher *p = arg;
    int64_t next_relay = util_mono_ms() + api_cfg.relay_interval_ms;
    int64_t next_purge = util_mono_ms() + PURGE_EVERY_MS;

    while (wait_for_work(p, next_relay)) {
        fast_path(p);
        if (util_mono_ms() >= next_relay) {
            relay(p);
            next_relay = util_mono_ms() + api_cfg.relay_interval_ms;
        }
        if (util_mono_ms() >= next_purge) {
            purge(p);
            next_purge = util_mono_ms() + PURGE_EVERY_MS;
        }
    }
    return NULL;
}

static void release(struct publisher *p)
{
    outbox_sender_cleanup(&p->sender);
    sqs_client_free(p->sqs);
    creds_provider_free(p->creds);
    p->sqs = NULL;
    p->creds = NULL;
}

int publisher_start(char *err, size_t errlen)
{
    struct publisher *p = &pub;
    snprintf(p->actor, sizeof(p->actor), "order-api/%s", log_instance_id());
    p->creds = creds_provider_new_default(err, errlen);
    if (!p->creds)
        return -1;
    p->sqs = sqs_client_new(&api_cfg.sqs, p->creds);
    if (!p->sqs || outbox_sender_init(&p->sender, p->sqs, api_cfg.queue_url) != 0) {
        snprintf(err, errlen, "cannot create the SQS client (out of memory)");
        release(p);
        return -1;
    }
    if (pthread_create(&p->thread, NULL, publisher_main, p) != 0) {
        snprintf(err, errlen, "cannot start the publisher thread");
        release(p);
        return -1;
    }
    return 0;
}

/* Under sustained overload a full queue would be reported on every commit:
 * once a second, with the count, is enough. */
static void warn_dropped(struct publisher *p, size_t dropped)
{
    uint64_t total = atomic_fetch_add(&p->dropped_since_warn, dropped) + dropped;
    int64_t now = util_mono_ms(), last = atomic_load(&p->last_drop_warn_ms);
    if (now - last >= 1000 && atomic_compare_exchange_strong(&p->last_drop_warn_ms, &last, now)) {
        atomic_fetch_sub(&p->dropped_since_warn, total);
        log_kv(LOG_WARN, NULL, "publisher queue full: messages left to the relay", "messages",
               (long long)total, NULL);
    }
}

void publisher_enqueue(struct outbox_msg *msgs, size_t n)
{
    struct publisher *p = &pub;
    size_t dropped = 0;
    atomic_fetch_add(&p->backlog, (int64_t)n); /* committed, so unsent until a round sends them */
    pthread_mutex_lock(&p->lock);
    for (size_t i = 0; i < n; i++) {
        if (p->count == PUB_QUEUE_CAP) {
            free(msgs[i].body); /* still unsent in the outbox: the relay takes it */
            dropped++;
            continue;
        }
        p->queue[(p->head + p->count) % PUB_QUEUE_CAP] = msgs[i];
        p->count++;
    }
    pthread_cond_signal(&p->cond);
    pthread_mutex_unlock(&p->lock);
    if (dropped)
        warn_dropped(p, dropped);
}

void publisher_stop(void)
{
    struct publisher *p = &pub;
    pthread_mutex_lock(&p->lock);
    p->stopping = true;
    pthread_cond_signal(&p->cond);
    pthread_mutex_unlock(&p->lock);
    pthread_join(p->thread, NULL);
    if (p->db)
        PQfinish(p->db);
    p->db = NULL;
    release(p);
}
