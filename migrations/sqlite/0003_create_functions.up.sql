-- The SQLite twin of migrations/postgres/0003_create_functions.up.sql, with the same tables and constraints.
-- Types: UUID -> BLOB (16 bytes), TIMESTAMPTZ -> TEXT (RFC 3339, UTC), BYTEA -> BLOB,
-- JSONB -> TEXT, BIGINT -> INTEGER. Tables are STRICT, so a value of the wrong type is refused.

-- Functions, their immutable versions, and aliases pointing at one or two versions.

CREATE TABLE functions (
    id BLOB PRIMARY KEY,
    project_id BLOB NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    created_at TEXT NOT NULL
) STRICT;
CREATE UNIQUE INDEX functions_project_id_name_key ON functions (project_id, name);

-- Immutable: the store has no statement that updates a version.
CREATE TABLE function_versions (
    id BLOB PRIMARY KEY,
    function_id BLOB NOT NULL REFERENCES functions (id) ON DELETE CASCADE,
    version INTEGER NOT NULL CHECK (version > 0),
    -- The resolved version record (routes, variables, allowed hosts, limits, placement).
    spec TEXT NOT NULL,
    -- sha256 digests of the components, as a JSON array of strings.
    component_digests TEXT NOT NULL,
    created_at TEXT NOT NULL
) STRICT;
CREATE UNIQUE INDEX function_versions_function_id_version_key
    ON function_versions (function_id, version);

CREATE TABLE aliases (
    function_id BLOB NOT NULL REFERENCES functions (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    version_a INTEGER NOT NULL,
    version_b INTEGER,
    -- Percentage of traffic sent to version_b.
    weight_b INTEGER NOT NULL DEFAULT 0 CHECK (weight_b BETWEEN 0 AND 100),
    updated_at TEXT NOT NULL,
    PRIMARY KEY (function_id, name),
    FOREIGN KEY (function_id, version_a) REFERENCES function_versions (function_id, version),
    FOREIGN KEY (function_id, version_b) REFERENCES function_versions (function_id, version),
    CHECK (version_b IS NOT NULL OR weight_b = 0)
) STRICT;
