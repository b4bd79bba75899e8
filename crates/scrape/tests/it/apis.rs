//! Greenhouse, Lever, Ashby and Adzuna sources against fixture endpoints speaking their formats.
use std::time::Duration;

use demo_board::{ats, catalog};
use serde_json::json;
use test_support::TestBoard;
use trawl_scrape::{AdzunaCredentials, Fetchers, HttpFetcher, SiteSpec};

fn fetchers(adzuna: Option<AdzunaCredentials>) -> Fetchers {
    Fetchers {
        adzuna,
        ..Fetchers::http(HttpFetcher::new("trawl-test", Duration::from_secs(5)).unwrap())
    }
}

async fn run(
    spec: serde_json::Value,
    fetchers: &Fetchers,
    wanted: u32,
    term: Option<&str>,
) -> (trawl_scrape::ScrapeReport, Vec<trawl_scrape::Posting>) {
    let spec = SiteSpec::from_json(&spec).expect("valid definition");
    crate::helpers::run_scrape(&spec, fetchers, wanted, term).await
}

fn demo(id: u32) -> catalog::DemoPosting {
    catalog::posting(id).unwrap()
}

#[tokio::test]
async fn greenhouse_postings_map_with_salary_department_and_remote() -> anyhow::Result<()> {
    let board = TestBoard::start().await;
    let spec = json!({"source": "greenhouse", "board": "acme", "company": "Acme Robotics",
                      "base_url": board.url.join("greenhouse")?.as_str()});
    let (report, postings) = run(spec, &fetchers(None), 100, None).await;
    assert_eq!(report.page_errors, vec![]);
    assert_eq!(postings.len(), ats::GREENHOUSE_JOBS as usize);
    let first = &postings[0];
    let source = demo(1);
    assert_eq!(first.job_title, source.title);
    assert_eq!(first.company_name.as_deref(), Some("Acme Robotics"));
    assert_eq!(first.external_id, "4000001");
    assert_eq!(first.department.as_deref(), Some("Engineering"));
    assert_eq!(
        (first.salary_min, first.salary_max),
        (
            source.salary.map(|(a, _)| f64::from(a)),
            source.salary.map(|(_, b)| f64::from(b))
        )
    );
    assert_eq!(first.salary_currency.as_deref(), Some("EUR"));
    assert_eq!(first.posted_date, Some(source.posted));
    let description = first.job_description.as_deref().unwrap();
    assert!(
        description.contains("is hiring")
            && !description.contains('<')
            && !description.contains("&lt;"),
        "{description}"
    );
    let remote = postings
        .iter()
        .find(|p| p.location == "Remote")
        .expect("a remote posting");
    assert_eq!(remote.is_remote, Some(true));
    assert!(
        postings
            .iter()
            .filter(|p| p.location != "Remote")
            .all(|p| p.is_remote == Some(false))
    );
    Ok(())
}

#[tokio::test]
async fn lever_pages_through_every_posting() -> anyhow::Result<()> {
    let board = TestBoard::start().await;
    let spec =
        json!({"source": "lever", "board": "acme", "base_url": board.url.join("lever")?.as_str()});
    let (report, postings) = run(spec, &fetchers(None), 1000, None).await;
    assert_eq!(report.page_errors, vec![]);
    assert_eq!(postings.len(), catalog::POSTING_COUNT as usize);
    assert_eq!(board.board.requests().api, 3, "100 + 100 + 40");
    let source = demo(5);
    let p = postings
        .iter()
        .find(|p| p.job_title == source.title && p.external_id.ends_with("000000000005"))
        .unwrap();
    assert_eq!(
        p.company_name.as_deref(),
        Some("acme"),
        "the board name when no company is given"
    );
    assert_eq!(p.salary_min, source.salary.map(|(a, _)| f64::from(a)));
    assert_eq!(p.salary_period.as_deref(), source.salary.map(|_| "YEAR"));
    assert_eq!(p.is_remote, Some(source.is_remote()));
    assert_eq!(p.posted_date, Some(source.posted));
    assert_eq!(p.department.as_deref(), Some("Engineering"));
    Ok(())
}

#[tokio::test]
async fn ashby_skips_unlisted_postings_and_reads_compensation() -> anyhow::Result<()> {
    let board = TestBoard::start().await;
    let spec =
        json!({"source": "ashby", "board": "acme", "base_url": board.url.join("ashby")?.as_str()});
    let (report, postings) = run(spec, &fetchers(None), 100, None).await;
    assert_eq!(report.page_errors, vec![]);
    assert_eq!(postings.len(), ats::ASHBY_JOBS as usize - 1);
    assert!(
        postings
            .iter()
            .all(|p| p.external_id != format!("ashby-{}", ats::ASHBY_UNLISTED))
    );
    let source = demo(2);
    let p = postings
        .iter()
        .find(|p| p.external_id == "ashby-2")
        .unwrap();
    assert_eq!(
        (
            p.salary_min,
            p.salary_currency.as_deref(),
            p.salary_period.as_deref()
        ),
        (
            source.salary.map(|(a, _)| f64::from(a)),
            Some("EUR"),
            Some("YEAR")
        )
    );
    assert_eq!(p.is_remote, Some(source.is_remote()));
    Ok(())
}

