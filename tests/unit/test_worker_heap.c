/*
 * test_worker_heap.c - the worker's payment timer heap (worker/timer_heap.c):
 * timers come out earliest first, every message always knows its own slot,
 * and one taken out of the middle leaves the others in order.
 *
 * The worker's pure files are compiled into the test directly: they have no
 * I/O and no state of the loop, so nothing else of the worker is needed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "../../worker/timer_heap.c"

#define N 2000

static struct held items[N];

/* Deterministic spread of due times, with many equal ones. */
static int64_t due_of(size_t i)
{
    return (int64_t)((i * 7919u) % 613u);
}

static void assert_slots(const struct timer_heap *t)
{
    for (size_t i = 0; i < t->n; i++) {
        assert_int_equal(t->v[i]->heap_idx, i);
        if (i > 0)
            assert_true(t->v[(i - 1) / 2]->due_ms <= t->v[i]->due_ms);
    }
}

/* items[0..N) pushed, due in a scrambled order */
static void push_all(struct timer_heap *t)
{
    for (size_t i = 0; i < N; i++) {
        memset(&items[i], 0, sizeof(items[i]));
        items[i].due_ms = due_of(i);
        assert_int_equal(timer_heap_push(t, &items[i]), 0);
    }
}

static void test_pops_earliest_first(void **state)
{
    (void)state;
    struct timer_heap t = {0};
    push_all(&t);
    assert_int_equal(t.n, N);
    assert_slots(&t);
    int64_t last = INT64_MIN;
    size_t seen = 0;
    struct held *h;
    while ((h = timer_heap_pop(&t))) {
        assert_true(h->due_ms >= last);
        last = h->due_ms;
        seen++;
        if (seen % 97 == 0)
            assert_slots(&t);
    }
    assert_int_equal(seen, N);
    timer_heap_free(&t);
}

static void test_empty_heap(void **state)
{
    (void)state;
    struct timer_heap t = {0};
    assert_null(timer_heap_peek(&t));
    assert_null(timer_heap_pop(&t));
    struct held one = {.due_ms = 5};
    assert_int_equal(timer_heap_push(&t, &one), 0);
    assert_ptr_equal(timer_heap_peek(&t), &one);
    assert_ptr_equal(timer_heap_pop(&t), &one);
    assert_null(timer_heap_pop(&t));
    timer_heap_free(&t);
    assert_null(t.v);
    assert_int_equal(t.cap, 0);
}

static void test_remove_from_the_middle(void **state)
{
    (void)state;
    struct timer_heap t = {0};
    push_all(&t);
    /* every third one stops waiting (a provider answered early, say) */
    for (size_t i = 0; i < N; i += 3) {
        timer_heap_remove(&t, &items[i]);
        items[i].message_id[0] = 'x';
    }
    assert_slots(&t);
    int64_t last = INT64_MIN;
    size_t seen = 0;
    struct held *h;
    while ((h = timer_heap_pop(&t))) {
        assert_int_not_equal(h->message_id[0], 'x');
        assert_true(h->due_ms >= last);
        last = h->due_ms;
        seen++;
    }
    assert_int_equal(seen, N - (N + 2) / 3);
    timer_heap_free(&t);
}

static void test_remove_last_and_only(void **state)
{
    (void)state;
    struct timer_heap t = {0};
    struct held a = {.due_ms = 1}, b = {.due_ms = 2};
    assert_int_equal(timer_heap_push(&t, &a), 0);
    assert_int_equal(timer_heap_push(&t, &b), 0);
    timer_heap_remove(&t, &b); /* the last slot */
    assert_int_equal(t.n, 1);
    assert_ptr_equal(timer_heap_peek(&t), &a);
    timer_heap_remove(&t, &a); /* the only one */
    assert_int_equal(t.n, 0);
    assert_null(timer_heap_peek(&t));
    timer_heap_free(&t);
}

static void test_reschedule_after_pop(void **state)
{
    (void)state;
    /* a failed payment statement puts its timers back at a later time */
    struct timer_heap t = {0};
    struct held a = {.due_ms = 10}, b = {.due_ms = 20}, c = {.due_ms = 30};
    timer_heap_push(&t, &a);
    timer_heap_push(&t, &b);
    timer_heap_push(&t, &c);
    struct held *first = timer_heap_pop(&t);
    assert_ptr_equal(first, &a);
    a.due_ms = 25;
    assert_int_equal(timer_heap_push(&t, &a), 0);
    assert_ptr_equal(timer_heap_pop(&t), &b);
    assert_ptr_equal(timer_heap_pop(&t), &a);
    assert_ptr_equal(timer_heap_pop(&t), &c);
    timer_heap_free(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pops_earliest_first),    cmocka_unit_test(test_empty_heap),
        cmocka_unit_test(test_remove_from_the_middle), cmocka_unit_test(test_remove_last_and_only),
        cmocka_unit_test(test_reschedule_after_pop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
