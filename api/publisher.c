/*
 * publisher.c - sends outbox rows to SQS: at once after commit, and again
 * later for whatever is left unsent.
 *
 * Fast path: the committer hands over the rows it just committed; this thread
 * sends them with SendMessageBatch (10 per call) and marks them sent (plus an
 * ENQUEUED event) in one statement per round. Nothing is lost if that fails or
 * the process dies: the row is still unsent in PostgreSQL.
 *
 * Relay: every relay interval the thread claims overdue unsent rows with
 * FOR UPDATE SKIP LOCKED (so replicas never send the same row at the same
 * time), sends them, and pushes failures back with a jittered, growing
 * next_attempt_at. A message may still go out twice (sent, then the mark
 * failed); consumers are idempotent by design.
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
#define PUB_ROUND_MAX 100 /* messages sent concurrently, then marked sent by one UPDATE */
#define RELAY_CLAIM_MAX 100
#define PURGE_EVERY_MS 60000

static pthread_mutex_t pub_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t pub_cond = PTHREAD_COND_INITIALIZER;
static struct outbox_msg pub_queue[PUB_QUEUE_CAP];
static size_t pub_head, pub_count;
static bool pub_stopping;
static pthread_t pub_thread;

static PGconn *pub_db;
static struct sqs_client *pub_sqs;
static CURLM *pub_multi;
static struct creds_provider *pub_creds;
static int64_t pub_backoff_until; /* monotonic ms; no fast-path sends before it */
static unsigned pub_failures;

static _Atomic int64_t pub_backlog;
static _Atomic int64_t pub_oldest_ms; /* age of the oldest unsent row */

static const char mark_sent_sql[] =
    "WITH m AS (SELECT * FROM unnest($1::bigint[], $2::text[]) AS t(id, message_id)),"
    " upd AS ("
    "  UPDATE outbox o SET sent_at = now(), message_id = m.message_id, attempts = o.attempts + 1"
    "  FROM m WHERE o.id = m.id AND o.sent_at IS NULL"
    "  RETURNING o.order_id, o.correlation_id, o.message_id, o.attempts)"
    " INSERT INTO order_events (order_id, at, step, actor, correlation_id, detail)"
    " SELECT order_id, to_timestamp($4::bigint / 1000.0), 'ENQUEUED', $3, correlation_id,"
    "        jsonb_build_object('message_id', message_id, 'attempts', attempts)"
    " FROM upd";

static const char retry_later_sql[] =
    "UPDATE outbox SET attempts = attempts + 1, last_error = $2,"
    " next_attempt_at = now() + least(interval '30 seconds',"
    "   interval '1 second' * power(2, least(attempts, 12)) * (0.5 + random() / 2))"
    " WHERE id = ANY($1::bigint[]) AND sent_at IS NULL";

int64_t publisher_backlog(void)
{
    return atomic_load(&pub_backlog);
}

double publisher_oldest_age_s(void)
{
    return (double)atomic_load(&pub_oldest_ms) / 1000.0;
}

static char actor[64];

static int ensure_db(void)
{
    char err[512];
    if (pub_db && PQstatus(pub_db) == CONNECTION_OK)
        return 0;
    if (db_ensure(&pub_db, api_cfg.database_url, "order-api-publisher", err, sizeof(err)) != 0) {
        log_warn(NULL, "publisher: database unavailable: %s", err);
        return -1;
    }
    return 0;
}

/* The SendMessageBatch body for m[0..n), n <= 10; entry ids are indexes. */
static char *encode_batch(struct outbox_msg *m, size_t n)
{
    struct sqs_send_entry e[SQS_MAX_BATCH];
    struct sqs_attr attrs[SQS_MAX_BATCH][2];
    char ids[SQS_MAX_BATCH][24];

    for (size_t i = 0; i < n; i++) {
        snprintf(ids[i], sizeof(ids[i]), "%zu", i);
        attrs[i][0] = (struct sqs_attr){"correlation_id", m[i].correlation_id};
        attrs[i][1] = (struct sqs_attr){"traceparent", m[i].traceparent};
        e[i] = (struct sqs_send_entry){.id = ids[i],
                                       .body = m[i].body,
                                       .attrs = attrs[i],
                                       .n_attrs = m[i].traceparent[0] ? 2 : 1,
                                       .trace_header =
                                           m[i].trace_header[0] ? m[i].trace_header : NULL};
    }
    return sqs_encode_send_message_batch(api_cfg.queue_url, e, n);
}

