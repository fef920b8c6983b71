-- 001 core: operators, tasks, audit, outbox, notifications, per-operator config.
-- Row-level security on every operator-owned table; the app role never owns these tables.

CREATE OR REPLACE FUNCTION fleet_set_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END;
$$;

CREATE TABLE fleet_operators (
    id            text        NOT NULL,
    tier          text        NOT NULL DEFAULT 'observer',
    is_admin      boolean     NOT NULL DEFAULT false,
    credit_budget numeric,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT fleet_operators_pkey PRIMARY KEY (id),
    CONSTRAINT fleet_operators_id_check CHECK (id ~ '^[A-Za-z0-9._@:-]{1,128}$'),
    CONSTRAINT fleet_operators_tier_check
        CHECK (tier IN ('observer', 'participant', 'builder', 'architect', 'sovereign')),
    CONSTRAINT fleet_operators_credit_budget_check CHECK (credit_budget IS NULL OR credit_budget >= 0)
);

CREATE TABLE fleet_tasks (
    id              text        NOT NULL,
    operator_id     text        NOT NULL,
    status          text        NOT NULL DEFAULT 'proposed',
    version         integer     NOT NULL DEFAULT 0,
    description     text        NOT NULL,
    repo            text        NOT NULL,
    base_branch     text        NOT NULL,
    branch          text,
    task_type       text        NOT NULL DEFAULT 'feature',
    agent           text,
    model           text,
    runtime         text        NOT NULL DEFAULT 'tmux',
    priority        integer     NOT NULL DEFAULT 50,
    retry_count     integer     NOT NULL DEFAULT 0,
    max_retries     integer     NOT NULL DEFAULT 3,
    idempotency_key text,
    worktree_path   text,
    tmux_session    text,
    container_id    text,
    pr_number       integer,
    pr_url          text,
    ci_status       text,
    review_status   text,
    review_verdicts jsonb       NOT NULL DEFAULT '[]'::jsonb,
    failure_reason  text,
    failure_context jsonb,
    exit_code       integer,
    needs_input     boolean     NOT NULL DEFAULT false,
    trace_id        text,
    metadata        jsonb       NOT NULL DEFAULT '{}'::jsonb,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    spawned_at      timestamptz,
    completed_at    timestamptz,
    CONSTRAINT fleet_tasks_pkey PRIMARY KEY (id),
    CONSTRAINT fleet_tasks_id_check CHECK (id ~ '^[a-z0-9]{6,32}$'),
    CONSTRAINT fleet_tasks_status_check CHECK (status IN (
        'proposed', 'spawning', 'running', 'pr_created', 'reviewing', 'ready', 'merged',
        'failed', 'retrying', 'rejected', 'abandoned', 'cancelled')),
    CONSTRAINT fleet_tasks_version_check CHECK (version >= 0),
    CONSTRAINT fleet_tasks_description_check CHECK (length(description) BETWEEN 1 AND 10000),
    CONSTRAINT fleet_tasks_task_type_check
        CHECK (task_type IN ('bug_fix', 'feature', 'refactor', 'review', 'docs')),
    CONSTRAINT fleet_tasks_runtime_check CHECK (runtime IN ('tmux', 'docker')),
    CONSTRAINT fleet_tasks_priority_check CHECK (priority BETWEEN 0 AND 100),
    CONSTRAINT fleet_tasks_retry_count_check CHECK (retry_count >= 0),
    CONSTRAINT fleet_tasks_max_retries_check CHECK (max_retries >= 0),
    -- backs recordFailure: the budget can never be overrun, whatever the caller does
    CONSTRAINT fleet_tasks_retry_budget_check CHECK (retry_count <= max_retries),
    CONSTRAINT fleet_tasks_ci_status_check
        CHECK (ci_status IS NULL OR ci_status IN ('pending', 'passing', 'failing')),
    CONSTRAINT fleet_tasks_pr_number_check CHECK (pr_number IS NULL OR pr_number > 0),
    CONSTRAINT fleet_tasks_review_verdicts_check CHECK (jsonb_typeof(review_verdicts) = 'array'),
    CONSTRAINT fleet_tasks_metadata_check CHECK (jsonb_typeof(metadata) = 'object'),
    CONSTRAINT fleet_tasks_operator_idempotency_key UNIQUE (operator_id, idempotency_key)
);

