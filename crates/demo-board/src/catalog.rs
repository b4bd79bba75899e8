//! The demo board's postings: 240 of them, generated the same way every time so tests can
//! assert exact counts.
use chrono::{Days, NaiveDate};

pub const POSTING_COUNT: u32 = 240;

const TITLES: &[(&str, &str)] = &[
    (
        "Rust Engineer",
        "Build services in Rust and PostgreSQL; Docker and Kubernetes in production.",
    ),
    (
        "Data Engineer",
        "Own pipelines in Python, SQL and Airflow on AWS; Spark for the heavy lifting.",
    ),
    (
        "Backend Developer",
        "Design APIs in Go and PostgreSQL, deployed with Docker on GCP.",
    ),
    (
        "Frontend Developer",
        "Craft interfaces in TypeScript and React with a design system.",
    ),
    (
        "Machine Learning Engineer",
        "Train and ship models in Python with Pandas and machine learning tooling on AWS.",
    ),
    (
        "DevOps Engineer",
        "Run Kubernetes, Terraform and Linux fleets across AWS and Azure.",
    ),
    (
        "Data Analyst",
        "Turn SQL and Excel into answers; dashboards in Tableau.",
    ),
    (
        "Java Developer",
        "Maintain Java and Kotlin services backed by Kafka and MySQL.",
    ),
    (
        "Site Reliability Engineer",
        "Keep Rust and Go systems healthy on Linux with Redis and Kubernetes.",
    ),
    (
        "Full Stack Developer",
        "Ship features end to end with Node.js, React and PostgreSQL.",
    ),
    (
        "Platform Engineer",
        "Build internal platforms with Go, Terraform and Kubernetes.",
    ),
    (
        "Python Developer",
        "Write Django services in Python with Redis and PostgreSQL.",
    ),
];
const LEVELS: &[&str] = &["", "Senior ", "Junior ", "Lead "];
const COMPANIES: &[&str] = &[
    "Acme Robotics",
    "Blue Harbor",
    "Cobalt Labs",
    "Driftwood Analytics",
    "Ember Systems",
    "Fjord Software",
    "Granite Health",
    "Helix Finance",
    "Indigo Media",
    "Juniper Energy",
];
const LOCATIONS: &[&str] = &[
    "Paris",
    "Lyon",
    "Berlin",
    "London",
    "Remote",
    "Marseille",
    "Amsterdam",
    "Madrid",
];
const COUNTRIES: &[&str] = &["FR", "FR", "DE", "GB", "", "FR", "NL", "ES"];
/// Newest posting date; fixed so the board never changes between runs.
const NEWEST: NaiveDate = NaiveDate::from_ymd_opt(2026, 11, 20).expect("valid date");

#[derive(Debug, Clone, PartialEq)]
pub struct DemoPosting {
    pub id: u32,
    pub title: String,
    pub company: &'static str,
    pub location: &'static str,
    pub country: &'static str,
    pub posted: NaiveDate,
    pub description: String,
    /// Yearly EUR (min, max), on two postings in three.
    pub salary: Option<(u32, u32)>,
}

impl DemoPosting {
    pub fn is_remote(&self) -> bool {
        self.location == "Remote"
    }
}

pub fn posting(id: u32) -> Option<DemoPosting> {
    if !(1..=POSTING_COUNT).contains(&id) {
        return None;
    }
    let i = id as usize;
    let (title, summary) = TITLES[i % TITLES.len()];
    let level = LEVELS[(i / TITLES.len()) % LEVELS.len()];
    let company = COMPANIES[(i * 7) % COMPANIES.len()];
    let place = (i * 3) % LOCATIONS.len();
    Some(DemoPosting {
        id,
        title: format!("{level}{title}"),
        company,
        location: LOCATIONS[place],
        country: COUNTRIES[place],
        posted: NEWEST - Days::new((i % 45) as u64),
        description: format!(
            "<p>{company} is hiring a {level}{title}.</p><p>{summary}</p><ul><li>Posting #{id}</li></ul>"
        ),
        salary: (!i.is_multiple_of(3)).then(|| {
            let min = 40_000 + (i as u32 % 20) * 2_500;
            (min, min + 20_000)
        }),
    })
}

/// All postings matching a search, in board order (newest first, then by id).
/// `q`: every word must appear in the title, company or description; `l`: part of the location.
pub fn search(q: Option<&str>, l: Option<&str>) -> Vec<DemoPosting> {
    let words: Vec<String> = q
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_lowercase)
        .collect();
    let place = l.unwrap_or_default().trim().to_lowercase();
    let mut found: Vec<DemoPosting> = (1..=POSTING_COUNT)
        .filter_map(posting)
        .filter(|p| {
            let text = format!("{} {} {}", p.title, p.company, p.description).to_lowercase();
            words.iter().all(|w| text.contains(w.as_str()))
                && (place.is_empty() || p.location.to_lowercase().contains(&place))
        })
        .collect();
    found.sort_by(|a, b| b.posted.cmp(&a.posted).then(a.id.cmp(&b.id)));
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_is_deterministic_and_searchable() {
        assert_eq!(search(None, None).len(), POSTING_COUNT as usize);
        assert_eq!(posting(17), posting(17));
        assert!(posting(0).is_none() && posting(POSTING_COUNT + 1).is_none());
        let rust = search(Some("rust"), None);
        assert!(!rust.is_empty() && rust.len() < POSTING_COUNT as usize);
        assert!(
            search(Some("rust"), Some("paris"))
                .iter()
                .all(|p| p.location == "Paris")
        );
    }
}
