-- Similar postings are answered from the active model's vectors held in memory (an inverted
-- index per process, see trawl_pipeline::similarity): a GIN index over every posting's
-- features cost 3.7 of the 4.3 s that storing 47,000 vectors takes, and common terms made it
-- return nearly every posting anyway.
DROP INDEX posting_vectors_features;
