/*
 * events_codec.c - EventBridge PutEvents bodies and answers (see events_codec.h).
 *
 * Design: pure functions over jansson, fuzzed like the SQS codec. Each rule
 * EventBridge applies to an entry (the bus name's grammar, the Source and
 * DetailType lengths, Detail being a JSON object, the size limit) is a check
 * here with a reason string, so an event that could only ever be refused is
 * caught, logged and counted by the caller before it is queued. The answer
 * is matched to the request by position, as the API promises.
 */
#include "events_codec.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws_json.h"

#define PUT_WHAT "PutEvents response"

static int why_set(char *why, size_t whylen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int why_set(char *why, size_t whylen, const char *fmt, ...)
{
    va_list ap;
    if (why && whylen) {
        va_start(ap, fmt);
        vsnprintf(why, whylen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* Well-formed UTF-8 (no overlong forms, surrogates or code points past
 * U+10FFFF), which is what JSON strings must carry. *chars gets the count. */
static bool utf8_valid(const char *s, size_t *chars)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = 0;
    while (*p) {
        uint32_t cp;
        int more;
        if (*p < 0x80) {
            p++;
            n++;
            continue;
        } else if ((*p & 0xE0) == 0xC0) {
            cp = *p & 0x1F;
            more = 1;
        } else if ((*p & 0xF0) == 0xE0) {
            cp = *p & 0x0F;
            more = 2;
        } else if ((*p & 0xF8) == 0xF0) {
            cp = *p & 0x07;
            more = 3;
        } else {
            return false;
        }
        p++;
        for (int i = 0; i < more; i++, p++) {
            if ((*p & 0xC0) != 0x80)
                return false;
            cp = (cp << 6) | (*p & 0x3F);
        }
        if ((more == 1 && cp < 0x80) || (more == 2 && cp < 0x800) || (more == 3 && cp < 0x10000) ||
            cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        n++;
    }
    if (chars)
        *chars = n;
    return true;
}

static bool is_lower(char c)
{
    return c >= 'a' && c <= 'z';
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_word(char c) /* \w: [A-Za-z0-9_] */
{
    return is_lower(c) || (c >= 'A' && c <= 'Z') || is_digit(c) || c == '_';
}

static bool name_char(char c) /* [\.\-_A-Za-z0-9] */
{
    return is_word(c) || c == '.' || c == '-';
}

/* [a-z]+-[a-z]+-[\w-]+ over s[0..n) */
static bool region_matches(const char *s, size_t n)
{
    size_t i = 0;
    for (int part = 0; part < 2; part++) {
        size_t start = i;
        while (i < n && is_lower(s[i]))
            i++;
        if (i == start || i >= n || s[i] != '-')
            return false;
        i++;
    }
    if (i == n)
        return false;
    for (; i < n; i++)
        if (!is_word(s[i]) && s[i] != '-')
            return false;
    return true;
}

/* The API's pattern for EventBusName:
 * (arn:aws[\w-]*:events:[a-z]+-[a-z]+-[\w-]+:[0-9]{12}:event-bus\/)?[\.\-_A-Za-z0-9]+ */
static bool bus_name_valid(const char *s)
{
    const char *p = s;
    if (strncmp(p, "arn:aws", 7) == 0) {
        p += 7;
        while (is_word(*p) || *p == '-')
            p++;
        if (strncmp(p, ":events:", 8) != 0)
            return false;
        p += 8;
        const char *colon = strchr(p, ':');
        if (!colon || !region_matches(p, (size_t)(colon - p)))
            return false;
        p = colon + 1;
        for (int i = 0; i < 12; i++, p++)
            if (!is_digit(*p))
                return false;
        if (strncmp(p, ":event-bus/", 11) != 0)
            return false;
        p += 11;
    }
    if (!*p)
        return false;
    for (; *p; p++)
        if (!name_char(*p))
            return false;
    return true;
}

size_t events_entry_size(const struct events_entry *e)
{
    size_t n = 0;
    if (e->source)
        n += strlen(e->source);
    if (e->detail_type)
        n += strlen(e->detail_type);
    if (e->detail)
        n += strlen(e->detail);
    return n;
}

int events_entry_check(const struct events_entry *e, char *why, size_t whylen)
{
    size_t chars, n;

    if (!e)
        return why_set(why, whylen, "no entry");
    if (!e->source || !*e->source)
        return why_set(why, whylen, "Source is empty");
    if (strlen(e->source) > EVENTS_MAX_SOURCE_BYTES || !utf8_valid(e->source, NULL))
        return why_set(why, whylen, "Source is not 1-%d bytes of UTF-8", EVENTS_MAX_SOURCE_BYTES);
    if (strncmp(e->source, "aws.", 4) == 0)
        return why_set(why, whylen, "Source may not start with \"aws.\" (reserved for AWS)");
    if (!e->detail_type || !*e->detail_type)
        return why_set(why, whylen, "DetailType is empty");
    if (!utf8_valid(e->detail_type, &chars) || chars > EVENTS_MAX_DETAIL_TYPE_CHARS)
        return why_set(why, whylen, "DetailType is not 1-%d characters of UTF-8",
                       EVENTS_MAX_DETAIL_TYPE_CHARS);
    if (!e->event_bus_name || (n = strlen(e->event_bus_name)) == 0 ||
        n > EVENTS_MAX_BUS_NAME_BYTES || !bus_name_valid(e->event_bus_name))
        return why_set(why, whylen, "EventBusName is not a bus name ([.-_A-Za-z0-9]+) or ARN");
    if (e->trace_header) {
        n = strlen(e->trace_header);
        if (n == 0 || n > EVENTS_MAX_TRACE_HEADER_BYTES)
            return why_set(why, whylen, "TraceHeader is not 1-%d bytes",
                           EVENTS_MAX_TRACE_HEADER_BYTES);
        for (const char *p = e->trace_header; *p; p++)
            if (*p < 0x21 || *p > 0x7e)
                return why_set(why, whylen, "TraceHeader is not printable ASCII");
    }
    if (!e->detail || !*e->detail)
        return why_set(why, whylen, "Detail is empty");
    if (events_entry_size(e) >= EVENTS_MAX_REQUEST_BYTES)
        return why_set(why, whylen, "the entry is %zu bytes; it must be under %d on its own",
                       events_entry_size(e), EVENTS_MAX_REQUEST_BYTES);
    json_error_t jerr;
    bool oom;
    json_t *d = aws_json_load(e->detail, strlen(e->detail), 0, &jerr, &oom);
    bool object = json_is_object(d);
    json_decref(d);
    if (oom)
        return why_set(why, whylen, "out of memory reading Detail");
    if (!object)
        return why_set(why, whylen, "Detail is not a JSON object");
    return 0;
}

size_t events_batch_fit(const struct events_entry *e, size_t n)
{
    size_t k = 0, total = 0;
    while (k < n && k < EVENTS_MAX_BATCH) {
        size_t sz = events_entry_size(&e[k]);
        if (k > 0 && total + sz >= EVENTS_MAX_REQUEST_BYTES)
            break;
        total += sz;
        k++;
    }
    return k;
}

static json_t *entry_json(const struct events_entry *e)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    if (aws_json_set_str(o, "Source", e->source) != 0 ||
        aws_json_set_str(o, "DetailType", e->detail_type) != 0 ||
        aws_json_set_str(o, "Detail", e->detail) != 0 ||
        aws_json_set_str(o, "EventBusName", e->event_bus_name) != 0 ||
        (e->trace_header && aws_json_set_str(o, "TraceHeader", e->trace_header) != 0)) {
        json_decref(o);
        return NULL;
    }
    return o;
}

char *events_encode_put_events(const struct events_entry *e, size_t n, struct aws_error *err)
{
    char why[200];
    size_t total = 0;
    json_t *root, *entries;

    aws_error_clear(err);
    if (!e || n == 0 || n > EVENTS_MAX_BATCH) {
        aws_error_set(err, AWS_ERR_CLIENT, 0, "PutEvents: %zu entries, 1-%d allowed", n,
                      EVENTS_MAX_BATCH);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        if (events_entry_check(&e[i], why, sizeof(why)) != 0) {
            aws_error_set(err, AWS_ERR_CLIENT, 0, "PutEvents: entry %zu: %s", i, why);
            return NULL;
        }
        total += events_entry_size(&e[i]);
    }
    if (total >= EVENTS_MAX_REQUEST_BYTES) {
        aws_error_set(err, AWS_ERR_CLIENT, 0,
                      "PutEvents: the entries total %zu bytes; they must stay under %d", total,
                      EVENTS_MAX_REQUEST_BYTES);
        return NULL;
    }
    if (!(root = json_object()) || aws_json_set(root, "Entries", entries = json_array()) != 0)
        goto oom;
    for (size_t i = 0; i < n; i++)
        if (aws_json_append(entries, entry_json(&e[i])) != 0)
            goto oom;
    char *body = aws_json_dump(root);
    if (!body)
        aws_error_set(err, AWS_ERR_CLIENT, 0, "PutEvents: out of memory");
    return body;
oom:
    json_decref(root);
    aws_error_set(err, AWS_ERR_CLIENT, 0, "PutEvents: out of memory");
    return NULL;
}

enum events_outcome events_classify_error_code(const char *code)
{
    static const char *const rejected[] = {"InvalidArgument", "MalformedDetail",
                                           "ValidationException", "RedactionFailure"};
    static const char *const denied[] = {"AccessDeniedException", "InvalidAccountIdException",
                                         "NotAuthorizedForSourceException",
                                         "NotAuthorizedForDetailTypeException"};
    if (!code || !*code)
        return EVENTS_RETRY;
    for (size_t i = 0; i < sizeof(rejected) / sizeof(rejected[0]); i++)
        if (strcmp(code, rejected[i]) == 0)
            return EVENTS_REJECTED;
    for (size_t i = 0; i < sizeof(denied) / sizeof(denied[0]); i++)
        if (strcmp(code, denied[i]) == 0)
            return EVENTS_DENIED;
    return EVENTS_RETRY; /* InternalFailure, ThrottlingException, and anything new */
}

/* One answer entry: 0, or -1 with a PARSE error. */
static int decode_result_entry(json_t *je, size_t i, struct events_result_entry *r,
                               struct aws_error *err)
{
    if (!json_is_object(je)) {
        aws_error_set(err, AWS_ERR_PARSE, 0, PUT_WHAT ": entry %zu is not an object", i);
        return -1;
    }
    json_t *code = json_object_get(je, "ErrorCode");
    json_t *msg = json_object_get(je, "ErrorMessage");
    json_t *id = json_object_get(je, "EventId");
    if ((code && !json_is_null(code) && !json_is_string(code)) ||
        (msg && !json_is_null(msg) && !json_is_string(msg)) ||
        (id && !json_is_null(id) && !json_is_string(id))) {
        aws_error_set(err, AWS_ERR_PARSE, 0,
                      PUT_WHAT ": entry %zu: EventId, ErrorCode or ErrorMessage is not a string",
                      i);
        return -1;
    }
    if (json_is_string(code) && json_string_length(code) > 0) {
        r->outcome = events_classify_error_code(json_string_value(code));
        aws_text_copy(r->error_code, sizeof(r->error_code), json_string_value(code));
        aws_text_copy(r->error_message, sizeof(r->error_message),
                      json_is_string(msg) ? json_string_value(msg) : "");
        return 0;
    }
    if (json_is_string(id) && json_string_length(id) > 0 &&
        json_string_length(id) <= EVENTS_MAX_EVENT_ID_BYTES &&
        strlen(json_string_value(id)) == json_string_length(id)) {
        r->outcome = EVENTS_OK;
        memcpy(r->event_id, json_string_value(id), json_string_length(id) + 1);
        return 0;
    }
    /* Neither accepted nor failed: whether it went out is unknown, so it is
     * sent again (consumers deduplicate by the event's own id). */
    r->outcome = EVENTS_RETRY;
    aws_text_copy(r->error_message, sizeof(r->error_message),
                  json_is_string(id) ? "EventId is empty or longer than 64 bytes"
                                     : "the answer has neither EventId nor ErrorCode");
    return 0;
}

int events_decode_put_events(const char *json, size_t len, size_t n_sent,
                             struct events_put_result *out, struct aws_error *err)
{
    json_t *root, *entries;

    memset(out, 0, sizeof(*out));
    aws_error_clear(err);
    if (n_sent == 0 || n_sent > EVENTS_MAX_BATCH) {
        aws_error_set(err, AWS_ERR_PARSE, 0, PUT_WHAT ": %zu entries sent, 1-%d possible", n_sent,
                      EVENTS_MAX_BATCH);
        return -1;
    }
    if (!(root = aws_json_parse_object(json, len, PUT_WHAT, err)))
        return -1;
    if (aws_json_get_array(root, "Entries", EVENTS_MAX_BATCH, &entries, PUT_WHAT, err) != 0)
        goto fail;
    size_t n = entries ? json_array_size(entries) : 0;
    if (n != n_sent) {
        aws_error_set(err, AWS_ERR_PARSE, 0, PUT_WHAT ": %zu entries answered for %zu sent", n,
                      n_sent);
        goto fail;
    }
    size_t coded = 0; /* entries failed with an ErrorCode: what FailedEntryCount counts */
    for (size_t i = 0; i < n; i++) {
        if (decode_result_entry(json_array_get(entries, i), i, &out->entry[i], err) != 0)
            goto fail;
        out->n_failed += out->entry[i].outcome != EVENTS_OK;
        coded += out->entry[i].error_code[0] != '\0';
    }
    json_t *fec = json_object_get(root, "FailedEntryCount");
    if (fec && !json_is_null(fec) &&
        (!json_is_integer(fec) || json_integer_value(fec) != (json_int_t)coded)) {
        aws_error_set(
            err, AWS_ERR_PARSE, 0,
            PUT_WHAT ": FailedEntryCount disagrees with the %zu entries with an ErrorCode", coded);
        goto fail;
    }
    out->n = n;
    json_decref(root);
    return 0;
fail:
    memset(out, 0, sizeof(*out));
    json_decref(root);
    return -1;
}
