//! schema.org JobPosting from JSON-LD, as found in the wild: several script blocks, `@graph`
//! wrappers, arrays, and strings where objects were expected.
use scraper::{Html, Selector};
use serde_json::Value;

use crate::posting::RawPosting;

/// Every JobPosting object in the page's JSON-LD blocks. Blocks that are not valid JSON are
/// skipped: one broken block must not hide a good one.
pub fn job_postings(html: &str) -> Vec<Value> {
    let document = Html::parse_document(html);
    let selector =
        Selector::parse(r#"script[type="application/ld+json"]"#).expect("valid selector");
    let mut found = Vec::new();
    for script in document.select(&selector) {
        let text: String = script.text().collect();
        if let Ok(value) = serde_json::from_str::<Value>(text.trim()) {
            collect(&value, &mut found);
        }
    }
    found
}

fn collect(value: &Value, found: &mut Vec<Value>) {
    match value {
        Value::Array(items) => items.iter().for_each(|item| collect(item, found)),
        Value::Object(map) => {
            if is_job_posting(map.get("@type")) {
                found.push(value.clone());
            }
            if let Some(graph) = map.get("@graph") {
                collect(graph, found);
            }
        }
        _ => {}
    }
}

fn is_job_posting(kind: Option<&Value>) -> bool {
    match kind {
        Some(Value::String(kind)) => kind == "JobPosting",
        Some(Value::Array(kinds)) => kinds.iter().any(|k| k == "JobPosting"),
        _ => false,
    }
}

/// Fills the fields of `raw` that are still empty from a JobPosting object.
pub fn fill_from_job_posting(raw: &mut RawPosting, posting: &Value) {
    fill(&mut raw.title, text(posting.get("title")));
    fill(&mut raw.description_html, text(posting.get("description")));
    fill(&mut raw.posted_date, text(posting.get("datePosted")));
    fill(
        &mut raw.company,
        organization(posting.get("hiringOrganization")),
    );
    fill(&mut raw.location, location(posting));
    fill(&mut raw.external_id, identifier(posting.get("identifier")));
    fill(&mut raw.url, text(posting.get("url")));
    if raw.salary_min.is_none() && raw.salary_max.is_none() {
        salary(raw, posting.get("baseSalary"));
    }
}

fn fill(slot: &mut Option<String>, value: Option<String>) {
    if slot.as_deref().is_none_or(|s| s.trim().is_empty()) {
        *slot = value;
    }
}

fn text(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        Value::Array(items) => items.iter().find_map(|item| text(Some(item))),
        _ => None,
    }
}

fn organization(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::Object(map) => text(map.get("name")),
        other => text(Some(other)),
    }
}

fn identifier(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::Object(map) => text(map.get("value")),
        other => text(Some(other)),
    }
}

fn location(posting: &Value) -> Option<String> {
    let places: Vec<&Value> = match posting.get("jobLocation") {
        Some(Value::Array(items)) => items.iter().collect(),
        Some(place) => vec![place],
        None => vec![],
    };
    let mut names: Vec<String> = places.into_iter().filter_map(place_name).collect();
    names.dedup();
    if names.is_empty() {
        let remote = posting.get("jobLocationType").and_then(Value::as_str) == Some("TELECOMMUTE");
        return remote.then(|| "Remote".to_owned());
    }
    Some(names.join(" / "))
}

fn place_name(place: &Value) -> Option<String> {
    let address = match place.get("address") {
        Some(Value::String(s)) => return Some(s.trim().to_owned()),
        Some(address) => address,
        None => return text(place.get("name")),
    };
    let parts: Vec<String> = ["addressLocality", "addressRegion", "addressCountry"]
        .iter()
        .filter_map(|field| match address.get(*field) {
            Some(Value::Object(country)) => text(country.get("name")),
            other => text(other),
        })
        .collect();
    (!parts.is_empty()).then(|| parts.join(", "))
}

fn salary(raw: &mut RawPosting, value: Option<&Value>) {
    let Some(Value::Object(amount)) = value else {
        return;
    };
    raw.salary_currency = text(amount.get("currency"));
    match amount.get("value") {
        Some(Value::Object(quantity)) => {
            let single = number(quantity.get("value"));
            raw.salary_min = number(quantity.get("minValue")).or(single);
            raw.salary_max = number(quantity.get("maxValue")).or(single);
            raw.salary_period = text(quantity.get("unitText"));
        }
        other => {
            raw.salary_min = number(other);
            raw.salary_max = raw.salary_min;
        }
    }
}

fn number(value: Option<&Value>) -> Option<f64> {
    match value? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.replace([',', ' '], "").parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(blocks: &[&str]) -> String {
        let scripts: String = blocks
            .iter()
            .map(|b| format!(r#"<script type="application/ld+json">{b}</script>"#))
            .collect();
        format!("<html><head>{scripts}</head><body></body></html>")
    }

    #[test]
    fn finds_postings_in_graphs_arrays_and_plain_objects() {
        let html = page(&[
            "{ broken json",
            r#"{"@context":"https://schema.org","@graph":[{"@type":"Organization","name":"x"},{"@type":"JobPosting","title":"A"}]}"#,
            r#"[{"@type":["JobPosting"],"title":"B"}]"#,
            r#"{"@type":"JobPosting","title":"C"}"#,
        ]);
        let titles: Vec<String> = job_postings(&html)
            .iter()
            .map(|p| p["title"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(titles, ["A", "B", "C"]);
    }

    #[test]
    fn maps_fields_including_salary_and_location() {
        let posting: Value = serde_json::from_str(
            r#"{"@type":"JobPosting","title":"Rust Engineer","description":"<p>Write Rust</p>",
               "datePosted":"2026-11-01","hiringOrganization":{"@type":"Organization","name":"Acme"},
               "identifier":{"@type":"PropertyValue","name":"acme","value":"42"},
               "jobLocation":[{"@type":"Place","address":{"addressLocality":"Berlin","addressCountry":"DE"}}],
               "baseSalary":{"@type":"MonetaryAmount","currency":"EUR",
                 "value":{"@type":"QuantitativeValue","minValue":60000,"maxValue":80000,"unitText":"YEAR"}}}"#,
        )
        .unwrap();
        let mut raw = RawPosting::default();
        fill_from_job_posting(&mut raw, &posting);
        assert_eq!(raw.title.as_deref(), Some("Rust Engineer"));
        assert_eq!(raw.company.as_deref(), Some("Acme"));
        assert_eq!(raw.location.as_deref(), Some("Berlin, DE"));
        assert_eq!(raw.external_id.as_deref(), Some("42"));
        assert_eq!(
            (raw.salary_min, raw.salary_max),
            (Some(60000.0), Some(80000.0))
        );
        assert_eq!(raw.salary_currency.as_deref(), Some("EUR"));
        assert_eq!(raw.salary_period.as_deref(), Some("YEAR"));
    }

    #[test]
    fn remote_job_without_location_is_remote() {
        let posting: Value =
            serde_json::from_str(r#"{"@type":"JobPosting","jobLocationType":"TELECOMMUTE"}"#)
                .unwrap();
        let mut raw = RawPosting::default();
        fill_from_job_posting(&mut raw, &posting);
        assert_eq!(raw.location.as_deref(), Some("Remote"));
    }
}
