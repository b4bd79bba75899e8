//! The board's pages. Markup is what scrapers meet in the wild: cards in a results container,
//! `rel=next` pagination, and JSON-LD on detail pages in the three shapes sites use (plain
//! object, array, `@graph`).
use serde_json::json;

use crate::catalog::DemoPosting;

pub fn index() -> String {
    page(
        "trawl demo job board",
        r#"<h1>trawl demo job board</h1><p><a href="/jobs">All postings</a></p>
<form action="/jobs"><input name="q" placeholder="search"><input name="l" placeholder="location"><button>Search</button></form>"#,
    )
}

pub fn listing(
    q: Option<&str>,
    l: Option<&str>,
    page_no: u32,
    total: usize,
    items: &[DemoPosting],
    has_next: bool,
) -> String {
    let cards: String = items.iter().map(card).collect();
    let mut query = String::new();
    for (name, value) in [("q", q), ("l", l)] {
        if let Some(value) = value.filter(|v| !v.is_empty()) {
            query.push_str(&format!("{name}={}&amp;", escape(&urlencode(value))));
        }
    }
    let next = if has_next {
        format!(
            r#"<a rel="next" href="/jobs?{query}page={}">Next</a>"#,
            page_no + 1
        )
    } else {
        String::new()
    };
    page(
        "Job postings",
        &format!(
            r#"<h1>{total} postings</h1><main id="results" data-total="{total}" data-page="{page_no}">{cards}</main><nav>{next}</nav>"#
        ),
    )
}

/// The shell of the JavaScript listing. The script builds the same card markup as the
/// server-rendered listing and marks `main#results` with `data-loaded` when it is done.
pub fn js_listing() -> String {
    page(
        "Job postings",
        r#"<h1>Job postings</h1><main id="results"></main><nav></nav>
<script>
const params = new URLSearchParams(window.location.search);
fetch('/api/jobs?' + params.toString()).then(r => r.json()).then(data => {
  const main = document.getElementById('results');
  for (const job of data.items) {
    const card = document.createElement('article');
    card.className = 'job-card';
    card.dataset.id = job.id;
    card.innerHTML = '<h2 class="job-title"><a class="job-link"></a></h2><span class="company"></span> '
      + '<span class="location"></span><time class="posted"></time>';
    const link = card.querySelector('.job-link');
    link.href = '/jobs/' + job.id;
    link.textContent = job.title;
    card.querySelector('.company').textContent = job.company;
    card.querySelector('.location').textContent = job.location;
    card.querySelector('.posted').setAttribute('datetime', job.posted);
    main.appendChild(card);
  }
  if (data.has_next) {
    params.set('page', data.page + 1);
    const next = document.createElement('a');
    next.rel = 'next';
    next.href = '/js/jobs?' + params.toString();
    next.textContent = 'Next';
    document.querySelector('nav').appendChild(next);
  }
  main.dataset.loaded = 'true';
});
</script>"#,
    )
}

fn card(p: &DemoPosting) -> String {
    let salary = p
        .salary
        .map(|(min, max)| format!(r#"<span class="salary">€{min} – €{max} a year</span>"#))
        .unwrap_or_default();
    format!(
        r#"<article class="job-card" data-id="{id}"><h2 class="job-title"><a class="job-link" href="/jobs/{id}">{title}</a></h2><span class="company">{company}</span> <span class="location">{location}</span> {salary}<time class="posted" datetime="{posted}">{posted}</time></article>"#,
        id = p.id,
        title = escape(&p.title),
        company = escape(p.company),
        location = escape(p.location),
        posted = p.posted,
    )
}

pub fn detail(p: &DemoPosting) -> String {
    let mut posting = json!({
        "@type": "JobPosting",
        "title": p.title,
        "description": p.description,
        "datePosted": p.posted.to_string(),
        "hiringOrganization": {"@type": "Organization", "name": p.company},
        "identifier": {"@type": "PropertyValue", "name": "demo-board", "value": p.id.to_string()},
        "employmentType": "FULL_TIME",
    });
    if p.is_remote() {
        posting["jobLocationType"] = json!("TELECOMMUTE");
    } else {
        posting["jobLocation"] = json!({"@type": "Place", "address": {
            "@type": "PostalAddress", "addressLocality": p.location, "addressCountry": p.country}});
    }
    if let Some((min, max)) = p.salary {
        posting["baseSalary"] = json!({"@type": "MonetaryAmount", "currency": "EUR",
            "value": {"@type": "QuantitativeValue", "minValue": min, "maxValue": max, "unitText": "YEAR"}});
    }
    let ld = match p.id % 3 {
        0 => json!({"@context": "https://schema.org", "@graph": [
            {"@type": "Organization", "name": p.company}, posting]}),
        1 => json!([posting]),
        _ => {
            posting["@context"] = json!("https://schema.org");
            posting
        }
    };
    // `</` inside JSON would end the script element early.
    let ld = ld.to_string().replace("</", "<\\/");
    page(
        &p.title,
        &format!(
            r#"<script type="application/ld+json">{ld}</script><article class="posting"><h1>{title}</h1><p class="company">{company}</p><div class="description">{description}</div></article>"#,
            title = escape(&p.title),
            company = escape(p.company),
            description = p.description,
        ),
    )
}

pub(crate) fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{}</title></head><body>{body}</body></html>",
        escape(title)
    )
}

pub(crate) fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            b' ' => "+".to_owned(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The text of an HTML fragment, for the fixtures' plain-text fields.
pub fn text_of(html: &str) -> String {
    let mut text = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                text.push(' ');
            }
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
