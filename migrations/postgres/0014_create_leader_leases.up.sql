-- Singleton work (firing schedules, the invocation sweep) runs on one coordinator at a time:
-- the holder of the named lease, which it renews while it lives. Another replica takes the
-- lease over once it has expired, and `epoch` grows by one each time it changes hands.
CREATE TABLE leader_leases (
    name TEXT PRIMARY KEY,
    holder UUID NOT NULL,
    epoch BIGINT NOT NULL CHECK (epoch > 0),
    expires_at TIMESTAMPTZ NOT NULL
);
