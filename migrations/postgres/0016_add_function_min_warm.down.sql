ALTER TABLE functions DROP COLUMN min_warm;
