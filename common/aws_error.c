/*
 * aws_error.c - error classification and the retry policy shared by every
 * AWS client here (see aws_error.h).
 *
 * Design: an error answer is hostile input like any other (a proxy's HTML
 * page, a truncated body, a multi-byte character cut in half), so the
 * message built from it is bounded, printable and valid UTF-8: the logger
 * (jansson) drops a line that is not.
 */
#include "aws_error.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "aws_json.h"
#include "util.h"

/* vsnprintf may cut a multi-byte character in half: trim the partial sequence. */
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

void aws_text_copy(char *dst, size_t cap, const char *src)
{
    if (!cap)
        return;
    util_strlcpy(dst, src ? src : "", cap);
    utf8_trim_partial(dst);
}

void aws_error_set(struct aws_error *err, enum aws_error_kind kind, long status, const char *fmt,
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

void aws_error_clear(struct aws_error *err)
{
    if (!err)
        return;
    err->kind = AWS_ERR_NONE;
    err->http_status = 0;
    err->type[0] = '\0';
    err->message[0] = '\0';
}

void aws_error_prefix(struct aws_error *err, const char *prefix)
{
    size_t plen = strlen(prefix) + 2, mlen = strlen(err->message), cap = sizeof(err->message);
    if (plen >= cap)
        return;
    if (mlen > cap - 1 - plen)
        mlen = cap - 1 - plen;
    memmove(err->message + plen, err->message, mlen);
    memcpy(err->message, prefix, plen - 2);
    memcpy(err->message + plen - 2, ": ", 2);
    err->message[plen + mlen] = '\0';
    utf8_trim_partial(err->message);
}

bool aws_error_retryable(const struct aws_error *e)
{
    if (!e)
        return false;
    return e->kind == AWS_ERR_TRANSPORT || e->kind == AWS_ERR_THROTTLED ||
           e->kind == AWS_ERR_SERVER;
}

bool aws_error_type_is_throttling(const char *type)
{
    static const char *const throttling[] = {
        "ThrottlingException",      "RequestThrottled",          "Throttling",
        "TooManyRequestsException", "RequestThrottledException", "KmsThrottled",
        "ThrottledException",       "RequestLimitExceeded",      "SlowDown",
    };
    if (!type)
        return false;
    for (size_t i = 0; i < sizeof(throttling) / sizeof(throttling[0]); i++)
        if (strcmp(type, throttling[i]) == 0)
            return true;
    return false;
}

enum aws_error_kind aws_error_kind_of_status(long http_status, const char *type)
{
    if ((type && *type && aws_error_type_is_throttling(type)) || http_status == 429)
        return AWS_ERR_THROTTLED;
    if (http_status >= 500 && http_status <= 599)
        return AWS_ERR_SERVER;
    return AWS_ERR_CLIENT;
}

enum aws_error_kind aws_error_kind_of_curl(CURLcode rc)
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
        return AWS_ERR_TRANSPORT;
    default:
        return AWS_ERR_CLIENT;
    }
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

void aws_decode_error(long http_status, const char *body, size_t len, struct aws_error *err)
{
    json_t *root = NULL;
    const char *type = NULL, *msg = NULL;
    char typebuf[sizeof(err->type)] = "";
    char snippet[121];

    if (!err)
        return;
    bool oom; /* then type and message may be altered: fall back to the excerpt */
    if (body && len > 0)
        root = aws_json_load(body, len, 0, NULL, &oom);
    if (json_is_object(root)) {
        static const char *const type_keys[] = {"__type", "code", "Code"};
        static const char *const msg_keys[] = {"message", "Message", "errorMessage"};
        for (size_t i = 0; i < 3 && !type; i++)
            type = json_string_value(json_object_get(root, type_keys[i]));
        for (size_t i = 0; i < 3 && !msg; i++)
            msg = json_string_value(json_object_get(root, msg_keys[i]));
    }
    if (type)
        error_type_copy(typebuf, sizeof(typebuf), type);
    enum aws_error_kind kind = aws_error_kind_of_status(http_status, typebuf);

    if (typebuf[0])
        aws_error_set(err, kind, http_status, "HTTP %ld %s: %s", http_status, typebuf,
                      msg ? msg : "(no message)");
    else if (msg)
        aws_error_set(err, kind, http_status, "HTTP %ld: %s", http_status, msg);
    else if (!body || len == 0)
        aws_error_set(err, kind, http_status, "HTTP %ld with an empty body", http_status);
    else {
        excerpt(snippet, sizeof(snippet), body, len);
        aws_error_set(err, kind, http_status, "HTTP %ld: %s", http_status, snippet);
    }
    memcpy(err->type, typebuf, sizeof(err->type));
    json_decref(root);
}

int64_t aws_retry_delay_ms(const struct aws_retry_policy *p, unsigned attempts_made)
{
    return util_backoff_ms(attempts_made ? attempts_made - 1 : 0, p->base_ms, p->cap_ms);
}

bool aws_retry_allowed(const struct aws_retry_policy *p, const struct aws_error *e,
                       unsigned attempts_made)
{
    return aws_error_retryable(e) && attempts_made < p->max_attempts;
}

void aws_sleep_ms(int64_t ms)
{
    if (ms <= 0)
        return;
    struct timespec ts = {.tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}
