use std::time::Duration;

use queue_core::Services;
use reqwest::{Client, RequestBuilder, Response};
use serde_json::Value;
pub use test_support::nap::record_nap_run_without_task;
use tokio_util::sync::{CancellationToken, DropGuard};
use trawl_api::{ApiKeys, AppState};
use trawl_scrape::HttpFetcher;

pub const KEY: &str = "test-key-1";

/// The API on a free loopback port; stops when dropped.
pub struct TestApi {
    pub base: String,
    pub client: Client,
    _stop: DropGuard,
}

pub async fn spawn_api(services: &Services) -> TestApi {
    let fetcher = HttpFetcher::new("trawl-test", Duration::from_secs(5)).unwrap();
    let sync_scrape = trawl_tasks::erased(trawl_scrape_runs::ScrapeHandler {
        db: services.db.clone(),
        fetchers: trawl_scrape::Fetchers::http(fetcher),
        retry_base_delay: Duration::from_millis(5),
    });
    let state = AppState {
        metrics: telemetry::metric::install(),
        services: services.clone(),
        sync_scrape,
        keys: ApiKeys::parse(KEY),
        sync_timeout: Duration::from_secs(20),
        scheduler_batch: 100,
        alerts: Default::default(),
        similarity: Default::default(),
        embedder: std::sync::Arc::new(trawl_embedder::HashingEmbedder { batch_size: 64 }),
        careers_allow_private: true,
        run_counts: Default::default(),
        coverage: Default::default(),
        queue_readings: Default::default(),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let stop = CancellationToken::new();
    tokio::spawn(trawl_api::serve(listener, state, stop.clone()));
    TestApi {
        base,
        client: Client::new(),
        _stop: stop.drop_guard(),
    }
}

impl TestApi {
    pub fn get(&self, path: &str) -> RequestBuilder {
        self.client.get(format!("{}{path}", self.base))
    }

    /// The body of a GET, as text (a page, the metrics).
    pub async fn text(&self, path: &str) -> String {
        self.get(path).send().await.unwrap().text().await.unwrap()
    }

    /// A POST carrying the valid key.
    pub fn post(&self, path: &str) -> RequestBuilder {
        self.client
            .post(format!("{}{path}", self.base))
            .bearer_auth(KEY)
    }
}

/// Status and JSON body of a response.
pub async fn read(response: RequestBuilder) -> (u16, Value) {
    let response: Response = response.send().await.expect("request sent");
    let status = response.status().as_u16();
    let body = response.json().await.expect("JSON body");
    (status, body)
}

/// Asserts an error envelope with this status, code and a message containing `fragment`.
pub async fn expect_error(request: RequestBuilder, status: u16, code: &str, fragment: &str) {
    let (got, body) = read(request).await;
    assert_eq!(got, status, "{body}");
    assert_eq!(body["status"], "error", "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains(fragment),
        "message {message:?} lacks {fragment:?}"
    );
}

/// Registers the site "demo" at a board nowhere (port 9, discard): for tests that queue its
/// runs but never scrape them.
pub async fn register_demo_nowhere(db: &sqlx::PgPool) {
    let board = url::Url::parse("http://127.0.0.1:9/").unwrap();
    test_support::register_site(db, "demo", &board, 0).await;
}
