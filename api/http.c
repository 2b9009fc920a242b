/*
 * http.c - order-api's HTTP surface on libmicrohttpd: routing, input limits,
 * the error envelope, and handing new orders to the committer.
 *
 * A POST /orders is validated on the HTTP thread, then its connection is
 * suspended while the committer stores it with others in one transaction;
 * the committer resumes it with the outcome. No HTTP thread ever waits for a
 * commit, so a handful of threads serve thousands of concurrent clients.
 *
 * Limits: a Content-Length over 64 KiB or a wrong Content-Type is refused
 * before the body is read; a chunked body is cut off at 64 KiB; headers are
 * bounded by the per-connection memory limit; idle and slow clients time out;
 * the number of connections is capped.
 */
#include <jansson.h>
#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "api.h"
#include "log.h"
#include "store.h"
#include "trace.h"

#define DISCARD_LIMIT                                                                              \
    (1024 * 1024) /* bytes of an oversized chunked body we skip before closing                     \
                   */
#define LIST_DEFAULT_LIMIT 20
#define LIST_MAX_LIMIT 100

enum route {
    R_NONE = 0,
    R_HEALTHZ,
    R_READYZ,
    R_METRICS,
    R_OPENAPI,
    R_ORDERS,
    R_ORDER,
    R_ORDER_EVENTS,
    R_ORDER_CANCEL,
    R_COUNT
};
static const char *route_names[R_COUNT] = {"unknown",
                                           "/healthz",
                                           "/readyz",
                                           "/metrics",
                                           "/openapi.yaml",
                                           "/orders",
                                           "/orders/{id}",
                                           "/orders/{id}/events",
                                           "/orders/{id}/cancel"};

/* Counted statuses; anything else lands in the last slot. */
static const int counted_status[] = {200, 201, 400, 404, 405, 409, 413, 415, 422, 500, 503, 0};
#define N_STATUS (sizeof(counted_status) / sizeof(counted_status[0]))
static _Atomic uint64_t requests_total[R_COUNT][N_STATUS];

struct req_ctx {
    enum route route;
    char id[UUID_STR_LEN];
    char correlation_id[CORRELATION_ID_MAX + 1];
    struct buf body;
    size_t discarded;
    bool too_large;
    bool responded;
    int status;
    struct create_job *job;
    struct MHD_Connection *conn;
    int64_t start_ms;
};

static struct MHD_Daemon *daemon_h;
static _Atomic int in_flight;
static char *openapi_doc;
static size_t openapi_len;

/* ---- responses ----------------------------------------------------------- */

static void count(struct req_ctx *c, int status)
{
    size_t i = 0;
    while (counted_status[i] && counted_status[i] != status)
        i++;
    atomic_fetch_add_explicit(&requests_total[c->route][i], 1, memory_order_relaxed);
    c->status = status;
}

static enum MHD_Result send_text(struct MHD_Connection *conn, struct req_ctx *c, int status,
                                 const char *type, const char *body, size_t len,
                                 const char *const *headers)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    MHD_add_response_header(r, "Content-Type", type);
    MHD_add_response_header(r, "X-Correlation-Id", c->correlation_id);
    MHD_add_response_header(r, "Cache-Control", "no-store");
    for (size_t i = 0; headers && headers[i]; i += 2)
        MHD_add_response_header(r, headers[i], headers[i + 1]);
    enum MHD_Result ret = MHD_queue_response(conn, (unsigned)status, r);
    MHD_destroy_response(r);
    count(c, status);
    c->responded = true;
    return ret;
}

static enum MHD_Result send_json(struct MHD_Connection *conn, struct req_ctx *c, int status,
                                 json_t *body, const char *const *headers)
{
    char *s = json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(body);
    if (!s)
        s = strdup("{\"error\":{\"code\":\"internal\",\"message\":\"encoding failed\","
                   "\"details\":[]}}");
    enum MHD_Result ret = send_text(conn, c, status, "application/json", s, strlen(s), headers);
    free(s);
    return ret;
}

static enum MHD_Result send_error(struct MHD_Connection *conn, struct req_ctx *c, int status,
                                  const char *code, const char *message, const char *field,
                                  const char *field_message, const char *const *headers)
{
    struct field_error d;
    size_t n = 0;
    if (field) {
        util_strlcpy(d.field, field, sizeof(d.field));
        util_strlcpy(d.message, field_message ? field_message : message, sizeof(d.message));
        n = 1;
    }
    return send_json(conn, c, status, order_error_json(code, message, n ? &d : NULL, n), headers);
}

