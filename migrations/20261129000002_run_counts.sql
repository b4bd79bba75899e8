-- A run's posting counts, from its links: the one definition every way a run ends uses
-- (`SET (jobs_found, jobs_inserted, jobs_updated, jobs_unchanged) = (SELECT * FROM ...)`).
CREATE FUNCTION scrape_run_counts(p_run_id TEXT)
RETURNS TABLE (found INTEGER, inserted INTEGER, updated INTEGER, unchanged INTEGER)
LANGUAGE sql STABLE AS $$
    SELECT count(*)::int,
           (count(*) FILTER (WHERE outcome = 'inserted'))::int,
           (count(*) FILTER (WHERE outcome = 'updated'))::int,
           (count(*) FILTER (WHERE outcome = 'unchanged'))::int
    FROM scrape_run_postings WHERE run_id = p_run_id
$$;
