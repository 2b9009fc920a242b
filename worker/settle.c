/*
 * settle.c - what order-worker does with a held message once the ledger has
 * recorded its payment attempt: acknowledge it (PROCESSED, FAILED, or done
 * elsewhere), try again after a capped jittered backoff (a provider error),
 * or, after PAYMENT_MAX_ATTEMPTS errors, release it with the order PENDING.
 *
 * A retry never runs while the message could be redelivered elsewhere: the
 * message stays held, its visibility extended (extend.c), until it is
 * acknowledged or released. An http retry looks the order up again first
 * (recheck), so an order canceled during the backoff never reaches the
 * provider again.
 */
#include "log.h"
#include "loop.h"

/* After PAYMENT_MAX_ATTEMPTS provider errors: the message goes back to the
 * queue (after WORKER_POISON_DELAY_S) with its order still PENDING; its
 * receives run out into the dead-letter queue if the provider stays down. */
static void release_unpaid(struct held *h)
{
    struct log_fields f = fields_of(h);
    atomic_fetch_add(&wmetrics.payments_released, 1);
    if (h->receive_count >= wcfg.max_receive_count) /* SQS moves it to the DLQ next */
        atomic_fetch_add(&wmetrics.dlq_bound, 1);
    log_kv(LOG_WARN, &f, "payment provider failing: message released, order still PENDING",
           "attempts", (long long)h->attempts, "receive_count", (long long)h->receive_count, NULL);
    loop_release(h, (int)wcfg.poison_delay_s);
}

void settle_done(struct held **hs, size_t n, const enum ledger_settled *st)
{
    int64_t now = util_mono_ms(), wall = util_wall_ms();
    for (size_t i = 0; i < n; i++) {
        struct held *h = hs[i];
        struct log_fields f = fields_of(h);
        int64_t pay_ms = now - h->received_ms;
        if (st[i] == SETTLED_PROCESSED) {
            int64_t e2e = wall - h->order_created_ms;
            atomic_fetch_add(&wmetrics.processed, 1);
            histogram_observe_ms(&wmetrics.payment_latency, (double)pay_ms);
            emf_dist_observe(&wmetrics.payment_latency_ms, (double)pay_ms);
            histogram_observe_ms(&wmetrics.end_to_end_latency, (double)e2e);
            log_kv(LOG_INFO, &f, "order processed", "payment_ms", (long long)pay_ms,
                   "end_to_end_ms", (long long)e2e, "attempts", (long long)h->attempts, NULL);
        } else if (st[i] == SETTLED_FAILED) {
            atomic_fetch_add(&wmetrics.payments_declined, 1);
            log_warn(&f, "order FAILED: payment declined (%s)", h->reason);
        } else if (st[i] == SETTLED_PENDING && h->outcome == PAYMENT_ERROR) {
            atomic_fetch_add(&wmetrics.payment_errors, 1);
            log_warn(&f, "payment attempt %d of %lld failed: %s", h->attempts,
                     (long long)wcfg.payment_max_attempts, h->reason);
            if (h->attempts >= wcfg.payment_max_attempts) {
                release_unpaid(h);
            } else {
                int64_t d = util_backoff_ms((unsigned)h->attempts, 250, 5000) + 100;
                h->attempt_started_ms = now + d;
                h->recheck = wcfg.payment_provider == PAYMENT_HTTP;
                loop_schedule(h, now + d);
            }
            continue;
        } else {
            if (h->outcome == PAYMENT_APPROVED && wcfg.payment_provider == PAYMENT_HTTP)
                log_error(&f,
                          "provider approved payment %s for an order no longer PENDING "
                          "(canceled meanwhile?): it needs a refund",
                          h->payment_id);
            atomic_fetch_add(&wmetrics.skipped, 1);
            log_info(&f, "order no longer pending (processed elsewhere or canceled): not paid");
        }
        loop_ack(h);
    }
}
