ALTER TABLE functions DROP COLUMN node_selector;
