/*
 * aws.h - a client for AWS services that speak the AWS JSON protocol.
 *
 * A request is POST / with X-Amz-Target: <TargetPrefix>.<Action> and
 * Content-Type: application/x-amz-json-1.0 or -1.1, signed with SigV4 for the
 * service's signing name; the service is a struct aws_service, so SQS
 * (AmazonSQS, JSON 1.0) and EventBridge (AWSEvents, JSON 1.1) share this code
 * and differ only in data. What the client does not know is any action's
 * body: the service modules (sqs.c, events.c) and their codecs own those.
 *
 * Two ways to call:
 *   - struct aws_request: one signed libcurl easy handle for callers that run
 *     their own curl multi loop; the caller decides when to retry, using
 *     aws_error_retryable and aws_request_backoff_ms, and finds the request
 *     of a finished handle with aws_request_from_easy;
 *   - aws_call: synchronous, retrying throttling, 5xx and transport errors
 *     with capped, jittered exponential backoff on one keep-alive connection.
 * A struct aws_client is used by one thread at a time.
 */
#ifndef ORDER_AWS_H
#define ORDER_AWS_H

#include <curl/curl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aws_error.h"
#include "credentials.h"

enum aws_json_version { AWS_JSON_1_0, AWS_JSON_1_1 };

/* What tells one AWS JSON service from another (the SDKs' service metadata). */
struct aws_service {
    const char *id;              /* AWS_ENDPOINT_URL_<id>: "SQS", "EVENTS" */
    const char *endpoint_prefix; /* https://<prefix>.<region>.amazonaws.com */
    const char *signing_name;    /* SigV4 service: "sqs", "events" */
    const char *target_prefix;   /* X-Amz-Target: <prefix>.<Action> */
    enum aws_json_version json;
    const char *tuning_prefix; /* <prefix>_MAX_ATTEMPTS, ... read from the
                                  environment; NULL: defaults only */
};

struct aws_config {
    char endpoint[512]; /* scheme://host[:port], no trailing slash */
    char region[64];
    bool verify_tls;         /* always true: TLS is verified, there is no switch */
    long connect_timeout_ms; /* default 2000 */
    long request_timeout_ms; /* default 30000; long polls add their wait */
    unsigned max_attempts;   /* synchronous calls, default 5 */
    int64_t backoff_base_ms; /* default 50 */
    int64_t backoff_cap_ms;  /* default 5000 */
};

struct aws_client;
/* svc and creds are borrowed and must outlive the client. NULL when cfg is
 * unusable (endpoint not scheme://host, bad region, no attempts) or memory
 * runs out. */
struct aws_client *aws_client_new(const struct aws_service *svc, const struct aws_config *cfg,
                                  struct creds_provider *creds);
void aws_client_free(struct aws_client *c);
const struct aws_config *aws_client_config(const struct aws_client *c);
const struct aws_service *aws_client_service(const struct aws_client *c);

/* ---- requests for caller-driven curl multi loops ------------------------ */

struct aws_request;
/* Takes ownership of body (malloc'd JSON) also on failure. action ("SendMessage")
 * must outlive the request. NULL when c, action or body is NULL or memory runs out. */
struct aws_request *aws_request_new(struct aws_client *c, const char *action, char *body,
                                    void *userdata);
/* Signs with the current time and credentials and resets the response; call
 * before every attempt (with the easy handle out of any multi), then add
 * aws_request_easy(r) to a multi handle. extra_timeout_ms is added to the
 * configured request timeout (long polls). A NULL r is an error, not a crash. */
int aws_request_prepare(struct aws_request *r, long extra_timeout_ms, struct aws_error *err);
/* The easy handle (NULL for a NULL r); its CURLOPT_PRIVATE is r. */
CURL *aws_request_easy(struct aws_request *r);
/* The request an easy handle belongs to (CURLINFO_PRIVATE), or NULL. */
struct aws_request *aws_request_from_easy(CURL *easy);
/* After the multi reports the transfer done: 0 on a 2xx, else -1 with err
 * classified. Increments the attempt count. */
int aws_request_complete(struct aws_request *r, CURLcode rc, struct aws_error *err);
/* The accessors below accept a NULL request too (empty answers). */
const char *aws_request_response(const struct aws_request *r, size_t *len);
const char *aws_request_action(const struct aws_request *r);
void *aws_request_userdata(const struct aws_request *r);
unsigned aws_request_attempts(const struct aws_request *r);
/* Jittered delay before the next attempt, from the attempts made so far. */
int64_t aws_request_backoff_ms(const struct aws_request *r);
void aws_request_free(struct aws_request *r);

/* ---- synchronous -------------------------------------------------------- */

/* Calls action with body (borrowed), retrying per the client's policy. On
 * success *resp is the malloc'd response body ("{}" for an empty one). */
int aws_call(struct aws_client *c, const char *action, const char *body, long extra_timeout_ms,
             char **resp, size_t *resp_len, struct aws_error *err);

#endif
