//! `trawl careers …`: companies (add, import a CSV, list, enable/disable), a check now, and the
//! latest snapshots with their diffs.
use std::path::PathBuf;

use anyhow::Context;
use queue_core::Services;
use serde_json::json;
use trawl_careers::{NewCompany, companies};
use trawl_digests::{NewSubscriber, subscribers};
use trawl_scrape::FetchMode;

#[derive(Debug, clap::Subcommand)]
pub enum CareersCommand {
    /// Every watched company: page, schedule, last check.
    List,
    /// Add a company (or replace the one with the same slug) and its check schedule.
    Add {
        name: String,
        url: String,
        /// `browser` for pages rendered by JavaScript.
        #[arg(long, value_enum, default_value = "http")]
        fetch: Fetch,
        /// Browser: the CSS selector that means "rendered".
        #[arg(long)]
        wait_for: Option<String>,
        /// Browser: a "load more" button, clicked until it is gone.
        #[arg(long)]
        load_more: Option<String>,
        /// A "next page" link, followed.
        #[arg(long)]
        next_page: Option<String>,
        /// Pages (or "load more" clicks + 1) per check, 1-50; default 5.
        #[arg(long)]
        max_pages: Option<i32>,
        /// Check every N minutes (default 360), or on --cron.
        #[arg(long, conflicts_with = "cron")]
        every: Option<i32>,
        /// A 5-field cron expression, e.g. "0 8 * * 1-5".
        #[arg(long)]
        cron: Option<String>,
        /// The IANA time zone of --cron, e.g. Europe/Paris.
        #[arg(long, requires = "cron")]
        time_zone: Option<String>,
        #[command(flatten)]
        private: AllowPrivate,
    },
    /// Import `company,url` rows (with a header): all of them, or none with every bad line named.
    Import {
        csv: PathBuf,
        #[command(flatten)]
        private: AllowPrivate,
    },
    /// Stop checking a company (its schedule too).
    Disable {
        company: String,
    },
    Enable {
        company: String,
    },
    /// Check a company's career page now; prints the run_id.
    Snapshot {
        company: String,
    },
    /// Subscribe an address to digests: it gets a confirmation mail; nothing else is sent
    /// before its link is followed.
    Subscribe {
        email: String,
        /// Postings whose title or text holds this word (repeatable).
        #[arg(long = "keyword")]
        keywords: Vec<String>,
        /// A company's slug or name (repeatable).
        #[arg(long = "company")]
        companies: Vec<String>,
        /// A location (repeatable).
        #[arg(long = "location")]
        locations: Vec<String>,
        #[arg(long)]
        remote_only: bool,
        /// Postings asking for at most this many years (those that say nothing are kept).
        #[arg(long)]
        max_years: Option<f32>,
        #[arg(long)]
        salary_at_least: Option<f64>,
        /// When digests go out (default "0 8 * * *").
        #[arg(long)]
        cron: Option<String>,
        /// The IANA time zone of --cron (default UTC).
        #[arg(long)]
        time_zone: Option<String>,
    },
    /// Every subscriber and its filters.
    Subscribers,
    /// Stop an address's digests.
    Unsubscribe {
        email: String,
    },
    /// Send a subscriber's digest now; prints the run_id.
    Digest {
        subscriber: i64,
    },
    /// The latest mails: Message-ID, state, sends, the SMTP server's answer.
    Mails {
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(i64).range(1..=200))]
        limit: i64,
    },
    /// The latest checks: links, added, removed, warnings, diff_enqueued.
    Snapshots {
        #[arg(long)]
        company: Option<String>,
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(i64).range(1..=200))]
        limit: i64,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Fetch {
    Http,
    Browser,
}

#[derive(Debug, clap::Args)]
pub struct AllowPrivate {
    /// Allow URLs on loopback or private networks (the demo board); refused otherwise.
    #[arg(long = "allow-private", env = "CAREERS_ALLOW_PRIVATE")]
    allow: bool,
}

pub async fn execute(
    services: &Services,
    command: CareersCommand,
) -> anyhow::Result<serde_json::Value> {
    let db = &services.db;
    Ok(match command {
        CareersCommand::List => json!({"companies": companies::list(db).await?}),
        CareersCommand::Add {
            name,
            url,
            fetch,
            wait_for,
            load_more,
            next_page,
            max_pages,
            every,
            cron,
            time_zone,
            private,
        } => {
            let new = NewCompany {
                name,
                url,
                fetch: match fetch {
                    Fetch::Http => FetchMode::Http,
                    Fetch::Browser => FetchMode::Browser,
                },
                wait_for,
                load_more,
                next_page,
                max_pages,
                interval_minutes: every,
                cron,
                time_zone,
            };
            json!({"company": companies::add(db, new, private.allow).await?})
        }
        CareersCommand::Import { csv, private } => {
            let text = std::fs::read_to_string(&csv)
                .with_context(|| format!("cannot read {}", csv.display()))?;
            json!({"imported": companies::import_csv(db, &text, private.allow).await?})
        }
        CareersCommand::Disable { company } => enable(services, &company, false).await?,
        CareersCommand::Enable { company } => enable(services, &company, true).await?,
        CareersCommand::Snapshot { company } => {
            if companies::get(db, &company).await?.is_none() {
                anyhow::bail!("no company {company:?} (see `trawl careers list`)");
            }
            json!({"run_id": trawl_careers::submit(services, &company).await?, "company": company})
        }
        CareersCommand::Subscribe {
            email,
            keywords,
            companies,
            locations,
            remote_only,
            max_years,
            salary_at_least,
            cron,
            time_zone,
        } => {
            let new = NewSubscriber {
                email,
                keywords,
                companies,
                locations,
                remote_only,
                max_min_years: max_years,
                salary_at_least,
                cron,
                time_zone,
            };
            let (subscriber, run_id) = subscribers::subscribe(services, new).await?;
            json!({"subscriber": subscriber, "confirmation_run_id": run_id})
        }
        CareersCommand::Subscribers => json!({"subscribers": subscribers::list(db).await?}),
        CareersCommand::Unsubscribe { email } => {
            let token = subscribers::token_of(db, &email).await?;
            json!({"subscriber": subscribers::unsubscribe(db, token).await?})
        }
        CareersCommand::Digest { subscriber } => {
            if subscribers::get(db, subscriber).await?.is_none() {
                anyhow::bail!("no subscriber {subscriber} (see `trawl careers subscribers`)");
            }
            json!({"run_id": trawl_digests::digest::submit(services, subscriber).await?})
        }
        CareersCommand::Mails { limit } => {
            json!({"mails": trawl_digests::mails::recent(db, limit).await?})
        }
        CareersCommand::Snapshots { company, limit } => json!({
            "snapshots": trawl_careers::snapshots::recent(db, company.as_deref(), limit).await?
        }),
    })
}

async fn enable(
    services: &Services,
    company: &str,
    enabled: bool,
) -> anyhow::Result<serde_json::Value> {
    if !companies::set_enabled(&services.db, company, enabled).await? {
        anyhow::bail!("no company {company:?} (see `trawl careers list`)");
    }
    Ok(json!({"company": company, "enabled": enabled}))
}
