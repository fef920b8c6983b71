-- 004 router, reversed. Policies and triggers go with their tables.
DROP FUNCTION IF EXISTS fleet_resolve_policy(text);
DROP TABLE IF EXISTS fleet_dead_letters;
DROP TABLE IF EXISTS fleet_route_runs;
DROP TABLE IF EXISTS fleet_handoff_routes;
DROP TABLE IF EXISTS fleet_event_routes;
DROP TABLE IF EXISTS fleet_sequences;
