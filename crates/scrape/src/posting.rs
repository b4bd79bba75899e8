//! From what a page says to a row of `jobs`: seed 002's validate and enrich stages (required
//! fields, URL and salary checks, HTML stripped, skills extracted, a quality score) and a stable
//! identity, so the same posting seen again updates one row.
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::skills;
use crate::validate::{Rules, parse_date};

/// Namespace of trawl's posting ids (UUID v5), fixed forever: changing it would duplicate every row.
pub const POSTING_NAMESPACE: Uuid = Uuid::from_u128(0x6f0c_5b2e_8a4d_4c1e_9b57_31d2_a8e4_f019);

/// What a source read off a page, before any checking.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RawPosting {
    pub external_id: Option<String>,
    pub title: Option<String>,
    pub company: Option<String>,
    pub location: Option<String>,
    pub posted_date: Option<String>,
    pub description_html: Option<String>,
    pub salary_min: Option<f64>,
    pub salary_max: Option<f64>,
    pub salary_currency: Option<String>,
    pub salary_period: Option<String>,
    /// Salary as free text (e.g. from a listing); read when no structured amount is known.
    pub salary_text: Option<String>,
    pub url: Option<String>,
    pub is_remote: Option<bool>,
    pub department: Option<String>,
}

/// A checked, cleaned posting: one row of `jobs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Posting {
    pub job_id: Uuid,
    pub site: String,
    pub external_id: String,
    pub job_title: String,
    pub company_name: Option<String>,
    pub location: String,
    pub posted_date: Option<NaiveDate>,
    pub job_description: Option<String>,
    pub skills_required: Option<String>,
    pub salary_min: Option<f64>,
    pub salary_max: Option<f64>,
    pub salary_currency: Option<String>,
    pub salary_period: Option<String>,
    pub has_salary: bool,
    pub has_skills: bool,
    pub url: String,
    pub source: String,
    pub search_query: Option<String>,
    pub data_quality_score: f32,
    pub content_hash: String,
    /// None when the source does not say.
    pub is_remote: Option<bool>,
    pub department: Option<String>,
    /// Its detail page failed: this is the listing's partial view, which must never replace
    /// richer data already stored (the store keeps the stored row and counts it unchanged).
    pub details_missing: bool,
}

/// Why a posting was refused by the validate stage.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid posting: {0}")]
pub struct InvalidPosting(pub String);

/// Where a posting came from, stamped on every row.
#[derive(Debug, Clone)]
pub struct Provenance<'a> {
    pub site: &'a str,
    pub source: &'a str,
    pub search_query: Option<&'a str>,
}

impl RawPosting {
    /// Validates (the scrape path's rules, a bad date read as today) and enriches.
    pub fn normalize(self, from: &Provenance<'_>) -> Result<Posting, InvalidPosting> {
        let today = chrono::Utc::now().date_naive();
        let checked = crate::validate::validate(self, &Rules::SCRAPE, today, &mut Vec::new())
            .map_err(|refusal| InvalidPosting(refusal.message))?;
        Ok(checked.enrich(from))
    }

