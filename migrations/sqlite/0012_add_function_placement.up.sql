-- Where each function runs: `edge` (the default), a cloud (`aws-lambda`), or `auto` (edge
-- nodes first, its cloud target when none can take a call); and its cloud targets, a JSON
-- object in a text column so that one column type runs on SQLite, Postgres and CockroachDB
-- alike. The coordinator checks both; existing functions stay on the edge.
ALTER TABLE functions ADD COLUMN placement TEXT NOT NULL DEFAULT 'edge';
ALTER TABLE functions ADD COLUMN cloud_targets TEXT NOT NULL DEFAULT '{}';
