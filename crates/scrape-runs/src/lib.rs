//! One attempt of a scrape run, as the worker and the API's sync mode both run it: scrape the
//! site through `trawl-scrape`, store each page's postings as it arrives, and write how the
//! attempt ended (finished, retry later, or superseded by a newer attempt).
mod execute;
pub mod postings;
mod redis_limits;
pub mod sites;

pub use execute::{Ended, Executor, retry_delay};
pub use redis_limits::{RedisBrowserSlots, RedisDomainPacer};

/// Fills what a scrape task leaves out from its site's definition, then trawl's defaults: the
/// one rule every door (scheduler, API, CLI, hand-written task) follows.
pub fn apply_site_defaults(task: &mut queue_core::Task, spec: &trawl_scrape::SiteSpec) {
    let defaults = spec.defaults();
    task.apply_defaults(
        defaults.search_term,
        defaults.location,
        defaults.results_wanted,
    );
}
