/*
 * loop.c - order-worker's event loop: one thread, libcurl multi, timers.
 *
 * Payments are timers and provider calls on the loop, never sleeps: a
 * received order is held until its payment attempt is due (payment.c makes
 * it: a simulated draw, or an http call on this same multi handle) while the
 * loop keeps polling, so one worker holds up to WORKER_MAX_IN_FLIGHT orders
 * at once. Several long polls stay outstanding while there is room.
 * Everything that touches many messages is batched: one lookup statement for
 * whatever the receives of one loop turn brought (so the batches grow with
 * the load), one settle statement for the attempts that ended meanwhile,
 * DeleteMessageBatch and ChangeMessageVisibilityBatch by ten.
 *
 * A message is deleted only after its order is PROCESSED or FAILED (or found
 * already done), so a crash at any point means redelivery, and the
 * conditional update makes redelivery harmless. A provider error is retried
 * with backoff up to PAYMENT_MAX_ATTEMPTS, then the message is released with
 * the order still PENDING. Held messages get their visibility extended before
 * it runs out; on shutdown whatever is unfinished is made visible again at
 * once.
 *
 * A stop abandons the long polls that have received nothing yet instead of
 * waiting up to WaitTimeSeconds for them, so an idle worker exits at once.
 * SQS keeps an abandoned poll waiting on its side until its WaitTimeSeconds
 * end: a message arriving in that window is taken by it and comes back after
 * the visibility timeout (not lost, one receive spent). Unfinished held
 * messages are kept out of that window: they are released only once every
 * abandoned poll has expired on the server. The rare messages a poll brings
 * in after the stop began are handed back at once, with that same risk.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "credentials.h"
#include "log.h"
#include "loop.h"

#define RECEIVE_BATCH 10
#define DELETE_RETRIES 5
#define LOOKUP_BATCH 500 /* messages per lookup statement at most (<= JOB_MAX) */

/* The statement a ledger connection has out: lookups go on one connection,
 * settlements (JOB_PAY) on another, so neither waits for the other. */
enum job_kind { JOB_LOOKUP, JOB_PAY, JOB_NONE };
#define JOB_MAX 1024 /* messages per statement at most */
struct dbjob {
    struct ledger led;
    enum job_kind kind; /* JOB_NONE when idle */
    struct held *items[JOB_MAX];
    size_t n;
};

struct hqueue {
    struct held **v;
    size_t n, cap;
};

static struct {
    CURLM *multi;
    struct dbjob jobs[2]; /* [JOB_LOOKUP], [JOB_PAY] */
    struct sqs_client *sqs;
    struct creds_provider *creds;
    struct timer_heap timers; /* payments */
    /* all held messages, oldest first */
    struct held *first, *last;
    size_t held_n;
    /* messages waiting for their lookup, and for their attempt's settlement:
     * batched, and kept while the database is down */
    struct hqueue lookup_q, settle_q;
    /* deletes not yet sent */
    struct held *del_q[SQS_MAX_BATCH];
    size_t del_n;
    struct op *retries;
    struct op **recv_ops; /* receives on the multi handle, to abandon them on stop */
    size_t recv_n;
    int polls; /* outstanding ReceiveMessage */
    int ops;   /* outstanding other SQS requests */
    bool stopping;
    int64_t stop_deadline; /* held payments must be done by then */
    int64_t hard_deadline; /* and outstanding polls by then */
    bool polls_abandoned;
    int64_t abandoned_until; /* abandoned polls may still take messages on the server until then */
    bool released;
    int64_t db_retry_at;   /* no polls or DB work before this while the database is down */
    int64_t poll_retry_at; /* no polls before this after a receive could not be built */
    unsigned db_failures;
} L;

/* ---- held messages ----------------------------------------------------------- */

static void held_link(struct held *h)
{
    h->prev = L.last;
    h->next = NULL;
    if (L.last)
        L.last->next = h;
    else
        L.first = h;
    L.last = h;
    L.held_n++;
    atomic_store(&wmetrics.in_flight, (int64_t)L.held_n);
}

