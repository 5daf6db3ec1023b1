-- Each function's invocation priority class (critical, high, normal or low): the class of a
-- request that names none in its `nexus-priority` header. The API checks the value; existing
-- functions get the default class.
ALTER TABLE functions ADD COLUMN priority TEXT NOT NULL DEFAULT 'normal';
