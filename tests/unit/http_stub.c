/*
 * http_stub.c - the scripted HTTP/1.1 test server (see http_stub.h).
 *
 * One accept thread, one thread per connection. Everything a test reads
 * (captured requests, counters) is written under one mutex, and a captured
 * request is never changed after it is published, so a test may hold the
 * pointer while the server keeps serving. The stub must never take a test
 * down with it: it reports malformed requests by closing the connection and
 * aborts only when it cannot allocate.
 */
#include "http_stub.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define STUB_MAX_HEAD (64u * 1024)
#define STUB_MAX_BODY (64u * 1024 * 1024)
#define STUB_POLL_MS 50

struct canned {
    struct http_stub_response r; /* string fields point at the copies below */
    char *body, *content_type, *headers;
};

struct conn {
    struct http_stub *stub;
    int fd;
    int id;
    pthread_t thread;
    int done; /* set by the connection's thread as its last act */
    struct conn *next;
};

struct http_stub {
    int lfd;
    int port;
    char url[64];
    pthread_t accept_thread;
    pthread_mutex_t mu;
    pthread_cond_t changed;
    int stop;
    struct conn *conns;
    int n_connections;
    struct http_stub_request **reqs;
    size_t n_reqs, cap_reqs;
    struct canned *queue;
    size_t n_queue, cap_queue, next_canned;
    http_stub_handler handler;
    void *handler_arg;
};

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) {
        fputs("http_stub: out of memory\n", stderr);
        abort();
    }
    return p;
}

