-- 005 operations: the spawn queue (backpressure), dedup keys, structured logs and health
-- snapshots.

-- Spawn requests waiting for room in the fleet: highest priority first, then oldest.
CREATE TABLE fleet_spawn_queue (
    id          bigserial   NOT NULL,
    operator_id text        NOT NULL,
    priority    integer     NOT NULL DEFAULT 50,
    request     jsonb       NOT NULL,
    dedup_key   text,
    status      text        NOT NULL DEFAULT 'queued',
    task_id     text,
    error       text,
    trace_id    text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    admitted_at timestamptz,
    CONSTRAINT fleet_spawn_queue_pkey PRIMARY KEY (id),
    CONSTRAINT fleet_spawn_queue_priority_check CHECK (priority BETWEEN 0 AND 100),
    CONSTRAINT fleet_spawn_queue_status_check
        CHECK (status IN ('queued', 'admitted', 'failed', 'cancelled')),
    CONSTRAINT fleet_spawn_queue_request_check CHECK (jsonb_typeof(request) = 'object')
);

CREATE INDEX fleet_spawn_queue_ready_idx ON fleet_spawn_queue (priority DESC, created_at, id)
    WHERE status = 'queued';
CREATE INDEX fleet_spawn_queue_operator_idx ON fleet_spawn_queue (operator_id, created_at);

-- Dedup keys of events and spawn requests: a key seen within the window is merged.
CREATE TABLE fleet_dedup_keys (
    operator_id text        NOT NULL,
    dedup_key   text        NOT NULL,
    ref         text,
    hits        integer     NOT NULL DEFAULT 1,
    first_seen  timestamptz NOT NULL,
    last_seen   timestamptz NOT NULL,
    CONSTRAINT fleet_dedup_keys_pkey PRIMARY KEY (operator_id, dedup_key),
    CONSTRAINT fleet_dedup_keys_key_check CHECK (length(dedup_key) BETWEEN 1 AND 200),
    CONSTRAINT fleet_dedup_keys_hits_check CHECK (hits >= 1)
);

CREATE INDEX fleet_dedup_keys_last_seen_idx ON fleet_dedup_keys (last_seen);

-- Structured log records (batched from the logger); trimmed by retention cleanup.
CREATE TABLE fleet_logs (
    id             bigserial   NOT NULL,
    ts             timestamptz NOT NULL,
    level          text        NOT NULL,
    logger         text        NOT NULL,
    message        text        NOT NULL,
    operator_id    text,
    task_id        text,
    trace_id       text,
    span_id        text,
    parent_span_id text,
    fields         jsonb       NOT NULL DEFAULT '{}'::jsonb,
    CONSTRAINT fleet_logs_pkey PRIMARY KEY (id),
    CONSTRAINT fleet_logs_fields_check CHECK (jsonb_typeof(fields) = 'object')
);

CREATE INDEX fleet_logs_ts_idx ON fleet_logs (ts);
CREATE INDEX fleet_logs_trace_idx ON fleet_logs (trace_id) WHERE trace_id IS NOT NULL;
CREATE INDEX fleet_logs_task_idx ON fleet_logs (task_id, ts) WHERE task_id IS NOT NULL;

-- Fleet-wide health, one row per snapshot; admins only.
CREATE TABLE fleet_health_snapshots (
    id            bigserial        NOT NULL,
    taken_at      timestamptz      NOT NULL DEFAULT now(),
    live_agents   integer          NOT NULL,
    failure_rate  double precision NOT NULL,
    dlq_depth     integer          NOT NULL,
    open_breakers jsonb            NOT NULL DEFAULT '[]'::jsonb,
    outbox_lag_s  double precision NOT NULL,
    alerts        jsonb            NOT NULL DEFAULT '[]'::jsonb,
    CONSTRAINT fleet_health_snapshots_pkey PRIMARY KEY (id),
    CONSTRAINT fleet_health_snapshots_counts_check CHECK (live_agents >= 0 AND dlq_depth >= 0),
    CONSTRAINT fleet_health_snapshots_failure_rate_check CHECK (failure_rate BETWEEN 0 AND 1)
);

CREATE INDEX fleet_health_snapshots_taken_idx ON fleet_health_snapshots (taken_at);

ALTER TABLE fleet_spawn_queue ENABLE ROW LEVEL SECURITY;
ALTER TABLE fleet_spawn_queue FORCE ROW LEVEL SECURITY;
CREATE POLICY fleet_spawn_queue_tenant ON fleet_spawn_queue
    USING (operator_id = NULLIF(current_setting('app.operator_id', true), '')
           OR current_setting('app.is_admin', true) = 'true')
    WITH CHECK (operator_id = NULLIF(current_setting('app.operator_id', true), '')
                OR current_setting('app.is_admin', true) = 'true');

ALTER TABLE fleet_dedup_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE fleet_dedup_keys FORCE ROW LEVEL SECURITY;
CREATE POLICY fleet_dedup_keys_tenant ON fleet_dedup_keys
    USING (operator_id = NULLIF(current_setting('app.operator_id', true), '')
           OR current_setting('app.is_admin', true) = 'true')
    WITH CHECK (operator_id = NULLIF(current_setting('app.operator_id', true), '')
                OR current_setting('app.is_admin', true) = 'true');

-- Log rows without an operator are the platform's own: admins only.
ALTER TABLE fleet_logs ENABLE ROW LEVEL SECURITY;
ALTER TABLE fleet_logs FORCE ROW LEVEL SECURITY;
CREATE POLICY fleet_logs_tenant ON fleet_logs
    USING (operator_id = NULLIF(current_setting('app.operator_id', true), '')
           OR current_setting('app.is_admin', true) = 'true')
    WITH CHECK (operator_id = NULLIF(current_setting('app.operator_id', true), '')
                OR current_setting('app.is_admin', true) = 'true');

ALTER TABLE fleet_health_snapshots ENABLE ROW LEVEL SECURITY;
ALTER TABLE fleet_health_snapshots FORCE ROW LEVEL SECURITY;
CREATE POLICY fleet_health_snapshots_admin ON fleet_health_snapshots
    USING (current_setting('app.is_admin', true) = 'true')
    WITH CHECK (current_setting('app.is_admin', true) = 'true');
