-- 004: each outbox row names the queue it is for. The relay of one
-- deployment then never publishes another's rows, even when several
-- deployments (blue/green, or test runs) share one database.
ALTER TABLE outbox ADD COLUMN queue_url text;
DROP INDEX outbox_unsent_idx;
CREATE INDEX outbox_unsent_idx ON outbox (queue_url, next_attempt_at) WHERE sent_at IS NULL;
