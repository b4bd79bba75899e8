-- Postings for people (issue 9): full-text search over title, company and description, and
-- keyset pagination newest first.
ALTER TABLE jobs ADD COLUMN search tsvector GENERATED ALWAYS AS (
    setweight(to_tsvector('english', coalesce(job_title, '')), 'A')
    || setweight(to_tsvector('english', coalesce(company_name, '')), 'B')
    || setweight(to_tsvector('english', coalesce(skills_required, '')), 'B')
    || setweight(to_tsvector('english', coalesce(job_description, '')), 'C')
) STORED;
CREATE INDEX jobs_search ON jobs USING gin (search);
-- The listing order, (first_seen_at, job_id) descending: the page after a cursor is an index
-- range scan whatever the page number.
CREATE INDEX jobs_newest ON jobs (first_seen_at DESC, job_id DESC);
