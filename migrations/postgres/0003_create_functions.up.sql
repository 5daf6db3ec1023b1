-- Functions, their immutable versions, and aliases pointing at one or two versions.

CREATE TABLE functions (
    id UUID PRIMARY KEY,
    project_id UUID NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX functions_project_id_name_key ON functions (project_id, name);

-- Immutable: the store has no statement that updates a version.
CREATE TABLE function_versions (
    id UUID PRIMARY KEY,
    function_id UUID NOT NULL REFERENCES functions (id) ON DELETE CASCADE,
    version BIGINT NOT NULL CHECK (version > 0),
    -- The resolved version record (routes, variables, allowed hosts, limits, placement).
    spec JSONB NOT NULL,
    -- sha256 digests of the components, as a JSON array of strings.
    component_digests JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX function_versions_function_id_version_key
    ON function_versions (function_id, version);

CREATE TABLE aliases (
    function_id UUID NOT NULL REFERENCES functions (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    version_a BIGINT NOT NULL,
    version_b BIGINT,
    -- Percentage of traffic sent to version_b.
    weight_b INTEGER NOT NULL DEFAULT 0 CHECK (weight_b BETWEEN 0 AND 100),
    updated_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (function_id, name),
    FOREIGN KEY (function_id, version_a) REFERENCES function_versions (function_id, version),
    FOREIGN KEY (function_id, version_b) REFERENCES function_versions (function_id, version),
    CHECK (version_b IS NOT NULL OR weight_b = 0)
);
