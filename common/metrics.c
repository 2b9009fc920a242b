/*
 * metrics.c - rendering of the Prometheus text exposition format (0.0.4).
 */
#include "metrics.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const double metrics_latency_bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                         0.5,    1,     2,      2.5,   5,    10,    30,   60};
const size_t metrics_latency_n = sizeof(metrics_latency_bounds) / sizeof(double);

void histogram_init(struct histogram *h, const double *bounds, size_t n)
{
    memset(h, 0, sizeof(*h));
    h->bounds = bounds;
    h->n_bounds = n > HISTOGRAM_MAX_BUCKETS ? HISTOGRAM_MAX_BUCKETS : n;
}

void histogram_observe_ms(struct histogram *h, double ms)
{
    double s = ms / 1000.0;
    size_t i = 0;
    while (i < h->n_bounds && s > h->bounds[i])
        i++;
    atomic_fetch_add_explicit(&h->buckets[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum_us, (uint64_t)(ms < 0 ? 0 : ms * 1000.0),
                              memory_order_relaxed);
}

static void appendf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void appendf(struct buf *b, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (n > 0)
        buf_append(b, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
}

void metrics_header(struct buf *b, const char *name, const char *type, const char *help)
{
    appendf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

void metrics_sample(struct buf *b, const char *name, const char *labels, double value)
{
    if (labels && *labels)
        appendf(b, "%s{%s} %.17g\n", name, labels, value);
    else
        appendf(b, "%s %.17g\n", name, value);
}

void metrics_one(struct buf *b, const char *name, const char *type, const char *help, double value)
{
    metrics_header(b, name, type, help);
    metrics_sample(b, name, "", value);
}

void metrics_histogram(struct buf *b, const char *name, const char *labels,
                       const struct histogram *h)
{
    uint64_t cum = 0;
    const char *sep = (labels && *labels) ? "," : "";
    const char *l = labels ? labels : "";
    for (size_t i = 0; i <= h->n_bounds; i++) {
        cum += atomic_load_explicit(&h->buckets[i], memory_order_relaxed);
        if (i < h->n_bounds)
            appendf(b, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, l, sep, h->bounds[i],
                    (unsigned long long)cum);
        else
            appendf(b, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, l, sep, (unsigned long long)cum);
    }
    double sum = (double)atomic_load_explicit(&h->sum_us, memory_order_relaxed) / 1e6;
    uint64_t count = atomic_load_explicit(&h->count, memory_order_relaxed);
    if (*l) {
        appendf(b, "%s_sum{%s} %.6f\n%s_count{%s} %llu\n", name, l, sum, name, l,
                (unsigned long long)count);
    } else {
        appendf(b, "%s_sum %.6f\n%s_count %llu\n", name, sum, name, (unsigned long long)count);
    }
}
