/*
 * sqs.c - the SQS actions on the shared AWS JSON client (see sqs.h).
 *
 * Design: nothing here knows HTTP or JSON. An action is a name for
 * X-Amz-Target, a body from sqs_codec.c and an answer decoded by it; the
 * signing, transport and retry policy are aws.c's, shared with EventBridge,
 * so a fix to either reaches both services.
 */
#include "sqs.h"

#include <stdlib.h>
#include <string.h>

#include "aws_env.h"

const struct aws_service sqs_service = {
    .id = "SQS",
    .endpoint_prefix = "sqs",
    .signing_name = "sqs",
    .target_prefix = "AmazonSQS",
    .json = AWS_JSON_1_0,
    .tuning_prefix = "SQS",
};

static const char *const action_names[] = {
    [SQS_SEND_MESSAGE] = "SendMessage",
    [SQS_SEND_MESSAGE_BATCH] = "SendMessageBatch",
    [SQS_RECEIVE_MESSAGE] = "ReceiveMessage",
    [SQS_DELETE_MESSAGE] = "DeleteMessage",
    [SQS_DELETE_MESSAGE_BATCH] = "DeleteMessageBatch",
    [SQS_CHANGE_MESSAGE_VISIBILITY] = "ChangeMessageVisibility",
    [SQS_CHANGE_MESSAGE_VISIBILITY_BATCH] = "ChangeMessageVisibilityBatch",
    [SQS_GET_QUEUE_URL] = "GetQueueUrl",
    [SQS_GET_QUEUE_ATTRIBUTES] = "GetQueueAttributes",
};
#define N_ACTIONS (sizeof(action_names) / sizeof(action_names[0]))

static bool action_valid(enum sqs_action a)
{
    return (unsigned)a < N_ACTIONS && action_names[a];
}

const char *sqs_action_name(enum sqs_action a)
{
    return action_valid(a) ? action_names[a] : "Unknown";
}

int sqs_config_from_env(struct aws_config *c, char *err, size_t errlen)
{
    return aws_config_from_env(c, &sqs_service, err, errlen);
}

struct aws_client *sqs_client_new(const struct aws_config *cfg, struct creds_provider *creds)
{
    return aws_client_new(&sqs_service, cfg, creds);
}

struct aws_request *sqs_request_new(struct aws_client *c, enum sqs_action a, char *body,
                                    void *userdata)
{
    if (!action_valid(a)) {
        free(body);
        return NULL;
    }
    return aws_request_new(c, action_names[a], body, userdata);
}

enum sqs_action sqs_request_action(const struct aws_request *r)
{
    const char *name = r ? aws_request_action(r) : NULL;
    for (size_t i = 0; name && i < N_ACTIONS; i++)
        if (action_names[i] && strcmp(action_names[i], name) == 0)
            return (enum sqs_action)i;
    return SQS_ACTION_UNKNOWN;
}

int sqs_call(struct aws_client *c, enum sqs_action a, const char *body, long extra_timeout_ms,
             char **resp, size_t *resp_len, struct aws_error *err)
{
    if (!action_valid(a)) {
        *resp = NULL;
        aws_error_set(err, AWS_ERR_CLIENT, 0, "%s: invalid request", sqs_action_name(a));
        return -1;
    }
    return aws_call(c, action_names[a], body, extra_timeout_ms, resp, resp_len, err);
}

/* ---- synchronous wrappers ------------------------------------------------ */

/* Calls a with an encoded body (freed here); NULL means the encoder refused. */
static int call_encoded(struct aws_client *c, enum sqs_action a, char *body, long extra_ms,
                        char **resp, size_t *len, struct aws_error *err)
{
    int rc;
    *resp = NULL;
    if (!body) {
        aws_error_set(err, AWS_ERR_CLIENT, 0, "%s: invalid request parameters", sqs_action_name(a));
        return -1;
    }
    rc = sqs_call(c, a, body, extra_ms, resp, len, err);
    free(body);
    return rc;
}

