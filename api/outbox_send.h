/*
 * outbox_send.h - one round of outbox rows sent to SQS, with an outcome per
 * row: sent (with its message id), to retry later, or rejected for good.
 *
 * No database and no threads here: the publisher decides what each outcome
 * means for the outbox row, which keeps this part testable against a stub
 * SQS server.
 */
#ifndef ORDER_API_OUTBOX_SEND_H
#define ORDER_API_OUTBOX_SEND_H

#include <curl/curl.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "order.h"
#include "sqs.h"
#include "util.h"

/* One committed outbox row on its way to SQS. */
struct outbox_msg {
    int64_t outbox_id;
    char order_id[UUID_STR_LEN];
    char correlation_id[CORRELATION_ID_MAX + 1];
    char trace_header[256];
    char traceparent[64];
    char *body;
    int64_t created_ms; /* wall clock, for metrics */
};

enum send_outcome {
    SEND_RETRY = 0, /* not sent (yet): transport error, throttling, no answer for it */
    SEND_OK,        /* SQS took it; message_id is set */
    SEND_REJECTED,  /* SQS refused the entry itself (SenderFault): retrying cannot help */
};

struct send_result {
    enum send_outcome outcome;
    char message_id[128];
    char error[256]; /* why, for RETRY and REJECTED; never holds a secret */
};

/* Most rows one round sends: this many batches run at once. */
#define OUTBOX_ROUND_MAX 100

struct outbox_sender {
    struct sqs_client *sqs; /* borrowed */
    CURLM *multi;           /* owned; connections are reused across rounds */
    const char *queue_url;  /* borrowed */
    _Atomic uint64_t requests, errors, sent, rejected;
};

int outbox_sender_init(struct outbox_sender *s, struct sqs_client *sqs, const char *queue_url);
void outbox_sender_cleanup(struct outbox_sender *s);

/* The SendMessageBatch body for m[0..n), n <= SQS_MAX_BATCH; entry i has id
 * "i". NULL when an entry cannot be encoded or memory runs out. */
char *outbox_batch_encode(const char *queue_url, const struct outbox_msg *m, size_t n);

/* Applies a SendMessageBatch answer to out[0..n): every entry starts as
 * SEND_RETRY, entries listed as successful become SEND_OK, failed ones stay
 * SEND_RETRY or, when SQS blames the sender, become SEND_REJECTED. Ids that
 * are not ours are ignored, so a malformed answer can only leave rows unsent. */
void outbox_batch_apply(const struct sqs_batch_result *res, size_t n, struct send_result *out);

/* Sends m[0..n) (n <= OUTBOX_ROUND_MAX) as concurrent SendMessageBatch calls,
 * one attempt each, and fills out[0..n). Returns the number sent. */
size_t outbox_send(struct outbox_sender *s, const struct outbox_msg *m, size_t n,
                   struct send_result *out);

#endif
