-- The SQLite twin of migrations/postgres/0011_create_schedules.down.sql.
DROP TABLE schedules;
