//! The dashboard in a real headless Chromium (Debian's chromium and chromedriver, through
//! fantoccini): it loads with htmx and nothing on the browser's console, a task enqueued through the API shows in
//! the queue's depth without a reload, a run's page shows its attempts, and the screenshot
//! `docs/dashboard.png` is the page as this test saw it.
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;
use sqlx::PgPool;
use test_support::{TestRedis, eventually, register_site};

use crate::helpers::*;

/// chromedriver on a free loopback port, killed when dropped.
struct Driver(Child, u16);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn browser(profile: &std::path::Path) -> (Driver, Client) {
    let port = test_support::procs::free_port();
    let child = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver runs (deploy/dev.sh test installs Debian's chromium-driver)");
    let driver = Driver(child, port);
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".into(),
        json!({"args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                        "--disable-dev-shm-usage", "--window-size=1280,900",
                        format!("--user-data-dir={}", profile.display())]}),
    );
    // The browser's console, read back with `BrowserLog`.
    capabilities.insert("goog:loggingPrefs".into(), json!({"browser": "ALL"}));
    let url = format!("http://127.0.0.1:{}", driver.1);
    let client = eventually(Duration::from_secs(20), "chromedriver", || async {
        ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities.clone())
            .connect(&url)
            .await
            .ok()
    })
    .await;
    (driver, client)
}

/// chromedriver's console log of the page (`POST /session/{id}/se/log`), which fantoccini has
/// no call for: every message since the last read.
#[derive(Debug)]
struct BrowserLog;

impl fantoccini::wd::WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(
        &self,
        base: &url::Url,
        session: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base.join(&format!("session/{}/se/log", session.unwrap_or_default()))
    }

    fn method_and_body(&self, _: &url::Url) -> (axum::http::Method, Option<String>) {
        (
            axum::http::Method::POST,
            Some(r#"{"type": "browser"}"#.to_owned()),
        )
    }
}

/// The console's errors (level SEVERE) since the last read.
async fn console_errors(client: &Client) -> Vec<String> {
    let log = client.issue_cmd(BrowserLog).await.expect("the console log");
    log.as_array()
        .expect("a list of entries")
        .iter()
        .filter(|entry| entry["level"] == "SEVERE")
        .map(|entry| entry["message"].to_string())
        .collect()
}

