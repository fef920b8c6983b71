-- 014 a fresh task admitted straight into spawning. The spawn saga's first step was its own
-- transaction (proposed -> spawning with the branch, the worktree path and the route, the
-- route_chosen audit row): a commit and its round trips on every spawn's path. A request
-- that carries 'spawn' (fleet_admit_many) is now moved in the admission's transaction, with
-- the same rows a move writes (the conductor's notes, the transition's audit row and outbox
-- event), so the task is born owned (its spawn lease) and spawning. The decisions are 011's
-- fleet_admit_many, renamed fleet_decide_many; fleet_admit_many is now they and the moves.

-- Move the just-created task p_id from proposed to spawning. p_spawn: branch, worktree_path,
-- metadata (merged into the task's), notes (the conductor's audit rows, [{action, detail}]),
-- fields (the patched field names the transition's audit row lists).
CREATE FUNCTION fleet_begin_spawn(p_id text, p_spawn jsonb, p_actor text) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_task fleet_tasks;
    v_note jsonb;
BEGIN
    SELECT * INTO v_task FROM fleet_tasks t WHERE t.id = p_id;
    FOR v_note IN SELECT e FROM jsonb_array_elements(coalesce(p_spawn->'notes', '[]'::jsonb)) e LOOP
        INSERT INTO fleet_audit (task_id, operator_id, actor, action, from_status, to_status, version, detail, trace_id)
            VALUES (p_id, v_task.operator_id, 'conductor', v_note->>'action', NULL, NULL, NULL,
                    coalesce(v_note->'detail', '{}'::jsonb), v_task.trace_id);
    END LOOP;
    UPDATE fleet_tasks t SET status = 'spawning', version = t.version + 1,
           branch = p_spawn->>'branch', worktree_path = p_spawn->>'worktree_path',
           metadata = t.metadata || coalesce(p_spawn->'metadata', '{}'::jsonb)
     WHERE t.id = p_id AND t.status = 'proposed'
    RETURNING * INTO v_task;
    PERFORM fleet_record(v_task, p_actor, 'transition', 'proposed',
                         jsonb_build_object('fields', coalesce(p_spawn->'fields', '[]'::jsonb)));
    RETURN to_jsonb(v_task);
END;
$$;

ALTER FUNCTION fleet_admit_many(jsonb) RENAME TO fleet_decide_many;

-- As 011's (row i is request i, one take of the fleet lock, a statement of its own), and each
-- created task whose request carries 'spawn' is moved to spawning, still under that lock.
CREATE FUNCTION fleet_admit_many(p_requests jsonb)
RETURNS TABLE (i integer, outcome text, ref text, live bigint, fleet_live bigint, task jsonb)
LANGUAGE sql AS $$
    SELECT d.i, d.outcome, d.ref, d.live, d.fleet_live,
           CASE WHEN d.outcome = 'created' AND p_requests->(d.i - 1) ? 'spawn'
                THEN fleet_begin_spawn(d.ref, p_requests->(d.i - 1)->'spawn', p_requests->(d.i - 1)->>'actor')
                ELSE d.task END
      FROM fleet_decide_many(p_requests) d
     ORDER BY d.i
$$;