    /// Seed 002's enrich stage on a posting that passed [`crate::validate::validate`]: HTML
    /// stripped, white space folded, salary read from text and made yearly, location
    /// standardized, skills extracted, a quality score, and the posting's identity.
    pub fn enrich(mut self, from: &Provenance<'_>) -> Posting {
        if self.salary_min.is_none()
            && self.salary_max.is_none()
            && let Some(parsed) = self.salary_text.as_deref().and_then(crate::salary::parse)
        {
            self.salary_min = Some(parsed.min);
            self.salary_max = Some(parsed.max);
            self.salary_currency = parsed.currency.map(str::to_owned);
            self.salary_period = parsed.period.map(str::to_owned);
        }
        if let Some(period) = self.salary_period.as_deref()
            && let Some((min, max)) = yearly_range(self.salary_min, self.salary_max, period)
        {
            (self.salary_min, self.salary_max) = (min, max);
            self.salary_period = Some("YEAR".into());
        }
        let title = clean_text(self.title.as_deref().unwrap_or_default());
        let url = self
            .url
            .as_deref()
            .map(str::trim)
            .unwrap_or_default()
            .to_owned();
        let external_id = self
            .external_id
            .map(|id| id.trim().to_owned())
            .filter(|id| !id.is_empty())
            .unwrap_or_else(|| url.clone());
        let description = self
            .description_html
            .as_deref()
            .map(strip_html)
            .filter(|d| !d.is_empty());
        let company = self
            .company
            .as_deref()
            .map(clean_text)
            .filter(|c| !c.is_empty());
        let location = crate::location::standardize(self.location.as_deref().unwrap_or_default());
        let (salary_min, salary_max) = checked_salary(self.salary_min, self.salary_max);
        let has_salary = salary_min.is_some() || salary_max.is_some();
        let found = skills::extract(&format!(
            "{title}\n{}",
            description.as_deref().unwrap_or("")
        ));
        let skills_required = (!found.is_empty()).then(|| found.join(", "));
        let posted_date = self.posted_date.as_deref().and_then(parse_date);

        let filled = [
            company.is_some(),
            location != "Unknown",
            posted_date.is_some(),
            description.is_some(),
            has_salary,
            skills_required.is_some(),
        ];
        // Title and URL are always present once validated: they count as two filled fields.
        let score = (2 + filled.iter().filter(|f| **f).count()) as f32 / (2 + filled.len()) as f32;

        // A location of "Remote" says so even where the source has no flag.
        let is_remote = self
            .is_remote
            .or_else(|| location.eq_ignore_ascii_case("remote").then_some(true));
        let mut posting = Posting {
            job_id: Uuid::new_v5(
                &POSTING_NAMESPACE,
                format!("{}\n{external_id}", from.site).as_bytes(),
            ),
            site: from.site.to_owned(),
            external_id,
            job_title: title,
            company_name: company,
            location,
            posted_date,
            job_description: description,
            has_skills: skills_required.is_some(),
            skills_required,
            salary_currency: self.salary_currency.filter(|_| has_salary),
            salary_period: self.salary_period.filter(|_| has_salary),
            salary_min,
            salary_max,
            has_salary,
            url,
            source: from.source.to_owned(),
            search_query: from.search_query.map(str::to_owned),
            data_quality_score: score,
            content_hash: String::new(),
            details_missing: false,
            is_remote,
            department: self
                .department
                .as_deref()
                .map(clean_text)
                .filter(|d| !d.is_empty()),
        };
        posting.content_hash = content_hash(&posting);
        posting
    }
}

/// A salary range paid per `period` made yearly; None when the period is not one it knows.
fn yearly_range(
    min: Option<f64>,
    max: Option<f64>,
    period: &str,
) -> Option<(Option<f64>, Option<f64>)> {
    let year = |amount: Option<f64>| match amount {
        None => Some(None),
        Some(amount) => crate::salary::yearly(amount, period).map(Some),
    };
    Some((year(min)?, year(max)?))
}

/// A fingerprint of what the posting says (not when or by which search it was seen), so a
/// re-scrape of an unchanged posting writes nothing. UUID v5 is SHA-1 underneath: stable across
/// releases and platforms, which is all this needs.
fn content_hash(posting: &Posting) -> String {
    let content = serde_json::json!([
        posting.job_title,
        posting.company_name,
        posting.location,
        posting.posted_date,
        posting.job_description,
        posting.salary_min,
        posting.salary_max,
        posting.salary_currency,
        posting.salary_period,
        posting.url,
        posting.is_remote,
        posting.department,
    ]);
    Uuid::new_v5(&POSTING_NAMESPACE, content.to_string().as_bytes())
        .simple()
        .to_string()
}

fn checked_salary(min: Option<f64>, max: Option<f64>) -> (Option<f64>, Option<f64>) {
    let positive = |v: Option<f64>| v.filter(|v| v.is_finite() && *v > 0.0);
    match (positive(min), positive(max)) {
        (Some(a), Some(b)) if a > b => (Some(b), Some(a)),
        other => other,
    }
}

