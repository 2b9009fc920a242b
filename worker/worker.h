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

#include "metrics.h"
#include "order.h"
#include "sqs.h"
#include "util.h"

/* Filled once at start from the table in main.c; read-only afterwards. */
struct worker_config {
    const char *database_url;
    const char *queue_url;
    const char *bind_address;
    int64_t payment_delay_ms;
    int64_t max_in_flight;
    int64_t max_polls;      /* long polls outstanding at once */
    int64_t wait_time_s;    /* ReceiveMessage WaitTimeSeconds */
    int64_t visibility_s;   /* VisibilityTimeout asked for on receive */
    int64_t poison_delay_s; /* visibility given back to a message we cannot process */
    int64_t shutdown_grace_ms;
    int64_t metrics_port; /* 0 disables /metrics */
    int log_level;        /* LOG_LEVEL: enum log_level */
    int log_format;       /* LOG_FORMAT: enum config_log_format */
    struct sqs_config sqs;
};
extern struct worker_config wcfg;

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
    size_t heap_idx;
    struct held *prev, *next; /* all held messages, oldest first */
};

struct worker_metrics {
    _Atomic uint64_t received;
    _Atomic uint64_t processed;
    _Atomic uint64_t skipped; /* already PROCESSED or CANCELED: acknowledged, not paid */
    _Atomic uint64_t failed;  /* poison messages and errors */
    _Atomic uint64_t redelivered;
    _Atomic int64_t in_flight;
    _Atomic uint64_t sqs_requests;
    _Atomic uint64_t sqs_errors;
    struct histogram payment_latency;
    struct histogram end_to_end_latency;
};
extern struct worker_metrics wmetrics;

/* ---- ledger: the worker's SQL ---- */

enum ledger_status { LEDGER_PENDING, LEDGER_DONE, LEDGER_MISSING };

int ledger_connect(char *err, size_t errlen);
void ledger_close(void);
/* Classifies held[0..n) by their order's status; records DELIVERED and
 * PAYMENT_STARTED for the pending ones. out[i] receives the status. Returns 0
 * or -1 (database unavailable or failed). */
int ledger_lookup(struct held **h, size_t n, enum ledger_status *out, char *err, size_t errlen);
/* Pays every PENDING order of h[0..n) at most once: status PROCESSED and the
 * payment row in one statement. paid[i] tells whether this call paid it.
 * Returns 0 or -1. */
int ledger_pay(struct held **h, size_t n, bool *paid, char *err, size_t errlen);

/* ---- the event loop ---- */

int loop_run(int signal_fd);

int metrics_server_start(char *err, size_t errlen);
void metrics_server_stop(void);

#endif
