//! A pipeline is data: its sources, when it runs, its SLAs and alert thresholds and its retry
//! policy, validated with the field at fault named. Defaults are seed 002's.
use serde::{Deserialize, Serialize};

/// Most postings one query of a search source may collect (seed 002: ≤ 1,000 per query).
pub const MAX_PER_QUERY: u32 = 1_000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PipelineDefinition {
    /// Registered sites to collect from, each with its searches.
    #[schema(min_items = 1)]
    pub sources: Vec<SourceSpec>,
    /// A 5-field cron expression; seed 002 runs at 00:30 UTC.
    #[serde(default = "default_cron")]
    #[schema(format = "cron")]
    pub cron: String,
    /// The IANA zone `cron` is read in (default UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(format = "time-zone")]
    pub time_zone: Option<String>,
    /// Whether the schedule fires (a disabled pipeline still runs when triggered by hand).
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default)]
    pub stages: StageLimits,
    /// The whole batch's SLA: past it the batch is stopped and an alert raised.
    #[serde(default = "default_total_sla")]
    pub total_sla_seconds: f64,
    /// The whole batch's alert threshold.
    #[serde(default = "default_total_alert")]
    pub total_alert_seconds: f64,
    /// Records refused or failed over records seen, above which an alert is raised (seed 002:
    /// 5%).
    #[serde(default = "default_failure_rate")]
    pub max_failure_rate: f64,
    #[serde(default)]
    pub retry: RetryPolicy,
    /// The shortest title the validate stage accepts (seed 002: 10 characters).
    #[serde(
        default = "default_min_title",
        deserialize_with = "queue_core::integral::exact"
    )]
    pub min_title_chars: usize,
}

/// One source: a registered site; for search sources, every query × location is collected.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SourceSpec {
    pub site: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub queries: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub locations: Vec<String>,
    /// Postings per query × location, at most 1,000 (default 1,000).
    #[serde(
        default = "default_per_query",
        deserialize_with = "queue_core::integral::exact"
    )]
    pub max_per_query: u32,
}

/// A stage's SLA and alert threshold, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StageLimit {
    pub sla_seconds: f64,
    pub alert_seconds: f64,
}

/// Seed 002's table: collect < 5 min (alert > 4), validate < 2 (> 1.5), enrich < 5 (> 4),
/// vectorize < 6 (> 5), export < 3 (> 2.5).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StageLimits {
    pub collect: StageLimit,
    pub validate: StageLimit,
    pub enrich: StageLimit,
    pub vectorize: StageLimit,
    pub export: StageLimit,
}

impl Default for StageLimits {
    fn default() -> Self {
        let limit = |sla_minutes: f64, alert_minutes: f64| StageLimit {
            sla_seconds: sla_minutes * 60.0,
            alert_seconds: alert_minutes * 60.0,
        };
        StageLimits {
            collect: limit(5.0, 4.0),
            validate: limit(2.0, 1.5),
            enrich: limit(5.0, 4.0),
            vectorize: limit(6.0, 5.0),
            export: limit(3.0, 2.5),
        }
    }
}

/// How often a stage is tried and how long to wait between tries (seed 002: 3 tries, 60 s
/// then 120 s). A permanent error is never retried.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RetryPolicy {
    #[serde(deserialize_with = "queue_core::integral::exact")]
    pub tries: u32,
    /// Wait before the 2nd, 3rd, ... try; the last one repeats.
    pub delays_seconds: Vec<f64>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            tries: 3,
            delays_seconds: vec![60.0, 120.0],
        }
    }
}

impl RetryPolicy {
    /// The wait before try `next` (2 or more).
    pub fn delay_before(&self, next: u32) -> std::time::Duration {
        let index =
            (next.saturating_sub(2) as usize).min(self.delays_seconds.len().saturating_sub(1));
        let seconds = self.delays_seconds.get(index).copied().unwrap_or(0.0);
        std::time::Duration::from_secs_f64(seconds)
    }
}

/// What a registered site is as a pipeline source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceFit {
    /// No site of that name.
    Unknown,
    /// A source that takes queries × locations (Adzuna, the demo board, definitions).
    Search,
    /// A source that lists everything it has (an ATS board).
    NoSearch,
    /// Registered, but the pipeline cannot read it (and why).
    Unfit(String),
}

/// A definition refused: which field, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct DefinitionError {
    pub field: String,
    pub reason: String,
}

