/*
 * emf.c - CloudWatch Embedded Metric Format: renders metrics as EMF
 * documents, keeps lock-free distributions, and runs the thread that writes
 * one aggregated line per interval through log_raw (so it never interleaves
 * with a log line).
 *
 * A document carries at most EMF_MAX_METRICS metrics and arrays of at most
 * EMF_MAX_VALUES values. Longer input is split: document k carries the k-th
 * slice of every distribution that has one and, in the first round, every
 * single value; a round with more than EMF_MAX_METRICS metrics becomes
 * several documents. A metric name never appears twice in one document.
 */
#include "emf.h"

#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "util.h"

/* ---- rendering ---- */

static size_t slices(const struct emf_metric *m)
{
    if (!m->values)
        return 1;
    return (m->n + EMF_MAX_VALUES - 1) / EMF_MAX_VALUES;
}

static json_t *number(double v)
{
    if (!isfinite(v))
        v = 0;
    if (v == floor(v) && fabs(v) < 9e15)
        return json_integer((json_int_t)v);
    return json_real(v);
}

/* The value of m in round r: a number, or {"Values":[..],"Counts":[..]}. */
static json_t *metric_value(const struct emf_metric *m, size_t r)
{
    if (!m->values)
        return number(m->value);
    size_t from = r * EMF_MAX_VALUES;
    size_t to = from + EMF_MAX_VALUES < m->n ? from + EMF_MAX_VALUES : m->n;
    json_t *o = json_object(), *vals = json_array(), *cnts = json_array();
    bool ok = o && vals && cnts;
    for (size_t i = from; ok && i < to; i++) {
        ok = json_array_append_new(vals, number(m->values[i])) == 0 &&
             json_array_append_new(cnts, number(m->counts ? m->counts[i] : 1)) == 0;
    }
    ok = ok && json_object_set(o, "Values", vals) == 0 && json_object_set(o, "Counts", cnts) == 0;
    json_decref(vals);
    json_decref(cnts);
    if (!ok) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* One document of the metrics idx[0..k) in round r; NULL when memory ran out. */
static char *document(const char *ns, const char *service, int64_t ts_ms,
                      const struct emf_metric *m, const size_t *idx, size_t k, size_t r)
{
    json_t *root = json_object();
    json_t *aws = json_object();
    json_t *dirs = json_array();
    json_t *dir = json_object();
    json_t *dims = json_pack("[[s]]", "Service");
    json_t *defs = json_array();
    bool ok = root && aws && dirs && dir && dims && defs;

    ok = ok && json_object_set_new(dir, "Namespace", json_string(ns)) == 0;
    ok = ok && json_object_set(dir, "Dimensions", dims) == 0;
    ok = ok && json_object_set(dir, "Metrics", defs) == 0;
    ok = ok && json_array_append(dirs, dir) == 0;
    ok = ok && json_object_set_new(aws, "Timestamp", json_integer(ts_ms)) == 0;
    ok = ok && json_object_set(aws, "CloudWatchMetrics", dirs) == 0;
    ok = ok && json_object_set(root, "_aws", aws) == 0;
    ok = ok && json_object_set_new(root, "Service", json_string(service)) == 0;
    for (size_t i = 0; ok && i < k; i++) {
        const struct emf_metric *e = &m[idx[i]];
        json_t *def = json_pack("{s:s, s:s}", "Name", e->name, "Unit", e->unit);
        ok = def && json_array_append_new(defs, def) == 0;
        ok = ok && json_object_set_new(root, e->name, metric_value(e, r)) == 0;
    }
    char *s =
        ok ? util_json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6))
           : NULL;
    json_decref(root);
    json_decref(aws);
    json_decref(dirs);
    json_decref(dir);
    json_decref(dims);
    json_decref(defs);
    return s;
}

int emf_render(const char *ns, const char *service, int64_t ts_ms, const struct emf_metric *m,
               size_t n, emf_sink sink, void *arg)
{
    size_t rounds = 0;
    for (size_t i = 0; i < n; i++)
        if (slices(&m[i]) > rounds)
            rounds = slices(&m[i]);
    size_t *idx = n ? malloc(n * sizeof(*idx)) : NULL;
    if (n && !idx)
        return -1;
    int docs = 0;
    for (size_t r = 0; r < rounds; r++) {
        size_t k = 0;
        for (size_t i = 0; i <= n; i++) {
            if (i < n && slices(&m[i]) > r)
                idx[k++] = i;
            if (k == EMF_MAX_METRICS || (i == n && k > 0)) {
                char *line = document(ns, service, ts_ms, m, idx, k, r);
                if (!line) {
                    free(idx);
                    return -1;
                }
                sink(line, arg);
                free(line);
                docs++;
                k = 0;
            }
        }
    }
    free(idx);
    return docs;
}