/* Fills message_ids from a SendMessageBatch result; returns how many were sent. */
static size_t apply_result(const struct sqs_batch_result *res, size_t n, char **message_ids,
                           char *err, size_t errlen)
{
    size_t sent = 0;
    for (size_t k = 0; k < res->n_ok; k++) {
        long idx = strtol(res->ok_ids[k], NULL, 10);
        if (idx >= 0 && (size_t)idx < n && !message_ids[idx]) {
            message_ids[idx] =
                strdup(res->ok_message_ids && res->ok_message_ids[k] ? res->ok_message_ids[k] : "");
            sent++;
        }
    }
    if (res->n_failed) {
        snprintf(err, errlen, "%.100s: %.400s",
                 res->failed[0].code ? res->failed[0].code : "failed",
                 res->failed[0].message ? res->failed[0].message : "");
        atomic_fetch_add(&api_metrics.sqs_errors, 1);
    }
    atomic_fetch_add(&api_metrics.sqs_sent, sent);
    return sent;
}

/* Synchronous, retrying send of one batch: the slow path after a failure. */
static size_t send_batch_sync(struct outbox_msg *m, size_t n, char **message_ids, char *err,
                              size_t errlen)
{
    struct sqs_batch_result res;
    struct sqs_error serr;
    char *body = encode_batch(m, n);
    char *resp = NULL;
    size_t len = 0, sent = 0;

    atomic_fetch_add(&api_metrics.sqs_requests, 1);
    if (!body || sqs_call(pub_sqs, SQS_SEND_MESSAGE_BATCH, body, 0, &resp, &len, &serr) != 0) {
        if (!body)
            snprintf(err, errlen, "message could not be encoded");
        else
            snprintf(err, errlen, "%.100s: %.400s", serr.type[0] ? serr.type : "error",
                     serr.message);
        atomic_fetch_add(&api_metrics.sqs_errors, 1);
    } else if (sqs_decode_batch_result(resp, len, &res, &serr) == 0) {
        sent = apply_result(&res, n, message_ids, err, errlen);
        sqs_batch_result_free(&res);
    }
    free(body);
    free(resp);
    return sent;
}

/* Sends m[0..n) as concurrent SendMessageBatch calls over one curl multi
 * handle (keep-alive connections are reused across rounds); a batch whose
 * first attempt fails falls back to the retrying synchronous path. Fills
 * message_ids[i] (NULL for a message not sent); returns the number sent. */
static size_t send_concurrently(struct outbox_msg *m, size_t n, char **message_ids, char *err,
                                size_t errlen)
{
    struct sqs_request *req[PUB_ROUND_MAX / SQS_MAX_BATCH];
    size_t nb = (n + SQS_MAX_BATCH - 1) / SQS_MAX_BATCH, sent = 0, running_n = 0;
    struct sqs_error serr;

    for (size_t i = 0; i < n; i++)
        message_ids[i] = NULL;
    for (size_t b = 0; b < nb; b++) {
        size_t off = b * SQS_MAX_BATCH, k = n - off < SQS_MAX_BATCH ? n - off : SQS_MAX_BATCH;
        char *body = encode_batch(&m[off], k);
        req[b] = body ? sqs_request_new(pub_sqs, SQS_SEND_MESSAGE_BATCH, body, NULL) : NULL;
        if (req[b] && sqs_request_prepare(req[b], 0, &serr) == 0) {
            curl_multi_add_handle(pub_multi, sqs_request_easy(req[b]));
            atomic_fetch_add(&api_metrics.sqs_requests, 1);
            running_n++;
        } else if (req[b]) {
            sqs_request_free(req[b]);
            req[b] = NULL;
        }
    }
    int still = 1;
    while (running_n && still) {
        curl_multi_perform(pub_multi, &still);
        if (still)
            curl_multi_poll(pub_multi, NULL, 0, 1000, NULL);
    }
    CURLMsg *msg;
    int q;
    while ((msg = curl_multi_info_read(pub_multi, &q))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        CURLcode rc = msg->data.result;
        CURL *easy = msg->easy_handle;
        curl_multi_remove_handle(pub_multi, easy);
        for (size_t b = 0; b < nb; b++) {
            if (!req[b] || sqs_request_easy(req[b]) != easy)
                continue;
            size_t off = b * SQS_MAX_BATCH, k = n - off < SQS_MAX_BATCH ? n - off : SQS_MAX_BATCH;
            struct sqs_batch_result res;
            size_t len;
            if (sqs_request_complete(req[b], rc, &serr) == 0) {
                const char *resp = sqs_request_response(req[b], &len);
                if (sqs_decode_batch_result(resp, len, &res, &serr) == 0) {
                    sent += apply_result(&res, k, &message_ids[off], err, errlen);
                    sqs_batch_result_free(&res);
                }
            } else {
                atomic_fetch_add(&api_metrics.sqs_errors, 1);
                snprintf(err, errlen, "%.100s: %.400s", serr.type[0] ? serr.type : "error",
                         serr.message);
            }
            sqs_request_free(req[b]);
            req[b] = NULL;
        }
    }
    for (size_t b = 0; b < nb; b++)
        if (req[b]) { /* never completed */
            curl_multi_remove_handle(pub_multi, sqs_request_easy(req[b]));
            sqs_request_free(req[b]);
        }
    /* What did not go out on the first try gets the retrying path, unless SQS
     * is failing outright: then the relay and its backoff own those rows. */
    if (sent == 0 || sent == n)
        return sent;
    struct outbox_msg retry[SQS_MAX_BATCH];
    size_t map[SQS_MAX_BATCH], nr = 0;
    char *ids[SQS_MAX_BATCH];
    for (size_t i = 0; i <= n; i++) {
        if (i < n && !message_ids[i]) {
            retry[nr] = m[i];
            map[nr++] = i;
        }
        if (nr == SQS_MAX_BATCH || (i == n && nr > 0)) {
            sent += send_batch_sync(retry, nr, ids, err, errlen);
            for (size_t k = 0; k < nr; k++)
                message_ids[map[k]] = ids[k];
            nr = 0;
        }
    }
    return sent;
}

