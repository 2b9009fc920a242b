/*
 * sigv4.h - AWS Signature Version 4 for HTTP request headers.
 *
 * Pure computation over OpenSSL (HMAC-SHA256, SHA-256): no I/O, no clock, no
 * globals, so it is pinned byte for byte by the official AWS SigV4 test suite
 * (tests/unit/data/sigv4). The signer adds X-Amz-Date, X-Amz-Security-Token
 * (when the credentials carry a session token) and, when asked,
 * X-Amz-Content-Sha256 to the signed headers itself; the caller sends the
 * headers listed in struct sigv4_result along with its own.
 */
#ifndef ORDER_SIGV4_H
#define ORDER_SIGV4_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "credentials.h"

struct sigv4_header {
    const char *name;
    const char *value;
};

struct sigv4_request {
    const char *method;
    const char *path;                   /* as in the request line, e.g. "/" or "/a/./b/%20c" */
    const char *query;                  /* after '?', or NULL */
    const struct sigv4_header *headers; /* must include Host; repeated names allowed */
    size_t n_headers;
    const void *body;
    size_t body_len;
};

struct sigv4_signing {
    const char *region;
    const char *service;
    const struct aws_credentials *creds;
    time_t now;          /* the request time, UTC seconds */
    bool normalize_path; /* true for every service but S3 */
    bool sign_body;      /* add X-Amz-Content-Sha256 (S3-style); false for SQS */
};

struct sigv4_result {
    char amz_date[17];       /* YYYYMMDDTHHMMSSZ, send as X-Amz-Date */
    char content_sha256[65]; /* hex SHA-256 of the body; send when sign_body */
    char signature[65];      /* hex */
    char *authorization;     /* full Authorization header value (malloc) */
    char *canonical_request; /* malloc; kept for tests and debugging */
    char *string_to_sign;    /* malloc */
};

/* Returns 0 and fills out, or -1 with a message in err (never containing a secret). */
int sigv4_sign(const struct sigv4_request *req, const struct sigv4_signing *s,
               struct sigv4_result *out, char *err, size_t errlen);
void sigv4_result_free(struct sigv4_result *r);

#endif