static void held_free(struct held *h)
{
    if (h->prev)
        h->prev->next = h->next;
    else
        L.first = h->next;
    if (h->next)
        h->next->prev = h->prev;
    else
        L.last = h->prev;
    L.held_n--;
    atomic_store(&wmetrics.in_flight, (int64_t)L.held_n);
    extend_forget(h);
    payment_forget(h);
    free(h->receipt);
    free(h);
}

struct log_fields fields_of(const struct held *h)
{
    struct log_fields f = {.order_id = h->order_id[0] ? h->order_id : NULL,
                           .correlation_id = h->correlation_id[0] ? h->correlation_id : NULL,
                           .message_id = h->message_id,
                           .trace_id = h->trace_header[0] ? h->trace_header : NULL,
                           .traceparent = h->traceparent[0] ? h->traceparent : NULL};
    return f;
}

/* ---- SQS requests on the multi handle --------------------------------------- */

static void op_start(struct op *o)
{
    struct sqs_error err;
    long extra = o->kind == OP_RECEIVE ? (long)wcfg.wait_time_s * 1000 : 0;
    if (sqs_request_prepare(o->req, extra, &err) != 0) {
        /* credentials could not be had: try again later */
        log_warn(NULL, "cannot sign SQS request: %s", err.message);
        o->retry_at = util_mono_ms() + sqs_request_backoff_ms(o->req) + 1000;
        o->next = L.retries;
        L.retries = o;
        return;
    }
    o->retry_at = 0;
    o->started_ms = util_mono_ms();
    if (o->kind == OP_RECEIVE)
        L.recv_ops[L.recv_n++] = o;
    curl_multi_add_handle(L.multi, sqs_request_easy(o->req));
    atomic_fetch_add(&wmetrics.sqs_requests, 1);
}

void loop_submit(struct op *o)
{
    L.ops++;
    op_start(o);
}

/* A request for body (taken over, also on failure), or NULL when the encoder
 * refused its input (body NULL) or memory ran out: callers log and carry on,
 * leaving the messages concerned to SQS's visibility timeout. */
static struct op *op_new(enum op_kind kind, enum sqs_action action, char *body)
{
    struct op *o = calloc(1, sizeof(*o));
    if (!o) {
        free(body);
        return NULL;
    }
    o->kind = kind;
    o->req = sqs_request_new(L.sqs, action, body, o);
    if (!o->req) {
        free(o);
        return NULL;
    }
    return o;
}

static void op_free(struct op *o)
{
    if (o->kind == OP_DELETE)
        for (size_t i = 0; i < o->n; i++)
            held_free(o->items[i]);
    sqs_request_free(o->req);
    free(o);
}

/* Starts one long poll; false (and no polls for a second) when the request
 * cannot be built. */
static bool start_poll(void)
{
    char *body = sqs_encode_receive_message(wcfg.queue_url, RECEIVE_BATCH, (int)wcfg.wait_time_s,
                                            (int)wcfg.visibility_s);
    struct op *o = op_new(OP_RECEIVE, SQS_RECEIVE_MESSAGE, body);
    if (!o) {
        L.poll_retry_at = util_mono_ms() + 1000;
        log_error(NULL, "cannot build a ReceiveMessage request (%s); retrying in 1 s",
                  body ? "out of memory" : "the queue URL or settings were refused");
        return false;
    }
    L.polls++;
    op_start(o);
    return true;
}

static void flush_deletes(void)
{
    if (!L.del_n)
        return;
    struct receipt_batch b;
    size_t n = L.del_n;
    receipt_batch_fill(&b, L.del_q, n, 0);
    L.del_n = 0;
    struct op *o = op_new(OP_DELETE, SQS_DELETE_MESSAGE_BATCH,
                          sqs_encode_delete_message_batch(wcfg.queue_url, b.e, b.n));
    if (!o) {
        /* Not deleted: each comes back after its visibility timeout and is
         * acknowledged then (its order is already done). */
        for (size_t i = 0; i < n; i++) {
            struct log_fields f = fields_of(L.del_q[i]);
            log_error(&f, "cannot build a DeleteMessageBatch request: message left for redelivery");
            held_free(L.del_q[i]);
        }
        return;
    }
    for (size_t i = 0; i < n; i++)
        o->items[i] = L.del_q[i];
    o->n = n;
    L.ops++;
    op_start(o);
}

