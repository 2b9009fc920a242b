/*
 * sqs_codec.c - SQS request bodies and answers, AWS JSON 1.0 (see sqs_codec.h).
 *
 * Design: pure functions, no I/O, so they are unit-tested and fuzzed alone.
 * Encoders check what SQS checks before the round trip; decoders check every
 * member's type before use, bound every array, and free whatever they built
 * on every error path. A ReceiveMessage answer is decoded per entry: an
 * entry without a usable MessageId, ReceiptHandle or Body is reported, not
 * returned, because nothing downstream could delete it or change its
 * visibility; the valid entries beside it go ahead at once.
 */
#include "sqs_codec.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws_json.h"

/* SQS allows 10 message attributes; local emulators may send a few more. */
#define SQS_MAX_MSG_ATTRS 64
#define SQS_MAX_VISIBILITY 43200 /* 12 hours */
#define SQS_MAX_WAIT_SECONDS 20

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

static json_t *string_attr(const char *value)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    if (aws_json_set(o, "DataType", json_string("String")) != 0 ||
        aws_json_set_str(o, "StringValue", value) != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* Fills o with the message fields shared by SendMessage and batch entries. */
static int put_message(json_t *o, const struct sqs_send_entry *e)
{
    if (!e->body || !body_valid(e->body) || aws_json_set_str(o, "MessageBody", e->body) != 0)
        return -1;
    if (e->n_attrs > 0) {
        if (!e->attrs || e->n_attrs > 10)
            return -1;
        json_t *attrs = json_object();
        if (aws_json_set(o, "MessageAttributes", attrs) != 0)
            return -1;
        for (size_t i = 0; i < e->n_attrs; i++) {
            const char *name = e->attrs[i].name;
            if (!name || !*name || strlen(name) > 256 || json_object_get(attrs, name))
                return -1;
            if (aws_json_set(attrs, name, string_attr(e->attrs[i].value)) != 0)
                return -1;
        }
    }
    if (e->trace_header) {
        json_t *sys = json_object();
        if (aws_json_set(o, "MessageSystemAttributes", sys) != 0 ||
            aws_json_set(sys, "AWSTraceHeader", string_attr(e->trace_header)) != 0)
            return -1;
    }
    return 0;
}

static json_t *request_with_queue(const char *queue_url)
{
    json_t *o = json_object();
    if (o && aws_json_set_str(o, "QueueUrl", queue_url) != 0) {
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
    return aws_json_dump(o);
}

/* The envelope every batch action shares: {"QueueUrl", "Entries": [{"Id"}...]}
 * with ids checked (1-80 of [A-Za-z0-9_-], unique). The entries are n
 * structs of the caller's type, stride bytes apart, each with its batch id
 * (a const char *) at id_offset: the send and the receipt batches share this.
 * Returns the request and the entry objects to fill, or NULL. */
static json_t *batch_request(const char *queue_url, const void *entries_in, size_t stride,
                             size_t id_offset, size_t n, json_t **entry)
{
    const char *ids[SQS_MAX_BATCH];
    json_t *o, *entries;
    if (!entries_in || n == 0 || n > SQS_MAX_BATCH)
        return NULL;
    for (size_t i = 0; i < n; i++)
        memcpy(&ids[i], (const char *)entries_in + i * stride + id_offset, sizeof(ids[i]));
    if (!batch_ids_valid(ids, n) || !(o = request_with_queue(queue_url)))
        return NULL;
    entries = json_array();
    if (aws_json_set(o, "Entries", entries) != 0)
        goto fail;
    for (size_t i = 0; i < n; i++) {
        entry[i] = json_object();
        if (aws_json_append(entries, entry[i]) != 0 ||
            aws_json_set_str(entry[i], "Id", ids[i]) != 0)
            goto fail;
    }
    return o;
fail:
    json_decref(o);
    return NULL;
}

char *sqs_encode_send_message_batch(const char *queue_url, const struct sqs_send_entry *e, size_t n)
{
    json_t *entry[SQS_MAX_BATCH], *o;

    if (!(o = batch_request(queue_url, e, sizeof(*e), offsetof(struct sqs_send_entry, id), n,
                            entry)))
        return NULL;
    for (size_t i = 0; i < n; i++)
        if (put_message(entry[i], &e[i]) != 0) {
            json_decref(o);
            return NULL;
        }
    return aws_json_dump(o);
}

static json_t *string_array(const char *const *names, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++) {
        if (!names[i] || !*names[i] || aws_json_append(a, json_string(names[i])) != 0) {
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
    if (aws_json_set(o, "MaxNumberOfMessages", json_integer(max_messages)) != 0 ||
        aws_json_set(o, "WaitTimeSeconds", json_integer(wait_seconds)) != 0 ||
        (visibility_timeout >= 0 &&
         aws_json_set(o, "VisibilityTimeout", json_integer(visibility_timeout)) != 0) ||
        aws_json_set(o, "MessageAttributeNames", string_array(all, 1)) != 0 ||
        aws_json_set(o, "MessageSystemAttributeNames", string_array(sys, 3)) != 0 ||
        aws_json_set(o, "AttributeNames", string_array(sys, 3)) != 0) {
        json_decref(o);
        return NULL;
    }
    return aws_json_dump(o);
}

char *sqs_encode_delete_message(const char *queue_url, const char *receipt_handle)
{
    json_t *o = request_with_queue(queue_url);
    if (!o)
        return NULL;
    if (aws_json_set_str(o, "ReceiptHandle", receipt_handle) != 0) {
        json_decref(o);
        return NULL;
    }
    return aws_json_dump(o);
}

/* Delete and ChangeVisibility batches differ only in the timeout field. */
static char *encode_receipt_batch(const char *queue_url, const struct sqs_receipt_entry *e,
                                  size_t n, bool with_timeout)
{
    json_t *entry[SQS_MAX_BATCH], *o;

    if (!(o = batch_request(queue_url, e, sizeof(*e), offsetof(struct sqs_receipt_entry, id), n,
                            entry)))
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (aws_json_set_str(entry[i], "ReceiptHandle", e[i].receipt_handle) != 0)
            goto fail;
        if (with_timeout &&
            (e[i].visibility_timeout < 0 || e[i].visibility_timeout > SQS_MAX_VISIBILITY ||
             aws_json_set(entry[i], "VisibilityTimeout", json_integer(e[i].visibility_timeout)) !=
                 0))
            goto fail;
    }
    return aws_json_dump(o);
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
    if (aws_json_set_str(o, "ReceiptHandle", receipt_handle) != 0 ||
        aws_json_set(o, "VisibilityTimeout", json_integer(visibility_timeout)) != 0) {
        json_decref(o);
        return NULL;
    }
    return aws_json_dump(o);
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
    if (!queue_name || strlen(queue_name) > 80 ||
        aws_json_set_str(o, "QueueName", queue_name) != 0) {
        json_decref(o);
        return NULL;
    }
    return aws_json_dump(o);
}

char *sqs_encode_get_queue_attributes(const char *queue_url, const char *const *names, size_t n)
{
    json_t *o;
    if (!names || n == 0 || !(o = request_with_queue(queue_url)))
        return NULL;
    if (aws_json_set(o, "AttributeNames", string_array(names, n)) != 0) {
        json_decref(o);
        return NULL;
    }
    return aws_json_dump(o);
}

/* ---- decoding: ReceiveMessage, entry by entry ------------------------------ */

#define RECEIVE_WHAT "ReceiveMessage response"

/* Records why entry i cannot be acted on; returns 1, the "rejected" result. */
static int reject(struct sqs_rejected *rej, size_t i, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int reject(struct sqs_rejected *rej, size_t i, const char *fmt, ...)
{
    char reason[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    aws_error_set(&rej->why, AWS_ERR_PARSE, 0, RECEIVE_WHAT ": message %zu: %s", i, reason);
    return 1;
}

/* A member that must be a non-empty string: 0 with *out set, 1 when it is
 * missing, empty or not a string (rejected), -1 when memory runs out. */
static int take_string(json_t *o, const char *key, char **out, struct sqs_rejected *rej, size_t i)
{
    json_t *v = json_object_get(o, key);
    *out = NULL;
    if (!v)
        return reject(rej, i, "%s is missing", key);
    if (!json_is_string(v))
        return reject(rej, i, "%s is not a string", key);
    if (json_string_length(v) == 0)
        return reject(rej, i, "%s is empty", key);
    return (*out = strdup(json_string_value(v))) ? 0 : -1;
}

/* System attribute numbers arrive as strings ("3"); emulators sometimes send
 * JSON numbers, which are accepted too. 0 or 1 (rejected). */
static int attr_int64(json_t *attrs, const char *key, int64_t max, int64_t *out,
                      struct sqs_rejected *rej, size_t i)
{
    json_t *v = json_object_get(attrs, key);
    *out = 0;
    if (!v || json_is_null(v))
        return 0;
    if (json_is_integer(v)) {
        json_int_t n = json_integer_value(v);
        if (n >= 0 && n <= max) {
            *out = (int64_t)n;
            return 0;
        }
    } else if (json_is_string(v)) {
        const char *s = json_string_value(v);
        char *end;
        if (*s >= '0' && *s <= '9') {
            errno = 0;
            long long n = strtoll(s, &end, 10);
            if (!errno && !*end && n <= max) {
                *out = (int64_t)n;
                return 0;
            }
        }
    }
    return reject(rej, i, "Attributes.%s is not a non-negative integer", key);
}

/* The system attributes: 0, 1 (rejected) or -1 (out of memory). */
static int decode_system_attrs(json_t *attrs, struct sqs_message *m, struct sqs_rejected *rej,
                               size_t i)
{
    int64_t v;
    if (!attrs || json_is_null(attrs))
        return 0;
    if (!json_is_object(attrs))
        return reject(rej, i, "%s is not an object", "Attributes");
    if (attr_int64(attrs, "ApproximateReceiveCount", INT32_MAX, &v, rej, i) != 0)
        return 1;
    m->receive_count = (int)v;
    if (attr_int64(attrs, "SentTimestamp", INT64_MAX, &v, rej, i) != 0)
        return 1;
    m->sent_timestamp_ms = v;
    json_t *th = json_object_get(attrs, "AWSTraceHeader");
    if (!th || json_is_null(th))
        return 0;
    if (!json_is_string(th))
        return reject(rej, i, "Attributes.%s is not a string", "AWSTraceHeader");
    return (m->trace_header = strdup(json_string_value(th))) ? 0 : -1;
}

/* The String message attributes: 0, 1 (rejected) or -1 (out of memory). */
static int decode_message_attrs(json_t *ma, struct sqs_message *m, struct sqs_rejected *rej,
                                size_t i)
{
    const char *name;
    json_t *v;

    if (!ma || json_is_null(ma))
        return 0;
    if (!json_is_object(ma))
        return reject(rej, i, "%s is not an object", "MessageAttributes");
    if (json_object_size(ma) > SQS_MAX_MSG_ATTRS)
        return reject(rej, i, "%s has more than 64 entries", "MessageAttributes");
    if (json_object_size(ma) == 0)
        return 0;
    if (!(m->attrs = calloc(json_object_size(ma), sizeof(*m->attrs))))
        return -1;
    json_object_foreach(ma, name, v)
    {
        json_t *dt = json_object_get(v, "DataType");
        json_t *sv = json_object_get(v, "StringValue");
        char shown[101]; /* the name, cut at a character boundary, for the reason */
        aws_text_copy(shown, sizeof(shown), name);
        if (!json_is_object(v) || !json_is_string(dt))
            return reject(rej, i, "attribute %s has no DataType", shown);
        /* Binary attributes have no text value; the order service never sends them. */
        if (strncmp(json_string_value(dt), "Binary", 6) == 0)
            continue;
        if (!json_is_string(sv))
            return reject(rej, i, "attribute %s: StringValue is not a string", shown);
        size_t k = m->n_attrs;
        m->attrs[k].name = strdup(name);
        m->attrs[k].value = strdup(json_string_value(sv));
        m->n_attrs++; /* counted before the check so the free path sees both */
        if (!m->attrs[k].name || !m->attrs[k].value)
            return -1;
    }
    return 0;
}

/* Entry i: 0 with m filled, 1 with rej filled (m cleared), -1 when memory
 * runs out (m cleared). What is known of a rejected entry is kept for the log. */
static int decode_entry(json_t *jm, size_t i, struct sqs_message *m, struct sqs_rejected *rej)
{
    int rc;

    memset(m, 0, sizeof(*m));
    memset(rej, 0, sizeof(*rej));
    if (!json_is_object(jm))
        return reject(rej, i, "%s", "the entry is not an object");
    json_t *id = json_object_get(jm, "MessageId");
    json_t *rh = json_object_get(jm, "ReceiptHandle");
    if (json_is_string(id) && json_string_length(id) <= SQS_MAX_MESSAGE_ID_BYTES &&
        strlen(json_string_value(id)) == json_string_length(id))
        memcpy(rej->message_id, json_string_value(id), json_string_length(id) + 1);
    rej->has_receipt_handle = json_is_string(rh) && json_string_length(rh) > 0;

    if ((rc = take_string(jm, "MessageId", &m->message_id, rej, i)) == 0 &&
        strlen(m->message_id) > SQS_MAX_MESSAGE_ID_BYTES)
        rc = reject(rej, i, "%s is longer than 127 bytes", "MessageId");
    if (rc == 0)
        rc = take_string(jm, "ReceiptHandle", &m->receipt_handle, rej, i);
    if (rc == 0)
        rc = take_string(jm, "Body", &m->body, rej, i);
    if (rc == 0)
        rc = decode_system_attrs(json_object_get(jm, "Attributes"), m, rej, i);
    if (rc == 0)
        rc = decode_message_attrs(json_object_get(jm, "MessageAttributes"), m, rej, i);
    if (rc != 0)
        sqs_message_clear(m);
    return rc;
}

int sqs_decode_receive_message(const char *json, size_t len, struct sqs_received *out,
                               struct aws_error *err)
{
    json_t *root, *arr;
    size_t n;

    memset(out, 0, sizeof(*out));
    aws_error_clear(err);
    if (!(root = aws_json_parse_object(json, len, RECEIVE_WHAT, err)))
        return -1;
    if (aws_json_get_array(root, "Messages", SQS_MAX_BATCH, &arr, RECEIVE_WHAT, err) != 0)
        goto fail;
    n = arr ? json_array_size(arr) : 0;
    if (n > 0 && (!(out->msgs = calloc(n, sizeof(*out->msgs))) ||
                  !(out->rejected = calloc(n, sizeof(*out->rejected)))))
        goto oom;
    for (size_t i = 0; i < n; i++) {
        int rc = decode_entry(json_array_get(arr, i), i, &out->msgs[out->n],
                              &out->rejected[out->n_rejected]);
        if (rc < 0)
            goto oom;
        if (rc == 0)
            out->n++;
        else
            out->n_rejected++;
    }
    json_decref(root);
    return 0;
oom:
    aws_error_set(err, AWS_ERR_PARSE, 0, RECEIVE_WHAT ": out of memory");
fail:
    sqs_received_free(out);
    json_decref(root);
    return -1;
}

int sqs_decode_receive_entry(const char *json, size_t len, struct sqs_message *m,
                             struct sqs_rejected *rej, struct aws_error *err)
{
    json_error_t jerr;
    bool oom;
    json_t *jm = aws_json_load(json, len, 0, &jerr, &oom);
    int rc;

    aws_error_clear(err);
    memset(m, 0, sizeof(*m));
    if (!jm) {
        aws_error_set(err, AWS_ERR_PARSE, 0, RECEIVE_WHAT " entry is not valid JSON: %s",
                      jerr.text);
        return -1;
    }
    rc = decode_entry(jm, 0, m, rej);
    if (rc < 0)
        aws_error_set(err, AWS_ERR_PARSE, 0, RECEIVE_WHAT ": out of memory");
    json_decref(jm);
    return rc;
}

void sqs_message_clear(struct sqs_message *m)
{
    if (!m)
        return;
    free(m->message_id);
    free(m->receipt_handle);
    free(m->body);
    free(m->trace_header);
    for (size_t k = 0; k < m->n_attrs; k++) {
        free(m->attrs[k].name);
        free(m->attrs[k].value);
    }
    free(m->attrs);
    memset(m, 0, sizeof(*m));
}

void sqs_received_free(struct sqs_received *r)
{
    if (!r)
        return;
    for (size_t i = 0; r->msgs && i < r->n; i++)
        sqs_message_clear(&r->msgs[i]);
    free(r->msgs);
    free(r->rejected);
    memset(r, 0, sizeof(*r));
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

/* ---- decoding: the other answers ------------------------------------------- */

int sqs_decode_send_message(const char *json, size_t len, char *message_id, size_t idlen,
                            struct aws_error *err)
{
    json_t *root, *id;
    int rc = -1;

    if (message_id && idlen)
        message_id[0] = '\0';
    aws_error_clear(err);
    if (!(root = aws_json_parse_object(json, len, "SendMessage response", err)))
        return -1;
    id = json_object_get(root, "MessageId");
    if (!json_is_string(id) || json_string_length(id) == 0)
        aws_error_set(err, AWS_ERR_PARSE, 0, "SendMessage response: MessageId is %s",
                      !id                  ? "missing"
                      : json_is_string(id) ? "empty"
                                           : "not a string");
    else if (!message_id || json_string_length(id) >= idlen)
        aws_error_set(err, AWS_ERR_PARSE, 0,
                      "SendMessage response: MessageId is longer than %zu bytes",
                      idlen ? idlen - 1 : 0);
    else {
        memcpy(message_id, json_string_value(id), json_string_length(id) + 1);
        rc = 0;
    }
    json_decref(root);
    return rc;
}

#define BATCH_WHAT "batch response"

static int decode_failure(json_t *jf, struct sqs_batch_failure *f, size_t i, struct aws_error *err)
{
    json_t *sf;

    if (!json_is_object(jf)) {
        aws_error_set(err, AWS_ERR_PARSE, 0, BATCH_WHAT ": Failed entry %zu is not an object", i);
        return -1;
    }
    if (aws_json_dup_string(jf, "Id", true, &f->id, BATCH_WHAT, i, err) != 0 ||
        aws_json_dup_string(jf, "Code", true, &f->code, BATCH_WHAT, i, err) != 0 ||
        aws_json_dup_string(jf, "Message", false, &f->message, BATCH_WHAT, i, err) != 0)
        return -1;
    /* Callers print the message; an absent one is an empty string, not NULL. */
    if (!f->message && !(f->message = strdup(""))) {
        aws_error_set(err, AWS_ERR_PARSE, 0, BATCH_WHAT ": out of memory");
        return -1;
    }
    sf = json_object_get(jf, "SenderFault");
    if (json_is_boolean(sf))
        f->sender_fault = json_is_true(sf);
    else if (json_is_string(sf) && (strcmp(json_string_value(sf), "true") == 0 ||
                                    strcmp(json_string_value(sf), "false") == 0))
        f->sender_fault = strcmp(json_string_value(sf), "true") == 0;
    else if (sf && !json_is_null(sf)) {
        aws_error_set(err, AWS_ERR_PARSE, 0,
                      BATCH_WHAT ": Failed entry %zu: SenderFault is not a boolean", i);
        return -1;
    }
    return 0;
}

int sqs_decode_batch_result(const char *json, size_t len, struct sqs_batch_result *out,
                            struct aws_error *err)
{
    json_t *root, *ok, *failed;
    size_t n_ok, n_failed;

    memset(out, 0, sizeof(*out));
    aws_error_clear(err);
    if (!(root = aws_json_parse_object(json, len, BATCH_WHAT, err)))
        return -1;
    if (aws_json_get_array(root, "Successful", SQS_MAX_BATCH, &ok, BATCH_WHAT, err) != 0 ||
        aws_json_get_array(root, "Failed", SQS_MAX_BATCH, &failed, BATCH_WHAT, err) != 0)
        goto fail;
    n_ok = ok ? json_array_size(ok) : 0;
    n_failed = failed ? json_array_size(failed) : 0;
    if (n_ok + n_failed > SQS_MAX_BATCH) {
        aws_error_set(err, AWS_ERR_PARSE, 0, BATCH_WHAT ": %zu results for at most %d entries",
                      n_ok + n_failed, SQS_MAX_BATCH);
        goto fail;
    }
    if (n_ok) {
        out->ok_ids = calloc(n_ok, sizeof(char *));
        out->ok_message_ids = calloc(n_ok, sizeof(char *));
        if (!out->ok_ids || !out->ok_message_ids) {
            aws_error_set(err, AWS_ERR_PARSE, 0, BATCH_WHAT ": out of memory");
            goto fail;
        }
        for (size_t i = 0; i < n_ok; i++) {
            json_t *e = json_array_get(ok, i);
            out->n_ok++;
            if (!json_is_object(e)) {
                aws_error_set(err, AWS_ERR_PARSE, 0,
                              BATCH_WHAT ": Successful entry %zu is not an object", i);
                goto fail;
            }
            if (aws_json_dup_string(e, "Id", true, &out->ok_ids[i], BATCH_WHAT, i, err) != 0 ||
                aws_json_dup_string(e, "MessageId", false, &out->ok_message_ids[i], BATCH_WHAT, i,
                                    err) != 0)
                goto fail;
        }
    }
    if (n_failed) {
        out->failed = calloc(n_failed, sizeof(*out->failed));
        if (!out->failed) {
            aws_error_set(err, AWS_ERR_PARSE, 0, BATCH_WHAT ": out of memory");
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
    for (size_t i = 0; r->failed && i < r->n_failed; i++) {
        free(r->failed[i].id);
        free(r->failed[i].code);
        free(r->failed[i].message);
    }
    free(r->failed);
    memset(r, 0, sizeof(*r));
}

int sqs_decode_get_queue_url(const char *json, size_t len, char **queue_url, struct aws_error *err)
{
    json_t *root, *u;
    int rc = -1;

    *queue_url = NULL;
    aws_error_clear(err);
    if (!(root = aws_json_parse_object(json, len, "GetQueueUrl response", err)))
        return -1;
    u = json_object_get(root, "QueueUrl");
    if (!json_is_string(u) || json_string_length(u) == 0)
        aws_error_set(err, AWS_ERR_PARSE, 0, "GetQueueUrl response: QueueUrl is %s",
                      !u                  ? "missing"
                      : json_is_string(u) ? "empty"
                                          : "not a string");
    else if (!(*queue_url = strdup(json_string_value(u))))
        aws_error_set(err, AWS_ERR_PARSE, 0, "GetQueueUrl response: out of memory");
    else
        rc = 0;
    json_decref(root);
    return rc;
}

char *sqs_decode_queue_attribute(const char *json, size_t len, const char *name)
{
    json_t *root, *v;
    char *out = NULL;

    if (!name || !(root = aws_json_parse_object(json, len, "GetQueueAttributes response", NULL)))
        return NULL;
    v = json_object_get(json_object_get(root, "Attributes"), name);
    if (json_is_string(v))
        out = strdup(json_string_value(v));
    json_decref(root);
    return out;
}
