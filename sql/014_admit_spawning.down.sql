-- 014 down: admissions leave a task proposed again (fleet_admit_many as 011 made it).
DROP FUNCTION fleet_admit_many(jsonb);
ALTER FUNCTION fleet_decide_many(jsonb) RENAME TO fleet_admit_many;
DROP FUNCTION fleet_begin_spawn(text, jsonb, text);
