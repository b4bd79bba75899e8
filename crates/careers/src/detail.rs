//! The `career_detail` kind: one added job page read (JSON-LD JobPosting when the page has one,
//! else its main content), stored as a posting in `jobs` through the scrape path's validate,
//! enrich and upsert, linked to its company, and its years of experience extracted.
use queue_core::store::{RunReport, RunStatus};
use scraper::{Html, Selector};
use serde::{Deserialize, Serialize};
use telemetry::metric;
use trawl_scrape::{PageFetcher, Provenance, RawPosting, jsonld};
use trawl_scrape_runs::postings::upsert_page;
use trawl_tasks::{Handler, HandlerError, RunContext};
use url::Url;

use crate::snapshot::{page_failed, request};
use crate::snapshots::detail_plan;
use crate::{CareerKinds, CareersError, DETAIL_KIND, QUEUE, store_experience};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetailTask {
    /// The company's slug.
    pub company: String,
    /// The job page, as its snapshot normalised it.
    pub url: String,
}

/// The `career_detail` kind.
#[derive(Clone)]
pub struct Details(pub CareerKinds);

/// The `site` of a company's postings in `jobs`.
pub fn site_of(slug: &str) -> String {
    format!("career:{slug}")
}

/// What a job page says: its JSON-LD JobPosting, or its heading and main content.
pub fn read_posting(html: &str, url: &Url, company: &str) -> RawPosting {
    let mut raw = RawPosting {
        url: Some(url.to_string()),
        external_id: Some(url.to_string()),
        ..Default::default()
    };
    if let Some(posting) = jsonld::job_postings(html).first() {
        jsonld::fill_from_job_posting(&mut raw, posting);
        // The page's own URL identifies the posting: a JSON-LD url or identifier that differs
        // (tracking, a canonical elsewhere) must not make it a second row.
        raw.url = Some(url.to_string());
        raw.external_id = Some(url.to_string());
    }
    let document = Html::parse_document(html);
    let first_text = |css: &str| {
        let selector = Selector::parse(css).expect("static selector");
        document
            .select(&selector)
            .map(|e| e.text().collect::<Vec<_>>().join(" "))
            .map(|t| trawl_scrape::clean_text(&t))
            .find(|t| !t.is_empty())
    };
    if raw.title.is_none() {
        raw.title = first_text("h1").or_else(|| first_text("title"));
    }
    if raw.description_html.is_none() {
        let main = ["main", "article", "[role=main]", "#content", "body"]
            .iter()
            .find_map(|css| {
                let selector = Selector::parse(css).expect("static selector");
                document.select(&selector).next().map(|e| e.inner_html())
            });
        raw.description_html = main;
    }
    if raw.location.is_none() {
        raw.location = first_text("[itemprop=jobLocation], .location, .job-location");
    }
    if raw.company.is_none() {
        raw.company = Some(company.to_owned());
    }
    raw
}

impl Handler for Details {
    type Payload = DetailTask;
    const KIND: &'static str = DETAIL_KIND;
    const QUEUE: &'static str = QUEUE;

    fn check(task: &DetailTask) -> Result<(), String> {
        match Url::parse(&task.url) {
            Ok(url) if matches!(url.scheme(), "http" | "https") => Ok(()),
            _ => Err(format!("url {:?} is not an http(s) URL", task.url)),
        }
    }

    async fn plan(&self, _task: &mut DetailTask) -> Result<queue_core::Plan, HandlerError> {
        Ok(detail_plan())
    }

    async fn run(&self, ctx: RunContext, task: DetailTask) -> Result<RunReport, HandlerError> {
        let db = &ctx.services.db;
        let company = crate::companies::get(db, &task.company)
            .await
            .map_err(HandlerError::retryable)?
            .ok_or_else(|| HandlerError::fatal(CareersError::UnknownCompany(task.company)))?;
        let url = crate::address::check_url(&task.url, self.0.allow_private)
            .await
            .map_err(HandlerError::fatal)?;
        // Job pages are server-rendered more often than lists; the company's mode still
        // decides, without its "load more" button.
        let mut page = request(&company, url.clone());
        page.load_more = None;
        page.wait_for = None;
        let html = self.0.fetchers.fetch(&page).await.map_err(page_failed)?;
        let raw = read_posting(&html, &url, &company.name);
        let site = site_of(&company.slug);
        let from = Provenance {
            site: &site,
            source: "career_page",
            search_query: None,
        };
        let posting = raw.normalize(&from).map_err(|refused| {
            metrics::counter!(metric::CAREER_DETAILS, "outcome" => "refused").increment(1);
            HandlerError::fatal(CareersError::Refused(format!("{url}: {}", refused.0)))
        })?;
        let outcome = upsert_page(db, &ctx.run_id, std::slice::from_ref(&posting))
            .await
            .map_err(HandlerError::retryable)?[0];
        sqlx::query!(
            "UPDATE career_links SET job_id = $3 WHERE company_id = $1 AND url = $2",
            company.id,
            task.url,
            posting.job_id
        )
        .execute(db)
        .await
        .map_err(|e| HandlerError::retryable(CareersError::Db(e)))?;
        let text = format!(
            "{}\n{}",
            posting.job_title,
            posting.job_description.as_deref().unwrap_or_default()
        );
        let experience = store_experience(db, self.0.llm.as_ref(), posting.job_id, &text)
            .await
            .map_err(HandlerError::retryable)?;
        metrics::counter!(metric::CAREER_DETAILS, "outcome" => "stored").increment(1);
        Ok(RunReport {
            status: RunStatus::Succeeded,
            message: format!("{}: {}", posting.job_title, url),
            error_detail: serde_json::json!({}),
            result: serde_json::json!({
                "company": company.slug,
                "job_id": posting.job_id,
                "title": posting.job_title,
                "outcome": outcome,
                "experience": experience,
                "jobs_found": 1,
            }),
        })
    }

    async fn close(&self) {
        self.0.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_ld_first_then_the_main_content() {
        let url = Url::parse("https://acme.example/jobs/7").unwrap();
        let with_ld = r#"<html><script type="application/ld+json">{"@type":"JobPosting",
            "title":"Rust Engineer","description":"<p>5+ years of Rust</p>",
            "url":"https://acme.example/jobs/7?utm_source=x",
            "jobLocation":{"address":{"addressLocality":"Lyon"}}}</script>
            <h1>Ignored</h1></html>"#;
        let raw = read_posting(with_ld, &url, "Acme");
        assert_eq!(raw.title.as_deref(), Some("Rust Engineer"));
        assert_eq!(raw.url.as_deref(), Some("https://acme.example/jobs/7"));
        assert_eq!(raw.company.as_deref(), Some("Acme"));
        let plain = "<html><title>Acme jobs</title><body><nav>menu</nav><main><h1>Data \
            Analyst</h1><p>Three years of SQL experience.</p></main></body></html>";
        let raw = read_posting(plain, &url, "Acme");
        assert_eq!(raw.title.as_deref(), Some("Data Analyst"));
        let description = raw.description_html.unwrap();
        assert!(description.contains("Three years") && !description.contains("menu"));
    }
}
