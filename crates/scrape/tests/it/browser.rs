//! With real chromedriver and chromium (Debian's `chromium` and `chromium-driver`).
use std::time::Duration;
use test_support::prometheus::sample;

use demo_board::catalog;
use test_support::{
    FaultAction, FaultRule, FaultTarget, TestBoard, js_listing_definition, processes_mentioning,
};
use trawl_scrape::{
    BrowserPool, BrowserSettings, Fetchers, HttpFetcher, PageFetcher, PageRequest, ScrapeError,
    SiteSpec,
};

/// A browser pool whose profiles live in a folder of this test's own, so leftovers are ours.
fn pool(profiles: &tempfile::TempDir, adjust: impl FnOnce(&mut BrowserSettings)) -> BrowserPool {
    let mut settings = BrowserSettings::new("trawl-test");
    settings.profile_root = profiles.path().to_owned();
    settings.page_timeout = Duration::from_secs(20);
    adjust(&mut settings);
    BrowserPool::new(settings, None, Default::default())
}

fn fetchers(browser: Option<BrowserPool>) -> Fetchers {
    Fetchers {
        browser,
        ..Fetchers::http(HttpFetcher::new("trawl-test", Duration::from_secs(5)).unwrap())
    }
}

async fn run(
    spec: &SiteSpec,
    fetchers: &Fetchers,
    wanted: u32,
) -> (trawl_scrape::ScrapeReport, Vec<trawl_scrape::Posting>) {
    crate::helpers::run_scrape(spec, fetchers, wanted, Some("rust")).await
}

fn leftovers(profiles: &tempfile::TempDir) -> (Vec<u32>, usize) {
    let marker = profiles.path().display().to_string();
    let folders = std::fs::read_dir(profiles.path())
        .map(|d| d.count())
        .unwrap_or(0);
    (processes_mentioning(&marker), folders)
}

#[tokio::test]
async fn the_js_listing_yields_every_posting_through_the_browser_and_none_over_http()
-> anyhow::Result<()> {
    let board = TestBoard::start().await;
    let expected = catalog::search(Some("rust"), None);
    let wanted = 25;
    assert!(
        expected.len() > wanted,
        "the search spans two listing pages"
    );

    let over_http = SiteSpec::from_json(&js_listing_definition(&board.url, "http"))?;
    let (report, postings) = run(&over_http, &fetchers(None), wanted as u32).await;
    assert!(postings.is_empty(), "plain HTTP sees an empty shell");
    assert_eq!((report.requested_pages, report.completed_pages), (1, 1));

    let profiles = tempfile::tempdir()?;
    let browser = pool(&profiles, |_| {});
    let spec = SiteSpec::from_json(&js_listing_definition(&board.url, "browser"))?;
    let (report, postings) = run(&spec, &fetchers(Some(browser.clone())), wanted as u32).await;
    assert_eq!(report.page_errors, vec![], "{report:?}");
    // Two listing pages (pagination by the script's next link) and a detail page per posting.
    assert_eq!(report.requested_pages, 2 + wanted as u32);
    assert_eq!(postings.len(), wanted);
    for (posting, demo) in postings.iter().zip(&expected) {
        assert_eq!(posting.job_title, demo.title);
        assert_eq!(posting.company_name.as_deref(), Some(demo.company));
        assert_eq!(
            posting.salary_min,
            demo.salary.map(|(min, _)| f64::from(min)),
            "salary from the detail JSON-LD"
        );
        assert!(
            posting
                .job_description
                .as_deref()
                .unwrap()
                .contains(&format!("Posting #{}", demo.id))
        );
    }
    browser.close().await;
    assert_eq!(
        leftovers(&profiles),
        (Vec::<u32>::new(), 0),
        "no browser process or profile folder left"
    );
    Ok(())
}

