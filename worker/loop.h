/*
 * loop.h - what the files of the event loop share (loop.c, extend.c): the
 * SQS requests it has out. Internal to order-worker.
 */
#ifndef ORDER_WORKER_LOOP_H
#define ORDER_WORKER_LOOP_H

#include "worker.h"

/* OP_VISIBILITY gives messages back (poison, stop) and forgets them;
 * OP_EXTEND extends held ones and reports back to each (extension_done). */
enum op_kind { OP_RECEIVE, OP_DELETE, OP_VISIBILITY, OP_EXTEND };

/* One SQS request in flight (or waiting for its retry timer). */
struct op {
    enum op_kind kind;
    struct sqs_request *req;
    /* OP_DELETE owns them; OP_EXTEND borrows them (extend_forget clears a slot) */
    struct held *items[SQS_MAX_BATCH];
    size_t n;
    int64_t retry_at;   /* 0 when not waiting */
    int64_t started_ms; /* when the current attempt went out (receives: its server-side wait) */
    struct op *next;    /* retry list */
};

/* Puts o on the multi handle (retrying its signing later if it fails); it
 * comes back through extension_done for OP_EXTEND. */
void loop_submit(struct op *o);
/* The log fields of a held message. */
struct log_fields fields_of(const struct held *h);

/* ---- extend.c: sending the extensions visibility.c schedules ---- */

#define EXTEND_MAX_CALLS 32 /* ChangeMessageVisibilityBatch outstanding at most */

void extend_init(struct sqs_client *sqs);
/* From receipt on, h's visibility is extended until extend_forget(h). */
void extend_track(struct held *h);
/* h is acknowledged or freed: no more extension (one in flight forgets it). */
void extend_forget(struct held *h);
/* Sends what is due now; lowers *next_timer to when to look again. */
void extend_visibility(int64_t now, int64_t *next_timer);
/* The answer to an OP_EXTEND (o is freed by the caller). */
void extension_done(struct op *o, CURLcode code);

/* ---- curl_events.c: the multi handle driven by epoll ---- */

/* 0, or -1 with err. Before any transfer is added to multi. */
int curl_events_init(CURLM *multi, char *err, size_t errlen);
void curl_events_cleanup(void);
/* Waits up to timeout_ms (less when libcurl has a timeout due) for a curl
 * socket or one of fds[1..nfds) (fds[0] is filled in here), then runs the
 * transfers that are ready or due; their results are for
 * curl_multi_info_read. */
struct pollfd;
void curl_events_wait(struct pollfd *fds, unsigned nfds, int timeout_ms);

/* ---- payment.c: one payment attempt by the configured provider ---- */

/* 0, or -1 with err (memory, or an unreadable PAYMENT_AUTH_HEADER_FILE). */
int payment_init(CURLM *multi, char *err, size_t errlen);
void payment_cleanup(void);
/* (Re)reads PAYMENT_AUTH_HEADER_FILE if it changed: 0, or -1 with err naming
 * the variable (never the content); the previous value is kept. */
int payment_auth_refresh(char *err, size_t errlen);
/* Makes h's next attempt; its outcome (h->outcome, payment_id, reason,
 * latency_ms) comes back through loop_payment_done(h), at once for the
 * simulated provider, when the provider answers for the http one. */
void payment_start(struct held *h);
/* True when easy is one of payment.c's calls: it is then finished (and
 * loop_payment_done called); false leaves easy to the caller. */
bool payment_handles(CURL *easy, CURLcode code);
/* Drops h's call in flight, if any (h is about to be freed): no outcome. */
void payment_forget(struct held *h);
size_t payment_in_flight(void);

/* loop.c: h's attempt has an outcome; the ledger records it next. */
void loop_payment_done(struct held *h);
/* Acknowledges h: queued for DeleteMessageBatch, freed once deleted. */
void loop_ack(struct held *h);
/* (Re)arms h's payment timer for due_ms (monotonic). */
void loop_schedule(struct held *h, int64_t due_ms);
/* Gives h back to the queue, visible again after visibility_s, and frees it. */
void loop_release(struct held *h, int visibility_s);

/* ---- settle.c: after the ledger recorded the attempts of hs[0..n) ---- */

void settle_done(struct held **hs, size_t n, const enum ledger_settled *st);

#endif
