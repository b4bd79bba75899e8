//! Sources with JSON APIs: the Greenhouse job board API, Lever postings API, Ashby posting API
//! and the Adzuna search API (seed 002's collect stage). Each has a configurable base URL, so
//! tests and the dev stack point them at fixture servers that answer in the real formats.
use serde::{Deserialize, Serialize};
use serde_json::Value;
use url::Url;

use crate::SiteSpecError;
use crate::posting::RawPosting;
use crate::site::http_url;

pub const GREENHOUSE_API: &str = "https://boards-api.greenhouse.io";
pub const LEVER_API: &str = "https://api.lever.co";
pub const ASHBY_API: &str = "https://api.ashbyhq.com";
pub const ADZUNA_API: &str = "https://api.adzuna.com";
/// Adzuna's page size as seed 002 used it.
pub const ADZUNA_PAGE_SIZE: u32 = 50;
/// Most results one Adzuna query is allowed to collect (seed 002).
pub const ADZUNA_MAX_RESULTS: u32 = 1000;
/// Lever page size.
pub const LEVER_PAGE_SIZE: u32 = 100;
const ADZUNA_COUNTRIES: &[&str] = &[
    "gb", "us", "at", "au", "be", "br", "ca", "ch", "de", "es", "fr", "in", "it", "mx", "nl", "nz",
    "pl", "sg", "za",
];

/// A company's board on an ATS (Greenhouse board token, Lever site, Ashby job board name).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AtsSpec {
    pub board: String,
    /// The API's address; the public one when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// The employer's name (ATS APIs do not repeat it on each posting); defaults to `board`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company: Option<String>,
    /// Keeps postings whose title or description has every word (boards have no search).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub search_term: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub results_wanted: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore_robots_txt: Option<String>,
}

impl AtsSpec {
    pub fn api(&self, default: &str) -> Result<Url, SiteSpecError> {
        let text = self.base_url.as_deref().unwrap_or(default);
        let mut url = http_url("base_url", text)?;
        if !url.path().ends_with('/') {
            url.set_path(&format!("{}/", url.path()));
        }
        Ok(url)
    }

    pub fn validate(&self, default: &str) -> Result<(), SiteSpecError> {
        if self.board.trim().is_empty() || self.board.contains(['/', '?', '#']) {
            return Err(SiteSpecError::Field {
                field: "board",
                reason: format!("not a board name: {:?}", self.board),
            });
        }
        self.api(default).map(drop)
    }

    fn company(&self) -> String {
        self.company.clone().unwrap_or_else(|| self.board.clone())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdzunaSpec {
    /// Two-letter country of the Adzuna site (`gb`, `fr`, `us`, ...).
    pub country: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub search_term: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub results_wanted: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore_robots_txt: Option<String>,
}

impl AdzunaSpec {
    pub fn validate(&self) -> Result<(), SiteSpecError> {
        if !ADZUNA_COUNTRIES.contains(&self.country.as_str()) {
            return Err(SiteSpecError::Field {
                field: "country",
                reason: format!(
                    "{:?} is not an Adzuna country ({})",
                    self.country,
                    ADZUNA_COUNTRIES.join(", ")
                ),
            });
        }
        http_url("base_url", self.base_url.as_deref().unwrap_or(ADZUNA_API)).map(drop)
    }
}

/// Adzuna's credentials (ADZUNA_APP_ID / ADZUNA_APP_KEY), passed in by the process.
#[derive(Clone, PartialEq, Eq)]
pub struct AdzunaCredentials {
    pub app_id: String,
    pub app_key: String,
}

impl std::fmt::Debug for AdzunaCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdzunaCredentials")
            .field("app_id", &self.app_id)
            .field("app_key", &"<redacted>")
            .finish()
    }
}

pub fn adzuna_url(
    spec: &AdzunaSpec,
    credentials: &AdzunaCredentials,
    term: Option<&str>,
    place: Option<&str>,
    page: u32,
) -> Url {
    let base = spec
        .base_url
        .as_deref()
        .unwrap_or(ADZUNA_API)
        .trim_end_matches('/');
    let mut url = Url::parse(&format!(
        "{base}/v1/api/jobs/{}/search/{page}",
        spec.country
    ))
    .expect("validated base");
    {
        let mut query = url.query_pairs_mut();
        query.append_pair("app_id", &credentials.app_id);
        query.append_pair("app_key", &credentials.app_key);
        query.append_pair("results_per_page", &ADZUNA_PAGE_SIZE.to_string());
        if let Some(term) = term.filter(|t| !t.is_empty()) {
            query.append_pair("what", term);
        }
        if let Some(place) = place.filter(|p| !p.is_empty()) {
            query.append_pair("where", place);
        }
    }
    url
}

