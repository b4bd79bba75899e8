-- Recurring work of any kind (the daily pipeline at 00:30 UTC, a digest at 08:00 Europe/Paris):
-- a named task template (kind, queue, payload) and when it runs, every `interval_minutes`
-- (±10% jitter) or on a 5-field `cron` in `time_zone`. The scheduler's leader queues one run
-- per fire; fires missed while no scheduler ran are caught up once (next_run_at is always
-- reckoned from the pass's now). Sites keep their own schedules in site_schedules.
CREATE TABLE schedules (
    id UUID PRIMARY KEY,
    name TEXT NOT NULL UNIQUE CHECK (name ~ '^[a-z0-9][a-z0-9_-]{0,62}$'),
    kind TEXT NOT NULL CHECK (kind ~ '^[a-z][a-z0-9_]{0,31}$'),
    queue TEXT NOT NULL CHECK (queue ~ '^[a-z][a-z0-9_-]{0,31}$'),
    payload JSONB NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(payload) = 'object'),
    enabled BOOLEAN NOT NULL DEFAULT true,
    interval_minutes INTEGER CHECK (interval_minutes > 0),
    cron TEXT,
    time_zone TEXT,
    max_retries INTEGER NOT NULL DEFAULT 3 CHECK (max_retries BETWEEN 0 AND 100),
    last_run_at TIMESTAMPTZ,
    next_run_at TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK ((interval_minutes IS NULL) <> (cron IS NULL)),
    CHECK (time_zone IS NULL OR cron IS NOT NULL)
);

CREATE INDEX schedules_due ON schedules (next_run_at NULLS FIRST) WHERE enabled;

-- Which schedule queued a run (NULL: a site's schedule, or no schedule).
ALTER TABLE task_runs ADD COLUMN schedule_id UUID REFERENCES schedules(id) ON DELETE SET NULL;
