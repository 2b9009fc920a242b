/*
 * sqs.c - Amazon SQS client: JSON 1.0 encoders/decoders, signed libcurl
 * requests, and synchronous calls with retries.
 *
 * Design: a request is signed afresh before every attempt (new X-Amz-Date,
 * possibly refreshed credentials), so one struct sqs_request can be retried by
 * a caller-driven event loop without ever sleeping here; only sqs_call sleeps,
 * between attempts, on the client's single keep-alive easy handle. Decoders
 * treat every response as hostile input (they are fuzzed): types are checked
 * before use, arrays are bounded, and every error path frees what it built.
 */
#include "sqs.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sigv4.h"
#include "util.h"

#ifndef ORDER_VERSION
#define ORDER_VERSION "dev"
#endif

/* A guard against a misbehaving endpoint, not a tight limit: ten 256 KiB
 * messages with JSON escaping and attributes must still fit. */
#define SQS_MAX_RESPONSE_BYTES (8u * 1024 * 1024)
/* SQS allows 10 message attributes; local emulators may send a few more. */
#define SQS_MAX_MSG_ATTRS 64
#define SQS_MAX_VISIBILITY 43200 /* 12 hours */
#define SQS_MAX_WAIT_SECONDS 20
#define SQS_JSON_CONTENT_TYPE "application/x-amz-json-1.0"

/* ---- errors -------------------------------------------------------------- */

/* vsnprintf may cut a multi-byte character in half; the logger (jansson)
 * would then drop the whole message, so trim the partial sequence. */
static void utf8_trim_partial(char *s)
{
    size_t n = strlen(s), i = n, cont = 0;
    while (i > 0 && ((unsigned char)s[i - 1] & 0xC0) == 0x80 && cont < 3) {
        i--;
        cont++;
    }
    if (i == 0)
        return;
    unsigned char lead = (unsigned char)s[i - 1];
    size_t need = lead >= 0xF0 ? 3 : lead >= 0xE0 ? 2 : lead >= 0xC0 ? 1 : 0;
    if (lead >= 0xC0 && need != cont)
        s[i - 1] = '\0';
}

static void err_set(struct sqs_error *err, enum sqs_error_kind kind, long status, const char *fmt,
                    ...) __attribute__((format(printf, 4, 5)));
static void err_set(struct sqs_error *err, enum sqs_error_kind kind, long status, const char *fmt,
                    ...)
{
    va_list ap;
    if (!err)
        return;
    err->kind = kind;
    err->http_status = status;
    err->type[0] = '\0';
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof(err->message), fmt, ap);
    va_end(ap);
    utf8_trim_partial(err->message);
}

static void err_clear(struct sqs_error *err)
{
    if (!err)
        return;
    err->kind = SQS_ERR_NONE;
    err->http_status = 0;
    err->type[0] = '\0';
    err->message[0] = '\0';
}

bool sqs_error_retryable(const struct sqs_error *e)
{
    if (!e)
        return false;
    return e->kind == SQS_ERR_TRANSPORT || e->kind == SQS_ERR_THROTTLED ||
           e->kind == SQS_ERR_SERVER;
}

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

static bool action_valid(enum sqs_action a)
{
    return (unsigned)a < sizeof(action_names) / sizeof(action_names[0]) && action_names[a];
}

const char *sqs_action_name(enum sqs_action a)
{
    return action_valid(a) ? action_names[a] : "Unknown";
}

/* ---- configuration ------------------------------------------------------- */

/* The SDKs treat a variable set to "" as unset. */
static const char *env_nonempty(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

static int env_long(const char *name, long def, long min, long max, long *out, char *err,
                    size_t errlen)
{
    const char *v = env_nonempty(name);
    char *end;
    long n;

    if (!v) {
        *out = def;
        return 0;
    }
    errno = 0;
    n = strtol(v, &end, 10);
    if (errno || end == v || *end || n < min || n > max) {
        snprintf(err, errlen, "%s must be an integer from %ld to %ld", name, min, max);
        return -1;
    }
    *out = n;
    return 0;
}

static bool region_valid(const char *r)
{
    if (!*r)
        return false;
    for (; *r; r++)
        if (!((*r >= 'a' && *r <= 'z') || (*r >= '0' && *r <= '9') || *r == '-'))
            return false;
    return true;
}

/* Accepts scheme://host[:port] with an optional trailing slash: requests are
 * always POST / and the signature covers exactly that path and this Host. */
static int endpoint_set(struct sqs_config *c, const char *var, const char *url, char *err,
                        size_t errlen)
{
    size_t skip;

    if (strncmp(url, "https://", 8) == 0)
        skip = 8;
    else if (strncmp(url, "http://", 7) == 0)
        skip = 7;
    else {
        snprintf(err, errlen, "%s must start with http:// or https://", var);
        return -1;
    }
    if (util_strlcpy(c->endpoint, url, sizeof(c->endpoint)) >= sizeof(c->endpoint)) {
        snprintf(err, errlen, "%s is too long", var);
        return -1;
    }
    size_t n = strlen(c->endpoint);
    while (n > skip && c->endpoint[n - 1] == '/')
        c->endpoint[--n] = '\0';
    const char *host = c->endpoint + skip;
    if (!*host || strpbrk(host, "/?#@ \t\r\n")) {
        snprintf(err, errlen, "%s must be scheme://host[:port] without a path", var);
        return -1;
    }
    return 0;
}

int sqs_config_from_env(struct sqs_config *c, char *err, size_t errlen)
{
    const char *region = env_nonempty("AWS_REGION");
    const char *endpoint;
    long v;

    memset(c, 0, sizeof(*c));
    if (!region)
        region = env_nonempty("AWS_DEFAULT_REGION");
    if (!region) {
        snprintf(err, errlen, "AWS_REGION (or AWS_DEFAULT_REGION) is not set");
        return -1;
    }
    if (!region_valid(region) ||
        util_strlcpy(c->region, region, sizeof(c->region)) >= sizeof(c->region)) {
        snprintf(err, errlen, "AWS_REGION is not a valid region name");
        return -1;
    }

    if ((endpoint = env_nonempty("AWS_ENDPOINT_URL_SQS"))) {
        if (endpoint_set(c, "AWS_ENDPOINT_URL_SQS", endpoint, err, errlen) != 0)
            return -1;
    } else if ((endpoint = env_nonempty("AWS_ENDPOINT_URL"))) {
        if (endpoint_set(c, "AWS_ENDPOINT_URL", endpoint, err, errlen) != 0)
            return -1;
    } else {
        /* China regions live under their own DNS suffix. */
        const char *suffix =
            strncmp(c->region, "cn-", 3) == 0 ? "amazonaws.com.cn" : "amazonaws.com";
        snprintf(c->endpoint, sizeof(c->endpoint), "https://sqs.%s.%s", c->region, suffix);
    }

    c->verify_tls = true;
    if (env_long("SQS_MAX_ATTEMPTS", 5, 1, 20, &v, err, errlen) != 0)
        return -1;
    c->max_attempts = (unsigned)v;
    if (env_long("SQS_CONNECT_TIMEOUT_MS", 2000, 1, 600000, &v, err, errlen) != 0)
        return -1;
    c->connect_timeout_ms = v;
    if (env_long("SQS_REQUEST_TIMEOUT_MS", 30000, 1, 3600000, &v, err, errlen) != 0)
        return -1;
    c->request_timeout_ms = v;
    c->backoff_base_ms = 50;
    c->backoff_cap_ms = 5000;
    return 0;
}

/* ---- encoding ------------------------------------------------------------ */

/* SQS accepts #x9 | #xA | #xD | #x20-#xD7FF | #xE000-#xFFFD | #x10000-#x10FFFF;
 * jansson already rejects invalid UTF-8 and surrogates, so only the control
 * characters and U+FFFE/U+FFFF remain to check. */
static bool body_valid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > SQS_MAX_BODY_BYTES)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch < 0x20 && ch != '\t' && ch != '\n' && ch != '\r')
            return false;
        if (ch == 0xEF && i + 2 < n && (unsigned char)s[i + 1] == 0xBF &&
            ((unsigned char)s[i + 2] == 0xBE || (unsigned char)s[i + 2] == 0xBF))
            return false;
    }
    return true;
}

