/*
 * event_outbox.h - order events for EventBridge: the row a state change
 * appends in its own statement (migration 008), the Detail the relay renders
 * when it sends, and what a PutEvents answer means for each row.
 *
 * Writing: EVENT_OUTBOX_APPEND is a member of a data-modifying WITH that
 * appends one event per row of another member of the same statement (one
 * returning the changed orders' id), so the event commits or rolls back with
 * the change:
 *
 *   " evo AS (" EVENT_OUTBOX_APPEND(EVENT_FAILED, "failed") ")"
 *
 * Each event gets a random uuid, its id and Detail.id: the id consumers
 * deduplicate on (delivery is at least once).
 *
 * Sending: event_outbox_detail renders the Detail from the order row with
 * order_json() as of the change the event announces (see migration 008 for
 * why that is exact), and event_outbox_outcomes turns one PutEvents answer
 * into what becomes of each row: sent, retried later, or parked for good.
 * Pure, no I/O.
 */
#ifndef ORDER_EVENT_OUTBOX_H
#define ORDER_EVENT_OUTBOX_H

#include <stddef.h>

#include "aws_error.h"
#include "events_codec.h"
#include "order.h"

#define EVENT_CREATED "order.created"
#define EVENT_PROCESSED "order.processed"
#define EVENT_FAILED "order.failed"
#define EVENT_CANCELED "order.canceled"

/* INSERT ... appending a detail_type event (one of the above) for every row
 * of the member src, which must have the order's id as column id. The trace
 * header is the one the order was created with, looked up when sent. */
#define EVENT_OUTBOX_APPEND(detail_type, src)                                                      \
    "INSERT INTO event_outbox (id, order_id, detail_type)"                                         \
    " SELECT gen_random_uuid(), s.id, '" detail_type "' FROM " src " s"

/* The same with the trace header given as an SQL expression over s, for the
 * statement that creates the order (its RECEIVED step is not visible yet). */
#define EVENT_OUTBOX_APPEND_TRACED(detail_type, src, trace)                                        \
    "INSERT INTO event_outbox (id, order_id, detail_type, trace_header)"                           \
    " SELECT gen_random_uuid(), s.id, '" detail_type "', " trace " FROM " src " s"

/* The Detail of event event_id of type detail_type about order o (the row
 * as it is now; strings borrowed): {"version":1,"id","order","correlation_id"}
 * with the order as order_json() renders it as of that change (for
 * order.created the PENDING order it was created as). Compact JSON
 * (malloc), or NULL when out of memory. */
char *event_outbox_detail(const char *event_id, const char *detail_type,
                          const struct order_view *o);

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