static enum MHD_Result send_unavailable(struct MHD_Connection *conn, struct req_ctx *c)
{
    static const char *const h[] = {"Retry-After", "2", NULL};
    return send_error(conn, c, 503, "unavailable", "the database is unavailable; retry later", NULL,
                      NULL, h);
}

static enum MHD_Result send_store_error(struct MHD_Connection *conn, struct req_ctx *c,
                                        enum store_rc rc)
{
    if (rc == STORE_UNAVAILABLE)
        return send_unavailable(conn, c);
    if (rc == STORE_NOT_FOUND)
        return send_error(conn, c, 404, "not_found", "no order has this id", "id",
                          "no order has this id", NULL);
    return send_error(conn, c, 500, "internal", "the request could not be completed", NULL, NULL,
                      NULL);
}

/* ---- routing ------------------------------------------------------------- */

static enum route route_of(const char *url, char id[UUID_STR_LEN], bool *bad_id)
{
    *bad_id = false;
    if (strcmp(url, "/healthz") == 0)
        return R_HEALTHZ;
    if (strcmp(url, "/readyz") == 0)
        return R_READYZ;
    if (strcmp(url, "/metrics") == 0)
        return R_METRICS;
    if (strcmp(url, "/openapi.yaml") == 0)
        return R_OPENAPI;
    if (strcmp(url, "/orders") == 0 || strcmp(url, "/orders/") == 0)
        return R_ORDERS;
    if (strncmp(url, "/orders/", 8) != 0)
        return R_NONE;
    const char *rest = url + 8;
    const char *slash = strchr(rest, '/');
    size_t idlen = slash ? (size_t)(slash - rest) : strlen(rest);
    enum route r;
    if (!slash)
        r = R_ORDER;
    else if (strcmp(slash, "/events") == 0)
        r = R_ORDER_EVENTS;
    else if (strcmp(slash, "/cancel") == 0)
        r = R_ORDER_CANCEL;
    else
        return R_NONE;
    char tmp[UUID_STR_LEN];
    if (idlen != 36) {
        *bad_id = true;
        return r;
    }
    memcpy(tmp, rest, 36);
    tmp[36] = '\0';
    if (!util_is_uuid(tmp)) {
        *bad_id = true;
        return r;
    }
    for (int i = 0; i < 36; i++) /* canonical lower case */
        id[i] = (char)((tmp[i] >= 'A' && tmp[i] <= 'F') ? tmp[i] + 32 : tmp[i]);
    id[36] = '\0';
    return r;
}

static const char *allowed_methods(enum route r)
{
    switch (r) {
    case R_ORDERS:
        return "GET, POST";
    case R_ORDER_CANCEL:
        return "POST";
    case R_NONE:
    case R_COUNT:
        return "";
    default:
        return "GET, HEAD";
    }
}

static bool method_allowed(enum route r, const char *method)
{
    bool get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
    bool post = strcmp(method, "POST") == 0;
    switch (r) {
    case R_ORDERS:
        return strcmp(method, "GET") == 0 || post;
    case R_ORDER_CANCEL:
        return post;
    default:
        return get;
    }
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

/* ---- handlers ------------------------------------------------------------ */

static void job_done(struct create_job *j, void *arg)
{
    (void)j;
    MHD_resume_connection((struct MHD_Connection *)arg);
}

static enum MHD_Result create_order(struct MHD_Connection *conn, struct req_ctx *c)
{
    struct order_errors errs;
    struct create_job *j = calloc(1, sizeof(*j));

    if (!j)
        return send_error(conn, c, 500, "internal", "out of memory", NULL, NULL, NULL);
    if (order_parse(c->body.data ? c->body.data : "", c->body.len, &j->req, &errs) != 0) {
        free(j);
        return send_json(conn, c, errs.status,
                         order_error_json(errs.code, errs.message, errs.details, errs.n), NULL);
    }
    const char *key = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Idempotency-Key");
    if (key) {
        size_t n = strlen(key);
        bool ok = n >= 1 && n <= 255;
        for (size_t i = 0; ok && i < n; i++)
            ok = key[i] >= 0x21 && key[i] <= 0x7e;
        if (!ok) {
            free(j);
            return send_error(conn, c, 400, "invalid_header", "Idempotency-Key is not valid",
                              "Idempotency-Key", "must be 1-255 printable ASCII characters", NULL);
        }
        memcpy(j->idempotency_key, key, n + 1);
        order_request_hash(&j->req);
    }
    util_uuid_v4(j->id);
    util_strlcpy(j->correlation_id, c->correlation_id, sizeof(j->correlation_id));
    trace_traceparent(MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "traceparent"),
                      j->traceparent);
    trace_xray_header(MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Amzn-Trace-Id"),
                      (long long)time(NULL), j->trace_header, sizeof(j->trace_header));
    j->done = job_done;
    j->done_arg = conn;
    c->job = j;
    /* Suspend before submitting: the committer may resume us at once. */
    MHD_suspend_connection(conn);
    committer_submit(j);
    return MHD_YES;
}

