/*
 * committer.c - group commit of new orders.
 *
 * HTTP threads validate a POST and queue it here; this one thread takes
 * everything queued and writes it in ONE statement (orders, outbox rows and
 * RECEIVED events together, so an order never exists without its message).
 * Batches form by themselves: while one commit runs, the next requests queue
 * up, so under load each commit carries many orders and when idle each order
 * commits alone with no added wait.
 *
 * Requests with an Idempotency-Key are committed one by one under an advisory
 * lock on the key, so two replicas racing on the same key still create one order.
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

static pthread_mutex_t cm_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cm_cond = PTHREAD_COND_INITIALIZER;
static struct create_job *cm_head, *cm_tail;
static bool cm_stopping;
static pthread_t cm_thread;
static PGconn *cm_db;
static PGcancel *cm_cancel; /* for cm_db, under cm_lock: shutdown may cancel a hung statement */
static bool cm_done;        /* the thread has finished, under cm_lock */

/* One statement: a data-modifying CTE is atomic, and the outbox's foreign key
 * is checked at the end of the statement, after the orders are in. */
static const char insert_sql[] =
    "WITH input AS ("
    "  SELECT * FROM unnest($1::uuid[], $2::text[], $3::jsonb[], $4::bigint[], $5::text[],"
    "                       $6::text[], $7::text[], $8::text[], $9::text[], $12::text[])"
    "    AS t(id, customer_id, items, total_cents, currency, correlation_id, body,"
    "         trace_header, traceparent, created_by)"
    "), ins AS ("
    "  INSERT INTO orders (id, customer_id, items, total_cents, currency, correlation_id,"
    "                      created_by)"
    "  SELECT id, customer_id, items, total_cents, currency, correlation_id,"
    "         nullif(created_by, '') FROM input"
    "  RETURNING id, created_at"
    "), ob AS ("
    "  INSERT INTO outbox (order_id, body, correlation_id, trace_header, traceparent, queue_url)"
    "  SELECT id, body, correlation_id, nullif(trace_header, ''), nullif(traceparent, ''), $11"
    "  FROM input RETURNING id AS outbox_id, order_id"
    "), ev AS ("
    "  INSERT INTO order_events (order_id, step, actor, correlation_id, detail)"
    "  SELECT id, 'RECEIVED', $10, correlation_id,"
    "         jsonb_build_object('trace_header', nullif(trace_header, ''),"
    "                            'traceparent', nullif(traceparent, ''))"
    "  FROM input"
    ")"
    "SELECT ins.id::text,"
    "       to_char(ins.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'),"
    "       ob.outbox_id, (extract(epoch FROM ins.created_at) * 1000)::bigint"
    "  FROM ins JOIN ob ON ob.order_id = ins.id";

static int ensure_db(char *err, size_t errlen)
{
    if (cm_db && PQstatus(cm_db) == CONNECTION_OK)
        return 0;
    if (db_ensure(&cm_db, api_cfg.database_url, "order-api-committer", err, errlen) != 0)
        return -1;
    pthread_mutex_lock(&cm_lock);
    if (cm_cancel)
        PQfreeCancel(cm_cancel);
    cm_cancel = PQgetCancel(cm_db);
    pthread_mutex_unlock(&cm_lock);
    PGresult *r = PQprepare(cm_db, "insert_orders", insert_sql, 12, NULL);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    int rc = 0;
    if (!ok) {
        db_error(cm_db, r, err, errlen);
        /* connected, but the statement is refused (schema missing?): not an outage */
        rc = db_is_connection_error(cm_db, r) ? -1 : -2;
        PQfinish(cm_db);
        cm_db = NULL;
    }
    PQclear(r);
    return rc;
}

static char *order_response(const struct create_job *j, const char *created_at)
{
    json_t *items = order_items_json(&j->req);
    struct order_view v = {.id = j->id,
                           .status = "PENDING",
                           .customer_id = j->req.customer_id,
                           .currency = j->req.currency,
                           .items = items,
                           .total_cents = j->req.total_cents,
                           .correlation_id = j->correlation_id,
                           .created_at = created_at,
                           .updated_at = created_at};
    json_t *o = order_json(&v);
    char *s = o ? util_json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(o);
    json_decref(items);
    return s;
}

