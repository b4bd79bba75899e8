//! E-mail digests (seed 004): subscribers with filters and double opt-in, the `career_confirm`
//! and `career_digest` kinds on the `careers` queue, and the mail ledger that mails a posting
//! to a subscriber at most once — a crash between sending and recording re-sends the same mail
//! with the same Message-ID, never the rest twice.
mod config;
pub mod confirm;
pub mod digest;
mod error;
pub mod mailer;
pub mod mails;
pub mod render;
pub mod subscribers;

pub use config::MailConfig;
pub use confirm::Confirmations;
pub use digest::{DigestTask, Digests};
pub use error::DigestsError;
pub use mailer::{Mailer, SendError};
pub use subscribers::{NewSubscriber, Subscriber};

/// The double opt-in's mail.
pub const CONFIRM_KIND: &str = "career_confirm";
/// One subscriber's digest.
pub const DIGEST_KIND: &str = "career_digest";
/// The career kinds' queue.
pub const QUEUE: &str = "careers";

/// What the mail kinds share in a worker.
#[derive(Clone, Debug)]
pub struct MailKinds {
    /// None without SMTP_URL: the kinds fail with that reason.
    pub mailer: Option<Mailer>,
    /// Links in mails point here (PUBLIC_URL).
    pub public_url: url::Url,
}

impl MailKinds {
    /// `{PUBLIC_URL}/{path}?token=…`
    pub fn link(&self, path: &str, token: uuid::Uuid) -> String {
        let mut url = self
            .public_url
            .join(path)
            .unwrap_or_else(|_| self.public_url.clone());
        url.query_pairs_mut()
            .append_pair("token", &token.to_string());
        url.to_string()
    }
}