/* ---- distributions ---- */

/* log of the ratio between two bucket bounds */
static double log_ratio(void)
{
    return log(EMF_DIST_MAX / EMF_DIST_MIN) / (EMF_DIST_BUCKETS - 2);
}

void emf_dist_observe(struct emf_dist *d, double v)
{
    size_t i;
    if (!(v >= EMF_DIST_MIN)) { /* NaN and negatives land in bucket 0 too */
        i = 0;
    } else if (v >= EMF_DIST_MAX) {
        i = EMF_DIST_BUCKETS - 1;
    } else {
        double b = floor(log(v / EMF_DIST_MIN) / log_ratio());
        i = 1 + (b < 0 ? 0 : (size_t)b);
        if (i > EMF_DIST_BUCKETS - 2)
            i = EMF_DIST_BUCKETS - 2;
    }
    atomic_fetch_add_explicit(&d->counts[i], 1, memory_order_relaxed);
}

double emf_dist_value(size_t i)
{
    if (i == 0)
        return EMF_DIST_MIN / 2;
    if (i >= EMF_DIST_BUCKETS - 1)
        return EMF_DIST_MAX;
    return EMF_DIST_MIN * exp(log_ratio() * ((double)i - 0.5));
}

size_t emf_dist_take(struct emf_dist *d, double *values, double *counts)
{
    size_t n = 0;
    for (size_t i = 0; i < EMF_DIST_BUCKETS; i++) {
        uint64_t c = atomic_exchange_explicit(&d->counts[i], 0, memory_order_relaxed);
        if (!c)
            continue;
        values[n] = emf_dist_value(i);
        counts[n] = (double)c;
        n++;
    }
    return n;
}

double emf_delta(uint64_t now, uint64_t *last)
{
    uint64_t d = now >= *last ? now - *last : now;
    *last = now;
    return (double)d;
}

/* ---- the thread ---- */

static struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    pthread_t thread;
    bool running, stopping;
    const char *ns, *service;
    int64_t interval_s;
    emf_collect_fn collect;
    void *arg;
    struct emf_metric m[4 * EMF_MAX_METRICS];
} E = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void write_line(const char *line, void *arg)
{
    (void)arg;
    log_raw(line);
}

static void emit(void)
{
    size_t n = E.collect(E.m, sizeof(E.m) / sizeof(E.m[0]), E.arg);
    if (emf_render(E.ns, E.service, util_wall_ms(), E.m, n, write_line, NULL) < 0)
        log_warn(NULL, "metrics: out of memory writing this interval's EMF line");
}

static void *emf_main(void *arg)
{
    (void)arg;
    struct timespec due;
    clock_gettime(CLOCK_MONOTONIC, &due);
    pthread_mutex_lock(&E.lock);
    while (!E.stopping) {
        due.tv_sec += E.interval_s;
        while (!E.stopping && pthread_cond_timedwait(&E.cond, &E.lock, &due) == 0)
            ;
        pthread_mutex_unlock(&E.lock);
        emit(); /* the last one at the stop: what happened since the previous line */
        pthread_mutex_lock(&E.lock);
    }
    pthread_mutex_unlock(&E.lock);
    return NULL;
}

int emf_start(const char *ns, const char *service, int64_t interval_s, emf_collect_fn collect,
              void *arg, char *err, size_t errlen)
{
    pthread_condattr_t ca;
    if (pthread_condattr_init(&ca) != 0 || pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) != 0 ||
        pthread_cond_init(&E.cond, &ca) != 0) {
        snprintf(err, errlen, "cannot create the metrics timer");
        return -1;
    }
    pthread_condattr_destroy(&ca);
    E.ns = ns;
    E.service = service;
    E.interval_s = interval_s;
    E.collect = collect;
    E.arg = arg;
    E.stopping = false;
    if (pthread_create(&E.thread, NULL, emf_main, NULL) != 0) {
        pthread_cond_destroy(&E.cond);
        snprintf(err, errlen, "cannot start the metrics thread");
        return -1;
    }
    E.running = true;
    return 0;
}

void emf_stop(void)
{
    if (!E.running)
        return;
    pthread_mutex_lock(&E.lock);
    E.stopping = true;
    pthread_cond_signal(&E.cond);
    pthread_mutex_unlock(&E.lock);
    pthread_join(E.thread, NULL);
    pthread_cond_destroy(&E.cond);
    E.running = false;
}
