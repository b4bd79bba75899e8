//! Site definitions: which source a site uses and how to read it. Stored as JSON in
//! `site_schedules.payload` (`{"source": "<kind>", ...}`) and checked when loaded, so a bad one
//! is refused with the field named, never first at 3 a.m. in a worker.
use serde::{Deserialize, Serialize};
use serde_json::Value;
use url::Url;

use crate::SiteSpecError;
use crate::apis::{ASHBY_API, AdzunaSpec, AtsSpec, GREENHOUSE_API, LEVER_API};
use crate::definition::DefinitionSpec;

/// The kinds of source the scraping library reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    DemoBoard,
    Definition,
    Greenhouse,
    Lever,
    Ashby,
    Adzuna,
}

impl SourceKind {
    pub const ALL: &'static [SourceKind] = &[
        SourceKind::DemoBoard,
        SourceKind::Definition,
        SourceKind::Greenhouse,
        SourceKind::Lever,
        SourceKind::Ashby,
        SourceKind::Adzuna,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::DemoBoard => "demo_board",
            SourceKind::Definition => "definition",
            SourceKind::Greenhouse => "greenhouse",
            SourceKind::Lever => "lever",
            SourceKind::Ashby => "ashby",
            SourceKind::Adzuna => "adzuna",
        }
    }

    pub fn description(self) -> &'static str {
        match self {
            SourceKind::DemoBoard => {
                "trawl's demo job board: HTML listing pages with pagination, detail pages with \
                 schema.org JobPosting JSON-LD"
            }
            SourceKind::Definition => {
                "any site described as data: URL template, http or browser fetching, CSS \
                 selectors for items and fields, pagination, optional detail pages with JSON-LD"
            }
            SourceKind::Greenhouse => "a company's Greenhouse job board API (board token)",
            SourceKind::Lever => "a company's Lever postings API (site name), paged",
            SourceKind::Ashby => {
                "a company's Ashby posting API (job board name), with compensation"
            }
            SourceKind::Adzuna => {
                "the Adzuna search API (country, what/where), 50 per page, at most 1000 per query"
            }
        }
    }
}

/// The demo board's definition: where it is and the default search.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DemoBoardSpec {
    pub base_url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub search_term: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub results_wanted: Option<u32>,
    /// Whether to open each posting's detail page for the full description and JSON-LD.
    #[serde(default = "yes")]
    pub follow_details: bool,
    /// Set only to scrape despite robots.txt; the reason is recorded on every run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore_robots_txt: Option<String>,
}

pub(crate) fn yes() -> bool {
    true
}

#[derive(Debug, Clone, PartialEq)]
pub enum SiteSpec {
    DemoBoard(DemoBoardSpec),
    Definition(Box<DefinitionSpec>),
    Greenhouse(AtsSpec),
    Lever(AtsSpec),
    Ashby(AtsSpec),
    Adzuna(AdzunaSpec),
}

/// The search a site runs when a task does not say.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SearchDefaults {
    pub search_term: Option<String>,
    pub location: Option<String>,
    pub results_wanted: Option<u32>,
}

impl SiteSpec {
    /// Parses and checks a definition, naming the field at fault.
    pub fn from_json(value: &Value) -> Result<Self, SiteSpecError> {
        let Value::Object(map) = value else {
            return Err(SiteSpecError::Shape(
                "a site definition is a JSON object".into(),
            ));
        };
        let mut rest = map.clone();
        let source = rest.remove("source").ok_or(SiteSpecError::Field {
            field: "source",
            reason: format!("missing; one of {}", kinds()),
        })?;
        let kind: SourceKind =
            serde_json::from_value(source.clone()).map_err(|_| SiteSpecError::Field {
                field: "source",
                reason: format!("unknown source {source}; one of {}", kinds()),
            })?;
        let shape =
            |err: serde_json::Error| SiteSpecError::Shape(format!("{} site: {err}", kind.as_str()));
        let rest = Value::Object(rest);
        let spec = match kind {
            SourceKind::DemoBoard => {
                SiteSpec::DemoBoard(serde_json::from_value(rest).map_err(shape)?)
            }
            SourceKind::Definition => {
                SiteSpec::Definition(Box::new(serde_json::from_value(rest).map_err(shape)?))
            }
            SourceKind::Greenhouse => {
                SiteSpec::Greenhouse(serde_json::from_value(rest).map_err(shape)?)
            }
            SourceKind::Lever => SiteSpec::Lever(serde_json::from_value(rest).map_err(shape)?),
            SourceKind::Ashby => SiteSpec::Ashby(serde_json::from_value(rest).map_err(shape)?),
            SourceKind::Adzuna => SiteSpec::Adzuna(serde_json::from_value(rest).map_err(shape)?),
        };
        spec.validate()?;
        Ok(spec)
    }

    pub fn to_json(&self) -> Value {
        let (kind, value) = match self {
            SiteSpec::DemoBoard(spec) => (SourceKind::DemoBoard, serde_json::to_value(spec)),
            SiteSpec::Definition(spec) => (SourceKind::Definition, serde_json::to_value(spec)),
            SiteSpec::Greenhouse(spec) => (SourceKind::Greenhouse, serde_json::to_value(spec)),
            SiteSpec::Lever(spec) => (SourceKind::Lever, serde_json::to_value(spec)),
            SiteSpec::Ashby(spec) => (SourceKind::Ashby, serde_json::to_value(spec)),
            SiteSpec::Adzuna(spec) => (SourceKind::Adzuna, serde_json::to_value(spec)),
        };
        let mut value = value.expect("specs serialize");
        value["source"] = Value::from(kind.as_str());
        value
    }