void loop_ack(struct held *h)
{
    h->state = H_DONE;
    extend_forget(h);
    L.del_q[L.del_n++] = h;
    if (L.del_n == SQS_MAX_BATCH)
        flush_deletes();
}

static void change_visibility(struct held **h, size_t n, int timeout_s)
{
    struct receipt_batch b;
    for (size_t off = 0; off < n; off += SQS_MAX_BATCH) {
        receipt_batch_fill(&b, h + off, n - off, timeout_s);
        char *body = sqs_encode_change_visibility_batch(wcfg.queue_url, b.e, b.n);
        struct op *o = op_new(OP_VISIBILITY, SQS_CHANGE_MESSAGE_VISIBILITY_BATCH, body);
        if (!o) {
            /* Their visibility stays as it is: they come back when it runs out. */
            for (size_t i = 0; i < b.n; i++) {
                struct log_fields f = fields_of(h[off + i]);
                log_error(&f,
                          "cannot build a ChangeMessageVisibilityBatch request (timeout %d s): "
                          "message left to its current visibility",
                          timeout_s);
            }
            continue;
        }
        L.ops++;
        op_start(o);
    }
}

void loop_release(struct held *h, int visibility_s)
{
    struct held *one[1] = {h};
    change_visibility(one, 1, visibility_s); /* the request body holds a copy of the receipt */
    held_free(h);
}

/* ---- stopping --------------------------------------------------------------------- */

/* True once any byte of the answer has arrived: the poll has taken messages. */
static bool poll_answering(struct op *o)
{
    long code = 0;
    curl_off_t got = 0;
    CURL *e = sqs_request_easy(o->req);
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_getinfo(e, CURLINFO_SIZE_DOWNLOAD_T, &got);
    return code != 0 || got > 0;
}

/* Drops every long poll that has received nothing: nothing was taken from the
 * queue through it, so nothing is lost, and the worker need not wait out its
 * WaitTimeSeconds. A poll already answering completes normally and its
 * messages are released (release_received_while_stopping). */
static void abandon_idle_polls(void)
{
    size_t kept = 0, dropped = 0;
    for (size_t i = 0; i < L.recv_n; i++) {
        struct op *o = L.recv_ops[i];
        if (poll_answering(o)) {
            L.recv_ops[kept++] = o;
            continue;
        }
        int64_t until = o->started_ms + wcfg.wait_time_s * 1000 + 1000;
        if (until > L.abandoned_until)
            L.abandoned_until = until;
        curl_multi_remove_handle(L.multi, sqs_request_easy(o->req));
        L.polls--;
        op_free(o);
        dropped++;
    }
    L.recv_n = kept;
    L.polls_abandoned = true;
    log_kv(LOG_INFO, NULL, "stopping: idle long polls abandoned", "abandoned", (long long)dropped,
           "answering", (long long)kept, NULL);
}

/* Messages a poll brought in after the stop began: not started, so handed
 * straight back (visibility 0) for another worker. */
static void release_received_while_stopping(struct held **h, size_t n)
{
    log_kv(LOG_INFO, NULL, "stopping: returning messages received while stopping", "count",
           (long long)n, NULL);
    change_visibility(h, n, 0); /* the request bodies hold copies of the receipts */
    for (size_t i = 0; i < n; i++)
        held_free(h[i]);
}

/* ---- what happens to received messages ------------------------------------- */

static void db_failed(const char *what, const char *err)
{
    int64_t d = util_backoff_ms(L.db_failures++, 250, 10000) + 100;
    L.db_retry_at = util_mono_ms() + d;
    atomic_fetch_add(&wmetrics.failed, 1);
    log_warn(NULL, "%s: database unavailable (%s); retrying in %lld ms", what, err, (long long)d);
}