#[tokio::test]
async fn ats_boards_are_filtered_by_the_search() -> anyhow::Result<()> {
    let board = TestBoard::start().await;
    let spec =
        json!({"source": "ashby", "board": "acme", "base_url": board.url.join("ashby")?.as_str()});
    let (_, postings) = run(spec, &fetchers(None), 100, Some("rust")).await;
    assert!(!postings.is_empty());
    assert!(postings.iter().all(|p| {
        format!("{} {:?}", p.job_title, p.job_description)
            .to_lowercase()
            .contains("rust")
    }));
    Ok(())
}

fn credentials() -> AdzunaCredentials {
    AdzunaCredentials {
        app_id: "app-id-1".into(),
        app_key: "secret-key-42".into(),
    }
}

#[tokio::test]
async fn adzuna_paginates_and_stops_at_the_cap() -> anyhow::Result<()> {
    let board = TestBoard::start().await;
    let spec = json!({"source": "adzuna", "country": "fr", "base_url": board.url.join("adzuna")?.as_str(),
                      "search_term": "data engineer"});
    let (report, postings) = run(
        spec,
        &fetchers(Some(credentials())),
        1000,
        Some("data engineer"),
    )
    .await;
    assert_eq!(report.page_errors, vec![]);
    assert_eq!(
        postings.len(),
        1000,
        "the fixture matches 1500; the cap is 1000"
    );
    assert_eq!(board.board.requests().api, 20, "50 per page");
    let p = &postings[0];
    assert_eq!(p.external_id, "9000001");
    assert_eq!(p.company_name.as_deref(), Some(demo(1).company));
    assert_eq!(p.search_query.as_deref(), Some("data engineer"));
    Ok(())
}

#[tokio::test]
async fn adzuna_without_credentials_fails_clearly_and_never_leaks_the_key() -> anyhow::Result<()> {
    let board = TestBoard::start().await;
    let spec = json!({"source": "adzuna", "country": "gb", "base_url": board.url.join("adzuna")?.as_str()});
    let (report, postings) = run(spec.clone(), &fetchers(None), 10, None).await;
    assert!(postings.is_empty());
    assert!(
        report.page_errors[0]
            .error
            .contains("ADZUNA_APP_ID and ADZUNA_APP_KEY")
    );
    assert_eq!(board.board.requests().api, 0);

    // Nothing listens on port 9: the error carries the URL, with the key blanked out.
    let unreachable =
        json!({"source": "adzuna", "country": "gb", "base_url": "http://127.0.0.1:9"});
    let (report, _) = run(unreachable, &fetchers(Some(credentials())), 10, None).await;
    let recorded = format!("{:?}", report.page_errors);
    assert!(!report.page_errors.is_empty());
    assert!(!recorded.contains("secret-key-42"), "{recorded}");
    assert!(recorded.contains("app_key=***"), "{recorded}");
    Ok(())
}

#[test]
fn api_source_definitions_are_checked_at_load() {
    let err = SiteSpec::from_json(&json!({"source": "greenhouse", "board": ""}))
        .unwrap_err()
        .to_string();
    assert!(err.contains("`board`"), "{err}");
    let err = SiteSpec::from_json(&json!({"source": "adzuna", "country": "xx"}))
        .unwrap_err()
        .to_string();
    assert!(err.contains("`country`"), "{err}");
    let err = SiteSpec::from_json(&json!({"source": "lever", "board": "acme", "base_url": "nope"}))
        .unwrap_err()
        .to_string();
    assert!(err.contains("`base_url`"), "{err}");
    let err = SiteSpec::from_json(&json!({"source": "ashby"}))
        .unwrap_err()
        .to_string();
    assert!(err.contains("missing field `board`"), "{err}");
}

#[tokio::test]
async fn one_request_at_a_time_per_domain_by_default() -> anyhow::Result<()> {
    use trawl_scrape::{PageFetcher, PageRequest};
    let board = TestBoard::start().await;
    board.fail(vec![test_support::FaultRule {
        target: test_support::FaultTarget::AnyDetail,
        action: test_support::FaultAction::Delay { millis: 300 },
        times: None,
    }]);
    let fetchers = fetchers(None);
    let started = std::time::Instant::now();
    let mut requests = tokio::task::JoinSet::new();
    for id in 1..=3 {
        let (fetchers, url) = (fetchers.clone(), board.url.join(&format!("jobs/{id}"))?);
        requests.spawn(async move { fetchers.fetch(&PageRequest::http(url)).await });
    }
    while let Some(done) = requests.join_next().await {
        done??;
    }
    assert!(
        started.elapsed() >= Duration::from_millis(880),
        "three 300 ms pages in turn: {:?}",
        started.elapsed()
    );
    Ok(())
}
