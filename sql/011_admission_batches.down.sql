DROP FUNCTION IF EXISTS fleet_admit_many(jsonb);
DROP FUNCTION IF EXISTS fleet_admit_one(text, text, boolean, integer, integer, bigint, boolean, jsonb, text, text,
    double precision, text, text, text, text, text, text, text, text, integer, integer, text, text, text);
DROP TRIGGER IF EXISTS fleet_tasks_count_live ON fleet_tasks;
DROP FUNCTION IF EXISTS fleet_recount();
DROP FUNCTION IF EXISTS fleet_count_live();
DROP FUNCTION IF EXISTS fleet_is_live(text);
DROP TABLE IF EXISTS fleet_live_counts;

-- as 010 made it
-- The admission decision. p_queue_id NULL: a fresh request (p_may_queue: queue it when the
-- fleet is full or requests of at least its priority wait; without it, only a full fleet
-- refuses it); else: admit that queue entry.
-- Outcomes: created (task), existing (same idempotency key), denied (tier limit), queued or
-- merged (queue entry id), full (nothing admitted), gone (the entry was taken meanwhile).
CREATE FUNCTION fleet_admit(
    p_operator text, p_tier text, p_admin boolean, p_limit integer, p_capacity integer,
    p_queue_id bigint, p_may_queue boolean, p_request jsonb, p_actor text,
    p_owner text, p_lease_s double precision,
    p_id text, p_description text, p_repo text, p_base text, p_type text, p_agent text,
    p_model text, p_runtime text, p_priority integer, p_max_retries integer, p_key text,
    p_branch text, p_trace text
) RETURNS TABLE (outcome text, ref text, live bigint, fleet_live bigint, task jsonb)
LANGUAGE plpgsql AS $$
DECLARE
    v_existing text;
    v_entry    bigint;
    v_live     bigint;
    v_fleet    bigint;
    v_task     fleet_tasks;
BEGIN
    INSERT INTO fleet_operators AS o (id, tier, is_admin) VALUES (p_operator, p_tier, p_admin)
        ON CONFLICT (id) DO UPDATE SET tier = EXCLUDED.tier, is_admin = EXCLUDED.is_admin
        WHERE o.tier IS DISTINCT FROM EXCLUDED.tier OR o.is_admin IS DISTINCT FROM EXCLUDED.is_admin;
    -- One lock for every admission of the fleet; held until commit, so the counts below
    -- (a fresh snapshot: this function is volatile) cannot go stale before the insert.
    PERFORM pg_advisory_xact_lock(5496643813966098);
    IF p_queue_id IS NOT NULL THEN
        PERFORM 1 FROM fleet_spawn_queue WHERE id = p_queue_id AND status = 'queued' FOR UPDATE;
        IF NOT FOUND THEN
            RETURN QUERY SELECT 'gone'::text, p_queue_id::text, NULL::bigint, NULL::bigint, NULL::jsonb;
            RETURN;
        END IF;
    END IF;
    SELECT t.id INTO v_existing FROM fleet_tasks t WHERE t.operator_id = p_operator AND t.idempotency_key = p_key;
    IF v_existing IS NOT NULL THEN
        UPDATE fleet_spawn_queue SET status = 'admitted', task_id = v_existing, admitted_at = now()
            WHERE id = p_queue_id;
        RETURN QUERY SELECT 'existing'::text, v_existing, NULL::bigint, NULL::bigint, to_jsonb(t) FROM fleet_tasks t
            WHERE t.id = v_existing;
        RETURN;
    END IF;
    SELECT count(*) FILTER (WHERE t.operator_id = p_operator), count(*) INTO v_live, v_fleet
        FROM fleet_tasks t WHERE t.status NOT IN ('merged', 'abandoned', 'cancelled');
    IF v_live >= p_limit THEN
        RETURN QUERY SELECT 'denied'::text, NULL::text, v_live, v_fleet, NULL::jsonb;
        RETURN;
    END IF;
    IF v_fleet >= p_capacity OR (p_may_queue AND EXISTS (
            SELECT 1 FROM fleet_spawn_queue q WHERE q.status = 'queued' AND q.priority >= p_priority)) THEN
        IF NOT p_may_queue THEN
            RETURN QUERY SELECT 'full'::text, NULL::text, v_live, v_fleet, NULL::jsonb;
            RETURN;
        END IF;
        SELECT q.id INTO v_entry FROM fleet_spawn_queue q
            WHERE q.operator_id = p_operator AND q.dedup_key = p_key AND q.status = 'queued' LIMIT 1;
        IF v_entry IS NOT NULL THEN
            RETURN QUERY SELECT 'merged'::text, v_entry::text, v_live, v_fleet, NULL::jsonb;
            RETURN;
        END IF;
        INSERT INTO fleet_spawn_queue (operator_id, priority, request, dedup_key, trace_id)
            VALUES (p_operator, p_priority, p_request, p_key, p_trace) RETURNING id INTO v_entry;
        RETURN QUERY SELECT 'queued'::text, v_entry::text, v_live, v_fleet, NULL::jsonb;
        RETURN;
    END IF;
    INSERT INTO fleet_tasks (id, operator_id, description, repo, base_branch, task_type, agent, model,
                             runtime, priority, max_retries, idempotency_key, branch, trace_id)
        VALUES (p_id, p_operator, p_description, p_repo, p_base, p_type, p_agent, p_model, p_runtime,
                p_priority, p_max_retries, p_key, p_branch, p_trace)
        RETURNING * INTO v_task;
    PERFORM fleet_record(v_task, p_actor, 'created', NULL, '{}'::jsonb);
    IF p_owner IS NOT NULL THEN  -- the spawn is owned from its admission on
        INSERT INTO fleet_leases (task_id, owner, epoch, expires_at)
            VALUES (p_id, p_owner, 1, now() + make_interval(secs => p_lease_s));
    END IF;
    UPDATE fleet_spawn_queue SET status = 'admitted', task_id = p_id, admitted_at = now()
        WHERE id = p_queue_id;
    RETURN QUERY SELECT 'created'::text, p_id, v_live + 1, v_fleet + 1, to_jsonb(v_task);
END;
$$;