/* A message we will never be able to process: leave it to the redrive policy. */
static void poison(struct held *h, const char *reason)
{
    struct log_fields f = fields_of(h);
    atomic_fetch_add(&wmetrics.failed, 1);
    log_kv(LOG_ERROR, &f, reason, "receive_count", (long long)h->receive_count, NULL);
    if (h->receive_count == 0 || h->receive_count >= wcfg.max_receive_count)
        atomic_fetch_add(&wmetrics.dlq_bound, 1);
    loop_release(h, (int)wcfg.poison_delay_s);
}

/* Hands h back to the queue at once when the worker cannot keep it (memory). */
static void give_back(struct held *h, const char *reason)
{
    struct log_fields f = fields_of(h);
    log_kv(LOG_ERROR, &f, reason, "receive_count", (long long)h->receive_count, NULL);
    loop_release(h, 0);
}

void loop_schedule(struct held *h, int64_t due_ms)
{
    h->due_ms = due_ms;
    if (timer_heap_push(&L.timers, h) != 0)
        give_back(h, "out of memory for a payment timer: message returned to the queue");
}

static void enqueue(struct hqueue *q, struct held *h)
{
    if (q->n == q->cap) {
        size_t cap = q->cap ? q->cap * 2 : 64;
        struct held **v = realloc(q->v, cap * sizeof(*v));
        if (!v) {
            give_back(h, "out of memory for a queue of the loop: message returned to the queue");
            return;
        }
        q->v = v;
        q->cap = cap;
    }
    q->v[q->n++] = h;
}

void loop_payment_done(struct held *h)
{
    enqueue(&L.settle_q, h);
}

/* What the lookup of h[0..n) found: pay the pending ones after the delay,
 * acknowledge the ones already done, leave unknown ones to the DLQ. */
static void lookup_done(struct held **h, size_t n, const enum ledger_status *st)
{
    int64_t now = util_mono_ms();
    for (size_t i = 0; i < n; i++) {
        struct log_fields f = fields_of(h[i]);
        switch (st[i]) {
        case LEDGER_MISSING:
            poison(h[i], "poison message: no order has this id");
            break;
        case LEDGER_DONE:
            atomic_fetch_add(&wmetrics.skipped, 1);
            log_kv(LOG_INFO, &f, "order already processed or canceled: acknowledged, not paid",
                   "receive_count", (long long)h[i]->receive_count, NULL);
            loop_ack(h[i]);
            break;
        case LEDGER_PENDING: {
            if (h[i]->recheck) { /* still PENDING: the retry goes ahead */
                h[i]->recheck = false;
                payment_start(h[i]);
                break;
            }
            /* the simulated provider takes PAYMENT_DELAY_MS; the http one its own time */
            int64_t delay = wcfg.payment_provider == PAYMENT_HTTP ? 0 : wcfg.payment_delay_ms;
            h[i]->state = H_PAYING;
            h[i]->attempts = 0;
            h[i]->attempt_started_ms = now;
            log_kv(LOG_INFO, &f, "payment started", "receive_count", (long long)h[i]->receive_count,
                   "delay_ms", (long long)delay, NULL);
            loop_schedule(h[i], now + delay);
            break;
        }
        }
    }
}

/* An entry SQS sent that we can neither process nor delete: logged with what
 * is known of it and left alone, so its receives run out into the DLQ. */
static void log_rejected(const struct sqs_rejected *r)
{
    struct log_fields f = {.message_id = r->message_id[0] ? r->message_id : NULL};
    char msg[640];
    atomic_fetch_add(&wmetrics.failed, 1);
    atomic_fetch_add(&wmetrics.dlq_bound, 1); /* its receive count is unknown */
    snprintf(msg, sizeof(msg), "malformed message left for the dead-letter queue: %s",
             r->why.message);
    log_kv(LOG_ERROR, &f, msg, "receipt_handle_present", (long long)r->has_receipt_handle, NULL);
}

