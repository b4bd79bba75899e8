-- A run's start can be a HOT update (a new row version on the same page, no index touched).
-- PostgreSQL makes an update HOT only when no indexed column changes (partial-index predicates
-- included) and the page has room. `task_runs_active` indexed `status`, which every start
-- (queued -> running) and every end changes, so each wrote a new entry into all five indexes.
--
-- The active runs are now found by `finished_at IS NULL`, which a start leaves alone: a CHECK
-- makes it the same set as `status IN ('queued', 'running')` (a run ends exactly when it gets
-- its finished_at; every end in the lifecycle writes both), and queries that want the index
-- say `finished_at IS NULL`. Pages are left 20% free for the new versions; the attempts table
-- too, whose row is inserted at a start and updated at the end.
UPDATE task_runs SET finished_at = COALESCE(updated_at, now())
    WHERE finished_at IS NULL AND status NOT IN ('queued', 'running');
UPDATE task_runs SET finished_at = NULL
    WHERE finished_at IS NOT NULL AND status IN ('queued', 'running');
ALTER TABLE task_runs ADD CONSTRAINT task_runs_unfinished_while_active
    CHECK ((finished_at IS NULL) = (status IN ('queued', 'running')));

DROP INDEX task_runs_active;
CREATE INDEX task_runs_unfinished ON task_runs (kind) WHERE finished_at IS NULL;

ALTER TABLE task_runs SET (fillfactor = 80);
ALTER TABLE task_run_attempts SET (fillfactor = 80);
