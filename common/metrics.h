/*
 * metrics.h - Prometheus text-format counters, gauges and histograms.
 *
 * Values are C11 atomics updated on hot paths without locks; rendering reads
 * them at scrape time, so a scrape never blocks request or message handling.
 */
#ifndef ORDER_METRICS_H
#define ORDER_METRICS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

#define HISTOGRAM_MAX_BUCKETS 20

struct histogram {
    const double *bounds; /* upper bounds in seconds, ascending */
    size_t n_bounds;
    _Atomic uint64_t buckets[HISTOGRAM_MAX_BUCKETS + 1]; /* last one is +Inf */
    _Atomic uint64_t count;
    _Atomic uint64_t sum_us;
};

/* Default latency buckets, 0.5 ms to 60 s. */
extern const double metrics_latency_bounds[];
extern const size_t metrics_latency_n;

void histogram_init(struct histogram *h, const double *bounds, size_t n);
void histogram_observe_ms(struct histogram *h, double ms);

/* Appends "# HELP" and "# TYPE" lines. */
void metrics_header(struct buf *b, const char *name, const char *type, const char *help);
/* Appends one sample; labels is "" or 'a="x",b="y"'. */
void metrics_sample(struct buf *b, const char *name, const char *labels, double value);
/* A metric of one unlabelled sample: its HELP and TYPE lines and the value,
 * the name written once. */
void metrics_one(struct buf *b, const char *name, const char *type, const char *help, double value);
/* Appends the _bucket, _sum and _count lines of h. */
void metrics_histogram(struct buf *b, const char *name, const char *labels,
                       const struct histogram *h);

#endif
