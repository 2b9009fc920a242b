/*
 * events.c - EventBridge PutEvents on the shared AWS JSON client (see events.h).
 *
 * Design: like sqs.c, nothing here knows HTTP or JSON; EventBridge is a
 * struct aws_service and one action, so signing, keep-alive and the retry
 * policy are the ones SQS already proves.
 */
#include "events.h"

#include <stdlib.h>
#include <string.h>

#include "aws_env.h"

const struct aws_service events_service = {
    .id = "EVENTS",
    .endpoint_prefix = "events",
    .signing_name = "events",
    .target_prefix = "AWSEvents",
    .json = AWS_JSON_1_1,
    .tuning_prefix = NULL,
};

static const char PUT_EVENTS[] = "PutEvents";

int events_config_from_env(struct aws_config *c, char *err, size_t errlen)
{
    return aws_config_from_env(c, &events_service, err, errlen);
}

struct aws_client *events_client_new(const struct aws_config *cfg, struct creds_provider *creds)
{
    return aws_client_new(&events_service, cfg, creds);
}

int events_put(struct aws_client *c, const struct events_entry *e, size_t n,
               struct events_put_result *out, struct aws_error *err)
{
    char *body, *resp;
    size_t len;
    int rc;

    memset(out, 0, sizeof(*out));
    if (!(body = events_encode_put_events(e, n, err)))
        return -1;
    rc = aws_call(c, PUT_EVENTS, body, 0, &resp, &len, err);
    free(body);
    if (rc != 0)
        return -1;
    rc = events_decode_put_events(resp, len, n, out, err);
    free(resp);
    return rc;
}

struct aws_request *events_request_new(struct aws_client *c, const struct events_entry *e, size_t n,
                                       void *userdata, struct aws_error *err)
{
    char *body = events_encode_put_events(e, n, err);
    if (!body)
        return NULL;
    struct aws_request *r = aws_request_new(c, PUT_EVENTS, body, userdata);
    if (!r)
        aws_error_set(err, AWS_ERR_CLIENT, 0, "PutEvents: out of memory");
    return r;
}

int events_request_result(const struct aws_request *r, size_t n, struct events_put_result *out,
                          struct aws_error *err)
{
    size_t len;
    const char *resp = aws_request_response(r, &len);
    return events_decode_put_events(resp, len, n, out, err);
}
