-- Every attempt of a run: each start by a worker is one row, so a run retried after a transient
-- failure, or recovered from a crashed worker, shows what each try did.
CREATE TABLE scrape_run_attempts (
    run_id TEXT NOT NULL REFERENCES scrape_runs(run_id) ON DELETE CASCADE,
    attempt INTEGER NOT NULL CHECK (attempt > 0),
    worker_id TEXT,
    -- running: in progress; succeeded/partial/failed: how it ended; abandoned: a later attempt
    -- started while this one was still marked running (its worker died or stalled).
    status TEXT NOT NULL DEFAULT 'running'
        CHECK (status IN ('running', 'succeeded', 'partial', 'failed', 'abandoned')),
    started_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    finished_at TIMESTAMPTZ,
    -- Whether the run was scheduled again after this attempt failed transiently.
    retried BOOLEAN NOT NULL DEFAULT false,
    message TEXT,
    PRIMARY KEY (run_id, attempt)
);

-- Retries after transient failures (a subset of attempts), bounded by the site's max_retries.
ALTER TABLE scrape_runs ADD COLUMN retries INTEGER NOT NULL DEFAULT 0;
-- When a run waiting for its retry becomes due (informational; Redis's delayed set decides).
ALTER TABLE scrape_runs ADD COLUMN retry_at TIMESTAMPTZ;
