-- Usage per agent run as structured streams report it: cached and total tokens, and the
-- CLI's session id (what a resume continues).
ALTER TABLE fleet_executions
    ADD COLUMN cached_tokens bigint,
    ADD COLUMN total_tokens bigint,
    ADD COLUMN session_id text,
    ADD CONSTRAINT fleet_executions_more_tokens_check
        CHECK (coalesce(cached_tokens, 0) >= 0 AND coalesce(total_tokens, 0) >= 0);
