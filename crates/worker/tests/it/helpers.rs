use std::sync::Arc;
use std::time::Duration;

use queue_core::{Services, Task};
use sqlx::PgPool;
use test_support::TestRedis;
use trawl_scrape_runs::{ScrapeRun, ScrapeTask};
use trawl_worker::{Outcome, Processed, Worker, WorkerSettings};

pub fn worker(services: &Services) -> Arc<Worker> {
    worker_with(services, |_| {})
}

pub fn worker_with(services: &Services, adjust: impl FnOnce(&mut WorkerSettings)) -> Arc<Worker> {
    let mut settings =
        WorkerSettings::new(format!("test-worker-{}", uuid::Uuid::new_v4().simple()));
    settings.block_for = Duration::from_millis(200);
    settings.retry_base_delay = Duration::from_millis(5);
    settings.run_retry_base = Duration::from_millis(20);
    settings.lock_wait = Duration::from_secs(2);
    settings.shutdown_grace = Duration::from_secs(5);
    settings.page_timeout = Duration::from_secs(5);
    // These tests drive scrapes one `run_once` at a time: the pipeline's queue would take
    // every other turn.
    settings.queues = trawl_worker::QueueShare::parse_list("scraping").expect("a queue list");
    adjust(&mut settings);
    Worker::new(services.clone(), settings, None, Default::default()).expect("worker builds")
}

/// Queues a scheduled run of `site` with the given search, as the scheduler would.
pub async fn queue_run(
    services: &Services,
    site: &str,
    search_term: Option<&str>,
    wanted: u32,
) -> Task {
    let site = trawl_scrape_runs::sites::get_site(&services.db, site)
        .await
        .unwrap()
        .expect("site exists");
    let scrape = ScrapeTask {
        search_term: search_term.map(str::to_owned),
        results_wanted: Some(wanted),
        ..ScrapeTask::new(&site.site_name)
    };
    let trigger = queue_core::Trigger::Schedule;
    let task = scrape.into_task(queue_core::new_run_id(trigger), trigger);
    queue_core::submit_run(services, &task, &trawl_scrape_runs::plan_for(&site))
        .await
        .expect("run submitted");
    task
}

/// Takes one task and processes it.
pub async fn process_next(worker: &Worker) -> Processed {
    let mut consumer = worker.consumer();
    match worker.run_once(&mut consumer).await.expect("run_once") {
        Outcome::Ran(processed) => processed,
        Outcome::Empty => panic!("the queue was empty"),
        Outcome::Paused => panic!("the queue is paused"),
    }
}

pub async fn run(db: &PgPool, run_id: &str) -> ScrapeRun {
    trawl_scrape_runs::get_scrape_run(db, run_id)
        .await
        .unwrap()
        .expect("run exists")
}

pub async fn job_count(db: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM jobs")
        .fetch_one(db)
        .await
        .unwrap()
}

pub fn services_with_timeout(redis: &TestRedis, db: &PgPool, job_timeout: u64) -> Services {
    let mut config = redis.config("postgres://unused");
    config.job_timeout = job_timeout;
    Services::new(db.clone(), redis.pool.clone(), &config)
}

/// Listing pages a search of `found` postings takes for `wanted` results (20 per page).
pub fn listing_pages(found: usize, wanted: usize) -> u32 {
    (found.min(wanted).max(1)).div_ceil(20) as u32
}

/// Waits up to `limit` until `worker`'s in-flight list is empty.
pub async fn until_nothing_in_flight(services: &Services, worker: &Worker, limit: Duration) {
    test_support::eventually(limit, "nothing left in flight", || async {
        services
            .queue
            .inflight(worker.id())
            .await
            .unwrap()
            .is_empty()
            .then_some(())
    })
    .await;
}

/// Waits until the one task in the delayed set falls due and moves to the queue.
pub async fn until_retry_due(services: &Services) {
    test_support::eventually(Duration::from_secs(5), "the retry to fall due", || async {
        (services.queue.promote_due().await.unwrap() == 1).then_some(())
    })
    .await;
}
