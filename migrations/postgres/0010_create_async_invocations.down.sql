ALTER TABLE functions DROP COLUMN async_backoff_ms;
ALTER TABLE functions DROP COLUMN async_max_age_ms;
ALTER TABLE functions DROP COLUMN async_max_attempts;
DROP TABLE invocation_attempts;
DROP TABLE invocations;
CREATE TABLE invocations (
    id UUID PRIMARY KEY,
    project_id UUID NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    function_id UUID NOT NULL REFERENCES functions (id) ON DELETE CASCADE,
    version BIGINT,
    agent_id UUID REFERENCES agents (id) ON DELETE CASCADE,
    mode TEXT NOT NULL CHECK (mode IN ('sync', 'async')),
    priority INTEGER NOT NULL DEFAULT 0,
    status TEXT NOT NULL
        CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'timed_out', 'dead')),
    idempotency_key TEXT,
    attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    node_id UUID REFERENCES nodes (id) ON DELETE SET NULL,
    lease_expires_at TIMESTAMPTZ,
    result BYTEA,
    error TEXT,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    started_at TIMESTAMPTZ,
    finished_at TIMESTAMPTZ
);
CREATE UNIQUE INDEX invocations_project_id_idempotency_key_key
    ON invocations (project_id, idempotency_key);
CREATE INDEX invocations_status_priority_idx ON invocations (status, priority, created_at);
CREATE INDEX invocations_agent_id_idx ON invocations (agent_id, created_at);
CREATE INDEX invocations_function_id_idx ON invocations (function_id, created_at);
