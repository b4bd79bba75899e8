//! At most once per (subscriber, posting): across digests, across a crash between sending and
//! recording (same Message-ID re-sent, nothing else twice), and through SMTP refusals.
use queue_core::store::RunStatus;
use sqlx::PgPool;
use trawl_digests::mailer::Outgoing;
use trawl_digests::{mails, render};

use crate::helpers::{World, count, posting, subscriber};

#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn a_posting_is_mailed_once_across_digests(db: PgPool) {
    let world = World::new(&db).await;
    let eve = world.confirmed(subscriber("eve@example.com")).await;
    posting(&db, "First Job", "Paris", None).await;
    world.digest(eve.id).await;
    posting(&db, "Second Job", "Paris", None).await;
    world.digest(eve.id).await;
    let quiet = world.digest(eve.id).await;
    assert!(quiet.message.unwrap().contains("nothing new"));
    let mails = world.smtp.wait_for(3).await;
    assert_eq!(
        mails.len(),
        3,
        "confirmation + two digests, nothing for the third run"
    );
    assert!(mails[1].body().contains("First Job") && !mails[1].body().contains("Second Job"));
    assert!(mails[2].body().contains("Second Job") && !mails[2].body().contains("First Job"));
    assert_ne!(mails[1].header("Message-ID"), mails[2].header("Message-ID"));
}

/// The worker "crashes" after the SMTP server took the digest and before it was recorded
/// (the test sends the prepared mail itself and records nothing): the next run sends the same
/// mail with the same Message-ID, and the posting that arrived since waits for the next digest.
#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn a_crash_between_send_and_record_resends_the_same_message(db: PgPool) {
    let world = World::new(&db).await;
    let kim = world.confirmed(subscriber("kim@example.com")).await;
    posting(&db, "Before The Crash", "Paris", None).await;
    let mailer = world.mail.mailer.clone().unwrap();
    let mail = mails::prepare_digest(&db, &kim, "crashed-run", mailer.domain())
        .await
        .unwrap()
        .unwrap();
    let postings = mails::postings_of(&db, mail.id).await.unwrap();
    let (subject, text, html) = render::digest(&postings, "", "http://127.0.0.1:8000/u");
    mails::note_send(&db, mail.id).await.unwrap();
    mailer
        .send(&Outgoing {
            to: "kim@example.com",
            subject,
            text,
            html,
            message_id: mail.message_id.clone(),
            unsubscribe: None,
        })
        .await
        .unwrap();
    posting(&db, "After The Crash", "Paris", None).await;

    let run = world.digest(kim.id).await;
    assert_eq!(run.status, RunStatus::Succeeded);
    assert_eq!(run.result["resent"], true, "{}", run.result);
    let mails = world.smtp.wait_for(3).await;
    assert_eq!(mails[1].header("Message-ID"), mails[2].header("Message-ID"));
    assert_eq!(mails[2].header("Message-ID").unwrap(), mail.message_id);
    assert!(
        !mails[2].body().contains("After The Crash"),
        "nothing new joined the re-send"
    );

    world.digest(kim.id).await;
    let mails = world.smtp.wait_for(4).await;
    assert!(
        mails[3].body().contains("After The Crash")
            && !mails[3].body().contains("Before The Crash")
    );
    let sent = count(
        &db,
        "SELECT count(*) FROM mails WHERE kind = 'digest' AND state = 'sent'",
    )
    .await;
    assert_eq!(sent, 2);
}

/// A 5xx refuses for good: recorded with the server's answer, the run failed with it, the
/// postings never mailed again. A 4xx is retried until the server takes the mail.
#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn refusals_are_recorded_and_busy_servers_retried(db: PgPool) {
    let world = World::new(&db).await;
    let (refused, run_id) =
        trawl_digests::subscribers::subscribe(&world.services, subscriber("refuse-me@example.com"))
            .await
            .unwrap();
    let run = world.ended(&run_id).await;
    assert_eq!(run.status, RunStatus::Failed);
    assert!(
        run.message.unwrap_or_default().contains("550"),
        "the answer is the reason"
    );
    let answer: String = sqlx::query_scalar(
        "SELECT smtp_response FROM mails WHERE subscriber_id = $1 AND state = 'failed'",
    )
    .bind(refused.id)
    .fetch_one(&db)
    .await
    .unwrap();
    assert!(answer.contains("No such mailbox"), "{answer}");
    assert!(world.smtp.delivered().is_empty());

    let zoe = world.confirmed(subscriber("zoe@example.com")).await;
    posting(&db, "Patient Job", "Paris", None).await;
    world.smtp.set_busy(true);
    let run_id = trawl_digests::digest::submit(&world.services, zoe.id)
        .await
        .unwrap();
    test_support::eventually(
        std::time::Duration::from_secs(30),
        "a retried send",
        || async {
            let sends = count(
                &db,
                "SELECT COALESCE(max(sends), 0)::bigint FROM mails WHERE kind = 'digest'",
            )
            .await;
            (sends >= 2).then_some(())
        },
    )
    .await;
    world.smtp.set_busy(false);
    let run = world.ended(&run_id).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{:?}", run.message);
    let mails = world.smtp.wait_for(2).await;
    assert!(mails[1].body().contains("Patient Job"));
}

/// A server that offers STARTTLS gets the mail over TLS (its certificate trusted through
/// SMTP_CA_FILE's PEM); one whose certificate is not trusted gets nothing in clear text: the send
/// fails (and would be retried) rather than downgrading.
#[tokio::test]
async fn tls_is_used_when_the_server_offers_it() {
    use std::time::Duration;
    use test_support::smtp::SmtpServer;
    use trawl_digests::{Mailer, SendError};
    let server = SmtpServer::start_tls().await;
    let ca = server.certificate();
    let mail = |to| Outgoing {
        to,
        subject: "TLS?".into(),
        text: "plain".into(),
        html: "<p>html</p>".into(),
        message_id: "<tls-test@trawl.test>".into(),
        unsubscribe: None,
    };
    let trusted = Mailer::new(
        &server.url(),
        "trawl <a@trawl.test>",
        Duration::from_secs(5),
        Some(&ca),
    )
    .unwrap();
    trusted.send(&mail("tls@example.com")).await.unwrap();
    let delivered = server.wait_for(1).await;
    assert_eq!(delivered[0].header("X-TLS").as_deref(), Some("yes"));

    let untrusting = Mailer::new(
        &server.url(),
        "trawl <a@trawl.test>",
        Duration::from_secs(5),
        None,
    )
    .unwrap();
    let refused = untrusting
        .send(&mail("clear@example.com"))
        .await
        .unwrap_err();
    assert!(matches!(refused, SendError::Transient(_)), "{refused}");
    assert_eq!(server.delivered().len(), 1, "nothing sent in clear text");

    let bad_ca = Mailer::new(
        &server.url(),
        "trawl <a@trawl.test>",
        Duration::from_secs(5),
        Some(b"not a pem"),
    );
    assert!(bad_ca.unwrap_err().contains("SMTP_CA_FILE"));
}
