-- Where each alias pointed before it last moved, so that rollback can move it back. NULL until
-- the alias has moved once. Not foreign keys: versions are never deleted on their own, only
-- with their function (and then with its aliases).
ALTER TABLE aliases ADD COLUMN previous_version_a INTEGER;
ALTER TABLE aliases ADD COLUMN previous_version_b INTEGER;
ALTER TABLE aliases ADD COLUMN previous_weight_b INTEGER;
