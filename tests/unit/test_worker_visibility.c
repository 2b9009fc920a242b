/*
 * test_worker_visibility.c - when the worker extends whose visibility
 * (worker/visibility.c): the queue stays ordered by deadline, nothing is due
 * early, a burst of 10,000 messages becomes a paced stream of full batches
 * that all go out before the safety margin, and partial batches wait while
 * there is time.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../worker/visibility.c"

#define N 10000

static struct held msgs[N];

static void test_policy(void **state)
{
    (void)state;
    struct vis_policy p;
    vis_policy_init(&p, 30);
    assert_int_equal(p.timeout_ms, 30000);
    assert_int_equal(p.refresh_ms, 15000);
    assert_int_equal(p.safety_ms, 5000);
    assert_int_equal(p.target_ms, 10000);
    vis_policy_init(&p, 5); /* the smallest WORKER_VISIBILITY_TIMEOUT_S */
    assert_int_equal(p.safety_ms, 1000);
    assert_true(p.refresh_ms > p.target_ms && p.target_ms > p.safety_ms);
    assert_true(p.refresh_ms - p.safety_ms > p.tick_ms);
}

static void test_queue_order_and_removal(void **state)
{
    (void)state;
    struct vis_queue q = {0};
    static const int64_t until[] = {50, 10, 30, 30, 70, 20};
    struct held h[6];
    memset(h, 0, sizeof(h));
    for (size_t i = 0; i < 6; i++) {
        h[i].visible_until_ms = until[i];
        vis_queue_insert(&q, &h[i]);
        assert_true(h[i].in_vis_queue);
    }
    assert_int_equal(q.n, 6);
    int64_t last = INT64_MIN;
    size_t n = 0;
    for (struct held *x = q.first; x; x = x->vis_next, n++) {
        assert_true(x->visible_until_ms >= last);
        last = x->visible_until_ms;
        if (x->vis_next)
            assert_ptr_equal(x->vis_next->vis_prev, x);
    }
    assert_int_equal(n, 6);
    assert_ptr_equal(q.first, &h[1]);
    assert_ptr_equal(q.last, &h[4]);
    vis_queue_remove(&q, &h[1]); /* first */
    vis_queue_remove(&q, &h[4]); /* last */
    vis_queue_remove(&q, &h[2]); /* middle */
    vis_queue_remove(&q, &h[2]); /* twice: no effect */
    assert_false(h[2].in_vis_queue);
    assert_int_equal(q.n, 3);
    assert_ptr_equal(q.first, &h[5]);
    assert_ptr_equal(q.last, &h[0]);
    assert_ptr_equal(q.first->vis_next, &h[3]);
    assert_null(q.first->vis_prev);
    assert_null(q.last->vis_next);
}

static void test_nothing_due_says_when(void **state)
{
    (void)state;
    struct vis_policy p;
    struct vis_queue q = {0};
    struct held h = {.visible_until_ms = 100000}, *out[10];
    int64_t next;
    vis_policy_init(&p, 30);
    assert_int_equal(vis_take_due(&q, &p, 0, 32, out, 10, &next), 0);
    assert_true(next == INT64_MAX);
    vis_queue_insert(&q, &h);
    assert_int_equal(vis_take_due(&q, &p, 0, 32, out, 10, &next), 0);
    assert_int_equal(next, 100000 - p.refresh_ms);
    assert_int_equal(q.n, 1);
}

/* How many were due at now before n of them were taken (and put back later). */
static size_t due_before(const struct vis_queue *q, const struct vis_policy *p, int64_t now,
                         size_t taken)
{
    size_t due = taken;
    for (const struct held *h = q->first; h && h->visible_until_ms - now <= p->refresh_ms;
         h = h->vis_next)
        due++;
    return due;
}

/* 10,000 messages received at once; every 100 ms the loop takes what is due
 * and "extends" it (the answer comes 50 ms later). Each must be extended
 * before it has less than the safety margin left, in batches of ten, never
 * more than 32 calls out, and spread over many ticks rather than one. */
