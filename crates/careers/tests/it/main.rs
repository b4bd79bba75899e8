//! trawl-careers against real PostgreSQL, Redis, the demo board's career pages and an
//! in-process worker running trawl's kinds.
mod browsers;
mod companies;
mod helpers;
mod llm;
mod snapshots;