/* Records the outcome of one round: sent rows marked, failed rows pushed back.
 * ENQUEUED carries the time the send started: a consumer can receive the
 * message before SendMessageBatch has even answered, and the timeline must
 * still read ENQUEUED before DELIVERED. */
static void record(struct outbox_msg *m, char **message_ids, size_t n, const char *last_err,
                   int64_t sent_ms)
{
    char sent[32];
    snprintf(sent, sizeof(sent), "%lld", (long long)sent_ms);
    struct buf ids, mids, failed;
    size_t n_ok = 0, n_failed = 0;
    char err[512];

    if (ensure_db() != 0)
        return; /* rows stay unsent: the relay sends them again later */
    db_array_init(&ids);
    db_array_init(&mids);
    db_array_init(&failed);
    for (size_t i = 0; i < n; i++) {
        if (message_ids[i]) {
            db_array_add_int(&ids, m[i].outbox_id);
            db_array_add(&mids, message_ids[i]);
            n_ok++;
            struct log_fields f = {.order_id = m[i].order_id,
                                   .correlation_id = m[i].correlation_id,
                                   .message_id = message_ids[i],
                                   .trace_id = m[i].trace_header[0] ? m[i].trace_header : NULL,
                                   .traceparent = m[i].traceparent[0] ? m[i].traceparent : NULL};
            log_info(&f, "order enqueued");
        } else {
            db_array_add_int(&failed, m[i].outbox_id);
            n_failed++;
        }
    }
    if (n_ok) {
        const char *p[] = {db_array_finish(&ids), db_array_finish(&mids), actor, sent};
        PGresult *r = PQexecParams(pub_db, mark_sent_sql, 4, NULL, p, NULL, NULL, 0);
        if (PQresultStatus(r) != PGRES_COMMAND_OK) {
            db_error(pub_db, r, err, sizeof(err));
            log_warn(NULL, "publisher: could not mark %zu messages sent: %s", n_ok, err);
        }
        PQclear(r);
    }
    if (n_failed) {
        const char *p[] = {db_array_finish(&failed), last_err};
        PGresult *r = PQexecParams(pub_db, retry_later_sql, 2, NULL, p, NULL, NULL, 0);
        if (PQresultStatus(r) != PGRES_COMMAND_OK) {
            db_error(pub_db, r, err, sizeof(err));
            log_warn(NULL, "publisher: could not reschedule %zu messages: %s", n_failed, err);
        }
        PQclear(r);
    }
    buf_free(&ids);
    buf_free(&mids);
    buf_free(&failed);
}

/* Sends m[0..n) in batches of 10; returns how many failed. */
static size_t send_all(struct outbox_msg *m, size_t n)
{
    char *mids[PUB_ROUND_MAX];
    char err[600] = "";
    size_t failed = 0;
    int64_t sent_ms = util_wall_ms();

    failed = n - send_concurrently(m, n, mids, err, sizeof(err));
    if (failed)
        log_warn(NULL, "publisher: %zu of %zu messages not sent: %s", failed, n, err);
    record(m, mids, n, err, sent_ms);
    for (size_t i = 0; i < n; i++)
        free(mids[i]);
    return failed;
}

