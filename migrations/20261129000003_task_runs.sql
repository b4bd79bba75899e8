-- One ledger for every kind of task. `scrape_runs` becomes `task_runs`: the lifecycle columns
-- every kind shares (status, attempt = fencing token, retries, worker, message) plus the task's
-- kind, queue, payload, result, the exclusive lock it holds while it is active (`lock_key`; a
-- scrape's is its site) and its retry budget. The lifecycle library writes only these.
--
-- The scrape kind's seed-003 columns stay on the same row (single-table inheritance: every
-- lifecycle write is one row, one index, one compare-and-set, with no join), derived from
-- `payload` and `result` by the trigger below, so no Rust code outside the scrape kind knows
-- them; `scrape_runs` is a view of the scrape rows with seed 003's columns.
ALTER TABLE scrape_runs RENAME TO task_runs;
ALTER TABLE scrape_run_attempts RENAME TO task_run_attempts;
ALTER INDEX scrape_runs_active RENAME TO task_runs_active;

ALTER TABLE task_runs
    ADD COLUMN kind TEXT NOT NULL DEFAULT 'scrape' CHECK (kind ~ '^[a-z][a-z0-9_]{0,31}$'),
    ADD COLUMN queue TEXT NOT NULL DEFAULT 'scraping' CHECK (queue ~ '^[a-z][a-z0-9_-]{0,31}$'),
    ADD COLUMN payload JSONB NOT NULL DEFAULT '{}',
    ADD COLUMN result JSONB NOT NULL DEFAULT '{}',
    ADD COLUMN lock_key TEXT,
    ADD COLUMN max_retries INTEGER NOT NULL DEFAULT 3 CHECK (max_retries BETWEEN 0 AND 100),
    ALTER COLUMN site_name DROP NOT NULL;

UPDATE task_runs r SET
    payload = jsonb_strip_nulls(jsonb_build_object('site_name', r.site_name,
        'search_term', r.search_term, 'location', r.location, 'results_wanted', r.results_wanted)),
    lock_key = r.site_name,
    max_retries = COALESCE((SELECT s.max_retries FROM site_schedules s
                            WHERE s.id = r.site_schedule_id), 3);

-- From now on every writer names the kind and queue.
ALTER TABLE task_runs ALTER COLUMN kind DROP DEFAULT, ALTER COLUMN queue DROP DEFAULT;
ALTER TABLE task_runs ADD CONSTRAINT task_runs_scrape_has_site
    CHECK (kind <> 'scrape' OR site_name IS NOT NULL);
CREATE INDEX task_runs_kind_created ON task_runs (kind, created_at DESC);

-- The scrape kind's columns: the request from the payload when the run is recorded, page
-- figures from the result an attempt writes, posting counts from the run's links whenever the
-- run ends (however it ends), and at least one error on a run failed from outside its attempt.
CREATE FUNCTION scrape_run_columns() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        NEW.site_name := NEW.payload->>'site_name';
        NEW.search_term := NEW.payload->>'search_term';
        NEW.location := NEW.payload->>'location';
        NEW.results_wanted := (NEW.payload->>'results_wanted')::int;
        NEW.site_schedule_id := COALESCE(NEW.site_schedule_id,
            (SELECT id FROM site_schedules WHERE site_name = NEW.payload->>'site_name'));
        RETURN NEW;
    END IF;
    IF NEW.result IS DISTINCT FROM OLD.result THEN
        NEW.requested_pages := COALESCE((NEW.result->>'requested_pages')::int, NEW.requested_pages);
        NEW.completed_pages := COALESCE((NEW.result->>'completed_pages')::int, NEW.completed_pages);
        NEW.errors_count := COALESCE((NEW.result->>'errors_count')::int, NEW.errors_count);
        NEW.jobs_invalid := COALESCE((NEW.result->>'jobs_invalid')::int, NEW.jobs_invalid);
    END IF;
    IF NEW.status IN ('succeeded', 'partial', 'failed') AND OLD.status IN ('queued', 'running') THEN
        SELECT c.found, c.inserted, c.updated, c.unchanged
          INTO NEW.jobs_found, NEW.jobs_inserted, NEW.jobs_updated, NEW.jobs_unchanged
          FROM scrape_run_counts(NEW.run_id) c;
        IF NEW.status = 'failed' AND NEW.result IS NOT DISTINCT FROM OLD.result THEN
            NEW.errors_count := GREATEST(COALESCE(NEW.errors_count, 0), 1);
        END IF;
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER task_runs_scrape_columns BEFORE INSERT OR UPDATE ON task_runs
    FOR EACH ROW WHEN (NEW.kind = 'scrape') EXECUTE FUNCTION scrape_run_columns();

-- Seed 003's scrape_runs, as operators and dashboards read it.
CREATE VIEW scrape_runs AS
    SELECT id, run_id, site_schedule_id, site_name, task_id, trigger, status, search_term,
           location, results_wanted, started_at, finished_at, requested_pages, completed_pages,
           errors_count, jobs_found, jobs_inserted, jobs_updated, jobs_unchanged, jobs_invalid,
           attempt, worker_id, message, error_detail, created_at, updated_at, retries, retry_at
    FROM task_runs WHERE kind = 'scrape';

CREATE VIEW scrape_run_attempts AS
    SELECT a.* FROM task_run_attempts a JOIN task_runs r USING (run_id) WHERE r.kind = 'scrape';
