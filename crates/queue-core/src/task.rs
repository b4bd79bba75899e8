//! The task: a self-contained JSON message in the queue.
//!
//! Only `site_name` is required, so an operator can enqueue by hand:
//! `redis-cli LPUSH 'trawl:{scraping}:pending' '{"site_name":"demo","search_term":"rust"}'`.
//! Unknown fields are refused rather than ignored, so a typo lands in the dead-letter list with
//! its reason instead of running a scrape nobody asked for.
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Largest `results_wanted` a task may ask for.
pub const MAX_RESULTS_WANTED: u32 = 1000;
/// `results_wanted` when a task does not say.
pub const DEFAULT_RESULTS_WANTED: u32 = 50;

/// What started a run (`scrape_runs.trigger`, CHECKed to these values in PostgreSQL).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, sqlx::Type)]
#[serde(rename_all = "snake_case")]
#[sqlx(type_name = "text", rename_all = "snake_case")]
pub enum Trigger {
    Schedule,
    Manual,
}

impl std::fmt::Display for Trigger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Schedule => "schedule",
            Trigger::Manual => "manual",
        }
    }
}

/// The kinds of work this version of trawl runs. A task names its kind (`"kind"`); a task
/// without one is a scrape, so hand-written `{"site_name": ...}` tasks keep working.
pub const KINDS: &[&str] = &[SCRAPE_KIND];
/// The kind of a site scrape.
pub const SCRAPE_KIND: &str = "scrape";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Task {
    /// The kind of work (`scrape`, the default when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Set by whoever enqueues; a hand-written task without one gets one from the worker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_id: Option<String>,
    /// The `scrape_runs` row this task executes; absent on hand-written tasks, whose run the
    /// worker creates with trigger `manual`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    pub site_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub search_term: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub results_wanted: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<Trigger>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enqueued_at: Option<DateTime<Utc>>,
    /// Set by recovery: how many times a worker died holding this task. Such a task runs alone
    /// on its next worker, so a task that kills workers takes no innocent task down with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovered: Option<u32>,
}

/// Why a message in the queue is not a task we can run. The text goes to the dead-letter list.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TaskError {
    #[error("malformed task JSON: {0}")]
    Malformed(String),
    #[error("invalid task: {0}")]
    Invalid(String),
    #[error("task is not valid UTF-8: {0}")]
    NotUtf8(String),
    #[error("unknown kind {0:?}; this trawl runs: {known}", known = KINDS.join(", "))]
    UnknownKind(String),
}

impl Task {
    /// A task for `site_name` with fresh ids, as the API and scheduler create them.
    pub fn new(site_name: &str, run_id: String, trigger: Trigger) -> Self {
        Self {
            kind: None,
            task_id: Some(format!("task_{}", uuid::Uuid::new_v4().simple())),
            run_id: Some(run_id),
            site_name: site_name.to_owned(),
            search_term: None,
            location: None,
            results_wanted: None,
            trigger: Some(trigger),
            enqueued_at: Some(Utc::now()),
            recovered: None,
        }
    }

    /// Parses and validates a queue message as Redis holds it: bytes, which a hand-written
    /// `redis-cli LPUSH` may have made anything.
    pub fn parse_bytes(raw: &[u8]) -> Result<Self, TaskError> {
        let text = std::str::from_utf8(raw).map_err(|err| TaskError::NotUtf8(err.to_string()))?;
        Self::parse(text)
    }

    /// Parses and validates a raw queue message.
    pub fn parse(raw: &str) -> Result<Self, TaskError> {
        let value: serde_json::Value =
            serde_json::from_str(raw).map_err(|err| TaskError::Malformed(err.to_string()))?;
        // The kind first: a task of a kind this trawl does not run is refused as that, not as
        // a scrape with strange fields.
        match value.get("kind") {
            None => {}
            Some(serde_json::Value::String(kind)) if KINDS.contains(&kind.as_str()) => {}
            Some(serde_json::Value::String(kind)) => {
                return Err(TaskError::UnknownKind(kind.clone()));
            }
            Some(_) => return Err(TaskError::Invalid("kind must be a string".into())),
        }
        let task: Task =
            serde_json::from_value(value).map_err(|err| TaskError::Malformed(err.to_string()))?;
        task.validate()?;
        Ok(task)
    }

    pub fn validate(&self) -> Result<(), TaskError> {
        if let Some(kind) = &self.kind
            && !KINDS.contains(&kind.as_str())
        {
            return Err(TaskError::UnknownKind(kind.clone()));
        }
        let texts = [
            ("site_name", Some(&self.site_name)),
            ("search_term", self.search_term.as_ref()),
            ("location", self.location.as_ref()),
            ("run_id", self.run_id.as_ref()),
            ("task_id", self.task_id.as_ref()),
        ];
        for (field, value) in texts {
            if let Some(value) = value {
                check_text(field, value).map_err(TaskError::Invalid)?;
            }
        }
        if self.site_name.trim().is_empty() {
            return Err(TaskError::Invalid("site_name is empty".into()));
        }
        if let Some(wanted) = self.results_wanted
            && !(1..=MAX_RESULTS_WANTED).contains(&wanted)
        {
            return Err(TaskError::Invalid(format!(
                "results_wanted must be between 1 and {MAX_RESULTS_WANTED}, got {wanted}"
            )));
        }
        Ok(())
    }

