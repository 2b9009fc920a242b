/*
 * emf.h - CloudWatch Embedded Metric Format (EMF): one aggregated JSON line
 * of metrics per interval on stdout, which the awslogs driver ships to
 * CloudWatch Logs and CloudWatch turns into metrics (no agent, no scraper).
 *
 * A document is
 *   {"_aws":{"Timestamp":<ms>,"CloudWatchMetrics":[{"Namespace":ns,
 *     "Dimensions":[["Service"]],"Metrics":[{"Name":..,"Unit":..},..]}]},
 *    "Service":"order-api", "<Name>": <number> | {"Values":[..],"Counts":[..]}, ..}
 * with at most EMF_MAX_METRICS metrics and EMF_MAX_VALUES values per array
 * (the specification's limits); more is split over several documents.
 * Distributions go as value/count arrays so CloudWatch computes percentiles.
 */
#ifndef ORDER_EMF_H
#define ORDER_EMF_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EMF_MAX_METRICS 100
#define EMF_MAX_VALUES 100

/* Units used here (all from CloudWatch's unit list). */
#define EMF_COUNT "Count"
#define EMF_MS "Milliseconds"
#define EMF_SECONDS "Seconds"

/* One metric of a document: a single value, or a distribution (values[i]
 * seen counts[i] times) when values is set. A distribution with n == 0 (no
 * observation this interval) is left out of the document. */
struct emf_metric {
    const char *name;
    const char *unit;
    double value;
    const double *values;
    const double *counts;
    size_t n;
};

/* Called with each finished document (one line, no newline). */
typedef void (*emf_sink)(const char *line, void *arg);

/* Renders m[0..n) as EMF documents for namespace ns and dimension
 * Service=service, timestamp ts_ms (ms since the epoch), and hands each one
 * to sink. Returns the number of documents, or -1 when memory ran out (the
 * documents not yet handed over are lost, none is half-written). */
int emf_render(const char *ns, const char *service, int64_t ts_ms, const struct emf_metric *m,
               size_t n, emf_sink sink, void *arg);

/* ---- distributions: log-spaced buckets, updated lock-free ---- */

/* Bucket i holds values in [EMF_DIST_MIN * r^(i-1), EMF_DIST_MIN * r^i), r
 * chosen so the buckets between span EMF_DIST_MIN..EMF_DIST_MAX (each about
 * 17% wide: a percentile is off by at most 8.3%); bucket 0 holds everything
 * below EMF_DIST_MIN, the last one everything above EMF_DIST_MAX. At most
 * EMF_MAX_VALUES buckets, so one interval always fits one array. */
#define EMF_DIST_BUCKETS EMF_MAX_VALUES
#define EMF_DIST_MIN 0.1
#define EMF_DIST_MAX 600000.0

struct emf_dist {
    _Atomic uint64_t counts[EMF_DIST_BUCKETS];
};

void emf_dist_observe(struct emf_dist *d, double v);
/* The value reported for bucket i (its geometric middle). */
double emf_dist_value(size_t i);
/* Moves what was observed since the last take into values/counts (room for
 * EMF_DIST_BUCKETS each, non-empty buckets only, ascending); returns how many. */
size_t emf_dist_take(struct emf_dist *d, double *values, double *counts);

/* The increase of a counter since *last (a counter that went backwards
 * counts from 0), and *last = now: what each interval reports. */
double emf_delta(uint64_t now, uint64_t *last);

/* Adds the single value v as metric m[*n] of a collector's array of max
 * (nothing once it is full). */
static inline void emf_put(struct emf_metric *m, size_t max, size_t *n, const char *name,
                           const char *unit, double v)
{
    if (*n < max)
        m[(*n)++] = (struct emf_metric){.name = name, .unit = unit, .value = v};
}

/* ---- the emitting thread ---- */

/* Fills up to max metrics for one interval; whatever the metrics point to
 * must stay valid until the next call. Returns how many. */
typedef size_t (*emf_collect_fn)(struct emf_metric *m, size_t max, void *arg);

/* Starts a thread that every interval_s calls collect and writes the
 * documents with log_raw. 0, or -1 with err. */
int emf_start(const char *ns, const char *service, int64_t interval_s, emf_collect_fn collect,
              void *arg, char *err, size_t errlen);
/* Writes a last interval (what happened since the previous one) and stops
 * the thread; nothing when emf_start was not called. */
void emf_stop(void);

#endif
