-- 005 operations, reversed.
DROP TABLE IF EXISTS fleet_health_snapshots;
DROP TABLE IF EXISTS fleet_logs;
DROP TABLE IF EXISTS fleet_dedup_keys;
DROP TABLE IF EXISTS fleet_spawn_queue;
