//! Sending one mail over SMTP: STARTTLS when the server offers it (or as `SMTP_URL` demands),
//! our own Message-ID, `List-Unsubscribe` with one-click (RFC 8058). The server's answer decides
//! what happens next: a 4xx is worth another try, a 5xx is final and recorded.
use std::time::Duration;

use lettre::message::header::{Header, HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use url::Url;

/// How a send failed.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// A 4xx, or no answer at all (connection, timeout, TLS): try again later.
    #[error("SMTP send failed (will retry): {0}")]
    Transient(String),
    /// A 5xx: the server refused this mail for good.
    #[error("SMTP server refused the mail: {0}")]
    Permanent(String),
}

/// A mail ready to go.
pub struct Outgoing<'a> {
    pub to: &'a str,
    pub subject: String,
    pub text: String,
    pub html: String,
    /// `<...@domain>`, fixed before the first send and reused by every re-send.
    pub message_id: String,
    /// The one-click unsubscribe URL (digests; a confirmation request has none).
    pub unsubscribe: Option<String>,
}

#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer").field("from", &self.from).finish()
    }
}

#[derive(Clone)]
struct ListUnsubscribe(String);

impl Header for ListUnsubscribe {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("List-Unsubscribe")
    }
    fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Self(s.to_owned()))
    }
    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), format!("<{}>", self.0))
    }
}

#[derive(Clone)]
struct ListUnsubscribePost;

impl Header for ListUnsubscribePost {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("List-Unsubscribe-Post")
    }
    fn parse(_: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Self)
    }
    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), "List-Unsubscribe=One-Click".to_owned())
    }
}

impl Mailer {
    /// `smtp://[user:pass@]host[:port]` (STARTTLS when offered), `smtp://…?tls=required`
    /// (STARTTLS or nothing) or `smtps://…` (TLS from the first byte). `ca_pem`: a certificate
    /// authority to trust besides the public ones (a private relay). Errors name `SMTP_URL`,
    /// `SMTP_CA_FILE` or `MAIL_FROM`.
    pub fn new(
        smtp_url: &str,
        from: &str,
        timeout: Duration,
        ca_pem: Option<&[u8]>,
    ) -> Result<Self, String> {
        let url = Url::parse(smtp_url).map_err(|e| format!("SMTP_URL: {e}"))?;
        let host = url.host_str().ok_or("SMTP_URL: no host")?.to_owned();
        let required = url
            .query_pairs()
            .any(|(k, v)| k == "tls" && v == "required");
        let mut tls = TlsParameters::builder(host.clone());
        if let Some(pem) = ca_pem {
            // An empty or non-PEM file would parse as no certificate at all, silently.
            if !String::from_utf8_lossy(pem).contains("-----BEGIN CERTIFICATE-----") {
                return Err("SMTP_CA_FILE: holds no PEM certificate".into());
            }
            let ca = Certificate::from_pem(pem).map_err(|e| format!("SMTP_CA_FILE: {e}"))?;
            tls = tls.add_root_certificate(ca);
        }
        let tls = tls
            .build()
            .map_err(|e| format!("SMTP_URL: TLS settings for {host}: {e}"))?;
        let (tls, default_port) = match (url.scheme(), required) {
            ("smtps", _) => (Tls::Wrapper(tls), 465),
            ("smtp", true) => (Tls::Required(tls), 587),
            ("smtp", false) => (Tls::Opportunistic(tls), 25),
            (other, _) => return Err(format!("SMTP_URL: scheme {other:?}: smtp or smtps")),
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&host)
            .port(url.port().unwrap_or(default_port))
            .tls(tls)
            .timeout(Some(timeout));
        if !url.username().is_empty() {
            builder = builder.credentials(Credentials::new(
                url.username().to_owned(),
                url.password().unwrap_or_default().to_owned(),
            ));
        }
        let from = from
            .parse::<Mailbox>()
            .map_err(|e| format!("MAIL_FROM: {from:?} is not an address: {e}"))?;
        Ok(Self {
            transport: builder.build(),
            from,
        })
    }

    /// The domain of our Message-IDs: the sender's.
    pub fn domain(&self) -> &str {
        self.from.email.domain()
    }

    /// Sends one mail; the server's answer on success (`250 …`).
    pub async fn send(&self, mail: &Outgoing<'_>) -> Result<String, SendError> {
        let to = mail
            .to
            .parse::<Mailbox>()
            .map_err(|e| SendError::Permanent(format!("{:?} is not an address: {e}", mail.to)))?;
        let mut builder = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(&mail.subject)
            .message_id(Some(mail.message_id.clone()));
        if let Some(url) = &mail.unsubscribe {
            builder = builder
                .header(ListUnsubscribe(url.clone()))
                .header(ListUnsubscribePost);
        }
        let message = builder
            .multipart(MultiPart::alternative_plain_html(
                mail.text.clone(),
                mail.html.clone(),
            ))
            .map_err(|e| SendError::Permanent(format!("the mail cannot be built: {e}")))?;
        match self.transport.send(message).await {
            Ok(response) => Ok(format!(
                "{} {}",
                response.code(),
                response.message().collect::<Vec<_>>().join(" ")
            )),
            Err(err) if err.is_permanent() => Err(SendError::Permanent(err.to_string())),
            Err(err) => Err(SendError::Transient(err.to_string())),
        }
    }
}
