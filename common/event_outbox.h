/*
 * event_outbox.h - order events for EventBridge, written in the transaction
 * of the state change they announce (migration 008), and what a PutEvents
 * answer means for each written row.
 *
 * Writing: EVENT_OUTBOX_APPEND is a member of a data-modifying WITH that
 * appends one event per row of another member of the same statement, so the
 * event commits or rolls back with the change. That member must return the
 * order row as changed, whole, in a column named o (RETURNING o, the table's
 * alias, or RETURNING orders AS o): a statement's members all read the
 * snapshot from before it, so the event is rendered from what the change
 * returned, never re-read. The Detail is rendered in SQL (order_event_detail,
 * migration 008) because two of the writers hold only order ids.
 *
 *   " ev_out AS (" EVENT_OUTBOX_APPEND("order.failed", "failed", EVENT_OUTBOX_TRACE_RECEIVED) ")"
 *
 * Each event gets a random uuid as its id, which is also Detail.id: the id
 * consumers deduplicate on (delivery is at least once).
 *
 * Reading the answer: event_outbox_outcomes turns one PutEvents call (its
 * per-entry result, or the failure of the whole call) into what becomes of
 * each row: sent, retried later, or parked for good. Pure, no I/O.
 */
#ifndef ORDER_EVENT_OUTBOX_H
#define ORDER_EVENT_OUTBOX_H

#include <stddef.h>

#include "aws_error.h"
#include "events_codec.h"

/* The trace header: the one the order was created with (its RECEIVED step).
 * For statements that also write that step (the order insert) it is not
 * visible yet: pass the SQL expression that holds it instead, over s (the
 * source member's row), e.g. "nullif(s.trace_header, '')". */
#define EVENT_OUTBOX_TRACE_RECEIVED "order_trace_header((s.o).id)"

/* INSERT ... appending a detail_type event (a string literal, "order.xxx")
 * for every row of the member src; trace is an SQL expression over s.
 * OFFSET 0 keeps the subquery from being merged into the outer query, so
 * gen_random_uuid() runs once per row and the row id equals Detail.id. */
#define EVENT_OUTBOX_APPEND(detail_type, src, trace)                                               \
    "INSERT INTO event_outbox (id, order_id, detail_type, detail, trace_header)"                   \
    " SELECT e.id, (e.o).id, '" detail_type "', order_event_detail(e.id, e.o), e.trace_header"     \
    " FROM (SELECT gen_random_uuid() AS id, s.o, " trace " AS trace_header FROM " src " s"         \
    " OFFSET 0) e"

#define EVENT_CREATED "order.created"
#define EVENT_PROCESSED "order.processed"
#define EVENT_FAILED "order.failed"
#define EVENT_CANCELED "order.canceled"

enum event_outbox_outcome {
    EVENT_OUTBOX_SENT,  /* EventBridge took it: mark sent */
    EVENT_OUTBOX_RETRY, /* try again after a backoff */
    EVENT_OUTBOX_PARK,  /* refused for good: park (rejected_at), log and count */
};

struct event_outbox_result {
    enum event_outbox_outcome outcome;
    char event_id[EVENTS_MAX_EVENT_ID_BYTES + 1]; /* SENT: EventBridge's id */
    char error[400];                              /* RETRY, PARK: why, for last_error */
};

/* The outcome of each of the n entries of one PutEvents call: res when the
 * call answered (call_err NULL), else every entry is retried with call_err's
 * message. Entries EventBridge calls invalid are parked; throttled, failed
 * internally, unknown or not permitted ones are retried (permissions change). */
void event_outbox_outcomes(const struct events_put_result *res, const struct aws_error *call_err,
                           size_t n, struct event_outbox_result *out);

/* An entry events_entry_check refuses can never be sent: its outcome is PARK
 * with that reason. 0 when e can be sent, else -1 with out filled. */
int event_outbox_precheck(const struct events_entry *e, struct event_outbox_result *out);

#endif
