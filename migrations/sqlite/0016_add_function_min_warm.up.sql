-- How many edge nodes keep each function's aliased versions loaded however long they idle
-- (a warm pool against cold starts); 0, the default, lets them scale to zero.
ALTER TABLE functions ADD COLUMN min_warm INTEGER NOT NULL DEFAULT 0 CHECK (min_warm >= 0);
