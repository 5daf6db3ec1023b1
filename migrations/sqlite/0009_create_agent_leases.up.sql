-- The single writer of each agent: a coordinator runs an agent's messages only while it holds
-- the agent's lease. `epoch` grows by one each time the lease changes hands, so work done
-- under a lost lease can be told from work done under the current one.
CREATE TABLE agent_leases (
    agent_id BLOB PRIMARY KEY REFERENCES agents (id) ON DELETE CASCADE,
    holder BLOB NOT NULL,
    epoch INTEGER NOT NULL CHECK (epoch > 0),
    expires_at TEXT NOT NULL
) STRICT;
