-- 007: payments that can fail, and a record of every attempt.
--  * orders: FAILED joins the status set, with failed_at and failure_reason
--    (the provider's reason, at most 500 bytes; set exactly when FAILED).
--  * payment_attempts: one row per call to the payment provider (provider,
--    attempt number, outcome, the provider's payment id, latency, an error
--    excerpt). Attempts are many per order; the charge is still one:
--    payments keeps UNIQUE (order_id) and is written only in the statement
--    that moves the order from PENDING to PROCESSED, so an order is paid at
--    most once whatever the number of attempts or redeliveries.
--  * order_events: PAYMENT_DECLINED and PAYMENT_ERROR steps for the timeline.
ALTER TABLE orders DROP CONSTRAINT orders_status_check;
ALTER TABLE orders ADD CONSTRAINT orders_status_check
    CHECK (status IN ('PENDING', 'PROCESSED', 'CANCELED', 'FAILED'));
ALTER TABLE orders ADD COLUMN failed_at timestamptz;
ALTER TABLE orders ADD COLUMN failure_reason text
    CONSTRAINT orders_failure_reason_check
    CHECK (failure_reason IS NULL OR octet_length(failure_reason) BETWEEN 1 AND 500);
ALTER TABLE orders ADD CONSTRAINT orders_failed_has_reason_check
    CHECK ((status = 'FAILED') = (failure_reason IS NOT NULL));

ALTER TABLE payments ADD COLUMN provider text;
ALTER TABLE payments ADD COLUMN provider_payment_id text
    CHECK (provider_payment_id IS NULL OR octet_length(provider_payment_id) BETWEEN 1 AND 255);

CREATE TABLE payment_attempts (
    id                  bigserial PRIMARY KEY,
    order_id            uuid        NOT NULL REFERENCES orders (id),
    provider            text        NOT NULL CHECK (provider IN ('simulated', 'http')),
    attempt             integer     NOT NULL CHECK (attempt >= 1),
    outcome             text        NOT NULL CHECK (outcome IN ('approved', 'declined', 'error')),
    provider_payment_id text        CHECK (provider_payment_id IS NULL
                                           OR octet_length(provider_payment_id) BETWEEN 1 AND 255),
    latency_ms          integer     NOT NULL CHECK (latency_ms >= 0),
    error               text        CHECK (error IS NULL OR octet_length(error) <= 500),
    worker              text        NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX payment_attempts_order_idx ON payment_attempts (order_id, id);

ALTER TABLE order_events DROP CONSTRAINT order_events_step_check;
ALTER TABLE order_events ADD CONSTRAINT order_events_step_check
    CHECK (step IN ('RECEIVED', 'ENQUEUED', 'DELIVERED', 'PAYMENT_STARTED', 'PAYMENT_APPROVED',
                    'PAYMENT_DECLINED', 'PAYMENT_ERROR', 'PROCESSED', 'CANCELED', 'FAILED'));
