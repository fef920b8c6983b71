-- 009 event receipts: the ids of signed external events (Standard Webhooks `webhook-id`)
-- received within the replay window, shared by every conductor, so that a captured request
-- replayed to any of them is refused. Rows older than twice the tolerance are pruned.

CREATE TABLE fleet_event_receipts (
    id          text        NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT fleet_event_receipts_pkey PRIMARY KEY (id),
    CONSTRAINT fleet_event_receipts_id_check CHECK (id ~ '^[A-Za-z0-9_:-]{1,128}$')
);
CREATE INDEX fleet_event_receipts_received_idx ON fleet_event_receipts (received_at);

ALTER TABLE fleet_event_receipts ENABLE ROW LEVEL SECURITY;
ALTER TABLE fleet_event_receipts FORCE ROW LEVEL SECURITY;
CREATE POLICY fleet_event_receipts_admin ON fleet_event_receipts
    USING (current_setting('app.is_admin', true) = 'true')
    WITH CHECK (current_setting('app.is_admin', true) = 'true');
