-- Sites and their schedules (seed 003's site_schedules, with the checks it lacked).
CREATE TABLE site_schedules (
    id UUID PRIMARY KEY,
    site_name TEXT NOT NULL UNIQUE CHECK (site_name ~ '^[a-z0-9][a-z0-9_-]{0,62}$'),
    enabled BOOLEAN NOT NULL DEFAULT true,
    interval_minutes INTEGER NOT NULL DEFAULT 60 CHECK (interval_minutes > 0),
    last_run_at TIMESTAMPTZ,
    next_run_at TIMESTAMPTZ,
    -- The site definition: which source, where it lives, default search parameters.
    payload JSONB NOT NULL DEFAULT '{}',
    min_pause_seconds INTEGER NOT NULL DEFAULT 2 CHECK (min_pause_seconds >= 0),
    max_pause_seconds INTEGER NOT NULL DEFAULT 8,
    max_retries INTEGER NOT NULL DEFAULT 3 CHECK (max_retries BETWEEN 0 AND 10),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK (max_pause_seconds >= min_pause_seconds)
);

CREATE INDEX site_schedules_due ON site_schedules (next_run_at NULLS FIRST) WHERE enabled;

-- One row per scrape of one site (seed 003's scrape_runs plus what the worker reports).
CREATE TABLE scrape_runs (
    id UUID PRIMARY KEY,
    run_id TEXT NOT NULL UNIQUE,
    site_schedule_id UUID REFERENCES site_schedules(id) ON DELETE SET NULL,
    site_name TEXT NOT NULL,
    task_id TEXT,
    trigger TEXT NOT NULL CHECK (trigger IN ('schedule', 'manual')),
    status TEXT NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'running', 'succeeded', 'partial', 'failed')),
    search_term TEXT,
    location TEXT,
    results_wanted INTEGER,
    started_at TIMESTAMPTZ,
    finished_at TIMESTAMPTZ,
    requested_pages INTEGER DEFAULT 0,
    completed_pages INTEGER DEFAULT 0,
    errors_count INTEGER DEFAULT 0,
    jobs_found INTEGER NOT NULL DEFAULT 0,
    jobs_inserted INTEGER NOT NULL DEFAULT 0,
    jobs_updated INTEGER NOT NULL DEFAULT 0,
    jobs_unchanged INTEGER NOT NULL DEFAULT 0,
    -- Postings the validate stage refused (seed 002's jobs_failed).
    jobs_invalid INTEGER NOT NULL DEFAULT 0,
    -- How many times a worker has started this run (redeliveries included).
    attempt INTEGER NOT NULL DEFAULT 0,
    worker_id TEXT,
    message TEXT,
    -- {"pages": [{"url","error","attempts"}...], "invalid_postings": ["<url>: <reason>"...]}
    error_detail JSONB NOT NULL DEFAULT '{}',
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX scrape_runs_site_created ON scrape_runs (site_name, created_at DESC);
CREATE INDEX scrape_runs_active ON scrape_runs (status) WHERE status IN ('queued', 'running');
