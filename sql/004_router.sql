-- 004 router: policies as data. Event routes (event type -> sequence), sequences (steps in
-- waves), handoff routes (step output -> follow-up sequence), the runs of sequences and the
-- dead-letter queue. A NULL operator_id is the platform default, visible to everyone; an
-- operator's row with the same key overrides it. fleet_resolve_policy() is the one place
-- that precedence is decided. The defaults are seeded here and mirrored in
-- fleet_tui/engine/router/defaults.py (a test keeps the two equal).

CREATE TABLE fleet_sequences (
    id          bigserial   NOT NULL,
    operator_id text,
    name        text        NOT NULL,
    description text        NOT NULL DEFAULT '',
    steps       jsonb       NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT fleet_sequences_pkey PRIMARY KEY (id),
    CONSTRAINT fleet_sequences_operator_name_key UNIQUE NULLS NOT DISTINCT (operator_id, name),
    CONSTRAINT fleet_sequences_name_check CHECK (name ~ '^[a-z0-9_.-]{1,64}$'),
    CONSTRAINT fleet_sequences_steps_check
        CHECK (jsonb_typeof(steps) = 'array' AND jsonb_array_length(steps) BETWEEN 1 AND 32)
);

CREATE TABLE fleet_event_routes (
    id            bigserial   NOT NULL,
    operator_id   text,
    event_type    text        NOT NULL,
    sequence_name text        NOT NULL,
    match         jsonb       NOT NULL DEFAULT '{}'::jsonb,
    enabled       boolean     NOT NULL DEFAULT true,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT fleet_event_routes_pkey PRIMARY KEY (id),
    CONSTRAINT fleet_event_routes_operator_event_key UNIQUE NULLS NOT DISTINCT (operator_id, event_type),
    CONSTRAINT fleet_event_routes_event_type_check CHECK (event_type ~ '^[a-z0-9_.:-]{1,64}$'),
    CONSTRAINT fleet_event_routes_match_check CHECK (jsonb_typeof(match) = 'object')
);

CREATE TABLE fleet_handoff_routes (
    id              bigserial   NOT NULL,
    operator_id     text,
    name            text        NOT NULL,
    source_sequence text        NOT NULL,
    source_step     text        NOT NULL,
    target_sequence text        NOT NULL,
    conditions      jsonb       NOT NULL DEFAULT '{}'::jsonb,
    context_map     jsonb       NOT NULL DEFAULT '{}'::jsonb,
    enabled         boolean     NOT NULL DEFAULT true,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT fleet_handoff_routes_pkey PRIMARY KEY (id),
    CONSTRAINT fleet_handoff_routes_operator_name_key UNIQUE NULLS NOT DISTINCT (operator_id, name),
    CONSTRAINT fleet_handoff_routes_name_check CHECK (name ~ '^[a-z0-9_.-]{1,64}$'),
    CONSTRAINT fleet_handoff_routes_conditions_check CHECK (jsonb_typeof(conditions) = 'object'),
    CONSTRAINT fleet_handoff_routes_context_map_check CHECK (jsonb_typeof(context_map) = 'object')
);

CREATE INDEX fleet_handoff_routes_source_idx ON fleet_handoff_routes (source_sequence, source_step);

-- One row per execution of a sequence (a dispatch or a follow-up).
CREATE TABLE fleet_route_runs (
    id            bigserial   NOT NULL,
    operator_id   text        NOT NULL,
    event_type    text        NOT NULL,
    sequence_name text        NOT NULL,
    status        text        NOT NULL DEFAULT 'running',
    depth         integer     NOT NULL DEFAULT 1,
    parent_run_id bigint,
    context       jsonb       NOT NULL DEFAULT '{}'::jsonb,
    results       jsonb       NOT NULL DEFAULT '{}'::jsonb,
    error         text,
    trace_id      text,
    started_at    timestamptz NOT NULL DEFAULT now(),
    finished_at   timestamptz,
    CONSTRAINT fleet_route_runs_pkey PRIMARY KEY (id),
    CONSTRAINT fleet_route_runs_parent_fkey
        FOREIGN KEY (parent_run_id) REFERENCES fleet_route_runs (id) ON DELETE SET NULL,
    CONSTRAINT fleet_route_runs_status_check
        CHECK (status IN ('running', 'succeeded', 'failed', 'stopped')),
    CONSTRAINT fleet_route_runs_depth_check CHECK (depth >= 1)
);

CREATE INDEX fleet_route_runs_operator_started_idx ON fleet_route_runs (operator_id, started_at);
CREATE INDEX fleet_route_runs_parent_idx ON fleet_route_runs (parent_run_id);

