DROP TABLE agent_leases;
