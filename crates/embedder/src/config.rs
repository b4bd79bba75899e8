//! Which embedder a process uses, from its flags or environment; every mistake is refused at
//! start-up naming the variable.
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::{EmbedError, Embedder, HashingEmbedder, HttpEmbedder, HttpSettings, MiniLm, minilm};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum EmbedderChoice {
    /// all-MiniLM-L6-v2 in-process, from EMBEDDINGS_MODEL_DIR (fully offline).
    Minilm,
    /// An OpenAI-compatible server at EMBEDDINGS_URL.
    Openai,
    /// Feature hashing: instant, for tests and benchmarks of everything but the model.
    Hashing,
}

#[derive(Debug, Clone, clap::Args)]
pub struct EmbedderConfig {
    /// The embedding model: minilm (in-process, offline), openai (EMBEDDINGS_URL) or hashing.
    #[arg(long, env = "EMBEDDER", value_enum, default_value = "minilm")]
    pub embedder: EmbedderChoice,
    /// minilm: the folder holding model.safetensors, tokenizer.json and config.json
    /// (`deploy/model.sh` fills it). Default: ~/.cache/trawl-tools/models/all-minilm-l6-v2.
    #[arg(long, env = "EMBEDDINGS_MODEL_DIR")]
    pub embeddings_model_dir: Option<PathBuf>,
    /// minilm: tokens read per text (the model's window is 256).
    #[arg(long, env = "EMBEDDINGS_MAX_TOKENS", default_value_t = minilm::DEFAULT_MAX_TOKENS)]
    pub embeddings_max_tokens: usize,
    /// openai: the API's base URL, e.g. http://127.0.0.1:8080/v1.
    #[arg(long, env = "EMBEDDINGS_URL")]
    pub embeddings_url: Option<String>,
    /// openai: the model name sent and stored beside each vector.
    #[arg(long, env = "EMBEDDINGS_MODEL")]
    pub embeddings_model: Option<String>,
    /// openai: sent as a bearer token.
    #[arg(long, env = "EMBEDDINGS_API_KEY", hide_env_values = true)]
    pub embeddings_api_key: Option<String>,
    /// Texts per model call (per HTTP request for openai).
    #[arg(long, env = "EMBEDDINGS_BATCH", default_value_t = 32)]
    pub embeddings_batch: usize,
    /// openai: requests in flight at once.
    #[arg(long, env = "EMBEDDINGS_CONCURRENCY", default_value_t = 4)]
    pub embeddings_concurrency: usize,
    /// openai: seconds one request may take.
    #[arg(long, env = "EMBEDDINGS_TIMEOUT", default_value_t = 60)]
    pub embeddings_timeout: u64,
    /// openai: tries per request beyond the first (429, 5xx, network).
    #[arg(long, env = "EMBEDDINGS_RETRIES", default_value_t = 3)]
    pub embeddings_retries: u32,
}

impl EmbedderConfig {
    /// The embedder this configuration describes, loaded (the model read from disk) and
    /// checked; an error names the variable to fix.
    pub fn build(&self) -> Result<Arc<dyn Embedder>, EmbedError> {
        if self.embeddings_batch == 0 || self.embeddings_batch > 2048 {
            return Err(EmbedError::config("EMBEDDINGS_BATCH", "must be 1..=2048"));
        }
        match self.embedder {
            EmbedderChoice::Hashing => Ok(Arc::new(HashingEmbedder {
                batch_size: self.embeddings_batch,
            })),
            EmbedderChoice::Minilm => {
                if !(8..=512).contains(&self.embeddings_max_tokens) {
                    return Err(EmbedError::config(
                        "EMBEDDINGS_MAX_TOKENS",
                        "must be 8..=512 (the model's positions)",
                    ));
                }
                let dir = self
                    .embeddings_model_dir
                    .clone()
                    .unwrap_or_else(default_model_dir);
                Ok(Arc::new(MiniLm::load(
                    &dir,
                    self.embeddings_max_tokens,
                    self.embeddings_batch,
                )?))
            }
            EmbedderChoice::Openai => {
                let url = self.embeddings_url.as_deref().ok_or_else(|| {
                    EmbedError::config("EMBEDDINGS_URL", "required when EMBEDDER=openai")
                })?;
                let url = url::Url::parse(url)
                    .map_err(|e| EmbedError::config("EMBEDDINGS_URL", format!("{url:?}: {e}")))?;
                if !matches!(url.scheme(), "http" | "https") {
                    return Err(EmbedError::config("EMBEDDINGS_URL", "must be http(s)"));
                }
                let model = self
                    .embeddings_model
                    .clone()
                    .filter(|m| !m.trim().is_empty())
                    .ok_or_else(|| {
                        EmbedError::config("EMBEDDINGS_MODEL", "required when EMBEDDER=openai")
                    })?;
                if self.embeddings_concurrency == 0 {
                    return Err(EmbedError::config("EMBEDDINGS_CONCURRENCY", "must be ≥ 1"));
                }
                if self.embeddings_timeout == 0 {
                    return Err(EmbedError::config("EMBEDDINGS_TIMEOUT", "must be ≥ 1"));
                }
                Ok(Arc::new(HttpEmbedder::new(HttpSettings {
                    url,
                    model,
                    api_key: self.embeddings_api_key.clone(),
                    batch_size: self.embeddings_batch,
                    concurrency: self.embeddings_concurrency,
                    timeout: Duration::from_secs(self.embeddings_timeout),
                    retries: self.embeddings_retries,
                    retry_base: Duration::from_millis(500),
                })?))
            }
        }
    }
}

/// Where `deploy/model.sh` puts the model.
pub fn default_model_dir() -> PathBuf {
    let tools = std::env::var_os("TRAWL_TOOLS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/trawl-tools")
        });
    tools.join("models/all-minilm-l6-v2")
}
