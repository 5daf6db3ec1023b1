-- Schedules: a function alias (or an agent) invoked asynchronously on a cron expression or once
-- at a time. Each coordinator looks for due schedules; firing one moves `next_fire_at` on with
-- a compare-and-set in the same transaction that records the invocation, whose idempotency key
-- names the tick, so a tick fires exactly once however many replicas see it.
CREATE TABLE schedules (
    id UUID PRIMARY KEY,
    project_id UUID NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    function_id UUID NOT NULL REFERENCES functions (id) ON DELETE CASCADE,
    alias TEXT NOT NULL,
    agent_id UUID REFERENCES agents (id) ON DELETE CASCADE,
    -- A cron expression (seconds optional, UTC); NULL for a one-shot.
    cron TEXT,
    -- The request each firing makes: method, path and query, body.
    method TEXT NOT NULL,
    path TEXT NOT NULL,
    body BYTEA NOT NULL,
    -- The next tick; NULL once a one-shot has fired.
    next_fire_at TIMESTAMPTZ,
    last_fired_at TIMESTAMPTZ,
    fired INTEGER NOT NULL CHECK (fired >= 0),
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX schedules_project_id_name_key ON schedules (project_id, name);
CREATE INDEX schedules_next_fire_at_idx ON schedules (next_fire_at);
