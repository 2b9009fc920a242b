/*
 * http.c - order-api's HTTP server on libmicrohttpd: input limits, the
 * request lifecycle, the answer helpers, and an orderly shutdown.
 *
 * A POST /orders is validated on the HTTP thread, then its connection is
 * suspended while the committer stores it with others in one transaction;
 * the committer resumes it with the outcome. No HTTP thread ever waits for a
 * commit, so a handful of threads serve thousands of concurrent clients.
 * At shutdown every connection still suspended is resumed with a 503 before
 * the daemon stops: libmicrohttpd aborts the process when stopped with
 * suspended connections.
 *
 * Limits, each answered with its JSON error: a request target over 8 KiB
 * (414 uri_too_long), a header block over 16 KiB (431 headers_too_large), a
 * Content-Length over 64 KiB or a wrong Content-Type (413/415, before the
 * body is read), a chunked body over 64 KiB (413 once the client has sent it,
 * up to 16 MiB, then the connection is dropped); idle and slow clients time
 * out; the number of connections is capped. What does not fit the
 * per-connection pool (32 KiB of request line and headers) is refused by
 * libmicrohttpd itself before any handler runs.
 */
#include <jansson.h>
#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "guard.h"
#include "http.h"
#include "log.h"

#define URI_LIMIT (8 * 1024)
#define HEADERS_LIMIT (16 * 1024)
/* Holds the request line and headers at their limits (8 + 16 KiB) with the
 * answer (test_hostile.py::test_largest_allowed_target_and_headers_are_served).
 * Not more: at 256 connections the API peaked at 42.6 MiB with 64 KiB pools
 * and 34.6 MiB with 32 KiB (bench/bench.py --levels 256). */
#define CONNECTION_POOL (32 * 1024)
#define DISCARD_LIMIT (16 * 1024 * 1024) /* bytes of an oversized chunked body we skip */

static struct MHD_Daemon *daemon_h;
static struct MHD_Daemon *metrics_h; /* METRICS_PORT: /metrics never shares the public port */
static _Atomic int in_flight;
char *http_openapi_doc;
size_t http_openapi_len;

static pthread_mutex_t susp_lock = PTHREAD_MUTEX_INITIALIZER;
static struct req_ctx *susp_head; /* POSTs suspended while the committer has them */

/* ---- answers ------------------------------------------------------------- */

enum MHD_Result http_send_text(struct req_ctx *c, int status, const char *type, const char *body,
                               size_t len, const char *const *headers)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    if (!r)
        return MHD_NO; /* no memory for an answer: drop the connection */
    MHD_add_response_header(r, "Content-Type", type);
    MHD_add_response_header(r, "X-Correlation-Id", c->correlation_id);
    MHD_add_response_header(r, "Cache-Control", "no-store");
    for (size_t i = 0; headers && headers[i]; i += 2)
        MHD_add_response_header(r, headers[i], headers[i + 1]);
    enum MHD_Result ret = MHD_queue_response(c->conn, (unsigned)status, r);
    MHD_destroy_response(r);
    metrics_api_count(c->route, status);
    if (status >= 400 && c->route == R_ORDERS && c->method && strcmp(c->method, "POST") == 0)
        metrics_api_order_refused(status);
    c->status = status;
    c->bytes_out = len;
    c->responded = true;
    return ret;
}

enum MHD_Result http_send_json(struct req_ctx *c, int status, json_t *body,
                               const char *const *headers)
{
    char *s = body ? util_json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(body);
    if (!s) {
        static const char oom[] =
            "{\"error\":{\"code\":\"internal\",\"message\":\"out of memory\",\"details\":[]}}";
        return http_send_text(c, 500, "application/json", oom, sizeof(oom) - 1, NULL);
    }
    enum MHD_Result ret = http_send_text(c, status, "application/json", s, strlen(s), headers);
    free(s);
    return ret;
}

enum MHD_Result http_send_error(struct req_ctx *c, int status, const char *code,
                                const char *message, const char *field, const char *field_message,
                                const char *const *headers)
{
    struct field_error d;
    size_t n = 0;
    if (field) {
        util_strlcpy(d.field, field, sizeof(d.field));
        util_strlcpy(d.message, field_message ? field_message : message, sizeof(d.message));
        n = 1;
    }
    return http_send_json(c, status, order_error_json(code, message, n ? &d : NULL, n), headers);
}

enum MHD_Result http_send_unavailable(struct req_ctx *c, const char *message)
{
    static const char *const h[] = {"Retry-After", "2", NULL};
    return http_send_error(c, 503, "unavailable", message, NULL, NULL, h);
}

