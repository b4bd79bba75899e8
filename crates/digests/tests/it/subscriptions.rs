//! Double opt-in, filters, unsubscribing, and bad addresses.
use queue_core::store::RunStatus;
use sqlx::PgPool;
use trawl_digests::subscribers;

use crate::helpers::{World, count, posting, subscriber};

/// Nothing is mailed before the link is followed; then the digest holds exactly the postings
/// that match the filters, with `List-Unsubscribe` and an HTML and a text part.
#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn a_confirmed_subscriber_gets_the_matching_postings(db: PgPool) {
    let world = World::new(&db).await;
    let mut new = subscriber("ada@example.com");
    new.keywords = vec!["rust".into()];
    new.max_min_years = Some(5.0);
    new.cron = Some("0 8 * * *".into());
    new.time_zone = Some("Europe/Paris".into());
    let ada = world.confirmed(new).await;
    let confirmation = &world.smtp.delivered()[0];
    assert_eq!(
        confirmation.header("Subject").as_deref(),
        Some("Confirm your trawl job alerts")
    );
    assert!(
        confirmation.header("List-Unsubscribe").is_some(),
        "every mail can stop the mail"
    );
    let schedule: (String, String, bool) =
        sqlx::query_as("SELECT cron, time_zone, enabled FROM schedules WHERE name = $1")
            .bind(format!("digest-{}", ada.id))
            .fetch_one(&db)
            .await
            .unwrap();
    assert_eq!(schedule, ("0 8 * * *".into(), "Europe/Paris".into(), true));

    posting(&db, "Rust Engineer", "Lyon", Some(3.0)).await;
    posting(&db, "Principal Rust Engineer", "Paris", Some(10.0)).await;
    posting(&db, "Java Developer", "Lyon", Some(2.0)).await;
    posting(&db, "Rust Intern", "Remote", None).await;
    let run = world.digest(ada.id).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{:?}", run.message);
    let digest = world.smtp.wait_for(2).await.pop().unwrap();
    assert_eq!(
        digest.header("Subject").as_deref(),
        Some("2 new jobs for you")
    );
    assert_eq!(
        digest.header("X-RcptTo").as_deref(),
        Some("ada@example.com")
    );
    let unsubscribe = digest.header("List-Unsubscribe").unwrap();
    assert!(
        unsubscribe.starts_with("<http://127.0.0.1:8000/careers/unsubscribe?token="),
        "{unsubscribe}"
    );
    assert_eq!(
        digest.header("List-Unsubscribe-Post").as_deref(),
        Some("List-Unsubscribe=One-Click")
    );
    assert!(
        digest
            .header("Content-Type")
            .unwrap()
            .starts_with("multipart/alternative")
    );
    let body = digest.body();
    assert!(
        body.contains("Rust Engineer") && body.contains("Rust Intern"),
        "{body}"
    );
    assert!(
        !body.contains("Principal") && !body.contains("Java"),
        "{body}"
    );
    assert!(body.contains("text/html") && body.contains("text/plain"));
}

#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn unsubscribing_stops_the_digests(db: PgPool) {
    let world = World::new(&db).await;
    let bob = world.confirmed(subscriber("bob@example.com")).await;
    posting(&db, "Data Analyst", "Paris", None).await;
    subscribers::unsubscribe(&db, bob.token).await.unwrap();
    let enabled = count(
        &db,
        "SELECT count(*) FROM schedules WHERE enabled AND kind = 'career_digest'",
    )
    .await;
    assert_eq!(enabled, 0, "its schedule is off");
    let run = world.digest(bob.id).await;
    assert!(run.message.unwrap().contains("unsubscribed"));
    assert_eq!(
        world.smtp.delivered().len(),
        1,
        "only the confirmation was ever mailed"
    );
    assert!(
        subscribers::confirm(&db, bob.token).await.is_err(),
        "an old link cannot re-subscribe"
    );
}

#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn bad_addresses_and_filters_are_refused(db: PgPool) {
    let world = World::new(&db).await;
    for bad in ["not-an-address", "a@", "@b.example", "a b@c.example", ""] {
        let err = subscribers::subscribe(&world.services, subscriber(bad))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("email"), "{bad:?}: {err}");
    }
    let mut odd = subscriber("c@example.com");
    odd.max_min_years = Some(99.0);
    assert!(subscribers::subscribe(&world.services, odd).await.is_err());
    let mut bad_cron = subscriber("c@example.com");
    bad_cron.cron = Some("at eight".into());
    assert!(
        subscribers::subscribe(&world.services, bad_cron)
            .await
            .is_err()
    );
    assert_eq!(count(&db, "SELECT count(*) FROM subscribers").await, 0);
}