static char *error_body(const char *code, const char *message)
{
    json_t *e = order_error_json(code, message, NULL, 0);
    char *s = util_json_dumps(e, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(e);
    return s;
}

static void fail_job(struct create_job *j, int status, const char *code, const char *message)
{
    j->status = status;
    j->response_body = error_body(code, message);
}

/* Runs insert_orders for jobs[0..n); fills responses and outbox messages.
 * Returns 0, or -1 with res_err telling whether the connection was lost. */
static int insert_batch(struct create_job **jobs, size_t n, struct outbox_msg *out, bool *conn_lost,
                        char *err, size_t errlen)
{
    struct buf a[10];
    char actor[64];
    const char *params[12];
    char **bodies = calloc(n, sizeof(char *));
    int rc = -1;

    *conn_lost = false;
    snprintf(actor, sizeof(actor), "order-api/%s", log_instance_id());
    for (int k = 0; k < 10; k++)
        db_array_init(&a[k]);
    if (!bodies) {
        util_errf(err, errlen, "out of memory");
        goto out_arrays;
    }
    for (size_t i = 0; i < n; i++) {
        struct create_job *j = jobs[i];
        json_t *it = order_items_json(&j->req);
        char *items = it ? util_json_dumps(it, JSON_COMPACT) : NULL;
        json_decref(it);
        bodies[i] = order_message_body(j->id);
        if (!items || !bodies[i]) {
            free(items);
            util_errf(err, errlen, "out of memory");
            goto out;
        }
        db_array_add(&a[0], j->id);
        db_array_add(&a[1], j->req.customer_id);
        db_array_add(&a[2], items);
        db_array_add_int(&a[3], (long long)j->req.total_cents);
        db_array_add(&a[4], j->req.currency);
        db_array_add(&a[5], j->correlation_id);
        db_array_add(&a[6], bodies[i]);
        db_array_add(&a[7], j->trace_header);
        db_array_add(&a[8], j->traceparent);
        db_array_add(&a[9], j->principal);
        free(items);
    }
    for (int k = 0; k < 9; k++)
        params[k] = db_array_finish(&a[k]);
    params[9] = actor;
    params[10] = api_cfg.queue_url;
    params[11] = db_array_finish(&a[9]);
    for (int k = 0; k < 12; k++) {
        if (!params[k]) {
            util_errf(err, errlen, "out of memory");
            goto out;
        }
    }

    PGresult *r = PQexecPrepared(cm_db, "insert_orders", 12, params, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || (size_t)PQntuples(r) != n) {
        db_error(cm_db, r, err, errlen);
        *conn_lost = db_is_connection_error(cm_db, r);
        PQclear(r);
        goto out;
    }
    /* Rows come back in no promised order: match them to jobs by id. */
    for (int row = 0; row < PQntuples(r); row++) {
        const char *id = PQgetvalue(r, row, 0);
        for (size_t i = 0; i < n; i++) {
            struct create_job *j = jobs[i];
            if (strcmp(j->id, id) != 0)
                continue;
            j->status = 201;
            j->response_body = order_response(j, PQgetvalue(r, row, 1));
            struct outbox_msg *m = &out[i];
            m->outbox_id = strtoll(PQgetvalue(r, row, 2), NULL, 10);
            m->created_ms = strtoll(PQgetvalue(r, row, 3), NULL, 10);
            util_strlcpy(m->order_id, j->id, sizeof(m->order_id));
            util_strlcpy(m->correlation_id, j->correlation_id, sizeof(m->correlation_id));
            util_strlcpy(m->trace_header, j->trace_header, sizeof(m->trace_header));
            util_strlcpy(m->traceparent, j->traceparent, sizeof(m->traceparent));
            m->body = bodies[i];
            bodies[i] = NULL;
        }
    }
    PQclear(r);
    rc = 0;
out:
    for (size_t i = 0; i < n; i++)
        free(bodies[i]);
    free(bodies);
out_arrays:
    for (int k = 0; k < 10; k++)
        buf_free(&a[k]);
    return rc;
}

static void publish(struct outbox_msg *msgs, struct create_job **jobs, size_t n)
{
    /* Only the rows that committed go to the publisher (body set). */
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (msgs[i].body)
            msgs[k++] = msgs[i];
    if (k)
        publisher_enqueue(msgs, k);
    for (size_t i = 0; i < n; i++)
        if (jobs[i]->status == 201) {
            atomic_fetch_add(&api_metrics.orders_created, 1);
            struct log_fields f = {.order_id = jobs[i]->id,
                                   .correlation_id = jobs[i]->correlation_id,
                                   .trace_id =
                                       jobs[i]->trace_header[0] ? jobs[i]->trace_header : NULL,
                                   .traceparent = jobs[i]->traceparent};
            log_kv(LOG_INFO, &f, "order received", "total_cents",
                   (long long)jobs[i]->req.total_cents, "items", (long long)jobs[i]->req.n_items,
                   NULL);
        }
}

/* Looks up a stored key. Returns 1 and fills the job when found, 0 when new, -1 on error. */
static int idempotency_lookup(struct create_job *j, char *err, size_t errlen, bool *lost)
{
    const char *p[] = {j->idempotency_key, j->principal};
    PGresult *r =
        PQexecParams(cm_db,
                     "SELECT request_hash, response_status, response_body FROM idempotency_keys"
                     " WHERE key = $1 AND principal = $2",
                     2, NULL, p, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        db_error(cm_db, r, err, errlen);
        *lost = db_is_connection_error(cm_db, r);
        PQclear(r);
        return -1;
    }
    if (PQntuples(r) == 0) {
        PQclear(r);
        return 0;
    }
    if (strcmp(PQgetvalue(r, 0, 0), j->req.hash) == 0) {
        j->status = atoi(PQgetvalue(r, 0, 1));
        j->response_body = strdup(PQgetvalue(r, 0, 2));
        j->replayed = true;
    } else {
        fail_job(j, 422, "idempotency_key_reused",
                 "this Idempotency-Key was already used with a different request body");
    }
    PQclear(r);
    return 1;
}

static void commit_idempotent(struct create_job *j)
{
    char err[512];
    bool lost = false;
    struct outbox_msg msg;
    char status_s[32];

    memset(&msg, 0, sizeof(msg));
    if (db_exec(cm_db, "BEGIN", err, sizeof(err)) != 0)
        goto db_fail;
    /* Serialises requests carrying the same key across every replica. */
    const char *lp[] = {j->idempotency_key, j->principal};
    PGresult *r =
        PQexecParams(cm_db, "SELECT pg_advisory_xact_lock(hashtextextended($2 || ' ' || $1, 0))", 2,
                     NULL, lp, NULL, NULL, 0);
    bool locked = PQresultStatus(r) == PGRES_TUPLES_OK;
    if (!locked)
        db_error(cm_db, r, err, sizeof(err));
    PQclear(r);
    if (!locked)
        goto rollback;
    int found = idempotency_lookup(j, err, sizeof(err), &lost);
    if (found < 0)
        goto rollback;
    if (found) {
        db_exec(cm_db, "COMMIT", err, sizeof(err));
        if (j->replayed)
            atomic_fetch_add(&api_metrics.idempotent_replays, 1);
        return;
    }
    struct create_job *one[1] = {j};
    if (insert_batch(one, 1, &msg, &lost, err, sizeof(err)) != 0)
        goto rollback;
    snprintf(status_s, sizeof(status_s), "%d", j->status);
    const char *ip[] = {j->idempotency_key, j->req.hash,      j->id,
                        status_s,           j->response_body, j->principal};
    r = PQexecParams(cm_db,
                     "INSERT INTO idempotency_keys (key, request_hash, order_id, response_status,"
                     " response_body, principal) VALUES ($1, $2, $3, $4, $5, $6)",
                     6, NULL, ip, NULL, NULL, 0);
    bool stored = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!stored) {
        db_error(cm_db, r, err, sizeof(err));
        lost = db_is_connection_error(cm_db, r);
    }
    PQclear(r);
    if (!stored || db_exec(cm_db, "COMMIT", err, sizeof(err)) != 0)
        goto rollback;
    publish(&msg, one, 1);
    return;

rollback:
    if (!lost)
        db_exec(cm_db, "ROLLBACK", err + 256, 256);
    free(msg.body);
    free(j->response_body);
    j->response_body = NULL;
db_fail:
    lost = lost || db_is_connection_error(cm_db, NULL);
    atomic_fetch_add(&api_metrics.db_errors, 1);
    {
        struct log_fields f = {.order_id = j->id, .correlation_id = j->correlation_id};
        log_error(&f, "idempotent order not stored: %s", err);
    }
    if (lost)
        fail_job(j, 503, "unavailable", "the database is unavailable; retry later");
    else
        fail_job(j, 500, "internal", "the order could not be stored");
}