enum MHD_Result http_send_store_error(struct req_ctx *c, enum store_rc rc)
{
    if (rc == STORE_UNAVAILABLE)
        return http_send_unavailable(c, "the database is unavailable; retry later");
    if (rc == STORE_NOT_FOUND)
        return http_send_error(c, 404, "not_found", "no order has this id", "id",
                               "no order has this id", NULL);
    return http_send_error(c, 500, "internal", "the request could not be completed", NULL, NULL,
                           NULL);
}

/* ---- suspended POSTs ----------------------------------------------------- */

void http_suspend(struct req_ctx *c)
{
    pthread_mutex_lock(&susp_lock);
    c->susp_prev = NULL;
    c->susp_next = susp_head;
    if (susp_head)
        susp_head->susp_prev = c;
    susp_head = c;
    pthread_mutex_unlock(&susp_lock);
    MHD_suspend_connection(c->conn);
}

static void unlink_suspended(struct req_ctx *c)
{
    pthread_mutex_lock(&susp_lock);
    if (c->susp_prev)
        c->susp_prev->susp_next = c->susp_next;
    else if (susp_head == c)
        susp_head = c->susp_next;
    if (c->susp_next)
        c->susp_next->susp_prev = c->susp_prev;
    c->susp_prev = c->susp_next = NULL;
    pthread_mutex_unlock(&susp_lock);
}

/* Resumes every POST the committer still holds, to be answered 503; the
 * committer frees those jobs. Returns how many were abandoned. */
static size_t abandon_suspended(void)
{
    size_t n = 0;
    pthread_mutex_lock(&susp_lock);
    for (struct req_ctx *c = susp_head; c; c = c->susp_next) {
        if (!c->job || !committer_abandon(c->job))
            continue; /* its outcome is known: the committer resumes it */
        c->job = NULL;
        c->abandoned = true;
        MHD_resume_connection(c->conn);
        n++;
    }
    pthread_mutex_unlock(&susp_lock);
    return n;
}

/* ---- request limits ------------------------------------------------------ */

static enum MHD_Result add_header_size(void *cls, enum MHD_ValueKind kind, const char *key,
                                       const char *value)
{
    (void)kind;
    size_t *total = cls;
    *total += strlen(key) + (value ? strlen(value) : 0) + 4; /* ": " and CRLF */
    return MHD_YES;
}

static size_t header_block_size(struct MHD_Connection *conn)
{
    size_t total = 0;
    MHD_get_connection_values(conn, MHD_HEADER_KIND, add_header_size, &total);
    return total;
}

/* The path plus its (decoded) query arguments: the request target's size
 * as far as libmicrohttpd lets a handler see it. */
static size_t target_size(struct MHD_Connection *conn, const char *url)
{
    size_t total = strlen(url);
    MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, add_header_size, &total);
    return total;
}

/* application/json, optionally with parameters; a charset other than UTF-8 is refused. */
static bool json_content_type(const char *ct)
{
    if (!ct)
        return false;
    while (*ct == ' ')
        ct++;
    if (strncasecmp(ct, "application/json", 16) != 0)
        return false;
    const char *p = ct + 16;
    while (*p == ' ')
        p++;
    if (*p == '\0')
        return true;
    if (*p != ';')
        return false;
    const char *cs = strcasestr(p, "charset=");
    if (!cs)
        return true;
    cs += 8;
    if (*cs == '"')
        cs++;
    return strncasecmp(cs, "utf-8", 5) == 0;
}

static enum MHD_Result payload_too_large(struct req_ctx *c)
{
    /* the client may still be sending: tell it the connection ends here */
    static const char *const h[] = {"Connection", "close", NULL};
    return http_send_error(c, 413, "payload_too_large", "the body exceeds 65536 bytes", "body",
                           "must be at most 65536 bytes", h);
}

