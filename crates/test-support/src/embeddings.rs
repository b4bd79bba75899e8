//! An OpenAI-compatible `/v1/embeddings` server on loopback whose next answers a test scripts:
//! 429 with Retry-After, 500, a wrong-width or NaN vector, or a slow answer.
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use trawl_embedder::HashingEmbedder;

#[derive(Debug, Clone)]
pub enum Answer {
    TooMany { retry_after_secs: u64 },
    ServerError,
    BadRequest,
    NotJson,
}

#[derive(Default)]
pub struct Script {
    pub next: VecDeque<Answer>,
    /// Each request's inputs, in arrival order.
    pub requests: Vec<Vec<String>>,
    pub bearer: Vec<Option<String>>,
    pub delay: Duration,
}

#[derive(Clone)]
pub struct EmbeddingsFixture {
    pub url: String,
    pub script: Arc<Mutex<Script>>,
}

impl EmbeddingsFixture {
    pub async fn start() -> EmbeddingsFixture {
        let script: Arc<Mutex<Script>> = Arc::default();
        let app = axum::Router::new()
            .route("/v1/embeddings", axum::routing::post(embeddings))
            .with_state(script.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        EmbeddingsFixture {
            url: format!("http://{addr}/v1"),
            script,
        }
    }

    pub fn then(&self, answer: Answer) {
        self.script.lock().unwrap().next.push_back(answer);
    }

    /// Makes every answer from now on take `delay` (a slow provider).
    pub fn slow_down(&self, delay: Duration) {
        self.script.lock().unwrap().delay = delay;
    }

    pub fn requests(&self) -> Vec<Vec<String>> {
        self.script.lock().unwrap().requests.clone()
    }
}

/// Good vectors (feature hashing of the text), except for texts that ask otherwise:
/// `WRONGDIM` gets 3 numbers, `NANVEC` a NaN.
pub fn vector_for(text: &str) -> Value {
    if text.contains("WRONGDIM") {
        return json!([0.1, 0.2, 0.3]);
    }
    let vector = HashingEmbedder::vector(text);
    if text.contains("NANVEC") {
        // JSON has no NaN: a provider that computes one sends null or a string.
        let mut values: Vec<Value> = vector.iter().map(|v| json!(v)).collect();
        values[5] = json!("NaN");
        return Value::Array(values);
    }
    json!(vector)
}

async fn embeddings(
    State(script): State<Arc<Mutex<Script>>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let inputs: Vec<String> = body["input"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|v| v.as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default();
    let (answer, delay) = {
        let mut script = script.lock().unwrap();
        script.requests.push(inputs.clone());
        script.bearer.push(
            headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
        );
        (script.next.pop_front(), script.delay)
    };
    tokio::time::sleep(delay).await;
    match answer {
        Some(Answer::TooMany { retry_after_secs }) => (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", retry_after_secs.to_string())],
            "slow down",
        )
            .into_response(),
        Some(Answer::ServerError) => (StatusCode::INTERNAL_SERVER_ERROR, "boom").into_response(),
        Some(Answer::BadRequest) => (StatusCode::BAD_REQUEST, "unknown model").into_response(),
        Some(Answer::NotJson) => (StatusCode::OK, "<html>proxy error</html>").into_response(),
        None => {
            // Out of order on purpose: clients must sort by `index`.
            let data: Vec<Value> = inputs
                .iter()
                .enumerate()
                .rev()
                .map(|(i, text)| json!({"object": "embedding", "index": i, "embedding": vector_for(text)}))
                .collect();
            Json(json!({"object": "list", "data": data, "model": body["model"]})).into_response()
        }
    }
}
