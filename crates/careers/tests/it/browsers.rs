//! Seed 004's browser leaks, checked: 20 companies whose pages need a browser ("Load more"),
//! checked by two workers with BROWSER_MAX_SESSIONS=2 each and 3 global slots. Sampled all the
//! way: never more browsers than the caps; after the workers stop, no Chromium process and no
//! profile folder is left.
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use queue_core::SlotSemaphore;
use queue_core::store::RunStatus;
use sqlx::PgPool;
use test_support::processes_mentioning;
use tokio_util::sync::CancellationToken;
use trawl_scrape::{BrowserSettings, BrowserSlots, FetchMode};
use trawl_scrape_runs::RedisBrowserSlots;
use trawl_worker::{Worker, WorkerSettings};

use crate::helpers::{World, count, new_company};

const COMPANIES: usize = 20;
const SESSIONS_PER_WORKER: usize = 2;
const GLOBAL_SLOTS: u32 = 3;

/// Distinct browsers (by profile folder) running under `root`.
fn browsers_under(root: &std::path::Path) -> usize {
    let marker = root.display().to_string();
    processes_mentioning(&marker)
        .into_iter()
        .filter_map(|pid| std::fs::read(format!("/proc/{pid}/cmdline")).ok())
        .filter_map(|cmdline| {
            String::from_utf8_lossy(&cmdline)
                .split('\0')
                .find_map(|arg| arg.strip_prefix("--user-data-dir=").map(str::to_owned))
        })
        .collect::<HashSet<String>>()
        .len()
}

#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn twenty_browser_pages_never_exceed_the_caps_and_leave_nothing(db: PgPool) {
    let world = World::new(&db).await;
    let profiles = tempfile::tempdir().unwrap();
    let slots = SlotSemaphore::new(
        world.services.redis.clone(),
        world.services.keys(),
        GLOBAL_SLOTS,
        Duration::from_secs(10),
        Duration::from_secs(120),
        Default::default(),
    );
    let mut workers = Vec::new();
    for n in 0..2 {
        let mut settings =
            WorkerSettings::new(format!("browsers-{n}-{}", uuid::Uuid::new_v4().simple()));
        settings.block_for = Duration::from_millis(100);
        settings.concurrency = 4;
        settings.careers_allow_private = true;
        let mut browser = BrowserSettings::new("trawl-test");
        browser.profile_root = profiles.path().to_owned();
        browser.max_sessions = SESSIONS_PER_WORKER;
        browser.idle_timeout = Duration::from_secs(2);
        settings.browser = Some(browser);
        let background = tokio_util::task::TaskTracker::new();
        let shared = Some(Arc::new(RedisBrowserSlots(slots.clone())) as Arc<dyn BrowserSlots>);
        let registry =
            trawl_worker::kinds::registry(&world.services, &settings, shared, &background)
                .expect("kinds build");
        let worker = Worker::with_registry(world.services.clone(), settings, registry, background)
            .expect("worker builds");
        let stop = CancellationToken::new();
        workers.push((stop.clone(), tokio::spawn(worker.run(stop))));
    }

    let watching = CancellationToken::new();
    let monitor = tokio::spawn({
        let (slots, root, stop) = (slots.clone(), profiles.path().to_owned(), watching.clone());
        async move {
            let (mut most_slots, mut most_browsers, mut samples) = (0u64, 0usize, 0u32);
            while !stop.is_cancelled() {
                most_slots = most_slots.max(slots.held().await.unwrap());
                most_browsers = most_browsers.max(browsers_under(&root));
                samples += 1;
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            (most_slots, most_browsers, samples)
        }
    });

    let mut runs = Vec::new();
    for n in 0..COMPANIES {
        let name = format!("js-company-{n}");
        let mut company = new_company(&name, &format!("{}careers/{name}/js", world.board.url));
        company.fetch = FetchMode::Browser;
        company.next_page = None;
        company.wait_for = Some("ul#jobs[data-loaded]".into());
        company.load_more = Some("#load-more".into());
        trawl_careers::companies::add(&db, company, true)
            .await
            .unwrap();
        runs.push(trawl_careers::submit(&world.services, &name).await.unwrap());
    }
    for run_id in &runs {
        let run = world.ended(run_id).await;
        assert_eq!(run.status, RunStatus::Succeeded, "{:?}", run.message);
        // Six postings, four per "Load more" step: the button was clicked.
        assert_eq!(run.result["links"], 6, "{}", run.result);
    }
    world.details_settled().await;
    let stored = count(
        &db,
        "SELECT count(*) FROM career_links WHERE job_id IS NOT NULL",
    )
    .await;
    assert_eq!(
        stored,
        (COMPANIES * 6) as i64,
        "every job page read in a browser"
    );

    for (stop, _) in &workers {
        stop.cancel();
    }
    for (_, handle) in workers {
        tokio::time::timeout(Duration::from_secs(60), handle)
            .await
            .expect("the workers stop")
            .unwrap();
    }
    watching.cancel();
    let (most_slots, most_browsers, samples) = monitor.await.unwrap();
    assert!(samples > 20, "{samples} samples");
    assert!(
        most_slots <= u64::from(GLOBAL_SLOTS),
        "{most_slots} global slots held at once"
    );
    assert!(
        most_browsers <= GLOBAL_SLOTS as usize,
        "{most_browsers} browsers at once"
    );
    assert!(most_browsers >= 1, "browsers were sampled while they ran");
    test_support::eventually(Duration::from_secs(10), "no browser left", || async {
        (browsers_under(profiles.path()) == 0).then_some(())
    })
    .await;
    let left: Vec<_> = std::fs::read_dir(profiles.path())
        .unwrap()
        .flatten()
        .collect();
    assert!(left.is_empty(), "profile folders left behind: {left:?}");
    assert_eq!(
        slots.held().await.unwrap(),
        0,
        "every global slot given back"
    );
}