static bool batch_id_valid(const char *id)
{
    size_t n = 0;
    if (!id)
        return false;
    for (; id[n]; n++) {
        char ch = id[n];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '-' || ch == '_'))
            return false;
    }
    return n >= 1 && n <= 80;
}

/* Checks the ids of a batch: well-formed and distinct (SQS rejects the whole
 * batch otherwise, so better to refuse it before the round trip). */
static bool batch_ids_valid(const char *const *ids, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!batch_id_valid(ids[i]))
            return false;
        for (size_t j = 0; j < i; j++)
            if (strcmp(ids[i], ids[j]) == 0)
                return false;
    }
    return true;
}

/* Steals v; returns -1 when v is NULL (invalid UTF-8 or out of memory). */
static int set_new(json_t *o, const char *key, json_t *v)
{
    if (!v)
        return -1;
    return json_object_set_new(o, key, v) == 0 ? 0 : -1;
}

static int set_str(json_t *o, const char *key, const char *s)
{
    if (!s || !*s)
        return -1;
    return set_new(o, key, json_string(s));
}

static int append_new(json_t *a, json_t *v)
{
    if (!v)
        return -1;
    return json_array_append_new(a, v) == 0 ? 0 : -1;
}

static json_t *string_attr(const char *value)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    if (set_new(o, "DataType", json_string("String")) != 0 ||
        set_str(o, "StringValue", value) != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* Fills o with the message fields shared by SendMessage and batch entries. */
static int put_message(json_t *o, const struct sqs_send_entry *e)
{
    if (!e->body || !body_valid(e->body) || set_str(o, "MessageBody", e->body) != 0)
        return -1;
    if (e->n_attrs > 0) {
        if (!e->attrs || e->n_attrs > 10)
            return -1;
        json_t *attrs = json_object();
        if (set_new(o, "MessageAttributes", attrs) != 0)
            return -1;
        for (size_t i = 0; i < e->n_attrs; i++) {
            const char *name = e->attrs[i].name;
            if (!name || !*name || strlen(name) > 256 || json_object_get(attrs, name))
                return -1;
            if (set_new(attrs, name, string_attr(e->attrs[i].value)) != 0)
                return -1;
        }
    }
    if (e->trace_header) {
        json_t *sys = json_object();
        if (set_new(o, "MessageSystemAttributes", sys) != 0 ||
            set_new(sys, "AWSTraceHeader", string_attr(e->trace_header)) != 0)
            return -1;
    }
    return 0;
}

static char *dump_free(json_t *o)
{
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    return s;
}

static json_t *request_with_queue(const char *queue_url)
{
    json_t *o = json_object();
    if (o && set_str(o, "QueueUrl", queue_url) != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

char *sqs_encode_send_message(const char *queue_url, const struct sqs_send_entry *e)
{
    json_t *o;
    if (!e || !(o = request_with_queue(queue_url)))
        return NULL;
    if (put_message(o, e) != 0) {
        json_decref(o);
        return NULL;
    }
    return dump_free(o);
}

/* The envelope every batch action shares: {"QueueUrl", "Entries": [{"Id"}...]}
 * with ids checked (1-80 of [A-Za-z0-9_-], unique). Returns the request and
 * the entry objects to fill, or NULL. */
static json_t *batch_request(const char *queue_url, const char *const *ids, size_t n,
                             json_t **entry)
{
    json_t *o, *entries;
    if (n == 0 || n > SQS_MAX_BATCH || !batch_ids_valid(ids, n) ||
        !(o = request_with_queue(queue_url)))
        return NULL;
    entries = json_array();
    if (set_new(o, "Entries", entries) != 0)
        goto fail;
    for (size_t i = 0; i < n; i++) {
        entry[i] = json_object();
        if (append_new(entries, entry[i]) != 0 || set_str(entry[i], "Id", ids[i]) != 0)
            goto fail;
    }
    return o;
fail:
    json_decref(o);
    return NULL;
}

char *sqs_encode_send_message_batch(const char *queue_url, const struct sqs_send_entry *e, size_t n)
{
    const char *ids[SQS_MAX_BATCH];
    json_t *entry[SQS_MAX_BATCH], *o;

    if (!e || n == 0 || n > SQS_MAX_BATCH)
        return NULL;
    for (size_t i = 0; i < n; i++)
        ids[i] = e[i].id;
    if (!(o = batch_request(queue_url, ids, n, entry)))
        return NULL;
    for (size_t i = 0; i < n; i++)
        if (put_message(entry[i], &e[i]) != 0) {
            json_decref(o);
            return NULL;
        }
    return dump_free(o);
}

static json_t *string_array(const char *const *names, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++) {
        if (!names[i] || !*names[i] || append_new(a, json_string(names[i])) != 0) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

char *sqs_encode_receive_message(const char *queue_url, int max_messages, int wait_seconds,
                                 int visibility_timeout)
{
    /* SQS renamed AttributeNames to MessageSystemAttributeNames; LocalStack and
     * ElasticMQ versions differ in which they read, so send both. */
    static const char *const sys[] = {"ApproximateReceiveCount", "SentTimestamp", "AWSTraceHeader"};
    static const char *const all[] = {"All"};
    json_t *o;

    if (max_messages < 1 || max_messages > SQS_MAX_BATCH || wait_seconds < 0 ||
        wait_seconds > SQS_MAX_WAIT_SECONDS || visibility_timeout > SQS_MAX_VISIBILITY)
        return NULL;
    if (!(o = request_with_queue(queue_url)))
        return NULL;
    if (set_new(o, "MaxNumberOfMessages", json_integer(max_messages)) != 0 ||
        set_new(o, "WaitTimeSeconds", json_integer(wait_seconds)) != 0 ||
        (visibility_timeout >= 0 &&
         set_new(o, "VisibilityTimeout", json_integer(visibility_timeout)) != 0) ||
        set_new(o, "MessageAttributeNames", string_array(all, 1)) != 0 ||
        set_new(o, "MessageSystemAttributeNames", string_array(sys, 3)) != 0 ||
        set_new(o, "AttributeNames", string_array(sys, 3)) != 0) {
        json_decref(o);
        return NULL;
    }
    return dump_free(o);
}

char *sqs_encode_delete_message(const char *queue_url, const char *receipt_handle)
{
    json_t *o = request_with_queue(queue_url);
    if (!o)
        return NULL;
    if (set_str(o, "ReceiptHandle", receipt_handle) != 0) {
        json_decref(o);
        return NULL;
    }
    return dump_free(o);
}

/* Delete and ChangeVisibility batches differ only in the timeout field. */
static char *encode_receipt_batch(const char *queue_url, const struct sqs_receipt_entry *e,
                                  size_t n, bool with_timeout)
{
    const char *ids[SQS_MAX_BATCH];
    json_t *entry[SQS_MAX_BATCH], *o;

    if (!e || n == 0 || n > SQS_MAX_BATCH)
        return NULL;
    for (size_t i = 0; i < n; i++)
        ids[i] = e[i].id;
    if (!(o = batch_request(queue_url, ids, n, entry)))
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (set_str(entry[i], "ReceiptHandle", e[i].receipt_handle) != 0)
            goto fail;
        if (with_timeout &&
            (e[i].visibility_timeout < 0 || e[i].visibility_timeout > SQS_MAX_VISIBILITY ||
             set_new(entry[i], "VisibilityTimeout", json_integer(e[i].visibility_timeout)) != 0))
            goto fail;
    }
    return dump_free(o);
fail:
    json_decref(o);
    return NULL;
}

char *sqs_encode_delete_message_batch(const char *queue_url, const struct sqs_receipt_entry *e,
                                      size_t n)
{
    return encode_receipt_batch(queue_url, e, n, false);
}

char *sqs_encode_change_visibility(const char *queue_url, const char *receipt_handle,
                                   int visibility_timeout)
{
    json_t *o;
    if (visibility_timeout < 0 || visibility_timeout > SQS_MAX_VISIBILITY)
        return NULL;
    if (!(o = request_with_queue(queue_url)))
        return NULL;
    if (set_str(o, "ReceiptHandle", receipt_handle) != 0 ||
        set_new(o, "VisibilityTimeout", json_integer(visibility_timeout)) != 0) {
        json_decref(o);
        return NULL;
    }
    return dump_free(o);
}

char *sqs_encode_change_visibility_batch(const char *queue_url, const struct sqs_receipt_entry *e,
                                         size_t n)
{
    return encode_receipt_batch(queue_url, e, n, true);
}

char *sqs_encode_get_queue_url(const char *queue_name)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    if (!queue_name || strlen(queue_name) > 80 || set_str(o, "QueueName", queue_name) != 0) {
        json_decref(o);
        return NULL;
    }
    return dump_free(o);
}

char *sqs_encode_get_queue_attributes(const char *queue_url, const char *const *names, size_t n)
{
    json_t *o;
    if (!names || n == 0 || !(o = request_with_queue(queue_url)))
        return NULL;
    if (set_new(o, "AttributeNames", string_array(names, n)) != 0) {
        json_decref(o);
        return NULL;
    }
    return dump_free(o);
}

/* ---- decoding ------------------------------------------------------------ */

static json_t *parse_object(const char *json, size_t len, const char *what, struct sqs_error *err)
{
    json_error_t jerr;
    json_t *root = json_loadb(json ? json : "", json ? len : 0, 0, &jerr);

    if (!root) {
        err_set(err, SQS_ERR_PARSE, 0, "%s response is not valid JSON (line %d, column %d): %s",
                what, jerr.line, jerr.column, jerr.text);
        return NULL;
    }
    if (!json_is_object(root)) {
        err_set(err, SQS_ERR_PARSE, 0, "%s response is not a JSON object", what);
        json_decref(root);
        return NULL;
    }
    return root;
}

/* An optional array member: absent or null is an empty array. Returns -1 for
 * any other type or more than max elements. */
static int get_array(json_t *o, const char *key, size_t max, json_t **out, const char *what,
                     struct sqs_error *err)
{
    json_t *a = json_object_get(o, key);
    *out = NULL;
    if (!a || json_is_null(a))
        return 0;
    if (!json_is_array(a)) {
        err_set(err, SQS_ERR_PARSE, 0, "%s response: %s is not an array", what, key);
        return -1;
    }
    if (json_array_size(a) > max) {
        err_set(err, SQS_ERR_PARSE, 0, "%s response: %s has %zu entries, at most %zu expected",
                what, key, json_array_size(a), max);
        return -1;
    }
    *out = a;
    return 0;
}

/* Copies a required string member; -1 with err when missing, not a string or
 * out of memory. */
static int dup_required(json_t *o, const char *key, char **out, const char *what, size_t index,
                        struct sqs_error *err)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_string(v)) {
        err_set(err, SQS_ERR_PARSE, 0, "%s response: entry %zu: %s is %s", what, index, key,
                v ? "not a string" : "missing");
        return -1;
    }
    if (!(*out = strdup(json_string_value(v)))) {
        err_set(err, SQS_ERR_PARSE, 0, "%s response: out of memory", what);
        return -1;
    }
    return 0;
}

