-- 003 outbox delivery: what the relay and the notification worker need to claim rows
-- (leases, so several conductors never deliver the same row at once and a dead one's
-- rows are taken over), retry them with backoff, park rows that keep failing or
-- crashing the relay, and wake up on commit instead of polling.

ALTER TABLE fleet_outbox
    ADD COLUMN claimed_by      text,
    ADD COLUMN claimed_until   timestamptz,
    ADD COLUMN next_attempt_at timestamptz,
    -- sinks that already took the event: a retry skips them (fewer duplicates)
    ADD COLUMN delivered_to    text[]      NOT NULL DEFAULT '{}',
    -- set when the relay gave up on the row (dead-letter hand-off)
    ADD COLUMN parked_at       timestamptz;

-- The relay's claim: pending rows in commit order (txid, id).
CREATE INDEX fleet_outbox_claim_idx ON fleet_outbox (txid, id)
    WHERE processed_at IS NULL AND parked_at IS NULL;
-- Faces' catch-up cursor: every row after (txid, id).
CREATE INDEX fleet_outbox_order_idx ON fleet_outbox (txid, id);

ALTER TABLE fleet_notifications
    ADD COLUMN dedup_key     text,
    ADD COLUMN claimed_by    text,
    ADD COLUMN claimed_until timestamptz,
    -- one terminal notification per task however many writers (conductor, relay) try
    ADD CONSTRAINT fleet_notifications_dedup_key_key UNIQUE (dedup_key);

-- Wake-ups on commit (NOTIFY is transactional); the payload is empty: a wake-up, not data.
CREATE OR REPLACE FUNCTION fleet_outbox_wake() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('fleet_outbox_wake', '');
    RETURN NULL;
END;
$$;

CREATE OR REPLACE FUNCTION fleet_notifications_wake() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('fleet_notifications_wake', '');
    RETURN NULL;
END;
$$;

CREATE TRIGGER fleet_outbox_wake AFTER INSERT ON fleet_outbox
    FOR EACH STATEMENT EXECUTE FUNCTION fleet_outbox_wake();
CREATE TRIGGER fleet_notifications_wake AFTER INSERT ON fleet_notifications
    FOR EACH STATEMENT EXECUTE FUNCTION fleet_notifications_wake();
