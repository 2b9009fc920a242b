-- 001: the orders table, the service's source of truth.
-- Amounts are integer cents (bigint), never floating point; status is a closed
-- set enforced by the database so no code path can invent a state.
CREATE TABLE orders (
    id             uuid PRIMARY KEY,
    customer_id    text        NOT NULL CHECK (octet_length(customer_id) BETWEEN 1 AND 128),
    items          jsonb       NOT NULL CHECK (jsonb_typeof(items) = 'array'),
    total_cents    bigint      NOT NULL CHECK (total_cents >= 0),
    currency       text        NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    status         text        NOT NULL DEFAULT 'PENDING'
                               CONSTRAINT orders_status_check CHECK (status IN ('PENDING', 'PROCESSED')),
    correlation_id text        NOT NULL CHECK (octet_length(correlation_id) BETWEEN 1 AND 128),
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    processed_at   timestamptz
);

-- Listing newest first, optionally by status, with a (created_at, id) cursor.
CREATE INDEX orders_created_idx ON orders (created_at DESC, id DESC);
CREATE INDEX orders_status_created_idx ON orders (status, created_at DESC, id DESC);