static void on_received(struct op *o)
{
    size_t len;
    const char *resp = sqs_request_response(o->req, &len);
    struct sqs_received rcv;
    struct sqs_error err;
    struct held *batch[RECEIVE_BATCH];
    size_t nb = 0;

    if (sqs_decode_receive_message(resp, len, &rcv, &err) != 0) {
        log_warn(NULL, "cannot read a ReceiveMessage response: %s", err.message);
        return;
    }
    for (size_t i = 0; i < rcv.n_rejected; i++)
        log_rejected(&rcv.rejected[i]);
    int64_t now = util_mono_ms();
    for (size_t i = 0; i < rcv.n; i++) {
        struct sqs_message *m = &rcv.msgs[i];
        struct held *h = calloc(1, sizeof(*h));
        char why[128];
        if (!h || !(h->receipt = strdup(m->receipt_handle))) {
            struct log_fields f = {.message_id = m->message_id};
            log_error(&f, "out of memory: message left for redelivery");
            free(h);
            continue;
        }
        util_strlcpy(h->message_id, m->message_id, sizeof(h->message_id));
        h->receive_count = m->receive_count;
        h->received_ms = now;
        h->visible_until_ms = now + wcfg.visibility_s * 1000;
        h->state = H_LOOKUP;
        const char *cid = sqs_message_attr(m, "correlation_id");
        if (cid && order_correlation_id_valid(cid))
            util_strlcpy(h->correlation_id, cid, sizeof(h->correlation_id));
        const char *tp = sqs_message_attr(m, "traceparent");
        if (tp)
            util_strlcpy(h->traceparent, tp, sizeof(h->traceparent));
        if (m->trace_header)
            util_strlcpy(h->trace_header, m->trace_header, sizeof(h->trace_header));
        held_link(h);
        extend_track(h);
        atomic_fetch_add(&wmetrics.received, 1);
        if (m->receive_count > 1)
            atomic_fetch_add(&wmetrics.redelivered, 1);
        if (order_message_parse(m->body, strlen(m->body), h->order_id, why, sizeof(why)) != 0) {
            char reason[200];
            snprintf(reason, sizeof(reason), "poison message: %s", why);
            poison(h, reason);
            continue;
        }
        struct log_fields f = fields_of(h);
        log_kv(LOG_DEBUG, &f, "message received", "receive_count", (long long)m->receive_count,
               NULL);
        batch[nb++] = h;
    }
    sqs_received_free(&rcv);
    if (nb && L.stopping) {
        release_received_while_stopping(batch, nb);
        return;
    }
    for (size_t i = 0; i < nb; i++)
        enqueue(&L.lookup_q, batch[i]);
}

/* ---- database statements, one out per connection ---------------------------- */

/* A statement's messages go back where they came from when it fails. */
static void job_failed(struct dbjob *j, const char *err)
{
    db_failed(j->kind == JOB_LOOKUP ? "lookup" : "payment", err);
    for (size_t i = 0; i < j->n; i++) {
        /* a settlement keeps its outcome: the provider is not asked again */
        enqueue(j->kind == JOB_LOOKUP ? &L.lookup_q : &L.settle_q, j->items[i]);
    }
    j->kind = JOB_NONE;
    j->n = 0;
}

static void job_send(struct dbjob *j, enum job_kind kind)
{
    char err[512];
    int rc = kind == JOB_LOOKUP ? ledger_send_lookup(&j->led, j->items, j->n, err, sizeof(err))
                                : ledger_send_settle(&j->led, j->items, j->n, err, sizeof(err));
    j->kind = kind;
    if (rc != 0)
        job_failed(j, err);
}

/* Sends up to max messages of q in j's statement. */
static void run_job(struct dbjob *j, enum job_kind kind, struct hqueue *q, size_t max, int64_t now)
{
    if (!q->n || now < L.db_retry_at || j->kind != JOB_NONE)
        return;
    j->n = q->n < max ? q->n : max;
    memcpy(j->items, q->v, j->n * sizeof(*j->items));
    q->n -= j->n;
    memmove(q->v, q->v + j->n, q->n * sizeof(*q->v));
    job_send(j, kind);
}

/* Starts the attempt of every order whose timer is due. */
static void run_due_payments(int64_t now)
{
    while (timer_heap_peek(&L.timers) && timer_heap_peek(&L.timers)->due_ms <= now) {
        struct held *h = timer_heap_pop(&L.timers);
        if (h->recheck)
            enqueue(&L.lookup_q, h); /* a retry: is the order still PENDING? */
        else
            payment_start(h);
    }
}