static void commit_plain(struct create_job **jobs, size_t n)
{
    char err[512];
    bool lost = false;
    struct outbox_msg *msgs = calloc(n, sizeof(*msgs));
    int64_t t0 = util_mono_ms();

    if (insert_batch(jobs, n, msgs, &lost, err, sizeof(err)) == 0) {
        histogram_observe_ms(&api_metrics.commit_batch_latency, (double)(util_mono_ms() - t0));
        atomic_fetch_add(&api_metrics.group_commits, 1);
        publish(msgs, jobs, n);
        free(msgs);
        return;
    }
    free(msgs);
    atomic_fetch_add(&api_metrics.db_errors, 1);
    if (!lost && n > 1) {
        /* Something in the batch was refused: commit one by one so that a
         * single bad row cannot fail its neighbours. */
        log_warn(NULL, "group commit of %zu orders failed (%s); retrying one by one", n, err);
        for (size_t i = 0; i < n; i++)
            commit_plain(&jobs[i], 1);
        return;
    }
    log_error(NULL, "orders not stored: %s", err);
    for (size_t i = 0; i < n; i++) {
        if (lost)
            fail_job(jobs[i], 503, "unavailable", "the database is unavailable; retry later");
        else
            fail_job(jobs[i], 500, "internal", "the order could not be stored");
    }
}

