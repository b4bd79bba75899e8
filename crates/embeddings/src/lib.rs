//! Embeddings (seed 001), done so they cannot fail silently: the ledger `embedding_queue` is
//! filled by a trigger whenever a posting's text changes, the scheduler's sweep queues
//! `embed_batch` runs on the `embeddings` queue while postings wait, each run claims postings
//! (compare-and-set on its attempt), embeds them with the worker's model and writes only the
//! vector columns, in bulk; every failure keeps its reason and its retry time. Coverage, the
//! backfill and semantic/hybrid search read the same tables.
mod coverage;
mod error;
mod handler;
pub mod search;
pub mod store;
mod sweep;

pub use coverage::{Coverage, CoverageSample, FailureReason, ModelCoverage, coverage, history};
pub use error::EmbeddingsError;
pub use handler::{DEFAULT_RUN_LIMIT, EmbedBatches, EmbedTask, KIND, MAX_ATTEMPTS, QUEUE, submit};
pub use search::Mode;
pub use sweep::{Backfill, POSTINGS_PER_RUN, RUNS_PER_WORKER, Swept, backfill, sweep};
