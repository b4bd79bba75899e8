//! Sites described as data: an operator adds one without a rebuild.
//!
//! ```json
//! {"source": "definition",
//!  "start_url": "https://example.com/jobs?q={search_term}&where={location}&page={page}",
//!  "fetch": "browser", "wait_for": "main#results[data-loaded]",
//!  "item_selector": "article.job-card",
//!  "fields": {"title": ".job-title", "url": "a.job-link@href", "company": ".company",
//!             "location": ".location", "posted_date": "time@datetime"},
//!  "pagination": {"kind": "page_param", "max_pages": 5},
//!  "follow_details": true}
//! ```
//! A field selector is CSS, optionally followed by `@attribute` to read an attribute instead of
//! the text. On detail pages, schema.org JobPosting JSON-LD fills whatever the selectors did not.
use scraper::{ElementRef, Html, Selector};
use serde::{Deserialize, Serialize};
use url::Url;

use crate::posting::RawPosting;
use crate::site::{http_url, yes};
use crate::{ScrapeError, SiteSpecError};

/// How a site's pages are fetched.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FetchMode {
    /// Plain HTTP: fast, for server-rendered pages.
    #[default]
    Http,
    /// A real browser over WebDriver, for pages rendered by JavaScript.
    Browser,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldSelectors {
    pub title: String,
    /// Defaults to reading `href` when no `@attribute` is given.
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub salary: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub posted_date: Option<String>,
    /// The posting's id on the site; defaults to its URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Pagination {
    /// Follow the link matched by `selector` (its `href`).
    NextLink { selector: String, max_pages: u32 },
    /// Fill `{page}` in `start_url` with 1, 2, ... until a page has no items.
    PageParam { max_pages: u32 },
}

