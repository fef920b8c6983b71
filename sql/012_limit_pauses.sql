-- 012 shared pauses: when GitHub says "rate limit" to one conductor, every conductor of the
-- fleet stops calling it until the pause ends (fleet_pause), not only the one that was told.
-- fleet_take answers a paused key with the seconds left as a negative number.

ALTER TABLE fleet_limits ADD COLUMN paused_until timestamptz;

-- Pause p_key for p_seconds from now (a longer pause already in force stays).
CREATE FUNCTION fleet_pause(p_key text, p_seconds double precision) RETURNS void LANGUAGE sql AS $$
    INSERT INTO fleet_limits AS l (key, paused_until)
        VALUES (p_key, clock_timestamp() + make_interval(secs => p_seconds))
    ON CONFLICT (key) DO UPDATE SET paused_until = greatest(l.paused_until, EXCLUDED.paused_until);
$$;

-- As in 010, and: a paused key takes nothing and answers -(seconds until the pause ends).
CREATE OR REPLACE FUNCTION fleet_take(p_key text, p_limit integer, p_window_s double precision)
RETURNS double precision LANGUAGE plpgsql AS $$
DECLARE
    v_now    timestamptz := clock_timestamp();
    v_recent timestamptz[];
    v_paused timestamptz;
BEGIN
    INSERT INTO fleet_limits (key) VALUES (p_key) ON CONFLICT (key) DO NOTHING;
    SELECT ARRAY(SELECT h FROM unnest(l.hits) h
                 WHERE h > v_now - make_interval(secs => p_window_s) ORDER BY h), l.paused_until
      INTO v_recent, v_paused FROM fleet_limits l WHERE l.key = p_key FOR UPDATE;
    IF v_paused > v_now THEN
        RETURN -greatest(extract(epoch FROM v_paused - v_now), 0.001);
    END IF;
    IF cardinality(v_recent) >= p_limit THEN
        UPDATE fleet_limits SET hits = v_recent WHERE key = p_key;
        RETURN greatest(extract(epoch FROM v_recent[cardinality(v_recent) - p_limit + 1]
                                + make_interval(secs => p_window_s) - v_now), 0.001);
    END IF;
    UPDATE fleet_limits SET hits = v_recent || v_now WHERE key = p_key;
    RETURN 0;
END;
$$;
