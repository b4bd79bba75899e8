//! `trawl runs`: the ledger's runs of every kind, as the API's `GET /runs` and
//! `GET /runs/{run_id}` show them.
use anyhow::{Context, bail};
use queue_core::{Services, store};
use serde_json::json;
use trawl_scrape_runs::recent::{RunFilter, RunPosition, runs_page};

#[derive(Debug, clap::Subcommand)]
pub enum RunsCommand {
    /// Newest first (the API's GET /runs), filtered; `next` is the cursor of the next page.
    List {
        /// The kind's name: scrape, pipeline_batch, embed_batch, ...
        #[arg(long)]
        kind: Option<String>,
        /// queued, running, succeeded, partial or failed.
        #[arg(long, value_parser = parse_status)]
        status: Option<store::RunStatus>,
        /// A scrape's site.
        #[arg(long)]
        site: Option<String>,
        /// The `next` of the previous page.
        #[arg(long)]
        cursor: Option<String>,
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(i64).range(1..=trawl_scrape_runs::recent::MAX_RUNS_PAGE))]
        limit: i64,
    },
    /// One run with its attempts (the API's GET /runs/{run_id}, without the postings).
    Show { run_id: String },
}

fn parse_status(text: &str) -> Result<store::RunStatus, String> {
    store::RunStatus::parse(text).ok_or_else(|| {
        format!("expected one of queued, running, succeeded, partial, failed; got {text:?}")
    })
}

/// The ledger's runs, of every kind.
pub(crate) async fn execute(
    services: &Services,
    command: RunsCommand,
) -> anyhow::Result<serde_json::Value> {
    match command {
        RunsCommand::List {
            kind,
            status,
            site,
            cursor,
            limit,
        } => {
            let after = match &cursor {
                Some(cursor) => Some(
                    RunPosition::from_cursor(cursor)
                        .with_context(|| format!("--cursor {cursor:?} is not a page's `next`"))?,
                ),
                None => None,
            };
            let filter = RunFilter {
                site,
                kind,
                status,
                after,
            };
            Ok(serde_json::to_value(
                runs_page(&services.db, &filter, limit).await?,
            )?)
        }
        RunsCommand::Show { run_id } => {
            let Some(run) = store::get_run(&services.db, &run_id).await? else {
                bail!("no run with run_id {run_id}");
            };
            let attempts = store::run_attempts(&services.db, &run_id).await?;
            Ok(json!({"run": run, "attempts": attempts}))
        }
    }
}
