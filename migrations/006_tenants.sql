-- 006: tenants, and outbox rows SQS refuses for good.
--  * orders.created_by: the authenticated principal (token sub) that created
--    the order; customer_id is the tenant every read is scoped to, served by
--    the (customer_id, created_at, id) indexes.
--  * idempotency keys belong to the caller that sent them: the same key from
--    two principals makes two orders and never returns one's order to the other.
--  * outbox.rejected_at: SQS answered SenderFault for the entry; it is parked
--    (logged and counted) instead of being retried forever.
ALTER TABLE orders ADD COLUMN created_by text
    CHECK (created_by IS NULL OR octet_length(created_by) BETWEEN 1 AND 256);
CREATE INDEX orders_customer_created_idx ON orders (customer_id, created_at DESC, id DESC);
CREATE INDEX orders_customer_status_created_idx
    ON orders (customer_id, status, created_at DESC, id DESC);

ALTER TABLE idempotency_keys ADD COLUMN principal text NOT NULL DEFAULT '';
ALTER TABLE idempotency_keys DROP CONSTRAINT idempotency_keys_pkey;
ALTER TABLE idempotency_keys ADD PRIMARY KEY (principal, key);

ALTER TABLE outbox ADD COLUMN rejected_at timestamptz;
DROP INDEX outbox_unsent_idx;
CREATE INDEX outbox_unsent_idx ON outbox (queue_url, next_attempt_at)
    WHERE sent_at IS NULL AND rejected_at IS NULL;
