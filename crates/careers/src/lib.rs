//! Career pages (seed 004): companies and their check schedules, snapshots of each career
//! page's job links diffed against the previous one (an idempotent diff per diff hash), a
//! detail task per added link storing a posting in `jobs`, and the years of experience each
//! posting asks for (rules first, an OpenAI-compatible chat endpoint when they find nothing).
pub mod address;
pub mod ats;
pub mod companies;
mod config;
pub mod detail;
mod error;
mod evaluation;
pub mod experience;
pub mod links;
pub mod llm;
pub mod snapshot;
pub mod snapshots;

use std::sync::Arc;

use serde::Serialize;
use sqlx::PgPool;
use telemetry::metric;
use trawl_scrape::Fetchers;

pub use companies::{Company, NewCompany};
pub use config::CareersConfig;
pub use detail::{DetailTask, Details};
pub use error::CareersError;
pub use snapshot::{SnapshotTask, Snapshots, check_slug, submit};
pub use snapshots::{Recorded, Snapshot};

/// The kind that checks a company's career page.
pub const SNAPSHOT_KIND: &str = "career_snapshot";
/// The kind that reads one added job page.
pub const DETAIL_KIND: &str = "career_detail";
/// Their queue: career pages never wait behind a scrape backlog, nor delay one.
pub const QUEUE: &str = "careers";

/// What both career kinds share in a worker.
#[derive(Clone)]
pub struct CareerKinds {
    pub fetchers: Arc<Fetchers>,
    /// Whether company URLs may point at private addresses (CAREERS_ALLOW_PRIVATE).
    pub allow_private: bool,
    /// The second reader of experience, when LLM_URL is set.
    pub llm: Option<llm::Llm>,
    /// Replaces the ATS APIs' public hosts (CAREERS_ATS_BASE_URL: the demo board, tests).
    pub ats_base_url: Option<url::Url>,
}

impl CareerKinds {
    /// Closes the browser sessions, if this process has a pool (idempotent).
    pub async fn close(&self) {
        if let Some(pool) = &self.fetchers.browser {
            pool.close().await;
        }
    }
}

/// How a posting's experience was read, as stored.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ExperienceReading {
    pub min_years: Option<f32>,
    pub max_years: Option<f32>,
    pub phrase: Option<String>,
    /// rules | llm | none
    pub method: &'static str,
    /// Why the LLM's answer was discarded, when it was.
    pub note: Option<String>,
}

/// Reads the years `text` asks for (rules, then the LLM if configured and the rules found
/// nothing) and stores the reading for `job_id`.
pub async fn store_experience(
    db: &PgPool,
    llm: Option<&llm::Llm>,
    job_id: uuid::Uuid,
    text: &str,
) -> Result<ExperienceReading, CareersError> {
    let reading = read_experience(llm, text).await;
    metrics::counter!(metric::CAREER_EXPERIENCE, "method" => reading.method).increment(1);
    sqlx::query!(
        "INSERT INTO posting_experience (job_id, min_years, max_years, phrase, method, note) \
         VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (job_id) DO UPDATE SET min_years = EXCLUDED.min_years, \
             max_years = EXCLUDED.max_years, phrase = EXCLUDED.phrase, \
             method = EXCLUDED.method, note = EXCLUDED.note, extracted_at = now()",
        job_id,
        reading.min_years,
        reading.max_years,
        reading.phrase,
        reading.method,
        reading.note,
    )
    .execute(db)
    .await?;
    Ok(reading)
}

/// Rules first; the LLM only when they find nothing and it is configured.
pub async fn read_experience(llm: Option<&llm::Llm>, text: &str) -> ExperienceReading {
    let found = |e: experience::Experience, method| ExperienceReading {
        min_years: Some(e.min_years),
        max_years: e.max_years,
        phrase: Some(e.phrase),
        method,
        note: None,
    };
    let nothing = |note: Option<String>| ExperienceReading {
        min_years: None,
        max_years: None,
        phrase: None,
        method: "none",
        note,
    };
    if let Some(rules) = experience::extract(text) {
        return found(rules, "rules");
    }
    let Some(llm) = llm else {
        return nothing(None);
    };
    match llm.read(text).await {
        llm::LlmReading::Found(e) => found(e, "llm"),
        llm::LlmReading::Nothing => nothing(Some(format!("{}: no requirement", llm.model()))),
        llm::LlmReading::Discarded(reason) => {
            metrics::counter!(metric::CAREER_EXPERIENCE, "method" => "discarded").increment(1);
            tracing::warn!(reason = %reason, "llm experience answer discarded");
            nothing(Some(reason))
        }
    }
}