-- A failed critical step or follow-up, waiting to be retried (1 min * 4^n, capped at 1 h).
CREATE TABLE fleet_dead_letters (
    id              bigserial   NOT NULL,
    run_id          bigint,
    operator_id     text        NOT NULL,
    task_id         text,
    event_type      text        NOT NULL,
    sequence_name   text        NOT NULL,
    step_name       text,
    context         jsonb       NOT NULL DEFAULT '{}'::jsonb,
    error           text        NOT NULL,
    depth           integer     NOT NULL DEFAULT 1,
    attempts        integer     NOT NULL DEFAULT 0,
    status          text        NOT NULL DEFAULT 'pending',
    next_attempt_at timestamptz NOT NULL,
    trace_id        text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT fleet_dead_letters_pkey PRIMARY KEY (id),
    CONSTRAINT fleet_dead_letters_run_id_fkey
        FOREIGN KEY (run_id) REFERENCES fleet_route_runs (id) ON DELETE SET NULL,
    CONSTRAINT fleet_dead_letters_status_check
        CHECK (status IN ('pending', 'retrying', 'resolved', 'discarded')),
    CONSTRAINT fleet_dead_letters_attempts_check CHECK (attempts >= 0)
);

CREATE INDEX fleet_dead_letters_due_idx ON fleet_dead_letters (next_attempt_at) WHERE status = 'pending';
CREATE INDEX fleet_dead_letters_operator_created_idx ON fleet_dead_letters (operator_id, created_at);

CREATE TRIGGER fleet_sequences_updated_at BEFORE UPDATE ON fleet_sequences
    FOR EACH ROW EXECUTE FUNCTION fleet_set_updated_at();
CREATE TRIGGER fleet_event_routes_updated_at BEFORE UPDATE ON fleet_event_routes
    FOR EACH ROW EXECUTE FUNCTION fleet_set_updated_at();
CREATE TRIGGER fleet_handoff_routes_updated_at BEFORE UPDATE ON fleet_handoff_routes
    FOR EACH ROW EXECUTE FUNCTION fleet_set_updated_at();
CREATE TRIGGER fleet_dead_letters_updated_at BEFORE UPDATE ON fleet_dead_letters
    FOR EACH ROW EXECUTE FUNCTION fleet_set_updated_at();

-- Policies: platform rows (operator NULL) are read by all; only admins write them.
ALTER TABLE fleet_sequences ENABLE ROW LEVEL SECURITY;
ALTER TABLE fleet_sequences FORCE ROW LEVEL SECURITY;
CREATE POLICY fleet_sequences_tenant ON fleet_sequences
    USING (operator_id IS NULL
           OR operator_id = NULLIF(current_setting('app.operator_id', true), '')
           OR current_setting('app.is_admin', true) = 'true')
    WITH CHECK (operator_id = NULLIF(current_setting('app.operator_id', true), '')
                OR current_setting('app.is_admin', true) = 'true');

ALTER TABLE fleet_event_routes ENABLE ROW LEVEL SECURITY;
ALTER TABLE fleet_event_routes FORCE ROW LEVEL SECURITY;
CREATE POLICY fleet_event_routes_tenant ON fleet_event_routes
    USING (operator_id IS NULL
           OR operator_id = NULLIF(current_setting('app.operator_id', true), '')
           OR current_setting('app.is_admin', true) = 'true')
    WITH CHECK (operator_id = NULLIF(current_setting('app.operator_id', true), '')
                OR current_setting('app.is_admin', true) = 'true');

ALTER TABLE fleet_handoff_routes ENABLE ROW LEVEL SECURITY;
ALTER TABLE fleet_handoff_routes FORCE ROW LEVEL SECURITY;
CREATE POLICY fleet_handoff_routes_tenant ON fleet_handoff_routes
    USING (operator_id IS NULL
           OR operator_id = NULLIF(current_setting('app.operator_id', true), '')
           OR current_setting('app.is_admin', true) = 'true')
    WITH CHECK (operator_id = NULLIF(current_setting('app.operator_id', true), '')
                OR current_setting('app.is_admin', true) = 'true');

ALTER TABLE fleet_route_runs ENABLE ROW LEVEL SECURITY;
ALTER TABLE fleet_route_runs FORCE ROW LEVEL SECURITY;
CREATE POLICY fleet_route_runs_tenant ON fleet_route_runs
    USING (operator_id = NULLIF(current_setting('app.operator_id', true), '')
           OR current_setting('app.is_admin', true) = 'true')
    WITH CHECK (operator_id = NULLIF(current_setting('app.operator_id', true), '')
                OR current_setting('app.is_admin', true) = 'true');

ALTER TABLE fleet_dead_letters ENABLE ROW LEVEL SECURITY;
ALTER TABLE fleet_dead_letters FORCE ROW LEVEL SECURITY;
CREATE POLICY fleet_dead_letters_tenant ON fleet_dead_letters
    USING (operator_id = NULLIF(current_setting('app.operator_id', true), '')
           OR current_setting('app.is_admin', true) = 'true')
    WITH CHECK (operator_id = NULLIF(current_setting('app.operator_id', true), '')
                OR current_setting('app.is_admin', true) = 'true');