/* An optional string member: absent or null leaves *out NULL. */
static int dup_optional(json_t *o, const char *key, char **out, const char *what, size_t index,
                        struct sqs_error *err)
{
    json_t *v = json_object_get(o, key);
    *out = NULL;
    if (!v || json_is_null(v))
        return 0;
    return dup_required(o, key, out, what, index, err);
}

/* System attribute numbers arrive as strings ("3"); emulators sometimes send
 * JSON numbers, which are accepted too. */
static int attr_int64(json_t *attrs, const char *key, int64_t max, int64_t *out, size_t index,
                      struct sqs_error *err)
{
    json_t *v = json_object_get(attrs, key);
    *out = 0;
    if (!v || json_is_null(v))
        return 0;
    if (json_is_integer(v)) {
        json_int_t n = json_integer_value(v);
        if (n < 0 || n > max)
            goto bad;
        *out = (int64_t)n;
        return 0;
    }
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        char *end;
        if (*s < '0' || *s > '9')
            goto bad;
        errno = 0;
        long long n = strtoll(s, &end, 10);
        if (errno || *end || n > max)
            goto bad;
        *out = (int64_t)n;
        return 0;
    }
bad:
    err_set(err, SQS_ERR_PARSE, 0,
            "ReceiveMessage response: message %zu: Attributes.%s is not a non-negative integer",
            index, key);
    return -1;
}

