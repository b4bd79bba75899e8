//! The pipeline end to end: real Redis, PostgreSQL, workers and the demo board's fixtures.
mod alerts;
mod batches;
mod helpers;
mod metrics;
mod sklearn;
