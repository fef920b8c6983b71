DROP TABLE IF EXISTS fleet_leases;
DROP TABLE IF EXISTS fleet_conductors;
