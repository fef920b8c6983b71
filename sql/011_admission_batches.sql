-- 011 admissions in batches, counted. The number of live tasks per operator is kept by a
-- trigger on fleet_tasks in the transaction that changes them, so an admission reads a
-- handful of rows instead of counting every live task under the fleet lock; fleet_recount()
-- rebuilds the rows from the tasks (a conductor calls it at start). fleet_admit_many decides
-- a batch of requests in order under one take of the fleet lock, as one statement: the lock
-- is held for the server's work alone, never across a round trip to a busy client.

CREATE TABLE fleet_live_counts (
    operator_id text   NOT NULL,
    live        bigint NOT NULL DEFAULT 0,
    CONSTRAINT fleet_live_counts_pkey PRIMARY KEY (operator_id),
    CONSTRAINT fleet_live_counts_live_check CHECK (live >= 0)
);

-- An operator moving its own task changes its own row; the governor and the monitor see all.
ALTER TABLE fleet_live_counts ENABLE ROW LEVEL SECURITY;
ALTER TABLE fleet_live_counts FORCE ROW LEVEL SECURITY;
CREATE POLICY fleet_live_counts_tenant ON fleet_live_counts
    USING (operator_id = NULLIF(current_setting('app.operator_id', true), '')
           OR current_setting('app.is_admin', true) = 'true')
    WITH CHECK (operator_id = NULLIF(current_setting('app.operator_id', true), '')
                OR current_setting('app.is_admin', true) = 'true');

CREATE FUNCTION fleet_is_live(p_status text) RETURNS boolean LANGUAGE sql IMMUTABLE AS $$
    SELECT p_status NOT IN ('merged', 'abandoned', 'cancelled')
$$;

CREATE FUNCTION fleet_count_live() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v_was boolean := TG_OP <> 'INSERT' AND fleet_is_live(OLD.status);
    v_is  boolean := TG_OP <> 'DELETE' AND fleet_is_live(NEW.status);
BEGIN
    IF v_was AND NOT (v_is AND NEW.operator_id = OLD.operator_id) THEN
        UPDATE fleet_live_counts SET live = live - 1 WHERE operator_id = OLD.operator_id;
    END IF;
    IF v_is AND NOT (v_was AND NEW.operator_id = OLD.operator_id) THEN
        INSERT INTO fleet_live_counts AS c (operator_id, live) VALUES (NEW.operator_id, 1)
            ON CONFLICT (operator_id) DO UPDATE SET live = c.live + 1;
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER fleet_tasks_count_live AFTER INSERT OR DELETE OR UPDATE OF status, operator_id ON fleet_tasks
    FOR EACH ROW EXECUTE FUNCTION fleet_count_live();

-- Rebuild every row from the tasks, under the admission lock (no admission in between).
CREATE FUNCTION fleet_recount() RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    v_fixed bigint;
BEGIN
    PERFORM set_config('app.is_admin', 'true', true);
    PERFORM pg_advisory_xact_lock(5496643813966098);
    LOCK TABLE fleet_live_counts IN EXCLUSIVE MODE;  -- no move counts meanwhile
    WITH real AS (
        SELECT t.operator_id, count(*) AS live FROM fleet_tasks t WHERE fleet_is_live(t.status)
        GROUP BY t.operator_id
    ), fixed AS (
        INSERT INTO fleet_live_counts AS c (operator_id, live)
        SELECT coalesce(r.operator_id, c0.operator_id), coalesce(r.live, 0)
          FROM real r FULL JOIN fleet_live_counts c0 ON c0.operator_id = r.operator_id
         WHERE c0.live IS DISTINCT FROM coalesce(r.live, 0)
        ON CONFLICT (operator_id) DO UPDATE SET live = EXCLUDED.live
        RETURNING 1
    )
    SELECT count(*) INTO v_fixed FROM fixed;
    RETURN v_fixed;
END;
$$;

SELECT fleet_recount();

