//! The `trawl` operator CLI: talks to PostgreSQL and Redis directly, so it works while the API
//! is down.
use anyhow::{Context, bail};
use queue_core::store;
use queue_core::{Services, Trigger};
use serde_json::json;
use trawl_scrape_runs::ScrapeTask;
use trawl_scrape_runs::sites::NewSite;

mod careers;
mod dead;
mod embed;
mod pipeline;
mod runs;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Apply the database migrations.
    Migrate,
    /// Register or update sites.
    #[command(subcommand)]
    Site(SiteCommand),
    /// Recurring work of any kind: cron or interval schedules.
    #[command(subcommand)]
    Schedule(ScheduleCommand),
    /// Queue depth, in-flight, dead letters and live workers.
    #[command(subcommand)]
    Queue(QueueCommand),
    /// Dead letters: tasks set aside with the reason.
    #[command(subcommand)]
    Dead(dead::DeadCommand),
    /// Runs of every kind: list them newest first, or show one with its attempts.
    #[command(subcommand)]
    Runs(runs::RunsCommand),
    /// Cancel a queued or running run.
    Cancel { run_id: String },
    /// Search the stored postings (the API's GET /jobs/postings), newest first.
    Postings(PostingsArgs),
    /// The daily batch pipeline: definitions, batches, re-runs, rollbacks, monitoring.
    #[command(subcommand)]
    Pipeline(pipeline::PipelineCommand),
    /// The pipeline's TF-IDF models: list, activate (roll back).
    #[command(subcommand)]
    Model(pipeline::ModelCommand),
    /// Embeddings: coverage, the backfill (with a progress bar), the active model.
    #[command(subcommand)]
    Embed(embed::EmbedCommand),
    /// Companies' career pages (seed 004): companies, checks now, snapshots and diffs.
    #[command(subcommand)]
    Careers(careers::CareersCommand),
    /// Queue a manual run of a site now (the same task the API's POST /jobs/scrape queues).
    Enqueue {
        site_name: String,
        #[arg(long)]
        search_term: Option<String>,
        #[arg(long)]
        location: Option<String>,
        #[arg(long)]
        results_wanted: Option<u32>,
    },
}

#[derive(Debug, clap::Args)]
pub struct PostingsArgs {
    /// Full text, web-search syntax: `rust -java "data engineer" or python`.
    #[arg(long)]
    q: Option<String>,
    #[arg(long)]
    site: Option<String>,
    /// Company name containing this, any case.
    #[arg(long)]
    company: Option<String>,
    #[arg(long)]
    location: Option<String>,
    #[arg(long)]
    skill: Option<String>,
    /// YYYY-MM-DD.
    #[arg(long)]
    posted_since: Option<chrono::NaiveDate>,
    #[arg(long)]
    has_salary: Option<bool>,
    #[arg(long)]
    salary_at_least: Option<f64>,
    /// The `next` of the previous page.
    #[arg(long)]
    cursor: Option<String>,
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(i64).range(1..=trawl_scrape_runs::search::MAX_PAGE))]
    limit: i64,
}

#[derive(Debug, clap::Subcommand)]
pub enum SiteCommand {
    /// Insert or replace a site from JSON (a file path, or `-` for stdin): {"site_name": ...,
    /// "interval_minutes": ..., "payload": {<site definition>}, ...}. A JSON array loads several.
    Upsert { file: String },
    /// List the registered sites.
    List,
}

#[derive(Debug, clap::Subcommand)]
pub enum ScheduleCommand {
    /// Insert or replace recurring tasks from JSON (a file path, or `-` for stdin):
    /// {"name": "weekly-refresh", "kind": "pipeline_batch", "payload": {"pipeline": "daily"},
    /// "cron": "0 3 * * 1", "time_zone": "UTC"} or "interval_minutes": n instead of cron. A JSON
    /// array loads several. A kind trawl does not run, a payload its kind refuses or a "queue"
    /// other than the kind's (the default) is refused naming the field.
    Upsert {
        file: String,
    },
    List,
    /// The latest scheduler pass and the sums over every pass: runs queued and skipped,
    /// workers found dead, their tasks requeued or poisoned, runs reconciled and lost.
    Status,
    /// Stop and forget a recurring task (its past runs stay).
    Delete {
        name: String,
    },
}