static char *xmemdup(const char *s, size_t n)
{
    char *p = xmalloc(n + 1);
    if (n)
        memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

static char *xstrdup_or_null(const char *s)
{
    return s ? xmemdup(s, strlen(s)) : NULL;
}

static bool stopping(struct http_stub *s)
{
    return __atomic_load_n(&s->stop, __ATOMIC_SEQ_CST) != 0;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* ---- reading ----------------------------------------------------------- */

struct rbuf {
    char *data;
    size_t len, cap;
};

/* Reads more bytes into b; 1 on data, 0 at EOF, -1 on error or stop. */
static int read_more(struct conn *c, struct rbuf *b)
{
    if (b->len == b->cap) {
        b->cap = b->cap ? b->cap * 2 : 16384;
        char *p = realloc(b->data, b->cap);
        if (!p) {
            fputs("http_stub: out of memory\n", stderr);
            abort();
        }
        b->data = p;
    }
    for (;;) {
        struct pollfd p = {.fd = c->fd, .events = POLLIN};
        if (stopping(c->stub))
            return -1;
        int n = poll(&p, 1, STUB_POLL_MS);
        if (n < 0 && errno != EINTR)
            return -1;
        if (n <= 0)
            continue;
        ssize_t got = recv(c->fd, b->data + b->len, b->cap - b->len, 0);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            return got == 0 ? 0 : -1;
        b->len += (size_t)got;
        return 1;
    }
}

/* Makes sure b holds at least n bytes; false at EOF, error or stop. */
static bool need(struct conn *c, struct rbuf *b, size_t n)
{
    while (b->len < n)
        if (read_more(c, b) <= 0)
            return false;
    return true;
}

static void consume(struct rbuf *b, size_t n)
{
    if (n == 0)
        return;
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
}

static int send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Reads a chunked body (RFC 9112 section 7.1) into out; trailers are skipped. */
static bool read_chunked(struct conn *c, struct rbuf *b, char **out, size_t *out_len)
{
    size_t len = 0, cap = 0;
    char *body = NULL;

    for (;;) {
        char *eol;
        while (!(eol = memmem(b->data, b->len, "\r\n", 2)))
            if (b->len > 1024 || read_more(c, b) <= 0)
                goto fail;
        char *end;
        unsigned long long size = strtoull(b->data, &end, 16);
        if (end == b->data || size > STUB_MAX_BODY || len + size > STUB_MAX_BODY)
            goto fail;
        consume(b, (size_t)(eol - b->data) + 2);
        if (size == 0)
            break;
        if (!need(c, b, (size_t)size + 2))
            goto fail;
        if (len + size + 1 > cap) {
            cap = (len + size + 1) * 2;
            char *p = realloc(body, cap);
            if (!p)
                abort();
            body = p;
        }
        memcpy(body + len, b->data, (size_t)size);
        len += (size_t)size;
        consume(b, (size_t)size + 2);
    }
    for (;;) { /* trailer section, ended by an empty line */
        char *eol;
        while (!(eol = memmem(b->data, b->len, "\r\n", 2)))
            if (b->len > STUB_MAX_HEAD || read_more(c, b) <= 0)
                goto fail;
        bool empty = eol == b->data;
        consume(b, (size_t)(eol - b->data) + 2);
        if (empty)
            break;
    }
    *out = body ? body : xmalloc(1);
    (*out)[len] = '\0';
    *out_len = len;
    return true;
fail:
    free(body);
    return false;
}

static void request_free(struct http_stub_request *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n_headers; i++) {
        free(r->headers[i].name);
        free(r->headers[i].value);
    }
    free(r->headers);
    free(r->body);
    free(r);
}

const char *http_stub_header(const struct http_stub_request *r, const char *name)
{
    for (size_t i = 0; r && i < r->n_headers; i++)
        if (strcasecmp(r->headers[i].name, name) == 0)
            return r->headers[i].value;
    return NULL;
}

/* Reads one request; NULL at EOF, on a malformed request or on stop. */
static struct http_stub_request *read_request(struct conn *c, struct rbuf *b, bool *expect_100)
{
    char *end;
    while (!(end = memmem(b->data, b->len, "\r\n\r\n", 4)))
        if (b->len > STUB_MAX_HEAD || read_more(c, b) <= 0)
            return NULL;
    size_t head_len = (size_t)(end - b->data) + 4;
    struct http_stub_request *r = calloc(1, sizeof(*r));
    if (!r)
        abort();

    const char *line_end = memmem(b->data, head_len, "\r\n", 2);
    const char *sp1 = memchr(b->data, ' ', (size_t)(line_end - b->data));
    const char *sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(line_end - sp1 - 1)) : NULL;
    if (!sp1 || !sp2 || (size_t)(sp1 - b->data) >= sizeof(r->method) ||
        (size_t)(sp2 - sp1 - 1) >= sizeof(r->target) || strncmp(sp2 + 1, "HTTP/1.", 7) != 0) {
        request_free(r);
        return NULL;
    }
    memcpy(r->method, b->data, (size_t)(sp1 - b->data));
    memcpy(r->target, sp1 + 1, (size_t)(sp2 - sp1 - 1));

    size_t cap = 0;
    for (const char *line = line_end + 2; line < end;) {
        const char *eol = memmem(line, (size_t)(end + 2 - line), "\r\n", 2);
        const char *colon = memchr(line, ':', (size_t)(eol - line));
        if (colon) {
            const char *v = colon + 1, *ve = eol;
            while (v < ve && (*v == ' ' || *v == '\t'))
                v++;
            while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
                ve--;
            if (r->n_headers == cap) {
                cap = cap ? cap * 2 : 16;
                void *p = realloc(r->headers, cap * sizeof(*r->headers));
                if (!p)
                    abort();
                r->headers = p;
            }
            r->headers[r->n_headers].name = xmemdup(line, (size_t)(colon - line));
            r->headers[r->n_headers].value = xmemdup(v, (size_t)(ve - v));
            r->n_headers++;
        }
        line = eol + 2;
    }
    consume(b, head_len);

    const char *te = http_stub_header(r, "Transfer-Encoding");
    const char *cl = http_stub_header(r, "Content-Length");
    const char *expect = http_stub_header(r, "Expect");
    *expect_100 = expect && strcasecmp(expect, "100-continue") == 0;
    if (*expect_100 && send_all(c->fd, "HTTP/1.1 100 Continue\r\n\r\n", 25) != 0) {
        request_free(r);
        return NULL;
    }
    if (te && strcasecmp(te, "chunked") == 0) {
        r->chunked = true;
        if (!read_chunked(c, b, &r->body, &r->body_len)) {
            request_free(r);
            return NULL;
        }
    } else {
        unsigned long long n = cl ? strtoull(cl, NULL, 10) : 0;
        if (n > STUB_MAX_BODY || !need(c, b, (size_t)n)) {
            request_free(r);
            return NULL;
        }
        r->body = xmemdup(b->data, (size_t)n);
        r->body_len = (size_t)n;
        consume(b, (size_t)n);
    }
    return r;
}

