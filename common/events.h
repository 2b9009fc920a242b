/*
 * events.h - Amazon EventBridge on the shared AWS JSON client: PutEvents.
 *
 * EventBridge speaks AWS JSON 1.1 (X-Amz-Target: AWSEvents.PutEvents, SigV4
 * service "events"); aws.c signs, sends and retries exactly as for SQS,
 * events_codec.c builds the body and reads the answer. The endpoint is
 * AWS_ENDPOINT_URL_EVENTS, else AWS_ENDPOINT_URL, else
 * https://events.<region>.amazonaws.com.
 *
 * A call that fails as a whole (throttling, 5xx, transport) is retried by the
 * client; entries that fail inside a successful call are reported one by one
 * (events_put_result), and retrying those is the caller's job: its outbox
 * knows which rows they were and how long they have waited.
 */
#ifndef ORDER_EVENTS_H
#define ORDER_EVENTS_H

#include <stddef.h>

#include "aws.h"
#include "credentials.h"
#include "events_codec.h"

/* EventBridge as an AWS JSON service: "events", AWSEvents, JSON 1.1; no
 * tuning variables of its own (5 attempts, 2 s to connect, 30 s a request). */
extern const struct aws_service events_service;

int events_config_from_env(struct aws_config *c, char *err, size_t errlen);
/* creds is borrowed and must outlive the client. */
struct aws_client *events_client_new(const struct aws_config *cfg, struct creds_provider *creds);

/* Synchronous PutEvents of e[0..n) (n <= 10, within the size limit; see
 * events_batch_fit), with the client's retries. 0 with out holding one result
 * per entry, or -1 with err (nothing is known to have been accepted). */
int events_put(struct aws_client *c, const struct events_entry *e, size_t n,
               struct events_put_result *out, struct aws_error *err);

/* The same call as a request for a caller-driven curl multi loop (see
 * aws.h); NULL with err when the entries are refused or memory runs out.
 * Once aws_request_complete returns 0, events_request_result reads the
 * answer for the n entries the request was built with. */
struct aws_request *events_request_new(struct aws_client *c, const struct events_entry *e, size_t n,
                                       void *userdata, struct aws_error *err);
int events_request_result(const struct aws_request *r, size_t n, struct events_put_result *out,
                          struct aws_error *err);

#endif