#[derive(Debug, clap::Subcommand)]
pub enum QueueCommand {
    /// One queue's depth, in-flight tasks, dead letters and workers (default: scraping).
    Status {
        #[arg(long)]
        queue: Option<String>,
    },
    /// Every queue in use, with its figures.
    List,
    /// Workers stop taking tasks from the queue (producers still enqueue).
    Pause {
        #[arg(long)]
        queue: Option<String>,
    },
    Resume {
        #[arg(long)]
        queue: Option<String>,
    },
}

/// The queue an operator named, or the home queue.
pub(crate) fn queue_of(
    services: &Services,
    name: Option<&str>,
) -> anyhow::Result<queue_core::Queue> {
    match name {
        None => Ok(services.queue.clone()),
        Some(name) if !queue_core::is_queue_name(name) => {
            bail!("{name:?} is not a queue name")
        }
        Some(name) => Ok(services.queue_named(name)),
    }
}

/// The JSON objects in `file` (`-`: stdin): one object, or an array of them.
fn json_items(file: &str, what: &str) -> anyhow::Result<Vec<serde_json::Value>> {
    let text = if file == "-" {
        std::io::read_to_string(std::io::stdin()).context("cannot read stdin")?
    } else {
        std::fs::read_to_string(file).with_context(|| format!("cannot read {file}"))?
    };
    let value: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{what} file is not JSON"))?;
    Ok(match value {
        serde_json::Value::Array(items) => items,
        other => vec![other],
    })
}

/// A fresh PostgreSQL server has no `trawl` database yet: make it, so `migrate` is all a new
/// deployment needs.
async fn create_database_if_missing(database_url: &str) -> anyhow::Result<bool> {
    use sqlx::migrate::MigrateDatabase;
    if sqlx::Postgres::database_exists(database_url)
        .await
        .context("cannot reach PostgreSQL")?
    {
        return Ok(false);
    }
    sqlx::Postgres::create_database(database_url)
        .await
        .context("cannot create the database")?;
    Ok(true)
}

