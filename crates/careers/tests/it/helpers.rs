use std::time::Duration;

use queue_core::Services;
use queue_core::store::Run;
use sqlx::PgPool;
use test_support::{TestBoard, TestRedis};
use tokio_util::sync::{CancellationToken, DropGuard};
use trawl_careers::{Company, NewCompany};
use trawl_scrape::FetchMode;
use trawl_worker::{Worker, WorkerSettings};
use uuid::Uuid;

/// Redis, the demo board and (when started) a worker running trawl's kinds.
pub struct World {
    pub services: Services,
    pub board: TestBoard,
    _redis: TestRedis,
    worker: Option<DropGuard>,
}

impl World {
    pub async fn new(db: &PgPool) -> World {
        let redis = TestRedis::new();
        let services = redis.services(db);
        World {
            services,
            board: TestBoard::start().await,
            _redis: redis,
            worker: None,
        }
    }

    pub async fn with_worker(db: &PgPool) -> World {
        let mut world = World::new(db).await;
        world.start_worker(|_| {});
        world
    }

    /// Starts a worker (replacing the current one) with settings `adjust` may change.
    pub fn start_worker(&mut self, adjust: impl FnOnce(&mut WorkerSettings)) {
        self.worker = None;
        let mut settings = WorkerSettings::new(format!("careers-{}", Uuid::new_v4().simple()));
        settings.block_for = Duration::from_millis(100);
        settings.retry_base_delay = Duration::from_millis(5);
        settings.run_retry_base = Duration::from_millis(20);
        settings.careers_allow_private = true;
        adjust(&mut settings);
        let background = Default::default();
        let registry = trawl_worker::kinds::registry(&self.services, &settings, None, &background)
            .expect("kinds build");
        let worker = Worker::with_registry(self.services.clone(), settings, registry, background)
            .expect("worker builds");
        let stop = CancellationToken::new();
        tokio::spawn(worker.run(stop.clone()));
        self.worker = Some(stop.drop_guard());
    }

    pub fn stop_worker(&mut self) {
        self.worker = None;
    }

    /// The demo board's server-rendered career page of `company`, as a company of trawl's.
    pub async fn add_company(&self, company: &str) -> Company {
        let url = format!("{}careers/{company}", self.board.url);
        trawl_careers::companies::add(&self.services.db, new_company(company, &url), true)
            .await
            .expect("company adds")
    }

    /// Queues a check of `company` and waits for its run to end.
    pub async fn snapshot(&self, company: &str) -> Run {
        let run_id = trawl_careers::submit(&self.services, company)
            .await
            .expect("snapshot queues");
        self.ended(&run_id).await
    }

    pub async fn ended(&self, run_id: &str) -> Run {
        test_support::run_ended(&self.services.db, run_id).await
    }

    /// Waits until no career_detail run is queued or running; returns how many ended.
    pub async fn details_settled(&self) -> i64 {
        test_support::eventually(Duration::from_secs(60), "detail runs to end", || async {
            let active = count(
                &self.services.db,
                "SELECT count(*) FROM task_runs WHERE kind = 'career_detail' \
                 AND status IN ('queued', 'running')",
            )
            .await;
            (active == 0).then_some(())
        })
        .await;
        count(
            &self.services.db,
            "SELECT count(*) FROM task_runs WHERE kind = 'career_detail'",
        )
        .await
    }
}

pub fn new_company(name: &str, url: &str) -> NewCompany {
    NewCompany {
        name: name.to_owned(),
        url: url.to_owned(),
        fetch: FetchMode::Http,
        wait_for: None,
        load_more: None,
        next_page: Some("a.next".to_owned()),
        max_pages: None,
        interval_minutes: None,
        cron: None,
        time_zone: None,
    }
}

pub async fn count(db: &PgPool, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(db).await.unwrap()
}
