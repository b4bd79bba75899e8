//! Companies: CSV imports are all or nothing, with every bad line named; bad URLs refused.
use sqlx::PgPool;
use trawl_careers::companies;

use crate::helpers::{count, new_company};

#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn a_csv_is_imported_whole_or_not_at_all(db: PgPool) {
    let bad = "company,url\n\
               Acme,https://acme.example/careers\n\
               Globex,ftp://globex.example/jobs\n\
               \"Initech, Inc.\",https://initech.example/jobs\n\
               Hooli,http://10.0.0.7/careers\n\
               Acme,https://acme.example/other\n\
               Broken row\n";
    let err = companies::import_csv(&db, bad, false)
        .await
        .unwrap_err()
        .to_string();
    for line in ["line 3", "line 5", "line 6", "line 7"] {
        assert!(err.contains(line), "{line} named in: {err}");
    }
    assert!(!err.contains("line 2") && !err.contains("line 4"), "{err}");
    assert_eq!(
        count(&db, "SELECT count(*) FROM companies").await,
        0,
        "nothing half-imported"
    );

    let good = "company,url\nAcme,https://acme.example/careers\n\"Initech, Inc.\",https://initech.example/jobs?utm_source=x\n";
    let imported = companies::import_csv(&db, good, false).await.unwrap();
    assert_eq!(imported, ["acme", "initech-inc"]);
    let listed = companies::list(&db).await.unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(
        listed[0].interval_minutes,
        Some(companies::DEFAULT_INTERVAL_MINUTES)
    );
    assert!(
        listed
            .iter()
            .all(|c| c.enabled && c.next_check_at.is_some())
    );
    let schedules = count(
        &db,
        "SELECT count(*) FROM schedules WHERE kind = 'career_snapshot' AND queue = 'careers'",
    )
    .await;
    assert_eq!(schedules, 2, "each company checks on its own schedule");

    let no_header = companies::import_csv(&db, "name,link\nA,https://a.example\n", false)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        no_header.contains("line 1") && no_header.contains("company and url"),
        "{no_header}"
    );
}

#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn companies_are_checked_scheduled_and_disabled(db: PgPool) {
    let refused = companies::add(
        &db,
        new_company("Local", "http://127.0.0.1:9/careers"),
        false,
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(refused.contains("private address"), "{refused}");
    let mut daily = new_company("Daily Co", "https://daily.example/careers");
    daily.cron = Some("0 8 * * 1-5".into());
    daily.time_zone = Some("Europe/Paris".into());
    let added = companies::add(&db, daily, false).await.unwrap();
    assert_eq!(
        (added.slug.as_str(), added.cron.as_deref()),
        ("daily-co", Some("0 8 * * 1-5"))
    );
    assert_eq!(added.interval_minutes, None);
    let mut bad_cron = new_company("Bad", "https://bad.example/careers");
    bad_cron.cron = Some("every morning".into());
    assert!(companies::add(&db, bad_cron, false).await.is_err());
    let mut needs_browser = new_company("Js", "https://js.example/careers");
    needs_browser.load_more = Some("button.more".into());
    let err = companies::add(&db, needs_browser, false)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("browser"), "{err}");

    assert!(
        companies::set_enabled(&db, "daily-co", false)
            .await
            .unwrap()
    );
    assert!(!companies::set_enabled(&db, "nobody", false).await.unwrap());
    let disabled = count(&db, "SELECT count(*) FROM schedules WHERE NOT enabled").await;
    assert_eq!(disabled, 1, "its schedule stops too");
}