fn refuse(field: impl Into<String>, reason: impl Into<String>) -> DefinitionError {
    DefinitionError {
        field: field.into(),
        reason: reason.into(),
    }
}

impl PipelineDefinition {
    /// Reads a definition from JSON, naming the field a type error is in (its path, e.g.
    /// `stages.collect.alert_seconds`; an unknown field by its own name).
    pub fn from_json(value: serde_json::Value) -> Result<Self, DefinitionError> {
        serde_path_to_error::deserialize(value).map_err(|err| {
            let path = err.path().to_string();
            let reason = err.inner().to_string();
            let unknown = reason
                .strip_prefix("unknown field `")
                .and_then(|rest| rest.split('`').next());
            let field = match (path.as_str(), unknown) {
                (".", Some(name)) => name.to_owned(),
                (".", None) => "definition".to_owned(),
                (path, Some(name)) if path.ends_with(name) => path.to_owned(),
                (path, Some(name)) => format!("{path}.{name}"),
                (path, None) => path.to_owned(),
            };
            refuse(field, reason)
        })
    }

    /// Checks values beyond their types. `site` says what a site name is as a source.
    pub fn check(&self, site: impl Fn(&str) -> SourceFit) -> Result<(), DefinitionError> {
        if self.sources.is_empty() {
            return Err(refuse("sources", "at least one source is needed"));
        }
        for (i, source) in self.sources.iter().enumerate() {
            let field = |name: &str| format!("sources[{i}].{name}");
            match site(&source.site) {
                SourceFit::Unknown => {
                    return Err(refuse(
                        field("site"),
                        format!(
                            "unknown site {:?}: register it first (trawl site upsert)",
                            source.site
                        ),
                    ));
                }
                SourceFit::Unfit(reason) => {
                    return Err(refuse(
                        field("site"),
                        format!("site {:?}: {reason}", source.site),
                    ));
                }
                SourceFit::NoSearch
                    if !source.queries.is_empty() || !source.locations.is_empty() =>
                {
                    return Err(refuse(
                        field("queries"),
                        format!("site {:?} does not take searches", source.site),
                    ));
                }
                SourceFit::NoSearch | SourceFit::Search => {}
            }
            if !(1..=MAX_PER_QUERY).contains(&source.max_per_query) {
                return Err(refuse(
                    field("max_per_query"),
                    format!("must be 1..={MAX_PER_QUERY}"),
                ));
            }
            if source
                .queries
                .iter()
                .chain(&source.locations)
                .any(|q| q.trim().is_empty() || q.len() > 200)
            {
                return Err(refuse(
                    field("queries"),
                    "queries and locations are 1 to 200 characters",
                ));
            }
        }
        queue_core::Schedule::from_row(1, Some(&self.cron), self.time_zone.as_deref())
            .map_err(|err| refuse("cron", err.to_string()))?;
        for (name, limit) in self.stages.named() {
            if !(limit.sla_seconds.is_finite() && limit.sla_seconds > 0.0) {
                return Err(refuse(
                    format!("stages.{name}.sla_seconds"),
                    "must be more than 0",
                ));
            }
            if !(limit.alert_seconds.is_finite() && limit.alert_seconds > 0.0) {
                return Err(refuse(
                    format!("stages.{name}.alert_seconds"),
                    "must be more than 0",
                ));
            }
        }
        if !(self.total_sla_seconds.is_finite() && self.total_sla_seconds > 0.0) {
            return Err(refuse("total_sla_seconds", "must be more than 0"));
        }
        if !(self.total_alert_seconds.is_finite() && self.total_alert_seconds > 0.0) {
            return Err(refuse("total_alert_seconds", "must be more than 0"));
        }
        if !(0.0..=1.0).contains(&self.max_failure_rate) {
            return Err(refuse("max_failure_rate", "must be within 0..=1"));
        }
        if !(1..=10).contains(&self.retry.tries) {
            return Err(refuse("retry.tries", "must be 1..=10"));
        }
        if self
            .retry
            .delays_seconds
            .iter()
            .any(|d| !(d.is_finite() && (0.0..=3600.0).contains(d)))
        {
            return Err(refuse(
                "retry.delays_seconds",
                "each delay is 0..=3600 seconds",
            ));
        }
        if !(1..=500).contains(&self.min_title_chars) {
            return Err(refuse("min_title_chars", "must be 1..=500"));
        }
        Ok(())
    }
}

