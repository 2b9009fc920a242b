/*
 * emf_api.c - order-api's metrics for CloudWatch as EMF lines (METRICS_EMF=1):
 * what one interval holds. Counters are reported as their increase since
 * the previous line, gauges as their value now, latency as a distribution.
 * Names and units are the README's "Metrics in CloudWatch" table, which
 * deploy/monitoring.tf and deploy/alarms.tf use.
 */
#include "api.h"
#include "http.h"

/* Counter values at the previous line (only the EMF thread touches them). */
static struct {
    struct api_request_totals req;
    uint64_t accepted, canceled, overloaded, published, publish_errors;
    uint64_t events_published, event_errors;
    double lat_values[EMF_DIST_BUCKETS], lat_counts[EMF_DIST_BUCKETS];
} prev;

size_t api_emf_collect(struct emf_metric *m, size_t max, void *arg)
{
    (void)arg;
    size_t n = 0;
    struct api_request_totals t;
    struct publisher_stats ps;
    metrics_api_totals(&t);
    publisher_stats(&ps);

    emf_put(m, max, &n, "HttpRequests", EMF_COUNT, emf_delta(t.all, &prev.req.all));
    emf_put(m, max, &n, "Http5xx", EMF_COUNT, emf_delta(t.server_errors, &prev.req.server_errors));
    emf_put(m, max, &n, "AuthFailures", EMF_COUNT,
            emf_delta(t.auth_failures, &prev.req.auth_failures));
    emf_put(m, max, &n, "RateLimited", EMF_COUNT,
            emf_delta(t.rate_limited, &prev.req.rate_limited));
    size_t lat = emf_dist_take(&api_metrics.http_latency_ms, prev.lat_values, prev.lat_counts);
    if (lat && n < max)
        m[n++] = (struct emf_metric){.name = "HttpLatency",
                                     .unit = EMF_MS,
                                     .values = prev.lat_values,
                                     .counts = prev.lat_counts,
                                     .n = lat};

    emf_put(m, max, &n, "OrdersAccepted", EMF_COUNT,
            emf_delta(atomic_load(&api_metrics.orders_created), &prev.accepted));
    double by[REFUSED_COUNT], all = 0;
    for (int i = 0; i < REFUSED_COUNT; i++) {
        by[i] = emf_delta(t.orders_refused[i], &prev.req.orders_refused[i]);
        all += by[i];
    }
    double overloaded = emf_delta(atomic_load(&api_metrics.overloaded), &prev.overloaded);
    double unavailable = by[REFUSED_UNAVAILABLE] - overloaded;
    emf_put(m, max, &n, "OrdersRejected", EMF_COUNT, all);
    emf_put(m, max, &n, "OrdersRejectedInvalid", EMF_COUNT, by[REFUSED_INVALID]);
    emf_put(m, max, &n, "OrdersRejectedAuth", EMF_COUNT, by[REFUSED_AUTH]);
    emf_put(m, max, &n, "OrdersRejectedRateLimited", EMF_COUNT, by[REFUSED_RATE_LIMITED]);
    emf_put(m, max, &n, "OrdersRejectedUnavailable", EMF_COUNT, unavailable > 0 ? unavailable : 0);
    emf_put(m, max, &n, "OrdersRejectedError", EMF_COUNT, by[REFUSED_ERROR]);
    emf_put(m, max, &n, "Overloaded", EMF_COUNT, overloaded);
    emf_put(m, max, &n, "OrdersCanceled", EMF_COUNT,
            emf_delta(atomic_load(&api_metrics.orders_canceled), &prev.canceled));

    emf_put(m, max, &n, "OutboxBacklog", EMF_COUNT, (double)publisher_backlog());
    emf_put(m, max, &n, "OutboxOldestAge", EMF_SECONDS, publisher_oldest_age_s());
    emf_put(m, max, &n, "OrdersPublished", EMF_COUNT, emf_delta(ps.sent, &prev.published));
    emf_put(m, max, &n, "PublishErrors", EMF_COUNT, emf_delta(ps.errors, &prev.publish_errors));

    struct event_relay_stats es;
    event_relay_stats(&es);
    emf_put(m, max, &n, "EventsPublished", EMF_COUNT,
            emf_delta(es.published, &prev.events_published));
    emf_put(m, max, &n, "EventPublishErrors", EMF_COUNT, emf_delta(es.errors, &prev.event_errors));
    emf_put(m, max, &n, "EventOutboxBacklog", EMF_COUNT, es.backlog > 0 ? (double)es.backlog : 0);
    return n;
}
