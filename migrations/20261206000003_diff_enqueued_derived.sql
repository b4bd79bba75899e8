-- Whether a snapshot created its diff is whether `career_diffs` holds a row with its id: derived
-- when read (`trawl_careers::snapshots::recent`), not stored and updated beside it.
ALTER TABLE career_snapshots DROP COLUMN diff_enqueued;
ALTER TABLE career_diffs ADD CONSTRAINT career_diffs_one_per_snapshot UNIQUE (snapshot_id);
