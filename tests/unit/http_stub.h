/*
 * http_stub.h - a scripted HTTP/1.1 server on 127.0.0.1 for protocol tests.
 *
 * It stands in for whatever the code under test talks to (SQS, EventBridge,
 * the ECS credentials endpoint, a JWKS URL, a payment provider) and observes
 * the client from the far side of the socket: every request is captured
 * (method, target, headers, body, the connection it came on) and connections
 * are counted, so retries and keep-alive are seen, not assumed.
 *
 * Answers come from a queue of canned responses (the last one repeats, so one
 * "503" scripts an outage) or from a handler callback. Each connection is
 * served by its own thread, so a delayed answer never holds up another
 * connection. Start it on an ephemeral port, point the client at
 * http_stub_url(), stop it at the end of the test.
 */
#ifndef ORDER_TEST_HTTP_STUB_H
#define ORDER_TEST_HTTP_STUB_H

#include <stdbool.h>
#include <stddef.h>

struct http_stub_header {
    char *name;
    char *value;
};

/* One request as the stub read it; immutable once captured. */
struct http_stub_request {
    char method[16];
    char target[2048]; /* path and query, as on the request line */
    struct http_stub_header *headers;
    size_t n_headers;
    char *body; /* always NUL-terminated; body_len excludes the NUL */
    size_t body_len;
    bool chunked;   /* the body came with Transfer-Encoding: chunked */
    int connection; /* 1 for the first accepted connection, 2 for the next... */
    size_t index;   /* 0 for the first request the stub saw */
};

struct http_stub_response {
    int status;               /* 0 reads as 200 */
    const char *body;         /* copied by the stub; NULL is an empty body */
    size_t body_len;          /* 0: strlen(body) */
    const char *content_type; /* NULL: application/json */
    const char *headers;      /* extra header lines, each ending in "\r\n", or NULL */
    int delay_ms;             /* wait this long before answering */
    bool hang_up;             /* close the connection instead of answering */
    size_t fill_len;          /* answer with this many bytes of 'x' instead of body */
    bool close;               /* send Connection: close and close after answering */
};

/* Called on the connection's thread for every request when set; fills resp
 * (zeroed beforehand). resp->body must stay valid until the handler returns:
 * the stub copies it. */
typedef void (*http_stub_handler)(const struct http_stub_request *req,
                                  struct http_stub_response *resp, void *arg);

struct http_stub;

/* Listens on 127.0.0.1 with an ephemeral port; NULL when that fails. */
struct http_stub *http_stub_start(void);
/* Stops accepting, closes every connection, joins every thread, frees all. */
void http_stub_stop(struct http_stub *s);

int http_stub_port(const struct http_stub *s);
/* "http://127.0.0.1:<port>" */
const char *http_stub_url(const struct http_stub *s);

/* Appends a canned response. Requests consume the queue in order; the last
 * response stays and answers every later request. */
void http_stub_push(struct http_stub *s, const struct http_stub_response *r);
/* Shorthand for a status and a body. */
void http_stub_reply(struct http_stub *s, int status, const char *body);
/* Answers every request through handler instead of the queue (NULL: the queue again). */
void http_stub_set_handler(struct http_stub *s, http_stub_handler handler, void *arg);

size_t http_stub_requests(struct http_stub *s);
size_t http_stub_connections(struct http_stub *s);
/* Request i (0-based), or NULL when fewer were seen. Valid until http_stub_stop. */
const struct http_stub_request *http_stub_request(struct http_stub *s, size_t i);
/* The latest request, or NULL. */
const struct http_stub_request *http_stub_last(struct http_stub *s);
/* Value of a header (case-insensitive name; the first when repeated), or NULL. */
const char *http_stub_header(const struct http_stub_request *r, const char *name);
/* Waits until at least n requests were seen; false after timeout_ms. */
bool http_stub_wait_requests(struct http_stub *s, size_t n, int timeout_ms);

#endif