impl StageLimits {
    /// The limits of `stage`.
    pub fn of(&self, stage: crate::Stage) -> StageLimit {
        match stage {
            crate::Stage::Collect => self.collect,
            crate::Stage::Validate => self.validate,
            crate::Stage::Enrich => self.enrich,
            crate::Stage::Vectorize => self.vectorize,
            crate::Stage::Export => self.export,
        }
    }

    pub fn named(&self) -> [(&'static str, StageLimit); 5] {
        [
            ("collect", self.collect),
            ("validate", self.validate),
            ("enrich", self.enrich),
            ("vectorize", self.vectorize),
            ("export", self.export),
        ]
    }
}

fn default_cron() -> String {
    "30 0 * * *".into()
}
fn yes() -> bool {
    true
}
fn default_total_sla() -> f64 {
    15.0 * 60.0
}
fn default_total_alert() -> f64 {
    12.0 * 60.0
}
fn default_failure_rate() -> f64 {
    0.05
}
fn default_min_title() -> usize {
    10
}
fn default_per_query() -> u32 {
    MAX_PER_QUERY
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn known(site: &str) -> SourceFit {
        match site {
            "adzuna-fr" => SourceFit::Search,
            "acme-greenhouse" => SourceFit::NoSearch,
            "js-board" => SourceFit::Unfit("pages rendered by a browser".into()),
            _ => SourceFit::Unknown,
        }
    }

    fn check(value: serde_json::Value) -> Result<PipelineDefinition, DefinitionError> {
        let definition = PipelineDefinition::from_json(value)?;
        definition.check(known)?;
        Ok(definition)
    }

    #[test]
    fn seed_002_defaults() {
        let d = check(json!({"sources": [{"site": "adzuna-fr", "queries": ["data engineer"], "locations": ["Paris", "Lyon", "Marseille"]}]})).unwrap();
        assert_eq!(d.cron, "30 0 * * *");
        assert_eq!(
            d.retry,
            RetryPolicy {
                tries: 3,
                delays_seconds: vec![60.0, 120.0]
            }
        );
        assert_eq!(
            d.stages.vectorize,
            StageLimit {
                sla_seconds: 360.0,
                alert_seconds: 300.0
            }
        );
        assert_eq!(d.total_sla_seconds, 900.0);
        assert_eq!(d.sources[0].max_per_query, 1000);
        assert_eq!(d.retry.delay_before(2).as_secs(), 60);
        assert_eq!(d.retry.delay_before(3).as_secs(), 120);
        assert_eq!(d.retry.delay_before(9).as_secs(), 120);
    }

    #[test]
    fn refusals_name_the_field() {
        let field = |value| check(value).unwrap_err().field;
        assert_eq!(
            field(json!({"sources": [{"site": "nope"}]})),
            "sources[0].site"
        );
        assert_eq!(field(json!({"sources": []})), "sources");
        assert_eq!(
            field(json!({"sources": [{"site": "js-board"}]})),
            "sources[0].site"
        );
        assert_eq!(
            field(json!({"sources": [{"site": "acme-greenhouse", "queries": ["x"]}]})),
            "sources[0].queries"
        );
        assert_eq!(
            field(json!({"sources": [{"site": "adzuna-fr"}], "cron": "61 * * * *"})),
            "cron"
        );
        assert_eq!(
            field(json!({"sources": [{"site": "adzuna-fr"}], "stages": {
            "collect": {"sla_seconds": 0, "alert_seconds": 1}, "validate": {"sla_seconds": 1, "alert_seconds": 1},
            "enrich": {"sla_seconds": 1, "alert_seconds": 1}, "vectorize": {"sla_seconds": 1, "alert_seconds": 1},
            "export": {"sla_seconds": 1, "alert_seconds": 1}}})),
            "stages.collect.sla_seconds"
        );
        assert_eq!(
            field(json!({"sources": [{"site": "adzuna-fr"}], "total_sla_seconds": -1})),
            "total_sla_seconds"
        );
        assert_eq!(
            field(json!({"sources": [{"site": "adzuna-fr", "max_per_query": 5000}]})),
            "sources[0].max_per_query"
        );
        assert_eq!(
            field(json!({"sources": [{"site": "adzuna-fr"}], "surprise": 1})),
            "surprise"
        );
        assert_eq!(
            field(
                json!({"sources": [{"site": "adzuna-fr"}], "retry": {"tries": 0, "delays_seconds": []}})
            ),
            "retry.tries"
        );
    }
}