    pub fn results_wanted(&self) -> u32 {
        self.results_wanted.unwrap_or(DEFAULT_RESULTS_WANTED)
    }

    /// The one rule every door (scheduler, API, CLI, hand-written task) follows for what the
    /// task leaves out: the site's own defaults, then trawl's. Filled in before the run is
    /// recorded, so the run row shows what was actually asked.
    pub fn apply_defaults(
        &mut self,
        search_term: Option<String>,
        location: Option<String>,
        results_wanted: Option<u32>,
    ) {
        if self.search_term.is_none() {
            self.search_term = search_term;
        }
        if self.location.is_none() {
            self.location = location;
        }
        self.results_wanted = Some(
            self.results_wanted
                .or(results_wanted)
                .unwrap_or(DEFAULT_RESULTS_WANTED),
        );
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a Task always serializes")
    }
}

/// Longest text field a task may carry (site names, searches, ids): far above any real one, and
/// small enough that a task stays a small message.
pub const MAX_TEXT_LEN: usize = 1_000;

/// Checks a text that will be stored in PostgreSQL: PostgreSQL refuses NUL in text, so a NUL is
/// bad input to be named at the door, not a database failure later. Returns the reason.
pub fn check_text(field: &str, value: &str) -> Result<(), String> {
    if value.contains('\0') {
        return Err(format!("{field} contains a NUL character"));
    }
    if value.len() > MAX_TEXT_LEN {
        return Err(format!(
            "{field} is {} bytes long; at most {MAX_TEXT_LEN}",
            value.len()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_written_task_needs_only_site_name() {
        let task = Task::parse(r#"{"site_name":"demo","search_term":"rust"}"#).unwrap();
        assert_eq!(task.site_name, "demo");
        assert_eq!(task.search_term.as_deref(), Some("rust"));
        assert_eq!(task.run_id, None);
        assert_eq!(task.results_wanted(), DEFAULT_RESULTS_WANTED);
    }

    #[test]
    fn bad_tasks_say_why() {
        let err = Task::parse("not json").unwrap_err().to_string();
        assert!(err.starts_with("malformed task JSON"), "{err}");
        let err = Task::parse(r#"{"site_name":"demo","serch_term":"x"}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `serch_term`"), "{err}");
        let err = Task::parse(r#"{"site_name":" "}"#).unwrap_err().to_string();
        assert!(err.contains("site_name is empty"), "{err}");
        let err = Task::parse(r#"{"site_name":"demo","results_wanted":0}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("results_wanted"), "{err}");
    }

    #[test]
    fn nul_and_bad_bytes_are_refused_with_the_field() {
        let err = Task::parse(r#"{"site_name":"demo\u0000"}"#).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid task: site_name contains a NUL character"
        );
        let err = Task::parse(r#"{"site_name":"demo","location":"a\u0000b"}"#).unwrap_err();
        assert!(err.to_string().contains("location"), "{err}");
        let err = Task::parse_bytes(b"{\"site_name\":\"d\xffemo\"}").unwrap_err();
        assert!(
            err.to_string().starts_with("task is not valid UTF-8"),
            "{err}"
        );
        let long = format!(
            r#"{{"site_name":"demo","search_term":"{}"}}"#,
            "x".repeat(2000)
        );
        assert!(Task::parse(&long).is_err());
    }

    #[test]
    fn a_task_without_kind_is_a_scrape_and_an_unknown_kind_is_refused() {
        let task = Task::parse(r#"{"kind":"scrape","site_name":"demo"}"#).unwrap();
        assert_eq!(task.kind.as_deref(), Some("scrape"));
        assert!(
            Task::parse(r#"{"site_name":"demo"}"#)
                .unwrap()
                .kind
                .is_none()
        );
        let err = Task::parse(r#"{"kind":"embed","posting_ids":[1]}"#).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown kind \"embed\"; this trawl runs: scrape"
        );
        // A scrape's payload is strict: a field of another kind is refused.
        let err =
            Task::parse(r#"{"kind":"scrape","site_name":"demo","posting_ids":[1]}"#).unwrap_err();
        assert!(
            err.to_string().contains("unknown field `posting_ids`"),
            "{err}"
        );
    }

    #[test]
    fn defaults_come_from_the_task_then_the_site_then_trawl() {
        let site = || (Some("data".to_owned()), None, Some(5));
        let mut task = Task::parse(r#"{"site_name":"demo"}"#).unwrap();
        let (term, place, wanted) = site();
        task.apply_defaults(term, place, wanted);
        assert_eq!(task.results_wanted, Some(5));
        assert_eq!(task.search_term.as_deref(), Some("data"));
        let mut task = Task::parse(r#"{"site_name":"demo","results_wanted":7}"#).unwrap();
        let (term, place, wanted) = site();
        task.apply_defaults(term, place, wanted);
        assert_eq!(task.results_wanted, Some(7));
        let mut task = Task::parse(r#"{"site_name":"demo"}"#).unwrap();
        task.apply_defaults(None, None, None);
        assert_eq!(task.results_wanted, Some(DEFAULT_RESULTS_WANTED));
    }

    #[test]
    fn task_round_trips() {
        let task = Task::new("demo", "sched_1".into(), Trigger::Schedule);
        assert_eq!(Task::parse(&task.to_json()).unwrap(), task);
    }
}