static int decode_message_attrs(json_t *ma, struct sqs_message *m, size_t index,
                                struct sqs_error *err)
{
    const char *name;
    json_t *v;

    if (!ma || json_is_null(ma))
        return 0;
    if (!json_is_object(ma)) {
        err_set(err, SQS_ERR_PARSE, 0,
                "ReceiveMessage response: message %zu: MessageAttributes is not an object", index);
        return -1;
    }
    if (json_object_size(ma) > SQS_MAX_MSG_ATTRS) {
        err_set(err, SQS_ERR_PARSE, 0,
                "ReceiveMessage response: message %zu: more than %d message attributes", index,
                SQS_MAX_MSG_ATTRS);
        return -1;
    }
    if (json_object_size(ma) == 0)
        return 0;
    m->attrs = calloc(json_object_size(ma), sizeof(*m->attrs));
    if (!m->attrs) {
        err_set(err, SQS_ERR_PARSE, 0, "ReceiveMessage response: out of memory");
        return -1;
    }
    json_object_foreach(ma, name, v)
    {
        json_t *dt = json_object_get(v, "DataType");
        json_t *sv = json_object_get(v, "StringValue");
        if (!json_is_object(v) || !json_is_string(dt)) {
            err_set(err, SQS_ERR_PARSE, 0,
                    "ReceiveMessage response: message %zu: attribute %s has no DataType", index,
                    name);
            return -1;
        }
        /* Binary attributes have no text value; the order service never sends them. */
        if (strncmp(json_string_value(dt), "Binary", 6) == 0)
            continue;
        if (!json_is_string(sv)) {
            err_set(err, SQS_ERR_PARSE, 0,
                    "ReceiveMessage response: message %zu: attribute %s: StringValue is not "
                    "a string",
                    index, name);
            return -1;
        }
        size_t k = m->n_attrs;
        m->attrs[k].name = strdup(name);
        m->attrs[k].value = strdup(json_string_value(sv));
        m->n_attrs++; /* counted before the check so the free path sees both */
        if (!m->attrs[k].name || !m->attrs[k].value) {
            err_set(err, SQS_ERR_PARSE, 0, "ReceiveMessage response: out of memory");
            return -1;
        }
    }
    return 0;
}

static int decode_message(json_t *jm, struct sqs_message *m, size_t i, struct sqs_error *err)
{
    static const char *what = "ReceiveMessage";
    json_t *attrs;
    int64_t v;

    if (!json_is_object(jm)) {
        err_set(err, SQS_ERR_PARSE, 0, "ReceiveMessage response: message %zu is not an object", i);
        return -1;
    }
    if (dup_required(jm, "MessageId", &m->message_id, what, i, err) != 0 ||
        dup_required(jm, "ReceiptHandle", &m->receipt_handle, what, i, err) != 0 ||
        dup_required(jm, "Body", &m->body, what, i, err) != 0)
        return -1;

    attrs = json_object_get(jm, "Attributes");
    if (attrs && !json_is_null(attrs)) {
        if (!json_is_object(attrs)) {
            err_set(err, SQS_ERR_PARSE, 0,
                    "ReceiveMessage response: message %zu: Attributes is not an object", i);
            return -1;
        }
        if (attr_int64(attrs, "ApproximateReceiveCount", INT32_MAX, &v, i, err) != 0)
            return -1;
        m->receive_count = (int)v;
        if (attr_int64(attrs, "SentTimestamp", INT64_MAX, &v, i, err) != 0)
            return -1;
        m->sent_timestamp_ms = v;
        if (dup_optional(attrs, "AWSTraceHeader", &m->trace_header, what, i, err) != 0)
            return -1;
    }
    return decode_message_attrs(json_object_get(jm, "MessageAttributes"), m, i, err);
}

int sqs_decode_receive_message(const char *json, size_t len, struct sqs_message **msgs, size_t *n,
                               struct sqs_error *err)
{
    json_t *root, *arr;
    struct sqs_message *out = NULL;
    size_t count = 0;

    *msgs = NULL;
    *n = 0;
    err_clear(err);
    if (!(root = parse_object(json, len, "ReceiveMessage", err)))
        return -1;
    if (get_array(root, "Messages", SQS_MAX_BATCH, &arr, "ReceiveMessage", err) != 0)
        goto fail;
    if (arr && json_array_size(arr) > 0) {
        out = calloc(json_array_size(arr), sizeof(*out));
        if (!out) {
            err_set(err, SQS_ERR_PARSE, 0, "ReceiveMessage response: out of memory");
            goto fail;
        }
        for (size_t i = 0; i < json_array_size(arr); i++) {
            count++; /* a half-decoded message is freed with the rest */
            if (decode_message(json_array_get(arr, i), &out[i], i, err) != 0)
                goto fail;
        }
    }
    json_decref(root);
    *msgs = out;
    *n = count;
    return 0;
fail:
    sqs_messages_free(out, count);
    json_decref(root);
    return -1;
}

void sqs_messages_free(struct sqs_message *msgs, size_t n)
{
    if (!msgs)
        return;
    for (size_t i = 0; i < n; i++) {
        struct sqs_message *m = &msgs[i];
        free(m->message_id);
        free(m->receipt_handle);
        free(m->body);
        free(m->trace_header);
        for (size_t k = 0; k < m->n_attrs; k++) {
            free(m->attrs[k].name);
            free(m->attrs[k].value);
        }
        free(m->attrs);
    }
    free(msgs);
}

const char *sqs_message_attr(const struct sqs_message *m, const char *name)
{
    if (!m || !name)
        return NULL;
    for (size_t i = 0; i < m->n_attrs; i++)
        if (strcmp(m->attrs[i].name, name) == 0)
            return m->attrs[i].value;
    return NULL;
}

int sqs_decode_send_message(const char *json, size_t len, char *message_id, size_t idlen,
                            struct sqs_error *err)
{
    json_t *root, *id;
    int rc = -1;

    if (message_id && idlen)
        message_id[0] = '\0';
    err_clear(err);
    if (!(root = parse_object(json, len, "SendMessage", err)))
        return -1;
    id = json_object_get(root, "MessageId");
    if (!json_is_string(id) || json_string_length(id) == 0)
        err_set(err, SQS_ERR_PARSE, 0, "SendMessage response: MessageId is %s",
                !id                  ? "missing"
                : json_is_string(id) ? "empty"
                                     : "not a string");
    else if (!message_id || json_string_length(id) >= idlen)
        err_set(err, SQS_ERR_PARSE, 0, "SendMessage response: MessageId is longer than %zu bytes",
                idlen ? idlen - 1 : 0);
    else {
        memcpy(message_id, json_string_value(id), json_string_length(id) + 1);
        rc = 0;
    }
    json_decref(root);
    return rc;
}