-- One admission decision; the caller holds the fleet lock (fleet_admit_many). p_queue_id NULL:
-- a fresh request (p_may_queue: queue it when the fleet is full or requests of at least its
-- priority wait; without it, only a full fleet refuses it); else: admit that queue entry.
-- Outcomes: created (task), existing (same idempotency key), denied (tier limit), queued or
-- merged (queue entry id), full (nothing admitted), gone (the entry was taken meanwhile).
CREATE FUNCTION fleet_admit_one(
    p_operator text, p_tier text, p_admin boolean, p_limit integer, p_capacity integer,
    p_queue_id bigint, p_may_queue boolean, p_request jsonb, p_actor text,
    p_owner text, p_lease_s double precision,
    p_id text, p_description text, p_repo text, p_base text, p_type text, p_agent text,
    p_model text, p_runtime text, p_priority integer, p_max_retries integer, p_key text,
    p_branch text, p_trace text,
    OUT outcome text, OUT ref text, OUT live bigint, OUT fleet_live bigint, OUT task jsonb
) LANGUAGE plpgsql AS $$
DECLARE
    v_existing text;
    v_task     fleet_tasks;
BEGIN
    PERFORM 1 FROM fleet_operators o WHERE o.id = p_operator AND o.tier = p_tier AND o.is_admin = p_admin;
    IF NOT FOUND THEN  -- a read first: most requests come from an operator already recorded as is
        INSERT INTO fleet_operators AS o (id, tier, is_admin) VALUES (p_operator, p_tier, p_admin)
            ON CONFLICT (id) DO UPDATE SET tier = EXCLUDED.tier, is_admin = EXCLUDED.is_admin;
    END IF;
    IF p_queue_id IS NOT NULL THEN
        PERFORM 1 FROM fleet_spawn_queue q WHERE q.id = p_queue_id AND q.status = 'queued' FOR UPDATE;
        IF NOT FOUND THEN
            outcome := 'gone'; ref := p_queue_id::text;
            RETURN;
        END IF;
    END IF;
    SELECT t.id INTO v_existing FROM fleet_tasks t WHERE t.operator_id = p_operator AND t.idempotency_key = p_key;
    IF v_existing IS NOT NULL THEN
        UPDATE fleet_spawn_queue SET status = 'admitted', task_id = v_existing, admitted_at = now()
            WHERE id = p_queue_id;
        outcome := 'existing'; ref := v_existing;
        SELECT to_jsonb(t) INTO task FROM fleet_tasks t WHERE t.id = v_existing;
        RETURN;
    END IF;
    SELECT coalesce(sum(c.live) FILTER (WHERE c.operator_id = p_operator), 0), coalesce(sum(c.live), 0)
        INTO live, fleet_live FROM fleet_live_counts c;
    IF live >= p_limit THEN
        outcome := 'denied';
        RETURN;
    END IF;
    IF fleet_live >= p_capacity OR (p_may_queue AND EXISTS (
            SELECT 1 FROM fleet_spawn_queue q WHERE q.status = 'queued' AND q.priority >= p_priority)) THEN
        IF NOT p_may_queue THEN
            outcome := 'full';
            RETURN;
        END IF;
        SELECT q.id::text INTO ref FROM fleet_spawn_queue q
            WHERE q.operator_id = p_operator AND q.dedup_key = p_key AND q.status = 'queued' LIMIT 1;
        IF ref IS NOT NULL THEN
            outcome := 'merged';
            RETURN;
        END IF;
        INSERT INTO fleet_spawn_queue (operator_id, priority, request, dedup_key, trace_id)
            VALUES (p_operator, p_priority, p_request, p_key, p_trace) RETURNING id::text INTO ref;
        outcome := 'queued';
        RETURN;
    END IF;
    INSERT INTO fleet_tasks (id, operator_id, description, repo, base_branch, task_type, agent, model,
                             runtime, priority, max_retries, idempotency_key, branch, trace_id)
        VALUES (p_id, p_operator, p_description, p_repo, p_base, p_type, p_agent, p_model, p_runtime,
                p_priority, p_max_retries, p_key, p_branch, p_trace)
        RETURNING * INTO v_task;
    -- fleet_record's two rows, written here: a call per admission costs as much as the inserts
    INSERT INTO fleet_audit (task_id, operator_id, actor, action, from_status, to_status, version, detail, trace_id)
        VALUES (p_id, p_operator, p_actor, 'created', NULL, v_task.status, v_task.version, '{}'::jsonb, p_trace);
    INSERT INTO fleet_outbox (event_type, payload, task_id, operator_id, dedup_key)
        VALUES ('task.' || v_task.status,
                jsonb_build_object('id', p_id, 'status', v_task.status, 'version', v_task.version,
                                   'operator', p_operator, 'from_status', NULL, 'trace_id', p_trace),
                p_id, p_operator, 'task:' || p_id || ':v' || v_task.version)
        ON CONFLICT (dedup_key) DO NOTHING;
    IF p_owner IS NOT NULL THEN  -- the spawn is owned from its admission on
        INSERT INTO fleet_leases (task_id, owner, epoch, expires_at)
            VALUES (p_id, p_owner, 1, now() + make_interval(secs => p_lease_s));
    END IF;
    UPDATE fleet_spawn_queue SET status = 'admitted', task_id = p_id, admitted_at = now()
        WHERE id = p_queue_id;
    outcome := 'created'; ref := p_id; live := live + 1; fleet_live := fleet_live + 1;
    task := to_jsonb(v_task);
