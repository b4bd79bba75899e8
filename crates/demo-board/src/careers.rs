//! Companies' own career pages, for seed 004's flow: any company name has one, in two
//! flavours — `/careers/{company}` server-rendered with "next page" links, and
//! `/careers/{company}/js` rendered by JavaScript with a "Load more" button — plus a detail page
//! per posting (JSON-LD JobPosting), and a control endpoint that adds and removes postings or
//! empties the page (a layout change), so a snapshot, a change and a diff run on one machine.
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::server::DemoBoard;

/// Postings per server-rendered page and per "load more" step.
pub const CAREERS_PAGE_SIZE: usize = 4;
/// Postings a company's page starts with.
pub const INITIAL_POSTINGS: u32 = 6;

/// Titles and the requirement sentences their descriptions carry (the experience rules read
/// them back).
const ROLES: &[(&str, &str)] = &[
    (
        "Backend Engineer",
        "You have 3+ years of experience with Rust or Go.",
    ),
    (
        "Data Analyst",
        "At least two years of experience with SQL and dashboards.",
    ),
    (
        "Product Designer",
        "Between 4 and 6 years of experience designing B2B products.",
    ),
    (
        "Site Reliability Engineer",
        "5+ years running Kubernetes in production.",
    ),
    (
        "Développeur Frontend",
        "Minimum 2 ans d'expérience en TypeScript.",
    ),
    (
        "Support Specialist",
        "A first job in customer support is welcome; we train you.",
    ),
    (
        "Engineering Manager",
        "7 years of experience in software, 2 of them leading a team.",
    ),
    (
        "Machine Learning Engineer",
        "3-5 yrs experience shipping models to production.",
    ),
];

#[derive(Debug, Clone, Serialize)]
pub struct CareerPosting {
    pub id: u32,
    pub title: String,
    pub requirement: String,
    pub location: String,
}

#[derive(Debug, Clone, Default)]
struct CareerCompany {
    postings: BTreeMap<u32, CareerPosting>,
    next_id: u32,
    /// The page shows no links at all (a layout change, an outage page).
    empty: bool,
}

/// Every company's postings, created at first visit.
#[derive(Clone, Default)]
pub struct Careers(Arc<Mutex<BTreeMap<String, CareerCompany>>>);

fn posting(company: &str, id: u32, title: Option<String>) -> CareerPosting {
    let (role, requirement) = ROLES[(id as usize + company.len()) % ROLES.len()];
    CareerPosting {
        id,
        title: title.unwrap_or_else(|| role.to_owned()),
        requirement: requirement.to_owned(),
        location: ["Paris", "Lyon", "Remote", "Berlin"][id as usize % 4].to_owned(),
    }
}

impl Careers {
    fn with<T>(&self, company: &str, f: impl FnOnce(&mut CareerCompany) -> T) -> T {
        let mut all = self.0.lock().expect("careers lock");
        let entry = all.entry(company.to_owned()).or_insert_with(|| {
            let mut fresh = CareerCompany::default();
            for _ in 0..INITIAL_POSTINGS {
                fresh.next_id += 1;
                let id = fresh.next_id;
                fresh.postings.insert(id, posting(company, id, None));
            }
            fresh
        });
        f(entry)
    }

    /// The postings a company's page lists now (none while it is emptied).
    pub fn listed(&self, company: &str) -> Vec<CareerPosting> {
        self.with(company, |c| {
            if c.empty {
                Vec::new()
            } else {
                c.postings.values().cloned().collect()
            }
        })
    }

    /// Adds a posting; returns it.
    pub fn add(&self, company: &str, title: Option<String>) -> CareerPosting {
        self.with(company, |c| {
            c.next_id += 1;
            let added = posting(company, c.next_id, title);
            c.postings.insert(added.id, added.clone());
            added
        })
    }

    pub fn remove(&self, company: &str, id: u32) -> bool {
        self.with(company, |c| c.postings.remove(&id).is_some())
    }

    pub fn set_empty(&self, company: &str, empty: bool) {
        self.with(company, |c| c.empty = empty);
    }

    fn get(&self, company: &str, id: u32) -> Option<CareerPosting> {
        self.with(company, |c| c.postings.get(&id).cloned())
    }
}

pub(crate) fn routes() -> Router<DemoBoard> {
    Router::new()
        .route("/careers/{company}", get(server_rendered))
        .route("/careers/{company}/js", get(js_rendered))
        .route("/careers/{company}/more", get(more))
        .route("/careers/{company}/jobs/{id}", get(detail))
        .route("/_admin/careers/{company}/postings", post(add))
        .route("/_admin/careers/{company}/postings/{id}", delete(remove))
        .route("/_admin/careers/{company}/empty", put(empty))
}

#[derive(Deserialize)]
struct PageQuery {
    page: Option<usize>,
    offset: Option<usize>,
    /// `greenhouse`, `lever` or `ashby`: the page also links to the company's board there.
    ats: Option<String>,
}

fn link(company: &str, p: &CareerPosting) -> String {
    // A tracking parameter and a fragment on some links: trawl must see one posting.
    let tracking = if p.id.is_multiple_of(2) {
        "?utm_source=careers#apply"
    } else {
        ""
    };
    format!(
        r#"<li class="job"><a href="/careers/{company}/jobs/{id}{tracking}">{title}</a> <span class="location">{location}</span></li>"#,
        id = p.id,
        title = crate::html::escape(&p.title),
        location = p.location,
    )
}

