/*
 * sqs.h - Amazon SQS client for the AWS JSON 1.0 protocol.
 *
 * Requests are POST / with X-Amz-Target: AmazonSQS.<Action> and
 * Content-Type: application/x-amz-json-1.0, signed with SigV4 (service "sqs").
 *
 * Three layers, usable apart:
 *   - encoders/decoders: pure functions from structs to JSON text and back
 *     (unit-tested and fuzzed without a network);
 *   - struct sqs_request: one signed libcurl easy handle, for callers that run
 *     their own curl multi event loop (the worker); the caller decides when to
 *     retry, using sqs_error_retryable and sqs_request_backoff_ms;
 *   - sqs_call and the sqs_send_message... wrappers: synchronous, retrying
 *     throttling, 5xx and transport errors with capped, jittered exponential
 *     backoff; other 4xx fail at once.
 * A struct sqs_client is used by one thread at a time; its synchronous calls
 * reuse one keep-alive connection.
 */
#ifndef ORDER_SQS_H
#define ORDER_SQS_H

#include <curl/curl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "credentials.h"

#define SQS_MAX_BATCH 10
#define SQS_MAX_BODY_BYTES (256 * 1024)

enum sqs_action {
    SQS_SEND_MESSAGE,
    SQS_SEND_MESSAGE_BATCH,
    SQS_RECEIVE_MESSAGE,
    SQS_DELETE_MESSAGE,
    SQS_DELETE_MESSAGE_BATCH,
    SQS_CHANGE_MESSAGE_VISIBILITY,
    SQS_CHANGE_MESSAGE_VISIBILITY_BATCH,
    SQS_GET_QUEUE_URL,
    SQS_GET_QUEUE_ATTRIBUTES,
};
/* "SendMessage", ... as used in X-Amz-Target. */
const char *sqs_action_name(enum sqs_action a);

struct sqs_config {
    char endpoint[512]; /* scheme://host[:port], no trailing slash */
    char region[64];
    bool verify_tls;         /* always true: TLS is verified, there is no switch */
    long connect_timeout_ms; /* default 2000 */
    long request_timeout_ms; /* default 30000; long polls add their WaitTimeSeconds */
    unsigned max_attempts;   /* synchronous calls, default 5 */
    int64_t backoff_base_ms; /* default 50 */
    int64_t backoff_cap_ms;  /* default 5000 */
};
/* Region: AWS_REGION, else AWS_DEFAULT_REGION. Endpoint: AWS_ENDPOINT_URL_SQS,
 * else AWS_ENDPOINT_URL, else https://sqs.<region>.amazonaws.com. Returns 0, or
 * -1 naming the missing/invalid variable in err. */
int sqs_config_from_env(struct sqs_config *c, char *err, size_t errlen);

enum sqs_error_kind {
    SQS_ERR_NONE = 0,
    SQS_ERR_TRANSPORT,   /* connect, timeout, TLS, reset: retryable */
    SQS_ERR_THROTTLED,   /* throttling error types / HTTP 429: retryable */
    SQS_ERR_SERVER,      /* HTTP 5xx: retryable */
    SQS_ERR_CLIENT,      /* other 4xx (bad request, missing queue, access denied): not retried */
    SQS_ERR_PARSE,       /* a response we could not understand: not retried */
    SQS_ERR_CREDENTIALS, /* no usable credentials: not retried */
};

struct sqs_error {
    enum sqs_error_kind kind;
    long http_status;  /* 0 when no response */
    char type[128];    /* __type without its namespace, e.g. "QueueDoesNotExist" */
    char message[512]; /* human readable; never contains a secret */
};
bool sqs_error_retryable(const struct sqs_error *e);

/* ---- encoding ---------------------------------------------------------- */

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

/* Each returns a malloc'd JSON request body, or NULL on invalid input. */
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

/* ---- decoding ---------------------------------------------------------- */

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

/* A response with no "Messages" is a valid, empty receive (*n = 0). */
int sqs_decode_receive_message(const char *json, size_t len, struct sqs_message **msgs, size_t *n,
                               struct sqs_error *err);
void sqs_messages_free(struct sqs_message *msgs, size_t n);

