/*
 * payment.h - the payment provider behind order-worker: the outcome of one
 * attempt, the pure parts (the http provider's wire format in
 * payment_answer.c, the simulated provider's deterministic draw in
 * payment_sim.c) and the provider calls on the event loop (payment.c).
 */
#ifndef ORDER_WORKER_PAYMENT_H
#define ORDER_WORKER_PAYMENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What one attempt ended with. An error says nothing about the charge: the
 * attempt is repeated with the same idempotency key, which the provider
 * contract (README) makes safe. */
enum payment_outcome { PAYMENT_APPROVED, PAYMENT_DECLINED, PAYMENT_ERROR };

#define PAYMENT_ID_MAX 128 /* provider payment id, bytes */
#define PAYMENT_REASON_MAX                                                                         \
    200                          /* decline reason or error excerpt, bytes (the column allows 500) \
                                  */
#define PAYMENT_ANSWER_MAX 65536 /* a longer answer is an error */

/* ---- payment_answer.c: the http provider's wire format (pure, fuzzed) ---- */

struct payment_answer {
    enum payment_outcome outcome;
    /* PAYMENT_APPROVED: the provider's payment id, printable ASCII */
    char payment_id[PAYMENT_ID_MAX + 1];
    /* PAYMENT_DECLINED: the reason, printable ASCII, never empty;
     * PAYMENT_ERROR: what went wrong, with the status and a bounded excerpt */
    char reason[PAYMENT_REASON_MAX + 1];
    /* PAYMENT_ERROR only: an answer outside the contract (not 429/5xx) */
    bool unexpected;
};

/* Classifies the provider's answer (HTTP status, body of len bytes, not
 * necessarily NUL-terminated):
 *   2xx {"status":"approved","payment_id":"..."}  approved
 *   2xx {"status":"declined","reason":"..."}      declined (reason bounded)
 *   402, 422                                      declined (the body's reason, else
 * "http_<status>") 429, 5xx                                      error (retried) anything else
 * error, unexpected (logged, retried) Never fails: every input is one of the three. */
void payment_answer_parse(long status, const char *body, size_t len, struct payment_answer *a);

/* The request body {"order_id","customer_id","amount_cents","currency"}, or
 * NULL when memory runs out. The caller frees it. */
char *payment_request_body(const char *order_id, const char *customer_id, int64_t amount_cents,
                           const char *currency);

/* Copies at most dstlen-1 bytes of src[0..len) to dst, each byte outside
 * printable ASCII replaced by '?'; always terminates dst. */
void payment_excerpt(char *dst, size_t dstlen, const char *src, size_t len);

/* ---- payment_sim.c: the simulated provider (pure) ---- */

/* A number in [0, 1) fixed by the order id (SHA-256 of its text), so the same
 * order always draws the same outcome and a redelivery never changes it. */
double payment_sim_draw(const char *order_id);
/* declined when the draw is below decline_rate, an error when below
 * decline_rate + error_rate, else approved. */
enum payment_outcome payment_sim_outcome(const char *order_id, double decline_rate,
                                         double error_rate);
/* Parses a rate "0", "0.25", "1.0": digits and at most one '.', from 0 to 1.
 * 0, or -1 when s is not one. */
int payment_rate_parse(const char *s, double *out);

#endif
