//! One attempt of a scrape run, as the worker and the API's sync mode both run it: scrape the
//! site through `trawl-scrape`, store each page's postings as it arrives, and write how the
//! attempt ended (finished, retry later, or superseded by a newer attempt).
mod execute;

pub use execute::{Ended, Executor, retry_delay};
