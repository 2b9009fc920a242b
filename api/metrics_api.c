/*
 * metrics_api.c - order-api's counters by route and status (and of POST
 * /orders refused, by reason), and its Prometheus /metrics page.
 */
#include <stdio.h>
#include <string.h>

#include "guard.h"
#include "http.h"

/* Counted statuses; anything else lands in the last slot. */
static const int counted_status[] = {200, 201, 400, 401, 403, 404, 405, 409, 413,
                                     414, 415, 422, 429, 431, 500, 503, 0};
#define N_STATUS (sizeof(counted_status) / sizeof(counted_status[0]))
static _Atomic uint64_t requests_total[R_COUNT][N_STATUS];

static _Atomic uint64_t orders_refused[REFUSED_COUNT];

void metrics_api_count(enum route r, int status)
{
    size_t i = 0;
    while (counted_status[i] && counted_status[i] != status)
        i++;
    atomic_fetch_add_explicit(&requests_total[r][i], 1, memory_order_relaxed);
}

void metrics_api_order_refused(int status)
{
    enum refused_reason why;
    switch (status) {
    case 400:
    case 413:
    case 414:
    case 415:
    case 422:
    case 431:
        why = REFUSED_INVALID;
        break;
    case 401:
    case 403:
        why = REFUSED_AUTH;
        break;
    case 429:
        why = REFUSED_RATE_LIMITED;
        break;
    case 503:
        why = REFUSED_UNAVAILABLE;
        break;
    default:
        why = REFUSED_ERROR;
        break;
    }
    atomic_fetch_add_explicit(&orders_refused[why], 1, memory_order_relaxed);
}

void metrics_api_totals(struct api_request_totals *t)
{
    memset(t, 0, sizeof(*t));
    for (int r = 0; r < R_COUNT; r++) {
        /* A probe's 503 is its verdict (not ready yet: starting, keys not
         * loaded, database down), not a request that failed: counted, it
         * would fire the 5xx alarm on every deployment. */
        if (r == R_HEALTHZ || r == R_READYZ)
            continue;
        for (size_t s = 0; s < N_STATUS; s++) {
            uint64_t v = atomic_load_explicit(&requests_total[r][s], memory_order_relaxed);
            int st = counted_status[s];
            t->all += v;
            if (st >= 500 || st == 0)
                t->server_errors += v; /* "other" is what the table does not know: a failure */
            if (st == 401 || st == 403)
                t->auth_failures += v;
            if (st == 429)
                t->rate_limited += v;
        }
    }
    for (int i = 0; i < REFUSED_COUNT; i++)
        t->orders_refused[i] = atomic_load_explicit(&orders_refused[i], memory_order_relaxed);
}

enum MHD_Result metrics_api_page(struct req_ctx *c)
{
    struct buf b;
    char labels[128];
    buf_init(&b, 0);
    metrics_header(&b, "order_api_requests_total", "counter", "HTTP requests by route and status");
    for (int r = 0; r < R_COUNT; r++)
        for (size_t s = 0; s < N_STATUS; s++) {
            uint64_t v = atomic_load(&requests_total[r][s]);
            if (!v)
                continue;
            if (counted_status[s])
                snprintf(labels, sizeof(labels), "route=\"%s\",status=\"%d\"",
                         route_name((enum route)r), counted_status[s]);
            else
                snprintf(labels, sizeof(labels), "route=\"%s\",status=\"other\"",
                         route_name((enum route)r));
            metrics_sample(&b, "order_api_requests_total", labels, (double)v);
        }
    metrics_header(&b, "order_api_request_duration_seconds", "histogram", "HTTP request latency");
    metrics_histogram(&b, "order_api_request_duration_seconds", "", &api_metrics.request_latency);
    metrics_one(&b, "order_api_orders_created_total", "counter", "Orders stored",
                (double)atomic_load(&api_metrics.orders_created));
    metrics_one(&b, "order_api_idempotent_replays_total", "counter",
                "POST /orders answered from a stored Idempotency-Key",
                (double)atomic_load(&api_metrics.idempotent_replays));
    metrics_one(&b, "order_api_group_commits_total", "counter", "Group-commit transactions",
                (double)atomic_load(&api_metrics.group_commits));
    metrics_header(&b, "order_api_commit_duration_seconds", "histogram",
                   "Duration of one group commit");
    metrics_histogram(&b, "order_api_commit_duration_seconds", "",
                      &api_metrics.commit_batch_latency);
    metrics_one(&b, "order_api_outbox_backlog", "gauge", "Outbox rows not yet sent to SQS",
                (double)publisher_backlog());
    metrics_one(&b, "order_api_outbox_oldest_age_seconds", "gauge",
                "Age of the oldest unsent outbox row", publisher_oldest_age_s());
    struct publisher_stats ps;
    publisher_stats(&ps);
    metrics_one(&b, "order_api_sqs_messages_sent_total", "counter", "Messages sent to SQS",
                (double)ps.sent);
    metrics_one(&b, "order_api_sqs_requests_total", "counter", "SQS requests sent",
                (double)ps.requests);
    metrics_one(&b, "order_api_sqs_errors_total", "counter", "Failed SQS calls or entries",
                (double)ps.errors);
    metrics_one(&b, "order_api_outbox_rejected_total", "counter",
                "Outbox rows SQS refused for good (SenderFault), parked", (double)ps.rejected);
    metrics_one(&b, "order_api_overloaded_total", "counter",
                "POST /orders answered 503 overloaded (outbox backlog at OUTBOX_MAX_BACKLOG)",
                (double)atomic_load(&api_metrics.overloaded));
    metrics_one(&b, "order_api_orders_canceled_total", "counter", "Orders canceled",
                (double)atomic_load(&api_metrics.orders_canceled));
    struct event_relay_stats es;
    event_relay_stats(&es);
    metrics_one(&b, "order_api_events_published_total", "counter", "Order events EventBridge took",
                (double)es.published);
    metrics_one(&b, "order_api_event_publish_errors_total", "counter",
                "Order events not taken in an attempt (PutEvents or the entry failed)",
                (double)es.errors);
    metrics_one(&b, "order_api_events_rejected_total", "counter",
                "Order events EventBridge refused for good, parked", (double)es.rejected);
    metrics_one(&b, "order_api_event_outbox_backlog", "gauge",
                "Order events not yet sent to EventBridge", (double)es.backlog);
    metrics_one(&b, "order_api_db_errors_total", "counter", "Failed database operations",
                (double)atomic_load(&api_metrics.db_errors));
    guard_metrics(&b);
    enum MHD_Result ret =
        http_send_text(c, 200, "text/plain; version=0.0.4", b.data ? b.data : "", b.len, NULL);
    buf_free(&b);
    return ret;
}
