-- 007 commands: a face attached to the database only (an observer; its conductor runs
-- elsewhere) asks the fleet's conductors to act. A conductor claims a command (the one
-- holding the task's lease, for a task verb), runs it as the operator recorded here, and
-- writes the result or the error. NOTIFY on insert wakes conductors; on finish, observers.

CREATE TABLE fleet_commands (
    id                bigserial   NOT NULL,
    operator_id       text        NOT NULL,
    operator_tier     text        NOT NULL,
    operator_is_admin boolean     NOT NULL DEFAULT false,
    -- no foreign key: a delete command outlives its task, and its observer reads the result
    task_id           text,
    verb              text        NOT NULL,
    args              jsonb       NOT NULL DEFAULT '{}'::jsonb,
    status            text        NOT NULL DEFAULT 'pending',
    result            jsonb,
    error             text,
    error_kind        text,
    claimed_by        text,
    claim_expires_at  timestamptz,
    attempts          integer     NOT NULL DEFAULT 0,
    created_at        timestamptz NOT NULL DEFAULT now(),
    claimed_at        timestamptz,
    finished_at       timestamptz,
    CONSTRAINT fleet_commands_pkey PRIMARY KEY (id),
    CONSTRAINT fleet_commands_verb_check
        CHECK (verb IN ('spawn', 'stop', 'retry', 'delete', 'merge', 'logs', 'diff')),
    CONSTRAINT fleet_commands_status_check CHECK (status IN ('pending', 'running', 'done', 'failed')),
    CONSTRAINT fleet_commands_operator_tier_check
        CHECK (operator_tier IN ('observer', 'participant', 'builder', 'architect', 'sovereign')),
    CONSTRAINT fleet_commands_task_id_check
        CHECK ((verb = 'spawn' AND task_id IS NULL)
               OR (verb <> 'spawn' AND task_id IS NOT NULL AND task_id ~ '^[a-z0-9]{6,32}$')),
    CONSTRAINT fleet_commands_args_check CHECK (jsonb_typeof(args) = 'object'),
    -- results are capped by the worker; this is the backstop
    CONSTRAINT fleet_commands_result_check CHECK (result IS NULL OR octet_length(result::text) <= 1048576),
    CONSTRAINT fleet_commands_attempts_check CHECK (attempts >= 0),
    -- an observer withdraws (abandons) a command nobody claimed in time
    CONSTRAINT fleet_commands_claim_check
        CHECK (status = 'pending' OR claimed_by IS NOT NULL OR error_kind = 'abandoned')
);

-- What conductors claim: unfinished commands, oldest first.
CREATE INDEX fleet_commands_open_idx ON fleet_commands (id) WHERE status IN ('pending', 'running');
CREATE INDEX fleet_commands_finished_idx ON fleet_commands (finished_at) WHERE finished_at IS NOT NULL;

CREATE FUNCTION fleet_commands_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM pg_notify('fleet_commands', NEW.id::text);
    ELSIF NEW.status IN ('done', 'failed') AND OLD.status IS DISTINCT FROM NEW.status THEN
        PERFORM pg_notify('fleet_command_done', NEW.id::text);
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER fleet_commands_notify AFTER INSERT OR UPDATE OF status ON fleet_commands
    FOR EACH ROW EXECUTE FUNCTION fleet_commands_notify();

-- An operator submits and reads its own commands; only an admin session may record an
-- admin operator (conductors claim and finish with admin visibility).
ALTER TABLE fleet_commands ENABLE ROW LEVEL SECURITY;
ALTER TABLE fleet_commands FORCE ROW LEVEL SECURITY;
CREATE POLICY fleet_commands_tenant ON fleet_commands
    USING (operator_id = NULLIF(current_setting('app.operator_id', true), '')
           OR current_setting('app.is_admin', true) = 'true')
    WITH CHECK ((operator_id = NULLIF(current_setting('app.operator_id', true), '') AND NOT operator_is_admin)
                OR current_setting('app.is_admin', true) = 'true');