/* ---- answering --------------------------------------------------------- */

static void canned_copy(struct canned *dst, const struct http_stub_response *src)
{
    memset(dst, 0, sizeof(*dst));
    dst->r = *src;
    size_t n = src->body ? (src->body_len ? src->body_len : strlen(src->body)) : 0;
    dst->body = xmemdup(src->body ? src->body : "", n);
    dst->r.body = dst->body;
    dst->r.body_len = n;
    dst->content_type = xstrdup_or_null(src->content_type);
    dst->r.content_type = dst->content_type;
    dst->headers = xstrdup_or_null(src->headers);
    dst->r.headers = dst->headers;
}

static void canned_free(struct canned *c)
{
    free(c->body);
    free(c->content_type);
    free(c->headers);
}

/* The answer for r, as a private copy the caller frees. */
static void choose_response(struct http_stub *s, const struct http_stub_request *r,
                            struct canned *out)
{
    http_stub_handler h;
    void *arg;

    pthread_mutex_lock(&s->mu);
    h = s->handler;
    arg = s->handler_arg;
    if (!h) {
        if (s->n_queue == 0) {
            struct http_stub_response none = {
                .status = 500, .body = "{\"error\":\"http_stub: nothing scripted\"}"};
            canned_copy(out, &none);
        } else {
            canned_copy(out, &s->queue[s->next_canned].r);
            if (s->next_canned + 1 < s->n_queue)
                s->next_canned++;
        }
    }
    pthread_mutex_unlock(&s->mu);
    if (h) {
        struct http_stub_response resp;
        memset(&resp, 0, sizeof(resp));
        h(r, &resp, arg);
        canned_copy(out, &resp);
    }
}

static const char *reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 404:
        return "Not Found";
    case 429:
        return "Too Many Requests";
    case 500:
        return "Internal Server Error";
    case 503:
        return "Service Unavailable";
    default:
        return "Stub";
    }
}

/* Sends the answer; false when the connection must close afterwards. */
static bool answer(struct conn *c, const struct http_stub_request *r, const struct canned *a)
{
    const struct http_stub_response *p = &a->r;
    int status = p->status ? p->status : 200;
    size_t len = p->fill_len ? p->fill_len : p->body_len;
    char head[1024];

    for (int waited = 0; waited < p->delay_ms && !stopping(c->stub); waited += 10)
        sleep_ms(p->delay_ms - waited < 10 ? p->delay_ms - waited : 10);
    if (p->hang_up || stopping(c->stub))
        return false;
    const char *conn_hdr = http_stub_header(r, "Connection");
    bool close_after = p->close || (conn_hdr && strcasecmp(conn_hdr, "close") == 0);
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s%s\r\n",
                     status, reason(status), p->content_type ? p->content_type : "application/json",
                     len, close_after ? "Connection: close\r\n" : "", p->headers ? p->headers : "");
    if (n < 0 || (size_t)n >= sizeof(head) || send_all(c->fd, head, (size_t)n) != 0)
        return false;
    if (strcmp(r->method, "HEAD") == 0)
        return !close_after;
    if (p->fill_len) {
        char chunk[65536];
        memset(chunk, 'x', sizeof(chunk));
        for (size_t sent = 0; sent < p->fill_len; sent += sizeof(chunk)) {
            size_t k = p->fill_len - sent < sizeof(chunk) ? p->fill_len - sent : sizeof(chunk);
            if (send_all(c->fd, chunk, k) != 0)
                return false;
        }
    } else if (send_all(c->fd, p->body, p->body_len) != 0) {
        return false;
    }
    return !close_after;
}