/* The first call, headers only: decide everything that needs no body. */
static enum MHD_Result on_headers(struct req_ctx *c, const char *url, const char *method)
{
    bool bad_id;
    const char *cid = MHD_lookup_connection_value(c->conn, MHD_HEADER_KIND, "X-Correlation-Id");
    if (order_correlation_id_valid(cid))
        util_strlcpy(c->correlation_id, cid, sizeof(c->correlation_id));
    else
        util_uuid_v4(c->correlation_id);
    if (target_size(c->conn, url) > URI_LIMIT)
        return http_send_error(c, 414, "uri_too_long", "the request target exceeds 8192 bytes",
                               "url", "must be at most 8192 bytes", NULL);
    if (header_block_size(c->conn) > HEADERS_LIMIT)
        return http_send_error(c, 431, "headers_too_large",
                               "the request headers exceed 16384 bytes", "headers",
                               "must be at most 16384 bytes in all", NULL);
    c->route = route_of(url, c->id, &bad_id);
    if (c->route == R_METRICS)
        c->route = R_NONE; /* /metrics is served on METRICS_PORT only */
    if (c->route == R_NONE)
        return http_send_error(c, 404, "not_found", "no such route", NULL, NULL, NULL);
    if (!route_method_allowed(c->route, method)) {
        const char *h[] = {"Allow", route_allowed_methods(c->route), NULL};
        return http_send_error(c, 405, "method_not_allowed", "method not allowed here", NULL, NULL,
                               h);
    }
    if (bad_id)
        return http_send_error(c, 400, "invalid_id", "the order id is not a UUID", "id",
                               "must be a UUID such as 3f0e8a6c-1d2b-4c5d-8e9f-0a1b2c3d4e5f", NULL);
    enum MHD_Result g = guard_request(c);
    if (c->responded)
        return g;
    if (c->route == R_ORDERS && strcmp(method, "POST") == 0) {
        const char *ct = MHD_lookup_connection_value(c->conn, MHD_HEADER_KIND, "Content-Type");
        if (!json_content_type(ct))
            return http_send_error(c, 415, "unsupported_media_type",
                                   "the body must be application/json", "Content-Type",
                                   "must be application/json", NULL);
        const char *cl = MHD_lookup_connection_value(c->conn, MHD_HEADER_KIND, "Content-Length");
        if (cl && strtoull(cl, NULL, 10) > ORDER_MAX_BODY_BYTES)
            return payload_too_large(c);
    }
    return MHD_YES;
}

/* ---- libmicrohttpd callbacks ---------------------------------------------- */

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    (void)cls;
    (void)version;
    struct req_ctx *c = *con_cls;

    if (!c) {
        c = calloc(1, sizeof(*c));
        if (!c)
            return MHD_NO;
        *con_cls = c;
        c->conn = conn;
        c->method = method;
        c->start_us = util_mono_us();
        atomic_fetch_add(&in_flight, 1);
        buf_init(&c->body, ORDER_MAX_BODY_BYTES);
        return on_headers(c, url, method);
    }
    if (c->responded) {
        /* An early answer was queued; swallow whatever body follows. */
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (*upload_data_size) {
        if (!c->too_large && buf_append(&c->body, upload_data, *upload_data_size) != 0) {
            c->too_large = true;
            buf_free(&c->body);
        }
        if (c->too_large) {
            c->discarded += *upload_data_size;
            if (c->discarded > DISCARD_LIMIT)
                return MHD_NO; /* a client that keeps sending: drop the connection */
        }
        *upload_data_size = 0;
        return MHD_YES;
    }
    /* The whole request is in, or we were resumed by the committer or by shutdown. */
    if (c->abandoned) {
        unlink_suspended(c);
        return http_send_unavailable(c, "the server is shutting down; retry");
    }
    if (c->job) {
        unlink_suspended(c);
        return handle_create_done(c);
    }
    if (c->too_large)
        return payload_too_large(c);
    if (c->route == R_ORDERS && strcmp(method, "POST") == 0)
        return handle_create(c);
    return handle_request(c);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    (void)toe;
    struct req_ctx *c = *con_cls;
    if (!c)
        return;
    int64_t took_us = util_mono_us() - c->start_us, took = took_us / 1000;
    histogram_observe_ms(&api_metrics.request_latency, (double)took_us / 1000.0);
    emf_dist_observe(&api_metrics.http_latency_ms, (double)took_us / 1000.0);
    if (c->responded) {
        struct log_fields f = {.correlation_id = c->correlation_id,
                               .principal = c->caller.authenticated ? c->caller.principal : NULL};
        log_access(&f, c->method, route_name(c->route), c->status, (long long)took,
                   (long long)c->bytes_out);
    }
    unlink_suspended(c);
    if (c->job) {
        free(c->job->response_body);
        free(c->job);
    }
    buf_free(&c->body);
    free(c);
    *con_cls = NULL;
    atomic_fetch_sub(&in_flight, 1);
}

static void on_mhd_error(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char msg[512];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    size_t n = strlen(msg);
    while (n && msg[n - 1] == '\n')
        msg[--n] = '\0';
    log_warn(NULL, "http: %s", msg);
}

static void load_openapi(void)
{
    /* Installed beside the migrations, or in the source tree beside a build directory. */
    static const char *const rel[] = {"../share/order-service/openapi.yaml", "../api/openapi.yaml",
                                      NULL};
    char path[4096];
    const char *p =
        api_cfg.openapi_path ? api_cfg.openapi_path : util_data_path(NULL, rel, path, sizeof(path));
    if (p)
        http_openapi_doc = util_read_file(p, 1024 * 1024, &http_openapi_len);
}

