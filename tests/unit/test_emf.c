/*
 * test_emf.c - the CloudWatch Embedded Metric Format writer: the document's
 * shape (the _aws object, namespace, the Service dimension, units, values at
 * the top level), distributions as Values/Counts arrays, counters as
 * deltas, the split at 100 metrics and 100 values, and out-of-memory paths.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc_fail.h"
#include "emf.h"

struct docs {
    json_t *d[16];
    size_t n;
};

static void collect(const char *line, void *arg)
{
    struct docs *ds = arg;
    assert_null(strchr(line, '\n')); /* one line each */
    json_error_t e;
    json_t *j = json_loads(line, JSON_REJECT_DUPLICATES, &e);
    assert_non_null(j);
    assert_true(ds->n < 16);
    ds->d[ds->n++] = j;
}

static void docs_free(struct docs *ds)
{
    for (size_t i = 0; i < ds->n; i++)
        json_decref(ds->d[i]);
    ds->n = 0;
}

/* Checks one document against the specification and returns its metric
 * definitions (borrowed). */
static json_t *check_doc(json_t *doc, const char *ns, const char *service, int64_t ts)
{
    json_t *aws = json_object_get(doc, "_aws");
    assert_true(json_is_object(aws));
    assert_int_equal(json_integer_value(json_object_get(aws, "Timestamp")), ts);
    json_t *dirs = json_object_get(aws, "CloudWatchMetrics");
    assert_true(json_is_array(dirs));
    assert_int_equal(json_array_size(dirs), 1);
    json_t *dir = json_array_get(dirs, 0);
    assert_string_equal(json_string_value(json_object_get(dir, "Namespace")), ns);
    json_t *dims = json_object_get(dir, "Dimensions");
    assert_int_equal(json_array_size(dims), 1);
    assert_int_equal(json_array_size(json_array_get(dims, 0)), 1);
    assert_string_equal(json_string_value(json_array_get(json_array_get(dims, 0), 0)), "Service");
    assert_string_equal(json_string_value(json_object_get(doc, "Service")), service);
    json_t *defs = json_object_get(dir, "Metrics");
    assert_true(json_array_size(defs) >= 1);
    assert_true(json_array_size(defs) <= EMF_MAX_METRICS);
    size_t i;
    json_t *def;
    json_array_foreach(defs, i, def)
    {
        const char *name = json_string_value(json_object_get(def, "Name"));
        assert_non_null(name);
        assert_non_null(json_string_value(json_object_get(def, "Unit")));
        json_t *v = json_object_get(doc, name); /* every metric has its value at the top */
        assert_true(json_is_number(v) || json_is_object(v));
        if (json_is_object(v)) {
            json_t *vals = json_object_get(v, "Values"), *cnts = json_object_get(v, "Counts");
            assert_true(json_array_size(vals) >= 1);
            assert_true(json_array_size(vals) <= EMF_MAX_VALUES);
            assert_int_equal(json_array_size(vals), json_array_size(cnts));
        }
    }
    return defs;
}

static void test_document_shape(void **s)
{
    (void)s;
    struct docs ds = {0};
    const double vals[] = {1.5, 20, 300};
    const double cnts[] = {3, 1, 2};
    struct emf_metric m[] = {
        {.name = "OrdersAccepted", .unit = EMF_COUNT, .value = 42},
        {.name = "OutboxOldestAge", .unit = EMF_SECONDS, .value = 1.25},
        {.name = "HttpLatency", .unit = EMF_MS, .values = vals, .counts = cnts, .n = 3},
        {.name = "PaymentLatency", .unit = EMF_MS, .values = vals, .counts = cnts, .n = 0},
    };
    assert_int_equal(emf_render("OrderService", "order-api", 1700000000123, m, 4, collect, &ds), 1);
    assert_int_equal(ds.n, 1);
    json_t *doc = ds.d[0];
    json_t *defs = check_doc(doc, "OrderService", "order-api", 1700000000123);
    /* the empty distribution is left out: an empty array is not a value */
    assert_int_equal(json_array_size(defs), 3);
    assert_null(json_object_get(doc, "PaymentLatency"));
    assert_string_equal(json_string_value(json_object_get(json_array_get(defs, 0), "Unit")),
                        "Count");
    assert_string_equal(json_string_value(json_object_get(json_array_get(defs, 2), "Unit")),
                        "Milliseconds");
    assert_int_equal(json_integer_value(json_object_get(doc, "OrdersAccepted")), 42);
    assert_true(fabs(json_number_value(json_object_get(doc, "OutboxOldestAge")) - 1.25) < 1e-9);
    json_t *lat = json_object_get(doc, "HttpLatency");
    json_t *v = json_object_get(lat, "Values"), *c = json_object_get(lat, "Counts");
    assert_int_equal(json_array_size(v), 3);
    assert_true(fabs(json_number_value(json_array_get(v, 0)) - 1.5) < 1e-9);
    assert_int_equal(json_number_value(json_array_get(v, 2)), 300);
    assert_int_equal(json_number_value(json_array_get(c, 0)), 3);
    assert_int_equal(json_number_value(json_array_get(c, 2)), 2);
    assert_int_equal(json_object_size(lat), 2); /* Values and Counts only */
    docs_free(&ds);
}