/* Reads the answer of j's statement if it is in. */
static void job_poll(struct dbjob *j)
{
    PGresult *r;
    char err[512];
    if (j->kind == JOB_NONE)
        return;
    int rc = ledger_result(&j->led, &r, err, sizeof(err));
    if (rc == 0)
        return;
    if (rc < 0) {
        job_failed(j, err);
        return;
    }
    L.db_failures = 0;
    enum job_kind kind = j->kind;
    j->kind = JOB_NONE;
    if (kind == JOB_LOOKUP) {
        enum ledger_status st[JOB_MAX];
        ledger_read_lookup(r, j->items, j->n, st);
        lookup_done(j->items, j->n, st);
    } else {
        enum ledger_settled st[JOB_MAX];
        ledger_read_settle(r, j->n, st);
        settle_done(j->items, j->n, st);
    }
    PQclear(r);
    j->n = 0;
}

static bool jobs_busy(void)
{
    return L.jobs[JOB_LOOKUP].kind != JOB_NONE || L.jobs[JOB_PAY].kind != JOB_NONE;
}

static void recv_forget(struct op *o)
{
    for (size_t i = 0; i < L.recv_n; i++)
        if (L.recv_ops[i] == o) {
            L.recv_ops[i] = L.recv_ops[--L.recv_n];
            return;
        }
}

/* ---- completions -------------------------------------------------------------- */

static void on_done(CURL *easy, CURLcode code)
{
    struct sqs_error err;
    if (payment_handles(easy, code))
        return;
    /* the client keeps its request in the handle; ours hangs off it */
    struct sqs_request *r = sqs_request_from_easy(easy);
    curl_multi_remove_handle(L.multi, easy);
    if (!r)
        return;
    struct op *o = sqs_request_userdata(r);
    if (o->kind == OP_EXTEND) {
        L.ops--;
        extension_done(o, code);
        op_free(o);
        return;
    }
    if (o->kind == OP_RECEIVE)
        recv_forget(o);
    struct sqs_request *req = o->req;
    if (sqs_request_complete(req, code, &err) != 0) {
        atomic_fetch_add(&wmetrics.sqs_errors, 1);
        if (o->kind == OP_RECEIVE)
            atomic_fetch_add(&wmetrics.receive_errors, 1);
        bool retry = sqs_error_retryable(&err) &&
                     (o->kind == OP_RECEIVE || sqs_request_attempts(req) < DELETE_RETRIES);
        if (o->kind == OP_RECEIVE && L.stopping)
            retry = false;
        log_warn(NULL, "SQS %s failed (%s%s%s)%s", sqs_action_name(sqs_request_action(req)),
                 err.type[0] ? err.type : "", err.type[0] ? ": " : "", err.message,
                 retry ? "; will retry" : "");
        if (retry) {
            o->retry_at = util_mono_ms() + sqs_request_backoff_ms(req);
            o->next = L.retries;
            L.retries = o;
            return;
        }
        if (o->kind == OP_RECEIVE)
            L.polls--;
        else
            L.ops--;
        op_free(o); /* undeleted messages come back and are acknowledged then */
        return;
    }
    size_t len;
    const char *resp = sqs_request_response(req, &len);
    if (o->kind == OP_RECEIVE) {
        L.polls--;
        on_received(o);
    } else {
        L.ops--;
        struct sqs_batch_result res;
        if (sqs_decode_batch_result(resp, len, &res, &err) == 0) {
            for (size_t i = 0; i < res.n_failed; i++)
                log_warn(NULL, "SQS %s entry failed: %s: %s",
                         sqs_action_name(sqs_request_action(req)),
                         res.failed[i].code ? res.failed[i].code : "",
                         res.failed[i].message ? res.failed[i].message : "");
            sqs_batch_result_free(&res);
        }
    }
    op_free(o);
}