/* The metrics listener: GET /metrics and /healthz, answered on the first call. */
static enum MHD_Result on_metrics_request(void *cls, struct MHD_Connection *conn, const char *url,
                                          const char *method, const char *version,
                                          const char *upload_data, size_t *upload_data_size,
                                          void **con_cls)
{
    (void)cls;
    (void)version;
    (void)upload_data;
    (void)con_cls;
    struct req_ctx c;
    memset(&c, 0, sizeof(c));
    c.conn = conn;
    c.method = method;
    util_strlcpy(c.correlation_id, "metrics", sizeof(c.correlation_id));
    *upload_data_size = 0;
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        return http_send_error(&c, 405, "method_not_allowed", "method not allowed here", NULL, NULL,
                               (const char *const[]){"Allow", "GET, HEAD", NULL});
    if (strcmp(url, "/metrics") == 0) {
        c.route = R_METRICS;
        return metrics_api_page(&c);
    }
    if (strcmp(url, "/healthz") == 0) {
        c.route = R_HEALTHZ;
        return http_send_json(&c, 200, json_pack("{s:s}", "status", "ok"), NULL);
    }
    return http_send_error(&c, 404, "not_found", "no such route", NULL, NULL, NULL);
}

static int metrics_start(const struct sockaddr_in *public_addr, char *err, size_t errlen)
{
    if (api_cfg.metrics_port == 0)
        return 0;
    struct sockaddr_in addr = *public_addr;
    addr.sin_port = htons((uint16_t)api_cfg.metrics_port);
    /* epoll, as the public daemon: under load a scrape arrives on a
     * descriptor past FD_SETSIZE, which select() cannot watch */
    metrics_h = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG, 0, NULL, NULL,
        on_metrics_request, NULL, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_error, NULL,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr, MHD_OPTION_CONNECTION_LIMIT, 64u,
        MHD_OPTION_CONNECTION_TIMEOUT, 10u, MHD_OPTION_END);
    if (!metrics_h) {
        snprintf(err, errlen, "METRICS_PORT: cannot listen on %s:%lld (in use, or not permitted)",
                 api_cfg.bind_address, (long long)api_cfg.metrics_port);
        return -1;
    }
    return 0;
}

int http_start(char *err, size_t errlen)
{
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof(addr));
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)api_cfg.port);
    if (inet_pton(AF_INET, api_cfg.bind_address, &addr.sin_addr) != 1) {
        snprintf(err, errlen, "BIND_ADDRESS must be an IPv4 address");
        return -1;
    }
    load_openapi();
    store_init();
    if (metrics_start(&addr, err, errlen) != 0)
        return -1;
    daemon_h = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ITC |
            MHD_USE_ERROR_LOG,
        0, NULL, NULL, on_request, NULL, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_error, NULL,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr, MHD_OPTION_THREAD_POOL_SIZE,
        (unsigned)api_cfg.threads, MHD_OPTION_CONNECTION_LIMIT, (unsigned)api_cfg.max_connections,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)api_cfg.client_timeout_s,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONNECTION_POOL, MHD_OPTION_LISTEN_BACKLOG_SIZE,
        1024u, MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL, MHD_OPTION_END);
    if (!daemon_h) {
        snprintf(err, errlen, "cannot listen on %s:%lld (in use, or not permitted)",
                 api_cfg.bind_address, (long long)api_cfg.port);
        return -1;
    }
    return 0;
}

void http_stop(int64_t grace_ms)
{
    if (!daemon_h)
        return;
    /* Stop accepting; requests already read (and those suspended in the
     * committer) run to completion within the grace period. */
    MHD_socket s = MHD_quiesce_daemon(daemon_h);
    int64_t deadline = util_mono_ms() + grace_ms;
    while (atomic_load(&in_flight) > 0 && util_mono_ms() < deadline) {
        struct timespec ts = {0, 10 * 1000000};
        nanosleep(&ts, NULL);
    }
    /* Past the grace: what the committer still holds is answered 503 now,
     * and given a moment to reach its client before the daemon stops. */
    size_t abandoned = abandon_suspended();
    if (abandoned) {
        log_kv(LOG_WARN, NULL, "shutdown: answering requests still waiting for the database",
               "requests", (long long)abandoned, NULL);
        deadline = util_mono_ms() + 2000;
        while (atomic_load(&in_flight) > 0 && util_mono_ms() < deadline) {
            struct timespec ts = {0, 10 * 1000000};
            nanosleep(&ts, NULL);
        }
    }
    MHD_stop_daemon(daemon_h);
    if (metrics_h)
        MHD_stop_daemon(metrics_h);
    metrics_h = NULL;
    if (s != MHD_INVALID_SOCKET)
        close(s);
    daemon_h = NULL;
    free(http_openapi_doc);
    http_openapi_doc = NULL;
}