static int decode_failure(json_t *jf, struct sqs_batch_failure *f, size_t i, struct sqs_error *err)
{
    static const char *what = "batch";
    json_t *sf;

    if (!json_is_object(jf)) {
        err_set(err, SQS_ERR_PARSE, 0, "batch response: Failed entry %zu is not an object", i);
        return -1;
    }
    if (dup_required(jf, "Id", &f->id, what, i, err) != 0 ||
        dup_required(jf, "Code", &f->code, what, i, err) != 0 ||
        dup_optional(jf, "Message", &f->message, what, i, err) != 0)
        return -1;
    /* Callers print the message; an absent one is an empty string, not NULL. */
    if (!f->message && !(f->message = strdup(""))) {
        err_set(err, SQS_ERR_PARSE, 0, "batch response: out of memory");
        return -1;
    }
    sf = json_object_get(jf, "SenderFault");
    if (json_is_boolean(sf))
        f->sender_fault = json_is_true(sf);
    else if (json_is_string(sf) && (strcmp(json_string_value(sf), "true") == 0 ||
                                    strcmp(json_string_value(sf), "false") == 0))
        f->sender_fault = strcmp(json_string_value(sf), "true") == 0;
    else if (sf && !json_is_null(sf)) {
        err_set(err, SQS_ERR_PARSE, 0,
                "batch response: Failed entry %zu: SenderFault is not a "
                "boolean",
                i);
        return -1;
    }
    return 0;
}

int sqs_decode_batch_result(const char *json, size_t len, struct sqs_batch_result *out,
                            struct sqs_error *err)
{
    json_t *root, *ok, *failed;
    size_t n_ok, n_failed;

    memset(out, 0, sizeof(*out));
    err_clear(err);
    if (!(root = parse_object(json, len, "batch", err)))
        return -1;
    if (get_array(root, "Successful", SQS_MAX_BATCH, &ok, "batch", err) != 0 ||
        get_array(root, "Failed", SQS_MAX_BATCH, &failed, "batch", err) != 0)
        goto fail;
    n_ok = ok ? json_array_size(ok) : 0;
    n_failed = failed ? json_array_size(failed) : 0;
    if (n_ok + n_failed > SQS_MAX_BATCH) {
        err_set(err, SQS_ERR_PARSE, 0, "batch response: %zu results for at most %d entries",
                n_ok + n_failed, SQS_MAX_BATCH);
        goto fail;
    }
    if (n_ok) {
        out->ok_ids = calloc(n_ok, sizeof(char *));
        out->ok_message_ids = calloc(n_ok, sizeof(char *));
        if (!out->ok_ids || !out->ok_message_ids) {
            err_set(err, SQS_ERR_PARSE, 0, "batch response: out of memory");
            goto fail;
        }
        for (size_t i = 0; i < n_ok; i++) {
            json_t *e = json_array_get(ok, i);
            out->n_ok++;
            if (!json_is_object(e)) {
                err_set(err, SQS_ERR_PARSE, 0,
                        "batch response: Successful entry %zu is not an object", i);
                goto fail;
            }
            if (dup_required(e, "Id", &out->ok_ids[i], "batch", i, err) != 0 ||
                dup_optional(e, "MessageId", &out->ok_message_ids[i], "batch", i, err) != 0)
                goto fail;
        }
    }
    if (n_failed) {
        out->failed = calloc(n_failed, sizeof(*out->failed));
        if (!out->failed) {
            err_set(err, SQS_ERR_PARSE, 0, "batch response: out of memory");
            goto fail;
        }
        for (size_t i = 0; i < n_failed; i++) {
            out->n_failed++;
            if (decode_failure(json_array_get(failed, i), &out->failed[i], i, err) != 0)
                goto fail;
        }
    }
    json_decref(root);
    return 0;
fail:
    sqs_batch_result_free(out);
    json_decref(root);
    return -1;
}

void sqs_batch_result_free(struct sqs_batch_result *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n_ok; i++) {
        if (r->ok_ids)
            free(r->ok_ids[i]);
        if (r->ok_message_ids)
            free(r->ok_message_ids[i]);
    }
    free(r->ok_ids);
    free(r->ok_message_ids);
    for (size_t i = 0; i < r->n_failed; i++) {
        free(r->failed[i].id);
        free(r->failed[i].code);
        free(r->failed[i].message);
    }
    free(r->failed);
    memset(r, 0, sizeof(*r));
}

int sqs_decode_get_queue_url(const char *json, size_t len, char **queue_url, struct sqs_error *err)
{
    json_t *root, *u;
    int rc = -1;

    *queue_url = NULL;
    err_clear(err);
    if (!(root = parse_object(json, len, "GetQueueUrl", err)))
        return -1;
    u = json_object_get(root, "QueueUrl");
    if (!json_is_string(u) || json_string_length(u) == 0)
        err_set(err, SQS_ERR_PARSE, 0, "GetQueueUrl response: QueueUrl is %s",
                !u                  ? "missing"
                : json_is_string(u) ? "empty"
                                    : "not a string");
    else if (!(*queue_url = strdup(json_string_value(u))))
        err_set(err, SQS_ERR_PARSE, 0, "GetQueueUrl response: out of memory");
    else
        rc = 0;
    json_decref(root);
    return rc;
}

char *sqs_decode_queue_attribute(const char *json, size_t len, const char *name)
{
    json_t *root, *v;
    char *out = NULL;

    if (!name || !(root = parse_object(json, len, "GetQueueAttributes", NULL)))
        return NULL;
    v = json_object_get(json_object_get(root, "Attributes"), name);
    if (json_is_string(v))
        out = strdup(json_string_value(v));
    json_decref(root);
    return out;
}

static bool type_is_throttling(const char *type)
{
    static const char *const throttling[] = {
        "ThrottlingException",      "RequestThrottled",          "Throttling",
        "TooManyRequestsException", "RequestThrottledException", "KmsThrottled",
        "ThrottledException",       "RequestLimitExceeded",      "SlowDown",
    };
    for (size_t i = 0; i < sizeof(throttling) / sizeof(throttling[0]); i++)
        if (strcmp(type, throttling[i]) == 0)
            return true;
    return false;
}

/* "com.amazonaws.sqs#QueueDoesNotExist" -> "QueueDoesNotExist"; some
 * endpoints also append ":http://internal..." after the name. */
static void error_type_copy(char *dst, size_t dstlen, const char *raw)
{
    const char *hash = strrchr(raw, '#');
    const char *start = hash ? hash + 1 : raw;
    size_t n = strcspn(start, ":");
    if (n >= dstlen)
        n = dstlen - 1;
    memcpy(dst, start, n);
    dst[n] = '\0';
    utf8_trim_partial(dst);
}

/* A proxy's HTML page or garbage: keep a short printable excerpt for the log. */
static void excerpt(char *dst, size_t dstlen, const char *body, size_t len)
{
    size_t j = 0;
    for (size_t i = 0; i < len && j + 1 < dstlen; i++) {
        unsigned char ch = (unsigned char)body[i];
        dst[j++] = ch >= 0x20 && ch < 0x7f ? (char)ch : ' ';
    }
    dst[j] = '\0';
}

