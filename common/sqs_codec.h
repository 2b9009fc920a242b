/*
 * sqs_codec.h - Amazon SQS request bodies and answers in the AWS JSON 1.0
 * protocol: pure functions from structs to JSON text and back, no I/O.
 *
 * Encoders refuse what SQS would refuse (empty or oversized bodies, invalid
 * characters, bad or duplicate batch ids), so a bad request fails here, not
 * after a round trip. Decoders treat every answer as hostile input (they are
 * fuzzed); ReceiveMessage is decoded entry by entry, so one malformed message
 * never holds back the valid ones received with it.
 */
#ifndef ORDER_SQS_CODEC_H
#define ORDER_SQS_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aws_error.h"

#define SQS_MAX_BATCH 10
#define SQS_MAX_BODY_BYTES (256 * 1024)
#define SQS_MAX_MESSAGE_ID_BYTES 127 /* longer ids are refused (SQS's are 36) */

/* The names callers used before the client became service-agnostic: an SQS
 * error is an AWS error, classified and retried the same way. */
#define sqs_error aws_error
#define sqs_error_kind aws_error_kind
#define SQS_ERR_NONE AWS_ERR_NONE
#define SQS_ERR_TRANSPORT AWS_ERR_TRANSPORT
#define SQS_ERR_THROTTLED AWS_ERR_THROTTLED
#define SQS_ERR_SERVER AWS_ERR_SERVER
#define SQS_ERR_CLIENT AWS_ERR_CLIENT
#define SQS_ERR_PARSE AWS_ERR_PARSE
#define SQS_ERR_CREDENTIALS AWS_ERR_CREDENTIALS
static inline bool sqs_error_retryable(const struct aws_error *e)
{
    return aws_error_retryable(e);
}
/* Classifies a non-2xx answer (see aws_decode_error). */
static inline void sqs_decode_error(long http_status, const char *body, size_t len,
                                    struct aws_error *err)
{
    aws_decode_error(http_status, body, len, err);
}

/* ---- encoding ------------------------------------------------------------ */

struct sqs_attr {
    const char *name;
    const char *value; /* DataType "String" */
};

struct sqs_send_entry {
    const char *id; /* batch entry id ([A-Za-z0-9_-]{1,80}); ignored by SendMessage */
    const char *body;
    const struct sqs_attr *attrs;
    size_t n_attrs;
    const char *trace_header; /* AWSTraceHeader system attribute, or NULL */
};

struct sqs_receipt_entry {
    const char *id; /* batch entry id */
    const char *receipt_handle;
    int visibility_timeout; /* ChangeMessageVisibility(Batch) only */
};

/* Each returns a malloc'd JSON request body, or NULL on invalid input or
 * when memory runs out. */
char *sqs_encode_send_message(const char *queue_url, const struct sqs_send_entry *e);
char *sqs_encode_send_message_batch(const char *queue_url, const struct sqs_send_entry *e,
                                    size_t n);
/* visibility_timeout < 0 uses the queue's default. Asks for all message
 * attributes and the system attributes ApproximateReceiveCount, SentTimestamp
 * and AWSTraceHeader. */
char *sqs_encode_receive_message(const char *queue_url, int max_messages, int wait_seconds,
                                 int visibility_timeout);
char *sqs_encode_delete_message(const char *queue_url, const char *receipt_handle);
char *sqs_encode_delete_message_batch(const char *queue_url, const struct sqs_receipt_entry *e,
                                      size_t n);
char *sqs_encode_change_visibility(const char *queue_url, const char *receipt_handle,
                                   int visibility_timeout);
char *sqs_encode_change_visibility_batch(const char *queue_url, const struct sqs_receipt_entry *e,
                                         size_t n);
char *sqs_encode_get_queue_url(const char *queue_name);
/* names: attribute names such as "ApproximateNumberOfMessages". */
char *sqs_encode_get_queue_attributes(const char *queue_url, const char *const *names, size_t n);

/* ---- decoding ------------------------------------------------------------ */

/* A received message the worker can act on: MessageId, ReceiptHandle and
 * Body are always present and non-empty. */
struct sqs_message {
    char *message_id;
    char *receipt_handle;
    char *body;
    int receive_count;         /* ApproximateReceiveCount, 0 when absent */
    int64_t sent_timestamp_ms; /* SentTimestamp, 0 when absent */
    char *trace_header;        /* AWSTraceHeader, or NULL */
    struct {
        char *name;
        char *value;
    } * attrs; /* String message attributes */
    size_t n_attrs;
};
/* Value of the String message attribute name, or NULL. */
const char *sqs_message_attr(const struct sqs_message *m, const char *name);
/* Frees what m holds and zeroes it. */
void sqs_message_clear(struct sqs_message *m);

/* A ReceiveMessage entry that cannot be acted on (no MessageId or
 * ReceiptHandle, a Body that is not a string, a bad attribute...). It is
 * reported rather than returned: the caller logs it and leaves it to the
 * queue's redrive policy. */
struct sqs_rejected {
    char message_id[SQS_MAX_MESSAGE_ID_BYTES + 1]; /* "" when unknown */
    bool has_receipt_handle;                       /* a non-empty ReceiptHandle was there */
    struct aws_error why;                          /* kind AWS_ERR_PARSE, message: the reason */
};

struct sqs_received {
    struct sqs_message *msgs; /* the entries that can be acted on, in answer order */
    size_t n;
    struct sqs_rejected *rejected; /* the others */
    size_t n_rejected;
};

/* Decodes a ReceiveMessage answer entry by entry. A response with no
 * "Messages" is a valid, empty receive. Returns -1 with err only when the
 * answer as a whole is unusable (not a JSON object, Messages not an array of
 * at most 10) or memory runs out; out is then empty. */
int sqs_decode_receive_message(const char *json, size_t len, struct sqs_received *out,
                               struct aws_error *err);
void sqs_received_free(struct sqs_received *r);
/* One entry of a ReceiveMessage answer (a JSON object) on its own: 0 with m
 * filled (free with sqs_message_clear), 1 with rej filled when the entry
 * cannot be acted on, -1 with err when json is not JSON or memory runs out. */
int sqs_decode_receive_entry(const char *json, size_t len, struct sqs_message *m,
                             struct sqs_rejected *rej, struct aws_error *err);

int sqs_decode_send_message(const char *json, size_t len, char *message_id, size_t idlen,
                            struct aws_error *err);

struct sqs_batch_failure {
    char *id;
    char *code;
    char *message;
    bool sender_fault;
};
struct sqs_batch_result {
    size_t n_ok;
    char **ok_ids;         /* entry ids that succeeded */
    char **ok_message_ids; /* SendMessageBatch: MessageId per ok entry; NULL entries otherwise */
    size_t n_failed;
    struct sqs_batch_failure *failed;
};
/* For SendMessageBatch, DeleteMessageBatch and ChangeMessageVisibilityBatch. */
int sqs_decode_batch_result(const char *json, size_t len, struct sqs_batch_result *out,
                            struct aws_error *err);
void sqs_batch_result_free(struct sqs_batch_result *r);

int sqs_decode_get_queue_url(const char *json, size_t len, char **queue_url, struct aws_error *err);
/* Value of one attribute from a GetQueueAttributes response (malloc), or NULL. */
char *sqs_decode_queue_attribute(const char *json, size_t len, const char *name);

#endif
