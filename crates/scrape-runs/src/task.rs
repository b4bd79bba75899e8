//! The scrape kind's task: which site, and what to ask it. Read strictly (unknown fields
//! refused), so `{"site_name":"demo","serch_term":"x"}` is dead-lettered with the reason.
use queue_core::{Payload, Plan, Task, TaskError, Trigger, check_text};
use serde::{Deserialize, Serialize};

use crate::sites::SiteSchedule;

/// The kind's name in `"kind"`; a task without a kind is a scrape.
pub const KIND: &str = "scrape";
/// The queue scrape tasks go to.
pub const QUEUE: &str = "scraping";
/// Largest `results_wanted` a task may ask for.
pub const MAX_RESULTS_WANTED: u32 = 1000;
/// `results_wanted` when neither the task nor its site says.
pub const DEFAULT_RESULTS_WANTED: u32 = 50;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScrapeTask {
    pub site_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub search_term: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub results_wanted: Option<u32>,
}

impl ScrapeTask {
    pub fn new(site_name: &str) -> Self {
        Self {
            site_name: site_name.to_owned(),
            search_term: None,
            location: None,
            results_wanted: None,
        }
    }

    /// The checks every scrape gets at every door (NUL, lengths, ranges).
    pub fn check(&self) -> Result<(), String> {
        let texts = [
            ("site_name", Some(&self.site_name)),
            ("search_term", self.search_term.as_ref()),
            ("location", self.location.as_ref()),
        ];
        for (field, value) in texts {
            if let Some(value) = value {
                check_text(field, value)?;
            }
        }
        if self.site_name.trim().is_empty() {
            return Err("site_name is empty".into());
        }
        if let Some(wanted) = self.results_wanted
            && !(1..=MAX_RESULTS_WANTED).contains(&wanted)
        {
            return Err(format!(
                "results_wanted must be between 1 and {MAX_RESULTS_WANTED}, got {wanted}"
            ));
        }
        Ok(())
    }

    /// The one rule every door (scheduler, API, CLI, hand-written task) follows for what the
    /// task leaves out: the site's own defaults, then trawl's. Filled in before the run is
    /// recorded, so the run row shows what was actually asked.
    pub fn apply_defaults(&mut self, spec: &trawl_scrape::SiteSpec) {
        let defaults = spec.defaults();
        if self.search_term.is_none() {
            self.search_term = defaults.search_term;
        }
        if self.location.is_none() {
            self.location = defaults.location;
        }
        self.results_wanted = Some(
            self.results_wanted
                .or(defaults.results_wanted)
                .unwrap_or(DEFAULT_RESULTS_WANTED),
        );
    }

    pub fn results_wanted(&self) -> u32 {
        self.results_wanted.unwrap_or(DEFAULT_RESULTS_WANTED)
    }

    /// The queue task for a run of this scrape, with fresh ids.
    pub fn into_task(self, run_id: String, trigger: Trigger) -> Task {
        Task::new(KIND, self.into_payload(), run_id, trigger)
    }

    pub fn into_payload(self) -> Payload {
        queue_core::payload_of(&self)
    }

    /// Reads a task's payload as a scrape, strictly, with the kind's checks.
    pub fn from_task(task: &Task) -> Result<Self, TaskError> {
        let invalid = |reason: String| TaskError::Payload {
            kind: KIND.to_owned(),
            reason,
        };
        let scrape: ScrapeTask =
            serde_json::from_value(serde_json::Value::Object(task.payload.clone()))
                .map_err(|err| invalid(err.to_string()))?;
        scrape.check().map_err(invalid)?;
        Ok(scrape)
    }
}

/// A scrape run's plan: the scraping queue, the site's lock (at most one run per site) and the
/// site's retry budget.
pub fn plan_for(site: &SiteSchedule) -> Plan {
    Plan {
        queue: QUEUE.to_owned(),
        lock_key: Some(site.site_name.clone()),
        max_retries: site.max_retries.max(0) as u32,
    }
}

/// A submit refused because the site's lock is held, in the scrape's words; None for any
/// other error.
pub fn site_busy(err: &queue_core::SubmitError) -> Option<String> {
    match err {
        queue_core::SubmitError::Busy { lock_key, holder } => Some(format!(
            "site {lock_key} is being scraped by run {holder}; try again when it ends"
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &str) -> Result<ScrapeTask, TaskError> {
        ScrapeTask::from_task(&Task::parse(raw)?)
    }

    #[test]
    fn hand_written_task_needs_only_site_name() {
        let task = parse(r#"{"site_name":"demo","search_term":"rust"}"#).unwrap();
        assert_eq!(task.site_name, "demo");
        assert_eq!(task.search_term.as_deref(), Some("rust"));
        assert_eq!(task.results_wanted(), DEFAULT_RESULTS_WANTED);
    }

    #[test]
    fn bad_scrapes_say_why() {
        let err = parse(r#"{"site_name":"demo","serch_term":"x"}"#)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("invalid scrape task: unknown field `serch_term`"),
            "{err}"
        );
        let err = parse(r#"{"site_name":" "}"#).unwrap_err().to_string();
        assert!(err.contains("site_name is empty"), "{err}");
        let err = parse(r#"{"site_name":"demo","results_wanted":0}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("results_wanted"), "{err}");
        let err = parse(r#"{"search_term":"rust"}"#).unwrap_err().to_string();
        assert!(err.contains("missing field `site_name`"), "{err}");
        let err = parse(r#"{"site_name":"demo\u0000"}"#).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid scrape task: site_name contains a NUL character"
        );
        let long = format!(
            r#"{{"site_name":"demo","search_term":"{}"}}"#,
            "x".repeat(2000)
        );
        assert!(parse(&long).is_err());
    }

    #[test]
    fn defaults_come_from_the_task_then_the_site_then_trawl() {
        let spec = trawl_scrape::SiteSpec::from_json(&serde_json::json!({
            "source": "demo_board", "base_url": "http://127.0.0.1:1",
            "search_term": "data", "results_wanted": 5
        }))
        .unwrap();
        let mut task = ScrapeTask::new("demo");
        task.apply_defaults(&spec);
        assert_eq!(task.results_wanted, Some(5));
        assert_eq!(task.search_term.as_deref(), Some("data"));
        let mut task = ScrapeTask {
            results_wanted: Some(7),
            ..ScrapeTask::new("demo")
        };
        task.apply_defaults(&spec);
        assert_eq!(task.results_wanted, Some(7));
    }

    #[test]
    fn a_scrape_task_round_trips_through_the_queue() {
        let task = ScrapeTask::new("demo").into_task("sched_1".into(), Trigger::Schedule);
        let parsed = Task::parse(&task.to_json()).unwrap();
        assert_eq!(parsed, task);
        assert_eq!(
            ScrapeTask::from_task(&parsed).unwrap(),
            ScrapeTask::new("demo")
        );
    }
}
