DROP FUNCTION IF EXISTS fleet_admit(text, text, boolean, integer, integer, bigint, boolean, jsonb, text, text,
    double precision, text, text, text, text, text, text, text, text, integer, integer, text, text, text);
DROP FUNCTION IF EXISTS fleet_record(fleet_tasks, text, text, text, jsonb);
DROP FUNCTION IF EXISTS fleet_take(text, integer, double precision);
DROP TABLE IF EXISTS fleet_limits;
DROP TABLE IF EXISTS fleet_breakers;
