/*
 * log.h - structured logging: one JSON object per line on stdout, or with
 * LOG_FORMAT=text one compact "ts level service: msg key=value" line.
 *
 * Every line carries ts, level, service, instance and version; lines about an
 * order add order_id and correlation_id through log_fields. Values are escaped
 * by jansson, so nothing a client sends can forge a line. Never pass a secret.
 */
#ifndef ORDER_LOG_H
#define ORDER_LOG_H

#include <stdarg.h>

enum log_level { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR };

/* Extra key/value pairs for one line; NULL values are skipped. */
struct log_fields {
    const char *order_id;
    const char *correlation_id;
    const char *message_id;
    const char *trace_id;    /* X-Amzn-Trace-Id / AWSTraceHeader */
    const char *traceparent; /* W3C */
    const char *principal;   /* the authenticated caller (a token's sub), never the token */
};

/* Sets the service name, level and format (text: LOG_FORMAT=text, with the
 * level coloured when stdout is a terminal); instance is a short id unique per
 * process. */
void log_init(const char *service, enum log_level level, int text);
/* Parses "debug", "info", "warn" or "error"; returns -1 for anything else. */
int log_level_parse(const char *s);
const char *log_instance_id(void);
int log_enabled(enum log_level level);

void log_msg(enum log_level level, const struct log_fields *fields, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Same, with additional "key": integer pairs terminated by NULL, e.g.
 * log_kv(LOG_INFO, &f, "order processed", "latency_ms", (long long)12, NULL). */
void log_kv(enum log_level level, const struct log_fields *fields, const char *msg, ...);

/* The access log: one info line per answered request. route is the path
 * template (never the raw path, which holds ids), bytes the body sent. */
void log_access(const struct log_fields *fields, const char *method, const char *route, int status,
                long long duration_ms, long long bytes);
/* Writes line and a newline to stdout as it is, under the lock of the log
 * lines, so it never interleaves with one (the metrics' EMF lines). line must
 * be one line: no newline of its own. */
void log_raw(const char *line);

#define log_debug(f, ...) log_msg(LOG_DEBUG, f, __VA_ARGS__)
#define log_info(f, ...) log_msg(LOG_INFO, f, __VA_ARGS__)
#define log_warn(f, ...) log_msg(LOG_WARN, f, __VA_ARGS__)
#define log_error(f, ...) log_msg(LOG_ERROR, f, __VA_ARGS__)

#endif
