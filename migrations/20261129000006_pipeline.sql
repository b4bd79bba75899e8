-- The daily batch pipeline (seed 002). A pipeline is data (its definition); a batch is one
-- run of it: five stage tasks on trawl's queue, each audited in batch_runs, each stage's
-- output kept in batch_records keyed by batch, so a retried or redelivered stage redoes its
-- work from its input and writes the same rows.
CREATE TABLE pipelines (
    name TEXT PRIMARY KEY CHECK (name ~ '^[a-z0-9][a-z0-9_-]{0,62}$'),
    definition JSONB NOT NULL CHECK (jsonb_typeof(definition) = 'object'),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- One batch: the definition it ran with (a later upsert does not change a running batch).
CREATE TABLE batches (
    batch_id UUID PRIMARY KEY,
    pipeline TEXT NOT NULL REFERENCES pipelines(name) ON DELETE CASCADE,
    batch_date DATE NOT NULL,
    definition JSONB NOT NULL,
    trigger TEXT NOT NULL CHECK (trigger IN ('schedule', 'manual')),
    status TEXT NOT NULL DEFAULT 'running'
        CHECK (status IN ('running', 'success', 'failed', 'stopped', 'rolled_back')),
    started_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    finished_at TIMESTAMPTZ,
    sla_alerted BOOLEAN NOT NULL DEFAULT false
);
CREATE INDEX batches_newest ON batches (pipeline, started_at DESC);

-- Seed 002's audit table: one row per (batch, stage), plus the attempt, the error's kind and
-- the run (task_runs) that carries the stage. `rollback` rows audit `trawl pipeline rollback`.
CREATE TABLE batch_runs (
    batch_id UUID NOT NULL REFERENCES batches(batch_id) ON DELETE CASCADE,
    batch_date DATE NOT NULL,
    stage TEXT NOT NULL
        CHECK (stage IN ('collect', 'validate', 'enrich', 'vectorize', 'export', 'rollback')),
    status TEXT NOT NULL DEFAULT 'queued'
        CHECK (status IN ('queued', 'running', 'success', 'failed', 'upstream_failed', 'stopped')),
    run_id TEXT,
    attempt INTEGER NOT NULL DEFAULT 0,
    error_kind TEXT CHECK (error_kind IN ('transient', 'permanent')),
    jobs_collected INTEGER,
    jobs_validated INTEGER,
    jobs_enriched INTEGER,
    jobs_vectorized INTEGER,
    jobs_inserted INTEGER,
    jobs_updated INTEGER,
    jobs_unchanged INTEGER,
    jobs_failed INTEGER,
    execution_time_seconds DOUBLE PRECISION,
    error_message TEXT,
    report JSONB,
    started_at TIMESTAMPTZ,
    finished_at TIMESTAMPTZ,
    slow_alerted BOOLEAN NOT NULL DEFAULT false,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (batch_id, stage)
);
CREATE INDEX batch_runs_recent ON batch_runs (batch_date DESC, created_at DESC);

-- A stage's output records (collect: raw, validate: checked, enrich: postings). Written in
-- the same transaction that marks the stage done; a retry deletes and rewrites its own.
CREATE TABLE batch_records (
    batch_id UUID NOT NULL REFERENCES batches(batch_id) ON DELETE CASCADE,
    stage TEXT NOT NULL CHECK (stage IN ('collect', 'validate', 'enrich')),
    seq INTEGER NOT NULL,
    record JSONB NOT NULL,
    PRIMARY KEY (batch_id, stage, seq)
);

-- What a batch's export changed in `jobs`: the row before (NULL: the export inserted it), so
-- `trawl pipeline rollback` can put every row back.
CREATE TABLE batch_job_images (
    batch_id UUID NOT NULL REFERENCES batches(batch_id) ON DELETE CASCADE,
    job_id UUID NOT NULL,
    before JSONB,
    PRIMARY KEY (batch_id, job_id)
);

-- TF-IDF models: vocabulary and idf in model_terms, each posting's L2-normed vector in
-- posting_vectors; one active model at a time (rollback = activate an earlier version). The
-- vectorize stage stores its model `staged`; the batch's export activates it in the same
-- transaction that writes `jobs`, so a batch that fails after vectorizing changes nothing.
CREATE TABLE model_versions (
    model_version TEXT PRIMARY KEY CHECK (model_version ~ '^tfidf_v[0-9]{8}_[0-9]{6}$'),
    model_type TEXT NOT NULL DEFAULT 'tfidf' CHECK (model_type = 'tfidf'),
    trained_on_jobs_count INTEGER NOT NULL,
    feature_count INTEGER NOT NULL,
    ngram_range TEXT NOT NULL,
    settings JSONB NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('staged', 'active', 'archived')),
    created_by UUID REFERENCES batches(batch_id) ON DELETE SET NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX model_versions_one_active ON model_versions (model_type) WHERE status = 'active';

CREATE TABLE model_terms (
    model_version TEXT NOT NULL REFERENCES model_versions(model_version) ON DELETE CASCADE,
    feature INTEGER NOT NULL,
    term TEXT NOT NULL,
    idf DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (model_version, feature)
);

CREATE TABLE posting_vectors (
    model_version TEXT NOT NULL REFERENCES model_versions(model_version) ON DELETE CASCADE,
    job_id UUID NOT NULL,
    features INTEGER[] NOT NULL,
    weights REAL[] NOT NULL,
    PRIMARY KEY (model_version, job_id)
);
-- Candidates for "similar" and rank=tfidf: postings sharing a feature with the query.
CREATE INDEX posting_vectors_features ON posting_vectors USING GIN (features);

-- The export stage COPYs a batch's postings here, upserts `jobs` from it and deletes them, all
-- in one transaction: a temporary table in all but name, declared once so the statements that
-- read it are checked at compile time like every other. Unlogged: it never holds a committed row.
CREATE UNLOGGED TABLE batch_export_rows (
    batch_id UUID NOT NULL,
    job_id UUID NOT NULL,
    site TEXT NOT NULL,
    external_id TEXT NOT NULL,
    job_title TEXT NOT NULL,
    company_name TEXT,
    location TEXT NOT NULL,
    posted_date DATE,
    job_description TEXT,
    skills_required TEXT,
    salary_min DOUBLE PRECISION,
    salary_max DOUBLE PRECISION,
    salary_currency TEXT,
    salary_period TEXT,
    has_salary BOOLEAN NOT NULL,
    has_skills BOOLEAN NOT NULL,
    url TEXT NOT NULL,
    source TEXT NOT NULL,
    search_query TEXT,
    data_quality_score REAL NOT NULL,
    content_hash TEXT NOT NULL,
    is_remote BOOLEAN,
    department TEXT,
    PRIMARY KEY (batch_id, job_id)
);
