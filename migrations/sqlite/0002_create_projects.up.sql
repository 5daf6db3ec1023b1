-- The SQLite twin of migrations/postgres/0002_create_projects.up.sql, with the same tables and constraints.
-- Types: UUID -> BLOB (16 bytes), TIMESTAMPTZ -> TEXT (RFC 3339, UTC), BYTEA -> BLOB,
-- JSONB -> TEXT, BIGINT -> INTEGER. Tables are STRICT, so a value of the wrong type is refused.

-- Projects (the tenants), their members with a role, and project API keys for machines.

CREATE TABLE projects (
    id BLOB PRIMARY KEY,
    slug TEXT NOT NULL,
    name TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
) STRICT;
CREATE UNIQUE INDEX projects_slug_key ON projects (slug);

CREATE TABLE project_members (
    project_id BLOB NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    user_id BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'developer', 'viewer')),
    created_at TEXT NOT NULL,
    PRIMARY KEY (project_id, user_id)
) STRICT;
CREATE INDEX project_members_user_id_idx ON project_members (user_id);

CREATE TABLE api_keys (
    id BLOB PRIMARY KEY,
    project_id BLOB NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    -- The first characters of the key, shown in listings; never enough to authenticate.
    prefix TEXT NOT NULL,
    -- sha256 of the whole key.
    key_hash BLOB NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'developer', 'viewer')),
    created_by BLOB REFERENCES users (id) ON DELETE SET NULL,
    created_at TEXT NOT NULL,
    last_used_at TEXT,
    revoked_at TEXT
) STRICT;
CREATE UNIQUE INDEX api_keys_key_hash_key ON api_keys (key_hash);
CREATE INDEX api_keys_project_id_idx ON api_keys (project_id);
