//! Seed 002's validate stage, the one implementation the scrape path and the batch pipeline
//! share: rules that refuse a posting (required title and URL, title length, http(s) URL) and
//! rules that repair one (a bad date becomes today, salary min > max is swapped, an empty
//! location becomes Unknown), each counted in a [`ValidationReport`].
use std::collections::BTreeMap;
use std::ops::RangeInclusive;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::posting::{RawPosting, clean_text};

/// What the rules allow; the pipeline's definition can set its own title range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rules {
    pub title_chars: RangeInclusive<usize>,
}

impl Rules {
    /// Seed 002's rules: a title of 10 to 500 characters.
    pub const SEED_002: Rules = Rules {
        title_chars: 10..=500,
    };
    /// The scrape path's: seed 002 refuses real titles such as "Barista" or "Nurse", so live
    /// scrapes accept 3 characters and up; 3 still catches empty and junk titles.
    pub const SCRAPE: Rules = Rules {
        title_chars: 3..=500,
    };
}

/// One rule, as the report names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    MissingTitle,
    TitleLength,
    MissingUrl,
    InvalidUrl,
    InvalidDate,
    SalaryOrder,
    MissingLocation,
}

impl Rule {
    /// The words of seed 002's report ("Missing job_title: 3").
    pub fn label(self) -> &'static str {
        match self {
            Rule::MissingTitle => "Missing job_title",
            Rule::TitleLength => "Invalid title length",
            Rule::MissingUrl => "Missing url",
            Rule::InvalidUrl => "Invalid URL",
            Rule::InvalidDate => "Invalid date (set to today)",
            Rule::SalaryOrder => "Salary min > max (swapped)",
            Rule::MissingLocation => "Missing location (set to Unknown)",
        }
    }
}

/// Why a posting was refused: the rule and what exactly was wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Refusal {
    pub rule: Rule,
    pub message: String,
}

/// Applies the rules to one posting: the repaired posting (title, URL and location cleaned)
/// or the first rule it breaks; `repairs` gets each repair made.
pub fn validate(
    mut raw: RawPosting,
    rules: &Rules,
    today: NaiveDate,
    repairs: &mut Vec<Rule>,
) -> Result<RawPosting, Refusal> {
    let refuse = |rule, message: String| Err(Refusal { rule, message });
    let title = clean_text(raw.title.as_deref().unwrap_or_default());
    if title.is_empty() {
        return refuse(Rule::MissingTitle, "title is missing".into());
    }
    let title_len = title.chars().count();
    if !rules.title_chars.contains(&title_len) {
        return refuse(
            Rule::TitleLength,
            format!(
                "title must be {}..={} characters, got {title_len}",
                rules.title_chars.start(),
                rules.title_chars.end()
            ),
        );
    }
    let url = raw
        .url
        .as_deref()
        .map(str::trim)
        .unwrap_or_default()
        .to_owned();
    if url.is_empty() {
        return refuse(Rule::MissingUrl, "url is missing".into());
    }
    match url::Url::parse(&url) {
        Ok(parsed) if matches!(parsed.scheme(), "http" | "https") => {}
        _ => {
            return refuse(
                Rule::InvalidUrl,
                format!("url is not an http(s) URL: {url:?}"),
            );
        }
    }
    raw.title = Some(title);
    raw.url = Some(url);
    if let Some(date) = raw.posted_date.as_deref().map(str::trim)
        && !date.is_empty()
        && parse_date(date).is_none()
    {
        raw.posted_date = Some(today.to_string());
        repairs.push(Rule::InvalidDate);
    }
    if let (Some(min), Some(max)) = (raw.salary_min, raw.salary_max)
        && min > max
    {
        (raw.salary_min, raw.salary_max) = (Some(max), Some(min));
        repairs.push(Rule::SalaryOrder);
    }
    let location = raw.location.as_deref().map(clean_text).unwrap_or_default();
    if location.is_empty() {
        repairs.push(Rule::MissingLocation);
        raw.location = Some("Unknown".into());
    } else {
        raw.location = Some(location);
    }
    Ok(raw)
}

/// An ISO date, or the date part of an ISO timestamp.
pub fn parse_date(text: &str) -> Option<NaiveDate> {
    let text = text.trim();
    NaiveDate::parse_from_str(text.get(..10)?, "%Y-%m-%d").ok()
}

/// Counts per rule over a set of postings (seed 002's validation report).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ValidationReport {
    pub total: u32,
    pub valid: u32,
    pub failed: u32,
    /// Refusals per rule label.
    pub refused: BTreeMap<String, u32>,
    /// Repairs per rule label (the posting was kept).
    pub repaired: BTreeMap<String, u32>,
    /// Records that were not postings at all (malformed JSON from a source), per reason.
    pub malformed: BTreeMap<String, u32>,
}

