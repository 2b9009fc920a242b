-- 002: what makes the flow safe under failure.
--  * outbox: written in the order's transaction, so an order is never stored
--    without its message; the API publishes it right after commit and a relay
--    re-publishes whatever is still unsent (crash, SQS outage, timeout).
--  * payments: one row per order (unique order_id), written in the same
--    transaction that moves the order to PROCESSED: a payment happens at most once.
--  * idempotency_keys: replays of POST /orders with the same Idempotency-Key.
--  * CANCELED joins the status set.
ALTER TABLE orders DROP CONSTRAINT orders_status_check;
ALTER TABLE orders ADD CONSTRAINT orders_status_check
    CHECK (status IN ('PENDING', 'PROCESSED', 'CANCELED'));
ALTER TABLE orders ADD COLUMN canceled_at timestamptz;

CREATE TABLE outbox (
    id              bigserial PRIMARY KEY,
    order_id        uuid        NOT NULL REFERENCES orders (id),
    body            text        NOT NULL,
    correlation_id  text        NOT NULL,
    trace_header    text,
    traceparent     text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    -- the API publishes at once; the relay only takes rows whose first
    -- attempt is overdue, so the two rarely send the same row
    next_attempt_at timestamptz NOT NULL DEFAULT now() + interval '10 seconds',
    attempts        integer     NOT NULL DEFAULT 0,
    last_error      text,
    sent_at         timestamptz,
    message_id      text
);
CREATE INDEX outbox_unsent_idx ON outbox (next_attempt_at) WHERE sent_at IS NULL;
CREATE INDEX outbox_order_idx ON outbox (order_id);

CREATE TABLE payments (
    id           bigserial PRIMARY KEY,
    order_id     uuid        NOT NULL UNIQUE REFERENCES orders (id),
    amount_cents bigint      NOT NULL,
    currency     text        NOT NULL,
    worker       text        NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE idempotency_keys (
    key             text PRIMARY KEY CHECK (octet_length(key) BETWEEN 1 AND 255),
    request_hash    text        NOT NULL,
    order_id        uuid        NOT NULL REFERENCES orders (id),
    response_status integer     NOT NULL,
    response_body   text        NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX idempotency_keys_created_idx ON idempotency_keys (created_at);
