//! The dashboard's career pages panel (seed 004): the watched companies and their schedules,
//! the latest checks with their diffs and warnings, and the latest mails (no addresses shown).
//! Live through htmx polling.
use axum::Router;
use axum::extract::State;
use axum::routing::get;
use maud::{Markup, html};

use crate::dashboard::page;
use crate::{ApiError, AppState};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/ui/careers", get(careers_page))
        .route("/ui/careers/panel", get(careers_panel))
}

pub async fn careers_page() -> Markup {
    page(
        "careers",
        html! {
            h2 { "Career pages" }
            p { "Companies' own career pages: each check diffs the job links against the previous one; added links are scraped, removed ones deactivated. "
                code { "trawl careers snapshot COMPANY" } " checks one now; " code { "trawl careers mails" } " lists the digests." }
            div id="careers" hx-get="/ui/careers/panel" hx-trigger="load, every 5s" { "loading…" }
        },
    )
}

pub async fn careers_panel(State(state): State<AppState>) -> Result<Markup, ApiError> {
    let db = &state.services.db;
    let companies = trawl_careers::companies::list(db).await?;
    let snapshots = trawl_careers::snapshots::recent(db, None, 15).await?;
    let mails = trawl_digests::mails::recent(db, 10).await?;
    Ok(html! {
        h3 { "Companies" }
        table {
            tr { th { "company" } th { "page" } th { "fetch" } th { "schedule" } th { "next check" } th { "links" } }
            @for c in &companies {
                tr {
                    td { (c.slug) @if !c.enabled { " (disabled)" } }
                    td { a href=(c.url) { (c.url) } }
                    td { (c.fetch) }
                    td { @if let Some(cron) = &c.cron { (cron) " " (c.time_zone.as_deref().unwrap_or("UTC")) } @else { "every " (c.interval_minutes.unwrap_or_default()) " min" } }
                    td { (c.next_check_at.map(|t| t.format("%F %T").to_string()).unwrap_or_default()) }
                    td { (c.links.map(|l| l.to_string()).unwrap_or_else(|| "not checked".into())) }
                }
            }
        }
        h3 { "Latest checks" }
        table {
            tr { th { "when" } th { "company" } th { "links" } th { "pages" } th { "added" } th { "removed" } th { "diff" } th { "warning" } }
            @for s in &snapshots {
                tr {
                    td { (s.taken_at.format("%F %T")) }
                    td { (s.company) }
                    td { (s.links) }
                    td { (s.pages) }
                    td title=(s.added_links.join("\n")) { (s.added) }
                    td title=(s.removed_links.join("\n")) { (s.removed) }
                    td { @if s.diff_enqueued { "enqueued " } (s.diff_hash.as_deref().map(|h| &h[..8.min(h.len())]).unwrap_or("")) }
                    td class=(if s.warning.is_some() { "failed" } else { "" }) { (s.warning.as_deref().unwrap_or("")) }
                }
            }
        }
        h3 { "Latest mails" }
        table {
            tr { th { "when" } th { "subscriber" } th { "kind" } th { "state" } th { "postings" } th { "sends" } th { "SMTP answer" } }
            @for m in &mails {
                tr {
                    td { (m.created_at.format("%F %T")) }
                    td { "#" (m.subscriber_id) }
                    td { (m.kind) }
                    td class=(match m.state.as_str() { "sent" => "succeeded", "failed" => "failed", _ => "running" }) { (m.state) }
                    td { (m.postings) }
                    td { (m.sends) }
                    td { code { (m.smtp_response.as_deref().unwrap_or("")) } }
                }
            }
        }
    })
}