fn text(value: &Value, pointer: &str) -> Option<String> {
    match value.pointer(pointer)? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn number(value: &Value, pointer: &str) -> Option<f64> {
    match value.pointer(pointer)? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

fn array<'a>(value: &'a Value, pointer: &str) -> &'a [Value] {
    value
        .pointer(pointer)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

pub fn greenhouse_postings(spec: &AtsSpec, body: &Value) -> Vec<RawPosting> {
    array(body, "/jobs")
        .iter()
        .map(|job| {
            let pay = array(job, "/pay_input_ranges").first();
            let location = text(job, "/location/name");
            RawPosting {
                external_id: text(job, "/id"),
                title: text(job, "/title"),
                company: Some(spec.company()),
                is_remote: location
                    .as_deref()
                    .map(|l| l.to_lowercase().contains("remote")),
                location,
                posted_date: text(job, "/first_published").or_else(|| text(job, "/updated_at")),
                // Greenhouse entity-escapes its HTML: unescape once to get the HTML itself.
                description_html: text(job, "/content").map(|escaped| {
                    crate::strip_html(
                        &escaped
                            .replace("&lt;", "<")
                            .replace("&gt;", ">")
                            .replace("&quot;", "\"")
                            .replace("&#39;", "'")
                            .replace("&amp;", "&"),
                    )
                }),
                salary_min: pay.and_then(|p| number(p, "/min_cents")).map(|c| c / 100.0),
                salary_max: pay.and_then(|p| number(p, "/max_cents")).map(|c| c / 100.0),
                salary_currency: pay.and_then(|p| text(p, "/currency_type")),
                salary_period: pay.map(|_| "YEAR".to_owned()),
                url: text(job, "/absolute_url"),
                department: array(job, "/departments")
                    .first()
                    .and_then(|d| text(d, "/name")),
                ..RawPosting::default()
            }
        })
        .collect()
}

pub fn lever_postings(spec: &AtsSpec, body: &Value) -> Vec<RawPosting> {
    body.as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[])
        .iter()
        .map(|job| RawPosting {
            external_id: text(job, "/id"),
            title: text(job, "/text"),
            company: Some(spec.company()),
            location: text(job, "/categories/location"),
            is_remote: text(job, "/workplaceType").map(|w| w == "remote"),
            posted_date: number(job, "/createdAt")
                .and_then(|ms| chrono::DateTime::from_timestamp_millis(ms as i64))
                .map(|at| at.date_naive().to_string()),
            description_html: text(job, "/description").or_else(|| text(job, "/descriptionPlain")),
            salary_min: number(job, "/salaryRange/min"),
            salary_max: number(job, "/salaryRange/max"),
            salary_currency: text(job, "/salaryRange/currency"),
            salary_period: text(job, "/salaryRange/interval").map(|i| lever_interval(&i)),
            url: text(job, "/hostedUrl"),
            department: text(job, "/categories/department")
                .or_else(|| text(job, "/categories/team")),
            ..RawPosting::default()
        })
        .collect()
}

fn lever_interval(interval: &str) -> String {
    match interval {
        "per-hour-wage" => "HOUR",
        "per-day-wage" => "DAY",
        "per-week-wage" => "WEEK",
        "per-month-salary" => "MONTH",
        _ => "YEAR",
    }
    .to_owned()
}

pub fn ashby_postings(spec: &AtsSpec, body: &Value) -> Vec<RawPosting> {
    array(body, "/jobs")
        .iter()
        // Unlisted postings are not meant to be public.
        .filter(|job| job.pointer("/isListed").and_then(Value::as_bool) != Some(false))
        .map(|job| {
            let salary = array(job, "/compensation/summaryComponents")
                .iter()
                .find(|c| text(c, "/compensationType").as_deref() == Some("Salary"));
            RawPosting {
                external_id: text(job, "/id"),
                title: text(job, "/title"),
                company: Some(spec.company()),
                location: text(job, "/location"),
                is_remote: job.pointer("/isRemote").and_then(Value::as_bool),
                posted_date: text(job, "/publishedAt"),
                description_html: text(job, "/descriptionHtml")
                    .or_else(|| text(job, "/descriptionPlain")),
                salary_min: salary.and_then(|s| number(s, "/minValue")),
                salary_max: salary.and_then(|s| number(s, "/maxValue")),
                salary_currency: salary.and_then(|s| text(s, "/currencyCode")),
                salary_period: salary
                    .and_then(|s| text(s, "/interval"))
                    .map(|i| i.trim_start_matches("1 ").to_uppercase()),
                url: text(job, "/jobUrl"),
                department: text(job, "/department").or_else(|| text(job, "/team")),
                ..RawPosting::default()
            }
        })
        .collect()
}

/// Postings of one Adzuna page and the total count the query matches.
pub fn adzuna_postings(body: &Value) -> (Vec<RawPosting>, u64) {
    let postings = array(body, "/results")
        .iter()
        .map(|job| RawPosting {
            external_id: text(job, "/id"),
            title: text(job, "/title"),
            company: text(job, "/company/display_name"),
            location: text(job, "/location/display_name"),
            posted_date: text(job, "/created"),
            description_html: text(job, "/description"),
            salary_min: number(job, "/salary_min"),
            salary_max: number(job, "/salary_max"),
            salary_period: number(job, "/salary_min").map(|_| "YEAR".to_owned()),
            url: text(job, "/redirect_url"),
            department: text(job, "/category/label"),
            ..RawPosting::default()
        })
        .collect();
    (
        postings,
        body.pointer("/count").and_then(Value::as_u64).unwrap_or(0),
    )
}

/// Keeps postings matching the search (ATS boards have no search of their own).
pub fn matches_search(posting: &RawPosting, term: Option<&str>, place: Option<&str>) -> bool {
    let haystack = format!(
        "{} {}",
        posting.title.as_deref().unwrap_or(""),
        posting.description_html.as_deref().unwrap_or("")
    )
    .to_lowercase();
    let words_match = term
        .unwrap_or("")
        .split_whitespace()
        .all(|w| haystack.contains(&w.to_lowercase()));
    let place_match = place.filter(|p| !p.is_empty()).is_none_or(|p| {
        posting
            .location
            .as_deref()
            .unwrap_or("")
            .to_lowercase()
            .contains(&p.to_lowercase())
    });
    words_match && place_match
}
