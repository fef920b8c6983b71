DROP TABLE IF EXISTS fleet_commands;
DROP FUNCTION IF EXISTS fleet_commands_notify();
