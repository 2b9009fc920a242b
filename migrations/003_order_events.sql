-- 003: the order timeline. One row per step, written by whichever program
-- took the step, so "where is order X and why" is one query.
CREATE TABLE order_events (
    id             bigserial PRIMARY KEY,
    order_id       uuid        NOT NULL REFERENCES orders (id),
    at             timestamptz NOT NULL DEFAULT clock_timestamp(),
    step           text        NOT NULL CHECK (step IN ('RECEIVED', 'ENQUEUED', 'DELIVERED',
                                   'PAYMENT_STARTED', 'PAYMENT_APPROVED', 'PROCESSED',
                                   'CANCELED', 'FAILED')),
    actor          text        NOT NULL,
    correlation_id text        NOT NULL,
    detail         jsonb       NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX order_events_order_idx ON order_events (order_id, id);
