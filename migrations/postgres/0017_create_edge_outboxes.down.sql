DROP TABLE edge_outboxes;
