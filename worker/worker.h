/*
 * worker.h - what the parts of order-worker share: configuration, the held
 * message, the ledger (SQL) and the metrics.
 */
#ifndef ORDER_WORKER_H
#define ORDER_WORKER_H

#include <libpq-fe.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "emf.h"
#include "metrics.h"
#include "payment.h"
#include "order.h"
#include "sqs.h"
#include "util.h"

enum payment_provider { PAYMENT_SIMULATED = 0, PAYMENT_HTTP = 1 };

/* Filled once at start from the table in main.c; read-only afterwards. */
struct worker_config {
    const char *database_url;
    const char *queue_url;
    const char *bind_address;
    int64_t payment_delay_ms;
    int payment_provider;               /* PAYMENT_PROVIDER: enum payment_provider */
    const char *payment_url;            /* PAYMENT_PROVIDER=http */
    const char *payment_auth_header;    /* the Authorization header's value, or NULL */
    const char *payment_auth_file;      /* or a file holding it, or NULL */
    const char *payment_decline_rate_s; /* as given; parsed into the doubles */
    const char *payment_error_rate_s;
    double payment_decline_rate;
    double payment_error_rate;
    int64_t payment_timeout_ms;
    int64_t payment_max_attempts; /* provider calls per delivery before release */
    int64_t max_in_flight;
    int64_t max_polls;      /* long polls outstanding at once */
    int64_t wait_time_s;    /* ReceiveMessage WaitTimeSeconds */
    int64_t visibility_s;   /* VisibilityTimeout asked for on receive */
    int64_t poison_delay_s; /* visibility given back to a message we cannot process */
    int64_t shutdown_grace_ms;
    int64_t metrics_port; /* 0 disables /metrics */
    int64_t metrics_emf;  /* METRICS_EMF: 1 = EMF lines on stdout */
    int64_t metrics_emf_interval_s;
    const char *metrics_namespace;
    int64_t max_receive_count; /* the queue's redrive maxReceiveCount, for dlq_bound */
    int log_level;             /* LOG_LEVEL: enum log_level */
    int log_format;            /* LOG_FORMAT: enum config_log_format */
    struct sqs_config sqs;
};
extern struct worker_config wcfg;

/* H_PAYING: waiting for its attempt's timer, the provider or the ledger. */
enum held_state { H_LOOKUP, H_PAYING, H_DONE };

/* One received message, from receipt until its delete is confirmed. */
struct held {
    char message_id[128];
    char *receipt;
    char order_id[UUID_STR_LEN];
    char correlation_id[CORRELATION_ID_MAX + 1];
    char trace_header[256];
    char traceparent[64];
    int receive_count;
    enum held_state state;
    int64_t received_ms;      /* monotonic */
    int64_t due_ms;           /* payment (or retry) time, monotonic */
    int64_t visible_until_ms; /* monotonic; extended before it passes */
    int64_t order_created_ms; /* wall clock, for end-to-end latency */
    /* the order, as the lookup found it (the provider's request) */
    char customer_id[ORDER_MAX_STR + 1];
    char currency[4];
    int64_t amount_cents;
    /* payment: this delivery's attempts and the outcome of the last one,
     * kept until the ledger has recorded it (a database retry never calls
     * the provider again) */
    int attempts;
    /* the next attempt looks the order up again first (http retries: a
     * cancel during the backoff must keep the order from the provider) */
    bool recheck;
    int64_t attempt_started_ms; /* monotonic */
    int64_t latency_ms;
    enum payment_outcome outcome;
    char payment_id[PAYMENT_ID_MAX + 1];
    char reason[PAYMENT_REASON_MAX + 1];
    void *pay_call; /* the provider call in flight (payment.c), or NULL */
    size_t heap_idx;
    struct held *prev, *next; /* all held messages, oldest first */
    /* visibility extension (visibility.c): queued by visible_until while
     * waiting for an extension; out of the queue while one is in flight */
    struct held *vis_prev, *vis_next;
    bool in_vis_queue;
    void *ext_op;          /* the extension request in flight (loop.c), or NULL */
    size_t ext_slot;       /* this message's entry in that request */
    int64_t ext_sent_ms;   /* when that request went out */
    unsigned ext_failures; /* consecutive failed extensions */
};

/* ---- timer_heap.c: payment (and retry) timers, a binary min-heap on due_ms ---- */

struct timer_heap {
    struct held **v;
    size_t n, cap;
};
/* 0, or -1 when memory runs out (h is then not queued). */
int timer_heap_push(struct timer_heap *t, struct held *h);
/* The earliest timer, or NULL when empty. */
struct held *timer_heap_peek(const struct timer_heap *t);
struct held *timer_heap_pop(struct timer_heap *t);
/* Takes h out wherever it is (h must be in t). */
void timer_heap_remove(struct timer_heap *t, struct held *h);
void timer_heap_free(struct timer_heap *t);

/* ---- batch.c: entries of DeleteMessageBatch / ChangeMessageVisibilityBatch ---- */

/* One batch request's entries; entry i has id "i", so an answer's ids map
 * back to the messages without a search. */
struct receipt_batch {
    struct sqs_receipt_entry e[SQS_MAX_BATCH];
    char ids[SQS_MAX_BATCH][4];
    size_t n;
};
/* Fills b from h[0..n) (at most SQS_MAX_BATCH; returns how many were taken).
 * visibility_s is ignored by DeleteMessageBatch. The entries borrow the
 * receipts: encode before they are freed. */
size_t receipt_batch_fill(struct receipt_batch *b, struct held *const *h, size_t n,
                          int visibility_s);