END;
$$;

-- Decide the requests of p_requests (a JSON array of objects keyed as fleet_admit_one's
-- parameters without p_) in order, under one take of the fleet lock: row i is request i.
-- Run it as a statement of its own (no transaction around it): it sets its own admin view.
CREATE FUNCTION fleet_admit_many(p_requests jsonb)
RETURNS TABLE (i integer, outcome text, ref text, live bigint, fleet_live bigint, task jsonb)
LANGUAGE plpgsql AS $$
DECLARE
    r jsonb;
    d record;
BEGIN
    -- the governor's authority sees the whole fleet; local: dies with this transaction
    PERFORM set_config('app.is_admin', 'true', true);
    -- The fleet lock is held until the commit is flushed: with a synchronous commit, one disk
    -- flush (~4 ms) per batch for the whole fleet. Not waiting for it loses nothing anyone
    -- was told: a created task's spawn saga writes synchronously before it makes anything
    -- (that flush carries this commit), a refusal wrote nothing. A queue entry (answered
    -- 'queued') turns the flush back on.
    PERFORM set_config('synchronous_commit', 'off', true);
    -- One lock for every admission of the fleet, held until commit, so the counts each
    -- decision reads (a fresh snapshot: these functions are volatile) stay true until then.
    PERFORM pg_advisory_xact_lock(5496643813966098);
    i := 0;
    FOR r IN SELECT e FROM jsonb_array_elements(p_requests) e LOOP
        i := i + 1;
        SELECT * INTO d FROM fleet_admit_one(
            r->>'operator', r->>'tier', (r->>'admin')::boolean, (r->>'limit')::integer,
            (r->>'capacity')::integer, (r->>'queue_id')::bigint, (r->>'may_queue')::boolean,
            coalesce(r->'request', '{}'::jsonb), r->>'actor', r->>'owner', (r->>'lease_s')::double precision,
            r->>'id', r->>'description', r->>'repo', r->>'base', r->>'type', r->>'agent', r->>'model',
            r->>'runtime', (r->>'priority')::integer, (r->>'max_retries')::integer, r->>'key',
            r->>'branch', r->>'trace');
        outcome := d.outcome; ref := d.ref; live := d.live; fleet_live := d.fleet_live; task := d.task;
        IF outcome = 'queued' THEN
            PERFORM set_config('synchronous_commit', 'on', true);
        END IF;
        RETURN NEXT;
    END LOOP;
END;
$$;

DROP FUNCTION fleet_admit(text, text, boolean, integer, integer, bigint, boolean, jsonb, text, text,
    double precision, text, text, text, text, text, text, text, text, integer, integer, text, text, text);
