//! Faults the board injects on request, so tests produce partial and failed runs for real.
//! Set through `PUT /_admin/faults` (or `DemoBoard::set_faults` in-process).
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FaultTarget {
    /// Listing page number `page` (any search).
    Listing {
        page: u32,
    },
    /// Detail page of posting `id`.
    Detail {
        id: u32,
    },
    AnyListing,
    AnyDetail,
    /// `/robots.txt`.
    Robots,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FaultAction {
    /// Answer with this HTTP status (429 carries `Retry-After` when given).
    Status {
        status: u16,
        #[serde(default)]
        retry_after: Option<u32>,
    },
    /// Wait this long before answering normally.
    Delay { millis: u64 },
    /// Answer 200 with a truncated page that is not a listing or posting.
    Malformed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultRule {
    pub target: FaultTarget,
    pub action: FaultAction,
    /// Fire this many times, then behave; absent = every time.
    #[serde(default)]
    pub times: Option<u32>,
}

/// The active rules and how often each has fired.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    rules: Arc<Mutex<Vec<(FaultRule, u32)>>>,
}

impl Faults {
    pub fn set(&self, rules: Vec<FaultRule>) {
        *self.rules.lock().expect("fault lock") = rules.into_iter().map(|r| (r, 0)).collect();
    }

    pub fn rules(&self) -> Vec<FaultRule> {
        self.rules
            .lock()
            .expect("fault lock")
            .iter()
            .map(|(r, _)| r.clone())
            .collect()
    }

    /// The action to take for a request, counting it against its rule.
    pub fn take(&self, listing_page: Option<u32>, detail_id: Option<u32>) -> Option<FaultAction> {
        self.take_where(|target| match *target {
            FaultTarget::Listing { page } => listing_page == Some(page),
            FaultTarget::Detail { id } => detail_id == Some(id),
            FaultTarget::AnyListing => listing_page.is_some(),
            FaultTarget::AnyDetail => detail_id.is_some(),
            FaultTarget::Robots => false,
        })
    }

    /// The action to take for a `/robots.txt` request.
    pub fn take_robots(&self) -> Option<FaultAction> {
        self.take_where(|target| *target == FaultTarget::Robots)
    }

    fn take_where(&self, hits: impl Fn(&FaultTarget) -> bool) -> Option<FaultAction> {
        let mut rules = self.rules.lock().expect("fault lock");
        let (rule, fired) = rules.iter_mut().find(|(rule, fired)| {
            hits(&rule.target) && rule.times.is_none_or(|times| *fired < times)
        })?;
        *fired += 1;
        Some(rule.action.clone())
    }
}
