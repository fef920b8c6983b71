DROP TABLE IF EXISTS fleet_executions;
