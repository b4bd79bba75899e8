//! Feature hashing: each lower-cased word adds ±1 to one of 384 dimensions chosen by its hash.
//! Deterministic, instant, and meaningless beyond shared words — for the tests and benchmarks
//! that measure the queue and the database, not a model (`EMBEDDER=hashing`).
use std::hash::{Hash, Hasher};

use crate::{DIMENSIONS, EmbedFuture, Embedder, normalize};

pub const MODEL_NAME: &str = "hashing-384";

pub struct HashingEmbedder {
    pub batch_size: usize,
}

impl HashingEmbedder {
    pub fn vector(text: &str) -> Vec<f32> {
        let mut vector = vec![0.0f32; DIMENSIONS];
        for word in text
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
        {
            let mut hasher = rustc_hash::FxHasher::default();
            word.to_lowercase().hash(&mut hasher);
            let hash = hasher.finish();
            let sign = if hash >> 63 == 0 { 1.0 } else { -1.0 };
            vector[(hash % DIMENSIONS as u64) as usize] += sign;
        }
        normalize(&mut vector);
        vector
    }
}

impl Embedder for HashingEmbedder {
    fn model(&self) -> &str {
        MODEL_NAME
    }

    fn batch_size(&self) -> usize {
        self.batch_size
    }

    fn embed<'a>(&'a self, texts: &'a [String]) -> EmbedFuture<'a> {
        Box::pin(std::future::ready(Ok(texts
            .iter()
            .map(|t| Self::vector(t))
            .collect())))
    }
}
