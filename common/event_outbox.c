/*
 * event_outbox.c - the Detail of an order event, and what one PutEvents
 * answer means for each event_outbox row (see event_outbox.h). Pure: the
 * relay (api/event_relay.c) does the I/O.
 *
 * The Detail's order is order_json()'s, the one rendering of an order; for
 * order.created it is rendered as the order was created (PENDING, never
 * updated), whatever happened to it since.
 *
 * Only an entry EventBridge calls invalid is parked. A
 * throttled or internally failed entry, an unknown error code, a denied one
 * (permissions are fixed by people, and then the row should go out) and every
 * entry of a call that failed as a whole are retried with backoff.
 */
#include "event_outbox.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "util.h"

char *event_outbox_detail(const char *event_id, const char *detail_type, const struct order_view *o)
{
    struct order_view v = *o;
    if (strcmp(detail_type, EVENT_CREATED) == 0) {
        v.status = "PENDING";
        v.updated_at = v.created_at;
        v.processed_at = NULL;
        v.canceled_at = NULL;
        v.failure_reason = NULL;
    }
    /* "o" steals the order (also when it is NULL or packing fails) */
    json_t *d = json_pack("{s:i, s:s, s:o, s:s}", "version", 1, "id", event_id, "order",
                          order_json(&v), "correlation_id", o->correlation_id);
    char *s = d ? util_json_dumps(d, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(d);
    return s;
}

/* An entry's "code: message" always fits whole (no cut inside a character). */
_Static_assert(sizeof(((struct events_result_entry *)0)->error_code) +
                       sizeof(((struct events_result_entry *)0)->error_message) + 8 <=
                   sizeof(((struct event_outbox_result *)0)->error),
               "an entry's error fits the row's");

void event_outbox_outcomes(const struct events_put_result *res, const struct aws_error *call_err,
                           size_t n, struct event_outbox_result *out)
{
    for (size_t i = 0; i < n; i++) {
        struct event_outbox_result *o = &out[i];
        memset(o, 0, sizeof(*o));
        if (call_err || !res || i >= res->n) {
            o->outcome = EVENT_OUTBOX_RETRY;
            /* The message (up to 511 bytes) may be longer than the row's
             * error: cut at a character boundary, as last_error is text and
             * PostgreSQL refuses invalid UTF-8 (and the round's bookkeeping
             * with it, so the rows already sent would be sent again). */
            if (call_err)
                aws_text_copy(o->error, sizeof(o->error), call_err->message);
            else
                util_strlcpy(o->error, "PutEvents did not answer this entry", sizeof(o->error));
            continue;
        }
        const struct events_result_entry *r = &res->entry[i];
        switch (r->outcome) {
        case EVENTS_OK:
            o->outcome = EVENT_OUTBOX_SENT;
            util_strlcpy(o->event_id, r->event_id, sizeof(o->event_id));
            continue;
        case EVENTS_REJECTED:
            o->outcome = EVENT_OUTBOX_PARK;
            break;
        case EVENTS_RETRY:
        case EVENTS_DENIED:
            o->outcome = EVENT_OUTBOX_RETRY;
            break;
        }
        snprintf(o->error, sizeof(o->error), "%s: %s", r->error_code[0] ? r->error_code : "error",
                 r->error_message);
    }
}

int event_outbox_precheck(const struct events_entry *e, struct event_outbox_result *out)
{
    char why[256];
    if (events_entry_check(e, why, sizeof(why)) == 0)
        return 0;
    memset(out, 0, sizeof(*out));
    out->outcome = EVENT_OUTBOX_PARK;
    snprintf(out->error, sizeof(out->error), "not sendable: %s", why);
    return -1;
}