CREATE INDEX fleet_tasks_operator_status_idx ON fleet_tasks (operator_id, status);
CREATE INDEX fleet_tasks_status_updated_idx ON fleet_tasks (status, updated_at);
CREATE INDEX fleet_tasks_operator_created_idx ON fleet_tasks (operator_id, created_at DESC);
-- The monitor and the governor only ever look at live tasks: keep that index small.
CREATE INDEX fleet_tasks_live_idx ON fleet_tasks (operator_id, created_at)
    WHERE status NOT IN ('merged', 'abandoned', 'cancelled');

-- No FK to fleet_tasks: the history must outlive a deleted task.
CREATE TABLE fleet_audit (
    id          bigserial   NOT NULL,
    task_id     text,
    operator_id text        NOT NULL,
    actor       text        NOT NULL,
    action      text        NOT NULL,
    from_status text,
    to_status   text,
    version     integer,
    detail      jsonb       NOT NULL DEFAULT '{}'::jsonb,
    trace_id    text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT fleet_audit_pkey PRIMARY KEY (id),
    CONSTRAINT fleet_audit_action_check CHECK (length(action) BETWEEN 1 AND 64)
);

CREATE INDEX fleet_audit_task_idx ON fleet_audit (task_id, id);
CREATE INDEX fleet_audit_operator_created_idx ON fleet_audit (operator_id, created_at);

CREATE TABLE fleet_outbox (
    id                bigserial   NOT NULL,
    event_id          uuid        NOT NULL DEFAULT gen_random_uuid(),
    dedup_key         text,
    event_type        text        NOT NULL,
    task_id           text,
    operator_id       text        NOT NULL,
    payload           jsonb       NOT NULL DEFAULT '{}'::jsonb,
    -- commit-order reading: a relay only passes rows whose transaction is visible
    txid              xid8        NOT NULL DEFAULT pg_current_xact_id(),
    created_at        timestamptz NOT NULL DEFAULT now(),
    processed_at      timestamptz,
    attempts_started  integer     NOT NULL DEFAULT 0,
    attempts_finished integer     NOT NULL DEFAULT 0,
    last_error        text,
    CONSTRAINT fleet_outbox_pkey PRIMARY KEY (id),
    CONSTRAINT fleet_outbox_event_id_key UNIQUE (event_id),
    CONSTRAINT fleet_outbox_dedup_key_key UNIQUE (dedup_key),
    CONSTRAINT fleet_outbox_attempts_check CHECK (attempts_started >= 0 AND attempts_finished >= 0)
);

CREATE INDEX fleet_outbox_pending_idx ON fleet_outbox (id) WHERE processed_at IS NULL;

CREATE TABLE fleet_notifications (
    id          bigserial   NOT NULL,
    task_id     text,
    operator_id text        NOT NULL,
    type        text        NOT NULL,
    channel     text        NOT NULL,
    status      text        NOT NULL DEFAULT 'pending',
    attempts    integer     NOT NULL DEFAULT 0,
    last_error  text,
    payload     jsonb       NOT NULL DEFAULT '{}'::jsonb,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    sent_at     timestamptz,
    CONSTRAINT fleet_notifications_pkey PRIMARY KEY (id),
    CONSTRAINT fleet_notifications_task_id_fkey
        FOREIGN KEY (task_id) REFERENCES fleet_tasks (id) ON DELETE SET NULL,
    CONSTRAINT fleet_notifications_status_check CHECK (status IN ('pending', 'sent', 'failed')),
    CONSTRAINT fleet_notifications_attempts_check CHECK (attempts >= 0)
);

CREATE INDEX fleet_notifications_task_idx ON fleet_notifications (task_id);
CREATE INDEX fleet_notifications_pending_idx ON fleet_notifications (created_at)
    WHERE status = 'pending';

CREATE TABLE fleet_config (
    operator_id text        NOT NULL,
    key         text        NOT NULL,
    value       jsonb       NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT fleet_config_pkey PRIMARY KEY (operator_id, key),
    CONSTRAINT fleet_config_key_check CHECK (key ~ '^[A-Za-z0-9_.-]{1,128}$')
);