static void fast_path(void)
{
    struct outbox_msg round[PUB_ROUND_MAX];
    size_t n = 0;

    pthread_mutex_lock(&pub_lock);
    while (n < PUB_ROUND_MAX && pub_count) {
        round[n++] = pub_queue[pub_head];
        pub_head = (pub_head + 1) % PUB_QUEUE_CAP;
        pub_count--;
    }
    pthread_mutex_unlock(&pub_lock);
    if (!n)
        return;
    if (util_mono_ms() < pub_backoff_until) {
        /* SQS is failing: leave these rows to the relay and its backoff. */
        for (size_t i = 0; i < n; i++)
            free(round[i].body);
        return;
    }
    size_t failed = send_all(round, n);
    if (failed == n) {
        int64_t d = util_backoff_ms(pub_failures++, 200, 10000);
        pub_backoff_until = util_mono_ms() + d;
    } else {
        pub_failures = 0;
    }
    for (size_t i = 0; i < n; i++)
        free(round[i].body);
}

/* Claims and sends one round of overdue rows for our queue; returns how many
 * were claimed, or -1 when the database is unavailable. */
static int relay_round(void)
{
    char err[512];
    struct outbox_msg m[RELAY_CLAIM_MAX];
    int n;

    if (db_exec(pub_db, "BEGIN", err, sizeof(err)) != 0)
        return -1;
    const char *p[] = {api_cfg.queue_url};
    /* Rows written before migration 004 name no queue: any relay may take them. */
    PGresult *r =
        PQexecParams(pub_db,
                     "SELECT id, order_id::text, body, correlation_id, coalesce(trace_header, ''),"
                     " coalesce(traceparent, ''), (extract(epoch FROM created_at) * 1000)::bigint"
                     " FROM outbox WHERE sent_at IS NULL AND next_attempt_at <= now()"
                     " AND (queue_url = $1 OR queue_url IS NULL)"
                     " ORDER BY next_attempt_at LIMIT 100 FOR UPDATE SKIP LOCKED",
                     1, NULL, p, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        db_error(pub_db, r, err, sizeof(err));
        log_warn(NULL, "relay: cannot read the outbox: %s", err);
        PQclear(r);
        db_exec(pub_db, "ROLLBACK", err, sizeof(err));
        return -1;
    }
    n = PQntuples(r);
    for (int i = 0; i < n; i++) {
        memset(&m[i], 0, sizeof(m[i]));
        m[i].outbox_id = strtoll(PQgetvalue(r, i, 0), NULL, 10);
        util_strlcpy(m[i].order_id, PQgetvalue(r, i, 1), sizeof(m[i].order_id));
        m[i].body = strdup(PQgetvalue(r, i, 2));
        util_strlcpy(m[i].correlation_id, PQgetvalue(r, i, 3), sizeof(m[i].correlation_id));
        util_strlcpy(m[i].trace_header, PQgetvalue(r, i, 4), sizeof(m[i].trace_header));
        util_strlcpy(m[i].traceparent, PQgetvalue(r, i, 5), sizeof(m[i].traceparent));
        m[i].created_ms = strtoll(PQgetvalue(r, i, 6), NULL, 10);
    }
    PQclear(r);
    size_t failed = 0;
    if (n > 0) {
        log_kv(LOG_INFO, NULL, "relay: publishing unsent outbox rows", "rows", (long long)n, NULL);
        failed = send_all(m, (size_t)n);
    }
    db_exec(pub_db, "COMMIT", err, sizeof(err));
    for (int i = 0; i < n; i++)
        free(m[i].body);
    /* a round where nothing went out means SQS is down: stop for this interval */
    return failed == (size_t)n ? 0 : n;
}

static void relay(void)
{
    if (ensure_db() != 0)
        return;
    /* After an outage the backlog can be large: keep claiming full rounds
     * (bounded, so the fast path is not starved) while SQS takes them. */
    for (int round = 0; round < 50; round++)
        if (relay_round() < RELAY_CLAIM_MAX)
            break;

    const char *p[] = {api_cfg.queue_url};
    PGresult *r =
        PQexecParams(pub_db,
                     "SELECT count(*), coalesce((extract(epoch FROM now() - min(created_at))"
                     " * 1000)::bigint, 0) FROM outbox WHERE sent_at IS NULL"
                     " AND (queue_url = $1 OR queue_url IS NULL)",
                     1, NULL, p, NULL, NULL, 0);
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1) {
        atomic_store(&pub_backlog, strtoll(PQgetvalue(r, 0, 0), NULL, 10));
        atomic_store(&pub_oldest_ms, strtoll(PQgetvalue(r, 0, 1), NULL, 10));
    }
    PQclear(r);
}

