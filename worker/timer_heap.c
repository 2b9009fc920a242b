/*
 * timer_heap.c - the worker's payment timers: a binary min-heap of held
 * messages on due_ms.
 *
 * Each message knows its own slot (heap_idx), so a timer can be taken out of
 * the middle in O(log n) when its order stops waiting (a provider answered
 * early, the worker stops). Pure: no I/O, no clock.
 */
#include <stdlib.h>

#include "worker.h"

static void put(struct timer_heap *t, size_t i, struct held *h)
{
    t->v[i] = h;
    h->heap_idx = i;
}

static void sift_up(struct timer_heap *t, size_t i)
{
    struct held *h = t->v[i];
    while (i > 0 && t->v[(i - 1) / 2]->due_ms > h->due_ms) {
        put(t, i, t->v[(i - 1) / 2]);
        i = (i - 1) / 2;
    }
    put(t, i, h);
}

static void sift_down(struct timer_heap *t, size_t i)
{
    struct held *h = t->v[i];
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = l;
        if (l >= t->n)
            break;
        if (r < t->n && t->v[r]->due_ms < t->v[l]->due_ms)
            m = r;
        if (t->v[m]->due_ms >= h->due_ms)
            break;
        put(t, i, t->v[m]);
        i = m;
    }
    put(t, i, h);
}

int timer_heap_push(struct timer_heap *t, struct held *h)
{
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 256;
        struct held **v = realloc(t->v, cap * sizeof(*v));
        if (!v)
            return -1;
        t->v = v;
        t->cap = cap;
    }
    t->v[t->n] = h;
    sift_up(t, t->n++);
    return 0;
}

struct held *timer_heap_peek(const struct timer_heap *t)
{
    return t->n ? t->v[0] : NULL;
}

void timer_heap_remove(struct timer_heap *t, struct held *h)
{
    size_t i = h->heap_idx;
    struct held *last = t->v[--t->n];
    if (i == t->n)
        return;
    put(t, i, last);
    if (i > 0 && t->v[(i - 1) / 2]->due_ms > last->due_ms)
        sift_up(t, i);
    else
        sift_down(t, i);
}

struct held *timer_heap_pop(struct timer_heap *t)
{
    struct held *top = timer_heap_peek(t);
    if (top)
        timer_heap_remove(t, top);
    return top;
}

void timer_heap_free(struct timer_heap *t)
{
    free(t->v);
    t->v = NULL;
    t->n = t->cap = 0;
}