static void run_retries(int64_t now, int64_t *next_timer)
{
    struct op **pp = &L.retries;
    while (*pp) {
        struct op *o = *pp;
        if (o->kind == OP_RECEIVE && L.stopping) {
            *pp = o->next;
            L.polls--;
            op_free(o);
            continue;
        }
        if (o->retry_at <= now) {
            *pp = o->next;
            op_start(o);
            continue;
        }
        if (o->retry_at < *next_timer)
            *next_timer = o->retry_at;
        pp = &o->next;
    }
}

/* Makes every unfinished message visible again at once: it goes back to the
 * queue for another worker instead of waiting out its visibility timeout. */
static void release_held(void)
{
    struct held *rel[SQS_MAX_BATCH], *next;
    size_t n = 0, total = 0;
    for (struct held *h = L.first; h; h = h->next)
        total += h->state != H_DONE;
    if (total)
        log_kv(LOG_WARN, NULL, "stopping: returning unfinished messages to the queue", "count",
               (long long)total, NULL);
    L.timers.n = 0;
    L.lookup_q.n = 0;
    L.settle_q.n = 0;
    /* a batch at a time, so returning them needs no memory it might not get */
    for (struct held *h = L.first; h; h = next) {
        next = h->next;
        if (h->state != H_DONE)
            rel[n++] = h;
        if (n == SQS_MAX_BATCH || (!next && n)) {
            change_visibility(rel, n, 0); /* the request bodies hold copies of the receipts */
            for (size_t i = 0; i < n; i++)
                held_free(rel[i]);
            n = 0;
        }
    }
}

static void begin_stop(void)
{
    L.stopping = true;
    L.stop_deadline = util_mono_ms() + wcfg.shutdown_grace_ms;
    L.hard_deadline = L.stop_deadline + wcfg.wait_time_s * 1000 + 5000;
    log_kv(LOG_INFO, NULL, "stopping: no new receives, finishing held orders", "held",
           (long long)L.held_n, "grace_ms", (long long)wcfg.shutdown_grace_ms, NULL);
}

/* Last resort when polls outlive the hard deadline. */
static void abort_polls(void)
{
    while (L.recv_n) {
        struct op *o = L.recv_ops[--L.recv_n];
        curl_multi_remove_handle(L.multi, sqs_request_easy(o->req));
        L.polls--;
        op_free(o);
    }
}

