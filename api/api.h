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

#include "emf.h"
#include "metrics.h"
#include "order.h"
#include "outbox_send.h"
#include "sqs.h"
#include "util.h"

/* AUTH_MODE */
enum api_auth_mode { API_AUTH_JWT = 0, API_AUTH_OFF = 1 };
/* AUTH_ALGORITHMS, a set */
#define API_AUTH_RS256 0x1u
#define API_AUTH_ES256 0x2u

/* JSON Web Token authentication (AUTH_*); read when mode is API_AUTH_JWT. */
struct api_auth_config {
    int mode;                   /* enum api_auth_mode */
    const char *issuer;         /* AUTH_ISSUER: the exact iss claim */
    const char *audience;       /* AUTH_AUDIENCE: comma-separated accepted aud values */
    unsigned algorithms;        /* AUTH_ALGORITHMS: API_AUTH_RS256 | API_AUTH_ES256 */
    int64_t leeway_s;           /* AUTH_LEEWAY_S: clock skew allowed on exp/nbf/iat */
    const char *scope_prefix;   /* AUTH_SCOPE_PREFIX: "orders/" as in orders/read */
    const char *customer_claim; /* AUTH_CUSTOMER_CLAIM: claim naming the customer */
    const char *jwks_url;       /* AUTH_JWKS_URL, or NULL */
    const char *jwks_file;      /* AUTH_JWKS_FILE, or NULL */
    int64_t jwks_refresh_s;     /* AUTH_JWKS_REFRESH_S */
    int64_t jwks_min_refresh_s; /* AUTH_JWKS_MIN_REFRESH_S: no refetch sooner (unknown kid) */
    int64_t jwks_timeout_ms;    /* AUTH_JWKS_TIMEOUT_MS */
};

/* Filled once at start from the table in main.c; read-only afterwards. */
struct api_config {
    int64_t port;
    const char *bind_address; /* BIND_ADDRESS, default 0.0.0.0 */
    const char *database_url;
    const char *queue_url;
    int64_t threads;                /* libmicrohttpd worker threads */
    int64_t max_connections;        /* concurrent client connections */
    int64_t client_timeout_s;       /* idle / slow client timeout */
    int64_t shutdown_grace_ms;      /* drain time on SIGTERM */
    int64_t batch_max;              /* orders per group commit */
    int64_t relay_interval_ms;      /* how often the relay looks for unsent outbox rows */
    int log_level;                  /* LOG_LEVEL: enum log_level */
    int log_format;                 /* LOG_FORMAT: enum config_log_format */
    int64_t metrics_port;           /* METRICS_PORT: 0 = no metrics listener */
    int64_t metrics_emf;            /* METRICS_EMF: 1 = EMF lines on stdout */
    int64_t metrics_emf_interval_s; /* METRICS_EMF_INTERVAL_S */
    const char *metrics_namespace;  /* METRICS_NAMESPACE */
    int64_t
        outbox_max_backlog;   /* OUTBOX_MAX_BACKLOG: unsent rows before 503 overloaded; 0 = none */
    int64_t rate_limit_rps;   /* RATE_LIMIT_RPS: 0 = no rate limit */
    int64_t rate_limit_burst; /* RATE_LIMIT_BURST */
    const char *migrations_dir; /* MIGRATIONS_DIR, or NULL: beside the executable */
    const char *openapi_path;   /* OPENAPI_PATH, or NULL: beside the executable */
    struct api_auth_config auth;
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
/* Unsent rows (counted by the relay, kept current between counts by what is
 * committed and sent here) and the age of the oldest (the relay's count). */
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
    _Atomic uint64_t orders_canceled; /* PENDING -> CANCELED by POST /orders/{id}/cancel */
    _Atomic uint64_t overloaded;      /* POST /orders refused: outbox backlog at its limit */
    struct emf_dist http_latency_ms;  /* every request, for EMF's HttpLatency */
    struct histogram request_latency;
    struct histogram commit_batch_latency;
};
extern struct api_metrics api_metrics;

/* ---- metrics as CloudWatch EMF lines (emf_api.c) ---- */

/* The metrics of one interval, for emf_start. */
size_t api_emf_collect(struct emf_metric *m, size_t max, void *arg);

/* ---- HTTP ---- */

int http_start(char *err, size_t errlen);
/* Stops accepting, waits for in-flight requests up to grace_ms, then stops. */
void http_stop(int64_t grace_ms);

#endif
