-- Normalized postings: the columns seed 002's export stage writes, plus identity and freshness.
CREATE TABLE jobs (
    -- UUID v5 of (site, external_id): the same posting seen again is the same row.
    job_id UUID PRIMARY KEY,
    site TEXT NOT NULL,
    external_id TEXT NOT NULL,
    job_title TEXT NOT NULL,
    company_name TEXT,
    location TEXT NOT NULL DEFAULT 'Unknown',
    posted_date DATE,
    job_description TEXT,
    skills_required TEXT,
    salary_min DOUBLE PRECISION,
    salary_max DOUBLE PRECISION,
    salary_currency TEXT,
    salary_period TEXT,
    has_salary BOOLEAN NOT NULL DEFAULT false,
    has_skills BOOLEAN NOT NULL DEFAULT false,
    url TEXT NOT NULL,
    source TEXT NOT NULL,
    search_query TEXT,
    data_quality_score REAL NOT NULL DEFAULT 0,
    -- Hash of the content fields: an unchanged posting is not rewritten.
    content_hash TEXT NOT NULL,
    first_seen_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_seen_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    is_active BOOLEAN NOT NULL DEFAULT true,
    last_run_id TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (site, external_id),
    CHECK (salary_min IS NULL OR salary_max IS NULL OR salary_min <= salary_max)
);

CREATE INDEX jobs_last_seen ON jobs (site, last_seen_at DESC);

-- Which postings each run saw, and what the run did to them: the run's results.
CREATE TABLE scrape_run_postings (
    run_id TEXT NOT NULL REFERENCES scrape_runs(run_id) ON DELETE CASCADE,
    job_id UUID NOT NULL REFERENCES jobs(job_id) ON DELETE CASCADE,
    outcome TEXT NOT NULL CHECK (outcome IN ('inserted', 'updated', 'unchanged')),
    PRIMARY KEY (run_id, job_id)
);
