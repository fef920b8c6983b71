-- 006 leases: several conductors share one fleet. Each conductor registers per boot and
-- claims the live tasks it watches; a lease has an epoch that fences late writers.

CREATE TABLE fleet_conductors (
    id           text        NOT NULL,
    host         text        NOT NULL,
    pid          integer     NOT NULL,
    started_at   timestamptz NOT NULL DEFAULT now(),
    heartbeat_at timestamptz NOT NULL DEFAULT now(),
    stopped_at   timestamptz,
    CONSTRAINT fleet_conductors_pkey PRIMARY KEY (id),
    CONSTRAINT fleet_conductors_id_check CHECK (id ~ '^[a-z0-9-]{6,64}$')
);
CREATE INDEX fleet_conductors_heartbeat_idx ON fleet_conductors (heartbeat_at) WHERE stopped_at IS NULL;

CREATE TABLE fleet_leases (
    task_id    text        NOT NULL,
    owner      text        NOT NULL,
    epoch      bigint      NOT NULL DEFAULT 1,
    expires_at timestamptz NOT NULL,
    CONSTRAINT fleet_leases_pkey PRIMARY KEY (task_id),
    CONSTRAINT fleet_leases_task_id_fkey FOREIGN KEY (task_id) REFERENCES fleet_tasks (id) ON DELETE CASCADE,
    CONSTRAINT fleet_leases_epoch_check CHECK (epoch >= 1)
);
CREATE INDEX fleet_leases_owner_idx ON fleet_leases (owner, expires_at);

-- Conductors act with admin visibility; operators never see leases.
ALTER TABLE fleet_conductors ENABLE ROW LEVEL SECURITY;
ALTER TABLE fleet_conductors FORCE ROW LEVEL SECURITY;
CREATE POLICY fleet_conductors_admin ON fleet_conductors
    USING (current_setting('app.is_admin', true) = 'true')
    WITH CHECK (current_setting('app.is_admin', true) = 'true');
ALTER TABLE fleet_leases ENABLE ROW LEVEL SECURITY;
ALTER TABLE fleet_leases FORCE ROW LEVEL SECURITY;
CREATE POLICY fleet_leases_admin ON fleet_leases
    USING (current_setting('app.is_admin', true) = 'true')
    WITH CHECK (current_setting('app.is_admin', true) = 'true');