static enum MHD_Result finish_create(struct MHD_Connection *conn, struct req_ctx *c)
{
    struct create_job *j = c->job;
    char location[64];
    const char *h201[] = {"Location", location, NULL, NULL, NULL};
    static const char *const h503[] = {"Retry-After", "2", NULL};
    const char *const *h = NULL;

    if (j->status == 201) {
        snprintf(location, sizeof(location), "/orders/%s", j->id);
        if (j->replayed) {
            /* the stored response names the original order */
            json_t *o = json_loads(j->response_body, 0, NULL);
            const char *id = o ? json_string_value(json_object_get(o, "id")) : NULL;
            if (id)
                snprintf(location, sizeof(location), "/orders/%s", id);
            json_decref(o);
            h201[2] = "Idempotent-Replayed";
            h201[3] = "true";
        }
        h = h201;
    } else if (j->status == 503) {
        h = h503;
    }
    enum MHD_Result ret = send_text(conn, c, j->status, "application/json", j->response_body,
                                    j->response_body ? strlen(j->response_body) : 0, h);
    return ret;
}

static enum MHD_Result list_orders(struct MHD_Connection *conn, struct req_ctx *c)
{
    const char *status = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "status");
    const char *limit_s = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "limit");
    const char *cursor = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "cursor");
    int limit = LIST_DEFAULT_LIMIT;
    long long cursor_us = 0;
    char cursor_id[UUID_STR_LEN] = "";

    if (status && strcmp(status, "PENDING") != 0 && strcmp(status, "PROCESSED") != 0 &&
        strcmp(status, "CANCELED") != 0)
        return send_error(conn, c, 400, "invalid_parameter", "status is not valid", "status",
                          "must be PENDING, PROCESSED or CANCELED", NULL);
    if (limit_s) {
        char *end;
        long v = strtol(limit_s, &end, 10);
        if (*limit_s == '\0' || *end || v < 1 || v > LIST_MAX_LIMIT)
            return send_error(conn, c, 400, "invalid_parameter", "limit is not valid", "limit",
                              "must be an integer between 1 and 100", NULL);
        limit = (int)v;
    }
    if (cursor) {
        char *end;
        errno = 0;
        cursor_us = strtoll(cursor, &end, 10);
        /* a cursor is a creation time in microseconds: refuse what no row can have
         * (negative, or past year 2255) rather than let PostgreSQL overflow */
        if (end == cursor || errno || cursor_us < 0 || cursor_us > 9000000000000000LL ||
            *end != '_' || strlen(end + 1) != 36 || !util_is_uuid(end + 1))
            return send_error(conn, c, 400, "invalid_parameter", "cursor is not valid", "cursor",
                              "use the next_cursor value of a previous page", NULL);
        memcpy(cursor_id, end + 1, UUID_STR_LEN);
    }
    json_t *orders;
    char *next = NULL;
    enum store_rc rc =
        store_list_orders(status, limit, cursor_us, cursor ? cursor_id : NULL, &orders, &next);
    if (rc != STORE_OK)
        return send_store_error(conn, c, rc);
    json_t *body = json_pack("{s:o, s:s?}", "orders", orders, "next_cursor", next);
    free(next);
    return send_json(conn, c, 200, body, NULL);
}

