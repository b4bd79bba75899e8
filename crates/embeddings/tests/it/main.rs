//! Embeddings end to end: real Redis, PostgreSQL with pgvector, in-process workers running the
//! `embed_batch` kind, scheduler passes, and embedders from feature hashing to the real model.
mod automatic;
mod claims;
mod helpers;
mod models;
mod provider;
mod quality;
mod real_server;
