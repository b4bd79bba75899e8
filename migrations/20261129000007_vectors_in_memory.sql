-- Similar postings are answered from the active model's vectors held in memory (an inverted
-- index per process, see trawl_pipeline::similarity), so the table only stores and loads them:
-- the GIN index over every posting's features cost 3.7 of the 4.3 s that storing 47,000 vectors
-- took (and common terms made it return nearly every posting anyway), and parsing 4.7 million
-- array elements from text most of the rest. A vector is now packed bytes: (feature u32,
-- weight f32) pairs, little-endian, features ascending. Vectors stored before are dropped; the
-- next batch stores its model's again.
DROP INDEX posting_vectors_features;
TRUNCATE posting_vectors;
ALTER TABLE posting_vectors
    DROP COLUMN features,
    DROP COLUMN weights,
    ADD COLUMN vector BYTEA NOT NULL CHECK (octet_length(vector) % 8 = 0);
