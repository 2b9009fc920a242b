/*
 * log.c - JSON-lines logger for stdout (CloudWatch Logs reads it as is).
 *
 * A line is built in full and written with one fwrite under a mutex, so lines
 * from several threads never interleave.
 */
#include "log.h"

#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "util.h"

#ifndef ORDER_VERSION
#define ORDER_VERSION "dev"
#endif

static const char *log_service = "order";
static enum log_level log_min = LOG_INFO;
static char log_instance[16] = "unset";
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *level_names[] = {"debug", "info", "warn", "error"};

void log_init(const char *service, enum log_level level)
{
    unsigned char rnd[4];
    log_service = service;
    log_min = level;
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
    }
    return o;
}

static void log_emit(json_t *o)
{
    char *s = util_json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
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