/// Runs one command and returns what to print.
pub async fn execute(
    services: &Services,
    database_url: &str,
    command: Command,
) -> anyhow::Result<serde_json::Value> {
    match command {
        Command::Migrate => {
            let created = create_database_if_missing(database_url).await?;
            store::MIGRATOR
                .run(&services.db)
                .await
                .context("migrations failed")?;
            Ok(json!({"migrated": true, "database_created": created}))
        }
        Command::Site(SiteCommand::Upsert { file }) => {
            let mut saved = Vec::new();
            for item in json_items(&file, "site")? {
                let site: NewSite = serde_json::from_value(item).context("not a site")?;
                let row = trawl_scrape_runs::sites::upsert_site(&services.db, &site)
                    .await
                    .with_context(|| format!("site {} refused", site.site_name))?;
                saved.push(row.site_name);
            }
            Ok(json!({"saved": saved}))
        }
        Command::Schedule(ScheduleCommand::Upsert { file }) => {
            let mut saved = Vec::new();
            for item in json_items(&file, "schedule")? {
                let mut new: store::NewRecurringTask =
                    serde_json::from_value(item).context("not a schedule")?;
                let refused = format!("schedule {} refused", new.name);
                trawl_kinds::resolve_recurring(&mut new).context(refused.clone())?;
                let row = store::upsert_recurring(&services.db, &new)
                    .await
                    .context(refused)?;
                saved.push(json!({"name": row.name, "next_run_at": row.next_run_at}));
            }
            Ok(json!({"saved": saved}))
        }
        Command::Schedule(ScheduleCommand::List) => Ok(serde_json::to_value(
            store::list_recurring(&services.db).await?,
        )?),
        Command::Schedule(ScheduleCommand::Status) => Ok(serde_json::to_value(
            trawl_schedule::status(services).await?,
        )?),
        Command::Schedule(ScheduleCommand::Delete { name }) => {
            if !store::delete_recurring(&services.db, &name).await? {
                bail!("no schedule named {name}");
            }
            Ok(json!({"name": name, "deleted": true}))
        }
        Command::Site(SiteCommand::List) => Ok(serde_json::to_value(
            trawl_scrape_runs::sites::list_sites(&services.db).await?,
        )?),
        Command::Dead(command) => dead::execute(services, command).await,
        Command::Runs(command) => runs::execute(services, command).await,
        Command::Queue(QueueCommand::Pause { queue }) => {
            let queue = queue_of(services, queue.as_deref())?;
            queue.set_paused(true).await?;
            Ok(json!({"queue": queue.keys().queue_name(), "paused": true}))
        }
        Command::Queue(QueueCommand::Resume { queue }) => {
            let queue = queue_of(services, queue.as_deref())?;
            queue.set_paused(false).await?;
            Ok(json!({"queue": queue.keys().queue_name(), "paused": false}))
        }
        Command::Cancel { run_id } => match queue_core::cancel_run(services, &run_id).await? {
            queue_core::Cancelled::BeforeStart => Ok(json!({"run_id": run_id, "status": "failed"})),
            queue_core::Cancelled::Requested => {
                Ok(json!({"run_id": run_id, "status": "cancelling"}))
            }
            queue_core::Cancelled::AlreadyFinished(status) => {
                bail!("run {run_id} already ended: {status}")
            }
            _ => bail!("no run with run_id {run_id}"),
        },
        Command::Postings(args) => {
            use trawl_scrape_runs::search::{Position, PostingQuery, search_postings};
            let after = match &args.cursor {
                Some(cursor) => Some(
                    Position::from_cursor(cursor)
                        .with_context(|| format!("--cursor {cursor:?} is not a page's `next`"))?,
                ),
                None => None,
            };
            let query = PostingQuery {
                q: args.q,
                site: args.site,
                company: args.company,
                location: args.location,
                skill: args.skill,
                posted_since: args.posted_since,
                has_salary: args.has_salary,
                salary_at_least: args.salary_at_least,
                after,
                limit: args.limit,
            };
            Ok(serde_json::to_value(
                search_postings(&services.db, &query).await?,
            )?)
        }
        Command::Pipeline(command) => pipeline::execute(services, command).await,
        Command::Model(command) => pipeline::execute_model(services, command).await,
        Command::Embed(command) => embed::execute(services, command).await,
        Command::Careers(command) => careers::execute(services, command).await,
        Command::Queue(QueueCommand::Status { queue }) => Ok(serde_json::to_value(
            queue_of(services, queue.as_deref())?.metrics().await?,
        )?),
        Command::Queue(QueueCommand::List) => {
            Ok(json!({"queues": services.all_queue_metrics().await?}))
        }
        Command::Enqueue {
            site_name,
            search_term,
            location,
            results_wanted,
        } => {
            let mut scrape = ScrapeTask {
                search_term,
                location,
                results_wanted,
                ..ScrapeTask::new(&site_name)
            };
            scrape.check().map_err(anyhow::Error::msg)?;
            let Some(site) = trawl_scrape_runs::sites::get_site(&services.db, &site_name).await?
            else {
                bail!("unknown site: {site_name}");
            };
            scrape.apply_defaults(&site.spec()?);
            let run_id = queue_core::new_run_id(Trigger::Manual);
            let task = scrape.into_task(run_id.clone(), Trigger::Manual);
            let task_id = task.task_id.clone().unwrap_or_default();
            let plan = trawl_scrape_runs::plan_for(&site);
            if let Err(err) = queue_core::submit_run(services, &task, &plan).await {
                match trawl_scrape_runs::task::site_busy(&err) {
                    Some(message) => bail!(message),
                    None => return Err(err.into()),
                }
            }
            Ok(json!({"run_id": run_id, "task_id": task_id, "status": "queued"}))
        }
    }
}
