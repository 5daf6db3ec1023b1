-- Durable asynchronous invocations. The `invocations` table of 0004 was never written to; it is
-- replaced by one that holds the request, the retry budget, the lease that runs it and the
-- result. The row is the truth: queues only announce ids, and a claim is a compare-and-set on
-- `status` and `epoch`, so an id announced twice still runs once per attempt.
DROP TABLE invocations;

CREATE TABLE invocations (
    id UUID PRIMARY KEY,
    project_id UUID NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    function_id UUID NOT NULL REFERENCES functions (id) ON DELETE CASCADE,
    -- The version the alias pointed at when the invocation was accepted: every attempt runs it.
    version BIGINT NOT NULL,
    agent_id UUID REFERENCES agents (id) ON DELETE CASCADE,
    status TEXT NOT NULL CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'dead')),
    idempotency_key TEXT,
    -- Attempts made so far, and the most that may be made before the invocation is dead.
    attempts INTEGER NOT NULL CHECK (attempts >= 0),
    max_attempts INTEGER NOT NULL CHECK (max_attempts > 0),
    -- The first retry waits this long; each later one twice the previous, with jitter.
    backoff_ms BIGINT NOT NULL CHECK (backoff_ms >= 0),
    -- No attempt starts after this.
    expires_at TIMESTAMPTZ NOT NULL,
    -- Grows with every claim: a result is taken only from the claim that is current.
    epoch BIGINT NOT NULL CHECK (epoch >= 0),
    holder UUID,
    lease_expires_at TIMESTAMPTZ,
    -- The next attempt starts no earlier than `run_at`; a queued invocation still queued at
    -- `due_at` is announced again.
    run_at TIMESTAMPTZ NOT NULL,
    due_at TIMESTAMPTZ NOT NULL,
    -- The request as the trigger received it: method, path and query, the mount prefix the
    -- function does not see, headers as `name: value` lines, body, and the client's address.
    method TEXT NOT NULL,
    uri TEXT NOT NULL,
    prefix TEXT NOT NULL,
    request_headers BYTEA NOT NULL,
    request_body BYTEA NOT NULL,
    client TEXT NOT NULL,
    -- The function's answer: status, headers, the body up to the kept size and its full size.
    result_status INTEGER,
    result_headers BYTEA,
    result_body BYTEA,
    result_size BIGINT,
    error TEXT,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    finished_at TIMESTAMPTZ
);
-- NULL keys are distinct in Postgres, CockroachDB and SQLite alike.
CREATE UNIQUE INDEX invocations_project_id_idempotency_key_key
    ON invocations (project_id, idempotency_key);
-- The sweeper's scans: queued invocations due for another announcement, expired leases.
CREATE INDEX invocations_status_due_at_idx ON invocations (status, due_at);
CREATE INDEX invocations_status_lease_expires_at_idx ON invocations (status, lease_expires_at);
-- Listings by project and status (the dead-letter list), newest first.
CREATE INDEX invocations_project_id_status_created_at_idx
    ON invocations (project_id, status, created_at);
CREATE INDEX invocations_agent_id_idx ON invocations (agent_id);

-- One row per attempt, for `GET /v1/invocations/{id}`.
CREATE TABLE invocation_attempts (
    invocation_id UUID NOT NULL REFERENCES invocations (id) ON DELETE CASCADE,
    attempt INTEGER NOT NULL CHECK (attempt > 0),
    epoch BIGINT NOT NULL,
    -- Where it ran, when the dispatch said.
    node TEXT,
    -- `running`, then `succeeded`, `failed` (the function's 4xx), `error` or `lost`.
    status TEXT NOT NULL CHECK (status IN ('running', 'succeeded', 'failed', 'error', 'lost')),
    http_status INTEGER,
    error TEXT,
    started_at TIMESTAMPTZ NOT NULL,
    finished_at TIMESTAMPTZ,
    PRIMARY KEY (invocation_id, attempt)
);

-- Each function's retry policy for asynchronous invocations, as Lambda's defaults: three
-- attempts, six hours, the first retry after a second.
ALTER TABLE functions ADD COLUMN async_max_attempts INTEGER NOT NULL DEFAULT 3;
ALTER TABLE functions ADD COLUMN async_max_age_ms BIGINT NOT NULL DEFAULT 21600000;
ALTER TABLE functions ADD COLUMN async_backoff_ms BIGINT NOT NULL DEFAULT 1000;
