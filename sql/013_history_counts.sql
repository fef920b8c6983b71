-- 013 the history a spawn reads, kept as counts. Routing's reputation (outcomes per task type,
-- agent and model: outcomes.py's definitions), the mean cost of a run and each operator's
-- spend were sums over every execution, read on every spawn (the reputation twice): 66 ms
-- per spawn with 10,000 finished tasks, growing with history. Triggers keep the counts in
-- the transactions that change what they count (as fleet_live_counts does);
-- fleet_history_recount() rebuilds them from the executions. Similar past tasks (a
-- prompt's BACKGROUND) are read through an index, newest first, instead of sorted.

CREATE TABLE fleet_route_stats (
    task_type   text          NOT NULL,
    agent       text          NOT NULL,
    model       text          NOT NULL,  -- the execution's model, else its agent (as routing keys it)
    successes   bigint        NOT NULL DEFAULT 0,
    failures    bigint        NOT NULL DEFAULT 0,
    costed_runs bigint        NOT NULL DEFAULT 0,  -- executions with a reported cost
    cost_usd    numeric       NOT NULL DEFAULT 0,  -- their sum
    CONSTRAINT fleet_route_stats_pkey PRIMARY KEY (task_type, agent, model)
);
-- No row security: fleet-wide figures that no operator owns and that every operator's
-- transactions change (an operator's own merge counts); no row names an operator.

CREATE TABLE fleet_spend (
    operator_id text    NOT NULL,
    spent_usd   numeric NOT NULL DEFAULT 0,
    CONSTRAINT fleet_spend_pkey PRIMARY KEY (operator_id)
);

ALTER TABLE fleet_spend ENABLE ROW LEVEL SECURITY;
ALTER TABLE fleet_spend FORCE ROW LEVEL SECURITY;
CREATE POLICY fleet_spend_tenant ON fleet_spend
    USING (operator_id = NULLIF(current_setting('app.operator_id', true), '')
           OR current_setting('app.is_admin', true) = 'true')
    WITH CHECK (operator_id = NULLIF(current_setting('app.operator_id', true), '')
                OR current_setting('app.is_admin', true) = 'true');

-- What an attempt counts for, given its task's status and retry count (outcomes.py): its
-- task's latest attempt succeeded when the task is ready or merged and failed when it is
-- failed, rejected or abandoned; an earlier attempt failed (a retry superseded it).
CREATE FUNCTION fleet_status_outcome(p_status text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN p_status IN ('ready', 'merged') THEN 'success'
                WHEN p_status IN ('failed', 'rejected', 'abandoned') THEN 'failure' END
$$;

CREATE FUNCTION fleet_outcome(p_attempt integer, p_status text, p_retry_count integer)
RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN p_attempt < p_retry_count + 1 THEN 'failure'
                WHEN p_attempt = p_retry_count + 1 THEN fleet_status_outcome(p_status) END
$$;

-- Add p_sign (1 or -1) times one outcome, and a reported cost, to a route's figures.
CREATE FUNCTION fleet_note_route(p_type text, p_agent text, p_model text, p_outcome text,
                                 p_cost numeric, p_sign integer) RETURNS void LANGUAGE sql AS $$
    INSERT INTO fleet_route_stats AS s (task_type, agent, model, successes, failures, costed_runs, cost_usd)
    SELECT p_type, p_agent, coalesce(p_model, p_agent),
           CASE WHEN p_outcome = 'success' THEN p_sign ELSE 0 END,
           CASE WHEN p_outcome = 'failure' THEN p_sign ELSE 0 END,
           CASE WHEN p_cost IS NOT NULL THEN p_sign ELSE 0 END,
           coalesce(p_cost, 0) * p_sign
     WHERE p_outcome IS NOT NULL OR p_cost IS NOT NULL
    ON CONFLICT (task_type, agent, model) DO UPDATE
        SET successes = s.successes + EXCLUDED.successes, failures = s.failures + EXCLUDED.failures,
            costed_runs = s.costed_runs + EXCLUDED.costed_runs, cost_usd = s.cost_usd + EXCLUDED.cost_usd
$$;

-- A task's status or retry count changed, or it is being deleted: its attempts' outcomes move.
-- (Before a deletion: the cascade removes its executions once the task row is gone.)
CREATE FUNCTION fleet_count_task_outcomes() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    e     record;
    v_old text;
    v_new text;
BEGIN
    FOR e IN SELECT x.attempt, x.task_type, x.agent, x.model FROM fleet_executions x WHERE x.task_id = OLD.id LOOP
        v_old := fleet_outcome(e.attempt, OLD.status, OLD.retry_count);
        IF TG_OP = 'DELETE' THEN
            v_new := NULL;
        ELSE
            v_new := fleet_outcome(e.attempt, NEW.status, NEW.retry_count);
        END IF;
        IF v_old IS DISTINCT FROM v_new THEN
            PERFORM fleet_note_route(e.task_type, e.agent, e.model, v_old, NULL, -1);
            PERFORM fleet_note_route(e.task_type, e.agent, e.model, v_new, NULL, 1);
        END IF;
    END LOOP;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER fleet_tasks_count_outcomes AFTER UPDATE OF status, retry_count ON fleet_tasks
    FOR EACH ROW WHEN (OLD.retry_count IS DISTINCT FROM NEW.retry_count
                       OR fleet_status_outcome(OLD.status) IS DISTINCT FROM fleet_status_outcome(NEW.status))
    EXECUTE FUNCTION fleet_count_task_outcomes();
CREATE TRIGGER fleet_tasks_uncount_outcomes BEFORE DELETE ON fleet_tasks
    FOR EACH ROW EXECUTE FUNCTION fleet_count_task_outcomes();

-- An execution added, removed or changed: its outcome (when its task is there: a task's
-- deletion counted its executions out already), its reported cost and its operator's spend.
CREATE FUNCTION fleet_count_execution() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    t record;
BEGIN
    IF TG_OP <> 'INSERT' THEN
        SELECT x.status, x.retry_count INTO t FROM fleet_tasks x WHERE x.id = OLD.task_id;
        PERFORM fleet_note_route(OLD.task_type, OLD.agent, OLD.model,
                                 CASE WHEN FOUND THEN fleet_outcome(OLD.attempt, t.status, t.retry_count) END,
                                 OLD.cost_usd, -1);
        IF OLD.cost_usd IS NOT NULL THEN
            UPDATE fleet_spend SET spent_usd = spent_usd - OLD.cost_usd WHERE operator_id = OLD.operator_id;
        END IF;
    END IF;
    IF TG_OP <> 'DELETE' THEN
        SELECT x.status, x.retry_count INTO t FROM fleet_tasks x WHERE x.id = NEW.task_id;
        PERFORM fleet_note_route(NEW.task_type, NEW.agent, NEW.model,
                                 CASE WHEN FOUND THEN fleet_outcome(NEW.attempt, t.status, t.retry_count) END,
                                 NEW.cost_usd, 1);
        IF NEW.cost_usd IS NOT NULL THEN
            INSERT INTO fleet_spend AS s (operator_id, spent_usd) VALUES (NEW.operator_id, NEW.cost_usd)
                ON CONFLICT (operator_id) DO UPDATE SET spent_usd = s.spent_usd + EXCLUDED.spent_usd;
        END IF;
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER fleet_executions_count AFTER INSERT OR DELETE
    OR UPDATE OF task_id, operator_id, attempt, task_type, agent, model, cost_usd ON fleet_executions
    FOR EACH ROW EXECUTE FUNCTION fleet_count_execution();

-- Rebuild both tables from the executions; no change is counted meanwhile (every trigger
-- above writes one of them, so it waits for the lock). The number of rows that were wrong.
CREATE FUNCTION fleet_history_recount() RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    v_routes bigint;
    v_spend  bigint;
BEGIN
    PERFORM set_config('app.is_admin', 'true', true);
    LOCK TABLE fleet_route_stats, fleet_spend IN EXCLUSIVE MODE;
    WITH real AS (
        SELECT e.task_type, e.agent, coalesce(e.model, e.agent) AS model,
               count(*) FILTER (WHERE fleet_outcome(e.attempt, t.status, t.retry_count) = 'success') AS successes,
               count(*) FILTER (WHERE fleet_outcome(e.attempt, t.status, t.retry_count) = 'failure') AS failures,
               count(e.cost_usd) AS costed_runs, coalesce(sum(e.cost_usd), 0) AS cost_usd
          FROM fleet_executions e JOIN fleet_tasks t ON t.id = e.task_id
         GROUP BY 1, 2, 3
    ), fixed AS (
        INSERT INTO fleet_route_stats AS s (task_type, agent, model, successes, failures, costed_runs, cost_usd)
        SELECT coalesce(r.task_type, k.task_type), coalesce(r.agent, k.agent), coalesce(r.model, k.model),
               coalesce(r.successes, 0), coalesce(r.failures, 0), coalesce(r.costed_runs, 0), coalesce(r.cost_usd, 0)
          FROM real r FULL JOIN fleet_route_stats k
            ON k.task_type = r.task_type AND k.agent = r.agent AND k.model = r.model
         WHERE (coalesce(r.successes, 0), coalesce(r.failures, 0), coalesce(r.costed_runs, 0), coalesce(r.cost_usd, 0))
               IS DISTINCT FROM (k.successes, k.failures, k.costed_runs, k.cost_usd)
        ON CONFLICT (task_type, agent, model) DO UPDATE
            SET successes = EXCLUDED.successes, failures = EXCLUDED.failures,
                costed_runs = EXCLUDED.costed_runs, cost_usd = EXCLUDED.cost_usd
        RETURNING 1
    )
    SELECT count(*) INTO v_routes FROM fixed;
    WITH real AS (
        SELECT e.operator_id, sum(e.cost_usd) AS spent_usd FROM fleet_executions e
         WHERE e.cost_usd IS NOT NULL GROUP BY 1
    ), fixed AS (
        INSERT INTO fleet_spend AS s (operator_id, spent_usd)
        SELECT coalesce(r.operator_id, k.operator_id), coalesce(r.spent_usd, 0)
          FROM real r FULL JOIN fleet_spend k ON k.operator_id = r.operator_id
         WHERE coalesce(r.spent_usd, 0) IS DISTINCT FROM k.spent_usd
        ON CONFLICT (operator_id) DO UPDATE SET spent_usd = EXCLUDED.spent_usd
        RETURNING 1
    )
    SELECT count(*) INTO v_spend FROM fixed;
    RETURN v_routes + v_spend;
END;
$$;

SELECT fleet_history_recount();

CREATE INDEX fleet_tasks_similar_idx ON fleet_tasks (operator_id, repo, task_type, updated_at DESC)
    WHERE status IN ('ready', 'merged', 'failed', 'rejected', 'abandoned');
