/*
 * emf_worker.c - order-worker's metrics for CloudWatch as EMF lines
 * (METRICS_EMF=1): what one interval holds. Counters are reported as their
 * increase since the previous line, in flight as its value now, payment
 * latency as a distribution. Names and units are the README's "Metrics in
 * CloudWatch" table, which deploy/monitoring.tf and deploy/alarms.tf use.
 */
#include "worker.h"

/* Counter values at the previous line (only the EMF thread touches them). */
static struct {
    uint64_t received, processed, skipped, receive_errors, dlq_bound, visibility_expired;
    uint64_t declined, payment_errors;
    double pay_values[EMF_DIST_BUCKETS], pay_counts[EMF_DIST_BUCKETS];
} prev;

size_t worker_emf_collect(struct emf_metric *m, size_t max, void *arg)
{
    (void)arg;
    size_t n = 0;
    emf_put(m, max, &n, "MessagesReceived", EMF_COUNT,
            emf_delta(atomic_load(&wmetrics.received), &prev.received));
    emf_put(m, max, &n, "OrdersProcessed", EMF_COUNT,
            emf_delta(atomic_load(&wmetrics.processed), &prev.processed));
    emf_put(m, max, &n, "MessagesSkipped", EMF_COUNT,
            emf_delta(atomic_load(&wmetrics.skipped), &prev.skipped));
    emf_put(m, max, &n, "ReceiveErrors", EMF_COUNT,
            emf_delta(atomic_load(&wmetrics.receive_errors), &prev.receive_errors));
    emf_put(m, max, &n, "DlqBound", EMF_COUNT,
            emf_delta(atomic_load(&wmetrics.dlq_bound), &prev.dlq_bound));
    emf_put(m, max, &n, "OrdersFailed", EMF_COUNT,
            emf_delta(atomic_load(&wmetrics.payments_declined), &prev.declined));
    emf_put(m, max, &n, "PaymentErrors", EMF_COUNT,
            emf_delta(atomic_load(&wmetrics.payment_errors), &prev.payment_errors));
    emf_put(m, max, &n, "VisibilityExpired", EMF_COUNT,
            emf_delta(atomic_load(&wmetrics.visibility_expired), &prev.visibility_expired));
    int64_t in_flight = atomic_load(&wmetrics.in_flight);
    emf_put(m, max, &n, "InFlight", EMF_COUNT, in_flight > 0 ? (double)in_flight : 0);
    size_t k = emf_dist_take(&wmetrics.payment_latency_ms, prev.pay_values, prev.pay_counts);
    if (k && n < max)
        m[n++] = (struct emf_metric){.name = "PaymentLatency",
                                     .unit = EMF_MS,
                                     .values = prev.pay_values,
                                     .counts = prev.pay_counts,
                                     .n = k};
    return n;
}
