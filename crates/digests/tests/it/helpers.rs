use std::time::Duration;

use queue_core::Services;
use queue_core::store::{Run, RunStatus};
use sqlx::PgPool;
use test_support::TestRedis;
use test_support::smtp::SmtpServer;
use tokio_util::sync::{CancellationToken, DropGuard};
use trawl_digests::{MailKinds, Mailer, NewSubscriber, Subscriber, subscribers};
use trawl_worker::{Worker, WorkerSettings};
use uuid::Uuid;

pub struct World {
    pub services: Services,
    pub smtp: SmtpServer,
    pub mail: MailKinds,
    _redis: TestRedis,
    _worker: DropGuard,
}

impl World {
    pub async fn new(db: &PgPool) -> World {
        let redis = TestRedis::new();
        let services = redis.services(db);
        let smtp = SmtpServer::start().await;
        let mail = MailKinds {
            mailer: Some(
                Mailer::new(
                    &smtp.url(),
                    "trawl <alerts@trawl.test>",
                    Duration::from_secs(5),
                    None,
                )
                .expect("mailer"),
            ),
            public_url: url::Url::parse("http://127.0.0.1:8000/").unwrap(),
        };
        let mut settings = WorkerSettings::new(format!("digests-{}", Uuid::new_v4().simple()));
        settings.block_for = Duration::from_millis(100);
        settings.run_retry_base = Duration::from_millis(100);
        settings.mail = mail.clone();
        let background = Default::default();
        let registry = trawl_worker::kinds::registry(&services, &settings, None, &background)
            .expect("kinds build");
        let worker = Worker::with_registry(services.clone(), settings, registry, background)
            .expect("worker builds");
        let stop = CancellationToken::new();
        tokio::spawn(worker.run(stop.clone()));
        World {
            services,
            smtp,
            mail,
            _redis: redis,
            _worker: stop.drop_guard(),
        }
    }

    /// Subscribes `email`, waits for the confirmation mail and follows its link.
    pub async fn confirmed(&self, new: NewSubscriber) -> Subscriber {
        // The mail that is new, to this address, with a link: not merely the last one
        // delivered, which may be another subscriber's digest arriving at the same moment.
        let before: Vec<String> = self.smtp.delivered().into_iter().map(|m| m.raw).collect();
        let email = new.email.clone();
        let (subscriber, run_id) = subscribers::subscribe(&self.services, new).await.unwrap();
        let run = self.ended(&run_id).await;
        assert_eq!(run.status, RunStatus::Succeeded);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        let body = loop {
            let delivered = self.smtp.delivered();
            let found = delivered.iter().find(|mail| {
                !before.contains(&mail.raw)
                    && mail
                        .header("X-RcptTo")
                        .is_some_and(|to| to.contains(&email))
                    && mail.body().contains("confirm?token=")
            });
            if let Some(mail) = found {
                break mail.body();
            }
            // Seen once in CI (the run had succeeded): say what was delivered instead.
            assert!(
                tokio::time::Instant::now() < deadline,
                "no confirmation mail to {email} after 30 s; the run said {:?} {}; delivered: {:#?}",
                run.message,
                run.result,
                delivered
                    .iter()
                    .map(|mail| &mail.raw[..mail.raw.len().min(1500)])
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let token = body
            .split("confirm?token=")
            .nth(1)
            .map(|rest| &rest[..36])
            .expect("a confirmation link");
        subscribers::confirm(&self.services.db, token.parse().unwrap())
            .await
            .unwrap();
        assert_eq!(
            subscribers::get(&self.services.db, subscriber.id)
                .await
                .unwrap()
                .unwrap()
                .status,
            "confirmed"
        );
        subscribers::get(&self.services.db, subscriber.id)
            .await
            .unwrap()
            .unwrap()
    }

    pub async fn digest(&self, subscriber: i64) -> Run {
        let run_id = trawl_digests::digest::submit(&self.services, subscriber)
            .await
            .unwrap();
        self.ended(&run_id).await
    }

    pub async fn ended(&self, run_id: &str) -> Run {
        test_support::run_ended(&self.services.db, run_id).await
    }
}

pub fn subscriber(email: &str) -> NewSubscriber {
    NewSubscriber {
        email: email.to_owned(),
        ..Default::default()
    }
}

/// Inserts an active posting first seen now, with the years it asks for.
pub async fn posting(db: &PgPool, title: &str, location: &str, min_years: Option<f32>) -> Uuid {
    let id = Uuid::new_v4();
    sqlx::query(
        "INSERT INTO jobs (job_id, site, external_id, job_title, company_name, location, url, \
                           source, content_hash, job_description) \
         VALUES ($1, 'fixture', $2, $3, 'Acme', $4, $5, 'fixture', 'h', 'A job.')",
    )
    .bind(id)
    .bind(id.to_string())
    .bind(title)
    .bind(location)
    .bind(format!("https://acme.example/jobs/{id}"))
    .execute(db)
    .await
    .unwrap();
    if let Some(years) = min_years {
        sqlx::query(
            "INSERT INTO posting_experience (job_id, min_years, phrase, method) \
             VALUES ($1, $2, 'x', 'rules')",
        )
        .bind(id)
        .bind(years)
        .execute(db)
        .await
        .unwrap();
    }
    id
}

pub async fn count(db: &PgPool, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(db).await.unwrap()
}
