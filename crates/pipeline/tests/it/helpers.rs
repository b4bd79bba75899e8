use std::sync::{Arc, Mutex};
use std::time::Duration;

use queue_core::{Services, Trigger};
use serde_json::{Value, json};
use sqlx::PgPool;
use test_support::{FaultAction, FaultRule, FaultTarget, TestBoard, TestRedis, unpaused_site};
use tokio_util::sync::{CancellationToken, DropGuard};
use trawl_pipeline::store::{self, Batch, BatchRun};
use trawl_worker::{Worker, WorkerSettings};
use uuid::Uuid;

/// A world with a demo board, its Adzuna fixture, two registered sites and a running worker.
pub struct World {
    pub services: Services,
    pub board: TestBoard,
    _redis: TestRedis,
    _worker: DropGuard,
    pub hooks: Receiver,
}

/// Alerts POSTed to a local webhook receiver.
#[derive(Clone, Default)]
pub struct Receiver {
    pub url: Option<url::Url>,
    pub received: Arc<Mutex<Vec<Value>>>,
}

impl Receiver {
    async fn start() -> Receiver {
        let received: Arc<Mutex<Vec<Value>>> = Arc::default();
        let sink = received.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |axum::Json(body): axum::Json<Value>| {
                let sink = sink.clone();
                async move {
                    sink.lock().unwrap().push(body);
                    "ok"
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Receiver {
            url: Some(format!("http://{addr}/hook").parse().unwrap()),
            received,
        }
    }

    pub fn alerts(&self) -> Vec<Value> {
        self.received.lock().unwrap().clone()
    }
}

pub async fn world(db: &PgPool) -> World {
    let board = TestBoard::start().await;
    let redis = TestRedis::new();
    let services = redis.services(db);
    let demo =
        json!({"source": "demo_board", "base_url": board.url.as_str(), "follow_details": true});
    trawl_scrape_runs::sites::upsert_site(db, &unpaused_site("demo", demo, 0))
        .await
        .unwrap();
    let adzuna = json!({"source": "adzuna", "country": "fr", "base_url": board.url.join("adzuna").unwrap().as_str()});
    trawl_scrape_runs::sites::upsert_site(db, &unpaused_site("adzuna-fr", adzuna, 0))
        .await
        .unwrap();
    let hooks = Receiver::start().await;
    let mut settings = WorkerSettings::new(format!("pipeline-test-{}", Uuid::new_v4().simple()));
    settings.block_for = Duration::from_millis(100);
    settings.retry_base_delay = Duration::from_millis(5);
    settings.run_retry_base = Duration::from_millis(20);
    settings.adzuna = Some(trawl_scrape::AdzunaCredentials {
        app_id: "id".into(),
        app_key: "key".into(),
    });
    settings.alert_webhook_url = hooks.url.clone();
    let worker =
        Worker::new(services.clone(), settings, None, Default::default()).expect("worker builds");
    let stop = CancellationToken::new();
    tokio::spawn(worker.run(stop.clone()));
    World {
        services,
        board,
        _redis: redis,
        _worker: stop.drop_guard(),
        hooks,
    }
}

/// Seed 002's pipeline against the fixtures: Adzuna "data engineer" × Paris, Lyon, Marseille
/// and the demo board's "engineer" search, with fast retries.
pub fn seed_definition(per_query: u32) -> Value {
    json!({
        "sources": [
            {"site": "adzuna-fr", "queries": ["data engineer"], "locations": ["Paris", "Lyon", "Marseille"], "max_per_query": per_query},
            {"site": "demo", "queries": ["engineer"], "max_per_query": per_query}
        ],
        "retry": {"tries": 3, "delays_seconds": [0.2, 0.4]}
    })
}

pub async fn start(world: &World, name: &str, definition: Value) -> Uuid {
    trawl_pipeline::upsert_pipeline(&world.services, name, definition)
        .await
        .expect("pipeline upserts");
    trawl_pipeline::submit_batch(&world.services, name, Trigger::Manual)
        .await
        .expect("batch queued")
}

/// Waits for the batch to leave `running`.
pub async fn finished(db: &PgPool, batch_id: Uuid) -> (Batch, Vec<BatchRun>) {
    let batch = test_support::eventually(Duration::from_secs(60), "the batch ends", || async {
        store::get_batch(db, batch_id)
            .await
            .unwrap()
            .filter(|b| b.status != "running")
    })
    .await;
    (batch, store::batch_runs(db, batch_id).await.unwrap())
}

pub fn stage<'a>(runs: &'a [BatchRun], name: &str) -> &'a BatchRun {
    runs.iter()
        .find(|r| r.stage == name)
        .unwrap_or_else(|| panic!("no {name} row"))
}

pub async fn count(db: &PgPool, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(db).await.unwrap()
}

/// Makes the board's listing pages do `action`, `times` times (None: always).
pub fn fail_listings(world: &World, action: FaultAction, times: Option<u32>) {
    world.board.fail(vec![FaultRule {
        target: FaultTarget::AnyListing,
        action,
        times,
    }]);
}

/// A listing status of `status`.
pub fn status(status: u16) -> FaultAction {
    FaultAction::Status {
        status,
        retry_after: None,
    }
}