int sqs_decode_send_message(const char *json, size_t len, char *message_id, size_t idlen,
                            struct sqs_error *err);

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
                            struct sqs_error *err);
void sqs_batch_result_free(struct sqs_batch_result *r);

int sqs_decode_get_queue_url(const char *json, size_t len, char **queue_url, struct sqs_error *err);
/* Value of one attribute from a GetQueueAttributes response (malloc), or NULL. */
char *sqs_decode_queue_attribute(const char *json, size_t len, const char *name);

/* Classifies a non-2xx response: reads __type (namespace stripped) and
 * message/Message; throttling types or 429 -> THROTTLED, 5xx -> SERVER,
 * other 4xx -> CLIENT. Works on empty or non-JSON bodies too. */
void sqs_decode_error(long http_status, const char *body, size_t len, struct sqs_error *err);

/* ---- transport --------------------------------------------------------- */

struct sqs_client;

/* creds is borrowed and must outlive the client. */
struct sqs_client *sqs_client_new(const struct sqs_config *cfg, struct creds_provider *creds);
void sqs_client_free(struct sqs_client *c);
const struct sqs_config *sqs_client_config(const struct sqs_client *c);

/* One request for a caller-driven curl multi loop. */
struct sqs_request;
/* Takes ownership of body (malloc'd JSON). */
struct sqs_request *sqs_request_new(struct sqs_client *c, enum sqs_action a, char *body,
                                    void *userdata);
/* Signs with the current time and credentials and resets the response; call
 * before every attempt (with the easy handle out of any multi), then add
 * sqs_request_easy(r) to a multi handle. The handle's CURLOPT_PRIVATE is r.
 * extra_timeout_ms is added to the configured request timeout (long polls). */
int sqs_request_prepare(struct sqs_request *r, long extra_timeout_ms, struct sqs_error *err);
CURL *sqs_request_easy(struct sqs_request *r);
/* After the multi reports the transfer done: 0 on a 2xx, else -1 with err
 * classified. Increments the attempt count. */
int sqs_request_complete(struct sqs_request *r, CURLcode rc, struct sqs_error *err);
const char *sqs_request_response(const struct sqs_request *r, size_t *len);
enum sqs_action sqs_request_action(const struct sqs_request *r);
void *sqs_request_userdata(const struct sqs_request *r);
unsigned sqs_request_attempts(const struct sqs_request *r);
/* Jittered delay before the next attempt, from the attempts made so far. */
int64_t sqs_request_backoff_ms(const struct sqs_request *r);
void sqs_request_free(struct sqs_request *r);

/* Synchronous call with retries. On success *resp is the malloc'd response
 * body (may be "{}"). */
int sqs_call(struct sqs_client *c, enum sqs_action a, const char *body, long extra_timeout_ms,
             char **resp, size_t *resp_len, struct sqs_error *err);

int sqs_send_message(struct sqs_client *c, const char *queue_url, const struct sqs_send_entry *e,
                     char *message_id, size_t idlen, struct sqs_error *err);
int sqs_send_message_batch(struct sqs_client *c, const char *queue_url,
                           const struct sqs_send_entry *e, size_t n, struct sqs_batch_result *out,
                           struct sqs_error *err);
int sqs_receive_message(struct sqs_client *c, const char *queue_url, int max_messages,
                        int wait_seconds, struct sqs_message **msgs, size_t *n,
                        struct sqs_error *err);
int sqs_delete_message(struct sqs_client *c, const char *queue_url, const char *receipt_handle,
                       struct sqs_error *err);
int sqs_delete_message_batch(struct sqs_client *c, const char *queue_url,
                             const struct sqs_receipt_entry *e, size_t n,
                             struct sqs_batch_result *out, struct sqs_error *err);
int sqs_change_message_visibility(struct sqs_client *c, const char *queue_url,
                                  const char *receipt_handle, int visibility_timeout,
                                  struct sqs_error *err);
int sqs_change_message_visibility_batch(struct sqs_client *c, const char *queue_url,
                                        const struct sqs_receipt_entry *e, size_t n,
                                        struct sqs_batch_result *out, struct sqs_error *err);
int sqs_get_queue_url(struct sqs_client *c, const char *queue_name, char **queue_url,
                      struct sqs_error *err);

#endif