impl Pagination {
    pub fn max_pages(&self) -> u32 {
        match self {
            Pagination::NextLink { max_pages, .. } | Pagination::PageParam { max_pages } => {
                *max_pages
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DefinitionSpec {
    /// Template with `{search_term}`, `{location}` and `{page}` (URL-encoded when filled).
    pub start_url: String,
    #[serde(default)]
    pub fetch: FetchMode,
    /// In browser mode, the page counts as loaded when this CSS selector matches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait_for: Option<String>,
    pub item_selector: String,
    pub fields: FieldSelectors,
    pub pagination: Pagination,
    #[serde(default = "yes")]
    pub follow_details: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub search_term: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub results_wanted: Option<u32>,
    /// Set only to scrape despite robots.txt; the reason is recorded on every run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore_robots_txt: Option<String>,
}

/// Most pages a definition may walk; a typo in a next-link selector must not crawl forever.
pub const MAX_DEFINITION_PAGES: u32 = 100;

impl DefinitionSpec {
    pub fn validate(&self) -> Result<(), SiteSpecError> {
        http_url("start_url", &self.render_url(Some("x"), Some("x"), 1))?;
        css("item_selector", &self.item_selector)?;
        field_selector("fields.title", &self.fields.title)?;
        field_selector("fields.url", &self.fields.url)?;
        let optional = [
            ("fields.company", &self.fields.company),
            ("fields.location", &self.fields.location),
            ("fields.salary", &self.fields.salary),
            ("fields.posted_date", &self.fields.posted_date),
            ("fields.external_id", &self.fields.external_id),
        ];
        for (field, value) in optional {
            if let Some(value) = value {
                field_selector(field, value)?;
            }
        }
        if let Some(wait_for) = &self.wait_for {
            css("wait_for", wait_for)?;
        }
        let max_pages = self.pagination.max_pages();
        if !(1..=MAX_DEFINITION_PAGES).contains(&max_pages) {
            return Err(SiteSpecError::Field {
                field: "pagination.max_pages",
                reason: format!("must be between 1 and {MAX_DEFINITION_PAGES}, got {max_pages}"),
            });
        }
        match &self.pagination {
            Pagination::NextLink { selector, .. } => css("pagination.selector", selector).map(drop),
            Pagination::PageParam { .. } if !self.start_url.contains("{page}") => {
                Err(SiteSpecError::Field {
                    field: "start_url",
                    reason: "page_param pagination needs a {page} placeholder".into(),
                })
            }
            Pagination::PageParam { .. } => Ok(()),
        }
    }

    /// Why a first listing page with no items is an error, and what to try.
    pub fn empty_listing_hint(&self) -> String {
        let mut hint = format!(
            "page 1 matched no `item_selector` ({:?}): the site's layout may have changed",
            self.item_selector
        );
        if self.fetch == FetchMode::Http {
            hint.push_str(
                r#"; does the page need `"fetch": "browser"` (its listing may be rendered by JavaScript)?"#,
            );
        } else if self.wait_for.is_none() {
            hint.push_str("; a `wait_for` selector may be needed for the page to finish rendering");
        }
        hint
    }

    pub fn render_url(
        &self,
        search_term: Option<&str>,
        location: Option<&str>,
        page: u32,
    ) -> String {
        let encode = |text: Option<&str>| {
            url::form_urlencoded::byte_serialize(text.unwrap_or("").as_bytes()).collect::<String>()
        };
        self.start_url
            .replace("{search_term}", &encode(search_term))
            .replace("{location}", &encode(location))
            .replace("{page}", &page.to_string())
    }

    /// Reads a listing page: its items, and the next page's URL when pagination follows links.
    pub fn parse_listing(&self, html: &str, page_url: &Url) -> (Vec<RawPosting>, Option<Url>) {
        let document = Html::parse_document(html);
        let items = document
            .select(&Selector::parse(&self.item_selector).expect("validated at load"))
            .map(|item| self.read_item(item, page_url))
            .collect();
        let next = match &self.pagination {
            Pagination::NextLink { selector, .. } => document
                .select(&Selector::parse(selector).expect("validated at load"))
                .next()
                .and_then(|link| link.value().attr("href"))
                .and_then(|href| page_url.join(href).ok()),
            Pagination::PageParam { .. } => None,
        };
        (items, next)
    }

    fn read_item(&self, item: ElementRef<'_>, page_url: &Url) -> RawPosting {
        let read = |selector: &Option<String>| selector.as_deref().and_then(|s| extract(item, s));
        let url = extract_with_default(item, &self.fields.url, "href")
            .and_then(|href| page_url.join(&href).ok());
        RawPosting {
            external_id: read(&self.fields.external_id),
            title: extract(item, &self.fields.title),
            company: read(&self.fields.company),
            location: read(&self.fields.location),
            posted_date: read(&self.fields.posted_date),
            salary_text: read(&self.fields.salary),
            url: url.map(String::from),
            ..RawPosting::default()
        }
    }
}

/// Applies a detail page: its JSON-LD JobPosting, if any, fills the gaps. A detail page without
/// JSON-LD is fine here: the selectors may have read everything already.
pub fn apply_detail(item: &mut RawPosting, html: &str) -> Result<(), ScrapeError> {
    if let Some(posting) = crate::jsonld::job_postings(html).first() {
        crate::jsonld::fill_from_job_posting(item, posting);
    }
    Ok(())
}

fn css(field: &'static str, selector: &str) -> Result<Selector, SiteSpecError> {
    Selector::parse(selector).map_err(|err| SiteSpecError::Field {
        field,
        reason: format!("invalid CSS selector {selector:?}: {err}"),
    })
}

fn field_selector(field: &'static str, spec: &str) -> Result<(), SiteSpecError> {
    let (selector, attribute) = split_attribute(spec);
    if attribute == Some("") {
        return Err(SiteSpecError::Field {
            field,
            reason: format!("empty attribute name in {spec:?}"),
        });
    }
    css(field, selector).map(drop)
}

fn split_attribute(spec: &str) -> (&str, Option<&str>) {
    match spec.rsplit_once('@') {
        Some((selector, attribute)) => (selector.trim(), Some(attribute.trim())),
        None => (spec.trim(), None),
    }
}

fn extract(item: ElementRef<'_>, spec: &str) -> Option<String> {
    let (selector, attribute) = split_attribute(spec);
    read_element(item, selector, attribute)
}

fn extract_with_default(item: ElementRef<'_>, spec: &str, attribute: &str) -> Option<String> {
    let (selector, given) = split_attribute(spec);
    read_element(item, selector, Some(given.unwrap_or(attribute)))
}

fn read_element(item: ElementRef<'_>, selector: &str, attribute: Option<&str>) -> Option<String> {
    let selector = Selector::parse(selector).ok()?;
    let element = item.select(&selector).next()?;
    let value = match attribute {
        Some(name) => element.value().attr(name)?.to_owned(),
        None => element.text().collect::<String>(),
    };
    let value = crate::clean_text(&value);
    (!value.is_empty()).then_some(value)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::SiteSpec;

    fn definition() -> serde_json::Value {
        json!({"source": "definition", "start_url": "http://x/jobs?q={search_term}&page={page}",
               "item_selector": "article", "fields": {"title": "h2", "url": "a"},
               "pagination": {"kind": "page_param", "max_pages": 3}})
    }

    #[test]
    fn a_good_definition_loads() {
        let spec = SiteSpec::from_json(&definition()).unwrap();
        let crate::SiteSpec::Definition(spec) = spec else {
            panic!()
        };
        assert_eq!(
            spec.render_url(Some("rust dev"), None, 2),
            "http://x/jobs?q=rust+dev&page=2"
        );
    }

    #[test]
    fn bad_definitions_are_refused_naming_the_field() {
        let broken = |path: &[&str], value: serde_json::Value| {
            let mut def = definition();
            let mut slot = &mut def;
            for key in &path[..path.len() - 1] {
                slot = &mut slot[*key];
            }
            slot[path[path.len() - 1]] = value;
            SiteSpec::from_json(&def).unwrap_err().to_string()
        };
        assert!(
            broken(&["item_selector"], json!("div["))
                .contains("`item_selector`: invalid CSS selector")
        );
        assert!(broken(&["fields", "title"], json!("h2 >")).contains("`fields.title`"));
        assert!(
            broken(&["fields", "company"], json!("p@"))
                .contains("`fields.company`: empty attribute")
        );
        assert!(broken(&["start_url"], json!("/relative/{page}")).contains("`start_url`"));
        assert!(broken(&["start_url"], json!("http://x/jobs")).contains("{page} placeholder"));
        assert!(broken(&["pagination", "max_pages"], json!(0)).contains("`pagination.max_pages`"));
        assert!(broken(&["wait_for"], json!("###")).contains("`wait_for`"));
        assert!(
            broken(&["fetch"], json!("carrier-pigeon"))
                .contains("unknown variant `carrier-pigeon`")
        );
        assert!(broken(&["fields", "titel"], json!("h2")).contains("unknown field `titel`"));
    }
}
