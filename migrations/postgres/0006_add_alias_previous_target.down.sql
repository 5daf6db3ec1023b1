ALTER TABLE aliases DROP COLUMN previous_weight_b;
ALTER TABLE aliases DROP COLUMN previous_version_b;
ALTER TABLE aliases DROP COLUMN previous_version_a;
