ALTER TABLE fleet_executions
    DROP CONSTRAINT IF EXISTS fleet_executions_more_tokens_check,
    DROP COLUMN IF EXISTS session_id,
    DROP COLUMN IF EXISTS total_tokens,
    DROP COLUMN IF EXISTS cached_tokens;
