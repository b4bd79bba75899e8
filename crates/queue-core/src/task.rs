//! The task: a self-contained JSON message in the queue. An envelope every kind shares (kind,
//! ids, trigger) and, at the top level beside it, the kind's payload. A message without a kind is
//! a scrape, so an operator can enqueue by hand:
//! `redis-cli LPUSH 'trawl:{scraping}:pending' '{"site_name":"demo","search_term":"rust"}'`.
//! Each kind's handler reads its payload strictly (unknown fields refused), so a typo lands in
//! the dead-letter list with its reason instead of running work nobody asked for.
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// What started a run (`task_runs.trigger`, CHECKed to these values in PostgreSQL).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, sqlx::Type, utoipa::ToSchema,
)]
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

/// The envelope every task has, whatever its kind: the fields the queue and the lifecycle read.
/// Every other field of the message is the kind's payload, kept as it came (`payload`) and
/// judged strictly by the kind's handler, so the envelope knows no kind.
const ENVELOPE_FIELDS: &[&str] = &[
    "kind",
    "task_id",
    "run_id",
    "trigger",
    "enqueued_at",
    "recovered",
];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Task {
    /// The kind of work; absent: the registry's default kind (`scrape`), so hand-written
    /// `{"site_name": ...}` tasks keep working.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Set by whoever enqueues; a hand-written task without one gets one from the worker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_id: Option<String>,
    /// The `task_runs` row this task executes; absent on hand-written tasks, whose run the
    /// worker creates with trigger `manual`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<Trigger>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enqueued_at: Option<DateTime<Utc>>,
    /// Set by recovery: how many times a worker died holding this task. Such a task runs alone
    /// on its next worker, so a task that kills workers takes no innocent task down with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovered: Option<u32>,
    /// The kind's own fields, at the top level of the message.
    #[serde(flatten)]
    pub payload: Payload,
}

/// A task's payload as the queue carries it: a JSON object.
pub type Payload = serde_json::Map<String, serde_json::Value>;

/// A kind's typed payload as the queue carries it. Payload types are structs: one that does not
/// serialize to a JSON object is a bug in its kind.
pub fn payload_of<T: Serialize>(typed: &T) -> Payload {
    match serde_json::to_value(typed) {
        Ok(serde_json::Value::Object(map)) => map,
        other => panic!("a task payload must serialize to a JSON object, got {other:?}"),
    }
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
    #[error("unknown kind {kind:?}; this trawl runs: {known}")]
    UnknownKind { kind: String, known: String },
    /// The payload does not fit its kind (an unknown or missing field, a value out of range).
    #[error("invalid {kind} task: {reason}")]
    Payload { kind: String, reason: String },
}

impl Task {
    /// A task of `kind` with fresh ids, as the API and scheduler create them.
    pub fn new(kind: &str, payload: Payload, run_id: String, trigger: Trigger) -> Self {
        Self {
            kind: Some(kind.to_owned()),
            task_id: Some(new_task_id()),
            run_id: Some(run_id),
            trigger: Some(trigger),
            enqueued_at: Some(Utc::now()),
            recovered: None,
            payload,
        }
    }

    /// Parses a queue message as Redis holds it: bytes, which a hand-written `redis-cli LPUSH`
    /// may have made anything. Only the envelope is judged here; the payload is the kind's.
    pub fn parse_bytes(raw: &[u8]) -> Result<Self, TaskError> {
        let text = std::str::from_utf8(raw).map_err(|err| TaskError::NotUtf8(err.to_string()))?;
        Self::parse(text)
    }

    /// Parses a raw queue message.
    pub fn parse(raw: &str) -> Result<Self, TaskError> {
        let value: serde_json::Value =
            serde_json::from_str(raw).map_err(|err| TaskError::Malformed(err.to_string()))?;
        if !value.is_object() {
            return Err(TaskError::Malformed("a task is a JSON object".into()));
        }
        if let Some(kind) = value.get("kind")
            && !kind.is_string()
        {
            return Err(TaskError::Invalid("kind must be a string".into()));
        }
        let task: Task =
            serde_json::from_value(value).map_err(|err| TaskError::Malformed(err.to_string()))?;
        task.validate()?;
        Ok(task)
    }

    /// The envelope's checks (NUL, lengths), which every task gets at every door.
    pub fn validate(&self) -> Result<(), TaskError> {
        let texts = [
            ("kind", self.kind.as_ref()),
            ("run_id", self.run_id.as_ref()),
            ("task_id", self.task_id.as_ref()),
        ];
        for (field, value) in texts {
            if let Some(value) = value {
                check_text(field, value).map_err(TaskError::Invalid)?;
            }
        }
        if let Some(field) = self
            .payload
            .keys()
            .find(|k| ENVELOPE_FIELDS.contains(&k.as_str()))
        {
            // Only reachable when a payload was built in code with an envelope's field name.
            return Err(TaskError::Invalid(format!("{field} is an envelope field")));
        }
        Ok(())
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a Task always serializes")
    }
}

/// A fresh task id: the one place they are minted.
pub fn new_task_id() -> String {
    format!("task_{}", uuid::Uuid::new_v4().simple())
}

/// A fresh run id: `manual_…` for runs started by hand (API, CLI, hand-written tasks),
/// `sched_…` for runs a schedule started. The one place they are minted.
pub fn new_run_id(trigger: Trigger) -> String {
    let prefix = match trigger {
        Trigger::Manual => "manual",
        Trigger::Schedule => "sched",
    };
    format!("{prefix}_{}", uuid::Uuid::new_v4().simple())
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
    fn the_envelope_is_read_and_the_rest_is_the_payload() {
        let task =
            Task::parse(r#"{"site_name":"demo","search_term":"rust","run_id":"r1"}"#).unwrap();
        assert_eq!(task.kind, None);
        assert_eq!(task.run_id.as_deref(), Some("r1"));
        assert_eq!(task.payload["site_name"], "demo");
        assert_eq!(task.payload.len(), 2);
        let again = Task::parse(&task.to_json()).unwrap();
        assert_eq!(again, task);
    }

    #[test]
    fn bad_envelopes_say_why() {
        let err = Task::parse("not json").unwrap_err().to_string();
        assert!(err.starts_with("malformed task JSON"), "{err}");
        let err = Task::parse("[1]").unwrap_err().to_string();
        assert!(err.contains("JSON object"), "{err}");
        let err = Task::parse(r#"{"kind":7}"#).unwrap_err().to_string();
        assert!(err.contains("kind must be a string"), "{err}");
        let err = Task::parse(r#"{"run_id":"a\u0000"}"#).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid task: run_id contains a NUL character"
        );
        let err = Task::parse_bytes(b"{\"site_name\":\"d\xffemo\"}").unwrap_err();
        assert!(
            err.to_string().starts_with("task is not valid UTF-8"),
            "{err}"
        );
        let err = Task::parse(r#"{"recovered":"x"}"#).unwrap_err().to_string();
        assert!(err.starts_with("malformed task JSON"), "{err}");
    }

    #[test]
    fn task_round_trips_and_ids_are_minted_by_trigger() {
        let payload = serde_json::json!({"n": 1}).as_object().unwrap().clone();
        let task = Task::new(
            "noop",
            payload,
            new_run_id(Trigger::Schedule),
            Trigger::Schedule,
        );
        assert!(task.run_id.as_deref().unwrap().starts_with("sched_"));
        assert!(new_run_id(Trigger::Manual).starts_with("manual_"));
        assert_eq!(Task::parse(&task.to_json()).unwrap(), task);
    }
}