static void test_namespace_and_service_are_the_callers(void **s)
{
    (void)s;
    struct docs ds = {0};
    struct emf_metric m = {.name = "InFlight", .unit = EMF_COUNT, .value = 7};
    assert_int_equal(emf_render("Team/Orders-Staging", "order-worker", 5, &m, 1, collect, &ds), 1);
    check_doc(ds.d[0], "Team/Orders-Staging", "order-worker", 5);
    docs_free(&ds);
    /* nothing to say: no document at all */
    assert_int_equal(emf_render("OrderService", "order-worker", 5, NULL, 0, collect, &ds), 0);
    assert_int_equal(ds.n, 0);
}

static void test_split_at_100_metrics(void **s)
{
    (void)s;
    struct docs ds = {0};
    enum { N = 250 };
    static char names[N][16];
    static struct emf_metric m[N];
    for (int i = 0; i < N; i++) {
        snprintf(names[i], sizeof(names[i]), "M%03d", i);
        m[i] = (struct emf_metric){.name = names[i], .unit = EMF_COUNT, .value = i};
    }
    assert_int_equal(emf_render("OrderService", "order-api", 1, m, N, collect, &ds), 3);
    size_t seen = 0;
    for (size_t d = 0; d < ds.n; d++) {
        json_t *defs = check_doc(ds.d[d], "OrderService", "order-api", 1);
        assert_int_equal(json_array_size(defs), d < 2 ? 100 : 50);
        size_t i;
        json_t *def;
        json_array_foreach(defs, i, def)
        {
            const char *name = json_string_value(json_object_get(def, "Name"));
            assert_string_equal(name, names[seen]);
            assert_int_equal(json_integer_value(json_object_get(ds.d[d], name)), (int)seen);
            seen++;
        }
    }
    assert_int_equal(seen, N);
    docs_free(&ds);
}

static void test_split_at_100_values(void **s)
{
    (void)s;
    struct docs ds = {0};
    double vals[230], cnts[230];
    for (int i = 0; i < 230; i++) {
        vals[i] = i + 1;
        cnts[i] = 2;
    }
    struct emf_metric m[] = {
        {.name = "HttpLatency", .unit = EMF_MS, .values = vals, .counts = cnts, .n = 230},
        {.name = "OrdersAccepted", .unit = EMF_COUNT, .value = 3},
    };
    assert_int_equal(emf_render("OrderService", "order-api", 1, m, 2, collect, &ds), 3);
    double total = 0, count = 0;
    for (size_t d = 0; d < 3; d++) {
        json_t *defs = check_doc(ds.d[d], "OrderService", "order-api", 1);
        /* the single value goes once, never twice (it would be counted twice) */
        assert_int_equal(json_array_size(defs), d == 0 ? 2 : 1);
        json_t *v = json_object_get(json_object_get(ds.d[d], "HttpLatency"), "Values");
        json_t *c = json_object_get(json_object_get(ds.d[d], "HttpLatency"), "Counts");
        assert_int_equal(json_array_size(v), d < 2 ? 100 : 30);
        for (size_t i = 0; i < json_array_size(v); i++) {
            total += json_number_value(json_array_get(v, i));
            count += json_number_value(json_array_get(c, i));
        }
    }
    assert_true(total == 230 * 231 / 2);
    assert_true(count == 460);
    docs_free(&ds);
}

