DROP INDEX context_entries_expires_at;
DROP TABLE context_entries;
