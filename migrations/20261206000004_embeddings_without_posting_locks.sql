-- Embedding writes that do not lock the posting they are for. The foreign keys from the ledger
-- and the vectors to `jobs` checked every inserted row with a query that locks its posting
-- (FOR KEY SHARE): each locked posting is a write to its page and a WAL record, twice per
-- posting embedded (queued, then stored) — about half the time of the queue + database path
-- in `trawl-bench embed`. What they gave is kept another way:
--  * rows are only inserted for postings that exist: the jobs triggers queue the rows they
--    write, `queue_missing` locks the postings it reads, and vectors are stored only for
--    ledger rows their run still holds;
--  * deleting a posting deletes its ledger rows and vectors, by the trigger below.
ALTER TABLE embedding_queue DROP CONSTRAINT embedding_queue_job_id_fkey;
ALTER TABLE posting_embeddings DROP CONSTRAINT posting_embeddings_job_id_fkey;

CREATE FUNCTION jobs_embeddings_gone() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- The ledger rows first: a run storing a vector holds its posting's ledger row until it
    -- commits, so this waits for it, and the next statement (a snapshot of its own) sees the
    -- vector that run stored.
    DELETE FROM embedding_queue q USING gone g WHERE q.job_id = g.job_id;
    DELETE FROM posting_embeddings e USING gone g WHERE e.job_id = g.job_id;
    RETURN NULL;
END $$;
CREATE TRIGGER jobs_embeddings_gone AFTER DELETE ON jobs
    REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION jobs_embeddings_gone();

-- Never used by a query (coverage and the failure reasons read the whole ledger, claims and
-- sweeps the partial indexes), yet written on every claim and every completion, since each
-- changes the row's status and updated_at.
DROP INDEX embedding_queue_status;