impl ValidationReport {
    pub fn passed(&mut self, repairs: &[Rule]) {
        self.total += 1;
        self.valid += 1;
        for rule in repairs {
            *self.repaired.entry(rule.label().to_owned()).or_default() += 1;
        }
    }

    pub fn refused(&mut self, refusal: &Refusal) {
        self.total += 1;
        self.failed += 1;
        *self
            .refused
            .entry(refusal.rule.label().to_owned())
            .or_default() += 1;
    }

    pub fn malformed(&mut self, reason: &str) {
        self.total += 1;
        self.failed += 1;
        *self.malformed.entry(reason.to_owned()).or_default() += 1;
    }

    /// Valid records over all records, in percent (100 for none).
    pub fn pass_rate(&self) -> f64 {
        if self.total == 0 {
            100.0
        } else {
            f64::from(self.valid) * 100.0 / f64::from(self.total)
        }
    }
}

impl std::fmt::Display for ValidationReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "Total records: {}", self.total)?;
        writeln!(f, "Valid records: {}", self.valid)?;
        writeln!(f, "Failed validation: {}", self.failed)?;
        for (label, count) in self.refused.iter().chain(&self.malformed) {
            writeln!(f, "  - {label}: {count}")?;
        }
        for (label, count) in &self.repaired {
            writeln!(f, "Repaired: {label}: {count}")?;
        }
        write!(f, "Pass rate: {:.1}%", self.pass_rate())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw() -> RawPosting {
        RawPosting {
            title: Some(" Senior Data Engineer ".into()),
            url: Some("https://example.com/1".into()),
            location: Some("Paris".into()),
            posted_date: Some("2026-01-08".into()),
            ..Default::default()
        }
    }

    fn check(raw: RawPosting) -> (Result<RawPosting, Refusal>, Vec<Rule>) {
        let mut repairs = Vec::new();
        let today = NaiveDate::from_ymd_opt(2026, 1, 9).unwrap();
        (
            validate(raw, &Rules::SEED_002, today, &mut repairs),
            repairs,
        )
    }

    #[test]
    fn seed_002_rules_refuse_and_repair() {
        let refused = |raw| check(raw).0.unwrap_err().rule;
        assert_eq!(
            refused(RawPosting {
                title: None,
                ..raw()
            }),
            Rule::MissingTitle
        );
        assert_eq!(
            refused(RawPosting {
                title: Some("Engineer".into()),
                ..raw()
            }),
            Rule::TitleLength
        );
        assert_eq!(
            refused(RawPosting {
                title: Some("x".repeat(501)),
                ..raw()
            }),
            Rule::TitleLength
        );
        assert_eq!(refused(RawPosting { url: None, ..raw() }), Rule::MissingUrl);
        assert_eq!(
            refused(RawPosting {
                url: Some("ftp://x/1".into()),
                ..raw()
            }),
            Rule::InvalidUrl
        );

        let (kept, repairs) = check(RawPosting {
            posted_date: Some("yesterday".into()),
            salary_min: Some(80000.0),
            salary_max: Some(60000.0),
            location: Some("  ".into()),
            ..raw()
        });
        let kept = kept.unwrap();
        assert_eq!(kept.posted_date.as_deref(), Some("2026-01-09"));
        assert_eq!(
            (kept.salary_min, kept.salary_max),
            (Some(60000.0), Some(80000.0))
        );
        assert_eq!(kept.location.as_deref(), Some("Unknown"));
        assert_eq!(kept.title.as_deref(), Some("Senior Data Engineer"));
        assert_eq!(
            repairs,
            [Rule::InvalidDate, Rule::SalaryOrder, Rule::MissingLocation]
        );
        let (_, none) = check(RawPosting {
            posted_date: None,
            ..raw()
        });
        assert!(none.is_empty(), "no date is not a bad date");
    }

    #[test]
    fn the_report_counts_per_rule() {
        let mut report = ValidationReport::default();
        for raw in [
            raw(),
            RawPosting {
                title: None,
                ..raw()
            },
            RawPosting {
                url: Some("nope".into()),
                ..raw()
            },
        ] {
            match check(raw) {
                (Ok(_), repairs) => report.passed(&repairs),
                (Err(refusal), _) => report.refused(&refusal),
            }
        }
        report.malformed("not a JSON object");
        let text = report.to_string();
        assert!(text.contains("Total records: 4"), "{text}");
        assert!(text.contains("  - Missing job_title: 1"), "{text}");
        assert!(text.contains("  - Invalid URL: 1"), "{text}");
        assert!(text.contains("  - not a JSON object: 1"), "{text}");
        assert!(text.ends_with("Pass rate: 25.0%"), "{text}");
    }
}