/// The text of the element `css`, or "" while it is not there.
async fn text_of(client: &Client, css: &str) -> String {
    match client.find(Locator::Css(css)).await {
        Ok(element) => element.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

/// Waits until the element `css` shows `needle` (pages load and panels swap in the meantime).
async fn until_text(client: &Client, css: &str, needle: &str) {
    eventually(Duration::from_secs(10), needle, || async {
        text_of(client, css).await.contains(needle).then_some(())
    })
    .await;
}

#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn the_dashboard_is_live_in_a_real_browser(db: PgPool) {
    let redis = TestRedis::new();
    let services = redis.services(&db);
    register_demo_nowhere(&db).await;
    let api = spawn_api(&services).await;
    let profile = tempfile::tempdir().unwrap();
    let (_driver, client) = browser(profile.path()).await;

    // Script errors of the page, counted from the start.
    client.goto(&format!("{}/", api.base)).await.unwrap();
    client
        .execute(
            "window.trawlErrors = [];
             window.addEventListener('error', e => window.trawlErrors.push(String(e.message)));
             document.body.addEventListener('htmx:responseError',
                 e => window.trawlErrors.push('htmx ' + e.detail.xhr.status));",
            vec![],
        )
        .await
        .unwrap();
    let htmx = client.execute("return typeof htmx", vec![]).await.unwrap();
    eventually(Duration::from_secs(10), "the workers panel", || async {
        (text_of(&client, "#workers").await == "no live worker").then_some(())
    })
    .await;
    assert_eq!(htmx, "object", "htmx is served from the API itself");

    // A task enqueued through the API appears in the scraping queue's depth, no reload.
    let (status, body) = read(api.post("/jobs/scrape").json(&json!({"site_name": "demo"}))).await;
    assert_eq!(status, 202, "{body}");
    let run_id = body["data"]["run_id"].as_str().unwrap().to_owned();
    eventually(
        Duration::from_secs(15),
        "the queue depth to show 1",
        || async {
            (text_of(&client, "tr[data-queue=scraping] td.pending").await == "1").then_some(())
        },
    )
    .await;
    // A scheduler pass samples the depth: the last hour's line appears.
    let (status, body) = read(api.post("/scheduler/run")).await;
    assert_eq!(status, 200, "{body}");
    eventually(Duration::from_secs(15), "the depth's line", || async {
        client
            .find(Locator::Css(
                "tr[data-queue=scraping] td.history svg polyline",
            ))
            .await
            .ok()
    })
    .await;
    // And the run in the runs table (it polls every 5 s).
    eventually(Duration::from_secs(15), "the run in the table", || async {
        text_of(&client, "#runs")
            .await
            .contains(&run_id)
            .then_some(())
    })
    .await;
    // The picture in the README: the page as it stands now.
    let png = client.screenshot().await.unwrap();
    std::fs::write(
        concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/dashboard.png"),
        png,
    )
    .unwrap();
    // Filtering by status leaves it out.
    client
        .find(Locator::Css("select[name=status]"))
        .await
        .unwrap()
        .select_by_value("failed")
        .await
        .unwrap();
    eventually(Duration::from_secs(10), "the filter", || async {
        (!text_of(&client, "#runs").await.contains(&run_id)).then_some(())
    })
    .await;

    let errors = client
        .execute("return window.trawlErrors", vec![])
        .await
        .unwrap();
    assert_eq!(errors, json!([]), "no script or request error on the page");
    // And nothing on the console, from the first load on.
    assert_eq!(console_errors(&client).await, Vec::<String>::new());

    // One run's page: its status and attempts table.
    client
        .goto(&format!("{}/ui/runs/{run_id}", api.base))
        .await
        .unwrap();
    let page = text_of(&client, "main").await;
    assert!(
        page.contains("Attempts") && page.contains("queued"),
        "{page}"
    );
    client.close().await.unwrap();
}

/// The buttons: only after a login with a valid key (a wrong one is refused), through an
/// HttpOnly, SameSite=Strict session cookie, and only with the session's CSRF token.
#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn the_dashboard_buttons_need_a_login_and_its_csrf_token(db: PgPool) {
    let redis = TestRedis::new();
    let services = redis.services(&db);
    services
        .queue
        .enqueue_raw(r#"{"site_name":"gone"}"#)
        .await
        .unwrap();
    let mut consumer = services
        .queue
        .consumer(&redis.url, "w1", Duration::from_millis(100));
    let raw = consumer.next().await.unwrap().unwrap();
    services
        .queue
        .dead_letter("w1", &raw, "unknown site: gone")
        .await
        .unwrap();
    let api = spawn_api(&services).await;
    let profile = tempfile::tempdir().unwrap();
    let (_driver, client) = browser(profile.path()).await;
    let login = |key: &'static str| {
        let client = client.clone();
        let base = api.base.clone();
        async move {
            client.goto(&format!("{base}/ui/login")).await.unwrap();
            let form = client.form(Locator::Css("form")).await.unwrap();
            form.set_by_name("key", key).await.unwrap();
            form.submit().await.unwrap();
        }
    };

    // A wrong key: refused, and no button anywhere.
    login("not-the-key").await;
    until_text(&client, "main", "not a valid key").await;
    client.goto(&format!("{}/", api.base)).await.unwrap();
    until_text(&client, "#dead", "unknown site").await;
    assert!(client.find(Locator::Css("#dead button")).await.is_err());

    // The key: buttons. Retry moves the dead letter back to the queue.
    login(KEY).await;
    until_text(&client, "main", "Logged in").await;
    // A panel re-rendered between finding a button and clicking it: find it again.
    let click = |css: &'static str| {
        let client = client.clone();
        async move {
            eventually(Duration::from_secs(10), css, || async {
                let button = client.find(Locator::Css(css)).await.ok()?;
                button.click().await.ok()
            })
            .await;
        }
    };
    click("#dead tr[data-dead] button").await;
    let none_left = |what: &'static str| {
        let client = client.clone();
        async move {
            eventually(Duration::from_secs(10), what, || async {
                (text_of(&client, "#dead").await == "none").then_some(())
            })
            .await;
        }
    };
    none_left("the dead letter gone").await;
    assert_eq!(services.queue.metrics().await.unwrap().pending, 1);
    // The whole list at once: retry all, then (after a confirmation) delete all.
    for n in 0..2 {
        let raw = format!("lost message {n}");
        let reason = "malformed task JSON";
        services
            .queue
            .dead_letter("w1", raw.as_bytes(), reason)
            .await
            .unwrap();
    }
    until_text(&client, "#dead", "lost message 1").await;
    click("p[data-dead-queue=scraping] button").await;
    none_left("every dead letter retried").await;
    assert_eq!(services.queue.metrics().await.unwrap().pending, 3);
    services
        .queue
        .dead_letter("w1", b"lost again", "malformed task JSON")
        .await
        .unwrap();
    until_text(&client, "#dead", "lost again").await;
    click("p[data-dead-queue=scraping] button:last-of-type").await;
    eventually(Duration::from_secs(10), "the confirmation", || async {
        client.accept_alert().await.ok()
    })
    .await;
    none_left("every dead letter deleted").await;
    let metrics = services.queue.metrics().await.unwrap();
    assert_eq!((metrics.dead, metrics.pending), (0, 3));
    // Pause from its button.
    click("tr[data-queue=scraping] button").await;
    eventually(Duration::from_secs(10), "the queue paused", || async {
        services.queue.metrics().await.unwrap().paused.then_some(())
    })
    .await;

    // The session cookie, and what a request without the right CSRF token gets.
    let cookie = client.get_named_cookie("trawl_session").await.unwrap();
    assert_eq!(cookie.http_only(), Some(true));
    assert_eq!(format!("{:?}", cookie.same_site()), "Some(Strict)");
    let resume = format!("{}/ui/queues/scraping/resume", api.base);
    for (with_cookie, csrf) in [(true, "forged"), (false, "forged")] {
        let mut request = api.client.post(&resume).form(&[("csrf", csrf)]);
        if with_cookie {
            request = request.header("Cookie", format!("trawl_session={}", cookie.value()));
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 403);
    }
    assert!(
        services.queue.metrics().await.unwrap().paused,
        "still paused"
    );
    client.close().await.unwrap();
}

