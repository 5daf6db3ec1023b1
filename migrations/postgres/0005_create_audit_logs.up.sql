-- The append-only, hash-chained audit log. `seq` is assigned by the store as the previous
-- row's seq + 1 inside the appending transaction (no sequence: the chain is serial anyway,
-- and concurrent appends conflict and are retried).

CREATE TABLE audit_logs (
    seq BIGINT PRIMARY KEY CHECK (seq > 0),
    at TIMESTAMPTZ NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    result TEXT NOT NULL,
    request_id TEXT,
    -- Not a foreign key: the log outlives the project.
    project_id UUID,
    prev_hash BYTEA NOT NULL,
    hash BYTEA NOT NULL
);
CREATE INDEX audit_logs_project_id_idx ON audit_logs (project_id, seq);