int sqs_send_message(struct aws_client *c, const char *queue_url, const struct sqs_send_entry *e,
                     char *message_id, size_t idlen, struct aws_error *err)
{
    char *resp;
    size_t len;
    int rc;

    if (call_encoded(c, SQS_SEND_MESSAGE, sqs_encode_send_message(queue_url, e), 0, &resp, &len,
                     err) != 0)
        return -1;
    rc = sqs_decode_send_message(resp, len, message_id, idlen, err);
    free(resp);
    return rc;
}

static int batch_call(struct aws_client *c, enum sqs_action a, char *body,
                      struct sqs_batch_result *out, struct aws_error *err)
{
    char *resp;
    size_t len;
    int rc;

    memset(out, 0, sizeof(*out));
    if (call_encoded(c, a, body, 0, &resp, &len, err) != 0)
        return -1;
    rc = sqs_decode_batch_result(resp, len, out, err);
    free(resp);
    return rc;
}

int sqs_send_message_batch(struct aws_client *c, const char *queue_url,
                           const struct sqs_send_entry *e, size_t n, struct sqs_batch_result *out,
                           struct aws_error *err)
{
    return batch_call(c, SQS_SEND_MESSAGE_BATCH, sqs_encode_send_message_batch(queue_url, e, n),
                      out, err);
}

int sqs_receive_message(struct aws_client *c, const char *queue_url, int max_messages,
                        int wait_seconds, struct sqs_received *out, struct aws_error *err)
{
    char *resp;
    size_t len;
    int rc;

    memset(out, 0, sizeof(*out));
    /* A long poll legitimately holds the connection for wait_seconds. */
    if (call_encoded(c, SQS_RECEIVE_MESSAGE,
                     sqs_encode_receive_message(queue_url, max_messages, wait_seconds, -1),
                     (long)wait_seconds * 1000, &resp, &len, err) != 0)
        return -1;
    rc = sqs_decode_receive_message(resp, len, out, err);
    free(resp);
    return rc;
}

int sqs_delete_message(struct aws_client *c, const char *queue_url, const char *receipt_handle,
                       struct aws_error *err)
{
    char *resp;
    if (call_encoded(c, SQS_DELETE_MESSAGE, sqs_encode_delete_message(queue_url, receipt_handle), 0,
                     &resp, NULL, err) != 0)
        return -1;
    free(resp);
    return 0;
}

int sqs_delete_message_batch(struct aws_client *c, const char *queue_url,
                             const struct sqs_receipt_entry *e, size_t n,
                             struct sqs_batch_result *out, struct aws_error *err)
{
    return batch_call(c, SQS_DELETE_MESSAGE_BATCH, sqs_encode_delete_message_batch(queue_url, e, n),
                      out, err);
}

int sqs_change_message_visibility(struct aws_client *c, const char *queue_url,
                                  const char *receipt_handle, int visibility_timeout,
                                  struct aws_error *err)
{
    char *resp;
    if (call_encoded(c, SQS_CHANGE_MESSAGE_VISIBILITY,
                     sqs_encode_change_visibility(queue_url, receipt_handle, visibility_timeout), 0,
                     &resp, NULL, err) != 0)
        return -1;
    free(resp);
    return 0;
}

int sqs_change_message_visibility_batch(struct aws_client *c, const char *queue_url,
                                        const struct sqs_receipt_entry *e, size_t n,
                                        struct sqs_batch_result *out, struct aws_error *err)
{
    return batch_call(c, SQS_CHANGE_MESSAGE_VISIBILITY_BATCH,
                      sqs_encode_change_visibility_batch(queue_url, e, n), out, err);
}

int sqs_get_queue_url(struct aws_client *c, const char *queue_name, char **queue_url,
                      struct aws_error *err)
{
    char *resp;
    size_t len;
    int rc;

    *queue_url = NULL;
    if (call_encoded(c, SQS_GET_QUEUE_URL, sqs_encode_get_queue_url(queue_name), 0, &resp, &len,
                     err) != 0)
        return -1;
    rc = sqs_decode_get_queue_url(resp, len, queue_url, err);
    free(resp);
    return rc;
}