#[tokio::test]
async fn recycled_sessions_leave_no_process_or_profile_behind() -> anyhow::Result<()> {
    let metrics = telemetry::metric::install();
    let board = TestBoard::start().await;
    let profiles = tempfile::tempdir()?;
    let browser = pool(&profiles, |s| {
        s.pages_per_session = 4;
        s.max_sessions = 2;
    });
    let pages: Vec<_> = (1..=12u32)
        .map(|id| board.url.join(&format!("jobs/{id}")).unwrap())
        .collect();
    // All at once: the pool's cap decides how many browsers work.
    let mut loads = tokio::task::JoinSet::new();
    for url in pages {
        let browser = browser.clone();
        let request = PageRequest {
            load_more: None,
            url,
            mode: trawl_scrape::FetchMode::Browser,
            wait_for: None,
        };
        loads.spawn(async move { browser.fetch(&request).await });
    }
    while let Some(html) = loads.join_next().await {
        assert!(html??.contains("application/ld+json"));
    }
    let driver = browser
        .driver_pid()
        .await
        .expect("the pool started chromedriver");
    browser.close().await;
    assert_eq!(leftovers(&profiles), (Vec::<u32>::new(), 0));
    assert!(
        !std::path::Path::new(&format!("/proc/{driver}")).exists(),
        "chromedriver stopped"
    );
    // Counted as they came and went: 12 pages, 4 per session, 2 at once.
    let text = telemetry::metric::render(&metrics);
    let started = sample(&text, "trawl_browser_sessions_started_total").unwrap();
    assert!((3.0..=6.0).contains(&started), "{text}");
    assert_eq!(
        sample(&text, "trawl_browser_sessions_open"),
        Some(0.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, r#"trawl_pages_fetched_total{outcome="ok"}"#),
        None,
        "the pool alone is not `Fetchers`"
    );
    Ok(())
}

#[tokio::test]
async fn a_page_that_hangs_is_stopped_by_the_watchdog_and_cleaned_up() -> anyhow::Result<()> {
    let metrics = telemetry::metric::install();
    let board = TestBoard::start().await;
    // The JS listing's data request hangs, so its wait_for selector never appears.
    board.fail(vec![FaultRule {
        target: FaultTarget::AnyListing,
        action: FaultAction::Delay { millis: 120_000 },
        times: Some(1),
    }]);
    let profiles = tempfile::tempdir()?;
    let browser = pool(&profiles, |s| s.page_timeout = Duration::from_secs(8));
    let request = PageRequest {
        load_more: None,
        url: board.url.join("js/jobs?page=1")?,
        mode: trawl_scrape::FetchMode::Browser,
        wait_for: Some("main#results[data-loaded]".into()),
    };
    let started = std::time::Instant::now();
    let err = browser.fetch(&request).await.unwrap_err();
    assert!(
        matches!(
            err,
            ScrapeError::Transport {
                timed_out: true,
                ..
            }
        ),
        "{err}"
    );
    // What failed, then why: the watchdog is the cause.
    let chain = trawl_scrape::error_chain(&err);
    assert!(chain.contains("watchdog"), "{chain}");
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "stopped by the watchdog (browser start-up included), not by the fault's 120 s"
    );
    let (processes, _) = leftovers(&profiles);
    assert_eq!(
        processes,
        Vec::<u32>::new(),
        "the stuck session's browser is gone right away"
    );

    // The pool carries on with a fresh session.
    let html = browser.fetch(&request).await?;
    assert!(html.contains("job-card"));
    browser.close().await;
    assert_eq!(leftovers(&profiles), (Vec::<u32>::new(), 0));
    let text = telemetry::metric::render(&metrics);
    assert_eq!(
        sample(&text, "trawl_browser_sessions_killed_total"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "trawl_browser_sessions_started_total"),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "trawl_browser_sessions_open"),
        Some(0.0),
        "{text}"
    );
    Ok(())
}

#[tokio::test]
async fn a_chromedriver_that_exits_at_start_is_started_again_on_another_port() -> anyhow::Result<()>
{
    use std::os::unix::fs::PermissionsExt;
    let board = TestBoard::start().await;
    // Exits the first time, as chromedriver does when its port was taken before it bound it.
    let dir = tempfile::tempdir()?;
    let (script, first) = (dir.path().join("chromedriver"), dir.path().join("first"));
    let text = format!(
        "#!/bin/sh\nif [ ! -e '{0}' ]; then touch '{0}'; exit 1; fi\nexec chromedriver \"$@\"\n",
        first.display()
    );
    std::fs::write(&script, text)?;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755))?;
    let profiles = tempfile::tempdir()?;
    let browser = pool(&profiles, |s| s.chromedriver = script.clone());
    let request = PageRequest {
        load_more: None,
        url: board.url.join("jobs/1")?,
        mode: trawl_scrape::FetchMode::Browser,
        wait_for: None,
    };
    let html = browser.fetch(&request).await?;
    assert!(html.contains("application/ld+json"));
    assert!(first.exists(), "the first start failed");
    browser.close().await;
    assert_eq!(leftovers(&profiles), (Vec::<u32>::new(), 0));
    Ok(())
}