-- The effective policy of one operator: for each key, the operator's row if it has one,
-- else the platform default. Invoker's rights, so row-level security still applies.
CREATE FUNCTION fleet_resolve_policy(p_operator text) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'routes', coalesce((
            SELECT jsonb_agg(to_jsonb(r) - 'id' - 'created_at' - 'updated_at' ORDER BY r.event_type)
            FROM (SELECT DISTINCT ON (event_type) * FROM fleet_event_routes
                  WHERE operator_id IS NULL OR operator_id = p_operator
                  ORDER BY event_type, operator_id NULLS LAST) r), '[]'::jsonb),
        'sequences', coalesce((
            SELECT jsonb_agg(to_jsonb(s) - 'id' - 'created_at' - 'updated_at' ORDER BY s.name)
            FROM (SELECT DISTINCT ON (name) * FROM fleet_sequences
                  WHERE operator_id IS NULL OR operator_id = p_operator
                  ORDER BY name, operator_id NULLS LAST) s), '[]'::jsonb),
        'handoffs', coalesce((
            SELECT jsonb_agg(to_jsonb(h) - 'id' - 'created_at' - 'updated_at' ORDER BY h.name)
            FROM (SELECT DISTINCT ON (name) * FROM fleet_handoff_routes
                  WHERE operator_id IS NULL OR operator_id = p_operator
                  ORDER BY name, operator_id NULLS LAST) h), '[]'::jsonb))
$$;

-- Seed: the platform defaults (keep equal to engine/router/defaults.py).
INSERT INTO fleet_sequences (operator_id, name, description, steps) VALUES
(NULL, 'review_pipeline', 'reviewers on a change whose CI passes, then ready or rejected', '[
  {"name": "start_review", "adapter": "transition_task", "wave": 0, "criticality": "critical", "retries": 2, "params": {"to": "reviewing"}},
  {"name": "review_security", "adapter": "run_reviewer", "wave": 1, "criticality": "best_effort", "retries": 2, "params": {"focus": "security"}},
  {"name": "review_logic", "adapter": "run_reviewer", "wave": 1, "criticality": "best_effort", "retries": 2, "params": {"focus": "logic"}},
  {"name": "review_architecture", "adapter": "run_reviewer", "wave": 1, "criticality": "best_effort", "retries": 2, "params": {"focus": "architecture"}},
  {"name": "conclude_review", "adapter": "transition_task", "wave": 2, "criticality": "critical", "retries": 2, "params": {"to": "review_outcome"}}
]'::jsonb),
(NULL, 'retry_policy', 'capture the failure, then retry with backoff or abandon when the budget is spent', '[
  {"name": "capture", "adapter": "capture_failure", "wave": 0, "criticality": "best_effort", "retries": 0, "params": {}},
  {"name": "retry_or_abandon", "adapter": "transition_task", "wave": 1, "criticality": "critical", "retries": 2, "params": {"to": "retry_or_abandon"}}
]'::jsonb),
(NULL, 'notify_completed', 'tell the operator a task was merged', '[
  {"name": "notify", "adapter": "notify", "wave": 0, "criticality": "best_effort", "retries": 2, "params": {"kind": "completed", "summary": "merged into base"}}
]'::jsonb),
(NULL, 'notify_abandoned', 'tell the operator a task was abandoned', '[
  {"name": "notify", "adapter": "notify", "wave": 0, "criticality": "best_effort", "retries": 2, "params": {"kind": "abandoned", "summary": "retry budget spent or abandoned"}}
]'::jsonb),
(NULL, 'notify_rejected', 'tell the operator the reviewers asked for changes', '[
  {"name": "notify", "adapter": "notify", "wave": 0, "criticality": "best_effort", "retries": 2, "params": {"kind": "rejected", "summary": "reviewers requested changes"}}
]'::jsonb),
(NULL, 'notify_health_alert', 'tell the operators a health threshold was crossed', '[
  {"name": "notify", "adapter": "notify", "wave": 0, "criticality": "best_effort", "retries": 2, "params": {"kind": "health_alert", "summary": "health threshold crossed"}}
]'::jsonb);

INSERT INTO fleet_event_routes (operator_id, event_type, sequence_name, match) VALUES
(NULL, 'task.pr_created', 'review_pipeline', '{"ci_status": "passing"}'::jsonb),
(NULL, 'task.failed', 'retry_policy', '{}'::jsonb),
(NULL, 'task.rejected', 'retry_policy', '{}'::jsonb),
(NULL, 'task.merged', 'notify_completed', '{}'::jsonb),
(NULL, 'task.abandoned', 'notify_abandoned', '{}'::jsonb),
(NULL, 'health.alert', 'notify_health_alert', '{}'::jsonb);

INSERT INTO fleet_handoff_routes (operator_id, name, source_sequence, source_step, target_sequence,
                                  conditions, context_map) VALUES
(NULL, 'rejected_review_notifies', 'review_pipeline', 'conclude_review', 'notify_rejected',
 '{"classification": "rejected"}'::jsonb, '{"task_id": "task_id", "summary": "output.summary"}'::jsonb);
