//! The `career_confirm` kind: the double opt-in's mail, with the link that confirms.
use queue_core::store::{RunReport, RunStatus};
use queue_core::{Plan, Services};
use trawl_tasks::{Handler, HandlerError, RunContext};

use crate::digest::{describe_filters, send_and_record, skipped};
use crate::mailer::Outgoing;
use crate::{CONFIRM_KIND, DigestsError, MailKinds, QUEUE, mails, render};

/// The same payload as a digest's: the subscriber.
pub type ConfirmTask = crate::digest::DigestTask;

/// The `career_confirm` kind.
#[derive(Clone)]
pub struct Confirmations(pub MailKinds);

/// Queues the double opt-in mail of `subscriber`.
pub async fn submit(services: &Services, subscriber: i64) -> Result<String, DigestsError> {
    crate::digest::submit_mail(services, CONFIRM_KIND, subscriber).await
}

impl Handler for Confirmations {
    type Payload = ConfirmTask;
    const KIND: &'static str = CONFIRM_KIND;
    const QUEUE: &'static str = QUEUE;

    async fn plan(&self, task: &mut ConfirmTask) -> Result<Plan, HandlerError> {
        Ok(crate::digest::plan(task.subscriber))
    }

    async fn run(&self, ctx: RunContext, task: ConfirmTask) -> Result<RunReport, HandlerError> {
        let db = &ctx.services.db;
        let (mailer, subscriber) = self.0.recipient(db, task.subscriber).await?;
        if subscriber.status != "pending" {
            return Ok(skipped(format!(
                "{} is {}: nothing to confirm",
                subscriber.email, subscriber.status
            )));
        }
        let mail = mails::prepare_confirmation(db, subscriber.id, &ctx.run_id, mailer.domain())
            .await
            .map_err(HandlerError::retryable)?;
        let link = self.0.link("careers/subscribers/confirm", subscriber.token);
        // Every mail can stop the mail: this one cancels the request.
        let unsubscribe = self.0.link("careers/unsubscribe", subscriber.token);
        let (subject, text, html) = render::confirmation(
            &subscriber.email,
            &describe_filters(&subscriber),
            &link,
            &unsubscribe,
        );
        let outgoing = Outgoing {
            to: &subscriber.email,
            subject,
            text,
            html,
            message_id: mail.message_id.clone(),
            unsubscribe: Some(unsubscribe),
        };
        let response = send_and_record(db, mailer, &mail, &outgoing, "confirm").await?;
        Ok(RunReport {
            status: RunStatus::Succeeded,
            message: format!("confirmation mailed to {}", subscriber.email),
            error_detail: serde_json::json!({}),
            result: serde_json::json!({"subscriber": subscriber.id, "mail_id": mail.id,
                "message_id": mail.message_id, "mailed": 1, "smtp_response": response}),
        })
    }
}