static void test_burst_is_paced_and_in_time(void **state)
{
    (void)state;
    struct vis_policy p;
    struct vis_queue q = {0};
    static struct held *out[32 * SQS_MAX_BATCH];
    vis_policy_init(&p, 30);
    memset(msgs, 0, sizeof(msgs));
    for (size_t i = 0; i < N; i++) {
        msgs[i].visible_until_ms = 30000;
        vis_queue_insert(&q, &msgs[i]);
    }
    size_t extended = 0, ticks_sending = 0, most = 0, rounds = 0;
    for (int64_t now = 0; now <= 60000; now += p.tick_ms) {
        int64_t next;
        size_t n = vis_take_due(&q, &p, now, 32, out, sizeof(out) / sizeof(out[0]), &next);
        assert_true(next > now);
        if (!n)
            continue;
        ticks_sending++;
        if (n > most)
            most = n;
        /* whole batches of ten while more are due than are taken */
        if (due_before(&q, &p, now, n) > n)
            assert_int_equal(n % SQS_MAX_BATCH, 0);
        for (size_t i = 0; i < n; i++) {
            /* due, and still well inside its visibility */
            assert_true(out[i]->visible_until_ms - now <= p.refresh_ms);
            assert_true(out[i]->visible_until_ms - now >= p.safety_ms);
            out[i]->visible_until_ms = now + p.timeout_ms;
            out[i]->ext_failures++;
            vis_queue_insert(&q, out[i]);
        }
        extended += n;
        rounds = extended / N;
    }
    assert_true(rounds >= 3); /* each message extended again and again over 60 s */
    for (size_t i = 0; i < N; i++)
        assert_true(msgs[i].ext_failures >= 3);
    /* spread: at most 32 calls of ten a tick, over 25+ ticks per round */
    printf("burst: %zu messages extended, at most %zu in one tick, %zu ticks sending\n", extended,
           most, ticks_sending);
    /* spread: an even share of 10,000 over the 5 s to the target is 200 a tick */
    assert_true(most <= 25 * SQS_MAX_BATCH);
    assert_true(ticks_sending >= 40 * 3);
}

static void test_partial_batch_waits_while_there_is_time(void **state)
{
    (void)state;
    struct vis_policy p;
    struct vis_queue q = {0};
    struct held h[3], *out[10];
    int64_t next;
    vis_policy_init(&p, 30);
    memset(h, 0, sizeof(h));
    for (size_t i = 0; i < 3; i++) {
        h[i].visible_until_ms = 30000;
        vis_queue_insert(&q, &h[i]);
    }
    /* just due: three messages, five seconds to the target: wait for more */
    assert_int_equal(vis_take_due(&q, &p, 15000, 32, out, 10, &next), 0);
    assert_int_equal(next, 15000 + p.tick_ms);
    /* past half of the pacing window: they go, in one call */
    int64_t late = 30000 - p.target_ms - (p.refresh_ms - p.target_ms) / 2;
    assert_int_equal(vis_take_due(&q, &p, late, 32, out, 10, &next), 3);
    assert_int_equal(q.n, 0);
}

static void test_limits(void **state)
{
    (void)state;
    struct vis_policy p;
    struct vis_queue q = {0};
    static struct held h[100];
    struct held *out[100];
    int64_t next;
    vis_policy_init(&p, 30);
    memset(h, 0, sizeof(h));
    for (size_t i = 0; i < 100; i++) {
        h[i].visible_until_ms = 10000 + (int64_t)i;
        vis_queue_insert(&q, &h[i]);
    }
    /* past the target: everything due goes, up to the calls free and max */
    assert_int_equal(vis_take_due(&q, &p, 5000, 0, out, 100, &next), 0);
    assert_int_equal(next, 5000 + p.tick_ms);
    assert_int_equal(vis_take_due(&q, &p, 5000, 3, out, 100, &next), 30);
    assert_int_equal(vis_take_due(&q, &p, 5000, 32, out, 25, &next), 25);
    assert_ptr_equal(out[0], &h[30]); /* earliest first */
    assert_int_equal(vis_take_due(&q, &p, 5000, 32, out, 100, &next), 45);
    assert_int_equal(q.n, 0);
    assert_true(next == INT64_MAX);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_policy),
        cmocka_unit_test(test_queue_order_and_removal),
        cmocka_unit_test(test_nothing_due_says_when),
        cmocka_unit_test(test_burst_is_paced_and_in_time),
        cmocka_unit_test(test_partial_batch_waits_while_there_is_time),
        cmocka_unit_test(test_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
