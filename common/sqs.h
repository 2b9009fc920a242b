/*
 * sqs.h - Amazon SQS on the shared AWS JSON client: the SQS actions.
 *
 * SQS speaks AWS JSON 1.0 (X-Amz-Target: AmazonSQS.<Action>, SigV4 service
 * "sqs"); aws.c does the signing, transport and retries, sqs_codec.c the
 * bodies and answers. This module names the actions and puts the two
 * together. Three ways to use it:
 *   - the codec alone (sqs_codec.h, included here);
 *   - struct sqs_request (an aws_request) for callers that run their own
 *     curl multi loop (the worker, the publisher); sqs_request_from_easy
 *     finds the request of a finished handle;
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

#include "aws.h"
#include "credentials.h"
#include "sqs_codec.h"

/* The SQS names of the shared client types, kept so callers read as before:
 * an SQS client is an AWS JSON client configured for SQS. */
#define sqs_config aws_config
#define sqs_client aws_client
#define sqs_request aws_request

/* SQS as an AWS JSON service: endpoint prefix "sqs", AmazonSQS, JSON 1.0,
 * tuned by SQS_MAX_ATTEMPTS, SQS_CONNECT_TIMEOUT_MS, SQS_REQUEST_TIMEOUT_MS. */
extern const struct aws_service sqs_service;

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
    SQS_ACTION_UNKNOWN = -1, /* sqs_request_action of a request that is not SQS's */
};
/* "SendMessage", ... as used in X-Amz-Target; "Unknown" otherwise. */
const char *sqs_action_name(enum sqs_action a);

/* Region: AWS_REGION, else AWS_DEFAULT_REGION. Endpoint: AWS_ENDPOINT_URL_SQS,
 * else AWS_ENDPOINT_URL, else https://sqs.<region>.amazonaws.com. Returns 0, or
 * -1 naming the missing/invalid variable in err. */
int sqs_config_from_env(struct aws_config *c, char *err, size_t errlen);

/* creds is borrowed and must outlive the client. */
struct aws_client *sqs_client_new(const struct aws_config *cfg, struct creds_provider *creds);
static inline void sqs_client_free(struct aws_client *c)
{
    aws_client_free(c);
}
static inline const struct aws_config *sqs_client_config(const struct aws_client *c)
{
    return aws_client_config(c);
}

/* ---- requests for caller-driven curl multi loops -------------------------- */

/* Takes ownership of body (malloc'd JSON), also on failure. NULL when body is
 * NULL (the encoder refused its input or ran out of memory), the action is
 * unknown or memory runs out: every caller must handle NULL. */
struct aws_request *sqs_request_new(struct aws_client *c, enum sqs_action a, char *body,
                                    void *userdata);
enum sqs_action sqs_request_action(const struct aws_request *r);
/* The rest is the shared client's (see aws.h); a NULL request is an error
 * from sqs_request_prepare and sqs_request_complete, never a crash. */
static inline int sqs_request_prepare(struct aws_request *r, long extra_timeout_ms,
                                      struct aws_error *err)
{
    return aws_request_prepare(r, extra_timeout_ms, err);
}
static inline CURL *sqs_request_easy(struct aws_request *r)
{
    return aws_request_easy(r);
}
static inline struct aws_request *sqs_request_from_easy(CURL *easy)
{
    return aws_request_from_easy(easy);
}
static inline int sqs_request_complete(struct aws_request *r, CURLcode rc, struct aws_error *err)
{
    return aws_request_complete(r, rc, err);
}
static inline const char *sqs_request_response(const struct aws_request *r, size_t *len)
{
    return aws_request_response(r, len);
}
static inline void *sqs_request_userdata(const struct aws_request *r)
{
    return aws_request_userdata(r);
}
static inline unsigned sqs_request_attempts(const struct aws_request *r)
{
    return aws_request_attempts(r);
}
static inline int64_t sqs_request_backoff_ms(const struct aws_request *r)
{
    return aws_request_backoff_ms(r);
}
static inline void sqs_request_free(struct aws_request *r)
{
    aws_request_free(r);
}

/* ---- synchronous ------------------------------------------------------------ */

/* Synchronous call with retries. On success *resp is the malloc'd response
 * body (may be "{}"). */
int sqs_call(struct aws_client *c, enum sqs_action a, const char *body, long extra_timeout_ms,
             char **resp, size_t *resp_len, struct aws_error *err);

int sqs_send_message(struct aws_client *c, const char *queue_url, const struct sqs_send_entry *e,
                     char *message_id, size_t idlen, struct aws_error *err);
int sqs_send_message_batch(struct aws_client *c, const char *queue_url,
                           const struct sqs_send_entry *e, size_t n, struct sqs_batch_result *out,
                           struct aws_error *err);
/* out holds the messages that can be acted on and the entries rejected. */
int sqs_receive_message(struct aws_client *c, const char *queue_url, int max_messages,
                        int wait_seconds, struct sqs_received *out, struct aws_error *err);
int sqs_delete_message(struct aws_client *c, const char *queue_url, const char *receipt_handle,
                       struct aws_error *err);
int sqs_delete_message_batch(struct aws_client *c, const char *queue_url,
                             const struct sqs_receipt_entry *e, size_t n,
                             struct sqs_batch_result *out, struct aws_error *err);
int sqs_change_message_visibility(struct aws_client *c, const char *queue_url,
                                  const char *receipt_handle, int visibility_timeout,
                                  struct aws_error *err);
int sqs_change_message_visibility_batch(struct aws_client *c, const char *queue_url,
                                        const struct sqs_receipt_entry *e, size_t n,
                                        struct sqs_batch_result *out, struct aws_error *err);
int sqs_get_queue_url(struct aws_client *c, const char *queue_name, char **queue_url,
                      struct aws_error *err);

#endif
