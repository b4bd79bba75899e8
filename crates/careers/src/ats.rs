//! ATS boards a career page links to (Greenhouse, Lever, Ashby) are read through the scrape
//! kind's own sources — their JSON APIs — instead of scraping their pages: each board becomes a
//! site (`ats-<ats>-<board>`, on its own schedule) and its first scrape is queued at once.
use queue_core::{Services, Trigger};
use serde::Serialize;
use trawl_scrape_runs::ScrapeTask;
use trawl_scrape_runs::sites::{NewSite, get_site, upsert_site};
use url::Url;

use crate::CareersError;
use crate::companies::Company;
use crate::links::AtsBoard;

/// How often an ATS site found on a career page is scraped (minutes).
pub const ATS_INTERVAL_MINUTES: i32 = 360;

/// A board followed through its API.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct FollowedBoard {
    pub ats: String,
    pub board: String,
    pub site_name: String,
    /// The run queued for a board seen for the first time (None: the site existed already, or
    /// a run of it was active).
    pub run_id: Option<String>,
}

/// The site name of a board.
pub fn site_name(board: &AtsBoard) -> String {
    format!("ats-{}-{}", board.ats, crate::companies::slug(&board.board))
}

/// Registers a site for every API-backed board not yet known and queues its first scrape.
/// `api_base` replaces the ATS's public API host (the demo board's fixtures, tests).
pub async fn follow(
    services: &Services,
    company: &Company,
    boards: impl IntoIterator<Item = &AtsBoard>,
    api_base: Option<&Url>,
) -> Result<Vec<FollowedBoard>, CareersError> {
    let mut followed = Vec::new();
    for board in boards.into_iter().filter(|b| b.has_api()) {
        let name = site_name(board);
        let mut run_id = None;
        if get_site(&services.db, &name).await?.is_none() {
            let mut payload = serde_json::json!({
                "source": board.ats, "board": board.board, "company": company.name,
            });
            if let Some(base) = api_base {
                let base = base
                    .join(&board.ats)
                    .map_err(|e| CareersError::Invalid(e.to_string()))?;
                payload["base_url"] = base.to_string().into();
            }
            let site: NewSite = serde_json::from_value(serde_json::json!({
                "site_name": name, "interval_minutes": ATS_INTERVAL_MINUTES, "payload": payload,
                "min_pause_seconds": 0, "max_pause_seconds": 1,
            }))
            .map_err(|e| CareersError::Invalid(e.to_string()))?;
            let site = upsert_site(&services.db, &site).await?;
            let mut scrape = ScrapeTask::new(&name);
            scrape.apply_defaults(&site.spec()?);
            let id = queue_core::new_run_id(Trigger::Schedule);
            let task = scrape.into_task(id.clone(), Trigger::Schedule);
            match queue_core::submit_run(services, &task, &trawl_scrape_runs::plan_for(&site)).await
            {
                Ok(()) => run_id = Some(id),
                Err(queue_core::SubmitError::Busy { .. }) => {}
                Err(err) => return Err(err.into()),
            }
        }
        followed.push(FollowedBoard {
            ats: board.ats.clone(),
            board: board.board.clone(),
            site_name: name,
            run_id,
        });
    }
    Ok(followed)
}
