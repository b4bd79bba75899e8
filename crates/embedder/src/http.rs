//! An OpenAI-compatible embeddings server (`POST {EMBEDDINGS_URL}/embeddings`): texts go in
//! requests of `batch_size`, up to `concurrency` at once; a 429 waits for its Retry-After, a
//! 5xx, a time-out or a refused connection is tried again with doubling pauses; a 4xx is the
//! configuration's fault and is not.
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::{EmbedError, EmbedFuture, Embedder};

#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// The API's base, e.g. `http://127.0.0.1:8080/v1`.
    pub url: url::Url,
    pub model: String,
    pub api_key: Option<String>,
    pub batch_size: usize,
    pub concurrency: usize,
    pub timeout: Duration,
    /// Tries per request beyond the first, for 429, 5xx and network failures.
    pub retries: u32,
    /// The first pause between tries (doubles).
    pub retry_base: Duration,
}

pub struct HttpEmbedder {
    settings: Arc<HttpSettings>,
    client: reqwest::Client,
    endpoint: url::Url,
}

#[derive(Deserialize)]
struct Response {
    data: Vec<Item>,
}

#[derive(Deserialize)]
struct Item {
    /// Read value by value: a provider that computed a NaN sends `null` or `"NaN"` in its
    /// place, which becomes NaN here so that [`crate::checked`] fails that one text.
    embedding: Vec<serde_json::Value>,
    #[serde(default)]
    index: Option<usize>,
}

fn number(value: &serde_json::Value) -> f32 {
    value.as_f64().map_or(f32::NAN, |v| v as f32)
}

impl HttpEmbedder {
    pub fn new(settings: HttpSettings) -> Result<Self, EmbedError> {
        let mut base = settings.url.clone();
        if !base.path().ends_with('/') {
            base.set_path(&format!("{}/", base.path()));
        }
        let endpoint = base
            .join("embeddings")
            .map_err(|e| EmbedError::config("EMBEDDINGS_URL", e.to_string()))?;
        let client = reqwest::Client::builder()
            .timeout(settings.timeout)
            .build()
            .map_err(|e| EmbedError::config("EMBEDDINGS_URL", e.to_string()))?;
        Ok(Self {
            settings: Arc::new(settings),
            client,
            endpoint,
        })
    }

    async fn request(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, EmbedError> {
        let mut pause = self.settings.retry_base;
        let mut tries = 0;
        loop {
            match self.try_once(&texts).await {
                Ok(vectors) => return Ok(vectors),
                Err(EmbedError::Unavailable {
                    message,
                    retry_after,
                }) if tries < self.settings.retries => {
                    tries += 1;
                    let wait = retry_after.unwrap_or(pause);
                    tracing::warn!(%message, try_ = tries, wait_ms = wait.as_millis() as u64, "embedding request failed; trying again");
                    tokio::time::sleep(wait).await;
                    pause *= 2;
                }
                Err(error) => return Err(error),
            }
        }
    }

    async fn try_once(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let mut request = self
            .client
            .post(self.endpoint.clone())
            .json(&serde_json::json!({
                "model": self.settings.model,
                "input": texts,
            }));
        if let Some(key) = &self.settings.api_key {
            request = request.bearer_auth(key);
        }
        let response = request.send().await.map_err(|e| EmbedError::Unavailable {
            message: format!("{}: {e}", self.endpoint),
            retry_after: None,
        })?;
        let status = response.status();
        if status.as_u16() == 429 || status.is_server_error() {
            let retry_after = response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            let body = response.text().await.unwrap_or_default();
            return Err(EmbedError::Unavailable {
                message: format!("HTTP {status}: {}", first_chars(&body)),
                retry_after,
            });
        }
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            return Err(EmbedError::Refused(format!(
                "HTTP {status}: {}",
                first_chars(&body)
            )));
        }
        let body = response
            .bytes()
            .await
            .map_err(|e| EmbedError::Unavailable {
                message: format!("reading the answer: {e}"),
                retry_after: None,
            })?;
        let mut parsed: Response = serde_json::from_slice(&body).map_err(|e| {
            EmbedError::Malformed(format!(
                "{e}: {}",
                first_chars(&String::from_utf8_lossy(&body))
            ))
        })?;
        if parsed.data.iter().all(|item| item.index.is_some()) {
            parsed.data.sort_by_key(|item| item.index);
        }
        Ok(parsed
            .data
            .into_iter()
            .map(|item| item.embedding.iter().map(number).collect())
            .collect())
    }
}

fn first_chars(text: &str) -> String {
    text.chars().take(200).collect()
}

impl Embedder for HttpEmbedder {
    fn model(&self) -> &str {
        &self.settings.model
    }

    fn batch_size(&self) -> usize {
        self.settings.batch_size
    }

    fn embed<'a>(&'a self, texts: &'a [String]) -> EmbedFuture<'a> {
        Box::pin(async move {
            let chunks: Vec<Vec<String>> = texts
                .chunks(self.settings.batch_size.max(1))
                .map(<[String]>::to_vec)
                .collect();
            if chunks.len() <= 1 {
                return match chunks.into_iter().next() {
                    Some(chunk) => self.request(chunk).await,
                    None => Ok(Vec::new()),
                };
            }
            let permits = Arc::new(Semaphore::new(self.settings.concurrency.max(1)));
            let mut requests = JoinSet::new();
            for (at, chunk) in chunks.into_iter().enumerate() {
                let this = Self {
                    settings: self.settings.clone(),
                    client: self.client.clone(),
                    endpoint: self.endpoint.clone(),
                };
                let permits = permits.clone();
                requests.spawn(async move {
                    let _permit = permits.acquire_owned().await;
                    (at, this.request(chunk).await)
                });
            }
            let mut parts = Vec::new();
            while let Some(joined) = requests.join_next().await {
                let (at, result) = joined.map_err(|e| EmbedError::Model(e.to_string()))?;
                // One chunk failing fails the call: the caller retries the whole batch.
                parts.push((at, result?));
            }
            parts.sort_by_key(|(at, _)| *at);
            Ok(parts.into_iter().flat_map(|(_, vectors)| vectors).collect())
        })
    }
}