    pub fn kind(&self) -> SourceKind {
        match self {
            SiteSpec::DemoBoard(_) => SourceKind::DemoBoard,
            SiteSpec::Definition(_) => SourceKind::Definition,
            SiteSpec::Greenhouse(_) => SourceKind::Greenhouse,
            SiteSpec::Lever(_) => SourceKind::Lever,
            SiteSpec::Ashby(_) => SourceKind::Ashby,
            SiteSpec::Adzuna(_) => SourceKind::Adzuna,
        }
    }

    pub fn defaults(&self) -> SearchDefaults {
        let (search_term, location, results_wanted) = match self {
            SiteSpec::DemoBoard(s) => (&s.search_term, &s.location, s.results_wanted),
            SiteSpec::Definition(s) => (&s.search_term, &s.location, s.results_wanted),
            SiteSpec::Greenhouse(s) | SiteSpec::Lever(s) | SiteSpec::Ashby(s) => {
                (&s.search_term, &s.location, s.results_wanted)
            }
            SiteSpec::Adzuna(s) => (&s.search_term, &s.location, s.results_wanted),
        };
        SearchDefaults {
            search_term: search_term.clone(),
            location: location.clone(),
            results_wanted,
        }
    }

    /// The stated reason to ignore robots.txt, if the operator gave one.
    pub fn robots_override(&self) -> Option<&str> {
        match self {
            SiteSpec::DemoBoard(s) => s.ignore_robots_txt.as_deref(),
            SiteSpec::Definition(s) => s.ignore_robots_txt.as_deref(),
            SiteSpec::Greenhouse(s) | SiteSpec::Lever(s) | SiteSpec::Ashby(s) => {
                s.ignore_robots_txt.as_deref()
            }
            SiteSpec::Adzuna(s) => s.ignore_robots_txt.as_deref(),
        }
    }

    pub fn validate(&self) -> Result<(), SiteSpecError> {
        if self
            .robots_override()
            .is_some_and(|reason| reason.trim().len() < 10)
        {
            return Err(SiteSpecError::Field {
                field: "ignore_robots_txt",
                reason: "must state the reason robots.txt is ignored (at least 10 characters)"
                    .into(),
            });
        }
        if let Some(wanted) = self.defaults().results_wanted
            && !(1..=1000).contains(&wanted)
        {
            return Err(SiteSpecError::Field {
                field: "results_wanted",
                reason: format!("must be between 1 and 1000, got {wanted}"),
            });
        }
        match self {
            SiteSpec::DemoBoard(spec) => http_url("base_url", &spec.base_url).map(drop),
            SiteSpec::Definition(spec) => spec.validate(),
            SiteSpec::Greenhouse(spec) => spec.validate(GREENHOUSE_API),
            SiteSpec::Lever(spec) => spec.validate(LEVER_API),
            SiteSpec::Ashby(spec) => spec.validate(ASHBY_API),
            SiteSpec::Adzuna(spec) => spec.validate(),
        }
    }
}

fn kinds() -> String {
    SourceKind::ALL
        .iter()
        .map(|k| k.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Parses an absolute http(s) URL, naming the field when it is not one.
pub(crate) fn http_url(field: &'static str, text: &str) -> Result<Url, SiteSpecError> {
    let url = Url::parse(text).map_err(|err| SiteSpecError::Field {
        field,
        reason: format!("{err}: {text:?}"),
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(SiteSpecError::Field {
            field,
            reason: format!("scheme must be http or https, got {}", url.scheme()),
        });
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn valid_demo_board_definition_parses_and_round_trips() {
        let value = json!({"source":"demo_board","base_url":"http://127.0.0.1:1"});
        let spec = SiteSpec::from_json(&value).unwrap();
        assert_eq!(spec.kind(), SourceKind::DemoBoard);
        assert_eq!(SiteSpec::from_json(&spec.to_json()).unwrap(), spec);
    }

    #[test]
    fn bad_definitions_name_the_field() {
        let cases = [
            (json!({"base_url":"http://x"}), "`source`"),
            (
                json!({"source":"nope","base_url":"http://x"}),
                "unknown source \"nope\"",
            ),
            (json!({"source":"demo_board"}), "missing field `base_url`"),
            (
                json!({"source":"demo_board","base_url":"not a url"}),
                "`base_url`",
            ),
            (
                json!({"source":"demo_board","base_url":"ftp://x"}),
                "scheme",
            ),
            (
                json!({"source":"demo_board","base_url":"http://x","results_wanted":0}),
                "`results_wanted`",
            ),
            (
                json!({"source":"demo_board","base_url":"http://x","bogus":1}),
                "unknown field `bogus`",
            ),
            (json!([1]), "JSON object"),
        ];
        for (value, expected) in cases {
            let err = SiteSpec::from_json(&value).unwrap_err().to_string();
            assert!(err.contains(expected), "{value}: {err}");
        }
    }
}
