#![doc = include_str!("../README.md")]
pub mod apis;
pub mod browser;
pub mod definition;
pub mod demo_board;
mod error;
mod fetch;
pub mod intake;
pub mod jsonld;
pub mod location;
mod pace;
mod posting;
mod robots;
pub mod salary;
mod scrape;
mod site;
pub mod skills;
pub mod text;
pub mod validate;

pub use apis::{AdzunaCredentials, AdzunaSpec, AtsSpec};
pub use browser::{BrowserPool, BrowserSettings, BrowserSlots, SlotLease};
pub use definition::{DefinitionSpec, FetchMode};
pub use error::{BoxError, ScrapeError, SiteSpecError};
pub use fetch::{
    DEFAULT_USER_AGENT, Fetchers, HttpFetcher, LoadMore, PageFetcher, PageRequest, error_chain,
};
pub use pace::{DomainLimits, DomainPacer};
pub use posting::{
    InvalidPosting, POSTING_NAMESPACE, Posting, Provenance, RawPosting, clean_text, strip_html,
};
pub use robots::ROBOTS_AGENT;
pub use scrape::{
    MAX_BACKOFF, PARTIAL_ERROR_RATIO, PageError, Politeness, ScrapeReport, ScrapeRequest,
    ScrapeStatus, backoff, scrape, scrape_into,
};
pub use site::{DemoBoardSpec, SearchDefaults, SiteSpec, SourceKind};