/// Collapses runs of white space into one space.
pub fn clean_text(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The text of an HTML fragment, with entities decoded and white space collapsed. Block
/// elements are separated so words from adjacent paragraphs do not run together.
pub fn strip_html(html: &str) -> String {
    let fragment = scraper::Html::parse_fragment(html);
    let text: Vec<&str> = fragment.root_element().text().collect();
    clean_text(&text.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw() -> RawPosting {
        RawPosting {
            external_id: Some("17".into()),
            title: Some("  Senior   Rust Engineer ".into()),
            company: Some("Acme".into()),
            location: Some(" Berlin ".into()),
            posted_date: Some("2026-11-01T09:00:00Z".into()),
            description_html: Some(
                "<p>We use <b>Rust</b> &amp; PostgreSQL.</p><p>Docker too</p>".into(),
            ),
            salary_min: Some(80000.0),
            salary_max: Some(60000.0),
            salary_currency: Some("EUR".into()),
            salary_period: Some("YEAR".into()),
            salary_text: None,
            url: Some("http://127.0.0.1/jobs/17".into()),
            is_remote: None,
            department: None,
        }
    }

    const FROM: Provenance<'static> = Provenance {
        site: "demo",
        source: "demo_board",
        search_query: Some("rust"),
    };

    #[test]
    fn normalizes_and_enriches() {
        let posting = raw().normalize(&FROM).unwrap();
        assert_eq!(posting.job_title, "Senior Rust Engineer");
        assert_eq!(posting.location, "Berlin");
        assert_eq!(
            posting.job_description.as_deref(),
            Some("We use Rust & PostgreSQL. Docker too")
        );
        assert_eq!(
            (posting.salary_min, posting.salary_max),
            (Some(60000.0), Some(80000.0))
        );
        assert_eq!(posting.posted_date, NaiveDate::from_ymd_opt(2026, 11, 1));
        assert_eq!(
            posting.skills_required.as_deref(),
            Some("Rust, PostgreSQL, Docker")
        );
        assert!(posting.has_salary && posting.has_skills);
        assert_eq!(posting.data_quality_score, 1.0);
    }

    #[test]
    fn identity_is_stable_and_hash_follows_content() {
        let a = raw().normalize(&FROM).unwrap();
        let b = raw()
            .normalize(&Provenance {
                search_query: Some("other"),
                ..FROM
            })
            .unwrap();
        assert_eq!(a.job_id, b.job_id);
        assert_eq!(
            a.content_hash, b.content_hash,
            "the search used is not content"
        );
        let changed = RawPosting {
            title: Some("Staff Rust Engineer".into()),
            ..raw()
        }
        .normalize(&FROM)
        .unwrap();
        assert_eq!(a.job_id, changed.job_id);
        assert_ne!(a.content_hash, changed.content_hash);
        let other_site = raw()
            .normalize(&Provenance {
                site: "other",
                ..FROM
            })
            .unwrap();
        assert_ne!(a.job_id, other_site.job_id);
    }

    #[test]
    fn validation_refuses_missing_title_and_bad_url() {
        let err = RawPosting {
            title: Some("x".into()),
            ..raw()
        }
        .normalize(&FROM)
        .unwrap_err();
        assert!(err.0.contains("title"), "{err}");
        let err = RawPosting {
            url: Some("javascript:alert(1)".into()),
            ..raw()
        }
        .normalize(&FROM)
        .unwrap_err();
        assert!(err.0.contains("url"), "{err}");
    }

    #[test]
    fn empty_location_becomes_unknown_and_lowers_the_score() {
        let posting = RawPosting {
            location: None,
            salary_min: None,
            salary_max: None,
            ..raw()
        }
        .normalize(&FROM)
        .unwrap();
        assert_eq!(posting.location, "Unknown");
        assert!(!posting.has_salary);
        assert_eq!(posting.salary_currency, None);
        assert_eq!(posting.data_quality_score, 6.0 / 8.0);
    }
}
