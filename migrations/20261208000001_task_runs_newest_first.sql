-- Runs of every kind, newest first: the dashboard's runs panel (every few seconds), `GET /runs`
-- and `trawl runs list` read `ORDER BY created_at DESC, run_id DESC` a page at a time, keyset
-- paged by the same pair. Without this index each read sorted the whole ledger. Neither column
-- changes after the insert, so starts and ends stay HOT updates.
CREATE INDEX task_runs_newest ON task_runs (created_at DESC, run_id DESC);