/* Keys are kept 24 h as promised, sent outbox rows a week for investigations. */
static void purge(void)
{
    char err[512];
    if (ensure_db() != 0)
        return;
    if (db_exec(pub_db,
                "DELETE FROM idempotency_keys WHERE key IN (SELECT key FROM idempotency_keys"
                " WHERE created_at < now() - interval '24 hours' LIMIT 10000)",
                err, sizeof(err)) != 0 ||
        db_exec(pub_db,
                "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE sent_at < now()"
                " - interval '7 days' LIMIT 10000)",
                err, sizeof(err)) != 0)
        log_warn(NULL, "purge failed: %s", err);
}

static void *publisher_main(void *arg)
{
    (void)arg;
    int64_t next_relay = util_mono_ms() + api_cfg.relay_interval_ms;
    int64_t next_purge = util_mono_ms() + PURGE_EVERY_MS;

    for (;;) {
        pthread_mutex_lock(&pub_lock);
        while (!pub_count && !pub_stopping) {
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
            pthread_cond_timedwait(&pub_cond, &pub_lock, &ts);
        }
        bool stopping = pub_stopping && !pub_count;
        pthread_mutex_unlock(&pub_lock);
        if (stopping)
            break;
        fast_path();
        if (util_mono_ms() >= next_relay) {
            relay();
            next_relay = util_mono_ms() + api_cfg.relay_interval_ms;
        }
        if (util_mono_ms() >= next_purge) {
            purge();
            next_purge = util_mono_ms() + PURGE_EVERY_MS;
        }
    }
    return NULL;
}

int publisher_start(char *err, size_t errlen)
{
    snprintf(actor, sizeof(actor), "order-api/%s", log_instance_id());
    pub_creds = creds_provider_new_default(err, errlen);
    if (!pub_creds)
        return -1;
    pub_sqs = sqs_client_new(&api_cfg.sqs, pub_creds);
    pub_multi = curl_multi_init();
    if (!pub_sqs) {
        snprintf(err, errlen, "cannot create the SQS client");
        creds_provider_free(pub_creds);
        return -1;
    }
    if (pthread_create(&pub_thread, NULL, publisher_main, NULL) != 0) {
        snprintf(err, errlen, "cannot start the publisher thread");
        return -1;
    }
    return 0;
}

void publisher_enqueue(struct outbox_msg *msgs, size_t n)
{
    size_t dropped = 0;
    pthread_mutex_lock(&pub_lock);
    for (size_t i = 0; i < n; i++) {
        if (pub_count == PUB_QUEUE_CAP) {
            free(msgs[i].body); /* still unsent in the outbox: the relay takes it */
            dropped++;
            continue;
        }
        pub_queue[(pub_head + pub_count) % PUB_QUEUE_CAP] = msgs[i];
        pub_count++;
    }
    pthread_cond_signal(&pub_cond);
    pthread_mutex_unlock(&pub_lock);
    if (dropped) {
        /* under sustained overload this would fire on every commit: once a second is enough */
        static _Atomic int64_t last_warned;
        static _Atomic uint64_t dropped_since;
        uint64_t total = atomic_fetch_add(&dropped_since, dropped) + dropped;
        int64_t now = util_mono_ms(), last = atomic_load(&last_warned);
        if (now - last >= 1000 && atomic_compare_exchange_strong(&last_warned, &last, now)) {
            atomic_fetch_sub(&dropped_since, total);
            log_kv(LOG_WARN, NULL, "publisher queue full: messages left to the relay", "messages",
                   (long long)total, NULL);
        }
    }
}

void publisher_stop(void)
{
    pthread_mutex_lock(&pub_lock);
    pub_stopping = true;
    pthread_cond_signal(&pub_cond);
    pthread_mutex_unlock(&pub_lock);
    pthread_join(pub_thread, NULL);
    if (pub_db)
        PQfinish(pub_db);
    pub_db = NULL;
    curl_multi_cleanup(pub_multi);
    sqs_client_free(pub_sqs);
    creds_provider_free(pub_creds);
}
