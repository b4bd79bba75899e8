//! `GET /jobs/postings`: every filter, full text, keyset pages; one posting by id; every
//! malformed parameter a 400 naming it.
use serde_json::Value;
use sqlx::PgPool;
use test_support::TestRedis;

use crate::helpers::*;

pub(crate) struct Row {
    pub title: &'static str,
    pub company: &'static str,
    pub location: &'static str,
    pub skills: &'static str,
    pub salary: Option<(f64, f64)>,
    pub posted: Option<&'static str>,
    pub site: &'static str,
    pub description: &'static str,
}

/// Inserts posting `n` (the lower, the newer).
pub(crate) async fn insert(db: &PgPool, n: usize, row: &Row) -> uuid::Uuid {
    let id = uuid::Uuid::new_v4();
    sqlx::query(
        "INSERT INTO jobs (job_id, site, external_id, job_title, company_name, location, \
             skills_required, salary_min, salary_max, has_salary, posted_date, job_description, \
             url, source, content_hash, first_seen_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::date, $12, $13, 'demo_board', 'h', \
             now() - make_interval(mins => $14))",
    )
    .bind(id)
    .bind(row.site)
    .bind(format!("ext-{n}"))
    .bind(row.title)
    .bind(row.company)
    .bind(row.location)
    .bind(row.skills)
    .bind(row.salary.map(|s| s.0))
    .bind(row.salary.map(|s| s.1))
    .bind(row.salary.is_some())
    .bind(row.posted)
    .bind(row.description)
    .bind(format!("http://127.0.0.1:9/jobs/{n}"))
    // The first inserted is the newest.
    .bind(n as i32)
    .execute(db)
    .await
    .unwrap();
    id
}

fn titles(body: &Value) -> Vec<String> {
    body["data"]["postings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["job_title"].as_str().unwrap().to_owned())
        .collect()
}

#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn postings_are_filtered_searched_and_paged(db: PgPool) {
    let redis = TestRedis::new();
    let api = spawn_api(&redis.services(&db)).await;
    let rows = [
        Row {
            title: "Senior Rust Engineer",
            company: "Ferrous Systems",
            location: "Berlin",
            skills: "rust, tokio",
            salary: Some((80_000.0, 120_000.0)),
            posted: Some("2026-11-20"),
            site: "demo",
            description: "Build durable queues",
        },
        Row {
            title: "Python Data Engineer",
            company: "Snake Co",
            location: "Paris",
            skills: "python, sql",
            salary: None,
            posted: Some("2026-11-01"),
            site: "demo",
            description: "Pipelines all day",
        },
        Row {
            title: "Frontend Developer",
            company: "Web 100% Inc",
            location: "Remote",
            skills: "typescript",
            salary: Some((50_000.0, 60_000.0)),
            posted: Some("2026-10-15"),
            site: "other",
            description: "Pages people use",
        },
    ];
    let mut ids = Vec::new();
    for (n, row) in rows.iter().enumerate() {
        ids.push(insert(&db, n, row).await);
    }
    for n in 3..28 {
        let filler = Row {
            title: "Support Specialist",
            company: "Helpdesk 1000 Ltd",
            location: "Lisbon",
            skills: "",
            salary: None,
            posted: None,
            site: "demo",
            description: "Answer tickets",
        };
        insert(&db, n, &filler).await;
    }

    for (query, expected) in [
        ("q=rust", vec!["Senior Rust Engineer"]),
        ("q=%22data%20engineer%22", vec!["Python Data Engineer"]),
        ("q=queues", vec!["Senior Rust Engineer"]),
        ("q=engineer%20-python", vec!["Senior Rust Engineer"]),
        ("company=FERROUS", vec!["Senior Rust Engineer"]),
        // `%` is matched as itself, not as a wildcard ("Helpdesk 1000" has no "100%").
        ("company=100%25", vec!["Frontend Developer"]),
        ("location=paris", vec!["Python Data Engineer"]),
        ("skill=python", vec!["Python Data Engineer"]),
        ("posted_since=2026-11-10", vec!["Senior Rust Engineer"]),
        (
            "has_salary=true",
            vec!["Senior Rust Engineer", "Frontend Developer"],
        ),
        ("salary_at_least=100000", vec!["Senior Rust Engineer"]),
        ("site=other", vec!["Frontend Developer"]),
        ("site=demo&has_salary=true", vec!["Senior Rust Engineer"]),
        ("q=astronaut", vec![]),
    ] {
        let (status, body) = read(api.get(&format!("/jobs/postings?{query}"))).await;
        assert_eq!(status, 200, "{query}: {body}");
        assert_eq!(titles(&body), expected, "{query}");
        assert_eq!(body["data"]["next"], Value::Null, "{query}");
    }

    // Every posting once, newest first, in pages of 10.
    let (mut seen, mut cursor, mut pages) = (Vec::new(), None::<String>, 0);
    loop {
        let path = match &cursor {
            Some(cursor) => format!("/jobs/postings?limit=10&cursor={cursor}"),
            None => "/jobs/postings?limit=10".to_owned(),
        };
        let (status, body) = read(api.get(&path)).await;
        assert_eq!(status, 200, "{body}");
        pages += 1;
        for posting in body["data"]["postings"].as_array().unwrap() {
            assert!(
                posting.get("job_description").is_none(),
                "the list leaves it out"
            );
            seen.push(posting["job_id"].as_str().unwrap().to_owned());
        }
        match body["data"]["next"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!((pages, seen.len()), (3, 28));
    let unique: std::collections::HashSet<_> = seen.iter().collect();
    assert_eq!(unique.len(), 28, "no posting twice");
    assert_eq!(
        seen[..3],
        [ids[0].to_string(), ids[1].to_string(), ids[2].to_string()]
    );

    let (status, body) = read(api.get(&format!("/jobs/postings/{}", ids[0]))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["job_description"], "Build durable queues");
    assert_eq!(body["data"]["salary_max"], 120_000.0);
    let today = chrono::Utc::now().date_naive();
    let posted = chrono::NaiveDate::from_ymd_opt(2026, 11, 20).unwrap();
    assert_eq!(
        body["data"]["days_since_posted"],
        (today - posted).num_days(),
        "seed 002's computed field"
    );
    let missing = uuid::Uuid::new_v4();
    expect_error(
        api.get(&format!("/jobs/postings/{missing}")),
        404,
        "posting_not_found",
        "no posting",
    )
    .await;
}

#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn malformed_posting_parameters_get_a_400_naming_them(db: PgPool) {
    let redis = TestRedis::new();
    let api = spawn_api(&redis.services(&db)).await;
    for (query, fragment) in [
        ("posted_since=yesterday", "posted_since: expected a date"),
        ("posted_since=2026-13-01", "posted_since"),
        ("has_salary=maybe", "has_salary: expected true or false"),
        ("salary_at_least=-1", "salary_at_least"),
        ("salary_at_least=NaN", "salary_at_least"),
        ("salary_at_least=lots", "salary_at_least"),
        ("limit=0", "limit: expected a whole number from 1 to 100"),
        ("limit=1000", "limit"),
        ("limit=ten", "limit"),
        (
            "cursor=garbage",
            "cursor: expected the `next` of a previous page",
        ),
        ("q=a%00b", "q"),
        ("colour=blue", "unknown field `colour`"),
    ] {
        expect_error(
            api.get(&format!("/jobs/postings?{query}")),
            400,
            "invalid_request",
            fragment,
        )
        .await;
    }
    expect_error(
        api.get("/jobs/postings/not-a-uuid"),
        400,
        "invalid_request",
        "job_id: expected a UUID",
    )
    .await;
}
