-- 008: the event outbox: order events for Amazon EventBridge (issue 12).
--
-- One row per state change (order.created, order.processed, order.failed,
-- order.canceled), inserted by the statement that makes the change
-- (common/event_outbox.h), so an event exists exactly when its change
-- committed. order-api's event relay (api/event_relay.c) sends the rows with
-- PutEvents and marks them sent.
--
-- The row holds no copy of the order: the relay renders the Detail when it
-- sends, from the order row, with common/order.c order_json() (the one
-- rendering GET /orders/{id} uses), as of the change the event announces.
-- That is exact because an order changes at most twice: created PENDING
-- (whose state follows from the row: updated_at = created_at, no
-- processed_at), then one final state (PROCESSED, CANCELED, FAILED) that never
-- changes again. Rendering in SQL in the writers' statements cost PostgreSQL
-- 25-50 us per order on the order insert's hot path; the relay, in C, far
-- less. detail is the Detail as sent, kept for investigations.
--
-- Rows are written whether or not a relay is configured to send them (the
-- worker, which writes order.processed, has no EventBridge setting at all):
-- with EVENT_BUS_NAME unset they stay unsent, and the API purges them after
-- a week (see api/event_relay.c).
CREATE TABLE event_outbox (
    id              uuid PRIMARY KEY,  -- the event's id, also Detail.id: consumers deduplicate on it
    order_id        uuid        NOT NULL REFERENCES orders (id),
    detail_type     text        NOT NULL CHECK (detail_type ~ '^order\.[a-z]+$'),
    trace_header    text,              -- X-Ray header; NULL: the order's own (order_trace_header)
    created_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    sent_at         timestamptz,
    detail          text,              -- the Detail document as sent
    event_id        text,              -- EventBridge's id for the accepted entry
    last_error      text,
    rejected_at     timestamptz        -- EventBridge refused the entry for good: parked
);
CREATE INDEX event_outbox_unsent_idx ON event_outbox (next_attempt_at, created_at)
    WHERE sent_at IS NULL AND rejected_at IS NULL;
CREATE INDEX event_outbox_order_idx ON event_outbox (order_id);

-- The X-Ray header the order was created with (its RECEIVED step), or NULL.
CREATE FUNCTION order_trace_header(order_id uuid) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT e.detail ->> 'trace_header' FROM order_events e
    WHERE e.order_id = order_trace_header.order_id AND e.step = 'RECEIVED'
    ORDER BY e.id LIMIT 1
$$;
