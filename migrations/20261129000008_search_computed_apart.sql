-- `jobs.search` was a generated column: PostgreSQL computed it row by row inside whatever
-- statement wrote the row, and at 47,000 postings that was 9.4 s of a batch's export, on one
-- core, inside its transaction. Now it is an ordinary column kept by a trigger from one
-- function, and the export computes it beforehand, on every core, into its staging rows.
CREATE FUNCTION posting_search(title TEXT, company TEXT, skills TEXT, description TEXT)
RETURNS tsvector LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT setweight(to_tsvector('english', coalesce(title, '')), 'A')
        || setweight(to_tsvector('english', coalesce(company, '')), 'B')
        || setweight(to_tsvector('english', coalesce(skills, '')), 'B')
        || setweight(to_tsvector('english', coalesce(description, '')), 'C')
$$;

ALTER TABLE jobs ALTER COLUMN search DROP EXPRESSION;

-- Whoever writes a posting without its search (the scrape path, psql) gets it computed; a
-- writer that brings it (the export) keeps its own. An update that changes the text and not
-- the search gets it recomputed, so it is never stale.
CREATE FUNCTION jobs_search_current() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (TG_OP = 'INSERT' AND NEW.search IS NULL)
       OR (TG_OP = 'UPDATE' AND NEW.search IS NOT DISTINCT FROM OLD.search
           AND (NEW.job_title, NEW.company_name, NEW.skills_required, NEW.job_description)
               IS DISTINCT FROM (OLD.job_title, OLD.company_name, OLD.skills_required, OLD.job_description))
    THEN
        NEW.search := posting_search(NEW.job_title, NEW.company_name, NEW.skills_required, NEW.job_description);
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER jobs_search_current BEFORE INSERT OR UPDATE ON jobs
    FOR EACH ROW EXECUTE FUNCTION jobs_search_current();

ALTER TABLE batch_export_rows ADD COLUMN search tsvector;