void sqs_decode_error(long http_status, const char *body, size_t len, struct sqs_error *err)
{
    json_t *root = NULL;
    const char *type = NULL, *msg = NULL;
    enum sqs_error_kind kind;
    char snippet[121];

    if (!err)
        return;
    if (body && len > 0)
        root = json_loadb(body, len, 0, NULL);
    if (json_is_object(root)) {
        static const char *const type_keys[] = {"__type", "code", "Code"};
        static const char *const msg_keys[] = {"message", "Message", "errorMessage"};
        for (size_t i = 0; i < 3 && !type; i++)
            type = json_string_value(json_object_get(root, type_keys[i]));
        for (size_t i = 0; i < 3 && !msg; i++)
            msg = json_string_value(json_object_get(root, msg_keys[i]));
    }

    char typebuf[sizeof(err->type)] = "";
    if (type)
        error_type_copy(typebuf, sizeof(typebuf), type);
    if ((typebuf[0] && type_is_throttling(typebuf)) || http_status == 429)
        kind = SQS_ERR_THROTTLED;
    else if (http_status >= 500 && http_status <= 599)
        kind = SQS_ERR_SERVER;
    else
        kind = SQS_ERR_CLIENT;

    if (typebuf[0])
        err_set(err, kind, http_status, "HTTP %ld %s: %s", http_status, typebuf,
                msg ? msg : "(no message)");
    else if (msg)
        err_set(err, kind, http_status, "HTTP %ld: %s", http_status, msg);
    else if (!body || len == 0)
        err_set(err, kind, http_status, "HTTP %ld with an empty body", http_status);
    else {
        excerpt(snippet, sizeof(snippet), body, len);
        err_set(err, kind, http_status, "HTTP %ld: %s", http_status, snippet);
    }
    memcpy(err->type, typebuf, sizeof(err->type));
    json_decref(root);
}

/* ---- transport ----------------------------------------------------------- */

struct sqs_request {
    struct sqs_client *client;
    enum sqs_action action;
    const char *body; /* owned_body, or borrowed for the duration of sqs_call */
    size_t body_len;
    char *owned_body;
    void *userdata;
    CURL *easy;
    bool owns_easy;
    struct curl_slist *headers; /* signed per attempt; holds the session token */
    struct buf resp;
    bool resp_too_large;
    unsigned attempts;
    char errbuf[CURL_ERROR_SIZE];
};

struct sqs_client {
    struct sqs_config cfg;
    struct creds_provider *creds;
    char url[sizeof(((struct sqs_config *)0)->endpoint) + 2];
    const char *host;        /* points into cfg.endpoint */
    struct sqs_request sync; /* sqs_call's request, on the keep-alive handle */
};

static size_t on_write(char *data, size_t size, size_t nmemb, void *userdata)
{
    struct sqs_request *r = userdata;
    size_t n = size * nmemb;
    if (buf_append(&r->resp, data, n) != 0) {
        r->resp_too_large = r->resp.len + n > SQS_MAX_RESPONSE_BYTES;
        return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
    }
    return n;
}

/* The options that never change for a handle; set once at creation. */
static int easy_setup(CURL *easy, const struct sqs_client *c)
{
    CURLcode rc = CURLE_OK;
#define SET(opt, val)                                                                              \
    if (rc == CURLE_OK)                                                                            \
    rc = curl_easy_setopt(easy, opt, val)
    SET(CURLOPT_URL, c->url);
    SET(CURLOPT_NOSIGNAL, 1L); /* timeouts without SIGALRM: the worker is multi-threaded */
    SET(CURLOPT_TCP_KEEPALIVE, 1L);
    SET(CURLOPT_TCP_KEEPIDLE, 30L);
    SET(CURLOPT_TCP_KEEPINTVL, 15L);
    SET(CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    SET(CURLOPT_POST, 1L);
    SET(CURLOPT_FOLLOWLOCATION, 0L);
    SET(CURLOPT_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_USERAGENT, "order-service/" ORDER_VERSION);
    /* There is deliberately no switch to turn verification off. */
    SET(CURLOPT_SSL_VERIFYPEER, 1L);
    SET(CURLOPT_SSL_VERIFYHOST, 2L);
    SET(CURLOPT_CONNECTTIMEOUT_MS, c->cfg.connect_timeout_ms);
    SET(CURLOPT_WRITEFUNCTION, on_write);
#undef SET
    return rc == CURLE_OK ? 0 : -1;
}

/* The list carries the session token; do not leave it in freed memory. */
static void slist_free_wiped(struct curl_slist *list)
{
    for (struct curl_slist *h = list; h; h = h->next)
        explicit_bzero(h->data, strlen(h->data));
    curl_slist_free_all(list);
}

static void headers_free(struct sqs_request *r)
{
    slist_free_wiped(r->headers);
    r->headers = NULL;
}

static int header_add(struct curl_slist **list, const char *name, const char *value)
{
    char *line;
    struct curl_slist *l;
    /* "Name:" with no value tells curl not to send a header it would add itself. */
    if ((value ? asprintf(&line, "%s: %s", name, value) : asprintf(&line, "%s:", name)) < 0)
        return -1;
    l = curl_slist_append(*list, line);
    explicit_bzero(line, strlen(line));
    free(line);
    if (!l)
        return -1;
    *list = l;
    return 0;
}

static void request_init(struct sqs_request *r, struct sqs_client *c, CURL *easy, bool owns_easy)
{
    memset(r, 0, sizeof(*r));
    r->client = c;
    r->easy = easy;
    r->owns_easy = owns_easy;
    buf_init(&r->resp, SQS_MAX_RESPONSE_BYTES);
}

static void request_release(struct sqs_request *r)
{
    headers_free(r);
    buf_free(&r->resp);
    free(r->owned_body);
    r->owned_body = NULL;
    r->body = NULL;
    if (r->easy && r->owns_easy)
        curl_easy_cleanup(r->easy);
    r->easy = NULL;
}

static int request_sign(struct sqs_request *r, struct sqs_error *err)
{
    struct sqs_client *c = r->client;
    struct aws_credentials creds;
    struct sigv4_result sig;
    char target[64], cerr[256];
    struct curl_slist *list = NULL;
    int rc = -1;

    snprintf(target, sizeof(target), "AmazonSQS.%s", sqs_action_name(r->action));
    const struct sigv4_header hdrs[] = {
        {"Host", c->host},
        {"Content-Type", SQS_JSON_CONTENT_TYPE},
        {"X-Amz-Target", target},
    };
    const struct sigv4_request req = {
        .method = "POST",
        .path = "/",
        .query = NULL,
        .headers = hdrs,
        .n_headers = sizeof(hdrs) / sizeof(hdrs[0]),
        .body = r->body,
        .body_len = r->body_len,
    };

    cerr[0] = '\0';
    memset(&creds, 0, sizeof(creds));
    if (creds_provider_get(c->creds, &creds, cerr, sizeof(cerr)) != 0) {
        err_set(err, SQS_ERR_CREDENTIALS, 0, "%s: no credentials: %s", sqs_action_name(r->action),
                cerr);
        creds_wipe(&creds);
        return -1;
    }
    const struct sigv4_signing s = {
        .region = c->cfg.region,
        .service = "sqs",
        .creds = &creds,
        .now = time(NULL),
        .normalize_path = true,
        .sign_body = false,
    };
    memset(&sig, 0, sizeof(sig));
    cerr[0] = '\0';
    if (sigv4_sign(&req, &s, &sig, cerr, sizeof(cerr)) != 0) {
        err_set(err, SQS_ERR_CLIENT, 0, "%s: signing failed: %s", sqs_action_name(r->action), cerr);
        goto out;
    }
    /* curl would send its own Host from the URL; ours must be the signed one. */
    if (header_add(&list, "Host", c->host) != 0 ||
        header_add(&list, "Content-Type", SQS_JSON_CONTENT_TYPE) != 0 ||
        header_add(&list, "X-Amz-Target", target) != 0 ||
        header_add(&list, "X-Amz-Date", sig.amz_date) != 0 ||
        (creds.session_token[0] &&
         header_add(&list, "X-Amz-Security-Token", creds.session_token) != 0) ||
        header_add(&list, "Authorization", sig.authorization) != 0 ||
        header_add(&list, "Expect", NULL) != 0) {
        err_set(err, SQS_ERR_CLIENT, 0, "%s: out of memory building headers",
                sqs_action_name(r->action));
        goto out;
    }
    headers_free(r);
    r->headers = list;
    list = NULL;
    rc = 0;
out:
    slist_free_wiped(list);
    sigv4_result_free(&sig);
    creds_wipe(&creds);
    return rc;
}

int sqs_request_prepare(struct sqs_request *r, long extra_timeout_ms, struct sqs_error *err)
{
    const struct sqs_config *cfg = &r->client->cfg;
    CURLcode rc = CURLE_OK;

    err_clear(err);
    buf_reset(&r->resp);
    r->resp_too_large = false;
    r->errbuf[0] = '\0';
    if (request_sign(r, err) != 0)
        return -1;
    if (extra_timeout_ms < 0)
        extra_timeout_ms = 0;
#define SET(opt, val)                                                                              \
    if (rc == CURLE_OK)                                                                            \
    rc = curl_easy_setopt(r->easy, opt, val)
    SET(CURLOPT_HTTPHEADER, r->headers);
    SET(CURLOPT_POSTFIELDS, r->body);
    SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body_len);
    SET(CURLOPT_WRITEDATA, r);
    SET(CURLOPT_ERRORBUFFER, r->errbuf);
    SET(CURLOPT_PRIVATE, r);
    SET(CURLOPT_TIMEOUT_MS, cfg->request_timeout_ms + extra_timeout_ms);
#undef SET
    if (rc != CURLE_OK) {
        err_set(err, SQS_ERR_CLIENT, 0, "%s: curl setup failed: %s", sqs_action_name(r->action),
                curl_easy_strerror(rc));
        return -1;
    }
    return 0;
}

