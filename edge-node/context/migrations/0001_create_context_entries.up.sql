-- One row per live (or not yet purged) key. A rowid table rather than WITHOUT ROWID because
-- values may be up to 1 MiB, far larger than SQLite recommends for WITHOUT ROWID rows.
CREATE TABLE context_entries (
    namespace TEXT NOT NULL,
    key TEXT NOT NULL,
    value BLOB NOT NULL,
    -- Unix time in milliseconds after which the row counts as missing; NULL never expires.
    expires_at INTEGER,
    PRIMARY KEY (namespace, key)
) STRICT;

-- Lets the periodic purge find expired rows without scanning persistent ones.
CREATE INDEX context_entries_expires_at
    ON context_entries (expires_at)
    WHERE expires_at IS NOT NULL;
