//! Mail settings, from flags or environment.
use std::time::Duration;

use crate::Mailer;

#[derive(Debug, Clone, clap::Args)]
pub struct MailConfig {
    /// Where mail goes: smtp://host:port (STARTTLS when the server offers it),
    /// smtp://…?tls=required, or smtps://…; user:password@ for AUTH. Unset: the digest and
    /// confirmation kinds fail with that reason.
    #[arg(long, env = "SMTP_URL", hide_env_values = true)]
    pub smtp_url: Option<String>,
    /// A PEM certificate authority to trust for the SMTP server's TLS besides the public ones
    /// (a private relay's).
    #[arg(long, env = "SMTP_CA_FILE")]
    pub smtp_ca_file: Option<std::path::PathBuf>,
    /// The sender of every mail.
    #[arg(
        long,
        env = "MAIL_FROM",
        default_value = "trawl <alerts@trawl.localhost>"
    )]
    pub mail_from: String,
    /// The API's public address: confirmation and unsubscribe links point there.
    #[arg(long, env = "PUBLIC_URL", default_value = "http://127.0.0.1:8000")]
    pub public_url: url::Url,
    /// Seconds one SMTP conversation may take.
    #[arg(long, env = "SMTP_TIMEOUT", default_value_t = 30)]
    pub smtp_timeout: u64,
}

impl MailConfig {
    pub fn mailer(&self) -> Result<Option<Mailer>, String> {
        // Checked even without SMTP_URL: a wrong setting is refused at start, not when mail
        // is first configured.
        self.mail_from
            .parse::<lettre::message::Mailbox>()
            .map_err(|e| format!("MAIL_FROM: {:?} is not an address: {e}", self.mail_from))?;
        let ca = match &self.smtp_ca_file {
            Some(path) => Some(
                std::fs::read(path)
                    .map_err(|e| format!("SMTP_CA_FILE: cannot read {}: {e}", path.display()))?,
            ),
            None => None,
        };
        self.smtp_url
            .as_deref()
            .map(|url| {
                let timeout = Duration::from_secs(self.smtp_timeout.max(1));
                Mailer::new(url, &self.mail_from, timeout, ca.as_deref())
            })
            .transpose()
    }
}