static void publish(struct http_stub *s, struct http_stub_request *r)
{
    pthread_mutex_lock(&s->mu);
    if (s->n_reqs == s->cap_reqs) {
        s->cap_reqs = s->cap_reqs ? s->cap_reqs * 2 : 64;
        void *p = realloc(s->reqs, s->cap_reqs * sizeof(*s->reqs));
        if (!p)
            abort();
        s->reqs = p;
    }
    r->index = s->n_reqs;
    s->reqs[s->n_reqs++] = r;
    pthread_cond_broadcast(&s->changed);
    pthread_mutex_unlock(&s->mu);
}

static void *conn_main(void *arg)
{
    struct conn *c = arg;
    /* allocated up front: memmem and memmove must never see a NULL buffer */
    struct rbuf b = {.data = xmalloc(16384), .cap = 16384};

    for (;;) {
        bool expect_100 = false;
        struct http_stub_request *r = read_request(c, &b, &expect_100);
        if (!r)
            break;
        r->connection = c->id;
        publish(c->stub, r);
        struct canned a;
        choose_response(c->stub, r, &a);
        bool keep = answer(c, r, &a);
        canned_free(&a);
        if (!keep)
            break;
    }
    free(b.data);
    shutdown(c->fd, SHUT_RDWR);
    __atomic_store_n(&c->done, 1, __ATOMIC_SEQ_CST);
    return NULL;
}

static void conn_reap(struct conn *c)
{
    pthread_join(c->thread, NULL);
    close(c->fd);
    free(c);
}

/* Joins the connections that have ended, so a long test does not pile up threads. */
static void reap_finished(struct http_stub *s)
{
    struct conn *done = NULL;
    pthread_mutex_lock(&s->mu);
    for (struct conn **pp = &s->conns; *pp;) {
        struct conn *c = *pp;
        if (__atomic_load_n(&c->done, __ATOMIC_SEQ_CST)) {
            *pp = c->next;
            c->next = done;
            done = c;
        } else {
            pp = &c->next;
        }
    }
    pthread_mutex_unlock(&s->mu);
    while (done) {
        struct conn *next = done->next;
        conn_reap(done);
        done = next;
    }
}

static void *accept_main(void *arg)
{
    struct http_stub *s = arg;
    while (!stopping(s)) {
        struct pollfd p = {.fd = s->lfd, .events = POLLIN};
        reap_finished(s);
        if (poll(&p, 1, STUB_POLL_MS) <= 0)
            continue;
        int fd = accept(s->lfd, NULL, NULL);
        if (fd < 0)
            continue;
        struct conn *c = calloc(1, sizeof(*c));
        if (!c)
            abort();
        c->stub = s;
        c->fd = fd;
        pthread_mutex_lock(&s->mu);
        c->id = ++s->n_connections;
        c->next = s->conns;
        s->conns = c;
        pthread_cond_broadcast(&s->changed);
        pthread_mutex_unlock(&s->mu);
        if (pthread_create(&c->thread, NULL, conn_main, c) != 0) {
            fputs("http_stub: cannot start a connection thread\n", stderr);
            abort();
        }
    }
    return NULL;
}

/* ---- public ------------------------------------------------------------ */

struct http_stub *http_stub_start(void)
{
    struct http_stub *s = calloc(1, sizeof(*s));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof(a);
    int one = 1;