CREATE TRIGGER fleet_operators_updated_at BEFORE UPDATE ON fleet_operators
    FOR EACH ROW EXECUTE FUNCTION fleet_set_updated_at();
CREATE TRIGGER fleet_tasks_updated_at BEFORE UPDATE ON fleet_tasks
    FOR EACH ROW EXECUTE FUNCTION fleet_set_updated_at();
CREATE TRIGGER fleet_notifications_updated_at BEFORE UPDATE ON fleet_notifications
    FOR EACH ROW EXECUTE FUNCTION fleet_set_updated_at();
CREATE TRIGGER fleet_config_updated_at BEFORE UPDATE ON fleet_config
    FOR EACH ROW EXECUTE FUNCTION fleet_set_updated_at();

-- Tenant isolation. Fails closed: an unset or empty app.operator_id matches nothing.
ALTER TABLE fleet_operators ENABLE ROW LEVEL SECURITY;
ALTER TABLE fleet_operators FORCE ROW LEVEL SECURITY;
CREATE POLICY fleet_operators_tenant ON fleet_operators
    USING (id = NULLIF(current_setting('app.operator_id', true), '')
           OR current_setting('app.is_admin', true) = 'true')
    WITH CHECK (id = NULLIF(current_setting('app.operator_id', true), '')
                OR current_setting('app.is_admin', true) = 'true');

ALTER TABLE fleet_tasks ENABLE ROW LEVEL SECURITY;
ALTER TABLE fleet_tasks FORCE ROW LEVEL SECURITY;
CREATE POLICY fleet_tasks_tenant ON fleet_tasks
    USING (operator_id = NULLIF(current_setting('app.operator_id', true), '')
           OR current_setting('app.is_admin', true) = 'true')
    WITH CHECK (operator_id = NULLIF(current_setting('app.operator_id', true), '')
                OR current_setting('app.is_admin', true) = 'true');

ALTER TABLE fleet_audit ENABLE ROW LEVEL SECURITY;
ALTER TABLE fleet_audit FORCE ROW LEVEL SECURITY;
CREATE POLICY fleet_audit_tenant ON fleet_audit
    USING (operator_id = NULLIF(current_setting('app.operator_id', true), '')
           OR current_setting('app.is_admin', true) = 'true')
    WITH CHECK (operator_id = NULLIF(current_setting('app.operator_id', true), '')
                OR current_setting('app.is_admin', true) = 'true');

ALTER TABLE fleet_outbox ENABLE ROW LEVEL SECURITY;
ALTER TABLE fleet_outbox FORCE ROW LEVEL SECURITY;
CREATE POLICY fleet_outbox_tenant ON fleet_outbox
    USING (operator_id = NULLIF(current_setting('app.operator_id', true), '')
           OR current_setting('app.is_admin', true) = 'true')
    WITH CHECK (operator_id = NULLIF(current_setting('app.operator_id', true), '')
                OR current_setting('app.is_admin', true) = 'true');

ALTER TABLE fleet_notifications ENABLE ROW LEVEL SECURITY;
ALTER TABLE fleet_notifications FORCE ROW LEVEL SECURITY;
CREATE POLICY fleet_notifications_tenant ON fleet_notifications
    USING (operator_id = NULLIF(current_setting('app.operator_id', true), '')
           OR current_setting('app.is_admin', true) = 'true')
    WITH CHECK (operator_id = NULLIF(current_setting('app.operator_id', true), '')
                OR current_setting('app.is_admin', true) = 'true');

ALTER TABLE fleet_config ENABLE ROW LEVEL SECURITY;
ALTER TABLE fleet_config FORCE ROW LEVEL SECURITY;
CREATE POLICY fleet_config_tenant ON fleet_config
    USING (operator_id = NULLIF(current_setting('app.operator_id', true), '')
           OR current_setting('app.is_admin', true) = 'true')
    WITH CHECK (operator_id = NULLIF(current_setting('app.operator_id', true), '')
                OR current_setting('app.is_admin', true) = 'true');
