-- 002 executions: one row per agent run (attempt), the lineage of a task's attempts and
-- the history reputation and budgets are computed from.

CREATE TABLE fleet_executions (
    id            bigserial     NOT NULL,
    task_id       text          NOT NULL,
    operator_id   text          NOT NULL,
    attempt       integer       NOT NULL,
    agent         text          NOT NULL,
    model         text,
    task_type     text          NOT NULL,
    runtime       text          NOT NULL,
    started_at    timestamptz   NOT NULL DEFAULT now(),
    finished_at   timestamptz,
    duration_ms   bigint,
    exit_code     integer,
    failure       text,
    input_tokens  bigint,
    output_tokens bigint,
    cost_usd      numeric(14, 6),
    context_hash  text,
    prompt        text,
    CONSTRAINT fleet_executions_pkey PRIMARY KEY (id),
    CONSTRAINT fleet_executions_task_id_fkey
        FOREIGN KEY (task_id) REFERENCES fleet_tasks (id) ON DELETE CASCADE,
    CONSTRAINT fleet_executions_task_attempt_key UNIQUE (task_id, attempt),
    CONSTRAINT fleet_executions_attempt_check CHECK (attempt >= 1),
    CONSTRAINT fleet_executions_tokens_check
        CHECK (coalesce(input_tokens, 0) >= 0 AND coalesce(output_tokens, 0) >= 0),
    CONSTRAINT fleet_executions_cost_check CHECK (cost_usd IS NULL OR cost_usd >= 0)
);

CREATE INDEX fleet_executions_operator_started_idx ON fleet_executions (operator_id, started_at);
CREATE INDEX fleet_executions_route_idx ON fleet_executions (task_type, agent, model);

ALTER TABLE fleet_executions ENABLE ROW LEVEL SECURITY;
ALTER TABLE fleet_executions FORCE ROW LEVEL SECURITY;
CREATE POLICY fleet_executions_tenant ON fleet_executions
    USING (operator_id = NULLIF(current_setting('app.operator_id', true), '')
           OR current_setting('app.is_admin', true) = 'true')
    WITH CHECK (operator_id = NULLIF(current_setting('app.operator_id', true), '')
                OR current_setting('app.is_admin', true) = 'true');