    if (!s)
        return NULL;
    s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s->lfd < 0)
        goto fail;
    setsockopt(s->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(s->lfd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(s->lfd, 128) != 0 ||
        getsockname(s->lfd, (struct sockaddr *)&a, &alen) != 0)
        goto fail;
    s->port = ntohs(a.sin_port);
    snprintf(s->url, sizeof(s->url), "http://127.0.0.1:%d", s->port);
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->changed, NULL);
    if (pthread_create(&s->accept_thread, NULL, accept_main, s) != 0) {
        pthread_cond_destroy(&s->changed);
        pthread_mutex_destroy(&s->mu);
        goto fail;
    }
    return s;
fail:
    if (s->lfd >= 0)
        close(s->lfd);
    free(s);
    return NULL;
}

void http_stub_stop(struct http_stub *s)
{
    if (!s)
        return;
    __atomic_store_n(&s->stop, 1, __ATOMIC_SEQ_CST);
    pthread_join(s->accept_thread, NULL);
    /* No more reaping now; wake any connection blocked in send(). */
    for (struct conn *c = s->conns; c; c = c->next)
        shutdown(c->fd, SHUT_RDWR);
    while (s->conns) {
        struct conn *next = s->conns->next;
        conn_reap(s->conns);
        s->conns = next;
    }
    close(s->lfd);
    for (size_t i = 0; i < s->n_reqs; i++)
        request_free(s->reqs[i]);
    free(s->reqs);
    for (size_t i = 0; i < s->n_queue; i++)
        canned_free(&s->queue[i]);
    free(s->queue);
    pthread_cond_destroy(&s->changed);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

int http_stub_port(const struct http_stub *s)
{
    return s->port;
}

const char *http_stub_url(const struct http_stub *s)
{
    return s->url;
}

void http_stub_push(struct http_stub *s, const struct http_stub_response *r)
{
    pthread_mutex_lock(&s->mu);
    if (s->n_queue == s->cap_queue) {
        s->cap_queue = s->cap_queue ? s->cap_queue * 2 : 16;
        void *p = realloc(s->queue, s->cap_queue * sizeof(*s->queue));
        if (!p)
            abort();
        s->queue = p;
    }
    canned_copy(&s->queue[s->n_queue++], r);
    pthread_mutex_unlock(&s->mu);
}

void http_stub_reply(struct http_stub *s, int status, const char *body)
{
    struct http_stub_response r = {.status = status, .body = body};
    http_stub_push(s, &r);
}

void http_stub_set_handler(struct http_stub *s, http_stub_handler handler, void *arg)
{
    pthread_mutex_lock(&s->mu);
    s->handler = handler;
    s->handler_arg = arg;
    pthread_mutex_unlock(&s->mu);
}

size_t http_stub_requests(struct http_stub *s)
{
    pthread_mutex_lock(&s->mu);
    size_t n = s->n_reqs;
    pthread_mutex_unlock(&s->mu);
    return n;
}

size_t http_stub_connections(struct http_stub *s)
{
    pthread_mutex_lock(&s->mu);
    size_t n = (size_t)s->n_connections;
    pthread_mutex_unlock(&s->mu);
    return n;
}

const struct http_stub_request *http_stub_request(struct http_stub *s, size_t i)
{
    pthread_mutex_lock(&s->mu);
    const struct http_stub_request *r = i < s->n_reqs ? s->reqs[i] : NULL;
    pthread_mutex_unlock(&s->mu);
    return r;
}

const struct http_stub_request *http_stub_last(struct http_stub *s)
{
    pthread_mutex_lock(&s->mu);
    const struct http_stub_request *r = s->n_reqs ? s->reqs[s->n_reqs - 1] : NULL;
    pthread_mutex_unlock(&s->mu);
    return r;
}

bool http_stub_wait_requests(struct http_stub *s, size_t n, int timeout_ms)
{
    struct timespec deadline;
    bool ok;

    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += timeout_ms / 1000;
    deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&s->mu);
    while (s->n_reqs < n)
        if (pthread_cond_timedwait(&s->changed, &s->mu, &deadline) == ETIMEDOUT)
            break;
    ok = s->n_reqs >= n;
    pthread_mutex_unlock(&s->mu);
    return ok;
}
