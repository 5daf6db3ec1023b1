-- Progressive delivery: a new version rolled out behind an alias in steps (its share of the
-- alias's traffic, in percent), each held for at least `step_ms` and judged against the alias's
-- current version; the leader moves a rollout on with a compare-and-set on `step`, and ends it
-- completed (the alias on the new version) or rolled back (on the old one) with a reason.
CREATE TABLE rollouts (
    id UUID PRIMARY KEY,
    project_id UUID NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    function_id UUID NOT NULL REFERENCES functions (id) ON DELETE CASCADE,
    alias TEXT NOT NULL,
    from_version BIGINT NOT NULL,
    to_version BIGINT NOT NULL,
    -- The percentages, comma-separated, rising, the last 100.
    steps TEXT NOT NULL,
    step INTEGER NOT NULL CHECK (step >= 0),
    step_started_at TIMESTAMPTZ NOT NULL,
    step_ms BIGINT NOT NULL CHECK (step_ms > 0),
    min_requests BIGINT NOT NULL CHECK (min_requests > 0),
    -- A breach: the new version's error rate above the old one's by more than this share, or
    -- its p99 latency above the old one's times this ratio.
    max_error_rate_increase DOUBLE PRECISION NOT NULL,
    max_p99_ratio DOUBLE PRECISION NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('running', 'completed', 'rolled_back', 'cancelled')),
    reason TEXT,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX rollouts_status_idx ON rollouts (status);
CREATE INDEX rollouts_function_id_created_at_idx ON rollouts (function_id, created_at);
