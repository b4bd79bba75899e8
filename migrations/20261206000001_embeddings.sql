-- Embeddings (seed 001): a pgvector vector per posting and model, and the ledger of what is left
-- to embed — seed 001's embedding_queue, now the only source of truth about coverage.
CREATE EXTENSION IF NOT EXISTS vector;

-- The models vectors came from. Searches use the active model's vectors only; a model is
-- registered by the first worker that runs it (and every active posting queued for it, so a
-- switch re-embeds gradually); activating one retires the others (no longer queued).
CREATE TABLE embedding_models (
    model TEXT PRIMARY KEY,
    dimensions INT NOT NULL,
    active BOOLEAN NOT NULL DEFAULT false,
    retired BOOLEAN NOT NULL DEFAULT false,
    registered_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    activated_at TIMESTAMPTZ,
    CHECK (NOT (active AND retired))
);
CREATE UNIQUE INDEX embedding_models_one_active ON embedding_models (active) WHERE active;

-- What a vector was computed from: exactly the fields trawl_embedder::posting_text reads, so a
-- change to any of them (and only to them) embeds the posting again.
CREATE FUNCTION posting_embedding_hash(title TEXT, company TEXT, location TEXT, skills TEXT,
                                       description TEXT) RETURNS TEXT
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT md5(concat_ws(chr(31), title, coalesce(company, ''), location,
                         coalesce(skills, ''), coalesce(description, '')))
$$;

-- One vector per posting and model. `writes` counts the times it was written: a posting
-- embedded twice for the same content would show here.
CREATE TABLE posting_embeddings (
    job_id UUID NOT NULL REFERENCES jobs(job_id) ON DELETE CASCADE,
    model TEXT NOT NULL REFERENCES embedding_models(model) ON DELETE CASCADE,
    embedding vector(384) NOT NULL,
    content_hash TEXT NOT NULL,
    embedded_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    writes INT NOT NULL DEFAULT 1,
    PRIMARY KEY (job_id, model)
);
CREATE INDEX posting_embeddings_hnsw ON posting_embeddings USING hnsw (embedding vector_cosine_ops);

-- The ledger: one row per posting and model. pending → processing (claimed by a run's attempt,
-- the fencing token, until claimed_until) → completed, or back to pending with a backoff and
-- the reason, or failed once attempts run out. Every write is to these rows and to
-- posting_embeddings' vector columns, never an upsert of a whole posting.
CREATE TABLE embedding_queue (
    job_id UUID NOT NULL REFERENCES jobs(job_id) ON DELETE CASCADE,
    model TEXT NOT NULL REFERENCES embedding_models(model) ON DELETE CASCADE,
    status TEXT NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'processing', 'completed', 'failed')),
    content_hash TEXT NOT NULL,
    attempts INT NOT NULL DEFAULT 0,
    last_error TEXT,
    next_attempt_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    claimed_run TEXT,
    claimed_attempt INT,
    claimed_until TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (job_id, model)
);
CREATE INDEX embedding_queue_due ON embedding_queue (model, next_attempt_at) WHERE status = 'pending';
CREATE INDEX embedding_queue_claimed ON embedding_queue (model, claimed_until) WHERE status = 'processing';
CREATE INDEX embedding_queue_status ON embedding_queue (model, status, updated_at);

-- Postings inserted or whose embedded fields changed are queued for every current model, by
-- whoever wrote them (a scrape, the pipeline's export, psql): statement-level, one INSERT per
-- statement however many rows it wrote.
CREATE FUNCTION jobs_embedding_due() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO embedding_queue (job_id, model, content_hash)
    SELECT n.job_id, m.model,
           posting_embedding_hash(n.job_title, n.company_name, n.location, n.skills_required,
                                  n.job_description)
    FROM new_rows n CROSS JOIN embedding_models m
    WHERE NOT m.retired
    ON CONFLICT (job_id, model) DO UPDATE
        SET status = 'pending', content_hash = EXCLUDED.content_hash, attempts = 0,
            last_error = NULL, next_attempt_at = now(), claimed_run = NULL,
            claimed_attempt = NULL, claimed_until = NULL, updated_at = now()
        WHERE embedding_queue.content_hash <> EXCLUDED.content_hash;
    RETURN NULL;
END $$;
CREATE TRIGGER jobs_embedding_due_insert AFTER INSERT ON jobs
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION jobs_embedding_due();
CREATE TRIGGER jobs_embedding_due_update AFTER UPDATE ON jobs
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION jobs_embedding_due();

-- Coverage over time, for the dashboard's line and the "coverage stopped rising" alert: one
-- sample a minute per model, written by the scheduler's pass, the last 7 days kept.
CREATE TABLE embedding_coverage_samples (
    model TEXT NOT NULL REFERENCES embedding_models(model) ON DELETE CASCADE,
    sampled_at TIMESTAMPTZ NOT NULL,
    active_postings BIGINT NOT NULL,
    embedded BIGINT NOT NULL,
    pending BIGINT NOT NULL,
    failed BIGINT NOT NULL,
    PRIMARY KEY (model, sampled_at)
);
