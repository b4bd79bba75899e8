//! Which links on a career page are job postings, and one spelling for each: seed 004's link
//! extractor, with the URL normalised so a tracking parameter or a fragment never makes a
//! posting look new.
use std::collections::BTreeSet;

use scraper::{Html, Selector};
use url::Url;

/// Query parameters that say who sent the visitor, not which page it is.
const TRACKING_PARAMETERS: &[&str] = &[
    "gclid",
    "fbclid",
    "msclkid",
    "dclid",
    "yclid",
    "mc_cid",
    "mc_eid",
    "_hsenc",
    "_hsmi",
    "mkt_tok",
    "ref",
    "referrer",
    "source",
    "src",
    "gh_src",
    "lever-source",
    "lever-origin",
    "trk",
    "trackingid",
    "campaign",
];

/// Path segments that lead to postings on a company's own site (English, French, German,
/// Spanish, Dutch): a job link has one of them followed by at least one more segment.
const JOB_SEGMENTS: &[&str] = &[
    "job",
    "jobs",
    "career",
    "careers",
    "position",
    "positions",
    "opening",
    "openings",
    "vacancy",
    "vacancies",
    "role",
    "roles",
    "offre",
    "offres",
    "emploi",
    "emplois",
    "poste",
    "postes",
    "stellen",
    "stelle",
    "empleo",
    "empleos",
    "vacatures",
];

/// A hosted applicant-tracking board a career page links to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct AtsBoard {
    /// `greenhouse`, `lever`, `ashby`, `workable`, `recruitee` or `smartrecruiters`.
    pub ats: String,
    /// The company's board name on that ATS.
    pub board: String,
}

impl AtsBoard {
    /// Whether trawl reads this ATS through its JSON API (the scrape kind's sources).
    pub fn has_api(&self) -> bool {
        matches!(self.ats.as_str(), "greenhouse" | "lever" | "ashby")
    }
}

/// What a career page links to.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PageLinks {
    /// Postings, normalised, sorted, each once.
    pub jobs: BTreeSet<String>,
    /// ATS boards linked from the page (their postings are read through the ATS's API).
    pub boards: BTreeSet<AtsBoard>,
}

/// The job links of `html`, read at `page` (relative links resolve against it, or against the
/// page's `<base href>`).
pub fn extract(html: &str, page: &Url) -> PageLinks {
    let document = Html::parse_document(html);
    let base = Selector::parse("base[href]").expect("static selector");
    let page = document
        .select(&base)
        .next()
        .and_then(|b| b.value().attr("href"))
        .and_then(|href| page.join(href).ok())
        .unwrap_or_else(|| page.clone());
    let anchors = Selector::parse("a[href]").expect("static selector");
    let mut links = PageLinks::default();
    for anchor in document.select(&anchors) {
        let Some(href) = anchor.value().attr("href") else {
            continue;
        };
        let Ok(url) = page.join(href.trim()) else {
            continue;
        };
        if !matches!(url.scheme(), "http" | "https") {
            continue;
        }
        let url = normalize(url);
        if let Some(board) = ats_link(&url) {
            match board {
                AtsLink::Posting => {
                    links.jobs.insert(url.to_string());
                }
                AtsLink::Board(board) => {
                    links.boards.insert(board);
                }
            }
        } else if same_site(&url, &page) && is_job_path(&url, &page) {
            links.jobs.insert(url.to_string());
        }
    }
    links
}

/// One spelling of a URL: no fragment, no tracking parameters (the rest kept in order), no
/// trailing slash on a path, and lower-case scheme and host with default ports dropped (as
/// the `url` crate parses).
pub fn normalize(mut url: Url) -> Url {
    url.set_fragment(None);
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(name, _)| !is_tracking(name))
        .map(|(name, value)| (name.into_owned(), value.into_owned()))
        .collect();
    if kept.is_empty() {
        url.set_query(None);
    } else {
        url.query_pairs_mut().clear().extend_pairs(kept);
    }
    let path = url.path().to_owned();
    if path.len() > 1 && path.ends_with('/') {
        url.set_path(path.trim_end_matches('/'));
    }
    url
}

fn is_tracking(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    name.starts_with("utm_") || TRACKING_PARAMETERS.contains(&name.as_str())
}

/// The same site: the same host, or one differing only by `www.`.
fn same_site(url: &Url, page: &Url) -> bool {
    let bare = |u: &Url| {
        u.host_str()
            .unwrap_or_default()
            .trim_start_matches("www.")
            .to_owned()
    };
    bare(url) == bare(page) && url.port_or_known_default() == page.port_or_known_default()
}

/// A posting's path: a job segment somewhere, and a last segment that names one posting (a
/// number, an id, a slug of several words) — not the page itself, one of its listing pages
/// (`?page=2`, `/careers/all`) or a page about the company (`/careers/about`).
fn is_job_path(url: &Url, page: &Url) -> bool {
    if url.path() == page.path() {
        return false;
    }
    let segments = segments(url);
    let Some((last, before)) = segments.split_last() else {
        return false;
    };
    before
        .iter()
        .any(|segment| JOB_SEGMENTS.contains(&segment.to_ascii_lowercase().as_str()))
        && names_a_posting(last)
}

