use std::sync::Arc;
use std::time::Duration;

use queue_core::Services;
use sqlx::PgPool;
use test_support::TestRedis;
use tokio_util::sync::{CancellationToken, DropGuard};
use trawl_embedder::Embedder;
use trawl_embeddings::{Coverage, EmbedBatches, ModelCoverage};
use trawl_worker::{Worker, WorkerSettings};
use uuid::Uuid;

/// Redis, a worker running trawl's kinds plus `embed_batch` with `embedder`.
pub struct World {
    pub services: Services,
    _redis: TestRedis,
    worker: Option<DropGuard>,
}

impl World {
    pub async fn new(db: &PgPool, embedder: Arc<dyn Embedder>) -> World {
        let redis = TestRedis::new();
        let services = redis.services(db);
        let mut world = World {
            services,
            _redis: redis,
            worker: None,
        };
        world.start_worker(embedder).await;
        world
    }

    /// Stops the current worker (if any) and starts one embedding with `embedder`.
    pub async fn start_worker(&mut self, embedder: Arc<dyn Embedder>) {
        self.worker = None;
        let mut handler = EmbedBatches::new(self.services.db.clone(), embedder);
        handler.register().await.expect("model registers");
        handler.retry_base = Duration::from_millis(50);
        let mut settings = WorkerSettings::new(format!("embed-test-{}", Uuid::new_v4().simple()));
        settings.block_for = Duration::from_millis(100);
        settings.retry_base_delay = Duration::from_millis(5);
        settings.run_retry_base = Duration::from_millis(20);
        let background = Default::default();
        let registry = trawl_worker::kinds::registry(&self.services, &settings, None, &background)
            .expect("kinds build")
            .register(handler);
        let worker = Worker::with_registry(self.services.clone(), settings, registry, background)
            .expect("worker builds");
        let stop = CancellationToken::new();
        tokio::spawn(worker.run(stop.clone()));
        self.worker = Some(stop.drop_guard());
    }

    /// One scheduler pass (its sweep queues `embed_batch` runs while postings wait).
    pub async fn pass(&self) {
        trawl_schedule::run_pass(&self.services, "test", 100)
            .await
            .expect("pass");
    }

    /// Passes until `model` has no posting pending or processing; its coverage then.
    pub async fn settled(&self, model: &str) -> ModelCoverage {
        test_support::eventually(Duration::from_secs(90), "nothing left to embed", || async {
            self.pass().await;
            let coverage = coverage(&self.services.db).await;
            coverage
                .models
                .into_iter()
                .find(|m| m.model == model && m.pending + m.processing == 0)
        })
        .await
    }
}

pub async fn coverage(db: &PgPool) -> Coverage {
    trawl_embeddings::coverage(db).await.expect("coverage")
}

pub async fn count(db: &PgPool, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(db).await.unwrap()
}

/// Inserts postings with these titles and descriptions (site `fixture`).
pub async fn insert_postings(db: &PgPool, postings: &[(&str, &str)]) -> Vec<Uuid> {
    let mut ids = Vec::new();
    for (i, (title, description)) in postings.iter().enumerate() {
        let id = Uuid::new_v4();
        sqlx::query(
            "INSERT INTO jobs (job_id, site, external_id, job_title, job_description, location, \
                               url, source, content_hash) \
             VALUES ($1, 'fixture', $2, $3, $4, $5, 'http://127.0.0.1/', 'fixture', 'h')",
        )
        .bind(id)
        .bind(format!("{}-{i}", id.simple()))
        .bind(title)
        .bind(description)
        .bind(if title.is_empty() { "" } else { "Paris" })
        .execute(db)
        .await
        .unwrap();
        ids.push(id);
    }
    ids
}
