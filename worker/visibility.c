/*
 * visibility.c - when the worker extends the visibility of the messages it
 * holds: a queue ordered by when each message's visibility runs out, and the
 * pacing that takes messages off its front.
 *
 * A message is due once less than refresh_ms (half the timeout) of its
 * visibility is left, and must be extended before less than safety_ms (a
 * sixth, at least 1 s) is left. The due messages are spread evenly over the
 * time the earliest of them has before target_ms (midway between the two),
 * so 10,000 messages received in one burst become a steady stream of batches
 * of ten over seconds, not a burst of a thousand calls, and the stream stays
 * spread at the next round. Aiming at the midpoint rather than the safety
 * margin keeps half the window in reserve for slow answers, failed calls and
 * a loaded machine: once the earliest message passes the target, everything
 * due goes out as fast as the outstanding-call limit allows. Partial batches
 * wait (to fill up) while the earliest message is in the first half of its
 * pacing window. Pure: no I/O; the caller passes the clock.
 */
#include <stdint.h>

#include "worker.h"

void vis_policy_init(struct vis_policy *p, int64_t visibility_s)
{
    p->timeout_ms = visibility_s * 1000;
    p->refresh_ms = p->timeout_ms / 2;
    p->safety_ms = p->timeout_ms / 6 > 1000 ? p->timeout_ms / 6 : 1000;
    p->target_ms = (p->refresh_ms + p->safety_ms) / 2;
    p->tick_ms = 100;
}

void vis_queue_insert(struct vis_queue *q, struct held *h)
{
    struct held *after = q->last;
    while (after && after->visible_until_ms > h->visible_until_ms)
        after = after->vis_prev;
    h->vis_prev = after;
    h->vis_next = after ? after->vis_next : q->first;
    if (h->vis_next)
        h->vis_next->vis_prev = h;
    else
        q->last = h;
    if (after)
        after->vis_next = h;
    else
        q->first = h;
    h->in_vis_queue = true;
    q->n++;
}

void vis_queue_remove(struct vis_queue *q, struct held *h)
{
    if (!h->in_vis_queue)
        return;
    if (h->vis_prev)
        h->vis_prev->vis_next = h->vis_next;
    else
        q->first = h->vis_next;
    if (h->vis_next)
        h->vis_next->vis_prev = h->vis_prev;
    else
        q->last = h->vis_prev;
    h->vis_prev = h->vis_next = NULL;
    h->in_vis_queue = false;
    q->n--;
}

static int64_t next_due(const struct vis_queue *q, const struct vis_policy *p)
{
    return q->first ? q->first->visible_until_ms - p->refresh_ms : INT64_MAX;
}

size_t vis_take_due(struct vis_queue *q, const struct vis_policy *p, int64_t now, int calls_free,
                    struct held **out, size_t max, int64_t *next_ms)
{
    size_t due = 0;
    for (struct held *h = q->first; h && h->visible_until_ms - now <= p->refresh_ms;
         h = h->vis_next)
        due++;
    if (due == 0) {
        *next_ms = next_due(q, p);
        return 0;
    }
    int64_t slack = q->first->visible_until_ms - p->target_ms - now;
    size_t want = due;
    if (slack > p->tick_ms) {
        /* an even share of what is due for each tick left before the earliest must be done */
        want = (size_t)(((int64_t)due * p->tick_ms + slack - 1) / slack);
        want = (want + SQS_MAX_BATCH - 1) / SQS_MAX_BATCH * SQS_MAX_BATCH;
        if (want > due) {
            /* less than a batch: wait for more while there is time */
            want = slack > (p->refresh_ms - p->target_ms) / 2 ? 0 : due;
        }
    }
    size_t cap = calls_free > 0 ? (size_t)calls_free * SQS_MAX_BATCH : 0;
    if (want > cap)
        want = cap;
    if (want > max)
        want = max;
    for (size_t i = 0; i < want; i++) {
        out[i] = q->first;
        vis_queue_remove(q, q->first);
    }
    *next_ms = due > want ? now + p->tick_ms : next_due(q, p);
    return want;
}