/// The postings page: a search in its form finds what it should, in the browser.
#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn the_postings_page_finds_what_it_should(db: PgPool) {
    use crate::postings::{Row, insert};
    let redis = TestRedis::new();
    let api = spawn_api(&redis.services(&db)).await;
    for (n, (title, location)) in [
        ("Senior Rust Engineer", "Berlin"),
        ("Python Data Engineer", "Paris"),
        ("Pastry Chef", "Lyon"),
    ]
    .into_iter()
    .enumerate()
    {
        let row = Row {
            title,
            company: "Acme",
            location,
            skills: "",
            salary: None,
            posted: None,
            site: "demo",
            description: "",
        };
        insert(&db, n, &row).await;
    }
    let profile = tempfile::tempdir().unwrap();
    let (_driver, client) = browser(profile.path()).await;
    client
        .goto(&format!("{}/ui/postings", api.base))
        .await
        .unwrap();
    // The titles listed; empty while htmx is swapping the results (a row read mid-swap is gone).
    let titles = || async {
        let mut titles = Vec::new();
        let rows = client.find_all(Locator::Css("tr.posting td a")).await;
        for row in rows.unwrap_or_default() {
            match row.text().await {
                Ok(title) => titles.push(title),
                Err(_) => return Vec::new(),
            }
        }
        titles
    };
    eventually(Duration::from_secs(10), "every posting listed", || async {
        (titles().await.len() == 3).then_some(())
    })
    .await;
    let form = client.form(Locator::Css("#search")).await.unwrap();
    form.set_by_name("q", "engineer -python").await.unwrap();
    form.submit().await.unwrap();
    eventually(
        Duration::from_secs(10),
        "the search's one posting",
        || async { (titles().await == ["Senior Rust Engineer"]).then_some(()) },
    )
    .await;
    let form = client.form(Locator::Css("#search")).await.unwrap();
    form.set_by_name("q", "").await.unwrap();
    form.set_by_name("location", "lyon").await.unwrap();
    form.submit().await.unwrap();
    eventually(Duration::from_secs(10), "the location filter", || async {
        (titles().await == ["Pastry Chef"]).then_some(())
    })
    .await;
    assert_eq!(console_errors(&client).await, Vec::<String>::new());
    client.close().await.unwrap();
}

/// The pipeline page: a batch run while the page is open appears without a reload, with a bar
/// per stage, and its own page has the validation report.
#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn the_pipeline_page_shows_a_batch_live_with_a_bar_per_stage(db: PgPool) {
    let redis = TestRedis::new();
    let services = redis.services(&db);
    let board = test_support::TestBoard::start().await;
    register_site(&db, "demo", &board.url, 0).await;
    let definition =
        json!({"sources": [{"site": "demo", "queries": ["engineer"], "max_per_query": 10}]});
    trawl_pipeline::upsert_pipeline(&services, "daily", definition)
        .await
        .unwrap();
    let api = spawn_api(&services).await;
    let profile = tempfile::tempdir().unwrap();
    let (_driver, client) = browser(profile.path()).await;
    client
        .goto(&format!("{}/ui/pipeline", api.base))
        .await
        .unwrap();
    until_text(&client, "#batches", "No batch yet").await;

    let _worker =
        test_support::procs::WorkerProcess::start(&test_support::database_url(&db), &redis);
    let batch = trawl_pipeline::submit_batch(&services, "daily", queue_core::Trigger::Manual)
        .await
        .unwrap();
    until_text(&client, "#batches", &batch.to_string()[..8]).await;
    until_text(&client, "#batches", "success").await;
    let bars = eventually(Duration::from_secs(10), "five green bars", || async {
        let bars = client
            .find_all(Locator::Css("#batches .bar.succeeded"))
            .await
            .ok()?;
        (bars.len() == 5).then_some(bars)
    })
    .await;
    let title = bars[0].attr("title").await.unwrap().unwrap_or_default();
    assert!(title.starts_with("collect: success"), "{title}");
    client
        .find(Locator::Css(&format!(
            "#batches a[href='/ui/pipeline/batches/{batch}']"
        )))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    until_text(&client, "pre", "Pass rate: 100.0%").await;
    assert_eq!(console_errors(&client).await, Vec::<String>::new());

    // The export's postings are queued for embedding by the jobs trigger; the embeddings page
    // follows the backfill live to full coverage.
    client
        .goto(&format!("{}/ui/embeddings", api.base))
        .await
        .unwrap();
    until_text(&client, "#coverage", "hashing-384").await;
    trawl_embeddings::backfill(&services, None).await.unwrap();
    until_text(&client, "#coverage", "100.0%").await;
    assert_eq!(console_errors(&client).await, Vec::<String>::new());
    client.close().await.unwrap();
}
