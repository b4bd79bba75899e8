//! The collect stage: every source's searches (queries × locations) through the scrape path's
//! own fetching, kept raw for the validate stage.
use trawl_scrape::intake::{Collected, KeepRaw};
use trawl_scrape::{Fetchers, Politeness, ScrapeReport, ScrapeRequest};

use crate::definition::{PipelineDefinition, SourceSpec};
use crate::error::StageError;

/// What the collect stage read, and how each search went.
pub struct Collection {
    pub records: Vec<Collected>,
    pub searches: Vec<serde_json::Value>,
    pub failed_pages: u32,
}

/// The searches of one source: its queries × locations, or the site's own defaults.
fn searches(source: &SourceSpec) -> Vec<ScrapeRequest> {
    let wanted = source.max_per_query;
    if source.queries.is_empty() && source.locations.is_empty() {
        return vec![ScrapeRequest {
            results_wanted: wanted,
            ..Default::default()
        }];
    }
    let queries: Vec<Option<&String>> = match source.queries.as_slice() {
        [] => vec![None],
        many => many.iter().map(Some).collect(),
    };
    let places: Vec<Option<&String>> = match source.locations.as_slice() {
        [] => vec![None],
        many => many.iter().map(Some).collect(),
    };
    queries
        .iter()
        .flat_map(|q| {
            places.iter().map(move |l| ScrapeRequest {
                search_term: q.cloned(),
                location: l.cloned(),
                results_wanted: wanted,
            })
        })
        .collect()
}

pub async fn collect(
    db: &sqlx::PgPool,
    fetchers: &Fetchers,
    definition: &PipelineDefinition,
    retry_base_delay: std::time::Duration,
) -> Result<Collection, StageError> {
    let mut collection = Collection {
        records: Vec::new(),
        searches: Vec::new(),
        failed_pages: 0,
    };
    for source in &definition.sources {
        let site = trawl_scrape_runs::sites::get_site(db, &source.site)
            .await
            .map_err(|err| StageError::transient(format!("reading site {}: {err}", source.site)))?
            .ok_or_else(|| {
                StageError::permanent(format!("site {:?} is not registered", source.site))
            })?;
        let spec = site
            .spec()
            .map_err(|err| StageError::permanent(format!("site {}: {err}", source.site)))?;
        let politeness = Politeness {
            min_pause: std::time::Duration::from_secs(site.min_pause_seconds.max(0) as u64),
            max_pause: std::time::Duration::from_secs(site.max_pause_seconds.max(0) as u64),
            max_retries: site.max_retries.max(0) as u32,
            retry_base_delay,
        };
        for request in searches(source) {
            let (sink, mut pages) = tokio::sync::mpsc::channel(16);
            let mut report = ScrapeReport::default();
            let reading = async {
                let mut found = Vec::new();
                while let Some(page) = pages.recv().await {
                    found.extend(page);
                }
                found
            };
            let scraping = trawl_scrape::scrape_into(
                &source.site,
                &spec,
                &request,
                &politeness,
                fetchers,
                &KeepRaw,
                sink,
                &mut report,
            );
            let ((), found) = tokio::join!(scraping, reading);
            let status = report.status();
            let failed = status == trawl_scrape::ScrapeStatus::Failed;
            collection.failed_pages += report.page_errors.len() as u32;
            collection.searches.push(serde_json::json!({
                "site": source.site, "query": request.search_term, "location": request.location,
                "collected": found.len(), "pages": report.completed_pages,
                "page_errors": report.page_errors,
            }));
            if failed {
                let what = format!(
                    "{} (query {:?}, location {:?}): every page failed: {}",
                    source.site,
                    request.search_term,
                    request.location,
                    report
                        .page_errors
                        .first()
                        .map(|e| e.error.as_str())
                        .unwrap_or("no page")
                );
                return Err(if report.failed_transiently() {
                    StageError::transient(what)
                } else {
                    StageError::permanent(what)
                });
            }
            collection.records.extend(found);
        }
    }
    Ok(collection)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_times_locations() {
        let source = SourceSpec {
            site: "adzuna".into(),
            queries: vec!["data engineer".into()],
            locations: vec!["Paris".into(), "Lyon".into(), "Marseille".into()],
            max_per_query: 100,
        };
        let all = searches(&source);
        assert_eq!(all.len(), 3);
        assert_eq!(all[2].location.as_deref(), Some("Marseille"));
        assert!(
            all.iter()
                .all(|r| r.search_term.as_deref() == Some("data engineer")
                    && r.results_wanted == 100)
        );
        let plain = SourceSpec {
            queries: vec![],
            locations: vec![],
            ..source
        };
        assert_eq!(searches(&plain).len(), 1);
    }
}