/// The path's non-empty segments.
fn segments(url: &Url) -> Vec<&str> {
    url.path_segments()
        .into_iter()
        .flatten()
        .filter(|s| !s.is_empty())
        .collect()
}

fn names_a_posting(segment: &str) -> bool {
    let has_digit = segment.chars().any(|c| c.is_ascii_digit());
    let words = segment.split(['-', '_']).filter(|w| !w.is_empty()).count();
    has_digit || words >= 2
}

enum AtsLink {
    Posting,
    Board(AtsBoard),
}

/// A link into a hosted ATS: one posting, or a company's whole board.
fn ats_link(url: &Url) -> Option<AtsLink> {
    let host = url.host_str()?;
    let segments = segments(url);
    let board = |ats: &str, name: &str| {
        AtsLink::Board(AtsBoard {
            ats: ats.to_owned(),
            board: name.to_ascii_lowercase(),
        })
    };
    let (ats, posting) = match host {
        "boards.greenhouse.io" | "job-boards.greenhouse.io" => (
            "greenhouse",
            segments.get(1) == Some(&"jobs") && segments.len() >= 3,
        ),
        "jobs.lever.co" => ("lever", segments.len() >= 2),
        "jobs.ashbyhq.com" => ("ashby", segments.len() >= 2),
        "apply.workable.com" => ("workable", segments.get(1) == Some(&"j")),
        "jobs.smartrecruiters.com" => ("smartrecruiters", segments.len() >= 2),
        _ if host.ends_with(".recruitee.com") => {
            let company = host.trim_end_matches(".recruitee.com");
            return Some(if segments.first() == Some(&"o") && segments.len() >= 2 {
                AtsLink::Posting
            } else {
                board("recruitee", company)
            });
        }
        _ => return None,
    };
    let name = segments.first()?;
    Some(if posting {
        AtsLink::Posting
    } else {
        board(ats, name)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page() -> Url {
        Url::parse("https://www.acme.example/careers").unwrap()
    }

    fn jobs(html: &str) -> Vec<String> {
        extract(html, &page()).jobs.into_iter().collect()
    }

    #[test]
    fn tracking_parameters_and_fragments_are_dropped() {
        let url = Url::parse(
            "HTTPS://Acme.Example:443/jobs/42/?utm_source=x&team=eng&gclid=1&Ref=y#apply",
        )
        .unwrap();
        assert_eq!(
            normalize(url).as_str(),
            "https://acme.example/jobs/42?team=eng"
        );
    }

    #[test]
    fn job_paths_on_the_same_site_are_postings_and_the_rest_is_not() {
        let html = r#"<a href="/careers/42-backend-engineer">a</a>
            <a href="https://acme.example/jobs/43?utm_campaign=x#top">b</a>
            <a href="/careers/42-backend-engineer#apply">dup</a>
            <a href="/careers">self</a> <a href="/careers?page=2">next</a>
            <a href="/careers/all">all</a> <a href="/about">about</a>
            <a href="/careers/teams/data">team</a> <a href="/careers/acme/about">about</a>
            <a href="https://other.example/jobs/1">elsewhere</a>
            <a href="mailto:jobs@acme.example">mail</a> <a href="javascript:void(0)">js</a>
            <a href="/fr/offres/dev-rust">fr</a>"#;
        assert_eq!(
            jobs(html),
            [
                "https://acme.example/jobs/43",
                "https://www.acme.example/careers/42-backend-engineer",
                "https://www.acme.example/fr/offres/dev-rust",
            ]
        );
    }

    #[test]
    fn ats_postings_are_jobs_and_ats_boards_are_recognised() {
        let html = r#"<a href="https://boards.greenhouse.io/acme">board</a>
            <a href="https://boards.greenhouse.io/acme/jobs/4012345?gh_src=abc">gh job</a>
            <a href="https://jobs.lever.co/acme/5f1c-22">lever job</a>
            <a href="https://jobs.lever.co/Acme">lever board</a>
            <a href="https://jobs.ashbyhq.com/acme">ashby board</a>
            <a href="https://acme.recruitee.com/o/backend">recruitee job</a>"#;
        let links = extract(html, &page());
        assert_eq!(
            links.jobs.into_iter().collect::<Vec<_>>(),
            [
                "https://acme.recruitee.com/o/backend",
                "https://boards.greenhouse.io/acme/jobs/4012345",
                "https://jobs.lever.co/acme/5f1c-22",
            ]
        );
        let boards: Vec<_> = links
            .boards
            .iter()
            .map(|b| (b.ats.as_str(), b.board.as_str(), b.has_api()))
            .collect();
        assert_eq!(
            boards,
            [
                ("ashby", "acme", true),
                ("greenhouse", "acme", true),
                ("lever", "acme", true)
            ]
        );
    }

    #[test]
    fn a_base_element_moves_relative_links() {
        let html = r#"<base href="https://acme.example/en/"><a href="jobs/7">x</a>"#;
        assert_eq!(jobs(html), ["https://acme.example/en/jobs/7"]);
    }
}
