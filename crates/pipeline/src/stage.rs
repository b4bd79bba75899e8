//! The five stages of a batch, in order.
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    Collect,
    Validate,
    Enrich,
    Vectorize,
    Export,
}

impl Stage {
    pub const ALL: [Stage; 5] = [
        Stage::Collect,
        Stage::Validate,
        Stage::Enrich,
        Stage::Vectorize,
        Stage::Export,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Collect => "collect",
            Stage::Validate => "validate",
            Stage::Enrich => "enrich",
            Stage::Vectorize => "vectorize",
            Stage::Export => "export",
        }
    }

    pub fn parse(text: &str) -> Option<Stage> {
        Stage::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// The stage that runs after this one.
    pub fn next(self) -> Option<Stage> {
        let at = Stage::ALL.iter().position(|s| *s == self)?;
        Stage::ALL.get(at + 1).copied()
    }

    /// The stage whose records this one reads (collect reads its sources).
    pub fn input(self) -> Option<Stage> {
        match self {
            Stage::Collect => None,
            Stage::Validate => Some(Stage::Collect),
            Stage::Enrich => Some(Stage::Validate),
            // Vectorize and export both read the enriched postings.
            Stage::Vectorize | Stage::Export => Some(Stage::Enrich),
        }
    }
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
