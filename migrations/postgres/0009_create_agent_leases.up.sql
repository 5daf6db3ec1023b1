-- The single writer of each agent: a coordinator runs an agent's messages only while it holds
-- the agent's lease. `epoch` grows by one each time the lease changes hands, so work done
-- under a lost lease can be told from work done under the current one.
CREATE TABLE agent_leases (
    agent_id UUID PRIMARY KEY REFERENCES agents (id) ON DELETE CASCADE,
    holder UUID NOT NULL,
    epoch BIGINT NOT NULL CHECK (epoch > 0),
    expires_at TIMESTAMPTZ NOT NULL
);
