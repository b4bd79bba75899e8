//! The mails' bodies, HTML and plain text, from templates (auto-escaped for `.html`).
use std::sync::LazyLock;

use minijinja::Environment;
use serde::Serialize;

static TEMPLATES: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    for (name, source) in [
        ("digest.html", include_str!("../templates/digest.html")),
        ("digest.txt", include_str!("../templates/digest.txt")),
        ("confirm.html", include_str!("../templates/confirm.html")),
        ("confirm.txt", include_str!("../templates/confirm.txt")),
    ] {
        env.add_template(name, source).expect("the templates parse");
    }
    env
});

/// One posting as a digest shows it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DigestPosting {
    pub job_id: uuid::Uuid,
    pub title: String,
    pub company: Option<String>,
    pub location: String,
    pub remote: bool,
    pub url: String,
    /// "3+ years", "3-5 years".
    pub experience: Option<String>,
    /// "50,000-60,000 EUR".
    pub salary: Option<String>,
}

/// (subject, text, html) of a digest.
pub fn digest(
    postings: &[DigestPosting],
    filters: &str,
    unsubscribe: &str,
) -> (String, String, String) {
    let subject = match postings.len() {
        1 => format!("1 new job: {}", postings[0].title),
        n => format!("{n} new jobs for you"),
    };
    let context = minijinja::context! {
        subject => &subject, postings => postings, filters => filters, unsubscribe => unsubscribe,
    };
    (
        subject.clone(),
        render("digest.txt", &context),
        render("digest.html", &context),
    )
}

/// (subject, text, html) of a confirmation request.
pub fn confirmation(
    email: &str,
    filters: &str,
    confirm: &str,
    unsubscribe: &str,
) -> (String, String, String) {
    let subject = "Confirm your trawl job alerts".to_owned();
    let context = minijinja::context! {
        subject => &subject, email => email, filters => filters, confirm => confirm,
        unsubscribe => unsubscribe,
    };
    (
        subject.clone(),
        render("confirm.txt", &context),
        render("confirm.html", &context),
    )
}

fn render(name: &str, context: &minijinja::Value) -> String {
    TEMPLATES
        .get_template(name)
        .and_then(|t| t.render(context))
        .expect("the templates render with their own context")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_is_escaped_and_text_is_not() {
        let posting = DigestPosting {
            job_id: uuid::Uuid::nil(),
            title: "R&D <Engineer>".into(),
            company: Some("Acme".into()),
            location: "Lyon".into(),
            remote: false,
            url: "https://acme.example/jobs/1".into(),
            experience: Some("3+ years".into()),
            salary: None,
        };
        let (subject, text, html) = digest(&[posting], "rust", "https://x.example/u?token=1");
        assert_eq!(subject, "1 new job: R&D <Engineer>");
        assert!(html.contains("R&amp;D &lt;Engineer&gt;"), "{html}");
        assert!(text.contains("- R&D <Engineer> at Acme (Lyon)"), "{text}");
        assert!(
            text.contains("Experience: 3+ years")
                && text.contains("Unsubscribe: https://x.example/u?token=1")
        );
    }
}
