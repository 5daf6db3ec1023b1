-- The SQLite twin of migrations/postgres/0004_create_runtime.up.sql, with the same tables and constraints.
-- Types: UUID -> BLOB (16 bytes), TIMESTAMPTZ -> TEXT (RFC 3339, UTC), BYTEA -> BLOB,
-- JSONB -> TEXT, BIGINT -> INTEGER. Tables are STRICT, so a value of the wrong type is refused.

-- Agents, invocations and nodes: what the scheduler and dispatcher work with.

CREATE TABLE agents (
    id BLOB PRIMARY KEY,
    project_id BLOB NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    function_id BLOB NOT NULL REFERENCES functions (id) ON DELETE CASCADE,
    alias TEXT NOT NULL,
    name TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('active', 'idle', 'suspended', 'deleted')),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
) STRICT;
CREATE UNIQUE INDEX agents_project_id_name_key ON agents (project_id, name);
CREATE INDEX agents_function_id_idx ON agents (function_id);

CREATE TABLE nodes (
    id BLOB PRIMARY KEY,
    name TEXT NOT NULL,
    region TEXT NOT NULL,
    labels TEXT NOT NULL,
    -- Concurrent invocations the node accepts.
    capacity INTEGER NOT NULL CHECK (capacity >= 0),
    state TEXT NOT NULL CHECK (state IN ('ready', 'draining', 'down')),
    lease_expires_at TEXT NOT NULL,
    registered_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
) STRICT;
CREATE INDEX nodes_region_idx ON nodes (region);
CREATE INDEX nodes_lease_expires_at_idx ON nodes (lease_expires_at);

CREATE TABLE invocations (
    id BLOB PRIMARY KEY,
    project_id BLOB NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    function_id BLOB NOT NULL REFERENCES functions (id) ON DELETE CASCADE,
    -- NULL until an alias is resolved to a version.
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
-- NULL keys are distinct in Postgres, CockroachDB and SQLite alike.
CREATE UNIQUE INDEX invocations_project_id_idempotency_key_key
    ON invocations (project_id, idempotency_key);
-- The dispatcher's queue scan.
CREATE INDEX invocations_status_priority_idx ON invocations (status, priority, created_at);
CREATE INDEX invocations_agent_id_idx ON invocations (agent_id, created_at);
CREATE INDEX invocations_function_id_idx ON invocations (function_id, created_at);