/* Puts "Action: " in front of the message, dropping what no longer fits. */
static void message_prefix(struct sqs_error *err, const char *action)
{
    size_t plen = strlen(action) + 2, mlen = strlen(err->message), cap = sizeof(err->message);
    if (plen >= cap)
        return;
    if (mlen > cap - 1 - plen)
        mlen = cap - 1 - plen;
    memmove(err->message + plen, err->message, mlen);
    memcpy(err->message, action, plen - 2);
    memcpy(err->message + plen - 2, ": ", 2);
    err->message[plen + mlen] = '\0';
    utf8_trim_partial(err->message);
}

/* Failures that another attempt can plausibly fix (network weather) versus
 * ones that need a human (bad URL, certificate not trusted). */
static bool curl_code_transient(CURLcode rc)
{
    switch (rc) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_AGAIN:
    case CURLE_WEIRD_SERVER_REPLY:
        return true;
    default:
        return false;
    }
}

int sqs_request_complete(struct sqs_request *r, CURLcode rc, struct sqs_error *err)
{
    const char *action = sqs_action_name(r->action);
    long status = 0;

    r->attempts++;
    err_clear(err);
    if (rc == CURLE_WRITE_ERROR && r->resp_too_large) {
        err_set(err, SQS_ERR_PARSE, 0, "%s: response larger than %u bytes", action,
                SQS_MAX_RESPONSE_BYTES);
        return -1;
    }
    if (rc != CURLE_OK) {
        err_set(err, curl_code_transient(rc) ? SQS_ERR_TRANSPORT : SQS_ERR_CLIENT, 0, "%s: %s%s%s",
                action, curl_easy_strerror(rc), r->errbuf[0] ? ": " : "", r->errbuf);
        return -1;
    }
    curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
    if (status >= 200 && status <= 299)
        return 0;
    if (err) {
        sqs_decode_error(status, r->resp.data, r->resp.len, err);
        message_prefix(err, action);
    }
    return -1;
}

struct sqs_client *sqs_client_new(const struct sqs_config *cfg, struct creds_provider *creds)
{
    struct sqs_client *c;
    const char *sep;
    CURL *easy;

    if (!cfg || !creds || !(sep = strstr(cfg->endpoint, "://")) || !sep[3] ||
        !region_valid(cfg->region) || cfg->max_attempts == 0)
        return NULL;
    if (!(c = calloc(1, sizeof(*c))))
        return NULL;
    c->cfg = *cfg;
    c->cfg.verify_tls = true;
    c->creds = creds;
    c->host = c->cfg.endpoint + (sep - cfg->endpoint) + 3;
    snprintf(c->url, sizeof(c->url), "%s/", c->cfg.endpoint);
    if (!(easy = curl_easy_init()) || easy_setup(easy, c) != 0) {
        if (easy)
            curl_easy_cleanup(easy);
        free(c);
        return NULL;
    }
    request_init(&c->sync, c, easy, true);
    return c;
}

void sqs_client_free(struct sqs_client *c)
{
    if (!c)
        return;
    request_release(&c->sync);
    free(c);
}

const struct sqs_config *sqs_client_config(const struct sqs_client *c)
{
    return &c->cfg;
}

struct sqs_request *sqs_request_new(struct sqs_client *c, enum sqs_action a, char *body,
                                    void *userdata)
{
    struct sqs_request *r;
    CURL *easy;

    if (!c || !body || !action_valid(a)) {
        free(body);
        return NULL;
    }
    r = malloc(sizeof(*r));
    easy = curl_easy_init();
    if (!r || !easy || easy_setup(easy, c) != 0) {
        if (easy)
            curl_easy_cleanup(easy);
        free(r);
        free(body);
        return NULL;
    }
    request_init(r, c, easy, true);
    r->action = a;
    r->owned_body = body;
    r->body = body;
    r->body_len = strlen(body);
    r->userdata = userdata;
    return r;
}

CURL *sqs_request_easy(struct sqs_request *r)
{
    return r->easy;
}

