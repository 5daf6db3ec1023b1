-- What the guest wrote to stdout and stderr in each attempt (each capped by its runtime, as
-- text with invalid UTF-8 replaced), for `GET /v1/invocations/{id}`; absent when it wrote
-- nothing or its runtime does not hand output over (a cloud).
ALTER TABLE invocation_attempts ADD COLUMN stdout TEXT;
ALTER TABLE invocation_attempts ADD COLUMN stderr TEXT;
ALTER TABLE invocation_attempts ADD COLUMN output_truncated BOOLEAN NOT NULL DEFAULT FALSE;
