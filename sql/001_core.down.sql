-- 001 core, reversed. Policies and triggers go with their tables.
DROP TABLE IF EXISTS fleet_config;
DROP TABLE IF EXISTS fleet_notifications;
DROP TABLE IF EXISTS fleet_outbox;
DROP TABLE IF EXISTS fleet_audit;
DROP TABLE IF EXISTS fleet_tasks;
DROP TABLE IF EXISTS fleet_operators;
DROP FUNCTION IF EXISTS fleet_set_updated_at();
