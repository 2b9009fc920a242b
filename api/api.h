/*
 * api.h - what the parts of order-api share: its configuration, the job a
 * POST /orders hands to the committer, and each part's entry points.
 *
 * Threads: libmicrohttpd's pool parses and validates requests and serves
 * reads; one committer thread writes new orders (group commit); one publisher
 * thread sends outbox rows to SQS and relays what is left unsent.
 */
#ifndef ORDER_API_H
#define ORDER_API_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "metrics.h"
#include "order.h"
#include "outbox_send.h"
#include "sqs.h"
#include "util.h"

struct api_config {
    int64_t port;
    const char *bind_address; /* BIND_ADDRESS, default 0.0.0.0 */
    const char *database_url;
    const char *queue_url;
    int64_t threads;           /* libmicrohttpd worker threads */
    int64_t max_connections;   /* concurrent client connections */
    int64_t client_timeout_s;  /* idle / slow client timeout */
    int64_t shutdown_grace_ms; /* drain time on SIGTERM */
    int64_t batch_max;         /* orders per group commit */
    int64_t relay_interval_ms; /* how often the relay looks for unsent outbox rows */
    struct sqs_config sqs;
};
extern struct api_config api_cfg;

/* ---- committer: group commit of new orders ---- */

struct create_job {
    /* input, filled by the HTTP thread */
    struct order_request req;
    char id[UUID_STR_LEN];
    char correlation_id[CORRELATION_ID_MAX + 1];
    char idempotency_key[256]; /* "" when absent */
    char principal[257];       /* who creates it (token sub), "" with auth off; scopes the key */
    char trace_header[256];    /* X-Amzn-Trace-Id, "" when absent */
    char traceparent[64];      /* W3C traceparent (ours or the client's) */
    /* output, filled by the committer before done() */
    int status;          /* 201, 422 (key reused), 503 (database down), 500 */
    char *response_body; /* malloc'd JSON */
    bool replayed;       /* an Idempotency-Key replay: no new order */
    /* called on the committer thread once the outcome is known; the job must
     * not be touched by the committer afterwards */
    void (*done)(struct create_job *j, void *arg);
    void *done_arg;
    struct create_job *next;
    /* Who owns the job: JOB_QUEUED (the committer, until done()), JOB_DONE
     * (the HTTP side again), JOB_ABANDONED (shutdown answered the client
     * without it: the committer frees it). Changed only by compare-and-swap. */
    _Atomic int state;
};
enum { JOB_QUEUED = 0, JOB_DONE, JOB_ABANDONED };

int committer_start(char *err, size_t errlen);
/* Queues j; its done callback runs later on the committer thread. */
void committer_submit(struct create_job *j);
/* Gives the job back to the committer, which will free it, unless its
 * outcome is already known. True when the caller may answer without it. */
bool committer_abandon(struct create_job *j);
/* Finishes queued jobs, then stops the thread. A statement still running
 * after wait_ms (a database that hangs) is canceled. */
void committer_stop(int64_t wait_ms);

/* ---- publisher: outbox -> SQS ---- */

int publisher_start(char *err, size_t errlen);
/* Hands committed outbox rows over for immediate publishing; takes ownership
 * of the bodies. When the in-memory queue is full the rows stay for the relay. */
void publisher_enqueue(struct outbox_msg *msgs, size_t n);
void publisher_stop(void);
/* Unsent rows and the age of the oldest, refreshed by the relay. */
int64_t publisher_backlog(void);
double publisher_oldest_age_s(void);
/* Counters of the SQS side, for metrics. */
struct publisher_stats {
    uint64_t requests; /* SendMessageBatch calls */
    uint64_t errors;   /* calls or entries that failed */
    uint64_t sent;     /* messages SQS took */
    uint64_t rejected; /* rows SQS refused for good (SenderFault), parked with rejected_at */
};
void publisher_stats(struct publisher_stats *s);

/* ---- metrics ---- */

struct api_metrics {
    _Atomic uint64_t orders_created;
    _Atomic uint64_t idempotent_replays;
    _Atomic uint64_t db_errors;
    _Atomic uint64_t group_commits;
    struct histogram request_latency;
    struct histogram commit_batch_latency;
};
extern struct api_metrics api_metrics;

/* ---- HTTP ---- */

int http_start(char *err, size_t errlen);
/* Stops accepting, waits for in-flight requests up to grace_ms, then stops. */
void http_stop(int64_t grace_ms);

#endif
