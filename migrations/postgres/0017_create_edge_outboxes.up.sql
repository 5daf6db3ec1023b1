-- Edge nodes forward what they accepted on their own (asynchronous invocations, finished
-- calls) from an outbox on disk, in order, and send a batch again when they had no answer.
-- Each outbox's high-water mark is moved in the transaction that records a batch, so an entry
-- at or below it is never recorded twice.
CREATE TABLE edge_outboxes (
    id UUID PRIMARY KEY,
    node_name TEXT NOT NULL,
    forwarded_through BIGINT NOT NULL CHECK (forwarded_through >= 0),
    updated_at TIMESTAMPTZ NOT NULL
);
