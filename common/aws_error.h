/*
 * aws_error.h - what went wrong in a call to AWS, and whether to try again.
 *
 * Every AWS client here (SQS, EventBridge, the container credentials
 * endpoint) reports failures as a struct aws_error and follows one retry
 * policy: throttling, 5xx and transport errors are retried with capped,
 * full-jitter exponential backoff; any other 4xx, an unreadable answer or
 * missing credentials fail at once, because another attempt cannot fix them.
 * No I/O here: classification is pure, so it is tested and fuzzed alone.
 */
#ifndef ORDER_AWS_ERROR_H
#define ORDER_AWS_ERROR_H

#include <curl/curl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum aws_error_kind {
    AWS_ERR_NONE = 0,
    AWS_ERR_TRANSPORT,   /* connect, timeout, TLS, reset: retryable */
    AWS_ERR_THROTTLED,   /* throttling error types / HTTP 429: retryable */
    AWS_ERR_SERVER,      /* HTTP 5xx: retryable */
    AWS_ERR_CLIENT,      /* other 4xx (bad request, missing queue, access denied): not retried */
    AWS_ERR_PARSE,       /* a response we could not understand: not retried */
    AWS_ERR_CREDENTIALS, /* no usable credentials: not retried */
};

struct aws_error {
    enum aws_error_kind kind;
    long http_status;  /* 0 when no response */
    char type[128];    /* __type without its namespace, e.g. "QueueDoesNotExist" */
    char message[512]; /* human readable, valid UTF-8; never contains a secret */
};

/* Sets kind, status and a formatted message (cut at a character boundary);
 * clears type. err may be NULL. */
void aws_error_set(struct aws_error *err, enum aws_error_kind kind, long status, const char *fmt,
                   ...) __attribute__((format(printf, 4, 5)));
void aws_error_clear(struct aws_error *err);
/* Copies src into dst[cap], cut at a UTF-8 character boundary when it does
 * not fit (a cut character would make a log line invalid). */
void aws_text_copy(char *dst, size_t cap, const char *src);
/* Puts "prefix: " in front of the message, dropping what no longer fits. */
void aws_error_prefix(struct aws_error *err, const char *prefix);
bool aws_error_retryable(const struct aws_error *e);

/* True for error types AWS SDKs treat as throttling ("ThrottlingException",
 * "RequestThrottled", "SlowDown", ...). */
bool aws_error_type_is_throttling(const char *type);
/* The kind of a non-2xx answer: THROTTLED for 429 or a throttling type,
 * SERVER for 5xx, else CLIENT. type may be NULL or "". */
enum aws_error_kind aws_error_kind_of_status(long http_status, const char *type);
/* Whether a libcurl failure is network weather another attempt may fix
 * (TRANSPORT) rather than a fault that needs a human (CLIENT). */
enum aws_error_kind aws_error_kind_of_curl(CURLcode rc);

/* Classifies a non-2xx response of the AWS JSON protocols: reads __type
 * (namespace and any ":suffix" stripped) and message/Message. Works on empty
 * or non-JSON bodies too, keeping a short printable excerpt. */
void aws_decode_error(long http_status, const char *body, size_t len, struct aws_error *err);

/* ---- retry policy ------------------------------------------------------- */

struct aws_retry_policy {
    unsigned max_attempts; /* including the first */
    int64_t base_ms;       /* ceiling of the first delay */
    int64_t cap_ms;        /* no delay is ever longer */
};

/* The jittered delay before the next attempt, given how many were made. */
int64_t aws_retry_delay_ms(const struct aws_retry_policy *p, unsigned attempts_made);
/* True when e is retryable and the policy allows another attempt. */
bool aws_retry_allowed(const struct aws_retry_policy *p, const struct aws_error *e,
                       unsigned attempts_made);
/* Sleeps for ms (restarting after signals); for synchronous callers only. */
void aws_sleep_ms(int64_t ms);

#endif
