-- The SQLite twin of migrations/postgres/0005_create_audit_logs.up.sql, with the same tables and constraints.
-- Types: UUID -> BLOB (16 bytes), TIMESTAMPTZ -> TEXT (RFC 3339, UTC), BYTEA -> BLOB,
-- JSONB -> TEXT, BIGINT -> INTEGER. Tables are STRICT, so a value of the wrong type is refused.

-- The append-only, hash-chained audit log. `seq` is assigned by the store as the previous
-- row's seq + 1 inside the appending transaction (no sequence: the chain is serial anyway,
-- and concurrent appends conflict and are retried).

CREATE TABLE audit_logs (
    seq INTEGER PRIMARY KEY CHECK (seq > 0),
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    result TEXT NOT NULL,
    request_id TEXT,
    -- Not a foreign key: the log outlives the project.
    project_id BLOB,
    prev_hash BLOB NOT NULL,
    hash BLOB NOT NULL
) STRICT;
CREATE INDEX audit_logs_project_id_idx ON audit_logs (project_id, seq);