const char *sqs_request_response(const struct sqs_request *r, size_t *len)
{
    if (len)
        *len = r->resp.len;
    return r->resp.data ? r->resp.data : "";
}

enum sqs_action sqs_request_action(const struct sqs_request *r)
{
    return r->action;
}

void *sqs_request_userdata(const struct sqs_request *r)
{
    return r->userdata;
}

unsigned sqs_request_attempts(const struct sqs_request *r)
{
    return r->attempts;
}

int64_t sqs_request_backoff_ms(const struct sqs_request *r)
{
    const struct sqs_config *cfg = &r->client->cfg;
    return util_backoff_ms(r->attempts ? r->attempts - 1 : 0, cfg->backoff_base_ms,
                           cfg->backoff_cap_ms);
}

void sqs_request_free(struct sqs_request *r)
{
    if (!r)
        return;
    request_release(r);
    free(r);
}

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {.tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000};
    while (ms > 0 && nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

int sqs_call(struct sqs_client *c, enum sqs_action a, const char *body, long extra_timeout_ms,
             char **resp, size_t *resp_len, struct sqs_error *err)
{
    struct sqs_request *r = &c->sync;
    struct sqs_error e; /* retry decisions need it even when the caller passes NULL */
    int rc = -1;

    *resp = NULL;
    if (resp_len)
        *resp_len = 0;
    if (!body || !action_valid(a)) {
        err_set(err, SQS_ERR_CLIENT, 0, "%s: invalid request", sqs_action_name(a));
        return -1;
    }
    r->action = a;
    r->body = body;
    r->body_len = strlen(body);
    r->attempts = 0;
    for (;;) {
        if (sqs_request_prepare(r, extra_timeout_ms, &e) != 0)
            break;
        if (sqs_request_complete(r, curl_easy_perform(r->easy), &e) == 0) {
            rc = 0;
            break;
        }
        if (!sqs_error_retryable(&e) || r->attempts >= c->cfg.max_attempts)
            break;
        sleep_ms(sqs_request_backoff_ms(r));
    }

    if (rc == 0) {
        /* Hand the buffer over; an empty 2xx body reads as "{}" for the decoders. */
        if (r->resp.len == 0) {
            *resp = strdup("{}");
            if (resp_len)
                *resp_len = 2;
        } else {
            *resp = r->resp.data;
            if (resp_len)
                *resp_len = r->resp.len;
            buf_init(&r->resp, SQS_MAX_RESPONSE_BYTES);
        }
        if (!*resp)
            err_set(&e, SQS_ERR_CLIENT, 0, "%s: out of memory", sqs_action_name(a));
        rc = *resp ? 0 : -1;
    } else if (r->attempts > 1) {
        size_t n = strlen(e.message);
        snprintf(e.message + n, sizeof(e.message) - n, " (after %u attempts)", r->attempts);
    }
    if (err)
        *err = e;
    /* Nothing of this call may linger: the body is the caller's and the
     * headers hold the session token. */
    headers_free(r);
    curl_easy_setopt(r->easy, CURLOPT_HTTPHEADER, NULL);
    curl_easy_setopt(r->easy, CURLOPT_POSTFIELDS, NULL);
    r->body = NULL;
    r->body_len = 0;
    buf_reset(&r->resp);
    return rc;
}

/* ---- synchronous wrappers ------------------------------------------------ */

static int call_encoded(struct sqs_client *c, enum sqs_action a, char *body, long extra_ms,
                        char **resp, size_t *len, struct sqs_error *err)
{
    int rc;
    if (!body) {
        err_set(err, SQS_ERR_CLIENT, 0, "%s: invalid request parameters", sqs_action_name(a));
        return -1;
    }
    rc = sqs_call(c, a, body, extra_ms, resp, len, err);
    free(body);
    return rc;
}

int sqs_send_message(struct sqs_client *c, const char *queue_url, const struct sqs_send_entry *e,
                     char *message_id, size_t idlen, struct sqs_error *err)
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

static int batch_call(struct sqs_client *c, enum sqs_action a, char *body,
                      struct sqs_batch_result *out, struct sqs_error *err)
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

int sqs_send_message_batch(struct sqs_client *c, const char *queue_url,
                           const struct sqs_send_entry *e, size_t n, struct sqs_batch_result *out,
                           struct sqs_error *err)
{
    return batch_call(c, SQS_SEND_MESSAGE_BATCH, sqs_encode_send_message_batch(queue_url, e, n),
                      out, err);
}

int sqs_receive_message(struct sqs_client *c, const char *queue_url, int max_messages,
                        int wait_seconds, struct sqs_message **msgs, size_t *n,
                        struct sqs_error *err)
{
    char *resp;
    size_t len;
    int rc;

    *msgs = NULL;
    *n = 0;
    /* A long poll legitimately holds the connection for wait_seconds. */
    if (call_encoded(c, SQS_RECEIVE_MESSAGE,
                     sqs_encode_receive_message(queue_url, max_messages, wait_seconds, -1),
                     (long)wait_seconds * 1000, &resp, &len, err) != 0)
        return -1;
    rc = sqs_decode_receive_message(resp, len, msgs, n, err);
    free(resp);
    return rc;
}

int sqs_delete_message(struct sqs_client *c, const char *queue_url, const char *receipt_handle,
                       struct sqs_error *err)
{
    char *resp;
    if (call_encoded(c, SQS_DELETE_MESSAGE, sqs_encode_delete_message(queue_url, receipt_handle), 0,
                     &resp, NULL, err) != 0)
        return -1;
    free(resp);
    return 0;
}

int sqs_delete_message_batch(struct sqs_client *c, const char *queue_url,
                             const struct sqs_receipt_entry *e, size_t n,
                             struct sqs_batch_result *out, struct sqs_error *err)
{
    return batch_call(c, SQS_DELETE_MESSAGE_BATCH, sqs_encode_delete_message_batch(queue_url, e, n),
                      out, err);
}

int sqs_change_message_visibility(struct sqs_client *c, const char *queue_url,
                                  const char *receipt_handle, int visibility_timeout,
                                  struct sqs_error *err)
{
    char *resp;
    if (call_encoded(c, SQS_CHANGE_MESSAGE_VISIBILITY,
                     sqs_encode_change_visibility(queue_url, receipt_handle, visibility_timeout), 0,
                     &resp, NULL, err) != 0)
        return -1;
    free(resp);
    return 0;
}

int sqs_change_message_visibility_batch(struct sqs_client *c, const char *queue_url,
                                        const struct sqs_receipt_entry *e, size_t n,
                                        struct sqs_batch_result *out, struct sqs_error *err)
{
    return batch_call(c, SQS_CHANGE_MESSAGE_VISIBILITY_BATCH,
                      sqs_encode_change_visibility_batch(queue_url, e, n), out, err);
}

int sqs_get_queue_url(struct sqs_client *c, const char *queue_name, char **queue_url,
                      struct sqs_error *err)
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
