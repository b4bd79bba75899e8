//! Reading the demo job board: listing pages of job cards with `rel=next` pagination, and
//! detail pages carrying schema.org JobPosting JSON-LD.
use scraper::{ElementRef, Html, Selector};
use url::Url;

use crate::posting::RawPosting;
use crate::{ScrapeError, jsonld};

/// Postings per listing page on the demo board.
pub const PAGE_SIZE: u32 = 20;

/// What one listing page holds.
#[derive(Debug, Clone, PartialEq)]
pub struct Listing {
    pub items: Vec<RawPosting>,
    pub has_next: bool,
}

pub fn listing_url(
    base: &Url,
    search_term: Option<&str>,
    location: Option<&str>,
    page: u32,
) -> Url {
    let mut url = base.join("jobs").expect("a path joins onto an http(s) URL");
    {
        let mut query = url.query_pairs_mut();
        if let Some(term) = search_term.filter(|t| !t.is_empty()) {
            query.append_pair("q", term);
        }
        if let Some(location) = location.filter(|l| !l.is_empty()) {
            query.append_pair("l", location);
        }
        query.append_pair("page", &page.to_string());
    }
    url
}

/// Reads a listing page. A page without the results container is not a listing (an error
/// page, a truncated response): that is an error, not an empty result.
pub fn parse_listing(html: &str, page_url: &Url) -> Result<Listing, ScrapeError> {
    let document = Html::parse_document(html);
    let results = selector("main#results");
    let Some(container) = document.select(&results).next() else {
        return Err(ScrapeError::Parse {
            url: page_url.to_string(),
            reason: "no listing results container (main#results) on the page".into(),
        });
    };
    let items = container
        .select(&selector("article.job-card"))
        .map(|card| read_card(card, page_url))
        .collect();
    let has_next = document
        .select(&selector(r#"a[rel="next"]"#))
        .next()
        .is_some();
    Ok(Listing { items, has_next })
}

fn read_card(card: ElementRef<'_>, page_url: &Url) -> RawPosting {
    let field = |css: &str| {
        card.select(&selector(css))
            .next()
            .map(|el| el.text().collect::<String>().trim().to_owned())
            .filter(|text| !text.is_empty())
    };
    let url = card
        .select(&selector("a.job-link"))
        .next()
        .and_then(|link| link.value().attr("href"))
        .and_then(|href| page_url.join(href).ok())
        .map(String::from);
    RawPosting {
        external_id: card.value().attr("data-id").map(str::to_owned),
        title: field(".job-title"),
        company: field(".company"),
        location: field(".location"),
        posted_date: card
            .select(&selector("time.posted"))
            .next()
            .and_then(|t| t.value().attr("datetime"))
            .map(str::to_owned),
        url,
        ..RawPosting::default()
    }
}

/// Completes a listing item from its detail page's JSON-LD. A detail page without a
/// JobPosting is an error: the link did not lead to a posting.
pub fn apply_detail(item: &mut RawPosting, html: &str, page_url: &Url) -> Result<(), ScrapeError> {
    let postings = jsonld::job_postings(html);
    let Some(posting) = postings.first() else {
        return Err(ScrapeError::Parse {
            url: page_url.to_string(),
            reason: "no schema.org JobPosting JSON-LD on the detail page".into(),
        });
    };
    // The detail page is the authority on description and salary; the listing's text stays
    // for fields the JSON-LD lacks.
    item.description_html = None;
    jsonld::fill_from_job_posting(item, posting);
    Ok(())
}

fn selector(css: &str) -> Selector {
    Selector::parse(css).expect("selectors in this module are valid")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listing_url_carries_search_and_page() {
        let base = Url::parse("http://127.0.0.1:8090/").unwrap();
        let url = listing_url(&base, Some("rust dev"), None, 2);
        assert_eq!(url.as_str(), "http://127.0.0.1:8090/jobs?q=rust+dev&page=2");
    }

    #[test]
    fn reads_cards_and_pagination() {
        let html = r#"<html><body><main id="results" data-total="21">
            <article class="job-card" data-id="7"><h2 class="job-title"><a class="job-link" href="/jobs/7">Rust Engineer</a></h2>
            <span class="company">Acme</span><span class="location">Berlin</span><time class="posted" datetime="2026-11-01"></time></article>
            </main><a rel="next" href="/jobs?page=2">Next</a></body></html>"#;
        let page_url = Url::parse("http://127.0.0.1:8090/jobs?page=1").unwrap();
        let listing = parse_listing(html, &page_url).unwrap();
        assert!(listing.has_next);
        assert_eq!(listing.items.len(), 1);
        let item = &listing.items[0];
        assert_eq!(item.external_id.as_deref(), Some("7"));
        assert_eq!(item.title.as_deref(), Some("Rust Engineer"));
        assert_eq!(item.url.as_deref(), Some("http://127.0.0.1:8090/jobs/7"));
    }

    #[test]
    fn a_page_without_results_is_an_error() {
        let page_url = Url::parse("http://127.0.0.1:8090/jobs?page=1").unwrap();
        let err = parse_listing("<html><body><div>oops", &page_url).unwrap_err();
        assert!(!err.is_retryable());
        assert!(err.to_string().contains("main#results"), "{err}");
    }
}
