//! The `career_digest` kind: one subscriber's digest — the mail left `prepared` by a crash sent
//! again as it was, else the new matching postings claimed into a new mail — rendered, sent
//! over SMTP and recorded.
use queue_core::store::{RunReport, RunStatus};
use queue_core::{Plan, Services, Trigger};
use serde::{Deserialize, Serialize};
use telemetry::metric;
use trawl_tasks::{Handler, HandlerError, RunContext};

use crate::mailer::{Outgoing, SendError};
use crate::subscribers::Subscriber;
use crate::{DIGEST_KIND, DigestsError, MailKinds, QUEUE, mails, render};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DigestTask {
    pub subscriber: i64,
}

/// The `career_digest` kind.
#[derive(Clone)]
pub struct Digests(pub MailKinds);

/// One mail run per subscriber at a time, whichever kind (lock `digest:<id>`).
pub(crate) fn plan(subscriber: i64) -> Plan {
    Plan {
        queue: QUEUE.to_owned(),
        lock_key: Some(format!("digest:{subscriber}")),
        max_retries: 5,
    }
}

/// Queues a mail run of `kind` for `subscriber` now.
pub(crate) async fn submit_mail(
    services: &Services,
    kind: &str,
    subscriber: i64,
) -> Result<String, DigestsError> {
    let run_id = queue_core::new_run_id(Trigger::Manual);
    let task = queue_core::Task::new(
        kind,
        queue_core::payload_of(&DigestTask { subscriber }),
        run_id.clone(),
        Trigger::Manual,
    );
    queue_core::submit_run(services, &task, &plan(subscriber)).await?;
    Ok(run_id)
}

/// Queues a digest of `subscriber` now (`trawl careers digest`, the API).
pub async fn submit(services: &Services, subscriber: i64) -> Result<String, DigestsError> {
    submit_mail(services, DIGEST_KIND, subscriber).await
}

impl MailKinds {
    /// What every mail run starts with: this worker's mailer and the subscriber.
    pub(crate) async fn recipient(
        &self,
        db: &sqlx::PgPool,
        subscriber: i64,
    ) -> Result<(&crate::Mailer, Subscriber), HandlerError> {
        let mailer = self
            .mailer
            .as_ref()
            .ok_or_else(|| HandlerError::fatal(DigestsError::NoMailer))?;
        let subscriber = crate::subscribers::get(db, subscriber)
            .await
            .map_err(HandlerError::retryable)?
            .ok_or_else(|| HandlerError::fatal(DigestsError::UnknownSubscriber(subscriber)))?;
        Ok((mailer, subscriber))
    }
}

/// What a subscriber asked for, in words (shown in every mail).
pub fn describe_filters(s: &Subscriber) -> String {
    let mut parts = Vec::new();
    let list = |words: &[String]| words.join(", ");
    if !s.keywords.is_empty() {
        parts.push(format!("keywords: {}", list(&s.keywords)));
    }
    if !s.companies.is_empty() {
        parts.push(format!("companies: {}", list(&s.companies)));
    }
    if !s.locations.is_empty() {
        parts.push(format!("locations: {}", list(&s.locations)));
    }
    if s.remote_only {
        parts.push("remote only".into());
    }
    if let Some(years) = s.max_min_years {
        parts.push(format!("at most {years} years asked"));
    }
    if let Some(salary) = s.salary_at_least {
        parts.push(format!("salary at least {salary}"));
    }
    parts.join("; ")
}

/// Sends a prepared mail and records the server's answer. A 4xx or no answer leaves it
/// `prepared` for the retry; a 5xx records it `failed`.
pub(crate) async fn send_and_record(
    db: &sqlx::PgPool,
    mailer: &crate::Mailer,
    mail: &mails::Prepared,
    outgoing: &Outgoing<'_>,
    kind: &'static str,
) -> Result<String, HandlerError> {
    mails::note_send(db, mail.id)
        .await
        .map_err(HandlerError::retryable)?;
    match mailer.send(outgoing).await {
        Ok(response) => {
            mails::record(db, mail.id, true, &response)
                .await
                .map_err(HandlerError::retryable)?;
            metrics::counter!(metric::MAILS, "kind" => kind, "outcome" => "sent").increment(1);
            Ok(response)
        }
        Err(SendError::Permanent(answer)) => {
            mails::record(db, mail.id, false, &answer)
                .await
                .map_err(HandlerError::retryable)?;
            metrics::counter!(metric::MAILS, "kind" => kind, "outcome" => "refused").increment(1);
            Err(HandlerError::fatal(DigestsError::Send(
                SendError::Permanent(answer),
            )))
        }
        Err(transient) => {
            metrics::counter!(metric::MAILS, "kind" => kind, "outcome" => "retrying").increment(1);
            Err(HandlerError::retryable(DigestsError::Send(transient)))
        }
    }
}

/// A run that had nothing to mail, and says why.
pub(crate) fn skipped(message: String) -> RunReport {
    RunReport {
        status: RunStatus::Succeeded,
        message,
        error_detail: serde_json::json!({}),
        result: serde_json::json!({"mailed": 0}),
    }
}

impl Handler for Digests {
    type Payload = DigestTask;
    const KIND: &'static str = DIGEST_KIND;
    const QUEUE: &'static str = QUEUE;

    async fn plan(&self, task: &mut DigestTask) -> Result<Plan, HandlerError> {
        Ok(plan(task.subscriber))
    }

    async fn run(&self, ctx: RunContext, task: DigestTask) -> Result<RunReport, HandlerError> {
        let db = &ctx.services.db;
        let (mailer, subscriber) = self.0.recipient(db, task.subscriber).await?;
        if subscriber.status != "confirmed" {
            return Ok(skipped(format!(
                "{} is {}: no digest",
                subscriber.email, subscriber.status
            )));
        }
        let Some(mail) = mails::prepare_digest(db, &subscriber, &ctx.run_id, mailer.domain())
            .await
            .map_err(HandlerError::retryable)?
        else {
            return Ok(skipped(format!("nothing new for {}", subscriber.email)));
        };
        let postings = mails::postings_of(db, mail.id)
            .await
            .map_err(HandlerError::retryable)?;
        let unsubscribe = self.0.link("careers/unsubscribe", subscriber.token);
        let (subject, text, html) =
            render::digest(&postings, &describe_filters(&subscriber), &unsubscribe);
        let outgoing = Outgoing {
            to: &subscriber.email,
            subject,
            text,
            html,
            message_id: mail.message_id.clone(),
            unsubscribe: Some(unsubscribe),
        };
        let response = send_and_record(db, mailer, &mail, &outgoing, "digest").await?;
        tracing::info!(subscriber = subscriber.id, postings = postings.len(), message_id = %mail.message_id,
            resend = mail.sends > 0, "digest sent");
        Ok(RunReport {
            status: RunStatus::Succeeded,
            message: format!(
                "{} posting(s) mailed to {}",
                postings.len(),
                subscriber.email
            ),
            error_detail: serde_json::json!({}),
            result: serde_json::json!({
                "subscriber": subscriber.id, "mail_id": mail.id, "message_id": mail.message_id,
                "mailed": postings.len(), "resent": mail.sends > 0, "smtp_response": response,
            }),
        })
    }
}
