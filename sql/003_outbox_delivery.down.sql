-- 003 outbox delivery, reversed.
DROP TRIGGER IF EXISTS fleet_notifications_wake ON fleet_notifications;
DROP TRIGGER IF EXISTS fleet_outbox_wake ON fleet_outbox;
DROP FUNCTION IF EXISTS fleet_notifications_wake();
DROP FUNCTION IF EXISTS fleet_outbox_wake();
ALTER TABLE fleet_notifications
    DROP CONSTRAINT IF EXISTS fleet_notifications_dedup_key_key,
    DROP COLUMN IF EXISTS claimed_until,
    DROP COLUMN IF EXISTS claimed_by,
    DROP COLUMN IF EXISTS dedup_key;
DROP INDEX IF EXISTS fleet_outbox_order_idx;
DROP INDEX IF EXISTS fleet_outbox_claim_idx;
ALTER TABLE fleet_outbox
    DROP COLUMN IF EXISTS parked_at,
    DROP COLUMN IF EXISTS delivered_to,
    DROP COLUMN IF EXISTS next_attempt_at,
    DROP COLUMN IF EXISTS claimed_until,
    DROP COLUMN IF EXISTS claimed_by;
