-- Each function's node selector: labels (a JSON object of string to string) that an edge node
-- must carry, every key with exactly that value, to run the function. Text rather than JSON or
-- JSONB so that the one column type runs on SQLite, Postgres and CockroachDB alike; the API
-- checks the entries and the store parses the object when it reads a function. Existing
-- functions select no labels, so any node may run them.
ALTER TABLE functions ADD COLUMN node_selector TEXT NOT NULL DEFAULT '{}';
