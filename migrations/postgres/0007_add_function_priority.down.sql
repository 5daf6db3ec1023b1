ALTER TABLE functions DROP COLUMN priority;
