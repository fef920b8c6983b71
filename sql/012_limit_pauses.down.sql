DROP FUNCTION IF EXISTS fleet_pause(text, double precision);
ALTER TABLE fleet_limits DROP COLUMN IF EXISTS paused_until;

-- fleet_take as 010 made it
-- Take one hit of p_key if fewer than p_limit were taken in the last p_window_s seconds:
-- 0 when taken, else the seconds until the oldest hit leaves the window. The row lock
-- orders concurrent takers, so the limit holds across conductors.
CREATE OR REPLACE FUNCTION fleet_take(p_key text, p_limit integer, p_window_s double precision)
RETURNS double precision LANGUAGE plpgsql AS $$
DECLARE
    v_now    timestamptz := clock_timestamp();
    v_recent timestamptz[];
BEGIN
    INSERT INTO fleet_limits (key) VALUES (p_key) ON CONFLICT (key) DO NOTHING;
    SELECT ARRAY(SELECT h FROM unnest(l.hits) h
                 WHERE h > v_now - make_interval(secs => p_window_s) ORDER BY h)
      INTO v_recent FROM fleet_limits l WHERE l.key = p_key FOR UPDATE;
    IF cardinality(v_recent) >= p_limit THEN
        UPDATE fleet_limits SET hits = v_recent WHERE key = p_key;
        RETURN greatest(extract(epoch FROM v_recent[cardinality(v_recent) - p_limit + 1]
                                + make_interval(secs => p_window_s) - v_now), 0.001);
    END IF;
    UPDATE fleet_limits SET hits = v_recent || v_now WHERE key = p_key;
    RETURN 0;
END;
$$;