static void process(struct create_job *list)
{
    struct create_job *plain[1024];
    size_t n = 0;
    char err[512];

    int db = ensure_db(err, sizeof(err));
    if (db != 0) {
        log_error(NULL, "%s: %s", db == -1 ? "database unavailable" : "database not usable", err);
        atomic_fetch_add(&api_metrics.db_errors, 1);
        for (struct create_job *j = list; j; j = j->next) {
            if (db == -1)
                fail_job(j, 503, "unavailable", "the database is unavailable; retry later");
            else
                fail_job(j, 500, "internal", "the order could not be stored");
        }
    } else {
        for (struct create_job *j = list; j; j = j->next) {
            if (atomic_load(&j->state) == JOB_ABANDONED)
                continue; /* its client was already told 503 at shutdown */
            if (j->idempotency_key[0])
                commit_idempotent(j);
            else if (n < sizeof(plain) / sizeof(plain[0]))
                plain[n++] = j;
        }
        if (n)
            commit_plain(plain, n);
    }
    /* Read next before done(): the job belongs to its HTTP thread again after it. */
    struct create_job *next;
    for (struct create_job *j = list; j; j = next) {
        int queued = JOB_QUEUED;
        next = j->next;
        if (atomic_compare_exchange_strong(&j->state, &queued, JOB_DONE)) {
            j->done(j, j->done_arg);
        } else { /* abandoned at shutdown: ours to free */
            free(j->response_body);
            free(j);
        }
    }
}

static void *committer_main(void *arg)
{
    (void)arg;
    for (;;) {
        pthread_mutex_lock(&cm_lock);
        while (!cm_head && !cm_stopping)
            pthread_cond_wait(&cm_cond, &cm_lock);
        if (!cm_head && cm_stopping) {
            pthread_mutex_unlock(&cm_lock);
            break;
        }
        /* Take up to batch_max queued jobs. */
        struct create_job *list = cm_head, *last = cm_head;
        for (int64_t k = 1; k < api_cfg.batch_max && last->next; k++)
            last = last->next;
        cm_head = last->next;
        if (!cm_head)
            cm_tail = NULL;
        last->next = NULL;
        pthread_mutex_unlock(&cm_lock);
        process(list);
    }
    pthread_mutex_lock(&cm_lock);
    if (cm_cancel)
        PQfreeCancel(cm_cancel);
    cm_cancel = NULL;
    cm_done = true;
    pthread_cond_broadcast(&cm_cond);
    pthread_mutex_unlock(&cm_lock);
    if (cm_db)
        PQfinish(cm_db);
    cm_db = NULL;
    return NULL;
}

int committer_start(char *err, size_t errlen)
{
    if (api_cfg.batch_max > 1024)
        api_cfg.batch_max = 1024;
    cm_stopping = false;
    cm_done = false;
    if (pthread_create(&cm_thread, NULL, committer_main, NULL) != 0) {
        snprintf(err, errlen, "cannot start the committer thread");
        return -1;
    }
    return 0;
}

void committer_submit(struct create_job *j)
{
    j->next = NULL;
    pthread_mutex_lock(&cm_lock);
    if (cm_tail)
        cm_tail->next = j;
    else
        cm_head = j;
    cm_tail = j;
    pthread_cond_broadcast(&cm_cond); /* committer_stop may be waiting on it too */
    pthread_mutex_unlock(&cm_lock);
}

bool committer_abandon(struct create_job *j)
{
    int queued = JOB_QUEUED;
    return atomic_compare_exchange_strong(&j->state, &queued, JOB_ABANDONED);
}

void committer_stop(int64_t wait_ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += wait_ms / 1000;
    ts.tv_nsec += (wait_ms % 1000) * 1000000;
    if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&cm_lock);
    cm_stopping = true;
    pthread_cond_broadcast(&cm_cond);
    int rc = 0;
    while (!cm_done && rc == 0)
        rc = pthread_cond_timedwait(&cm_cond, &cm_lock, &ts);
    if (!cm_done && cm_cancel) {
        /* A statement hangs (a lock held elsewhere, a stalled server): cancel
         * it; the jobs it carried fail and their clients already have 503s. */
        char err[256];
        log_warn(NULL, "committer: canceling a statement still running at shutdown");
        PQcancel(cm_cancel, err, sizeof(err));
    }
    pthread_mutex_unlock(&cm_lock);
    pthread_join(cm_thread, NULL);
}