int loop_run(int signal_fd)
{
    char err[512];
    int rc = 0;

    L.multi = curl_multi_init();
    if (!L.multi || curl_events_init(L.multi, err, sizeof(err)) != 0) {
        log_error(NULL, "cannot start the event loop: %s", L.multi ? err : "out of memory");
        if (L.multi)
            curl_multi_cleanup(L.multi);
        return 1;
    }
    L.recv_ops = calloc((size_t)wcfg.max_polls, sizeof(*L.recv_ops));
    /* per host: SQS, and the payment provider's calls (one per held order at most) */
    curl_multi_setopt(L.multi, CURLMOPT_MAX_HOST_CONNECTIONS,
                      (long)(wcfg.max_polls + EXTEND_MAX_CALLS + 16 +
                             (wcfg.payment_provider == PAYMENT_HTTP ? wcfg.max_in_flight : 0)));
    L.creds = creds_provider_new_default(err, sizeof(err));
    if (!L.creds) {
        log_error(NULL, "no AWS credentials: %s", err);
        curl_multi_cleanup(L.multi);
        curl_events_cleanup();
        return 1;
    }
    if (payment_init(L.multi, err, sizeof(err)) != 0) {
        log_error(NULL, "cannot start the payment provider: %s", err);
        creds_provider_free(L.creds);
        curl_multi_cleanup(L.multi);
        curl_events_cleanup();
        return 1;
    }
    L.sqs = sqs_client_new(&wcfg.sqs, L.creds);
    extend_init(L.sqs);
    ledger_init();
    L.jobs[JOB_LOOKUP].kind = L.jobs[JOB_PAY].kind = JOB_NONE;
    if (ledger_connect(&L.jobs[JOB_LOOKUP].led, err, sizeof(err)) != 0 ||
        ledger_connect(&L.jobs[JOB_PAY].led, err, sizeof(err)) != 0)
        db_failed("connect", err);

    for (;;) {
        int64_t now = util_mono_ms();
        if (L.stopping) {
            if (!L.polls_abandoned)
                abandon_idle_polls();
            /* Release only once no poll of ours is left, here or on the
             * server: a released message would otherwise be taken straight
             * back, burning a receive towards the dead-letter queue. */
            bool payments_left = L.timers.n > 0 || L.lookup_q.n > 0 || L.settle_q.n > 0 ||
                                 payment_in_flight() > 0 || jobs_busy();
            /* (and never under a statement that holds some of them) */
            if (!L.released && L.polls == 0 && now >= L.abandoned_until && !jobs_busy() &&
                (now >= L.stop_deadline || !payments_left)) {
                release_held();
                L.released = true;
            }
            if (L.held_n == 0 && L.ops == 0 && L.polls == 0 && L.del_n == 0 && !jobs_busy())
                break;
            if (now >= L.hard_deadline) {
                log_warn(NULL, "stopping: requests still outstanding at the hard deadline");
                abort_polls();
                break;
            }
        } else {
            while (L.polls < wcfg.max_polls && now >= L.db_retry_at && now >= L.poll_retry_at &&
                   (int64_t)L.held_n + (int64_t)(L.polls + 1) * RECEIVE_BATCH <=
                       wcfg.max_in_flight &&
                   start_poll())
                ;
        }
        int64_t next = now + 1000;
        run_due_payments(now); /* (retries queue their recheck for the lookup) */
        run_job(&L.jobs[JOB_LOOKUP], JOB_LOOKUP, &L.lookup_q, LOOKUP_BATCH, now);
        run_job(&L.jobs[JOB_PAY], JOB_PAY, &L.settle_q, JOB_MAX, now);
        extend_visibility(now, &next);
        flush_deletes();

        run_retries(now, &next);
        if (timer_heap_peek(&L.timers) && timer_heap_peek(&L.timers)->due_ms < next)
            next = timer_heap_peek(&L.timers)->due_ms;
        if (L.db_retry_at > now && L.db_retry_at < next)
            next = L.db_retry_at;
        if (L.stopping && !L.released && L.stop_deadline < next)
            next = L.stop_deadline;
        if (L.stopping && !L.released && L.abandoned_until > now && L.abandoned_until < next)
            next = L.abandoned_until;
        if (L.stopping && L.hard_deadline < next)
            next = L.hard_deadline;
        int timeout = (int)(next - util_mono_ms());
        if (timeout < 0)
            timeout = 0;

        /* [0]: curl_events.c's epoll set; then the signals and PostgreSQL */
        struct pollfd pfd[4] = {[1] = {.fd = signal_fd, .events = POLLIN}};
        unsigned nfd = 2;
        for (int k = 0; k < 2; k++)
            if (ledger_socket(&L.jobs[k].led) >= 0)
                pfd[nfd++] = (struct pollfd){.fd = ledger_socket(&L.jobs[k].led), .events = POLLIN};
        int q;
        curl_events_wait(pfd, nfd, timeout);
        if (pfd[1].revents & POLLIN) {
            struct signalfd_siginfo si;
            if (read(signal_fd, &si, sizeof(si)) == sizeof(si) && !L.stopping) {
                log_info(NULL, "received %s", si.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT");
                begin_stop();
            }
        }
        CURLMsg *m;
        while ((m = curl_multi_info_read(L.multi, &q)))
            if (m->msg == CURLMSG_DONE)
                on_done(m->easy_handle, m->data.result);
        job_poll(&L.jobs[JOB_LOOKUP]);
        job_poll(&L.jobs[JOB_PAY]);
    }
    log_kv(LOG_INFO, NULL, "order-worker stopped", "processed",
           (long long)atomic_load(&wmetrics.processed), NULL);
    ledger_close(&L.jobs[JOB_LOOKUP].led);
    ledger_close(&L.jobs[JOB_PAY].led);
    payment_cleanup();
    sqs_client_free(L.sqs);
    creds_provider_free(L.creds);
    curl_multi_cleanup(L.multi);
    curl_events_cleanup();
    timer_heap_free(&L.timers);
    free(L.lookup_q.v);
    free(L.settle_q.v);
    free(L.recv_ops);
    return rc;
}
