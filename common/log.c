/*
 * log.c - JSON-lines logger for stdout (CloudWatch Logs reads it as is).
 *
 * A line is built in full and written with one fwrite under a mutex, so lines
 * from several threads never interleave. The text format is rendered from the
 * same JSON object, so both formats carry the same fields; a value that is not
 * a plain word is written JSON-quoted, so nothing a client sends can start a
 * line of its own in either format.
 */
#include "log.h"

#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

#ifndef ORDER_VERSION
#define ORDER_VERSION "dev"
#endif

static const char *log_service = "order";
static enum log_level log_min = LOG_INFO;
static char log_instance[16] = "unset";
static bool log_text;
static bool log_colour;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *level_names[] = {"debug", "info", "warn", "error"};

void log_init(const char *service, enum log_level level, int text)
{
    unsigned char rnd[4];
    log_service = service;
    log_min = level;
    log_text = text != 0;
    log_colour = log_text && isatty(STDOUT_FILENO);
    util_random_bytes(rnd, sizeof(rnd));
    snprintf(log_instance, sizeof(log_instance), "%02x%02x%02x%02x", rnd[0], rnd[1], rnd[2],
             rnd[3]);
}

int log_level_parse(const char *s)
{
    for (int i = 0; i < 4; i++)
        if (strcasecmp(s, level_names[i]) == 0)
            return i;
    if (strcasecmp(s, "warning") == 0)
        return LOG_WARN;
    return -1;
}

const char *log_instance_id(void)
{
    return log_instance;
}

int log_enabled(enum log_level level)
{
    return level >= log_min;
}

static json_t *log_line(enum log_level level, const struct log_fields *f, const char *msg)
{
    char ts[64];
    struct timespec now;
    struct tm tm;

    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, now.tv_nsec / 1000000);

    json_t *o = json_object();
    json_object_set_new(o, "ts", json_string(ts));
    json_object_set_new(o, "level", json_string(level_names[level]));
    json_object_set_new(o, "service", json_string(log_service));
    json_object_set_new(o, "instance", json_string(log_instance));
    json_object_set_new(o, "version", json_string(ORDER_VERSION));
    /* json_string rejects invalid UTF-8; fall back to a marker rather than drop the line */
    json_t *m = json_string(msg);
    json_object_set_new(o, "msg", m ? m : json_string("(message was not valid UTF-8)"));
    if (f) {
        if (f->order_id)
            json_object_set_new(o, "order_id", json_string(f->order_id));
        if (f->correlation_id)
            json_object_set_new(o, "correlation_id", json_string(f->correlation_id));
        if (f->message_id)
            json_object_set_new(o, "message_id", json_string(f->message_id));
        if (f->trace_id)
            json_object_set_new(o, "trace_id", json_string(f->trace_id));
        if (f->traceparent)
            json_object_set_new(o, "traceparent", json_string(f->traceparent));
        if (f->principal && f->principal[0])
            json_object_set_new(o, "principal", json_string(f->principal));
    }
    return o;
}

/* True when s can be written bare in a text line: no space, quote, '=' or control. */
static bool plain_word(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if ((unsigned char)*s <= 0x20 || *s == '"' || *s == '=' || *s == 0x7f)
            return false;
    return true;
}

static void text_value(struct buf *b, json_t *v)
{
    if (json_is_string(v) && plain_word(json_string_value(v))) {
        buf_append(b, json_string_value(v), json_string_length(v));
        return;
    }
    char *q = util_json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    if (q)
        buf_append(b, q, strlen(q));
    else
        b->failed = true;
    free(q);
}

/* "ts level service: msg key=value ...": what a person reads in a terminal. */
static char *text_line(json_t *o)
{
    static const char *const colours[] = {"\033[2m", "\033[0m", "\033[33m", "\033[31m"};
    const char *level = json_string_value(json_object_get(o, "level"));
    const char *msg = json_string_value(json_object_get(o, "msg"));
    struct buf b;
    const char *key;
    json_t *v;
    int li = level ? log_level_parse(level) : -1;

    const char *ts = json_string_value(json_object_get(o, "ts"));
    buf_init(&b, 0);
    buf_append(&b, ts ? ts : "-", ts ? strlen(ts) : 1);
    buf_append(&b, " ", 1);
    if (log_colour && li >= 0)
        buf_append(&b, colours[li], strlen(colours[li]));
    buf_append(&b, level ? level : "?", level ? strlen(level) : 1);
    if (log_colour && li >= 0)
        buf_append(&b, "\033[0m", 4);
    buf_append(&b, " ", 1);
    buf_append(&b, log_service, strlen(log_service));
    buf_append(&b, ": ", 2);
    v = json_object_get(o, "msg");
    if (msg && strcspn(msg, "\n\r\033") == strlen(msg))
        buf_append(&b, msg, strlen(msg));
    else
        text_value(&b, v);
    json_object_foreach(o, key, v)
    {
        if (!strcmp(key, "ts") || !strcmp(key, "level") || !strcmp(key, "service") ||
            !strcmp(key, "msg") || !strcmp(key, "instance") || !strcmp(key, "version"))
            continue;
        buf_append(&b, " ", 1);
        buf_append(&b, key, strlen(key));
        buf_append(&b, "=", 1);
        text_value(&b, v);
    }
    if (b.failed) {
        buf_free(&b);
        return NULL;
    }
    return b.data;
}

static void log_emit(json_t *o)
{
    if (!o)
        return; /* out of memory: the line is lost, never half-written */
    char *s = log_text ? text_line(o) : util_json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    if (!s)
        return;
    pthread_mutex_lock(&log_lock);
    fputs(s, stdout);
    fputc('\n', stdout);
    fflush(stdout);
    pthread_mutex_unlock(&log_lock);
    free(s);
}

void log_raw(const char *line)
{
    pthread_mutex_lock(&log_lock);
    fputs(line, stdout);
    fputc('\n', stdout);
    fflush(stdout);
    pthread_mutex_unlock(&log_lock);
}

void log_msg(enum log_level level, const struct log_fields *fields, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;

    if (level < log_min)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    log_emit(log_line(level, fields, msg));
}

void log_kv(enum log_level level, const struct log_fields *fields, const char *msg, ...)
{
    va_list ap;
    const char *key;

    if (level < log_min)
        return;
    json_t *o = log_line(level, fields, msg);
    va_start(ap, msg);
    while ((key = va_arg(ap, const char *)) != NULL)
        json_object_set_new(o, key, json_integer(va_arg(ap, long long)));
    va_end(ap);
    log_emit(o);
}

void log_access(const struct log_fields *fields, const char *method, const char *route, int status,
                long long duration_ms, long long bytes)
{
    if (LOG_INFO < log_min)
        return;
    json_t *o = log_line(LOG_INFO, fields, "request");
    json_object_set_new(o, "method", json_string(method));
    json_object_set_new(o, "route", json_string(route));
    json_object_set_new(o, "status", json_integer(status));
    json_object_set_new(o, "duration_ms", json_integer(duration_ms));
    json_object_set_new(o, "bytes", json_integer(bytes));
    log_emit(o);
}
