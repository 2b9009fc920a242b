-- 008: the event outbox: order events for Amazon EventBridge (issue 12).
--
-- One row per state change (order.created, order.processed, order.failed,
-- order.canceled), written by the statement that makes the change, so an
-- event exists exactly when its change committed. order-api's event relay
-- (api/event_relay.c) sends the rows with PutEvents and marks them sent.
--
-- The Detail is rendered here, in SQL, at the moment of the change: the
-- worker's PENDING -> PROCESSED statement and the cancel statement hold only
-- order ids on the C side, and a snapshot taken later (when the relay sends)
-- would show a later state. order_event_json renders an order exactly as
-- common/order.c order_json() does for GET /orders/{id} (same keys, same
-- order, processed_at null when unset, canceled_at and failure_reason left
-- out when unset, timestamps as YYYY-MM-DDTHH:MM:SS.ffffffZ in UTC);
-- tests/integration/test_events.py compares the two for every event type.
-- failure_reason is read through to_jsonb(o), so this works before and after
-- the migration that adds the column.
--
-- Rows are written whether or not a relay is configured to send them (the
-- worker, which writes order.processed, has no EventBridge setting at all):
-- with EVENT_BUS_NAME unset they stay unsent, and the API purges them after
-- a week (see api/event_relay.c).
CREATE TABLE event_outbox (
    id              uuid PRIMARY KEY,  -- the event's id, also Detail.id: consumers deduplicate on it
    order_id        uuid        NOT NULL REFERENCES orders (id),
    detail_type     text        NOT NULL CHECK (detail_type ~ '^order\.[a-z]+$'),
    detail          text        NOT NULL,  -- the Detail document, JSON
    trace_header    text,                  -- the order's X-Ray header (TraceHeader)
    created_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    sent_at         timestamptz,
    event_id        text,                  -- EventBridge's id for the accepted entry
    last_error      text,
    rejected_at     timestamptz            -- EventBridge refused the entry for good: parked
);
CREATE INDEX event_outbox_unsent_idx ON event_outbox (next_attempt_at, created_at)
    WHERE sent_at IS NULL AND rejected_at IS NULL;
CREATE INDEX event_outbox_order_idx ON event_outbox (order_id);

-- An order as order_json() renders it. json (not jsonb) keeps the key order.
CREATE FUNCTION order_event_json(o orders) RETURNS json
LANGUAGE sql STABLE AS $$
    SELECT json_object_agg(f.k, f.v ORDER BY f.n)
    FROM (VALUES
        (1, 'id', to_json(o.id::text)),
        (2, 'status', to_json(o.status)),
        (3, 'customer_id', to_json(o.customer_id)),
        (4, 'currency', to_json(o.currency)),
        (5, 'items', coalesce((
            SELECT json_agg(json_build_object('product_id', i.item -> 'product_id',
                                              'quantity', i.item -> 'quantity',
                                              'unit_price_cents', i.item -> 'unit_price_cents')
                            ORDER BY i.n)
            FROM jsonb_array_elements(o.items) WITH ORDINALITY AS i(item, n)), '[]'::json)),
        (6, 'total_cents', to_json(o.total_cents)),
        (7, 'correlation_id', to_json(o.correlation_id)),
        (8, 'created_at', to_json(to_char(o.created_at AT TIME ZONE 'UTC',
                                          'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'))),
        (9, 'updated_at', to_json(to_char(o.updated_at AT TIME ZONE 'UTC',
                                          'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'))),
        (10, 'processed_at', coalesce(to_json(to_char(o.processed_at AT TIME ZONE 'UTC',
                                                      'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')),
                                      'null'::json)),
        (11, 'canceled_at', to_json(to_char(o.canceled_at AT TIME ZONE 'UTC',
                                            'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'))),
        (12, 'failure_reason', to_json(to_jsonb(o) ->> 'failure_reason'))
    ) AS f(n, k, v)
    WHERE f.v IS NOT NULL
$$;

-- The Detail of an event: {"version":1,"id":…,"order":…,"correlation_id":…}.
CREATE FUNCTION order_event_detail(event_id uuid, o orders) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT json_build_object('version', 1, 'id', event_id::text, 'order', order_event_json(o),
                             'correlation_id', o.correlation_id)::text
$$;

-- The X-Ray header the order was created with (its RECEIVED step), or NULL.
CREATE FUNCTION order_trace_header(order_id uuid) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT e.detail ->> 'trace_header' FROM order_events e
    WHERE e.order_id = order_trace_header.order_id AND e.step = 'RECEIVED'
    ORDER BY e.id LIMIT 1
$$;
