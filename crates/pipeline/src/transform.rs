//! The validate and enrich stages: the scrape path's own rules and enrichment
//! (`trawl_scrape::validate`, `RawPosting::enrich`) over a batch's records.
use std::collections::HashSet;

use chrono::NaiveDate;
use serde::Serialize;
use trawl_scrape::intake::Collected;
use trawl_scrape::validate::{Refusal, Rule, Rules, ValidationReport, validate};
use trawl_scrape::{Posting, Provenance};

use crate::records::parallel_map;

/// Checks every collected record (JSON text); malformed ones (not a posting at all) are
/// counted with their reason, never a crash. Returns the valid records as JSON text.
pub fn validate_records(
    records: &[String],
    rules: &Rules,
    today: NaiveDate,
) -> (Vec<String>, ValidationReport) {
    type Checked = Result<Result<(String, Vec<Rule>), Refusal>, String>;
    let checked = parallel_map(records, |text| -> Checked {
        let mut collected: Collected = serde_json::from_str(text)
            .map_err(|err| format!("Malformed record ({})", short(&err.to_string())))?;
        let mut repairs = Vec::new();
        match validate(collected.posting, rules, today, &mut repairs) {
            Ok(posting) => {
                collected.posting = posting;
                let text = serde_json::to_string(&collected).expect("records serialize");
                Ok(Ok((text, repairs)))
            }
            Err(refusal) => Ok(Err(refusal)),
        }
    });
    let mut report = ValidationReport::default();
    let mut valid = Vec::with_capacity(records.len());
    for outcome in checked {
        match outcome {
            Ok(Ok((text, repairs))) => {
                report.passed(&repairs);
                valid.push(text);
            }
            Ok(Err(refusal)) => report.refused(&refusal),
            Err(malformed) => report.malformed(&malformed),
        }
    }
    (valid, report)
}

/// The reason without its position, so equal reasons count together.
fn short(reason: &str) -> &str {
    reason.split(" at line ").next().unwrap_or(reason)
}

/// What the enrich stage adds up.
#[derive(Debug, Default, Serialize)]
pub struct EnrichReport {
    pub enriched: u32,
    pub with_skills: u32,
    pub with_salary: u32,
    /// The same posting (same job_id) collected more than once: kept once.
    pub duplicates: u32,
    pub malformed: u32,
    pub mean_quality_score: f64,
}

/// Enriches every validated record (JSON text) into a posting, each posting once.
pub fn enrich_records(records: &[String]) -> (Vec<Posting>, EnrichReport) {
    let enriched = parallel_map(records, |text| {
        let Collected {
            site,
            source,
            search_query,
            posting,
            details_missing,
        } = serde_json::from_str(text).ok()?;
        let from = Provenance {
            site: &site,
            source: &source,
            search_query: search_query.as_deref(),
        };
        let mut posting = posting.enrich(&from);
        posting.details_missing = details_missing;
        Some(posting)
    });
    let mut report = EnrichReport::default();
    let mut seen = HashSet::new();
    let mut postings = Vec::with_capacity(records.len());
    for posting in enriched {
        let Some(posting) = posting else {
            report.malformed += 1;
            continue;
        };
        if !seen.insert(posting.job_id) {
            report.duplicates += 1;
            continue;
        }
        report.with_skills += u32::from(posting.has_skills);
        report.with_salary += u32::from(posting.has_salary);
        report.mean_quality_score += f64::from(posting.data_quality_score);
        postings.push(posting);
    }
    report.enriched = postings.len() as u32;
    if report.enriched > 0 {
        report.mean_quality_score /= f64::from(report.enriched);
    }
    (postings, report)
}

/// The text a posting is vectorized on.
pub fn posting_text(title: &str, description: Option<&str>) -> String {
    match description {
        Some(description) => format!("{title}\n{description}"),
        None => title.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record(title: &str, url: &str) -> serde_json::Value {
        json!({"site": "demo", "source": "demo_board", "search_query": null,
               "posting": {"external_id": url, "title": title, "url": url, "location": "PARIS 15E",
                           "description_html": "<p>Python &amp; Postgres</p>", "salary_text": "€50/hour"}})
    }

    #[test]
    fn validate_counts_malformed_and_refused_then_enrich_dedupes() {
        let records = [
            record("Senior Data Engineer", "https://x.io/1"),
            record("Senior Data Engineer", "https://x.io/1"),
            record("Engineer", "https://x.io/2"),
            json!({"site": 7}),
        ];
        let today = NaiveDate::from_ymd_opt(2026, 1, 8).unwrap();
        let records: Vec<String> = records.iter().map(|r| r.to_string()).collect();
        let (valid, report) = validate_records(&records, &Rules::SEED_002, today);
        assert_eq!((report.total, report.valid, report.failed), (4, 2, 2));
        assert_eq!(report.refused["Invalid title length"], 1);
        assert_eq!(report.malformed.values().sum::<u32>(), 1);
        let (postings, enriched) = enrich_records(&valid);
        assert_eq!((enriched.enriched, enriched.duplicates), (1, 1));
        let p = &postings[0];
        assert_eq!(p.location, "Paris");
        assert_eq!(p.skills_required.as_deref(), Some("Python, PostgreSQL"));
        assert_eq!(
            (
                p.salary_min,
                p.salary_period.as_deref(),
                p.salary_currency.as_deref()
            ),
            (Some(91000.0), Some("YEAR"), Some("EUR"))
        );
    }
}