static enum MHD_Result metrics(struct MHD_Connection *conn, struct req_ctx *c)
{
    struct buf b;
    char labels[128];
    buf_init(&b, 0);
    metrics_header(&b, "order_api_requests_total", "counter", "HTTP requests by route and status");
    for (int r = 0; r < R_COUNT; r++)
        for (size_t s = 0; s < N_STATUS; s++) {
            uint64_t v = atomic_load(&requests_total[r][s]);
            if (!v)
                continue;
            if (counted_status[s])
                snprintf(labels, sizeof(labels), "route=\"%s\",status=\"%d\"", route_names[r],
                         counted_status[s]);
            else
                snprintf(labels, sizeof(labels), "route=\"%s\",status=\"other\"", route_names[r]);
            metrics_sample(&b, "order_api_requests_total", labels, (double)v);
        }
    metrics_header(&b, "order_api_request_duration_seconds", "histogram", "HTTP request latency");
    metrics_histogram(&b, "order_api_request_duration_seconds", "", &api_metrics.request_latency);
    metrics_header(&b, "order_api_orders_created_total", "counter", "Orders stored");
    metrics_sample(&b, "order_api_orders_created_total", "",
                   (double)atomic_load(&api_metrics.orders_created));
    metrics_header(&b, "order_api_idempotent_replays_total", "counter",
                   "POST /orders answered from a stored Idempotency-Key");
    metrics_sample(&b, "order_api_idempotent_replays_total", "",
                   (double)atomic_load(&api_metrics.idempotent_replays));
    metrics_header(&b, "order_api_group_commits_total", "counter", "Group-commit transactions");
    metrics_sample(&b, "order_api_group_commits_total", "",
                   (double)atomic_load(&api_metrics.group_commits));
    metrics_header(&b, "order_api_commit_duration_seconds", "histogram",
                   "Duration of one group commit");
    metrics_histogram(&b, "order_api_commit_duration_seconds", "",
                      &api_metrics.commit_batch_latency);
    metrics_header(&b, "order_api_outbox_backlog", "gauge", "Outbox rows not yet sent to SQS");
    metrics_sample(&b, "order_api_outbox_backlog", "", (double)publisher_backlog());
    metrics_header(&b, "order_api_outbox_oldest_age_seconds", "gauge",
                   "Age of the oldest unsent outbox row");
    metrics_sample(&b, "order_api_outbox_oldest_age_seconds", "", publisher_oldest_age_s());
    struct publisher_stats ps;
    publisher_stats(&ps);
    metrics_header(&b, "order_api_sqs_messages_sent_total", "counter", "Messages sent to SQS");
    metrics_sample(&b, "order_api_sqs_messages_sent_total", "", (double)ps.sent);
    metrics_header(&b, "order_api_sqs_requests_total", "counter", "SQS requests sent");
    metrics_sample(&b, "order_api_sqs_requests_total", "", (double)ps.requests);
    metrics_header(&b, "order_api_sqs_errors_total", "counter", "Failed SQS calls or entries");
    metrics_sample(&b, "order_api_sqs_errors_total", "", (double)ps.errors);
    metrics_header(&b, "order_api_outbox_rejected_total", "counter",
                   "Outbox rows SQS refused for good (SenderFault), parked");
    metrics_sample(&b, "order_api_outbox_rejected_total", "", (double)ps.rejected);
    metrics_header(&b, "order_api_db_errors_total", "counter", "Failed database operations");
    metrics_sample(&b, "order_api_db_errors_total", "",
                   (double)atomic_load(&api_metrics.db_errors));
    enum MHD_Result ret =
        send_text(conn, c, 200, "text/plain; version=0.0.4", b.data ? b.data : "", b.len, NULL);
    buf_free(&b);
    return ret;
}

static enum MHD_Result dispatch(struct MHD_Connection *conn, struct req_ctx *c)
{
    json_t *o = NULL;
    enum store_rc rc;

