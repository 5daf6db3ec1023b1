DROP TABLE rollouts;
