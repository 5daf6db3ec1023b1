DROP TABLE invocations;
DROP TABLE nodes;
DROP TABLE agents;
