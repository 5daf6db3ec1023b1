ALTER TABLE invocation_attempts DROP COLUMN output_truncated;
ALTER TABLE invocation_attempts DROP COLUMN stderr;
ALTER TABLE invocation_attempts DROP COLUMN stdout;