/// A server-rendered career page; the board's listing faults (delays, errors) apply to it.
async fn server_rendered(
    State(board): State<DemoBoard>,
    Path(company): Path<String>,
    Query(query): Query<PageQuery>,
) -> Response {
    let page = query.page.unwrap_or(1).max(1);
    let fault = board.faults.take(Some(page as u32), None);
    if let Some(response) = crate::server::apply_fault(fault).await {
        return response;
    }
    let listed = board.careers.listed(&company);
    let items: String = listed
        .iter()
        .skip((page - 1) * CAREERS_PAGE_SIZE)
        .take(CAREERS_PAGE_SIZE)
        .map(|p| link(&company, p))
        .collect();
    let next = if page * CAREERS_PAGE_SIZE < listed.len() {
        format!(
            r#"<a class="next" href="/careers/{company}?page={}">Next</a>"#,
            page + 1
        )
    } else {
        String::new()
    };
    let board = match query.ats.as_deref() {
        Some("greenhouse") => format!(
            r#"<a href="https://boards.greenhouse.io/{company}">More roles on Greenhouse</a>"#
        ),
        Some("lever") => {
            format!(r#"<a href="https://jobs.lever.co/{company}">More roles on Lever</a>"#)
        }
        Some("ashby") => {
            format!(r#"<a href="https://jobs.ashbyhq.com/{company}">More roles on Ashby</a>"#)
        }
        _ => String::new(),
    };
    Html(crate::html::page(
        &format!("Careers at {company}"),
        &format!(
            r#"<nav><a href="/">Home</a> <a href="/careers/{company}/about">About us</a></nav><h1>Join {company}</h1><ul id="jobs">{items}</ul>{next}{board}"#
        ),
    ))
    .into_response()
}

/// An empty list and a script that fills it from `/more`, 4 at a time per "Load more" click.
async fn js_rendered(Path(company): Path<String>) -> Html<String> {
    let script = r#"
const list = document.getElementById('jobs');
const button = document.getElementById('load-more');
let offset = 0;
async function load() {
  const answer = await (await fetch(location.pathname.replace(/\/js$/, '/more') + '?offset=' + offset)).json();
  for (const job of answer.items) {
    const li = document.createElement('li');
    li.className = 'job';
    const a = document.createElement('a');
    a.href = job.url; a.textContent = job.title;
    li.appendChild(a); list.appendChild(li);
  }
  offset += answer.items.length;
  button.style.display = answer.has_more ? '' : 'none';
  list.setAttribute('data-loaded', 'true');
}
button.addEventListener('click', load);
load();
"#;
    Html(crate::html::page(
        &format!("Careers at {company}"),
        &format!(
            r#"<h1>Join {company}</h1><ul id="jobs"></ul><button id="load-more" style="display:none">Load more</button><script>{script}</script>"#
        ),
    ))
}

async fn more(
    State(board): State<DemoBoard>,
    Path(company): Path<String>,
    Query(query): Query<PageQuery>,
) -> Json<serde_json::Value> {
    let listed = board.careers.listed(&company);
    let offset = query.offset.unwrap_or(0);
    let items: Vec<serde_json::Value> = listed
        .iter()
        .skip(offset)
        .take(CAREERS_PAGE_SIZE)
        .map(|p| json!({"title": p.title, "url": format!("/careers/{company}/jobs/{}", p.id)}))
        .collect();
    let has_more = offset + items.len() < listed.len();
    Json(json!({"items": items, "has_more": has_more}))
}

async fn detail(
    State(board): State<DemoBoard>,
    Path((company, id)): Path<(String, u32)>,
) -> Response {
    let Some(p) = board.careers.get(&company, id) else {
        return (
            StatusCode::NOT_FOUND,
            Html("<h1>This job is gone</h1>".to_owned()),
        )
            .into_response();
    };
    let description = format!(
        "<p>{company} is hiring a {title} in {location}.</p><p>{requirement}</p>\
         <p>We were founded 12 years ago and have 4 years of runway.</p>",
        title = crate::html::escape(&p.title),
        location = p.location,
        requirement = crate::html::escape(&p.requirement),
    );
    let mut ld = json!({"@context": "https://schema.org", "@type": "JobPosting",
        "title": p.title, "description": description,
        "hiringOrganization": {"@type": "Organization", "name": company},
        "datePosted": chrono::Utc::now().date_naive().to_string()});
    if p.location == "Remote" {
        ld["jobLocationType"] = json!("TELECOMMUTE");
    } else {
        ld["jobLocation"] = json!({"@type": "Place", "address": {"@type": "PostalAddress",
            "addressLocality": p.location}});
    }
    let ld = ld.to_string().replace("</", "<\\/");
    Html(crate::html::page(
        &p.title,
        &format!(
            r#"<script type="application/ld+json">{ld}</script><main><h1>{}</h1>{description}</main>"#,
            crate::html::escape(&p.title)
        ),
    ))
    .into_response()
}

#[derive(Deserialize)]
struct NewPosting {
    title: Option<String>,
}

async fn add(
    State(board): State<DemoBoard>,
    Path(company): Path<String>,
    body: Option<Json<NewPosting>>,
) -> Json<CareerPosting> {
    Json(board.careers.add(&company, body.and_then(|b| b.0.title)))
}

async fn remove(
    State(board): State<DemoBoard>,
    Path((company, id)): Path<(String, u32)>,
) -> StatusCode {
    if board.careers.remove(&company, id) {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::NOT_FOUND
    }
}

#[derive(Deserialize)]
struct Empty {
    empty: bool,
}

async fn empty(
    State(board): State<DemoBoard>,
    Path(company): Path<String>,
    Json(body): Json<Empty>,
) -> StatusCode {
    board.careers.set_empty(&company, body.empty);
    StatusCode::NO_CONTENT
}
