//! Text to vectors. [`Embedder`] is one model behind one trait, chosen by configuration
//! ([`EmbedderConfig`]): all-MiniLM-L6-v2 in-process (the default, fully offline), an
//! OpenAI-compatible HTTP server, or feature hashing (no semantics beyond shared words: for
//! tests and benchmarks that must not measure a model). [`checked`] is the one gate every
//! vector passes before anyone stores it. No queue, no database.
mod config;
mod error;
mod hashing;
mod http;
mod minilm;
mod text;

use std::future::Future;
use std::pin::Pin;

pub use config::{EmbedderChoice, EmbedderConfig, default_model_dir};
pub use error::EmbedError;
pub use hashing::HashingEmbedder;
pub use http::{HttpEmbedder, HttpSettings};
pub use minilm::{CandleBert, MiniLm};
pub use text::{MAX_TEXT_CHARS, PostingText, posting_text};

/// The vector width every embedding has: the `posting_embeddings.embedding` column is
/// `vector(384)`, the width of all-MiniLM-L6-v2 and of multilingual-e5-small.
pub const DIMENSIONS: usize = 384;

pub type EmbedFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Vec<Vec<f32>>, EmbedError>> + Send + 'a>>;

/// One embedding model. `embed` returns one vector per text, in order, or fails the whole
/// call; the caller runs [`checked`] on what comes back, so a provider's wrong-width or NaN
/// vector fails that one posting with a reason instead of being stored.
pub trait Embedder: Send + Sync {
    /// The name stored beside each vector; searches only use vectors of the active model.
    fn model(&self) -> &str;
    /// The most texts one `embed` call should carry.
    fn batch_size(&self) -> usize;
    fn embed<'a>(&'a self, texts: &'a [String]) -> EmbedFuture<'a>;
}

/// The per-text outcome of one call: a vector fit to store, or why not.
pub fn checked(
    raw: Vec<Vec<f32>>,
    expected: usize,
) -> Result<Vec<Result<Vec<f32>, String>>, EmbedError> {
    if raw.len() != expected {
        return Err(EmbedError::Malformed(format!(
            "{} vectors for {expected} texts",
            raw.len()
        )));
    }
    Ok(raw.into_iter().map(check_one).collect())
}

fn check_one(vector: Vec<f32>) -> Result<Vec<f32>, String> {
    if vector.len() != DIMENSIONS {
        return Err(format!(
            "wrong dimension: {} (expected {DIMENSIONS})",
            vector.len()
        ));
    }
    if let Some(at) = vector.iter().position(|v| !v.is_finite()) {
        return Err(format!("non-finite value at {at}: {}", vector[at]));
    }
    let norm = vector.iter().map(|v| v * v).sum::<f32>().sqrt();
    if norm == 0.0 {
        return Err("zero vector (no direction to compare by cosine)".to_owned());
    }
    Ok(vector)
}

/// Scales a vector to length 1, so cosine similarity is a dot product.
pub fn normalize(vector: &mut [f32]) {
    let norm = vector.iter().map(|v| v * v).sum::<f32>().sqrt();
    if norm > 0.0 {
        vector.iter_mut().for_each(|v| *v /= norm);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checked_refuses_wrong_width_nan_and_zero_and_keeps_the_rest() {
        let good = vec![0.5; DIMENSIONS];
        let mut nan = good.clone();
        nan[7] = f32::NAN;
        let out = checked(
            vec![good.clone(), vec![1.0; 3], nan, vec![0.0; DIMENSIONS]],
            4,
        )
        .unwrap();
        assert_eq!(out[0].as_ref().unwrap(), &good);
        assert!(out[1].as_ref().unwrap_err().contains("wrong dimension: 3"));
        assert!(
            out[2]
                .as_ref()
                .unwrap_err()
                .contains("non-finite value at 7")
        );
        assert!(out[3].as_ref().unwrap_err().contains("zero vector"));
        assert!(matches!(
            checked(vec![good], 2),
            Err(EmbedError::Malformed(m)) if m.contains("1 vectors for 2 texts")
        ));
    }
}
