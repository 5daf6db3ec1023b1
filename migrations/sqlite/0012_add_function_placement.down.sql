ALTER TABLE functions DROP COLUMN cloud_targets;
ALTER TABLE functions DROP COLUMN placement;
