//! What a scrape does with each posting it reads: a scrape normalizes it on the spot (validated
//! and enriched, ready for `jobs`); the batch pipeline's collect stage keeps it raw, so its
//! validate stage can apply and report the rules on what the source really said.
use serde::{Deserialize, Serialize};

use crate::posting::{InvalidPosting, Posting, Provenance, RawPosting};

pub trait Intake: Send + Sync {
    type Item: Send;
    /// The posting as this intake keeps it, or why it is refused.
    fn take(&self, raw: RawPosting, from: &Provenance<'_>) -> Result<Self::Item, InvalidPosting>;
    /// Marks a posting whose detail page failed (it holds only what the listing said).
    fn details_missing(item: &mut Self::Item);
}

/// Validated and enriched as the scrape path does.
pub struct Normalize;

impl Intake for Normalize {
    type Item = Posting;

    fn take(&self, raw: RawPosting, from: &Provenance<'_>) -> Result<Posting, InvalidPosting> {
        raw.normalize(from)
    }

    fn details_missing(item: &mut Posting) {
        item.details_missing = true;
    }
}

/// Kept as read, with where it came from.
pub struct KeepRaw;

/// A posting as a source gave it, with its provenance: one record of a collect stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Collected {
    pub site: String,
    pub source: String,
    pub search_query: Option<String>,
    pub posting: RawPosting,
    #[serde(default)]
    pub details_missing: bool,
}

impl Intake for KeepRaw {
    type Item = Collected;

    fn take(&self, raw: RawPosting, from: &Provenance<'_>) -> Result<Collected, InvalidPosting> {
        Ok(Collected {
            site: from.site.to_owned(),
            source: from.source.to_owned(),
            search_query: from.search_query.map(str::to_owned),
            posting: raw,
            details_missing: false,
        })
    }

    fn details_missing(item: &mut Collected) {
        item.details_missing = true;
    }
}
