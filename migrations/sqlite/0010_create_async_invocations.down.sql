-- The SQLite twin of migrations/postgres/0010_create_async_invocations.down.sql.
ALTER TABLE functions DROP COLUMN async_backoff_ms;
ALTER TABLE functions DROP COLUMN async_max_age_ms;
ALTER TABLE functions DROP COLUMN async_max_attempts;
DROP TABLE invocation_attempts;
DROP TABLE invocations;
CREATE TABLE invocations (
    id BLOB PRIMARY KEY,
    project_id BLOB NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    function_id BLOB NOT NULL REFERENCES functions (id) ON DELETE CASCADE,
    version INTEGER,
    agent_id BLOB REFERENCES agents (id) ON DELETE CASCADE,
    mode TEXT NOT NULL CHECK (mode IN ('sync', 'async')),
    priority INTEGER NOT NULL DEFAULT 0,
    status TEXT NOT NULL
        CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'timed_out', 'dead')),
    idempotency_key TEXT,
    attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    node_id BLOB REFERENCES nodes (id) ON DELETE SET NULL,
    lease_expires_at TEXT,
    result BLOB,
    error TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    started_at TEXT,
    finished_at TEXT
) STRICT;
CREATE UNIQUE INDEX invocations_project_id_idempotency_key_key
    ON invocations (project_id, idempotency_key);
CREATE INDEX invocations_status_priority_idx ON invocations (status, priority, created_at);
CREATE INDEX invocations_agent_id_idx ON invocations (agent_id, created_at);
CREATE INDEX invocations_function_id_idx ON invocations (function_id, created_at);
