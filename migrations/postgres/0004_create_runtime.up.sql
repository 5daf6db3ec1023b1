-- Agents, invocations and nodes: what the scheduler and dispatcher work with.

CREATE TABLE agents (
    id UUID PRIMARY KEY,
    project_id UUID NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    function_id UUID NOT NULL REFERENCES functions (id) ON DELETE CASCADE,
    alias TEXT NOT NULL,
    name TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('active', 'idle', 'suspended', 'deleted')),
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX agents_project_id_name_key ON agents (project_id, name);
CREATE INDEX agents_function_id_idx ON agents (function_id);

CREATE TABLE nodes (
    id UUID PRIMARY KEY,
    name TEXT NOT NULL,
    region TEXT NOT NULL,
    labels JSONB NOT NULL,
    -- Concurrent invocations the node accepts.
    capacity INTEGER NOT NULL CHECK (capacity >= 0),
    state TEXT NOT NULL CHECK (state IN ('ready', 'draining', 'down')),
    lease_expires_at TIMESTAMPTZ NOT NULL,
    registered_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX nodes_region_idx ON nodes (region);
CREATE INDEX nodes_lease_expires_at_idx ON nodes (lease_expires_at);

CREATE TABLE invocations (
    id UUID PRIMARY KEY,
    project_id UUID NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    function_id UUID NOT NULL REFERENCES functions (id) ON DELETE CASCADE,
    -- NULL until an alias is resolved to a version.
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
-- NULL keys are distinct in Postgres, CockroachDB and SQLite alike.
CREATE UNIQUE INDEX invocations_project_id_idempotency_key_key
    ON invocations (project_id, idempotency_key);
-- The dispatcher's queue scan.
CREATE INDEX invocations_status_priority_idx ON invocations (status, priority, created_at);
CREATE INDEX invocations_agent_id_idx ON invocations (agent_id, created_at);
CREATE INDEX invocations_function_id_idx ON invocations (function_id, created_at);