    switch (c->route) {
    case R_HEALTHZ:
        return send_json(conn, c, 200, json_pack("{s:s}", "status", "ok"), NULL);
    case R_READYZ:
        if (store_ping() != STORE_OK)
            return send_json(
                conn, c, 503,
                json_pack("{s:s, s:s}", "status", "unavailable", "database", "unreachable"),
                (const char *const[]){"Retry-After", "2", NULL});
        return send_json(conn, c, 200, json_pack("{s:s, s:s}", "status", "ready", "database", "ok"),
                         NULL);
    case R_METRICS:
        return metrics(conn, c);
    case R_OPENAPI:
        if (!openapi_doc)
            return send_error(conn, c, 404, "not_found", "the OpenAPI document is not installed",
                              NULL, NULL, NULL);
        return send_text(conn, c, 200, "application/yaml", openapi_doc, openapi_len, NULL);
    case R_ORDERS: /* GET; POST goes through create_order */
        return list_orders(conn, c);
    case R_ORDER:
        rc = store_get_order(c->id, &o);
        return rc == STORE_OK ? send_json(conn, c, 200, o, NULL) : send_store_error(conn, c, rc);
    case R_ORDER_EVENTS:
        rc = store_order_events(c->id, &o);
        if (rc != STORE_OK)
            return send_store_error(conn, c, rc);
        return send_json(conn, c, 200, json_pack("{s:s, s:o}", "order_id", c->id, "events", o),
                         NULL);
    case R_ORDER_CANCEL:
        rc = store_cancel_order(c->id, c->correlation_id, &o);
        if (rc == STORE_OK)
            return send_json(conn, c, 200, o, NULL);
        if (rc == STORE_CONFLICT) {
            json_decref(o);
            return send_error(conn, c, 409, "conflict",
                              "the order is already PROCESSED and cannot be canceled", "status",
                              "is PROCESSED", NULL);
        }
        return send_store_error(conn, c, rc);
    default:
        return send_error(conn, c, 404, "not_found", "no such route", NULL, NULL, NULL);
    }
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
        /* First call: headers only. Decide everything that needs no body. */
        bool bad_id;
        c = calloc(1, sizeof(*c));
        if (!c)
            return MHD_NO;
        *con_cls = c;
        c->conn = conn;
        c->start_ms = util_mono_ms();
        atomic_fetch_add(&in_flight, 1);
        buf_init(&c->body, ORDER_MAX_BODY_BYTES);
        const char *cid = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Correlation-Id");
        if (order_correlation_id_valid(cid))
            util_strlcpy(c->correlation_id, cid, sizeof(c->correlation_id));
        else
            util_uuid_v4(c->correlation_id);
        c->route = route_of(url, c->id, &bad_id);
        if (c->route == R_NONE)
            return send_error(conn, c, 404, "not_found", "no such route", NULL, NULL, NULL);
        if (!method_allowed(c->route, method)) {
            const char *h[] = {"Allow", allowed_methods(c->route), NULL};
            return send_error(conn, c, 405, "method_not_allowed", "method not allowed here", NULL,
                              NULL, h);
        }
        if (bad_id)
            return send_error(conn, c, 400, "invalid_id", "the order id is not a UUID", "id",
                              "must be a UUID such as 3f0e8a6c-1d2b-4c5d-8e9f-0a1b2c3d4e5f", NULL);
        if (c->route == R_ORDERS && strcmp(method, "POST") == 0) {
            const char *ct = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Type");
            if (!json_content_type(ct))
                return send_error(conn, c, 415, "unsupported_media_type",
                                  "the body must be application/json", "Content-Type",
                                  "must be application/json", NULL);
            const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
            if (cl && strtoull(cl, NULL, 10) > ORDER_MAX_BODY_BYTES)
                return send_error(conn, c, 413, "payload_too_large", "the body exceeds 65536 bytes",
                                  "body", "must be at most 65536 bytes", NULL);
        }
        return MHD_YES;
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
    /* The whole request is in (or we were resumed by the committer). */
    if (c->job)
        return finish_create(conn, c);
    if (c->too_large)
        return send_error(conn, c, 413, "payload_too_large", "the body exceeds 65536 bytes", "body",
                          "must be at most 65536 bytes", NULL);
    if (c->route == R_ORDERS && strcmp(method, "POST") == 0)
        return create_order(conn, c);
    return dispatch(conn, c);
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
    histogram_observe_ms(&api_metrics.request_latency, (double)(util_mono_ms() - c->start_ms));
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
    if (util_data_path("OPENAPI_PATH", rel, path, sizeof(path)))
        openapi_doc = util_read_file(path, 1024 * 1024, &openapi_len);
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
    daemon_h = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ITC |
            MHD_USE_ERROR_LOG,
        0, NULL, NULL, on_request, NULL, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_error, NULL,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr, MHD_OPTION_THREAD_POOL_SIZE,
        (unsigned)api_cfg.threads, MHD_OPTION_CONNECTION_LIMIT, (unsigned)api_cfg.max_connections,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)api_cfg.client_timeout_s,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(32 * 1024), MHD_OPTION_LISTEN_BACKLOG_SIZE,
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
    MHD_stop_daemon(daemon_h);
    if (s != MHD_INVALID_SOCKET)
        close(s);
    daemon_h = NULL;
    free(openapi_doc);
    openapi_doc = NULL;
}