/* The index of a batch entry id among n entries, or -1 when it is not one of ours. */
int receipt_batch_index(const char *id, size_t n);
/* ok[i] = whether entry i succeeded according to the answer r: listed as
 * successful and not as failed. An entry the answer does not mention failed. */
void receipt_batch_outcome(const struct sqs_batch_result *r, size_t n, bool *ok);

/* ---- visibility.c: when to extend whose visibility ---- */

/* Each held message is extended once less than refresh_ms of its visibility
 * is left, and before less than safety_ms is left; the extensions are paced
 * evenly to have each out while target_ms is left, so that a burst of
 * receives does not become a burst of calls. */
struct vis_policy {
    int64_t timeout_ms; /* visibility given on receive and by each extension */
    int64_t refresh_ms;
    int64_t target_ms;
    int64_t safety_ms;
    int64_t tick_ms; /* how often the pacing looks again while messages are due */
};
void vis_policy_init(struct vis_policy *p, int64_t visibility_s);

/* Held messages waiting for their next extension, earliest visible_until first. */
struct vis_queue {
    struct held *first, *last;
    size_t n;
};
/* Inserts h by its visible_until (from the back: usually it goes last). */
void vis_queue_insert(struct vis_queue *q, struct held *h);
void vis_queue_remove(struct vis_queue *q, struct held *h);
/* Takes off the front of q the messages to extend now, at most max (a whole
 * number of batches unless fewer are due); *next_ms gets when to look again
 * (INT64_MAX when q is empty). */
size_t vis_take_due(struct vis_queue *q, const struct vis_policy *p, int64_t now, int calls_free,
                    struct held **out, size_t max, int64_t *next_ms);

struct worker_metrics {
    _Atomic uint64_t received;
    _Atomic uint64_t processed;
    _Atomic uint64_t skipped; /* already PROCESSED or CANCELED: acknowledged, not paid */
    _Atomic uint64_t failed;  /* poison messages and errors */
    _Atomic uint64_t redelivered;
    _Atomic int64_t in_flight;
    _Atomic uint64_t sqs_requests;
    _Atomic uint64_t sqs_errors;
    _Atomic uint64_t payments_declined;   /* orders FAILED by a decline */
    _Atomic uint64_t payment_errors;      /* attempts ending in a provider error */
    _Atomic uint64_t payments_released;   /* messages released after PAYMENT_MAX_ATTEMPTS errors */
    _Atomic uint64_t visibility_calls;    /* ChangeMessageVisibilityBatch sent to extend */
    _Atomic uint64_t visibility_extended; /* messages whose extension succeeded */
    _Atomic uint64_t visibility_expired;  /* held messages whose visibility ran out */
    _Atomic uint64_t receive_errors;      /* ReceiveMessage calls that failed */
    /* messages left to the redrive policy on what should be their last
     * receive (receive count >= max_receive_count), and malformed entries */
    _Atomic uint64_t dlq_bound;
    struct emf_dist payment_latency_ms; /* for EMF's PaymentLatency */
    struct histogram payment_latency;
    struct histogram end_to_end_latency;
};
extern struct worker_metrics wmetrics;

/* ---- ledger: the worker's SQL ---- */

enum ledger_status { LEDGER_PENDING, LEDGER_DONE, LEDGER_MISSING };

/* One connection and the statement it has out (at most one). */
struct ledger {
    PGconn *db;
    bool busy;
};
void ledger_init(void);
/* Connects now (the send functions reconnect by themselves). 0 or -1. */
int ledger_connect(struct ledger *l, char *err, size_t errlen);
void ledger_close(struct ledger *l);
/* The socket to poll for the answer while a statement is out, else -1. */
int ledger_socket(const struct ledger *l);
/* Sends the lookup of h[0..n): classifies the messages by their order's
 * status and records DELIVERED and PAYMENT_STARTED for the pending ones
 * (not for a recheck before a retry). */
int ledger_send_lookup(struct ledger *l, struct held **h, size_t n, char *err, size_t errlen);
/* Records the outcome of each h[i]'s last attempt (payment_attempts, the
 * timeline) and settles the PENDING orders in one statement: approved ->
 * PROCESSED with its payment row (unique per order: paid at most once),
 * declined -> FAILED with the reason, error -> unchanged. */
int ledger_send_settle(struct ledger *l, struct held **h, size_t n, char *err, size_t errlen);
/* Reads what has arrived without waiting: 1 with *res (PQclear it) once the
 * answer is complete, 0 while it is not, -1 with err when the statement or
 * the connection failed. */
int ledger_result(struct ledger *l, PGresult **res, char *err, size_t errlen);
/* out[i]: the status of h[i]'s order; fills correlation ids and creation times. */
void ledger_read_lookup(const PGresult *r, struct held **h, size_t n, enum ledger_status *out);
/* What the settle statement left h[i]'s order as. */
enum ledger_settled {
    SETTLED_PROCESSED, /* this statement paid it */
    SETTLED_FAILED,    /* this statement failed it */
    SETTLED_PENDING,   /* still PENDING (the attempt was an error) */
    SETTLED_OTHER      /* done elsewhere: PROCESSED, FAILED or CANCELED, or a duplicate */
};
void ledger_read_settle(const PGresult *r, size_t n, enum ledger_settled *out);

/* ---- the event loop ---- */

int loop_run(int signal_fd);

int metrics_server_start(char *err, size_t errlen);
/* The metrics of one EMF interval, for emf_start (emf_worker.c). */
size_t worker_emf_collect(struct emf_metric *m, size_t max, void *arg);
void metrics_server_stop(void);

#endif