static void test_counters_as_deltas(void **s)
{
    (void)s;
    uint64_t last = 0;
    assert_true(emf_delta(10, &last) == 10);
    assert_true(emf_delta(25, &last) == 15);
    assert_true(emf_delta(25, &last) == 0);
    assert_int_equal(last, 25);
    assert_true(emf_delta(4, &last) == 4); /* a counter that restarted counts from 0 */
}

static void test_distribution_buckets(void **s)
{
    (void)s;
    static struct emf_dist d;
    double v[EMF_DIST_BUCKETS], c[EMF_DIST_BUCKETS];
    assert_int_equal(emf_dist_take(&d, v, c), 0);
    for (int i = 0; i < 99; i++)
        emf_dist_observe(&d, 2000);
    emf_dist_observe(&d, 5);
    emf_dist_observe(&d, 0);
    emf_dist_observe(&d, -3);
    emf_dist_observe(&d, 1e9);
    size_t n = emf_dist_take(&d, v, c);
    assert_int_equal(n, 4);
    /* ascending, each reported value within 8.3% of what was observed */
    assert_true(v[0] < EMF_DIST_MIN && c[0] == 2);
    assert_true(fabs(v[1] - 5) / 5 < 0.083 && c[1] == 1);
    assert_true(fabs(v[2] - 2000) / 2000 < 0.083 && c[2] == 99);
    assert_true(v[3] == EMF_DIST_MAX && c[3] == 1);
    /* taken: the next interval starts empty */
    assert_int_equal(emf_dist_take(&d, v, c), 0);
    /* every bucket's value lies in its own bucket, ascending */
    for (size_t i = 1; i < EMF_DIST_BUCKETS; i++)
        assert_true(emf_dist_value(i) > emf_dist_value(i - 1));
    for (size_t i = 0; i < EMF_DIST_BUCKETS; i++) {
        emf_dist_observe(&d, emf_dist_value(i));
        assert_int_equal(emf_dist_take(&d, v, c), 1);
        assert_true(v[0] == emf_dist_value(i));
    }
}

/* ---- out of memory: every allocation of a render may fail ---- */

struct seen {
    int lines;
    bool complete; /* the line has both metrics and ends its object */
};

/* No allocation here: only emf_render's own can fail. */
static void look(const char *line, void *arg)
{
    struct seen *s = arg;
    size_t n = strlen(line);
    s->lines++;
    s->complete = strstr(line, "\"OrdersAccepted\":1") && strstr(line, "\"Counts\":[5,6]") &&
                  n > 0 && line[n - 1] == '}';
}

static int render_once(void *arg)
{
    (void)arg;
    struct seen s = {0};
    const double vals[] = {1, 2};
    const double cnts[] = {5, 6};
    struct emf_metric m[] = {
        {.name = "OrdersAccepted", .unit = EMF_COUNT, .value = 1},
        {.name = "HttpLatency", .unit = EMF_MS, .values = vals, .counts = cnts, .n = 2},
    };
    int r = emf_render("OrderService", "order-api", 1, m, 2, look, &s);
    if (r < 0)
        return s.lines == 0 ? ALLOC_FAIL_ERROR : ALLOC_FAIL_WRONG;
    return (r == 1 && s.lines == 1 && s.complete) ? ALLOC_FAIL_OK : ALLOC_FAIL_WRONG;
}

static void test_render_out_of_memory(void **s)
{
    (void)s;
    struct alloc_fail_walk w;
    alloc_fail_jansson(true);
    int rc = alloc_fail_walk(render_once, NULL, 500, &w);
    alloc_fail_jansson(false);
    if (rc != 0)
        fail_msg("%s", w.why);
    assert_true(w.runs > 5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_document_shape),
        cmocka_unit_test(test_namespace_and_service_are_the_callers),
        cmocka_unit_test(test_split_at_100_metrics),
        cmocka_unit_test(test_split_at_100_values),
        cmocka_unit_test(test_counters_as_deltas),
        cmocka_unit_test(test_distribution_buckets),
        cmocka_unit_test(test_render_out_of_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
